// The linearizability checker must accept real linearizable histories and catch fabricated
// violations: a stale read, a lost write, a compare-and-set applied twice.
#include <doctest/doctest.h>

#include <functional>
#include <string>

#include "sim/linearizability.h"

using namespace coord::sim;

namespace {

// One register with a version, like a single key: put, get, and cas on the version.
struct Register {
  struct State {
    std::string value;
    int version = 0;
    bool operator==(const State&) const = default;
  };
  enum class Kind { Put, Get, Cas };
  struct Input {
    Kind kind;
    std::string value;
    int expect_version = 0;
  };
  struct Output {
    bool ok = true;
    std::string value;
    int version = 0;
  };
  static State init() { return {}; }
  static std::size_t hash(const State& s) {
    return std::hash<std::string>()(s.value) ^ static_cast<std::size_t>(s.version);
  }
  static bool step(const State& s, const Input& in, const std::optional<Output>& out, State* next) {
    *next = s;
    switch (in.kind) {
      case Kind::Put:
        next->value = in.value;
        ++next->version;
        return !out || (out->ok && out->version == next->version);
      case Kind::Get:
        return !out || (out->value == s.value && out->version == s.version);
      case Kind::Cas:
        if (s.version != in.expect_version) return !out || !out->ok;
        next->value = in.value;
        ++next->version;
        return !out || (out->ok && out->version == next->version);
    }
    return false;
  }
};

using Op = Operation<Register>;

Op put(int client, std::uint64_t call, std::uint64_t ret, std::string v, int version) {
  return Op{client, call, ret, {Register::Kind::Put, std::move(v), 0}, Register::Output{true, "", version}};
}
Op get(int client, std::uint64_t call, std::uint64_t ret, std::string v, int version) {
  return Op{client, call, ret, {Register::Kind::Get, "", 0}, Register::Output{true, std::move(v), version}};
}
Op cas(int client, std::uint64_t call, std::uint64_t ret, std::string v, int expect, bool ok, int version) {
  return Op{client, call, ret, {Register::Kind::Cas, std::move(v), expect}, Register::Output{ok, "", version}};
}

}  // namespace

TEST_CASE("a sequential history is linearizable") {
  std::vector<Op> h = {put(1, 0, 1, "a", 1), get(2, 2, 3, "a", 1), put(1, 4, 5, "b", 2),
                       get(2, 6, 7, "b", 2)};
  CHECK(check_linearizable(h).linearizable);
}

TEST_CASE("concurrent operations may take effect in either order") {
  // The read overlaps the write, so seeing either the old or the new value is fine.
  std::vector<Op> old_value = {put(1, 0, 1, "a", 1), put(1, 2, 10, "b", 2), get(2, 3, 4, "a", 1)};
  std::vector<Op> new_value = {put(1, 0, 1, "a", 1), put(1, 2, 10, "b", 2), get(2, 3, 4, "b", 2)};
  CHECK(check_linearizable(old_value).linearizable);
  CHECK(check_linearizable(new_value).linearizable);
}

TEST_CASE("a stale read is caught") {
  // b was acknowledged before the read began, yet the read returns a.
  std::vector<Op> h = {put(1, 0, 1, "a", 1), put(1, 2, 3, "b", 2), get(2, 4, 5, "a", 1)};
  CHECK_FALSE(check_linearizable(h).linearizable);
}

TEST_CASE("a lost write is caught") {
  // The put of b was acknowledged, but later reads see a state where it never happened.
  std::vector<Op> h = {put(1, 0, 1, "a", 1), put(2, 2, 3, "b", 2), put(1, 4, 5, "c", 2),
                       get(2, 6, 7, "c", 2)};
  CHECK_FALSE(check_linearizable(h).linearizable);
}

TEST_CASE("a compare-and-set applied twice is caught") {
  // One cas (retried by its client) bumps the version twice.
  std::vector<Op> h = {put(1, 0, 1, "a", 1), cas(2, 2, 3, "b", 1, true, 2), get(1, 4, 5, "b", 3)};
  CHECK_FALSE(check_linearizable(h).linearizable);
}

TEST_CASE("an operation with an unknown outcome may or may not have happened") {
  Op lost = put(2, 2, kNeverReturned, "b", 0);
  lost.output.reset();
  std::vector<Op> took_effect = {put(1, 0, 1, "a", 1), lost, get(1, 5, 6, "b", 2)};
  std::vector<Op> did_not = {put(1, 0, 1, "a", 1), lost, get(1, 5, 6, "a", 1)};
  CHECK(check_linearizable(took_effect).linearizable);
  CHECK(check_linearizable(did_not).linearizable);
}

TEST_CASE("the search stays fast on many concurrent clients") {
  std::vector<Op> h;
  int version = 0;
  for (int i = 0; i < 400; ++i) {
    // Five clients with overlapping puts, each read in a window after them.
    std::uint64_t t = static_cast<std::uint64_t>(i) * 10;
    h.push_back(put(i % 5, t, t + 25, std::to_string(i).insert(0, "v"), ++version));
  }
  LinearizabilityResult r = check_linearizable(h);
  CHECK(r.linearizable);
  CHECK_FALSE(r.exhausted);
}
