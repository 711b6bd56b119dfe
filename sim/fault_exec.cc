// Applies planned faults to the simulated world, undoes them after their duration, springs
// crash traps, and heals everything when the faulty period ends.
#include <fmt/format.h>

#include "sim/simulation_internal.h"

namespace coord::sim::detail {

// ---------------------------------------------------------------------------------------------
// Faults

raft::NodeId Simulation::resolve(raft::NodeId node) {
  if (node != raft::kNoNode) return node;
  raft::NodeId leader = raft::kNoNode;
  raft::Term term = 0;
  for (const auto& r : replicas_) {
    const raft::Node* n = r->node();
    if (n && n->role() == raft::Role::Leader && n->term() >= term) {
      leader = r->id();
      term = n->term();
    }
  }
  if (leader != raft::kNoNode) return leader;
  return 1 + exec_rng_.below(static_cast<std::uint64_t>(options_.nodes));
}

int Simulation::nodes_down_or_failing() const {
  int count = 0;
  for (const auto& r : replicas_) {
    if (!r->alive() || r->disk().failing()) ++count;
  }
  return count;
}

void Simulation::restart_later(raft::NodeId id, Micros delay_us) {
  schedule(now_ + delay_us, [this, id] {
    Replica& r = replica(id);
    if (healed_ || r.alive() || r.disk().failing()) return;
    r.start();
  });
}

void Simulation::inject(const Fault& fault) {
  // Crashes and disk failures are capped so a quorum of nodes is usually running: the point is
  // to exercise recovery while the log grows, not to stop the cluster (partitions and pauses
  // still can).
  const int crash_cap = (options_.nodes - 1) / 2;
  ++stats_.faults_injected;
  trace(0, fmt::format("fault: {}", describe(fault)));
  if (auto* f = std::get_if<PartitionFault>(&fault)) {
    network_.set_partition(f->partition);
    const std::uint64_t generation = ++partition_generation_;
    schedule(now_ + f->duration_us, [this, generation] {
      if (healed_ || generation != partition_generation_) return;
      network_.heal();
      trace(0, "partition healed");
    });
  } else if (auto* f = std::get_if<LinkFault>(&fault)) {
    network_.set_params(f->params);
    const std::uint64_t generation = ++link_generation_;
    schedule(now_ + f->duration_us, [this, generation] {
      if (healed_ || generation != link_generation_) return;
      network_.set_params(baseline_link());
      trace(0, "network links back to normal");
    });
  } else if (auto* f = std::get_if<ClockDriftFault>(&fault)) {
    Replica& r = replica(f->node);
    r.clock().set_rate(now_, f->rate_ppm);
    r.clock_changed();
    const std::uint64_t generation = ++drift_generation_[static_cast<std::size_t>(f->node - 1)];
    const raft::NodeId id = f->node;
    schedule(now_ + f->duration_us, [this, generation, id] {
      if (healed_ || generation != drift_generation_[static_cast<std::size_t>(id - 1)]) return;
      replica(id).clock().set_rate(now_, kRatePpmNominal);
      replica(id).clock_changed();
      trace(id, "clock rate back to nominal");
    });
  } else if (auto* f = std::get_if<ClockJumpFault>(&fault)) {
    Replica& r = replica(f->node);
    r.clock().jump(now_, f->delta_us);
    r.clock_changed();
  } else if (auto* f = std::get_if<PauseFault>(&fault)) {
    Replica& r = replica(resolve(f->node));
    if (!r.alive()) {
      trace(0, "fault skipped: node is down");
      return;
    }
    r.pause(now_ + f->duration_us);
  } else if (auto* f = std::get_if<CrashFault>(&fault); f && f->whole_cluster) {
    power_loss(f->downtime_us);
  } else if (auto* f = std::get_if<CrashTrapFault>(&fault)) {
    traps_.push_back(ArmedTrap{*f, now_ + f->armed_us});
  } else if (auto* f = std::get_if<CrashFault>(&fault)) {
    const raft::NodeId id = resolve(f->node);
    Replica& r = replica(id);
    if (!r.alive() || nodes_down_or_failing() >= crash_cap) {
      trace(0, "fault skipped: node down or too many down");
      return;
    }
    r.crash("fault");
    restart_later(id, f->downtime_us);
  } else if (auto* f = std::get_if<DiskFailFault>(&fault)) {
    const raft::NodeId id = f->node;
    Replica& r = replica(id);
    if (r.disk().failing() || (r.alive() && nodes_down_or_failing() >= crash_cap)) {
      trace(0, "fault skipped: too many nodes down");
      return;
    }
    r.disk().set_failing(true);
    const std::uint64_t generation = ++disk_generation_[static_cast<std::size_t>(id - 1)];
    schedule(now_ + f->duration_us, [this, generation, id] {
      if (healed_ || generation != disk_generation_[static_cast<std::size_t>(id - 1)]) return;
      Replica& rr = replica(id);
      rr.disk().set_failing(false);
      trace(id, "disk works again");
      if (!rr.alive()) restart_later(id, exec_rng_.between(kRestartUsMin, kRestartUsMax));
    });
  } else if (auto* f = std::get_if<DiskSlowFault>(&fault)) {
    const raft::NodeId id = f->node;
    replica(id).disk().set_params(f->params);
    const std::uint64_t generation = ++disk_generation_[static_cast<std::size_t>(id - 1)];
    schedule(now_ + f->duration_us, [this, generation, id] {
      if (healed_ || generation != disk_generation_[static_cast<std::size_t>(id - 1)]) return;
      replica(id).disk().set_params(DiskParams{});
      trace(id, "disk speed back to normal");
    });
  }
}

void Simulation::power_loss(Micros downtime_us) {
  for (auto& r : replicas_) {
    if (!r->alive()) continue;
    r->crash("power loss");
    // Machines come back at slightly different moments.
    restart_later(r->id(), downtime_us + exec_rng_.between(0, kRestartJitterUsMax));
  }
}

bool Simulation::contested(raft::Term term, raft::NodeId voter, raft::NodeId candidate) const {
  for (const auto& r : replicas_) {
    const raft::Node* n = r->node();
    if (!n || r->id() == voter || r->id() == candidate) continue;
    if (n->role() == raft::Role::Candidate && n->term() == term) return true;
  }
  return false;
}

void Simulation::spring_traps(CrashTrapFault::Trigger trigger, raft::NodeId node) {
  for (auto it = traps_.begin(); it != traps_.end();) {
    if (it->until < now_) {
      it = traps_.erase(it);
      continue;
    }
    const CrashTrapFault& f = it->fault;
    if (f.trigger != trigger || (f.node != raft::kNoNode && f.node != node)) {
      ++it;
      continue;
    }
    if (it->standing && exec_rng_.one_in(2)) return;
    const CrashTrapFault fired = f;
    if (!it->standing) traps_.erase(it);
    trace(0, fmt::format("crash trap sprung: {} by n{}", to_string(trigger), node));
    // Right after the current step, at the same instant: the node has just said what it said
    // and takes no further input.
    if (fired.whole_cluster) {
      for (auto& r : replicas_) r->doom();
    } else {
      replica(node).doom();
    }
    schedule(now_, [this, fired, node] {
      if (healed_) return;
      if (fired.whole_cluster) {
        power_loss(fired.downtime_us);
        return;
      }
      Replica& r = replica(node);
      if (!r.alive()) return;
      r.crash(fmt::format("trap after {}", to_string(fired.trigger)));
      restart_later(node, fired.downtime_us);
    });
    return;
  }
}

void Simulation::heal_all() {
  healed_ = true;
  traps_.clear();
  trace(0, "heal: faults stop; network, clocks and disks back to normal; every node up");
  network_.heal();
  network_.set_params(baseline_link());
  for (auto& r : replicas_) {
    r->disk().set_failing(false);
    r->disk().set_params(DiskParams{});
    r->clock().set_rate(now_, kRatePpmNominal);
    if (r->alive() && r->paused()) r->wake();
    if (r->alive()) r->clock_changed();
    if (!r->alive()) r->start();
  }
  liveness_.observe_heal(now_);
}

}  // namespace coord::sim::detail
