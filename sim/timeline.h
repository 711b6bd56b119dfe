// A run's timeline: what coord-sim --timeline draws (sim/timeline_html.h). The simulation and
// the workloads append facts to it as they happen (a replica's role and term, a fault starting
// and ending, a client operation, a lock held, a guarded write sent and landing, the violation),
// instead of the page being rebuilt from the trace's text.
//
// Recording is passive: it reads what the simulation already computed, draws no random numbers
// and schedules nothing, so a run with a Timeline is the very run without one (the determinism
// test compares the traces). Without --timeline the simulation holds a null pointer and every
// hook is one test of it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "raft/types.h"
#include "sim/time.h"

namespace coord::sim {

// What a replica's lane shows at a moment: its Raft role, or that it is not running.
enum class LaneState : std::uint8_t { Follower, PreCandidate, Candidate, Leader, Paused, Down };

const char* to_string(LaneState state);

enum class FaultKind : std::uint8_t {
  Partition,   // node 0: the whole cut (its shape); node N: N has a cut link
  Network,     // node 0: loss, duplication, latency on every link
  ClockDrift,
  ClockJump,   // an instant
  Pause,       // an instant (the lane shows Paused for its duration)
  Crash,       // an instant (the lane shows Down)
  PowerLoss,   // node 0, an instant
  CrashTrap,   // sprung: an instant
  DiskFail,
  DiskSlow,
  ClientPause,  // on a client lane: the client's process frozen
};

const char* to_string(FaultKind kind);

struct StateSpan {
  raft::NodeId node = raft::kNoNode;
  LaneState state = LaneState::Follower;
  raft::Term term = 0;
  Micros from = 0;
  Micros to = 0;
};

struct FaultSpan {
  FaultKind kind = FaultKind::Partition;
  std::uint64_t lane = 0;  // replica id (0: the whole cluster), or client id for ClientPause
  std::string label;
  Micros from = 0;
  Micros to = 0;
  bool instant = false;
};

struct ClientOp {
  std::uint64_t client = 0;
  std::uint64_t op = 0;
  std::string what;
  raft::NodeId node = raft::kNoNode;  // last sent to
  Micros from = 0;
  Micros to = 0;
  std::string outcome;  // empty: never answered
};

struct LockHold {
  std::uint64_t client = 0;
  std::string resource;
  std::uint64_t token = 0;
  Micros from = 0;
  Micros to = 0;
  std::string end;  // why it ended; empty while held
};

struct GuardedWrite {
  enum class Fate : std::uint8_t { InFlight, Accepted, Refused };

  std::uint64_t client = 0;
  std::string resource;
  std::uint64_t token = 0;
  std::string value;
  Micros sent = 0;
  Micros landed = 0;  // sent, while in flight
  Fate fate = Fate::InFlight;
  bool violating = false;  // the write whose acceptance broke an invariant
};

struct ViolationMark {
  Micros at = 0;
  std::string invariant;
  std::string message;
};

struct TimelineRun {
  std::uint64_t seed = 0;
  int nodes = 0;
  std::string workload;
  std::string faults;
  bool fencing = true;
  Micros heal_at = 0;
  Micros end_at = 0;
};

// Bounds the page: a long run of the raft workload proposes tens of thousands of commands.
inline constexpr std::size_t kTimelineOpsMax = 20'000;
inline constexpr std::size_t kTimelineWritesMax = 20'000;

class Timeline {
 public:
  void start(const TimelineRun& run) { run_ = run; }

  // Called after every event: appends a span only when the state or term changed.
  void replica(Micros at, raft::NodeId node, LaneState state, raft::Term term);

  // A fault acting from now until fault_end (a begin of the same kind on the same lane ends the
  // previous one).
  void fault_begin(Micros at, FaultKind kind, std::uint64_t lane, std::string_view label);
  void fault_end(Micros at, FaultKind kind, std::uint64_t lane);
  void fault_end_all(Micros at, FaultKind kind);
  void fault_span(Micros from, Micros to, FaultKind kind, std::uint64_t lane, std::string_view label);
  void fault_instant(Micros at, FaultKind kind, std::uint64_t lane, std::string_view label);
  // Everything heals: every open fault ends.
  void heal(Micros at);

  void client_sent(Micros at, std::uint64_t client, std::uint64_t op, raft::NodeId node, std::string_view what);
  void client_answered(Micros at, std::uint64_t client, std::uint64_t op, std::string_view outcome);

  void lock_acquired(Micros at, std::uint64_t client, std::string_view resource, std::uint64_t token);
  void lock_released(Micros at, std::uint64_t client, std::string_view why);
  void write_sent(Micros at, std::uint64_t client, std::string_view resource, std::uint64_t token,
                  std::string_view value);
  // `value` names the write (unique per run); `violating`: accepting it broke an invariant.
  void write_landed(Micros at, std::string_view value, bool accepted, bool violating);

  void violation(Micros at, std::string_view invariant, std::string_view message);
  // The run is over at `at`: spans still open end there.
  void finish(Micros at);

  const TimelineRun& run() const { return run_; }
  const std::vector<StateSpan>& states() const { return states_; }
  const std::vector<FaultSpan>& faults() const { return faults_; }
  const std::vector<ClientOp>& ops() const { return ops_; }
  std::size_t ops_dropped() const { return ops_dropped_; }
  const std::vector<LockHold>& holds() const { return holds_; }
  const std::vector<GuardedWrite>& writes() const { return writes_; }
  const std::vector<ViolationMark>& violations() const { return violations_; }
  Micros end() const { return end_; }

 private:
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);

  TimelineRun run_;
  std::vector<StateSpan> states_;
  std::vector<std::size_t> open_state_;  // per node (index node-1): into states_
  std::vector<FaultSpan> faults_;
  std::map<std::pair<FaultKind, std::uint64_t>, std::size_t> open_faults_;
  std::vector<ClientOp> ops_;
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::size_t> open_ops_;
  std::size_t ops_dropped_ = 0;
  std::vector<LockHold> holds_;
  std::map<std::uint64_t, std::size_t> open_holds_;  // by client
  std::vector<GuardedWrite> writes_;
  std::map<std::string, std::size_t, std::less<>> in_flight_;  // by value
  std::vector<ViolationMark> violations_;
  Micros end_ = 0;
};

}  // namespace coord::sim
