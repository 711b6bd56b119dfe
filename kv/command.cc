#include "kv/command.h"

#include <utility>

namespace coord::kv {

namespace {

Compare make_compare(std::string path, CompareTarget target, CompareOp op, std::uint64_t number,
                     std::string value = {}) {
  Compare c;
  c.path = std::move(path);
  c.target = target;
  c.op = op;
  c.number = number;
  c.value = std::move(value);
  return c;
}

Op make_op(OpType type, std::string path) {
  Op op;
  op.type = type;
  op.path = std::move(path);
  return op;
}

}  // namespace

Compare Compare::exists(std::string path) {
  return make_compare(std::move(path), CompareTarget::Exists, CompareOp::Equal, 1);
}
Compare Compare::missing(std::string path) {
  return make_compare(std::move(path), CompareTarget::Exists, CompareOp::Equal, 0);
}
Compare Compare::version(std::string path, CompareOp op, std::uint64_t version) {
  return make_compare(std::move(path), CompareTarget::Version, op, version);
}
Compare Compare::create_revision(std::string path, CompareOp op, Revision revision) {
  return make_compare(std::move(path), CompareTarget::CreateRevision, op, revision);
}
Compare Compare::mod_revision(std::string path, CompareOp op, Revision revision) {
  return make_compare(std::move(path), CompareTarget::ModRevision, op, revision);
}
Compare Compare::value_is(std::string path, CompareOp op, std::string value) {
  return make_compare(std::move(path), CompareTarget::Value, op, 0, std::move(value));
}

Op Op::get(std::string path) { return make_op(OpType::Get, std::move(path)); }

Op Op::put(std::string path, std::string value, LeaseId lease) {
  Op op = make_op(OpType::Put, std::move(path));
  op.value = std::move(value);
  op.lease = lease;
  return op;
}

Op Op::create(std::string path, std::string value, LeaseId lease) {
  Op op = make_op(OpType::Create, std::move(path));
  op.value = std::move(value);
  op.lease = lease;
  return op;
}

Op Op::create_sequential(std::string prefix, std::string value, LeaseId lease) {
  Op op = create(std::move(prefix), std::move(value), lease);
  op.sequential = true;
  return op;
}

Op Op::remove(std::string path, bool recursive) {
  Op op = make_op(OpType::Delete, std::move(path));
  op.recursive = recursive;
  return op;
}

Txn single(Op op) {
  Txn txn;
  txn.success.push_back(std::move(op));
  return txn;
}

Txn compare_and_set_version(std::string path, std::uint64_t version, std::string value) {
  Txn txn;
  txn.compares.push_back(Compare::version(path, CompareOp::Equal, version));
  txn.success.push_back(Op::put(std::move(path), std::move(value)));
  return txn;
}

Txn compare_and_set_mod_revision(std::string path, Revision mod_revision, std::string value) {
  Txn txn;
  txn.compares.push_back(Compare::mod_revision(path, CompareOp::Equal, mod_revision));
  txn.success.push_back(Op::put(std::move(path), std::move(value)));
  return txn;
}

Txn compare_and_set_value(std::string path, std::string expected, std::string value) {
  Txn txn;
  txn.compares.push_back(Compare::value_is(path, CompareOp::Equal, std::move(expected)));
  txn.success.push_back(Op::put(std::move(path), std::move(value)));
  return txn;
}

const char* to_string(OpType type) {
  switch (type) {
    case OpType::Get: return "get";
    case OpType::Put: return "put";
    case OpType::Create: return "create";
    case OpType::Delete: return "delete";
  }
  return "?";
}

}  // namespace coord::kv
