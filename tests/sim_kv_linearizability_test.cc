// The kv workload's linearizability check (KvGroupModel under sim/linearizability.h) must accept
// correct concurrent histories and catch fabricated violations: a stale read, a lost write, a
// compare-and-set applied twice, a torn transaction. And the model must answer exactly as the
// real state machine does, or the checker would accuse (or excuse) the wrong thing.
#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "kv/codec.h"
#include "kv/memory_storage.h"
#include "kv/state_machine.h"
#include "sim/kv_model.h"
#include "sim/linearizability.h"
#include "sim/rng.h"

using namespace coord;
using namespace coord::sim;

namespace {

using M = KvGroupModel;
using Op = Operation<M>;

M::Output failed(kv::Error error, bool succeeded = true) {
  M::Output out;
  out.error = error;
  out.succeeded = succeeded;
  return out;
}

M::Output with_ops(std::vector<M::OpOutput> ops, bool succeeded = true) {
  M::Output out;
  out.succeeded = succeeded;
  out.ops = std::move(ops);
  return out;
}

M::OpOutput created() {
  M::OpOutput o;
  o.created = true;
  return o;
}

M::OpOutput replaced() { return M::OpOutput{}; }

M::OpOutput got(std::string value, std::uint64_t version) {
  return M::OpOutput{true, std::move(value), version, false};
}

Op put(int client, std::uint64_t call, std::uint64_t ret, int key, std::string value, bool is_new) {
  M::Input in;
  in.kind = M::Kind::Txn;
  in.success.push_back(M::TxnOp{M::OpType::Put, key, std::move(value)});
  return Op{client, call, ret, in, with_ops({is_new ? created() : replaced()})};
}

Op del(int client, std::uint64_t call, std::uint64_t ret, int key, kv::Error error = kv::Error::Ok) {
  M::Input in;
  in.kind = M::Kind::Txn;
  in.success.push_back(M::TxnOp{M::OpType::Delete, key, {}});
  return Op{client, call, ret, in, error == kv::Error::Ok ? with_ops({M::OpOutput{}}) : failed(error)};
}

Op get(int client, std::uint64_t call, std::uint64_t ret, int key, std::optional<std::string> value,
       std::uint64_t version = 0) {
  M::Input in;
  in.kind = M::Kind::Get;
  in.key = key;
  M::Output out;
  if (value) {
    out.exists = true;
    out.value = *value;
    out.version = version;
  } else {
    out.error = kv::Error::NotFound;
  }
  return Op{client, call, ret, in, out};
}

Op list(int client, std::uint64_t call, std::uint64_t ret, std::uint32_t children, bool group = true) {
  M::Input in;
  in.kind = M::Kind::List;
  M::Output out;
  if (group) {
    out.children = children;
  } else {
    out.error = kv::Error::NotFound;
  }
  return Op{client, call, ret, in, out};
}

Op cas_version(int client, std::uint64_t call, std::uint64_t ret, int key, std::uint64_t version,
               std::string value, bool won) {
  M::Input in;
  in.kind = M::Kind::Txn;
  in.compares.push_back(M::Compare{key, M::Target::Version, version, {}});
  in.success.push_back(M::TxnOp{M::OpType::Put, key, std::move(value)});
  return Op{client, call, ret, in, won ? with_ops({replaced()}) : failed(kv::Error::CompareFailed, false)};
}

bool linearizable(const std::vector<Op>& h) {
  const LinearizabilityResult r = check_linearizable(h);
  CHECK_FALSE(r.exhausted);
  return r.linearizable;
}

}  // namespace

TEST_CASE("kv model: a sequential history of every operation is linearizable") {
  M::Input txn;
  txn.kind = M::Kind::Txn;
  txn.compares.push_back(M::Compare{0, M::Target::Value, 0, "b"});
  txn.success = {M::TxnOp{M::OpType::Put, 1, "x"}, M::TxnOp{M::OpType::Get, 0, {}}};
  txn.failure = {M::TxnOp{M::OpType::Get, 1, {}}};
  std::vector<Op> h = {
      list(1, 0, 1, 0, false),
      put(1, 2, 3, 0, "a", true),
      get(2, 4, 5, 0, "a", 0),
      cas_version(1, 6, 7, 0, 0, "b", true),
      cas_version(2, 8, 9, 0, 0, "c", false),
      Op{1, 10, 11, txn, with_ops({created(), got("b", 1)})},
      list(2, 12, 13, 0b011),
      del(1, 14, 15, 0),
      del(2, 16, 17, 0, kv::Error::NotFound),
      list(1, 18, 19, 0b010),
      get(2, 20, 21, 0, std::nullopt),
  };
  CHECK(linearizable(h));
}

TEST_CASE("kv model: concurrent operations may take effect in either order") {
  // Two puts overlap; the reads after both agree on one order (b then a, against call order).
  std::vector<Op> h = {put(1, 0, 1, 0, "x", true), put(1, 2, 10, 0, "a", false), put(2, 3, 11, 0, "b", false),
                       get(3, 12, 13, 0, "a", 2), get(3, 14, 15, 0, "a", 2)};
  CHECK(linearizable(h));
  // A read overlapping a put sees the old or the new value.
  std::vector<Op> old_value = {put(1, 0, 1, 0, "a", true), put(1, 2, 10, 0, "b", false),
                               get(2, 3, 4, 0, "a", 0)};
  std::vector<Op> new_value = {put(1, 0, 1, 0, "a", true), put(1, 2, 10, 0, "b", false),
                               get(2, 3, 4, 0, "b", 1)};
  CHECK(linearizable(old_value));
  CHECK(linearizable(new_value));
}

TEST_CASE("kv model: a stale read is caught") {
  // b was acknowledged before the read began, yet the read returns a.
  std::vector<Op> h = {put(1, 0, 1, 0, "a", true), put(1, 2, 3, 0, "b", false), get(2, 4, 5, 0, "a", 0)};
  const LinearizabilityResult r = check_linearizable(h);
  CHECK_FALSE(r.linearizable);
  REQUIRE(r.first_unplaced.has_value());
  CHECK(*r.first_unplaced == 2);  // the report starts at the read
  // A stale list: k1's create finished before the list began.
  std::vector<Op> stale_list = {put(1, 0, 1, 0, "a", true), put(1, 2, 3, 1, "b", true), list(2, 4, 5, 0b001)};
  CHECK_FALSE(linearizable(stale_list));
}

TEST_CASE("kv model: a lost write is caught") {
  // The put of b was acknowledged, but a later read sees a state where it never happened: the
  // version says one write, the value says the other.
  std::vector<Op> h = {put(1, 0, 1, 0, "a", true), put(2, 2, 3, 0, "b", false), put(1, 4, 5, 0, "c", false),
                       get(2, 6, 7, 0, "c", 1)};
  CHECK_FALSE(linearizable(h));
  // An acknowledged create that later reads do not see.
  std::vector<Op> vanished = {put(1, 0, 1, 2, "a", true), get(2, 2, 3, 2, std::nullopt)};
  CHECK_FALSE(linearizable(vanished));
}

TEST_CASE("kv model: a compare-and-set applied twice is caught") {
  // One compare-and-set (retried by its client) bumps the version twice.
  std::vector<Op> h = {put(1, 0, 1, 0, "a", true), cas_version(2, 2, 3, 0, 0, "b", true),
                       get(1, 4, 5, 0, "b", 2)};
  CHECK_FALSE(linearizable(h));
  // ...or wins after a concurrent writer already moved the version on.
  std::vector<Op> raced = {put(1, 0, 1, 0, "a", true), put(3, 2, 3, 0, "x", false),
                           cas_version(2, 4, 5, 0, 0, "b", true)};
  CHECK_FALSE(linearizable(raced));
}

TEST_CASE("kv model: transactions are atomic") {
  M::Input both;
  both.kind = M::Kind::Txn;
  both.success = {M::TxnOp{M::OpType::Put, 0, "a2"}, M::TxnOp{M::OpType::Put, 1, "b2"}};
  const Op txn{1, 10, 20, both, with_ops({replaced(), replaced()})};
  const std::vector<Op> setup = {put(1, 0, 1, 0, "a1", true), put(1, 2, 3, 1, "b1", true)};

  // Concurrent readers see all of it or none of it, in an order real time allows.
  std::vector<Op> whole = setup;
  whole.push_back(txn);
  whole.push_back(get(2, 11, 12, 0, "a2", 1));
  whole.push_back(get(2, 13, 14, 1, "b2", 1));
  CHECK(linearizable(whole));

  // Torn: a reader saw the new k0, and after that the old k1.
  std::vector<Op> torn = setup;
  torn.push_back(txn);
  torn.push_back(get(2, 11, 12, 0, "a2", 1));
  torn.push_back(get(2, 13, 14, 1, "b1", 0));
  CHECK_FALSE(linearizable(torn));

  // A failed transaction changes nothing: its create of an existing key fails it all.
  M::Input failing;
  failing.kind = M::Kind::Txn;
  failing.success = {M::TxnOp{M::OpType::Put, 1, "b3"}, M::TxnOp{M::OpType::Create, 0, "a3"}};
  std::vector<Op> all_or_nothing = setup;
  all_or_nothing.push_back(Op{1, 10, 11, failing, failed(kv::Error::AlreadyExists)});
  all_or_nothing.push_back(get(2, 12, 13, 1, "b1", 0));
  CHECK(linearizable(all_or_nothing));
  all_or_nothing.back() = get(2, 12, 13, 1, "b3", 1);
  CHECK_FALSE(linearizable(all_or_nothing));
}

TEST_CASE("kv model: a write with an unknown outcome may or may not have happened") {
  Op lost = put(2, 2, kNeverReturned, 0, "b", false);
  lost.output.reset();
  std::vector<Op> took_effect = {put(1, 0, 1, 0, "a", true), lost, get(1, 5, 6, 0, "b", 1)};
  std::vector<Op> did_not = {put(1, 0, 1, 0, "a", true), lost, get(1, 5, 6, 0, "a", 0)};
  CHECK(linearizable(took_effect));
  CHECK(linearizable(did_not));
  // But it takes effect at most once.
  std::vector<Op> twice = {put(1, 0, 1, 0, "a", true), lost, get(1, 5, 6, 0, "b", 2)};
  CHECK_FALSE(linearizable(twice));
}

TEST_CASE("kv model: answers exactly as the state machine does") {
  // Random operations on one group go to both the model and a real kv::StateMachine; every
  // answer must match, or the checker would judge the cluster by the wrong rules.
  kv::MemoryStorage storage;
  kv::StateMachine sm(storage);
  M::State state = M::init();
  Rng rng(7);
  kv::Index index = 0;
  const int keys = 3;
  int values = 0;
  for (int i = 0; i < 3000; ++i) {
    M::Input in;
    const std::uint64_t pick = rng.below(10);
    auto key = [&] { return static_cast<int>(rng.below(keys)); };
    if (pick == 0) {
      in.kind = M::Kind::Get;
      in.key = key();
    } else if (pick == 1) {
      in.kind = M::Kind::List;
    } else {
      in.kind = M::Kind::Txn;
      for (std::uint64_t c = rng.below(3); c > 0; --c) {
        const int k = key();
        switch (rng.below(4)) {
          case 0: in.compares.push_back(M::Compare{k, M::Target::Exists, 0, {}}); break;
          case 1: in.compares.push_back(M::Compare{k, M::Target::Missing, 0, {}}); break;
          case 2: in.compares.push_back(M::Compare{k, M::Target::Version, rng.below(3), {}}); break;
          default:
            in.compares.push_back(
                M::Compare{k, M::Target::Value, 0, fmt::format("v{}", rng.below(values + 1))});
        }
      }
      auto branch = [&](std::uint64_t max) {
        std::vector<M::TxnOp> ops;
        for (std::uint64_t n = rng.below(max + 1); n > 0; --n) {
          const auto type = static_cast<M::OpType>(rng.below(4));
          ops.push_back(M::TxnOp{type, key(),
                                 type == M::OpType::Put || type == M::OpType::Create
                                     ? fmt::format("v{}", ++values)
                                     : std::string()});
        }
        return ops;
      };
      in.success = branch(3);
      in.failure = branch(2);
    }
    M::State next;
    const M::Output expected = M::expect(state, in, &next);
    M::Output actual;
    switch (in.kind) {
      case M::Kind::Get: actual = M::from_get(sm.get(M::key_path(0, in.key))); break;
      case M::Kind::List: actual = M::from_list(sm.list(M::group_path(0))); break;
      case M::Kind::Txn: {
        const std::string bytes = kv::encode_command(kv::Command{0, 0, M::to_txn(0, in)});
        actual = M::from_result(in, sm.apply_batch({kv::AppliedEntry{++index, bytes}}).front());
        break;
      }
    }
    INFO("operation " << i << ": " << M::describe(in, expected) << " but the state machine says "
                      << M::describe(in, actual));
    REQUIRE(M::matches(in, expected, actual));
    state = next;
  }
}
