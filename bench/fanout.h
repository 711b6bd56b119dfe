// coord-bench's watch fan-out (--op watch): W watchers on one subtree, spread over C connections
// (one thread each, round-robin over the members), and one writer. Each round writes one new key
// under the subtree and measures, from just before the write is sent, when every watcher has
// received its event: per watcher (the delivery latency) and for all of them (the round's
// fan-out time: the last watcher's delivery). Rounds go one at a time, each after the previous
// one has reached every watcher (or timed out), for Options::duration_s.
//
// The targets provide the watch connections (coord: Watch requests on the client port, at most
// a member's per-connection limit on each; etcd: one gRPC Watch stream per connection) and the
// writer (their ordinary put connection).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench.h"
#include "bench/histogram.h"

namespace coord::bench {

// One connection carrying many watches on one subtree. One per watcher thread; never shared.
class WatchConnection {
 public:
  virtual ~WatchConnection() = default;
  // Opens `count` watches on every key under `dir` (the keys "<dir>/..."); returns once the
  // member has acknowledged them all. Throws std::runtime_error when it cannot.
  virtual void open(const std::string& dir, int count, std::chrono::steady_clock::time_point deadline) = 0;
  // Waits until `until` at the latest and appends the key of every event received, one entry
  // per watch that received it. Throws std::runtime_error when the connection is lost.
  virtual void wait(std::chrono::steady_clock::time_point until, std::vector<std::string>& keys) = 0;
};

// Makes watcher connection number `connection` (threads call it concurrently).
using WatchConnectionFactory = std::function<std::unique_ptr<WatchConnection>(int connection)>;

struct FanoutOptions {
  int watchers = 10'000;
  int connections = 12;
  double duration_s = 5;
  std::string dir = "/bench/w";  // the writer's keys are key_path() under it
  std::chrono::milliseconds round_timeout{10'000};
  std::chrono::milliseconds open_timeout{60'000};
  std::chrono::milliseconds pause{100};  // between rounds
};

struct FanoutReport {
  int watchers = 0;
  int connections = 0;
  int rounds = 0;
  std::uint64_t delivered = 0;  // events received, all watchers, all rounds
  std::uint64_t missed = 0;     // events a watcher had not received when its round timed out
  std::uint64_t errors = 0;     // failed writes, lost connections
  std::vector<std::string> error_messages;
  double open_s = 0;            // time to open every watch
  Histogram delivery;           // per watcher and round: write sent -> event received, ns
  Histogram all;                // per round: write sent -> the last watcher's event, ns
};

// `writer` is made once, with Options::op Put and Options::prefix set to FanoutOptions::dir.
FanoutReport run_fanout(const FanoutOptions& options, const WatchConnectionFactory& watch,
                        const std::function<std::unique_ptr<Connection>()>& writer);

}  // namespace coord::bench
