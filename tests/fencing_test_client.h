// An in-process, deterministic host for the fencing recipes: one kv::StateMachine on
// kv::MemoryStorage playing the whole cluster, a leader-side kv::LeaseClock, and virtual time
// with an event queue. TestClient implements fencing::KvClient over it: every request and every
// reply is an event on the queue (a fixed latency each way), writes are encoded with kv::encode
// and applied with apply_batch, and watches are polled from the hub after every apply and
// delivered as events too. Nothing runs inside a call: the recipes see the same asynchrony as
// over a network.
//
// The test can play the cluster's faults: a client that cannot reach it (writes give up with an
// unknown outcome, reads are not answered, watch events wait), a reply lost after its write was
// applied, a leader change (a new LeaseClock: every countdown restarts), and a restart (the
// state machine restored from its snapshot into a fresh MemoryStorage; watches resume from the
// last revision they delivered, as the real clients do). With auto_expire the cluster proposes
// LeaseExpire when the leader's countdown runs out; without it, the test plays the leader.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fencing/kv_client.h"
#include "kv/codec.h"
#include "kv/lease_clock.h"
#include "kv/memory_storage.h"
#include "kv/state_machine.h"

namespace fencingtest {

using coord::fencing::KvClient;
using coord::fencing::Millis;
using coord::fencing::ReadOutcome;
using coord::fencing::WatchCallbacks;
using coord::fencing::WatchHandle;
using coord::fencing::WriteOutcome;
namespace kv = coord::kv;

class TestClient;

class TestCluster {
 public:
  // Each way, per request (a reply arrives 2 * latency_ms after the request was sent).
  Millis latency_ms = 1;
  // How long a client that cannot reach the cluster tries before giving up.
  Millis give_up_ms = 500;
  // Propose LeaseExpire when the leader's countdown runs out (else the test does, expire()).
  bool auto_expire = true;

  explicit TestCluster(Millis start_ms = 1'000) : now_(start_ms) {
    storage_ = std::make_unique<kv::MemoryStorage>();
    sm_ = std::make_unique<kv::StateMachine>(*storage_);
    new_leader();
  }
  TestCluster(const TestCluster&) = delete;
  TestCluster& operator=(const TestCluster&) = delete;

  Millis now() const { return now_; }
  kv::StateMachine& sm() { return *sm_; }
  const kv::LeaseClock& lease_clock() const { return clock_; }

  // --- Virtual time.

  void schedule(Millis at, std::function<void()> action) {
    queue_.emplace(std::make_pair(std::max(at, now_), next_event_++), std::move(action));
  }

  // Runs the next event (or due lease expiry) at or before `until`; false when there is none.
  bool step(Millis until) {
    std::optional<Millis> event_at;
    if (!queue_.empty()) event_at = queue_.begin()->first.first;
    std::optional<Millis> expiry_at;
    if (auto_expire) {
      if (const auto d = clock_.next_deadline()) expiry_at = static_cast<Millis>(*d);
    }
    if (expiry_at && *expiry_at <= until && (!event_at || *expiry_at <= *event_at)) {
      now_ = std::max(now_, *expiry_at);
      expire_due();
      return true;
    }
    if (!event_at || *event_at > until) return false;
    now_ = std::max(now_, *event_at);
    auto node = queue_.extract(queue_.begin());
    node.mapped()();
    return true;
  }

  void run_for(Millis duration_ms) {
    const Millis until = now_ + duration_ms;
    while (step(until)) {
    }
    now_ = std::max(now_, until);
  }

  // Runs events until `done()` holds or `limit_ms` of virtual time pass; returns done().
  bool run_until(const std::function<bool()>& done, Millis limit_ms = 60'000) {
    const Millis until = now_ + limit_ms;
    while (!done()) {
      if (!step(until)) {
        now_ = std::max(now_, until);
        return done();
      }
    }
    return true;
  }

  // --- The leader's part.

  // Applies one command as the next log entry, tells the LeaseClock, publishes watch events.
  kv::Result apply(kv::SessionId session, std::uint64_t sequence, kv::Body body) {
    kv::Command command;
    command.session_id = session;
    command.sequence = sequence;
    command.body = std::move(body);
    const std::vector<kv::AppliedEntry> entries = {
        {sm_->applied_index() + 1, kv::encode_command(command)}};
    const std::vector<kv::Result> results = sm_->apply_batch(entries);
    REQUIRE(results.size() == 1);
    clock_.on_applied(command.body, results[0], static_cast<std::uint64_t>(now_));
    ++writes_applied;
    pump_watches();
    return results[0];
  }

  // The test plays the leader: the lease's countdown ran out, propose its expiry.
  kv::Result expire(kv::LeaseId id) {
    const auto info = sm_->lease_ttl(id, false);
    return apply(0, 0, kv::LeaseExpire{id, info.ok() ? info.value.lease.keepalives : 0});
  }

  // A new leader: it knows every lease from the state machine and restarts every countdown.
  void change_leader() { new_leader(); }

  // Every replica restarts: the state comes back from a snapshot into fresh storage; a new
  // leader is elected; watches resume where they were.
  void restart() {
    const std::string snapshot = sm_->snapshot();
    auto storage = std::make_unique<kv::MemoryStorage>();
    auto sm = std::make_unique<kv::StateMachine>(*storage);
    REQUIRE(sm->restore(snapshot).ok());
    REQUIRE(sm->revision() == sm_->revision());
    sm_ = std::move(sm);
    storage_ = std::move(storage);
    new_leader();
    for (auto& [handle, w] : watches_) {
      kv::WatchRequest resumed = w.request;
      resumed.start_revision = w.next_revision;
      const kv::WatchCreated created = sm_->watch(resumed);
      REQUIRE(created.status.ok());
      w.id = created.id;
    }
    pump_watches();
  }

  // --- What the clients call (through TestClient).

  WatchHandle add_watch(TestClient* client, kv::WatchRequest request, WatchCallbacks callbacks);
  void cancel_watch(WatchHandle handle) {
    const auto it = watches_.find(handle);
    if (it == watches_.end()) return;
    (void)sm_->cancel_watch(it->second.id);
    watches_.erase(it);
  }
  void pump_watches();

  // Counters for the tests.
  std::uint64_t writes_applied = 0;
  std::uint64_t lists_served = 0;
  std::uint64_t gets_served = 0;
  std::uint64_t watch_deliveries = 0;  // non-empty event batches handed to a client
  std::size_t watch_count() const { return watches_.size(); }

 private:
  struct Watch {
    TestClient* client = nullptr;
    kv::WatchRequest request;
    WatchCallbacks callbacks;
    kv::WatchId id = 0;
    kv::Revision next_revision = 0;  // the first revision not delivered yet
  };

  void new_leader() {
    clock_ = kv::LeaseClock{};
    clock_.reset(sm_->leases().value, static_cast<std::uint64_t>(now_));
    clock_.on_become_leader(static_cast<std::uint64_t>(now_));
  }

  void expire_due() {
    for (const kv::LeaseExpire& e : clock_.expired(static_cast<std::uint64_t>(now_))) {
      apply(0, 0, e);
    }
  }

  Millis now_;
  std::uint64_t next_event_ = 0;
  std::map<std::pair<Millis, std::uint64_t>, std::function<void()>> queue_;
  std::unique_ptr<kv::MemoryStorage> storage_;
  std::unique_ptr<kv::StateMachine> sm_;
  kv::LeaseClock clock_;
  WatchHandle next_watch_ = 1;
  std::map<WatchHandle, Watch> watches_;
};

class TestClient final : public KvClient {
 public:
  TestClient(TestCluster& cluster, kv::SessionId session) : cluster_(cluster), session_(session) {}

  void write(kv::Body body, std::function<void(const WriteOutcome&)> done) override {
    ++writes_sent;
    const std::uint64_t sequence = ++sequence_;
    if (!reachable_) {
      cluster_.schedule(cluster_.now() + cluster_.give_up_ms, [done] {
        done(WriteOutcome{std::nullopt, "cluster unreachable"});
      });
      return;
    }
    if (late_write_ms_ > 0) {
      // The client gives up, and the write is applied after all, later (an entry stuck in a
      // deposed leader's log that a new leader commits).
      const Millis give_up = cluster_.now() + cluster_.give_up_ms;
      cluster_.schedule(give_up, [done] { done(WriteOutcome{std::nullopt, "timed out"}); });
      // Once a later write of the session is applied, the state machine refuses this one as
      // stale, unless it forgot the session (sessions_max): then it is applied.
      const kv::SessionId session = late_write_forgotten_ ? 0 : session_;
      cluster_.schedule(give_up + late_write_ms_, [this, session, sequence, body = std::move(body)] {
        late_results.push_back(cluster_.apply(session, sequence, body));
      });
      late_write_ms_ = 0;
      return;
    }
    const bool lose_reply = lose_replies_ > 0;
    if (lose_reply) --lose_replies_;
    cluster_.schedule(cluster_.now() + cluster_.latency_ms,
                      [this, sequence, body = std::move(body), done, lose_reply] {
                        const kv::Result result = cluster_.apply(session_, sequence, body);
                        if (lose_reply) {
                          cluster_.schedule(cluster_.now() + cluster_.give_up_ms, [done] {
                            done(WriteOutcome{std::nullopt, "reply lost"});
                          });
                          return;
                        }
                        cluster_.schedule(cluster_.now() + cluster_.latency_ms, [result, done] {
                          done(WriteOutcome{result, {}});
                        });
                      });
  }

  void get(std::string path, std::function<void(const ReadOutcome<kv::Node>&)> done) override {
    serve<kv::Node>(std::move(done), [this, path] {
      ++cluster_.gets_served;
      return cluster_.sm().get(path);
    });
  }

  void list(std::string path, kv::ListOptions options,
            std::function<void(const ReadOutcome<kv::ListPage>&)> done) override {
    serve<kv::ListPage>(std::move(done), [this, path, options] {
      ++cluster_.lists_served;
      return cluster_.sm().list(path, options);
    });
  }

  WatchHandle watch(kv::WatchRequest request, WatchCallbacks callbacks) override {
    return cluster_.add_watch(this, std::move(request), std::move(callbacks));
  }
  void cancel_watch(WatchHandle handle) override { cluster_.cancel_watch(handle); }

  Millis now_ms() const override { return cluster_.now(); }
  void after(Millis delay_ms, std::function<void()> action) override {
    cluster_.schedule(cluster_.now() + std::max<Millis>(0, delay_ms), std::move(action));
  }

  // Faults.
  void set_reachable(bool reachable) {
    reachable_ = reachable;
    if (reachable) cluster_.pump_watches();
  }
  bool reachable() const { return reachable_; }
  // The next `n` writes are applied, but their replies are lost (outcome unknown).
  void lose_replies(int n) { lose_replies_ = n; }
  // The next write times out (outcome unknown) and is applied `late_ms` after that; with
  // `session_forgotten`, as if the state machine no longer remembered the client's session.
  void apply_next_write_late(Millis late_ms, bool session_forgotten = false) {
    late_write_ms_ = late_ms;
    late_write_forgotten_ = session_forgotten;
  }
  std::vector<kv::Result> late_results;

  std::uint64_t writes_sent = 0;

 private:
  template <typename T, typename Serve>
  void serve(std::function<void(const ReadOutcome<T>&)> done, Serve read) {
    if (!reachable_) {
      cluster_.schedule(cluster_.now() + cluster_.give_up_ms,
                        [done] { done(ReadOutcome<T>{}); });
      return;
    }
    cluster_.schedule(cluster_.now() + cluster_.latency_ms, [this, done, read] {
      ReadOutcome<T> out;
      out.reached = true;
      out.read = read();
      cluster_.schedule(cluster_.now() + cluster_.latency_ms, [out, done] { done(out); });
    });
  }

  TestCluster& cluster_;
  kv::SessionId session_;
  std::uint64_t sequence_ = 0;
  bool reachable_ = true;
  int lose_replies_ = 0;
  Millis late_write_ms_ = 0;
  bool late_write_forgotten_ = false;
};

inline WatchHandle TestCluster::add_watch(TestClient* client, kv::WatchRequest request,
                                          WatchCallbacks callbacks) {
  const WatchHandle handle = next_watch_++;
  const kv::WatchCreated created = sm_->watch(request);
  if (!created.status.ok()) {
    schedule(now_ + latency_ms, [callbacks, status = created.status] { callbacks.on_end(status); });
    return handle;
  }
  Watch w;
  w.client = client;
  w.request = std::move(request);
  w.callbacks = std::move(callbacks);
  w.id = created.id;
  w.next_revision = created.start_revision;
  watches_.emplace(handle, std::move(w));
  pump_watches();
  return handle;
}

// Hands every watcher of a reachable client what the hub has for it, as delivery events.
inline void TestCluster::pump_watches() {
  std::vector<WatchHandle> ended;
  for (auto& [handle, w] : watches_) {
    if (!w.client->reachable()) continue;
    std::vector<kv::Event> events;
    for (;;) {
      kv::WatchResponse got = sm_->poll_watch(w.id, 1'000);
      if (got.canceled) {
        schedule(now_ + latency_ms, [on_end = w.callbacks.on_end, status = got.cancel_status] {
          on_end(status);
        });
        ended.push_back(handle);
        break;
      }
      if (got.events.empty()) {
        w.next_revision = std::max(w.next_revision, got.progress_revision + 1);
        break;
      }
      w.next_revision = got.events.back().revision + 1;
      events.insert(events.end(), got.events.begin(), got.events.end());
    }
    if (events.empty()) continue;
    ++watch_deliveries;
    // Delivered unless cancelled meanwhile (a cancelled watch delivers nothing more).
    schedule(now_ + latency_ms, [this, handle = handle, events = std::move(events)] {
      const auto it = watches_.find(handle);
      if (it != watches_.end()) it->second.callbacks.on_events(events);
    });
  }
  for (const WatchHandle handle : ended) watches_.erase(handle);
}

// Collects what a recipe callback reported, for tests to wait on.
template <typename T>
class Slot {
 public:
  std::function<void(const T&)> callback() {
    return [state = state_](const T& value) {
      state->value = value;
      ++state->calls;
    };
  }
  bool ready() const { return state_->value.has_value(); }
  const T& value() const {
    REQUIRE(state_->value.has_value());
    return *state_->value;
  }
  int calls() const { return state_->calls; }
  void reset() { state_->value.reset(); }

 private:
  struct State {
    std::optional<T> value;
    int calls = 0;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

}  // namespace fencingtest
