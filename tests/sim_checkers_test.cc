// Each simulator checker must object to a fabricated violation and accept the matching
// legitimate history: a checker that cannot fail proves nothing.
#include <doctest/doctest.h>

#include "sim/checkers.h"

using namespace coord::sim;
using coord::raft::Index;
using coord::raft::NodeId;
using coord::raft::Term;

namespace {

EntryDigest entry(Term term, std::uint64_t hash) { return EntryDigest{term, hash}; }

LogView log_of(NodeId node, Index snapshot_index, Term snapshot_term,
               std::vector<EntryDigest> entries) {
  LogView v;
  v.node = node;
  v.snapshot_index = snapshot_index;
  v.snapshot_term = snapshot_term;
  v.entries = std::move(entries);
  return v;
}

}  // namespace

TEST_CASE("election safety: two leaders in one term are caught") {
  ElectionSafety c;
  CHECK_FALSE(c.observe_leader(1, 3).has_value());
  CHECK_FALSE(c.observe_leader(1, 3).has_value());  // the same leader seen again is fine
  CHECK_FALSE(c.observe_leader(2, 4).has_value());
  Verdict v = c.observe_leader(3, 4);
  REQUIRE(v.has_value());
  CHECK(v->invariant == invariant::kElectionSafety);
}

TEST_CASE("log matching: same index and term with different entries or prefixes is caught") {
  LogView a = log_of(1, 0, 0, {entry(1, 10), entry(1, 11), entry(2, 12)});
  LogView b = log_of(2, 0, 0, {entry(1, 10), entry(1, 11), entry(2, 12), entry(2, 13)});
  CHECK_FALSE(check_log_matching({a, b}).has_value());

  LogView diverged_entry = log_of(3, 0, 0, {entry(1, 10), entry(1, 11), entry(2, 99)});
  Verdict v1 = check_log_matching({a, diverged_entry});
  REQUIRE(v1.has_value());
  CHECK(v1->invariant == invariant::kLogMatching);

  // Same (index, term) at the end, but an earlier entry differs.
  LogView diverged_prefix = log_of(4, 0, 0, {entry(1, 10), entry(1, 77), entry(2, 12)});
  Verdict v2 = check_log_matching({a, diverged_prefix});
  REQUIRE(v2.has_value());
  CHECK(v2->invariant == invariant::kLogMatching);
}

TEST_CASE("leader completeness: a new leader missing a committed entry is caught") {
  LeaderCompleteness c;
  c.observe_committed(1, entry(1, 10), 1);
  c.observe_committed(2, entry(1, 11), 1);
  CHECK_FALSE(c.observe_new_leader(log_of(2, 0, 0, {entry(1, 10), entry(1, 11)}), 2).has_value());
  Verdict missing = c.observe_new_leader(log_of(3, 0, 0, {entry(1, 10)}), 2);
  REQUIRE(missing.has_value());
  CHECK(missing->invariant == invariant::kLeaderCompleteness);
  Verdict different = c.observe_new_leader(log_of(3, 0, 0, {entry(1, 10), entry(2, 55)}), 3);
  REQUIRE(different.has_value());
  CHECK(different->invariant == invariant::kLeaderCompleteness);
}

TEST_CASE("state-machine safety: different entries applied at one index are caught") {
  StateMachineSafety c;
  CHECK_FALSE(c.observe_applied(1, 5, entry(2, 42)).has_value());
  CHECK_FALSE(c.observe_applied(2, 5, entry(2, 42)).has_value());
  Verdict v = c.observe_applied(3, 5, entry(3, 43));
  REQUIRE(v.has_value());
  CHECK(v->invariant == invariant::kStateMachineSafety);

  CHECK_FALSE(c.observe_state(1, StateDigest{5, 3, 1234}).has_value());
  Verdict s = c.observe_state(2, StateDigest{5, 3, 999});
  REQUIRE(s.has_value());
  CHECK(s->invariant == invariant::kStateMachineSafety);
}

TEST_CASE("commit monotonic: a commit index going back within one incarnation is caught") {
  CommitMonotonic c;
  CHECK_FALSE(c.observe_commit(1, 1, 5).has_value());
  CHECK_FALSE(c.observe_commit(1, 1, 7).has_value());
  CHECK_FALSE(c.observe_commit(1, 2, 3).has_value());  // a restart may start lower
  Verdict v = c.observe_commit(1, 2, 2);
  REQUIRE(v.has_value());
  CHECK(v->invariant == invariant::kCommitMonotonic);
}

TEST_CASE("acked durability: an acknowledged proposal replaced or never applied is caught") {
  AckedDurability c;
  CHECK_FALSE(c.observe_ack(1, 4, entry(2, 40), "c1-1").has_value());
  CHECK_FALSE(c.observe_applied(2, 4, entry(2, 40)).has_value());
  Verdict replaced = c.observe_applied(3, 4, entry(3, 41));
  REQUIRE(replaced.has_value());
  CHECK(replaced->invariant == invariant::kAckedDurability);

  CHECK_FALSE(c.check_final({{1, 4}, {2, 9}}).has_value());
  Verdict behind = c.check_final({{1, 4}, {2, 3}});
  REQUIRE(behind.has_value());
  CHECK(behind->invariant == invariant::kAckedDurability);
}

TEST_CASE("linearizable read: a read index below an earlier acknowledged write is caught") {
  CHECK_FALSE(check_read(1, 7, 10, 10).has_value());
  Verdict v = check_read(1, 7, 9, 10);
  REQUIRE(v.has_value());
  CHECK(v->invariant == invariant::kLinearizableRead);
}

TEST_CASE("core invariants: any problem the core reports becomes a violation") {
  CHECK_FALSE(check_core(1, {}).has_value());
  Verdict v = check_core(1, {"commit 9 beyond last index 8"});
  REQUIRE(v.has_value());
  CHECK(v->invariant == invariant::kCoreInvariants);
}

TEST_CASE("liveness: no commit after the heal, or replicas that do not converge, are caught") {
  Liveness slow(5'000'000);
  slow.observe_heal(10'000'000);
  CHECK_FALSE(slow.check_progress(12'000'000).has_value());  // deadline not reached yet
  Verdict v = slow.check_progress(16'000'000);
  REQUIRE(v.has_value());
  CHECK(v->invariant == invariant::kLiveness);

  Liveness fine(5'000'000);
  fine.observe_heal(10'000'000);
  fine.observe_ack(11'000'000, 11'500'000);
  CHECK_FALSE(fine.check_progress(16'000'000).has_value());

  ReplicaSummary a{1, true, 20, 20, StateDigest{20, 15, 7}};
  ReplicaSummary b{2, true, 20, 20, StateDigest{20, 15, 7}};
  ReplicaSummary c{3, true, 18, 18, StateDigest{18, 14, 6}};
  CHECK_FALSE(Liveness::check_converged({a, b}).has_value());
  Verdict diverged = Liveness::check_converged({a, b, c});
  REQUIRE(diverged.has_value());
  CHECK(diverged->invariant == invariant::kLiveness);
}
