#include "fencing/session.h"

#include <algorithm>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "raft/assert.h"

namespace coord::fencing {

Millis drift_margin(const SessionOptions& options) {
  return options.ttl_ms * static_cast<Millis>(options.drift_margin_percent) / 100 +
         options.drift_margin_ms;
}

Millis keepalive_interval(const SessionOptions& options) {
  return options.keepalive_interval_ms > 0 ? options.keepalive_interval_ms : options.ttl_ms / 3;
}

bool valid(const SessionOptions& options) {
  if (options.ttl_ms <= 0 || options.drift_margin_ms < 0) return false;
  if (options.drift_margin_percent >= 100) return false;
  const Millis window = options.ttl_ms - drift_margin(options);
  const Millis interval = keepalive_interval(options);
  return window > 0 && interval > 0 && interval < window;
}

const char* to_string(SessionEnd end) {
  switch (end) {
    case SessionEnd::DeadlinePassed: return "deadline-passed";
    case SessionEnd::LeaseNotFound: return "lease-not-found";
    case SessionEnd::Closed: return "closed";
  }
  return "?";
}

std::shared_ptr<Session> Session::make(KvClient& client, SessionOptions options) {
  COORD_ASSERT(valid(options), "session options leave no trust window (see SessionOptions)");
  return std::shared_ptr<Session>(new Session(client, options));
}

Session::Session(KvClient& client, SessionOptions options)
    : client_(client), options_(options) {}

void Session::open(std::function<void(const Status&)> done) {
  if (phase_ != Phase::New) {
    client_.after(0, [done] { done(make_status(Code::Busy, "a session is opened once")); });
    return;
  }
  phase_ = Phase::Opening;
  const Millis sent_at = client_.now_ms();
  client_.write(kv::LeaseGrant{0, static_cast<std::uint64_t>(options_.ttl_ms)},
                [weak = weak_from_this(), sent_at, done](const WriteOutcome& outcome) {
                  if (auto self = weak.lock()) self->on_granted(sent_at, outcome, done);
                });
}

void Session::on_granted(Millis sent_at, const WriteOutcome& outcome,
                         const std::function<void(const Status&)>& done) {
  const bool granted = outcome.result && outcome.result->ok();
  const Millis deadline = sent_at + options_.ttl_ms - drift_margin(options_);
  const bool closed = phase_ != Phase::Opening;
  if (granted && (closed || client_.now_ms() >= deadline)) {
    // Closed meanwhile, or answered too late to be trusted at all: give the lease back.
    client_.write(kv::LeaseRevoke{outcome.result->lease.lease.id}, [](const WriteOutcome&) {});
  }
  if (closed) {
    done(make_status(Code::SessionLost, "the session was closed while opening"));
    return;
  }
  if (granted && client_.now_ms() >= deadline) {
    phase_ = Phase::Ended;
    done(make_status(Code::SessionLost, "the grant was answered after the session's deadline"));
    return;
  }
  if (!outcome.result) {
    phase_ = Phase::Ended;
    done(make_status(Code::Unknown, "lease grant: " + outcome.error));
    return;
  }
  if (!outcome.result->ok()) {
    phase_ = Phase::Ended;
    done(kv_failure(outcome.result->status));
    return;
  }
  lease_ = outcome.result->lease.lease;
  COORD_ASSERT(lease_.id != 0, "a granted lease has an id");
  deadline_ = deadline;
  phase_ = Phase::Open;
  arm_deadline_timer();
  client_.after(keepalive_interval(options_), [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->keepalive_tick();
  });
  done(Status{});
}

void Session::keepalive_tick() {
  if (phase_ != Phase::Open) return;
  if (!keepalive_in_flight_) {
    keepalive_in_flight_ = true;
    const Millis sent_at = client_.now_ms();
    client_.write(kv::LeaseKeepAlive{lease_.id},
                  [weak = weak_from_this(), sent_at](const WriteOutcome& outcome) {
                    if (auto self = weak.lock()) self->on_keepalive(sent_at, outcome);
                  });
  }
  client_.after(keepalive_interval(options_), [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->keepalive_tick();
  });
}

void Session::on_keepalive(Millis sent_at, const WriteOutcome& outcome) {
  keepalive_in_flight_ = false;
  if (phase_ != Phase::Open || !outcome.result) return;  // unknown: the next tick tries again
  const kv::Result& result = *outcome.result;
  if (result.status.error == kv::Error::LeaseNotFound) {
    end(SessionEnd::LeaseNotFound);
    return;
  }
  if (!result.ok()) return;
  lease_ = result.lease.lease;
  extend(sent_at);
}

void Session::extend(Millis sent_at) {
  // A deadline that has passed stays passed, even if the timer has not fired yet: alive()
  // already answered false, and a lost session never comes back.
  if (client_.now_ms() >= deadline_) {
    end(SessionEnd::DeadlinePassed);
    return;
  }
  deadline_ = std::max(deadline_, sent_at + options_.ttl_ms - drift_margin(options_));
}

void Session::arm_deadline_timer() {
  // The deadline only moves later, so an armed timer is never late: it fires at or before the
  // current deadline and re-arms itself.
  if (deadline_timer_armed_) return;
  deadline_timer_armed_ = true;
  client_.after(std::max<Millis>(0, deadline_ - client_.now_ms()), [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->on_deadline_timer();
  });
}

void Session::on_deadline_timer() {
  deadline_timer_armed_ = false;
  if (phase_ != Phase::Open) return;
  if (client_.now_ms() >= deadline_) {
    end(SessionEnd::DeadlinePassed);
  } else {
    arm_deadline_timer();
  }
}

void Session::end(SessionEnd why) {
  if (phase_ == Phase::Ended) return;
  phase_ = Phase::Ended;
  end_ = why;
  if (why == SessionEnd::DeadlinePassed) {
    // The lease may still be alive on the server; since nobody here trusts it any more, its
    // keys (our locks) should go now rather than when the leader's countdown runs out.
    client_.write(kv::LeaseRevoke{lease_.id}, [](const WriteOutcome&) {});
  }
  // Deferred, so that no listener runs inside a caller's close(). A strong reference: the
  // event is delivered even if the owner drops the session meanwhile.
  client_.after(0, [self = shared_from_this(), why] {
    std::map<ListenerId, Listener> listeners;
    listeners.swap(self->listeners_);
    for (auto& [id, listener] : listeners) listener(why);
  });
}

void Session::close(std::function<void(const Status&)> done) {
  const Phase was = phase_;
  end(SessionEnd::Closed);
  if (was == Phase::New || was == Phase::Opening || lease_.id == 0) {
    // Nothing granted yet; a grant still in flight is revoked when it is answered.
    client_.after(0, [done] { done(Status{}); });
    return;
  }
  client_.write(kv::LeaseRevoke{lease_.id}, [done](const WriteOutcome& outcome) {
    if (!outcome.result) {
      done(make_status(Code::Unknown, "lease revoke: " + outcome.error));
    } else if (outcome.result->ok() ||
               outcome.result->status.error == kv::Error::LeaseNotFound) {
      done(Status{});
    } else {
      done(kv_failure(outcome.result->status));
    }
  });
}

Session::ListenerId Session::on_end(Listener listener) {
  const ListenerId id = next_listener_++;
  if (phase_ == Phase::Ended && end_) {
    // Already over: still heard once, like a listener registered just before the end.
    client_.after(0, [listener = std::move(listener), why = *end_] { listener(why); });
    return id;
  }
  listeners_.emplace(id, std::move(listener));
  return id;
}

void Session::remove_listener(ListenerId id) { listeners_.erase(id); }

bool Session::alive() const {
  return phase_ == Phase::Open && client_.now_ms() < deadline_;
}

std::optional<Millis> Session::deadline() const {
  if (lease_.id == 0) return std::nullopt;
  return deadline_;
}

Millis Session::remaining_ms() const {
  if (!alive()) return 0;
  return deadline_ - client_.now_ms();
}

}  // namespace coord::fencing
