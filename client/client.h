// coord::Client: the C++ client library. One object per application (or per cluster it talks
// to), safe to use from any thread.
//
// It implements fencing::KvClient over the network, so the lock, election and session recipes
// of fencing/ run on it unchanged (client/recipes.h wraps them in blocking calls):
//
// - One background thread runs the client's own libuv loop. Every callback runs on that
//   thread, never inside the call that registered it (a call only queues work for the loop),
//   so a callback may call the client again. Calls may come from any thread.
// - now_ms()/after() are the steady clock (milliseconds) and timers on the loop.
// - Writes are exactly-once: each carries a session id and the next sequence number of that
//   session, and keeps both across every retry, so however many attempts reach the log the
//   state machine applies it once. The state machine remembers only a session's last sequence,
//   so a session has one write in flight at a time; the client writes through `write_lanes`
//   sessions at once and queues the rest, in order.
// - Every call is retried across members (following NotLeader hints to the leader, moving on
//   from members that are unreachable, Unavailable or silent) until its timeout: the client's
//   call_timeout, or a CallOptions::timeout of its own. A write that runs out of time reports
//   a WriteOutcome without a result (the outcome is unknown), a read `reached == false`.
// - Reads are linearizable (ReadIndex on the serving member) unless CallOptions::serializable.
// - Watches resume on another member when the one serving them fails, goes silent for
//   watch_idle_timeout or cancels them for a reason another member may not have, from the first
//   revision not wholly delivered, dropping what was delivered already: every event exactly
//   once, in (revision, path) order. on_end runs only when the service refuses the watch
//   (Compacted, ...), never after cancel_watch().
//
// Blocking use: the overloads returning std::future (and run()) are for application threads;
// waiting on them on the client's own thread would deadlock.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "fencing/kv_client.h"
#include "kv/command.h"
#include "kv/reads.h"
#include "kv/types.h"
#include "kv/watch.h"

namespace coord {

using fencing::Millis;
using fencing::ReadOutcome;
using fencing::WatchCallbacks;
using fencing::WatchHandle;
using fencing::WriteOutcome;

struct ClientOptions {
  std::vector<std::string> endpoints;  // host:port of the members' client ports
  // Bound on one call, retries included (a CallOptions::timeout overrides it).
  std::chrono::milliseconds call_timeout{5000};
  // Bound on one attempt on one member: a member that accepted the connection but stays
  // silent (paused, partitioned) is given up after this, and its connection closed.
  std::chrono::milliseconds attempt_timeout{2000};
  // A member serving a watch that sends nothing (members send progress every
  // --watch-progress-ms, 2 s by default) for this long is taken for dead. 0: never.
  std::chrono::milliseconds watch_idle_timeout{10'000};
  // Sessions writing at once (each has one write in flight); at least 1.
  std::size_t write_lanes = 4;
  // Writes waiting for a free session, at most; beyond it a write is refused at once
  // (WriteOutcome without a result: it was never sent).
  std::size_t queued_writes_max = 100'000;
  // The first session's id (0: random); the others are random.
  kv::SessionId session_id = 0;
};

struct CallOptions {
  std::chrono::milliseconds timeout{0};  // 0: ClientOptions::call_timeout
  bool serializable = false;             // reads: the serving member's state, not confirmed with the leader
};

// What the client did, for tests and metrics (a snapshot; counters only grow).
struct ClientStats {
  std::uint64_t calls = 0;          // writes and reads started
  std::uint64_t attempts = 0;       // requests sent (a call's retries included)
  std::uint64_t redirects = 0;      // NotLeader answers followed
  std::uint64_t gave_up = 0;        // calls that ran out of time
  std::uint64_t connects = 0;       // connections dialled
  std::uint64_t watch_resumes = 0;  // watches reopened on a member after the first
};

class Client final : public fencing::KvClient {
 public:
  // Starts the client's thread; connects lazily. Throws std::invalid_argument without endpoints
  // and std::runtime_error when the event loop cannot start.
  explicit Client(ClientOptions options);
  // Stops the thread. Calls still running end first, on the client's thread: writes without a
  // result, reads unreached; watches and timers are dropped silently.
  ~Client() override;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // --- fencing::KvClient: asynchronous, callbacks on the client's thread.
  void write(kv::Body body, std::function<void(const WriteOutcome&)> done) override;
  void get(std::string path, std::function<void(const ReadOutcome<kv::Node>&)> done) override;
  void list(std::string path, kv::ListOptions options,
            std::function<void(const ReadOutcome<kv::ListPage>&)> done) override;
  WatchHandle watch(kv::WatchRequest request, WatchCallbacks callbacks) override;
  void cancel_watch(WatchHandle handle) override;
  Millis now_ms() const override;
  void after(Millis delay_ms, std::function<void()> action) override;

  // --- The same with a timeout (or serializable reads) of their own.
  void write(kv::Body body, CallOptions call, std::function<void(const WriteOutcome&)> done);
  void get(std::string path, CallOptions call, std::function<void(const ReadOutcome<kv::Node>&)> done);
  void list(std::string path, kv::ListOptions options, CallOptions call,
            std::function<void(const ReadOutcome<kv::ListPage>&)> done);

  // --- Futures, for application threads.
  std::future<WriteOutcome> write(kv::Body body, CallOptions call = {});
  std::future<ReadOutcome<kv::Node>> get(std::string path, CallOptions call = {});
  std::future<ReadOutcome<kv::ListPage>> list(std::string path, kv::ListOptions options = {}, CallOptions call = {});

  // Runs `action` on the client's thread, later (never inside this call).
  void post(std::function<void()> action) { after(0, std::move(action)); }
  // Runs `f` on the client's thread and waits for its result: how application threads use
  // objects that live on the client's thread (the recipes). Not on the client's thread.
  template <typename F>
  auto run(F&& f) -> std::invoke_result_t<F&> {
    using R = std::invoke_result_t<F&>;
    check_not_client_thread();
    auto promise = std::make_shared<std::promise<R>>();
    auto result = promise->get_future();
    post([promise, &f] {
      try {
        if constexpr (std::is_void_v<R>) {
          f();
          promise->set_value();
        } else {
          promise->set_value(f());
        }
      } catch (...) {
        promise->set_exception(std::current_exception());
      }
    });
    return result.get();
  }
  bool on_client_thread() const;
  // Throws std::logic_error on the client's thread, where waiting for the client would block
  // it forever (every blocking helper checks this first).
  void check_not_client_thread() const;

  const ClientOptions& options() const;
  ClientStats stats() const;
  // The sessions writes go out on (one per lane).
  std::vector<kv::SessionId> sessions() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace coord
