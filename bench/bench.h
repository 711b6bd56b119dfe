// coord-bench's engine: N client threads, each with its own connection, drive one operation
// against a cluster for a fixed time and record every latency.
//
// Closed loop (rate == 0): each client keeps `inflight` requests outstanding and sends the next
// as soon as one completes. Open loop (rate > 0): requests go out on a fixed schedule whatever
// the responses, and each latency is measured from the request's *scheduled* send time, so a
// stall shows up in the percentiles instead of silently lowering the send rate (coordinated
// omission).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/histogram.h"

namespace coord::bench {

enum class Op : std::uint8_t { Put, Get, GetSerializable, Cas, Txn };

const char* to_string(Op op);
std::optional<Op> parse_op(std::string_view text);

struct Options {
  std::vector<std::string> endpoints;
  Op op = Op::Put;
  int clients = 1;
  int inflight = 1;            // per client, closed loop
  double duration_s = 10;
  std::size_t value_size = 256;
  std::size_t keys = 1000;     // distinct keys the workload touches
  double rate = 0;             // total requests per second; 0: closed loop
  std::string prefix = "/bench";
  // Requests still outstanding this long after the end count as errors ("timeout").
  std::chrono::milliseconds drain{5000};
};

// The path of key number `key`: "<prefix>/k00000042". Every target uses the same strings.
std::string key_path(const Options& options, std::size_t key);

// One completed request, as a connection reports it.
struct Completion {
  std::uint64_t tag = 0;
  bool ok = true;
  std::string error;  // a short stable name ("not-leader", "compare-failed", ...) when !ok
};

// What the engine asks of a target's connection. One per client thread; never shared.
class Connection {
 public:
  virtual ~Connection() = default;
  // Starts request `tag` for the workload's op on key number `key`. Never blocks on the
  // response.
  virtual void issue(std::uint64_t tag, Op op, std::size_t key) = 0;
  // Waits until `until` at the latest (less when something completes) and appends what
  // completed. Throws std::runtime_error when the connection is lost.
  virtual void wait(std::chrono::steady_clock::time_point until, std::vector<Completion>& out) = 0;
};

// Makes client number `client`'s connection (threads call it concurrently).
using ConnectionFactory = std::function<std::unique_ptr<Connection>(int client)>;

struct Report {
  Op op = Op::Put;
  int clients = 0;
  int inflight = 0;
  double rate = 0;
  double elapsed_s = 0;
  std::uint64_t completed = 0;  // ok + errors
  std::uint64_t errors = 0;
  std::map<std::string, std::uint64_t> error_kinds;
  Histogram latency;  // of every completed request, ok or not, in nanoseconds

  double throughput() const { return elapsed_s > 0 ? static_cast<double>(completed - errors) / elapsed_s : 0; }
};

// Progress for the caller's status line, updated by the client threads as they go.
struct Progress {
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> errors{0};
};

// Writes every key (Options::keys values of Options::value_size bytes) through `conn`, `inflight`
// puts outstanding at a time. A put that fails is sent again after load_retry_pause (a leader
// change or an overload must not end a load of a million keys); throws std::runtime_error when
// no put succeeds for load_stall_max, or the load does not finish in time.
constexpr std::chrono::milliseconds load_retry_pause{50};
constexpr std::chrono::seconds load_stall_max{30};
void load_keys(Connection& conn, const Options& options, int inflight);

// Runs the workload. A connection that fails ends its client's run (counted as an error).
Report run(const Options& options, const ConnectionFactory& connect, Progress& progress);

}  // namespace coord::bench
