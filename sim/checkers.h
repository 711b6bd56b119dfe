// Safety and liveness checkers, evaluated while a run goes on. Each takes plain values (node ids,
// terms, indices, digests) rather than live objects, so a unit test can feed it fabricated
// histories and see it object; the simulation feeds it what it observes after every step.
// Each observe_/check_ call returns the first violation it finds, or nothing.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "raft/types.h"
#include "sim/hash_sm.h"
#include "sim/time.h"

namespace coord::raft {
class Node;
}

namespace coord::sim {

// Invariant names, as printed after "invariant=" (scripts and tests match on them).
namespace invariant {
inline constexpr const char* kElectionSafety = "election-safety";
inline constexpr const char* kLogMatching = "log-matching";
inline constexpr const char* kLeaderCompleteness = "leader-completeness";
inline constexpr const char* kStateMachineSafety = "state-machine-safety";
inline constexpr const char* kCommitMonotonic = "commit-monotonic";
inline constexpr const char* kCommitCurrentTerm = "commit-current-term";
inline constexpr const char* kAckedDurability = "acked-durability";
inline constexpr const char* kLinearizableRead = "linearizable-read";
inline constexpr const char* kCoreInvariants = "core-invariants";
inline constexpr const char* kReadyContract = "ready-contract";
inline constexpr const char* kLiveness = "liveness";
// The kv and watch workloads (sim/workload_kv.h, sim/workload_watch.h, sim/kv_reference.h).
inline constexpr const char* kKvLinearizable = "kv-linearizable";
inline constexpr const char* kKvExactlyOnce = "kv-exactly-once";
inline constexpr const char* kWatchDelivery = "watch-delivery";
// The locks workload (sim/workload_locks.h) and the lease checks of every kv workload.
inline constexpr const char* kFencingMonotonic = "fencing-monotonic";
inline constexpr const char* kMutualExclusion = "mutual-exclusion";
inline constexpr const char* kLeaseNeverEarly = "lease-never-early";
inline constexpr const char* kEphemeralCleanup = "ephemeral-cleanup";
inline constexpr const char* kSimulatorLimit = "simulator-limit";
}  // namespace invariant

struct Violation {
  std::string invariant;
  std::string message;
};

using Verdict = std::optional<Violation>;

// One node's log as the checkers see it: entries[k] is at index snapshot_index + 1 + k.
struct LogView {
  raft::NodeId node = raft::kNoNode;
  raft::Index snapshot_index = 0;
  raft::Term snapshot_term = 0;
  std::vector<EntryDigest> entries;

  raft::Index first_index() const { return snapshot_index + 1; }
  raft::Index last_index() const { return snapshot_index + entries.size(); }
  // nullptr outside [first_index(), last_index()].
  const EntryDigest* at(raft::Index index) const;
};

LogView view_of(const raft::Node& node);

// At most one leader per term.
class ElectionSafety {
 public:
  Verdict observe_leader(raft::NodeId node, raft::Term term);

 private:
  std::map<raft::Term, raft::NodeId> leaders_;
};

// Log matching: if two logs hold an entry with the same index and term, they hold identical
// entries there and at every index before it (as far as both still have them).
Verdict check_log_matching(const std::vector<LogView>& logs);

// Leader completeness: a leader of term T holds every entry committed in a term before T.
// A node that has an entry committed while at term t proves it was committed at term <= t.
class LeaderCompleteness {
 public:
  void observe_committed(raft::Index index, EntryDigest entry, raft::Term known_at_term);
  // `log` is the new leader's log as it became leader of `term`.
  Verdict observe_new_leader(const LogView& log, raft::Term term) const;

 private:
  struct Committed {
    EntryDigest entry;
    raft::Term known_at_term;
  };
  std::map<raft::Index, Committed> committed_;
};

// State-machine safety: every replica applies the same entry at the same index, and so passes
// through the same states.
class StateMachineSafety {
 public:
  Verdict observe_applied(raft::NodeId node, raft::Index index, EntryDigest entry);
  // The state after applying (or restoring a snapshot) up to state.index.
  Verdict observe_state(raft::NodeId node, const StateDigest& state);

 private:
  std::map<raft::Index, std::pair<raft::NodeId, EntryDigest>> entries_;
  std::map<raft::Index, std::pair<raft::NodeId, StateDigest>> states_;
};

// A node's commit index never goes back while it runs. `incarnation` changes at each restart,
// which may legitimately restart from the durable commit.
class CommitMonotonic {
 public:
  Verdict observe_commit(raft::NodeId node, std::uint64_t incarnation, raft::Index commit);

 private:
  std::map<raft::NodeId, std::pair<std::uint64_t, raft::Index>> last_;
};

// Raft §5.4.2 (Figure 8): a leader advances its commit index only to an entry of its own term;
// earlier entries become committed only under one. An entry of an earlier term on a majority
// can still be overwritten, so committing it by counting replicas loses data in rare runs, while
// this rule is broken in every run that does it. `commit_term` is the term of the entry at
// `commit` in the node's log (nullopt when compacted away).
class CommitCurrentTerm {
 public:
  Verdict observe(raft::NodeId node, std::uint64_t incarnation, raft::Role role, raft::Term term,
                  raft::Index commit, std::optional<raft::Term> commit_term);

 private:
  struct Seen {
    std::uint64_t incarnation;
    raft::Role role;
    raft::Term term;
    raft::Index commit;
  };
  std::map<raft::NodeId, Seen> last_;
};

// No acknowledged proposal is lost: an acked command stays at its index on every replica, and by
// the end of the run every replica has applied past every ack.
class AckedDurability {
 public:
  // The proposing node applied `command` at `index` and told its client.
  Verdict observe_ack(raft::NodeId node, raft::Index index, EntryDigest entry, std::string_view command);
  Verdict observe_applied(raft::NodeId node, raft::Index index, EntryDigest entry) const;
  // (node, applied index) of every replica at the end of the run.
  Verdict check_final(const std::vector<std::pair<raft::NodeId, raft::Index>>& applied) const;

  raft::Index acked_max() const { return acked_.empty() ? 0 : acked_.rbegin()->first; }
  std::size_t acked() const { return acked_.size(); }

 private:
  struct Ack {
    raft::NodeId node;
    EntryDigest entry;
    std::string command;
  };
  std::map<raft::Index, Ack> acked_;
};

// A ReadIndex read must see every write acknowledged before it was asked for:
// `acked_max_at_request` is the highest acked index when the node accepted the read request.
Verdict check_read(raft::NodeId node, std::uint64_t request_id, raft::Index read_index,
                   raft::Index acked_max_at_request);

// Turns raft::check_invariants() output into a violation.
Verdict check_core(raft::NodeId node, const std::vector<std::string>& problems);

struct ReplicaSummary {
  raft::NodeId node = raft::kNoNode;
  bool up = false;  // running and not paused
  raft::Index commit = 0;
  raft::Index applied = 0;
  StateDigest state;
};

// Liveness: once faults stop and everything heals, some proposal made after the heal commits
// within `commit_deadline_us`, and by the end all replicas converge.
class Liveness {
 public:
  explicit Liveness(Micros commit_deadline_us) : commit_deadline_us_(commit_deadline_us) {}

  void observe_heal(Micros at) { healed_at_ = at; }
  void observe_ack(Micros proposed_at, Micros acked_at);
  // Call at heal + deadline (or later).
  Verdict check_progress(Micros now) const;
  static Verdict check_converged(const std::vector<ReplicaSummary>& replicas);

  std::optional<Micros> first_commit_after_heal() const { return first_ack_after_heal_; }

 private:
  Micros commit_deadline_us_;
  std::optional<Micros> healed_at_;
  std::optional<Micros> first_ack_after_heal_;
};

// A lock holder as the protected resource sees it: which client, with which token (one
// acquisition; the same client acquiring again is another holder).
struct Holder {
  std::uint64_t client = 0;
  std::uint64_t token = 0;

  auto operator<=>(const Holder&) const = default;
};

// The storage behind a fencing Guard never accepts, for one resource, a token lower than one it
// has already accepted. Checked on what the storage accepted, independently of the Guard.
class FencingMonotonic {
 public:
  Verdict observe_accepted(std::string_view resource, Holder holder);

 private:
  std::map<std::string, Holder, std::less<>> highest_;
};

// Accepted writes of different holders never interleave, per resource: once another holder's
// write was accepted after holder A's, no write of A is ever accepted again.
class MutualExclusion {
 public:
  Verdict observe_accepted(std::string_view resource, Holder holder, Micros at);

 private:
  struct Resource {
    Holder current;
    struct Succeeded {
      Holder by;
      Micros at = 0;
    };
    std::map<Holder, Succeeded> finished;  // holder -> who took over from it, when
  };
  std::map<std::string, Resource, std::less<>> resources_;
};

}  // namespace coord::sim
