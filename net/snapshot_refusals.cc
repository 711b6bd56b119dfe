#include "net/snapshot_refusals.h"

#include <algorithm>
#include <limits>

namespace coord::net {

namespace {

// base * 2^(refusals - 1), capped, with no overflow however many refusals.
std::uint64_t interval_for(std::uint32_t refusals, std::uint64_t base, std::uint64_t max) {
  std::uint64_t interval = base;
  for (std::uint32_t n = 1; n < refusals && interval < max; ++n) {
    interval = interval > max / 2 ? max : interval * 2;
  }
  return std::min(interval, max);
}

}  // namespace

SnapshotRefusalBackoff::SnapshotRefusalBackoff(std::uint64_t base_ticks, std::uint64_t max_ticks)
    : base_ticks_(std::max<std::uint64_t>(1, base_ticks)), max_ticks_(std::max(base_ticks_, max_ticks)) {}

void SnapshotRefusalBackoff::refused(raft::NodeId follower, raft::Index match, std::uint64_t now) {
  Follower& f = followers_[follower];
  if (f.refusals > 0 && match > f.match) f.refusals = 0;  // it progressed in between
  ++f.refusals;
  f.match = match;
  // The n-th refusal in a row waits for an interval of base * 2^(n-1) between transfers, of
  // which the core's idle timeout (base) passes anyway before it resends: the first waits
  // nothing more, the second one more base, the third three, ... up to the cap.
  const std::uint64_t hold = interval_for(f.refusals, base_ticks_, max_ticks_) - base_ticks_;
  f.hold_until = hold > std::numeric_limits<std::uint64_t>::max() - now ? std::numeric_limits<std::uint64_t>::max()
                                                                         : now + hold;
}

void SnapshotRefusalBackoff::progressed(raft::NodeId follower, raft::Index match) {
  auto it = followers_.find(follower);
  if (it != followers_.end() && match > it->second.match) followers_.erase(it);
}

bool SnapshotRefusalBackoff::holding(raft::NodeId follower, std::uint64_t now) const {
  auto it = followers_.find(follower);
  return it != followers_.end() && now < it->second.hold_until;
}

std::uint32_t SnapshotRefusalBackoff::refusals(raft::NodeId follower) const {
  auto it = followers_.find(follower);
  return it == followers_.end() ? 0 : it->second.refusals;
}

std::uint64_t SnapshotRefusalBackoff::hold_ticks(raft::NodeId follower) const {
  const std::uint32_t n = refusals(follower);
  return n == 0 ? 0 : interval_for(n, base_ticks_, max_ticks_) - base_ticks_;
}

}  // namespace coord::net
