// The client interface the fencing recipes (locks, elections, sessions) are written against, so
// that the very same recipe code runs inside the deterministic simulator (sim/ implements it over
// simulated replicas and virtual time) and in applications (the C++ client library implements
// it over the network).
//
// Everything is asynchronous and single-threaded from the recipe's point of view: a call
// returns at once, and its callback runs later on the client's own thread (or simulated event),
// never from inside the call itself, so a recipe may call again from a callback without
// re-entering its own code. Time comes only from now_ms()/after(): a recipe has no other clock.
//
// Writes are exactly-once: the implementation sends each with the client's session id and the
// next sequence number and retries it (same session, same sequence) across leader changes until
// it gets an answer or gives up. Giving up means the outcome is unknown: the write may or may
// not have been applied, and the recipe must find out by reading (e.g. by looking for its own
// unique value among a lock's waiters).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "kv/command.h"
#include "kv/event.h"
#include "kv/reads.h"
#include "kv/watch.h"

namespace coord::fencing {

using Millis = std::int64_t;

// The answer to a write: the state machine's result, or nothing when the client gave up
// (timeout, no reachable leader) and the outcome is unknown.
struct WriteOutcome {
  std::optional<kv::Result> result;
  std::string error;  // why the outcome is unknown; empty when `result` is set
};

// The answer to a linearizable read: the state machine's answer (with its kv error, if any)
// when a member served it, or `reached == false` when none did in time.
template <typename T>
struct ReadOutcome {
  bool reached = false;  // false: no member answered in time (nothing is known)
  kv::ReadResult<T> read;
};

// A watch stream: events in revision order, exactly once, resumed by the implementation across
// reconnects and leader changes from the last revision delivered. It ends only when cancelled
// or when the server refuses it (Compacted, WatchOverflow, ...): then `on_end` runs once.
using WatchHandle = std::uint64_t;

struct WatchCallbacks {
  std::function<void(const std::vector<kv::Event>& events)> on_events;
  std::function<void(const kv::Status& why)> on_end;
};

class KvClient {
 public:
  virtual ~KvClient() = default;

  // A write through the log (txn, lease grant/keep-alive/revoke, ...), exactly once.
  virtual void write(kv::Body body, std::function<void(const WriteOutcome&)> done) = 0;

  // Linearizable reads.
  virtual void get(std::string path, std::function<void(const ReadOutcome<kv::Node>&)> done) = 0;
  virtual void list(std::string path, kv::ListOptions options,
                    std::function<void(const ReadOutcome<kv::ListPage>&)> done) = 0;

  virtual WatchHandle watch(kv::WatchRequest request, WatchCallbacks callbacks) = 0;
  virtual void cancel_watch(WatchHandle handle) = 0;

  // The client's monotonic clock, and timers on it.
  virtual Millis now_ms() const = 0;
  virtual void after(Millis delay_ms, std::function<void()> action) = 0;
};

}  // namespace coord::fencing
