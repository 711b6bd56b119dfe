#include "kv/lease_clock.h"

#include <limits>
#include <variant>

#include "raft/assert.h"

namespace coord::kv {

namespace {

LeaseClock::Millis saturating_add(LeaseClock::Millis a, std::uint64_t b) {
  const LeaseClock::Millis max = std::numeric_limits<LeaseClock::Millis>::max();
  return a > max - b ? max : a + b;
}

}  // namespace

LeaseClock::Millis LeaseClock::settle(Millis now) {
  if (now > latest_) latest_ = now;
  return latest_;
}

void LeaseClock::arm(LeaseId id, Tracked& lease, Millis now) {
  disarm(id, lease);
  if (!leading_) return;
  lease.deadline = saturating_add(now, lease.ttl_ms);
  lease.armed = true;
  deadlines_.emplace(lease.deadline, id);
}

void LeaseClock::disarm(LeaseId id, Tracked& lease) {
  if (lease.armed) {
    const std::size_t erased = deadlines_.erase({lease.deadline, id});
    COORD_ASSERT(erased == 1, "an armed lease without its deadline");
  }
  lease.armed = false;
}

void LeaseClock::reset(const std::vector<Lease>& leases, Millis now) {
  now = settle(now);
  leases_.clear();
  deadlines_.clear();
  for (const Lease& lease : leases) {
    Tracked& tracked = leases_[lease.id];
    tracked.ttl_ms = lease.ttl_ms;
    tracked.keepalives = lease.keepalives;
    arm(lease.id, tracked, now);
  }
}

void LeaseClock::on_granted(const Lease& lease, Millis now) {
  now = settle(now);
  Tracked& tracked = leases_[lease.id];
  tracked.ttl_ms = lease.ttl_ms;
  tracked.keepalives = lease.keepalives;
  arm(lease.id, tracked, now);
}

void LeaseClock::on_keepalive_applied(const Lease& lease, Millis now) {
  now = settle(now);
  Tracked& tracked = leases_[lease.id];
  tracked.ttl_ms = lease.ttl_ms;
  // A retried keep-alive answered from its session brings an older count: keep the newest, or
  // the expiry would be refused as stale forever.
  if (lease.keepalives > tracked.keepalives) tracked.keepalives = lease.keepalives;
  arm(lease.id, tracked, now);
}

void LeaseClock::on_revoked(LeaseId id) {
  const auto it = leases_.find(id);
  if (it == leases_.end()) return;
  disarm(id, it->second);
  leases_.erase(it);
}

void LeaseClock::on_applied(const Body& body, const Result& result, Millis now) {
  LeaseId id = 0;
  if (const auto* grant = std::get_if<LeaseGrant>(&body)) {
    id = grant->id;
  } else if (const auto* revoke = std::get_if<LeaseRevoke>(&body)) {
    id = revoke->id;
  } else if (const auto* keepalive = std::get_if<LeaseKeepAlive>(&body)) {
    id = keepalive->id;
  } else if (const auto* expire = std::get_if<LeaseExpire>(&body)) {
    id = expire->id;
  } else {
    return;  // not a lease command
  }
  if (!result.ok()) {
    if (result.status.error == Error::LeaseNotFound) on_revoked(id);
    return;
  }
  if (std::holds_alternative<LeaseGrant>(body)) {
    on_granted(result.lease.lease, now);
  } else if (std::holds_alternative<LeaseKeepAlive>(body)) {
    on_keepalive_applied(result.lease.lease, now);
  } else {
    on_revoked(id);
  }
}

void LeaseClock::on_become_leader(Millis now) {
  now = settle(now);
  leading_ = true;
  deadlines_.clear();
  for (auto& [id, lease] : leases_) {
    lease.armed = false;
    arm(id, lease, now);
  }
}

void LeaseClock::on_lose_leadership() {
  leading_ = false;
  deadlines_.clear();
  for (auto& [id, lease] : leases_) lease.armed = false;
}

std::vector<LeaseExpire> LeaseClock::expired(Millis now, std::size_t max) {
  now = settle(now);
  std::vector<LeaseExpire> out;
  if (!leading_) return out;
  while (!deadlines_.empty() && out.size() < max) {
    const auto [deadline, id] = *deadlines_.begin();
    if (deadline > now) break;
    Tracked& lease = leases_.at(id);
    disarm(id, lease);
    out.push_back(LeaseExpire{id, lease.keepalives});
  }
  return out;
}

void LeaseClock::on_expire_dropped(LeaseId id) {
  const auto it = leases_.find(id);
  if (it == leases_.end() || !leading_ || it->second.armed) return;
  // Its deadline has passed already: the next expired() reports it again.
  it->second.armed = true;
  deadlines_.emplace(it->second.deadline, id);
}

std::optional<LeaseClock::Millis> LeaseClock::remaining(LeaseId id, Millis now) const {
  if (!leading_) return std::nullopt;
  const auto it = leases_.find(id);
  if (it == leases_.end()) return std::nullopt;
  const Millis at = now > latest_ ? now : latest_;
  const Tracked& lease = it->second;
  if (!lease.armed || lease.deadline <= at) return 0;  // ran out; its expiry is in flight
  return lease.deadline - at;
}

std::optional<LeaseClock::Millis> LeaseClock::next_deadline() const {
  if (deadlines_.empty()) return std::nullopt;
  return deadlines_.begin()->first;
}

}  // namespace coord::kv
