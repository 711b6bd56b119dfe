// The client side: workers, each with its own coord::Client (one write session, one operation
// at a time), doing gets, puts, creates, deletes and compare-and-sets (on version and on value)
// over a few key groups (/g<G>/k<K>, as sim/workload_kv.cc), recording every operation in the
// History; then the final read-back of every key after the faults are healed. A compactor
// thread compacts old revisions meanwhile.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "harness/history.h"

namespace coord::harness {

struct WorkloadOptions {
  std::vector<std::string> endpoints;  // every member's client address
  int workers = 4;
  int groups = 3;
  int keys = 3;  // per group, at most Model::kKeysMax
  std::uint64_t seed = 1;
  // Each worker waits a random 0 .. think_ms between operations (keeps the history checkable).
  int think_ms = 2;
  std::chrono::milliseconds call_timeout{4000};
  std::chrono::milliseconds attempt_timeout{1000};
  // Broken on purpose (--stale-reads): each worker talks to one member only and its reads are
  // serializable (that member's state) but recorded as linearizable. The checker must object.
  bool stale_reads = false;
  // Each worker talks to one member only (worker i to member i, round robin), never failing over:
  // a member that answers from stale state is then read from even while it is cut off (the
  // broken-build check, tests/e2e_faults_broken_build_test.sh). Implied by stale_reads.
  bool pin_workers = false;
  // A compactor (as sim's kv workload has) keeps this many revisions of history, compacting
  // every compact_every, so a long run's MVCC history (and the members' memory) stays bounded.
  std::chrono::milliseconds compact_every{5000};
  std::uint64_t compact_keep_revisions = 1000;
};

// Microseconds on the steady clock since the harness started (the history's time line).
std::uint64_t now_us();

class Workload {
 public:
  Workload(WorkloadOptions options, History& history);
  ~Workload();  // stops and joins the workers
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  void start();
  void stop();
  // Compactions the service accepted.
  std::uint64_t compactions() const { return compactions_; }

  // Reads every key and lists every group, retrying each until answered or `timeout`; the
  // reads join the history (client 0). Returns how many stayed unanswered.
  static int read_back(const WorkloadOptions& options, History& history, std::chrono::seconds timeout);

 private:
  void run(int worker);
  void compact();

  WorkloadOptions options_;
  History& history_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> compactions_{0};
  std::vector<std::thread> threads_;
};

}  // namespace coord::harness
