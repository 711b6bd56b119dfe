// Acceptance 4: bad paths, oversized keys and values, malformed transactions and malformed
// command bytes are refused with their error codes and change nothing. "Nothing" is checked
// strictly: a replica that applied the refused entry and one that applied a no-op instead have
// byte-identical snapshots.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kv/codec.h"
#include "kv/limits.h"
#include "kv/path.h"
#include "kv_test_util.h"

using namespace kvtest;

namespace {

// Applies `bytes` to one replica and a no-op to its twin; returns the result after checking
// that the two states are identical.
Result refused(Backend backend, const std::string& bytes, const Limits& limits = {}) {
  Replica with(backend, limits), without(backend, limits);
  for (Replica* r : {&with, &without}) {
    Op setup = Op::put("/app/x", "1");
    setup.parents = true;
    REQUIRE(r->op(setup).ok());
  }
  const Result result = with.apply_data({bytes}).at(0);
  without.apply_data({""});
  CHECK(with->snapshot() == without->snapshot());
  return result;
}

Result refused_txn(Backend backend, const Txn& txn, const Limits& limits = {}) {
  Command c;
  c.body = txn;
  return refused(backend, encode_command(c), limits);
}

const Backend backends[] = {Backend::Memory, Backend::Lmdb};

}  // namespace

TEST_CASE("kv validation: error codes are stable") {
  CHECK(static_cast<int>(Error::Ok) == 0);
  CHECK(static_cast<int>(Error::InvalidPath) == 1);
  CHECK(static_cast<int>(Error::NotFound) == 2);
  CHECK(static_cast<int>(Error::AlreadyExists) == 3);
  CHECK(static_cast<int>(Error::NotEmpty) == 4);
  CHECK(static_cast<int>(Error::CompareFailed) == 5);
  CHECK(static_cast<int>(Error::TooLarge) == 6);
  CHECK(static_cast<int>(Error::Compacted) == 7);
  CHECK(static_cast<int>(Error::InvalidRequest) == 8);
  CHECK(static_cast<int>(Error::StaleSequence) == 9);
  CHECK(static_cast<int>(Error::FutureRevision) == 10);
  CHECK(static_cast<int>(Error::WatchOverflow) == 11);
  CHECK(static_cast<int>(Error::TooManyWatchers) == 12);
  CHECK(static_cast<int>(Error::UnknownWatch) == 13);
  CHECK(static_cast<int>(Error::StaleState) == 14);
  CHECK(std::string(to_string(Error::NotEmpty)) == "not-empty");
}

TEST_CASE("kv validation: bad paths in every position") {
  const std::vector<std::string> bad = {"", "app", "/app/", "//", "/a//b", "/a/../b", "/a\nb",
                                        "/\xc3\x28", "/" + std::string(path_bytes_max, 'a'),
                                        "/" + std::string(segment_bytes_max + 1, 'a')};
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    for (const std::string& path : bad) {
      CAPTURE(path);
      CHECK(refused_txn(backend, single(Op::put(path, "v"))).status.error == Error::InvalidPath);
      CHECK(refused_txn(backend, single(Op::create(path, "v"))).status.error == Error::InvalidPath);
      CHECK(refused_txn(backend, single(Op::remove(path))).status.error == Error::InvalidPath);
      CHECK(refused_txn(backend, single(Op::get(path))).status.error == Error::InvalidPath);
      Txn cmp;
      cmp.compares.push_back(Compare::exists(path));
      cmp.success.push_back(Op::put("/app/x", "2"));
      CHECK(refused_txn(backend, cmp).status.error == Error::InvalidPath);
      // A bad path in the branch that would not run still fails the request.
      Txn other_branch;
      other_branch.success.push_back(Op::put("/app/x", "2"));
      other_branch.failure.push_back(Op::put(path, "2"));
      CHECK(refused_txn(backend, other_branch).status.error == Error::InvalidPath);
    }
    // A sequential prefix may end in "/", but the full name must still fit.
    const std::string long_prefix = "/" + std::string(237, 'p') + "/" + std::string(236, 'q');
    REQUIRE(valid_path(long_prefix));
    CHECK(refused_txn(backend, single(Op::create_sequential(long_prefix, ""))).status.error ==
          Error::InvalidPath);
  }
  // Reads refuse bad paths too.
  Replica r(Backend::Memory);
  CHECK(r->get("nope").status.error == Error::InvalidPath);
  CHECK(r->exists("/a/").status.error == Error::InvalidPath);
  CHECK(r->list("//").status.error == Error::InvalidPath);
  CHECK(r->range("").status.error == Error::InvalidPath);
}

TEST_CASE("kv validation: oversized values, transactions and commands") {
  Limits limits;
  limits.value_bytes_max = 64;
  limits.txn_read_bytes_max = 64;
  limits.command_bytes_max = 4096;
  limits.txn_ops_max = 3;
  limits.txn_compares_max = 2;
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    const std::string at_limit(64, 'v'), over(65, 'v');
    {
      Replica r(backend, limits);
      CHECK(r.op(Op::put("/ok", at_limit)).ok());
    }
    CHECK(refused_txn(backend, single(Op::put("/big", over)), limits).status.error ==
          Error::TooLarge);
    CHECK(refused_txn(backend, single(Op::create("/big", over)), limits).status.error ==
          Error::TooLarge);
    CHECK(refused_txn(backend, compare_and_set_value("/app/x", over, "1"), limits).status.error ==
          Error::TooLarge);
    Txn many;
    for (int i = 0; i < 4; ++i) many.success.push_back(Op::put("/m" + std::to_string(i), ""));
    CHECK(refused_txn(backend, many, limits).status.error == Error::TooLarge);
    Txn compares;
    for (int i = 0; i < 3; ++i) compares.compares.push_back(Compare::exists("/app"));
    CHECK(refused_txn(backend, compares, limits).status.error == Error::TooLarge);
    Command huge;
    huge.body = single(Op::put("/h", std::string(5000, 'h')));
    CHECK(refused(backend, encode_command(huge), limits).status.error == Error::TooLarge);
    // Gets in one transaction return at most txn_read_bytes_max.
    {
      Replica r(backend, limits);
      REQUIRE(r.op(Op::put("/g1", std::string(40, 'g'))).ok());
      REQUIRE(r.op(Op::put("/g2", std::string(40, 'g'))).ok());
      Txn gets;
      gets.success.push_back(Op::get("/g1"));
      gets.success.push_back(Op::get("/g2"));
      const Result res = r.txn(gets);
      CHECK(res.status.error == Error::TooLarge);
      CHECK(res.failed_op == 1);
    }
    // Recursive deletes are bounded.
    {
      Limits small = limits;
      small.delete_nodes_max = 3;
      Replica r(backend, small);
      for (const char* p : {"/t", "/t/a", "/t/b", "/t/c"}) REQUIRE(r.op(Op::create(p, "")).ok());
      CHECK(r.op(Op::remove("/t", true)).status.error == Error::TooLarge);
      REQUIRE(r.op(Op::remove("/t/c")).ok());
      CHECK(r.op(Op::remove("/t", true)).ok());
    }
  }
}

TEST_CASE("kv validation: malformed transactions") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Op get_with_value = Op::get("/app");
    get_with_value.value = "x";
    Op put_recursive = Op::put("/app", "x");
    put_recursive.recursive = true;
    Op put_sequential = Op::put("/app", "x");
    put_sequential.sequential = true;
    Op create_recursive = Op::create("/n", "x");
    create_recursive.recursive = true;
    Op delete_parents = Op::remove("/app/x");
    delete_parents.parents = true;
    Op delete_lease = Op::remove("/app/x");
    delete_lease.lease = 3;
    for (const Op& op : {get_with_value, put_recursive, put_sequential, create_recursive,
                         delete_parents, delete_lease, Op::remove("/")}) {
      CAPTURE(to_string(op.type));
      CHECK(refused_txn(backend, single(op)).status.error == Error::InvalidRequest);
    }
    Txn exists_two;
    exists_two.compares.push_back(Compare{"/app", CompareTarget::Exists, CompareOp::Equal, 2, ""});
    CHECK(refused_txn(backend, exists_two).status.error == Error::InvalidRequest);
    Txn value_on_number;
    value_on_number.compares.push_back(
        Compare{"/app", CompareTarget::Version, CompareOp::Equal, 0, "x"});
    CHECK(refused_txn(backend, value_on_number).status.error == Error::InvalidRequest);
    Txn twice;
    twice.success.push_back(Op::put("/app/x", "a"));
    twice.success.push_back(Op::remove("/app/x"));
    const Result r = refused_txn(backend, twice);
    CHECK(r.status.error == Error::InvalidRequest);
    CHECK(r.failed_op == 1);
  }
}

TEST_CASE("kv validation: malformed command bytes") {
  Command valid;
  valid.session_id = 3;
  valid.sequence = 9;
  Txn t;
  t.compares.push_back(Compare::version("/app/x", CompareOp::Less, 4));
  t.success.push_back(Op::put("/app/y", "value"));
  t.failure.push_back(Op::get("/app/x"));
  valid.body = t;
  const std::string good = encode_command(valid);
  REQUIRE(decode_command(good).status.ok());
  REQUIRE(decode_command(good).command == valid);

  std::vector<std::string> bad = {"x", "\x01\x02", std::string(3, '\0'), std::string(64, '\xff'),
                                  good.substr(0, good.size() / 2)};
  std::string far_root = good;
  far_root[0] = far_root[1] = far_root[2] = '\xff';
  far_root[3] = '\x7f';
  bad.push_back(far_root);
  Result result_bytes;
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    for (const std::string& bytes : bad) {
      CHECK(decode_command(bytes).status.error == Error::InvalidRequest);
      CHECK(refused(backend, bytes).status.error == Error::InvalidRequest);
    }
  }

  // Mutations of a valid encoding: decoding never crashes (ASan watches), and whatever decodes
  // is applied like any command.
  std::uint64_t r = 99;
  Replica replica(Backend::Memory);
  std::vector<std::string> mutated;
  for (int i = 0; i < 3000; ++i) {
    r = r * 6364136223846793005ull + 1442695040888963407ull;
    std::string bytes = good;
    switch ((r >> 33) % 4) {
      case 0: bytes[(r >> 13) % bytes.size()] ^= static_cast<char>(1 + (r >> 40) % 255); break;
      case 1: bytes.resize((r >> 13) % bytes.size()); break;
      case 2: bytes.insert((r >> 13) % bytes.size(), 1, static_cast<char>(r >> 50)); break;
      default:
        for (int k = 0; k < 4; ++k)
          bytes[(r >> (8 * k)) % bytes.size()] = static_cast<char>(r >> 56);
        break;
    }
    const DecodedCommand decoded = decode_command(bytes);
    if (!decoded.status.ok()) CHECK(decoded.status.error == Error::InvalidRequest);
    if (!bytes.empty()) mutated.push_back(bytes);
    if (mutated.size() == 100) {
      replica.apply_data(mutated);
      mutated.clear();
    }
  }
  CHECK(decode_result("not a result") == std::nullopt);
}

TEST_CASE("kv validation: codec round trips") {
  Command c;
  c.session_id = 1ull << 60;
  c.sequence = 77;
  Txn t;
  t.compares = {Compare::exists("/a"), Compare::missing("/b"),
                Compare::value_is("/c", CompareOp::Greater, std::string("\0\xff", 2)),
                Compare::mod_revision("/d", CompareOp::NotEqual, 5)};
  Op create = Op::create_sequential("/q/", std::string("bin\0ary", 7), 12);
  create.parents = true;
  t.success = {create, Op::remove("/x", true), Op::get("/y")};
  t.failure = {Op::put("/z", "")};
  c.body = t;
  CHECK(decode_command(encode_command(c)).command == c);
  Command compact;
  compact.body = Compact{123};
  CHECK(decode_command(encode_command(compact)).command == compact);

  Result result;
  result.status = make_status(Error::NotEmpty, "msg");
  result.status.compact_revision = 4;
  result.revision = 9;
  result.succeeded = false;
  result.failed_op = 2;
  result.failed_compare = 1;
  result.ops.push_back(OpResult{OpType::Get, "/y", Node{"v", 1, 2, 3, 4, 5, 6}, false, 0});
  result.ops.push_back(OpResult{OpType::Delete, "/x", std::nullopt, false, 3});
  result.ops.push_back(OpResult{OpType::Put, "/z", std::nullopt, true, 0});
  const auto decoded = decode_result(encode_result(result));
  REQUIRE(decoded.has_value());
  CHECK(*decoded == result);
  CHECK(encode_result(result) == encode_result(*decoded));  // deterministic bytes
}
