// A leader's per-follower backoff for snapshot transfers that a follower refused whole.
//
// A follower that holds nothing of a transfer past its start (it answers a chunk after the
// first with "I hold nothing": it refused the whole file, or restarted) gets the whole file
// again from its first byte (raft/node.cc); a snapshot in one chunk gets no answer at all, and
// the core's resend of it with no progress is the refusal (net/replica_host.cc,
// hold_refused_snapshot). When the file is intact and the follower still
// cannot take it (a format it cannot read, a disk with no room), that would go on forever, one
// whole file per election timeout. So the leader spaces the transfers to that follower: the
// first refusal is resent at once (a follower that merely restarted is not delayed), after
// that the interval between transfers doubles from the core's own resend interval (one
// election timeout) up to a cap. The chunks to a follower on hold are dropped like messages
// lost on the wire; the core resends them after its idle timeout. Each follower has its own
// backoff, so one refusing follower delays nobody else. A follower that took a snapshot or
// entries since (its match index grew) starts over.
#pragma once

#include <cstdint>
#include <map>

#include "raft/types.h"

namespace coord::net {

class SnapshotRefusalBackoff {
 public:
  // `base_ticks`: the core's resend interval (its idle timeout, election_ticks); `max_ticks`:
  // the longest interval between two transfers to one follower.
  SnapshotRefusalBackoff(std::uint64_t base_ticks, std::uint64_t max_ticks);

  // `follower`, whose match index is `match`, refused a transfer at tick `now`.
  void refused(raft::NodeId follower, raft::Index match, std::uint64_t now);
  // The follower's match index is now `match`: above the one at its last refusal, it took a
  // snapshot or entries since, and its backoff starts over.
  void progressed(raft::NodeId follower, raft::Index match);
  // Whether chunks to `follower` are held back at tick `now`.
  bool holding(raft::NodeId follower, std::uint64_t now) const;
  // Whether `follower` refused a transfer and has not progressed since.
  bool refusing(raft::NodeId follower) const { return followers_.count(follower) != 0; }
  // Consecutive refusals of `follower` (0 once it progressed).
  std::uint32_t refusals(raft::NodeId follower) const;
  // Ticks the follower is held after its latest refusal.
  std::uint64_t hold_ticks(raft::NodeId follower) const;
  void forget(raft::NodeId follower) { followers_.erase(follower); }
  // Not leading any more: the next leader term starts with no backoff.
  void clear() { followers_.clear(); }
  const auto& followers() const { return followers_; }

  struct Follower {
    std::uint32_t refusals = 0;
    raft::Index match = 0;  // at the latest refusal
    std::uint64_t hold_until = 0;
  };

 private:
  std::uint64_t base_ticks_;
  std::uint64_t max_ticks_;
  std::map<raft::NodeId, Follower> followers_;
};

}  // namespace coord::net
