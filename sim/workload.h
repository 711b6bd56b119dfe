// What the simulation asks of a workload: the clients that drive the cluster and, for the kv
// workloads, the checks of what those clients saw. One workload per run (Options::workload).
#pragma once

#include <cstdint>

#include "sim/checkers.h"
#include "sim/client.h"
#include "sim/time.h"

namespace coord::sim {

struct WorkloadStats {
  std::uint64_t proposals = 0;
  std::uint64_t acked = 0;
  std::uint64_t failed = 0;
  std::uint64_t redirected = 0;
  std::uint64_t timeouts = 0;
  std::uint64_t reads = 0;
  std::uint64_t reads_done = 0;
  std::uint64_t transfers = 0;  // started by a leader
};

class ClientWorkload {
 public:
  virtual ~ClientWorkload() = default;

  // Clients start now and send nothing new from `stop_at` on (so the cluster can settle).
  virtual void start(Micros stop_at) = 0;
  virtual void on_reply(const ClientReply& reply) = 0;
  virtual const WorkloadStats& stats() const = 0;
  // At the end of a run that found no violation on the way: what the clients saw, judged.
  virtual Verdict final_check() { return std::nullopt; }
};

}  // namespace coord::sim
