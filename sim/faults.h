// Which faults a run injects, and when. The plan is computed up front from the seed (a pure
// function of families, cluster size, duration and the fault stream), so a run's faults can be
// listed, tested and replayed; the simulation (fault_exec.cc) resolves "the leader" and applies
// each fault when its time comes, then undoes it after its duration. Crash traps are armed by
// the plan and fire at the next matching event. After the faulty period everything heals.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "raft/types.h"
#include "sim/disk.h"
#include "sim/network.h"
#include "sim/rng.h"
#include "sim/time.h"

namespace coord::sim {

struct FaultFamilies {
  bool network = false;  // loss, duplication, latency spikes, partitions of every shape
  bool clock = false;    // skew, drift, jumps forward and back
  bool pause = false;    // a node frozen for up to several seconds
  bool crash = false;    // crash, restart later from disk (sometimes the leader)
  bool disk = false;     // failing writes (the node stops), slow fsyncs

  static FaultFamilies all() { return FaultFamilies{true, true, true, true, true}; }
  bool any() const { return network || clock || pause || crash || disk; }
  // "none", or the enabled families comma-separated in a fixed order.
  std::string describe() const;

  bool operator==(const FaultFamilies&) const = default;
};

// "none", "all", or a comma-separated list of family names. On an unknown name returns nothing
// and says which in `error`.
std::optional<FaultFamilies> parse_fault_families(std::string_view text, std::string* error);

// `node` == kNoNode means "whoever leads when the fault fires" (a random node if nobody does).
struct PartitionFault {
  Partition partition;
  std::string shape;
  Micros duration_us = 0;
};
struct LinkFault {
  LinkParams params;
  std::string what;
  Micros duration_us = 0;
};
struct ClockDriftFault {
  raft::NodeId node = raft::kNoNode;
  std::int64_t rate_ppm = 0;
  Micros duration_us = 0;
};
struct ClockJumpFault {
  raft::NodeId node = raft::kNoNode;
  std::int64_t delta_us = 0;
};
struct PauseFault {
  raft::NodeId node = raft::kNoNode;
  Micros duration_us = 0;
};
struct CrashFault {
  raft::NodeId node = raft::kNoNode;
  Micros downtime_us = 0;
  // A power loss of the whole cluster: every node loses its unsynced writes at once, which is
  // what exposes acknowledging before fsync.
  bool whole_cluster = false;
};
// Armed now, fires at the next matching event: the moments a durability bug can hide in are
// far too short for a crash at a random time to land in them.
struct CrashTrapFault {
  enum class Trigger : std::uint8_t {
    VoteGranted,   // `node` (or any node) sends a vote; it crashes right after
    // ...a vote while another candidate campaigns in the same term: restarting at once, the
    // voter meets the rival's request, and only a durable vote keeps it from granting twice.
    VoteContested,
    AppendAcked,   // `node` (or any node) acknowledges an Append; it crashes right after
    ClientAcked,   // any node acknowledges a client's command; power loss right after
  };
  Trigger trigger = Trigger::VoteGranted;
  raft::NodeId node = raft::kNoNode;  // kNoNode: any node
  bool whole_cluster = false;
  Micros downtime_us = 0;
  Micros armed_us = 0;  // disarmed if nothing matched by then
};
struct DiskFailFault {
  raft::NodeId node = raft::kNoNode;
  Micros duration_us = 0;
};
struct DiskSlowFault {
  raft::NodeId node = raft::kNoNode;
  DiskParams params;
  Micros duration_us = 0;
};

using Fault = std::variant<PartitionFault, LinkFault, ClockDriftFault, ClockJumpFault, PauseFault,
                           CrashFault, CrashTrapFault, DiskFailFault, DiskSlowFault>;

const char* to_string(CrashTrapFault::Trigger trigger);

struct PlannedFault {
  Micros at = 0;
  Fault fault;
};

std::string describe(const Fault& fault);

// Limits of the plan.
inline constexpr Micros kFaultsStartUs = 300'000;  // let the first election happen undisturbed
inline constexpr Micros kFaultGapUsMin = 100'000;
inline constexpr Micros kFaultGapUsMax = 1'200'000;
inline constexpr Micros kPauseUsMax = 5'000'000;
inline constexpr Micros kDowntimeUsMax = 3'000'000;
// A supervisor restarting a crashed process at once: the node is back before the messages it
// sent or was sent before the crash have all arrived (a forgotten vote shows up here).
inline constexpr Micros kQuickRestartUsMax = 30'000;
// Restart "at once", before messages already on the wire arrive.
inline constexpr Micros kInstantRestartUsMax = 500;
inline constexpr std::int64_t kClockJumpUsMax = 3'000'000;

// Faults starting before `until_us`, in time order.
std::vector<PlannedFault> plan_faults(const FaultFamilies& families, int nodes, Micros until_us, Rng& rng);

// Initial clock offsets (skew) per node, index 0 for node 1. All zero without the clock family.
std::vector<std::int64_t> plan_clock_skews(const FaultFamilies& families, int nodes, Rng& rng);

// The link behaviour with no fault in force.
LinkParams baseline_link();

}  // namespace coord::sim
