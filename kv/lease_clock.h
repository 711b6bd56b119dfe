// The leader's lease countdowns. The state machine holds leases without time (a TTL and a
// keep-alive count, kv/command.h); this is where time comes in, on the host's side of the seam,
// and still deterministically: the host passes its monotonic clock in as `now` (milliseconds)
// on every call, and nothing here reads a clock.
//
// How a host uses it (every replica keeps one, so a new leader knows every lease):
//   - at startup and after a snapshot restore: reset(state_machine.leases().value, now);
//   - after applying each entry: on_applied(command.body, result, now);
//   - on winning an election: on_become_leader(now); on losing leadership: on_lose_leadership();
//   - while leader, on a timer (next_deadline() says when): propose LeaseExpire for each entry of
//     expired(now); if a proposal is dropped while still leading, on_expire_dropped(id).
//
// The guarantee: a lease never expires less than its TTL after the latest of its grant, its
// last keep-alive applied, and the start of the current leadership. A new leader restarts every
// countdown, since it cannot know how long its predecessor had been counting; so a lease may
// outlive its TTL (by up to an election and a TTL), never the other way round. An expiry that
// races a keep-alive is settled by the log: LeaseExpire carries the keep-alive count it saw and
// the state machine refuses it (LeaseRenewed) if a keep-alive was applied in between.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "kv/command.h"
#include "kv/types.h"

namespace coord::kv {

class LeaseClock {
 public:
  using Millis = std::uint64_t;  // the host's monotonic clock

  // Forgets everything it knew and tracks `leases` (restarting their countdowns at `now` when
  // leading).
  void reset(const std::vector<Lease>& leases, Millis now);

  // What the applied log says about leases. Safe to call on followers: only the leader counts.
  void on_granted(const Lease& lease, Millis now);
  // Restarts the lease's countdown (and learns its keep-alive count: the highest one seen).
  void on_keepalive_applied(const Lease& lease, Millis now);
  // Revoked or expired: forgotten.
  void on_revoked(LeaseId id);
  // Routes the result of one applied command to the calls above; other commands are ignored,
  // and so are failures, except LeaseNotFound, which forgets the lease.
  void on_applied(const Body& body, const Result& result, Millis now);

  // Leadership. A new leader restarts every known lease's countdown at `now`.
  void on_become_leader(Millis now);
  void on_lose_leadership();
  bool leading() const { return leading_; }

  // Leader only (empty otherwise): the leases whose countdown ran out by `now`, earliest deadline
  // first (then by id), at most `max`, as the LeaseExpire bodies to propose. Each is reported
  // once, until a keep-alive or a new leadership re-arms it or on_expire_dropped asks again.
  std::vector<LeaseExpire> expired(Millis now, std::size_t max = SIZE_MAX);
  // The LeaseExpire for `id` was not proposed after all (e.g. the proposal was refused): report
  // it again from the next expired() on.
  void on_expire_dropped(LeaseId id);

  // Leader only: the time left on the lease's countdown (0 once it ran out); nullopt for an
  // unknown lease or when not leading.
  std::optional<Millis> remaining(LeaseId id, Millis now) const;
  // The earliest deadline still to be reported, to set a timer by; nullopt when none.
  std::optional<Millis> next_deadline() const;

  bool contains(LeaseId id) const { return leases_.contains(id); }
  std::size_t size() const { return leases_.size(); }

 private:
  struct Tracked {
    std::uint64_t ttl_ms = 0;
    std::uint64_t keepalives = 0;
    Millis deadline = 0;
    // Counting down (leader only); false once reported, until re-armed.
    bool armed = false;
  };

  // `now`, never below an earlier `now`: a host clock that steps back only makes leases
  // longer.
  Millis settle(Millis now);
  void arm(LeaseId id, Tracked& lease, Millis now);
  void disarm(LeaseId id, Tracked& lease);

  bool leading_ = false;
  Millis latest_ = 0;
  std::map<LeaseId, Tracked> leases_;
  std::set<std::pair<Millis, LeaseId>> deadlines_;  // the armed leases, earliest first
};

}  // namespace coord::kv
