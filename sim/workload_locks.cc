#include "sim/workload_locks.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

namespace coord::sim {

// ---------------------------------------------------------------------------------------------
// The client process

void ClientProcess::schedule(Micros at, std::function<void()> action) {
  world_.schedule(at, [this, action = std::move(action)]() mutable { run(std::move(action)); });
}

void ClientProcess::run(std::function<void()> action) {
  if (paused()) {
    // Woken later than planned if the pause was extended meanwhile: run() checks again.
    world_.schedule(paused_until_, [this, action = std::move(action)]() mutable { run(std::move(action)); });
    return;
  }
  action();
}

void ClientProcess::pause(Micros duration_us) {
  paused_until_ = std::max(paused_until_, world_.now() + duration_us);
}

// ---------------------------------------------------------------------------------------------
// The workload

struct LocksWorkload::Client {
  std::uint64_t id = 0;
  std::unique_ptr<ClientProcess> process;
  std::unique_ptr<SimKvClient> kv;  // declared before the recipes, which must not outlive it
  Rng rng{0};
  fencing::SessionOptions session_options;
  std::shared_ptr<fencing::Session> session;
  std::shared_ptr<fencing::Mutex> mutex;

  // The critical section in progress.
  bool in_section = false;
  std::uint64_t section = 0;  // retires the timers and answers of an ended section
  std::string resource;
  fencing::Token token = 0;
  int writes_left = 0;
  std::uint64_t next_write = 0;
  std::uint64_t awaiting = 0;  // the write whose answer is awaited; 0: none
  Micros paused_us = 0;  // before the write in flight: the holder's pause after its check
  std::uint64_t values = 0;
};

LocksWorkload::LocksWorkload(int nodes, const LocksWorkloadParams& params, const FaultFamilies& faults,
                             std::uint64_t root_seed, Env& env, ClientTransport& transport,
                             std::function<void(Violation)> report)
    : params_(params),
      faults_(faults),
      env_(env),
      report_(std::move(report)),
      storage_rng_(Rng::stream(root_seed, "locks-storage")) {
  Rng shape = Rng::stream(root_seed, "locks-shape");
  const auto between_int = [&shape](int lo, int hi) {
    return static_cast<int>(shape.between(static_cast<std::uint64_t>(lo), static_cast<std::uint64_t>(hi)));
  };
  const int clients = between_int(params_.clients_min, params_.clients_max);
  locks_ = static_cast<std::uint64_t>(between_int(params_.locks_min, params_.locks_max));
  for (int i = 0; i < clients; ++i) {
    auto c = std::make_unique<Client>();
    c->id = static_cast<std::uint64_t>(i + 1);
    c->rng = Rng::stream(root_seed, "locks-actor", c->id);
    LocalClock clock;
    if (faults_.clock) {
      clock = LocalClock(c->rng.between_signed(0, params_.client_skew_us_max));
      clock.set_rate(0, kRatePpmNominal + c->rng.between_signed(-params_.client_drift_ppm_max,
                                                                 params_.client_drift_ppm_max));
    }
    c->process = std::make_unique<ClientProcess>(env_, clock);
    c->kv = std::make_unique<SimKvClient>(c->id, c->id, nodes, params_.client,
                                          Rng::stream(root_seed, "locks-client", c->id), *c->process, transport);
    c->kv->set_clock(&c->process->clock());
    c->session_options.ttl_ms =
        static_cast<fencing::Millis>(c->rng.between(static_cast<std::uint64_t>(params_.ttl_ms_min),
                                                    static_cast<std::uint64_t>(params_.ttl_ms_max)));
    clients_.push_back(std::move(c));
  }
  last_acquired_.assign(clients_.size(), 0);
}

LocksWorkload::~LocksWorkload() = default;

void LocksWorkload::start(Micros stop_at) {
  stop_at_ = stop_at;
  // Clients stop for the drain: sessions closed (their keys go, keep-alives stop), recipes
  // dropped, so that the cluster settles. Pauses end before this.
  env_.schedule(stop_at, [this] {
    for (auto& c : clients_) {
      c->process->run([this, &c = *c] {
        c.in_section = false;
        ++c.section;
        if (timeline_) timeline_->lock_released(env_.now(), c.id, "client stops");
        c.mutex.reset();
        if (c.session && !c.session->ended()) c.session->close([](const fencing::Status&) {});
        env_.trace(0, fmt::format("locks: client {} stops", c.id));
      });
    }
  });
  for (std::size_t i = 0; i < clients_.size(); ++i) {
    Client& c = *clients_[i];
    c.process->schedule(env_.now() + c.rng.between(0, params_.think_us_max), [this, i] { step(i); });
    if (faults_.pause) {
      env_.schedule(env_.now() + c.rng.between(params_.client_pause_gap_us_min, params_.client_pause_gap_us_max),
                    [this, i] { random_pause(i); });
    }
  }
}

void LocksWorkload::on_reply(const ClientReply& reply) {
  if (reply.client < 1 || reply.client > clients_.size()) return;
  Client& c = *clients_[reply.client - 1];
  c.process->run([&c, reply] { c.kv->on_reply(reply); });
}

const WorkloadStats& LocksWorkload::stats() const {
  stats_ = WorkloadStats{};
  for (const auto& c : clients_) {
    const SimKvClientStats& s = c->kv->stats();
    stats_.proposals += s.writes;
    stats_.acked += s.writes_answered;
    stats_.reads += s.reads;
    stats_.reads_done += s.reads_answered;
    stats_.redirected += s.redirects;
    stats_.timeouts += s.timeouts;
  }
  return stats_;
}

Micros LocksWorkload::storage_delay(Rng& rng) {
  if (faults_.network && rng.chance_ppm(params_.storage_slow_ppm)) {
    return rng.between(params_.storage_link_us_max, params_.storage_slow_us_max);
  }
  return rng.between(params_.storage_link_us_min, params_.storage_link_us_max);
}

// One turn of a client's loop: a session, a lock, a critical section, a release, a pause to
// think; a new session whenever the last one ended.
void LocksWorkload::step(std::size_t i) {
  Client& c = *clients_[i];
  if (failed_) return;
  if (env_.now() >= stop_at_) {
    if (c.session && !c.session->ended()) c.session->close([](const fencing::Status&) {});
    return;
  }
  if (!c.session || c.session->ended()) {
    open_session(i);
  } else {
    acquire(i);
  }
}

void LocksWorkload::open_session(std::size_t i) {
  Client& c = *clients_[i];
  c.mutex.reset();
  c.session = fencing::Session::make(*c.kv, c.session_options);
  c.session->open([this, i](const fencing::Status& status) {
    Client& cl = *clients_[i];
    if (!status.ok()) {
      env_.trace(0, fmt::format("locks: client {} could not open a session: {}", cl.id, status.message));
      think(i);
      return;
    }
    env_.trace(0, fmt::format("locks: client {} session lease {} ttl {}ms", cl.id, cl.session->lease_id(),
                              cl.session_options.ttl_ms));
    acquire(i);
  });
}

void LocksWorkload::acquire(std::size_t i) {
  Client& c = *clients_[i];
  const std::string path = fmt::format("/locks/l{}", c.rng.below(locks_));
  c.mutex = fencing::Mutex::make(c.session, path, fmt::format("client {}", c.id));
  auto done = [this, i, path](const fencing::LockResult& r) {
    Client& cl = *clients_[i];
    if (!r.status.ok()) {
      env_.trace(0, fmt::format("locks: client {} did not get {}: {}", cl.id, path, r.status.message));
      think(i);
      return;
    }
    last_acquired_[i] = env_.now();
    cl.in_section = true;
    ++cl.section;
    ++sections_;
    cl.resource = path;
    cl.token = r.token;
    cl.writes_left = static_cast<int>(
        cl.rng.between(static_cast<std::uint64_t>(params_.writes_min), static_cast<std::uint64_t>(params_.writes_max)));
    env_.trace(0, fmt::format("locks: client {} holds {} with token {} (key {})", cl.id, path, r.token, r.key));
    if (timeline_) timeline_->lock_acquired(env_.now(), cl.id, path, r.token);
    write_next(i);
  };
  if (c.rng.chance_ppm(params_.try_lock_ppm)) {
    const auto timeout_ms = c.rng.between(0, static_cast<std::uint64_t>(params_.try_lock_ms_max));
    c.mutex->try_lock(static_cast<fencing::Millis>(timeout_ms), std::move(done));
  } else {
    c.mutex->lock(std::move(done));
  }
}

void LocksWorkload::write_next(std::size_t i) {
  Client& c = *clients_[i];
  if (failed_ || !c.in_section) return;
  // The check: still the holder, by the session's own deadline.
  if (!c.mutex->held()) {
    ++lost_before_write_;
    release(i, "lost the lock before writing");
    return;
  }
  c.paused_us = 0;
  const auto ttl_us = static_cast<Micros>(c.session_options.ttl_ms) * kMicrosPerMilli;
  if (faults_.pause && c.rng.chance_ppm(params_.holder_pause_ppm) && env_.now() + 3 * ttl_us < params_.heal_at_us) {
    // ...and then the process stops between the check and the use, past its lease.
    const Micros pause_us = c.rng.between(ttl_us * 6 / 5, ttl_us * 3);
    c.process->pause(pause_us);
    c.paused_us = pause_us;
    if (timeline_) {
      timeline_->fault_span(env_.now(), env_.now() + pause_us, FaultKind::ClientPause, c.id,
                            fmt::format("client {} pauses {}ms (GC) after checking it holds {} (token {})", c.id,
                                        pause_us / kMicrosPerMilli, c.resource, c.token));
    }
    ++holder_pauses_;
    env_.trace(0, fmt::format("locks: client {} holds {} with token {} and pauses for {}ms (GC) before its write",
                              c.id, c.resource, c.token, pause_us / kMicrosPerMilli));
  }
  const std::uint64_t section = c.section;
  c.process->schedule(env_.now(), [this, i, section] {
    if (clients_[i]->section == section && clients_[i]->in_section) send_write(i);
  });
}

void LocksWorkload::send_write(std::size_t i) {
  Client& c = *clients_[i];
  const std::uint64_t id = ++c.next_write;
  c.awaiting = id;
  const Micros delay = storage_delay(c.rng);
  StorageWrite w{i, id, c.resource, Holder{c.id, c.token}, fmt::format("c{}.{}", c.id, ++c.values), c.paused_us,
                 delay};
  env_.trace(0, fmt::format("locks: client {} sends write {} to {} with token {} (+{}us)", c.id, w.value,
                            c.resource, c.token, delay));
  if (timeline_) timeline_->write_sent(env_.now(), c.id, c.resource, c.token, w.value);
  env_.schedule(env_.now() + delay, [this, w = std::move(w)] { storage_receive(w); });
  const std::uint64_t section = c.section;
  c.kv->after(static_cast<fencing::Millis>(params_.storage_reply_timeout_us / kMicrosPerMilli),
              [this, i, id, section] {
                Client& cl = *clients_[i];
                if (cl.section != section || cl.awaiting != id) return;
                // No answer: the write may still land. Carry on as a client would.
                cl.awaiting = 0;
                if (--cl.writes_left <= 0) return release(i, "done (last answer missing)");
                write_later(i);
              });
}

void LocksWorkload::storage_receive(const StorageWrite& w) {
  if (failed_) return;
  bool accepted = true;
  fencing::Token highest = 0;
  if (params_.fencing) {
    const fencing::GuardDecision d = guard_.check(w.resource, w.holder.token);
    accepted = d.accepted();
    highest = d.highest;
  }
  if (accepted) {
    ++accepted_;
    env_.trace(0, fmt::format("locks: storage accepts {} on {} from client {} with token {}", w.value, w.resource,
                              w.holder.client, w.holder.token));
    Verdict v = exclusion_.observe_accepted(w.resource, w.holder, env_.now());
    // Without the guard the storage promises nothing about tokens; mutual exclusion is what breaks.
    if (!v && params_.fencing) v = monotonic_.observe_accepted(w.resource, w.holder);
    if (v) {
      if (w.paused_us > 0) {
        v->message += fmt::format("; client {} had checked that it held the lock, then paused for {}ms before "
                                  "sending this write",
                                  w.holder.client, w.paused_us / kMicrosPerMilli);
      }
      if (w.in_flight_us > params_.storage_link_us_max) {
        v->message += fmt::format("; the write was held in flight for {}ms", w.in_flight_us / kMicrosPerMilli);
      }
      failed_ = true;
      if (timeline_) timeline_->write_landed(env_.now(), w.value, true, true);
      report_(std::move(*v));
      return;
    }
    if (timeline_) timeline_->write_landed(env_.now(), w.value, true, false);
  } else {
    if (timeline_) timeline_->write_landed(env_.now(), w.value, false, false);
    ++refused_;
    env_.trace(0, fmt::format("locks: storage refuses {} on {} from client {}: token {} is stale (highest {})",
                              w.value, w.resource, w.holder.client, w.holder.token, highest));
  }
  const Micros delay = storage_delay(storage_rng_);
  env_.schedule(env_.now() + delay, [this, c = w.client, id = w.id, accepted, highest] {
    clients_[c]->process->run([this, c, id, accepted, highest] { on_storage_answer(c, id, accepted, highest); });
  });
}

void LocksWorkload::on_storage_answer(std::size_t i, std::uint64_t id, bool accepted, fencing::Token highest) {
  Client& c = *clients_[i];
  if (failed_ || !c.in_section || c.awaiting != id) return;
  c.awaiting = 0;
  if (!accepted) {
    if (c.paused_us > 0) ++stale_after_pause_refused_;
    env_.trace(0, fmt::format("locks: client {} learns its token {} on {} is stale (the storage has {}){}", c.id,
                              c.token, c.resource, highest, c.paused_us > 0 ? " after its pause" : ""));
    release(i, "token refused");
    return;
  }
  if (--c.writes_left <= 0) return release(i, "done");
  write_later(i);
}

void LocksWorkload::write_later(std::size_t i) {
  Client& c = *clients_[i];
  const std::uint64_t section = c.section;
  c.kv->after(static_cast<fencing::Millis>(c.rng.between(0, params_.write_gap_us_max) / kMicrosPerMilli),
              [this, i, section] {
                if (clients_[i]->section == section) write_next(i);
              });
}

void LocksWorkload::release(std::size_t i, const char* why) {
  Client& c = *clients_[i];
  c.in_section = false;
  c.awaiting = 0;
  ++c.section;
  env_.trace(0, fmt::format("locks: client {} releases {} (token {}): {}", c.id, c.resource, c.token, why));
  if (timeline_) timeline_->lock_released(env_.now(), c.id, why);
  c.mutex->unlock([this, i](const fencing::Status&) { think(i); });
}

void LocksWorkload::think(std::size_t i) {
  Client& c = *clients_[i];
  c.kv->after(static_cast<fencing::Millis>(c.rng.between(0, params_.think_us_max) / kMicrosPerMilli),
              [this, i] { step(i); });
}

void LocksWorkload::random_pause(std::size_t i) {
  Client& c = *clients_[i];
  if (env_.now() >= params_.heal_at_us || failed_) return;
  const Micros pause_us =
      std::min(c.rng.between(1'000, params_.client_pause_us_max), params_.heal_at_us - env_.now());
  c.process->pause(pause_us);
  env_.trace(0, fmt::format("locks: client {} process paused for {}ms", c.id, pause_us / kMicrosPerMilli));
  if (timeline_) {
    timeline_->fault_span(env_.now(), env_.now() + pause_us, FaultKind::ClientPause, c.id,
                          fmt::format("client {} process paused {}ms", c.id, pause_us / kMicrosPerMilli));
  }
  env_.schedule(env_.now() + pause_us + c.rng.between(params_.client_pause_gap_us_min, params_.client_pause_gap_us_max),
                [this, i] { random_pause(i); });
}

Verdict LocksWorkload::final_check() {
  env_.trace(0, fmt::format("locks: {} clients on {} locks: {} critical sections, {} holder pauses, {} writes "
                            "accepted, {} refused ({} stale writes after a pause refused), {} sections ended by a "
                            "lost lock; fencing {}",
                            clients_.size(), locks_, sections_, holder_pauses_, accepted_, refused_,
                            stale_after_pause_refused_, lost_before_write_, params_.fencing ? "on" : "off"));
  if (stop_at_ <= params_.heal_at_us) return std::nullopt;
  for (std::size_t i = 0; i < clients_.size(); ++i) {
    if (last_acquired_[i] < params_.heal_at_us) {
      return Violation{invariant::kLiveness,
                       fmt::format("client {} got no lock in the {} s between the heal and the drain (last at {})",
                                   clients_[i]->id, (stop_at_ - params_.heal_at_us) / kMicrosPerSecond,
                                   format_time(last_acquired_[i]))};
    }
  }
  return std::nullopt;
}

}  // namespace coord::sim
