// The committed history of a kv run, as one fault-free replica would see it: a separate
// kv::StateMachine fed every committed entry exactly once, in index order, as the simulation
// observes the replicas apply them. The first replica to reach an index always applies that
// entry itself (a snapshot only ever carries state some replica built entry by entry), so the
// reference sees every index, in order, the moment it is first applied anywhere.
//
// Checkers and workloads read from it: every watch event ever committed (what each watcher must
// see), the revision at each moment, the compactions, and which write of which client session
// took effect, when, and with what result (what a client that gave up could not learn). It also
// checks exactly-once itself: a session's sequence number that comes back through the log must
// get its first result again, and an older one must be refused as stale.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kv/limits.h"
#include "kv/memory_storage.h"
#include "kv/state_machine.h"
#include "raft/types.h"
#include "sim/checkers.h"
#include "sim/time.h"

namespace coord::sim {

class KvReference {
 public:
  explicit KvReference(const kv::Limits& limits);
  KvReference(const KvReference&) = delete;
  KvReference& operator=(const KvReference&) = delete;

  // A replica applied `entry` at virtual time `at`. Indices already taken are ignored (the
  // state-machine-safety checker compares them); a gap is a simulator bug and reported.
  Verdict observe(const raft::Entry& entry, Micros at);

  const kv::StateMachine& state() const { return *sm_; }
  raft::Index applied_index() const { return sm_->applied_index(); }
  kv::Revision revision() const { return sm_->revision(); }
  // The revision everything applied by virtual time `at` had reached.
  kv::Revision revision_at(Micros at) const;

  // Every event, in (revision, path) order, with the previous node.
  const std::vector<kv::Event>& events() const { return events_; }
  // The position in events() of the first event at or after `revision`.
  std::size_t first_event_from(kv::Revision revision) const;
  // A Compact to exactly `revision` was applied.
  bool compacted_to(kv::Revision revision) const { return compactions_.contains(revision); }

  // The first (the only effective) execution of a session's write.
  struct Execution {
    kv::Result result;
    Micros at = 0;
    raft::Index index = 0;
  };
  const Execution* execution(kv::SessionId session, std::uint64_t sequence) const;

  // ephemeral-cleanup's work so far: leases whose end was checked, and the keys they had.
  std::uint64_t lease_ends_checked() const { return lease_ends_checked_; }
  std::uint64_t lease_keys_checked() const { return lease_keys_checked_; }

 private:
  Verdict check_session(const kv::Command& command, const kv::Result& result, raft::Index index, Micros at);
  // ephemeral-cleanup: once a lease's revoke or expiry applied, none of its keys exist. The keys
  // of each lease are followed from the events (not from the state machine's own lease index).
  void follow_lease_keys(const kv::Event& event);
  Verdict check_lease_ended(kv::LeaseId lease, const std::set<std::string>& keys_before, raft::Index index);

  kv::MemoryStorage storage_;
  std::unique_ptr<kv::StateMachine> sm_;
  kv::WatchId all_ = 0;  // a watcher on the whole tree, from revision 1, with previous values
  std::vector<kv::Event> events_;
  std::vector<std::pair<Micros, kv::Revision>> revisions_;  // (when, revision reached), in order
  std::set<kv::Revision> compactions_;
  std::map<kv::LeaseId, std::set<std::string>> lease_keys_;
  std::uint64_t lease_ends_checked_ = 0;
  std::uint64_t lease_keys_checked_ = 0;
  std::map<kv::SessionId, std::uint64_t> session_last_;  // highest sequence executed
  std::map<std::pair<kv::SessionId, std::uint64_t>, Execution> executions_;
};

}  // namespace coord::sim
