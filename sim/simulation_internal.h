// Internal to sim/: the simulated world of one run (simulation.cc runs it and observes it,
// fault_exec.cc applies faults to it). Not part of the simulator's interface.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "raft/config.h"
#include "sim/checkers.h"
#include "sim/env.h"
#include "sim/event_queue.h"
#include "sim/faults.h"
#include "sim/network.h"
#include "sim/replica.h"
#include "sim/simulation.h"
#include "sim/timeline.h"
#include "sim/trace.h"
#include "sim/kv_reference.h"
#include "sim/workload.h"
#include "sim/workload_raft.h"

namespace coord::sim::detail {

// Pacing of the periodic log-matching comparison across replicas.
inline constexpr Micros kLogCheckIntervalUs = 50'000;
// Client <-> replica links: not partitioned (clients move on by timeout instead), just slow.
inline constexpr Micros kClientLinkUsMin = 50;
inline constexpr Micros kClientLinkUsMax = 2'000;
// A replica that stopped itself after a disk error comes back after this long.
inline constexpr Micros kRestartUsMin = 50'000;
inline constexpr Micros kRestartUsMax = 500'000;
inline constexpr Micros kRestartJitterUsMax = 50'000;

class Simulation final : public Env, public ReplicaHooks, public ClientTransport {
 public:
  explicit Simulation(const Options& options);

  Result run();

  // Env.
  Micros now() const override { return now_; }
  void schedule(Micros at, std::function<void()> action) override { queue_.push(at, std::move(action)); }
  void trace(raft::NodeId node, std::string_view what) override { trace_.event(now_, node, what); }
  bool halted() const override { return violation_.has_value(); }

  // ReplicaHooks.
  void send(raft::Message message) override;
  void reply(const ClientReply& reply) override;
  void stepped(const Replica& replica) override;
  void applied(const Replica& replica, const raft::Entry& entry) override;
  void restored(const Replica& replica) override;
  raft::Index acked_max() const override { return acked_.acked_max(); }
  void read_served(const Replica& replica, std::uint64_t request_id, raft::Index read_index,
                   raft::Index acked_max_at_request) override;
  void violation(Violation violation) override { report(std::move(violation)); }
  void fail_stopped(const Replica& replica) override;

  // ClientTransport.
  void submit(raft::NodeId to, ClientRequest request) override;

 private:
  // What the simulation last saw of each replica, to spot role changes.
  struct Observed {
    std::uint64_t incarnation = 0;
    raft::Role role = raft::Role::Follower;
    raft::Term term = 0;
  };

  Replica& replica(raft::NodeId id) { return *replicas_[static_cast<std::size_t>(id - 1)]; }
  Result run_events();
  void report(const Verdict& verdict);
  void report(Violation violation);
  void check_logs();
  void final_checks();
  void check_kv_states();

  // Faults.
  void inject(const Fault& fault);
  raft::NodeId resolve(raft::NodeId node);
  int nodes_down_or_failing() const;
  void restart_later(raft::NodeId id, Micros delay_us);
  void power_loss(Micros downtime_us);
  // Whether a node other than `voter` and `candidate` campaigns in `term` right now.
  bool contested(raft::Term term, raft::NodeId voter, raft::NodeId candidate) const;
  void spring_traps(CrashTrapFault::Trigger trigger, raft::NodeId node);
  void heal_all();

  // Timeline (only when Options::timeline is set).
  void observe_lanes();
  void record_fault(const Fault& fault, raft::NodeId resolved);

  const Options& options_;
  Timeline* const timeline_;
  const Micros heal_at_;
  const raft::Config config_;
  const Micros end_at_;
  Micros now_ = 0;
  EventQueue queue_;
  Trace trace_;
  Network network_;
  Rng client_link_rng_;
  Rng exec_rng_;
  std::vector<std::unique_ptr<Replica>> replicas_;
  // The kv workloads' committed history (null for the raft workload); before the workload,
  // which reads it.
  std::unique_ptr<KvReference> reference_;
  std::unique_ptr<ClientWorkload> workload_;

  ElectionSafety election_;
  LeaderCompleteness completeness_;
  StateMachineSafety state_machine_;
  CommitMonotonic commit_;
  CommitCurrentTerm commit_term_;
  AckedDurability acked_;
  Liveness liveness_;

  std::vector<Observed> observed_;
  bool healed_ = false;
  // A fault's undo applies only if no later fault of the same kind replaced it.
  std::uint64_t link_generation_ = 0;
  std::uint64_t partition_generation_ = 0;
  std::vector<std::uint64_t> drift_generation_;  // per node
  std::vector<std::uint64_t> disk_generation_;   // per node
  struct ArmedTrap {
    CrashTrapFault fault;
    Micros until;
    bool standing = false;  // stays armed after firing; fires half the time
  };
  std::vector<ArmedTrap> traps_;  // in arming order

  std::optional<Violation> violation_;
  std::vector<std::string> recent_at_violation_;
  Stats stats_;
};

}  // namespace coord::sim::detail
