// A client session: a lease that the client keeps alive, and the client's own, conservative view
// of how long it may still trust it.
//
// The server side (kv/) expires a lease by the leader's clock, through the log, at least a TTL
// after the leader applied its latest keep-alive (kv/lease_clock.h). The client cannot see that
// clock; it only knows when it *sent* each keep-alive, which is before the leader applied it. So
// it trusts its lease until
//
//     deadline = send time of the latest acknowledged keep-alive (or of the grant) + TTL - margin
//
// where the margin (a percentage of the TTL plus a constant) covers the two clocks running at
// different rates. Past that deadline the session is lost, whatever the server may still think:
// this is ZooKeeper's session expiry seen from the client, and it is reported once, as an event.
// A keep-alive answered with LeaseNotFound (the lease was expired or revoked) ends it at once.
//
// Even so, a process can pause right after checking alive(); that is what fencing tokens are for
// (fencing/fenced_txn.h, fencing/guard.h). The session only makes the window small.
//
// Asynchronous, on one thread, through KvClient: time comes from its now_ms()/after() only.
// Callbacks never run inside the call that was given them. Sessions are made with make() and
// held by shared_ptr; timers and replies hold only a weak reference, so dropping the last
// reference stops everything (without revoking: the lease then expires on the server). The
// KvClient must outlive the session.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "fencing/kv_client.h"
#include "fencing/status.h"
#include "kv/command.h"
#include "kv/types.h"

namespace coord::fencing {

struct SessionOptions {
  Millis ttl_ms = 10'000;
  // Between keep-alives; 0 means ttl_ms / 3, so that two can be lost before the deadline.
  Millis keepalive_interval_ms = 0;
  // The drift margin: ttl_ms * drift_margin_percent / 100 + drift_margin_ms.
  std::uint32_t drift_margin_percent = 5;
  Millis drift_margin_ms = 50;
};

// The margin the options give, and whether they leave a positive trust window
// (ttl_ms - margin > 0) and a keep-alive interval shorter than it.
Millis drift_margin(const SessionOptions& options);
Millis keepalive_interval(const SessionOptions& options);
bool valid(const SessionOptions& options);

// Why a session ended (reported once to every listener).
enum class SessionEnd : std::uint8_t {
  DeadlinePassed = 0,  // no keep-alive was acknowledged in time: the lease can't be trusted
  LeaseNotFound = 1,   // the server said the lease is gone (expired or revoked)
  Closed = 2,          // close() was called
};

const char* to_string(SessionEnd end);

class Session : public std::enable_shared_from_this<Session> {
 public:
  using ListenerId = std::uint64_t;
  using Listener = std::function<void(SessionEnd)>;

  // Aborts on invalid options (a programming error, like a bad limit).
  static std::shared_ptr<Session> make(KvClient& client, SessionOptions options = {});

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Grants the lease and starts keeping it alive. Once only. A grant whose outcome is unknown
  // reports Unknown: if it was applied, that lease has no keys and simply expires.
  void open(std::function<void(const Status&)> done);

  // Ends the session (listeners hear Closed) and revokes the lease, deleting its keys. Done
  // reports Ok once the lease is gone (also when it already was), Unknown when the revoke's
  // outcome is unknown (the lease then expires on the server in its own time).
  void close(std::function<void(const Status&)> done);

  // Called once when the session ends, for whatever reason; in registration order.
  ListenerId on_end(Listener listener);
  void remove_listener(ListenerId id);

  // Open, not ended, and before the deadline *now* (even if the deadline timer has not fired).
  bool alive() const;
  bool ended() const { return phase_ == Phase::Ended; }
  std::optional<SessionEnd> end_reason() const { return end_; }
  // 0 until open succeeded.
  kv::LeaseId lease_id() const { return lease_.id; }
  // The lease as the state machine last reported it (grant or keep-alive): TTL, keep-alives.
  const kv::Lease& lease() const { return lease_; }
  // The time until which the client trusts the lease; nullopt before open succeeded.
  std::optional<Millis> deadline() const;
  // The time left before the deadline (0 once passed or when not alive).
  Millis remaining_ms() const;
  const SessionOptions& options() const { return options_; }
  KvClient& client() const { return client_; }

  // Numbers unique within this session, to name the keys of recipes using it. Together with
  // the lease id (never reused by the cluster) they are unique across the cluster.
  std::uint64_t next_unique() { return ++unique_; }

 private:
  enum class Phase : std::uint8_t { New, Opening, Open, Ended };

  Session(KvClient& client, SessionOptions options);

  void on_granted(Millis sent_at, const WriteOutcome& outcome,
                  const std::function<void(const Status&)>& done);
  void keepalive_tick();
  void on_keepalive(Millis sent_at, const WriteOutcome& outcome);
  void extend(Millis sent_at);
  void arm_deadline_timer();
  void on_deadline_timer();
  // Ends the session: no more keep-alives; listeners are told from a deferred callback.
  void end(SessionEnd why);

  KvClient& client_;
  SessionOptions options_;
  Phase phase_ = Phase::New;
  std::optional<SessionEnd> end_;
  kv::Lease lease_;
  // Only ever moves later: send time of an acknowledged keep-alive + TTL - margin.
  Millis deadline_ = 0;
  // At most one deadline timer and one keep-alive in flight: a slow cluster gets no pile-up.
  bool deadline_timer_armed_ = false;
  bool keepalive_in_flight_ = false;
  std::uint64_t unique_ = 0;
  ListenerId next_listener_ = 1;
  std::map<ListenerId, Listener> listeners_;
};

}  // namespace coord::fencing
