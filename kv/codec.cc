#include "kv/codec.h"

#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "kv/command_generated.h"
#include "kv/limits.h"

namespace coord::kv {

namespace {

using flatbuffers::FlatBufferBuilder;
using flatbuffers::Offset;

// Verification bounds: far above what any valid request needs, low enough to bound the work a
// hostile buffer can cause.
constexpr flatbuffers::uoffset_t verify_depth_max = 16;
constexpr flatbuffers::uoffset_t verify_tables_max = 1u << 20;
// flatbuffers offsets are 32-bit signed; the verifier refuses (asserts on) larger buffers.
constexpr std::size_t buffer_bytes_max = (std::size_t{1} << 31) - 1;

Offset<flatbuffers::Vector<std::uint8_t>> bytes(FlatBufferBuilder& b, const std::string& s) {
  return b.CreateVector(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

std::string string_of(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

std::string string_of(const flatbuffers::Vector<std::uint8_t>* v) {
  return v ? std::string(reinterpret_cast<const char*>(v->data()), v->size()) : std::string();
}

// The verifier requires aligned scalars; bytes handed in from a network buffer or a string_view
// into the middle of one may not be. Copy them into aligned storage when needed.
class AlignedBytes {
 public:
  explicit AlignedBytes(std::string_view bytes) {
    if (reinterpret_cast<std::uintptr_t>(bytes.data()) % alignof(std::uint64_t) == 0) {
      data_ = reinterpret_cast<const std::uint8_t*>(bytes.data());
    } else {
      copy_.resize((bytes.size() + 7) / 8);
      std::memcpy(copy_.data(), bytes.data(), bytes.size());
      data_ = reinterpret_cast<const std::uint8_t*>(copy_.data());
    }
    size_ = bytes.size();
  }
  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  std::vector<std::uint64_t> copy_;
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

template <typename Root>
const Root* verified_root(const AlignedBytes& buffer) {
  if (buffer.size() == 0 || buffer.size() > buffer_bytes_max) return nullptr;
  flatbuffers::Verifier::Options options;
  options.max_depth = verify_depth_max;
  options.max_tables = verify_tables_max;
  flatbuffers::Verifier verifier(buffer.data(), buffer.size(), options);
  if (!verifier.VerifyBuffer<Root>(nullptr)) return nullptr;
  return flatbuffers::GetRoot<Root>(buffer.data());
}

Offset<fb::Op> encode_op(FlatBufferBuilder& b, const Op& op) {
  const auto path = b.CreateString(op.path);
  const auto value = bytes(b, op.value);
  fb::OpBuilder ob(b);
  ob.add_type(static_cast<std::uint8_t>(op.type));
  ob.add_path(path);
  ob.add_value(value);
  ob.add_lease(op.lease);
  ob.add_parents(op.parents);
  ob.add_sequential(op.sequential);
  ob.add_recursive(op.recursive);
  return ob.Finish();
}

Offset<flatbuffers::Vector<Offset<fb::Op>>> encode_ops(FlatBufferBuilder& b,
                                                       const std::vector<Op>& ops) {
  std::vector<Offset<fb::Op>> offsets;
  offsets.reserve(ops.size());
  for (const Op& op : ops) offsets.push_back(encode_op(b, op));
  return b.CreateVector(offsets);
}

Offset<fb::Txn> encode_txn(FlatBufferBuilder& b, const Txn& txn) {
  std::vector<Offset<fb::Compare>> compares;
  compares.reserve(txn.compares.size());
  for (const Compare& c : txn.compares) {
    const auto path = b.CreateString(c.path);
    const auto value = bytes(b, c.value);
    fb::CompareBuilder cb(b);
    cb.add_path(path);
    cb.add_target(static_cast<std::uint8_t>(c.target));
    cb.add_op(static_cast<std::uint8_t>(c.op));
    cb.add_number(c.number);
    cb.add_value(value);
    compares.push_back(cb.Finish());
  }
  const auto compares_vec = b.CreateVector(compares);
  const auto success = encode_ops(b, txn.success);
  const auto failure = encode_ops(b, txn.failure);
  return fb::CreateTxn(b, compares_vec, success, failure);
}

bool decode_ops(const flatbuffers::Vector<Offset<fb::Op>>* in, std::vector<Op>& out) {
  if (!in) return true;
  out.reserve(in->size());
  for (const fb::Op* o : *in) {
    if (o->type() > op_type_max) return false;
    Op op;
    op.type = static_cast<OpType>(o->type());
    op.path = string_of(o->path());
    op.value = string_of(o->value());
    op.lease = o->lease();
    op.parents = o->parents();
    op.sequential = o->sequential();
    op.recursive = o->recursive();
    out.push_back(std::move(op));
  }
  return true;
}

bool decode_txn(const fb::Txn* in, Txn& out) {
  if (const auto* compares = in->compares()) {
    out.compares.reserve(compares->size());
    for (const fb::Compare* c : *compares) {
      if (c->target() > compare_target_max || c->op() > compare_op_max) return false;
      Compare compare;
      compare.path = string_of(c->path());
      compare.target = static_cast<CompareTarget>(c->target());
      compare.op = static_cast<CompareOp>(c->op());
      compare.number = c->number();
      compare.value = string_of(c->value());
      out.compares.push_back(std::move(compare));
    }
  }
  return decode_ops(in->success(), out.success) && decode_ops(in->failure(), out.failure);
}

Offset<fb::Node> encode_node(FlatBufferBuilder& b, const Node& node) {
  const auto value = bytes(b, node.value);
  return fb::CreateNode(b, value, node.create_revision, node.mod_revision, node.version,
                        node.num_children, node.children_version, node.lease);
}

Node decode_node(const fb::Node* in) {
  Node node;
  node.value = string_of(in->value());
  node.create_revision = in->create_revision();
  node.mod_revision = in->mod_revision();
  node.version = in->version();
  node.num_children = in->num_children();
  node.children_version = in->children_version();
  node.lease = in->lease();
  return node;
}

}  // namespace

std::string encode_command(const Command& command) {
  FlatBufferBuilder b;
  fb::Body body_type = fb::Body_NONE;
  Offset<void> body;
  if (const auto* txn = std::get_if<Txn>(&command.body)) {
    body_type = fb::Body_Txn;
    body = encode_txn(b, *txn).Union();
  } else if (const auto* compact = std::get_if<Compact>(&command.body)) {
    body_type = fb::Body_Compact;
    body = fb::CreateCompact(b, compact->revision).Union();
  } else if (const auto* grant = std::get_if<LeaseGrant>(&command.body)) {
    body_type = fb::Body_LeaseGrant;
    body = fb::CreateLeaseGrant(b, grant->id, grant->ttl_ms).Union();
  } else if (const auto* revoke = std::get_if<LeaseRevoke>(&command.body)) {
    body_type = fb::Body_LeaseRevoke;
    body = fb::CreateLeaseRevoke(b, revoke->id).Union();
  } else if (const auto* keepalive = std::get_if<LeaseKeepAlive>(&command.body)) {
    body_type = fb::Body_LeaseKeepAlive;
    body = fb::CreateLeaseKeepAlive(b, keepalive->id).Union();
  } else {
    const auto& expire = std::get<LeaseExpire>(command.body);
    body_type = fb::Body_LeaseExpire;
    body = fb::CreateLeaseExpire(b, expire.id, expire.keepalives).Union();
  }
  b.Finish(fb::CreateCommand(b, command.session_id, command.sequence, body_type, body));
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

DecodedCommand decode_command(std::string_view bytes) {
  DecodedCommand out;
  const AlignedBytes buffer(bytes);
  const fb::Command* root = verified_root<fb::Command>(buffer);
  if (!root) {
    out.status = make_status(Error::InvalidRequest, "command bytes are not a valid flatbuffer");
    return out;
  }
  out.command.session_id = root->session_id();
  out.command.sequence = root->sequence();
  if (const fb::Txn* txn = root->body_as_Txn()) {
    Txn decoded;
    if (!decode_txn(txn, decoded)) {
      out.status = make_status(Error::InvalidRequest, "command has an unknown enum value");
      return out;
    }
    out.command.body = std::move(decoded);
  } else if (const fb::Compact* compact = root->body_as_Compact()) {
    out.command.body = Compact{compact->revision()};
  } else if (const fb::LeaseGrant* grant = root->body_as_LeaseGrant()) {
    out.command.body = LeaseGrant{grant->id(), grant->ttl_ms()};
  } else if (const fb::LeaseRevoke* revoke = root->body_as_LeaseRevoke()) {
    out.command.body = LeaseRevoke{revoke->id()};
  } else if (const fb::LeaseKeepAlive* keepalive = root->body_as_LeaseKeepAlive()) {
    out.command.body = LeaseKeepAlive{keepalive->id()};
  } else if (const fb::LeaseExpire* expire = root->body_as_LeaseExpire()) {
    out.command.body = LeaseExpire{expire->id(), expire->keepalives()};
  } else {
    out.status = make_status(Error::InvalidRequest, "command has no known body");
  }
  return out;
}

std::string encode_result(const Result& result) {
  FlatBufferBuilder b;
  std::vector<Offset<fb::OpResult>> ops;
  ops.reserve(result.ops.size());
  for (const OpResult& op : result.ops) {
    const auto path = b.CreateString(op.path);
    const Offset<fb::Node> node = op.node ? encode_node(b, *op.node) : Offset<fb::Node>();
    ops.push_back(fb::CreateOpResult(b, static_cast<std::uint8_t>(op.type), path, node,
                                     op.created, op.deleted));
  }
  const auto ops_vec = b.CreateVector(ops);
  const auto message = b.CreateString(result.status.message);
  // Left out when all zero, so that results of other commands stay as small as before.
  Offset<fb::LeaseResult> lease;
  if (result.lease != LeaseResult{}) {
    std::vector<Offset<flatbuffers::String>> deleted;
    deleted.reserve(result.lease.deleted.size());
    for (const std::string& path : result.lease.deleted) deleted.push_back(b.CreateString(path));
    const auto deleted_vec = b.CreateVector(deleted);
    const Lease& l = result.lease.lease;
    lease = fb::CreateLeaseResult(b, l.id, l.ttl_ms, l.keepalives, deleted_vec);
  }
  b.Finish(fb::CreateResult(b, static_cast<std::uint16_t>(result.status.error), message,
                            result.status.compact_revision, result.revision, result.succeeded,
                            result.failed_op, result.failed_compare, ops_vec, lease));
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

std::optional<Result> decode_result(std::string_view bytes) {
  const AlignedBytes buffer(bytes);
  const fb::Result* root = verified_root<fb::Result>(buffer);
  if (!root || root->error() > error_code_max) return std::nullopt;
  Result result;
  result.status.error = static_cast<Error>(root->error());
  result.status.message = string_of(root->message());
  result.status.compact_revision = root->compact_revision();
  result.revision = root->revision();
  result.succeeded = root->succeeded();
  result.failed_op = root->failed_op();
  result.failed_compare = root->failed_compare();
  if (const auto* ops = root->ops()) {
    result.ops.reserve(ops->size());
    for (const fb::OpResult* o : *ops) {
      if (o->type() > op_type_max) return std::nullopt;
      OpResult op;
      op.type = static_cast<OpType>(o->type());
      op.path = string_of(o->path());
      if (o->node()) op.node = decode_node(o->node());
      op.created = o->created();
      op.deleted = o->deleted();
      result.ops.push_back(std::move(op));
    }
  }
  if (const fb::LeaseResult* lease = root->lease()) {
    result.lease.lease = Lease{lease->id(), lease->ttl_ms(), lease->keepalives()};
    if (const auto* deleted = lease->deleted()) {
      result.lease.deleted.reserve(deleted->size());
      for (const flatbuffers::String* path : *deleted) {
        result.lease.deleted.push_back(string_of(path));
      }
    }
  }
  return result;
}

}  // namespace coord::kv
