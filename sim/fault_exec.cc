// Applies planned faults to the simulated world, undoes them after their duration, springs
// crash traps, and heals everything when the faulty period ends.
#include <algorithm>

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
    if (timeline_) record_fault(fault, raft::kNoNode);
    const std::uint64_t generation = ++partition_generation_;
    schedule(now_ + f->duration_us, [this, generation] {
      if (healed_ || generation != partition_generation_) return;
      network_.heal();
      if (timeline_) timeline_->fault_end_all(now_, FaultKind::Partition);
      trace(0, "partition healed");
    });
  } else if (auto* f = std::get_if<LinkFault>(&fault)) {
    network_.set_params(f->params);
    if (timeline_) record_fault(fault, raft::kNoNode);
    const std::uint64_t generation = ++link_generation_;
    schedule(now_ + f->duration_us, [this, generation] {
      if (healed_ || generation != link_generation_) return;
      network_.set_params(baseline_link());
      if (timeline_) timeline_->fault_end(now_, FaultKind::Network, 0);
      trace(0, "network links back to normal");
    });
  } else if (auto* f = std::get_if<ClockDriftFault>(&fault)) {
    Replica& r = replica(f->node);
    r.clock().set_rate(now_, f->rate_ppm);
    r.clock_changed();
    if (timeline_) record_fault(fault, f->node);
    const std::uint64_t generation = ++drift_generation_[static_cast<std::size_t>(f->node - 1)];
    const raft::NodeId id = f->node;
    schedule(now_ + f->duration_us, [this, generation, id] {
      if (healed_ || generation != drift_generation_[static_cast<std::size_t>(id - 1)]) return;
      replica(id).clock().set_rate(now_, kRatePpmNominal);
      replica(id).clock_changed();
      if (timeline_) timeline_->fault_end(now_, FaultKind::ClockDrift, id);
      trace(id, "clock rate back to nominal");
    });
  } else if (auto* f = std::get_if<ClockJumpFault>(&fault)) {
    Replica& r = replica(f->node);
    r.clock().jump(now_, f->delta_us);
    r.clock_changed();
    if (timeline_) record_fault(fault, f->node);
  } else if (auto* f = std::get_if<PauseFault>(&fault)) {
    Replica& r = replica(resolve(f->node));
    if (!r.alive()) {
      trace(0, "fault skipped: node is down");
      return;
    }
    r.pause(now_ + f->duration_us);
    if (timeline_) record_fault(fault, r.id());
  } else if (auto* f = std::get_if<CrashFault>(&fault); f && f->whole_cluster) {
    if (timeline_) record_fault(fault, raft::kNoNode);
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
    if (timeline_) record_fault(fault, id);
    restart_later(id, f->downtime_us);
  } else if (auto* f = std::get_if<DiskFailFault>(&fault)) {
    const raft::NodeId id = f->node;
    Replica& r = replica(id);
    if (r.disk().failing() || (r.alive() && nodes_down_or_failing() >= crash_cap)) {
      trace(0, "fault skipped: too many nodes down");
      return;
    }
    r.disk().set_failing(true);
    if (timeline_) record_fault(fault, id);
    const std::uint64_t generation = ++disk_generation_[static_cast<std::size_t>(id - 1)];
    schedule(now_ + f->duration_us, [this, generation, id] {
      if (healed_ || generation != disk_generation_[static_cast<std::size_t>(id - 1)]) return;
      Replica& rr = replica(id);
      rr.disk().set_failing(false);
      if (timeline_) timeline_->fault_end(now_, FaultKind::DiskFail, id);
      trace(id, "disk works again");
      if (!rr.alive()) restart_later(id, exec_rng_.between(kRestartUsMin, kRestartUsMax));
    });
  } else if (auto* f = std::get_if<DiskSlowFault>(&fault)) {
    const raft::NodeId id = f->node;
    replica(id).disk().set_params(f->params);
    if (timeline_) record_fault(fault, id);
    const std::uint64_t generation = ++disk_generation_[static_cast<std::size_t>(id - 1)];
    schedule(now_ + f->duration_us, [this, generation, id] {
      if (healed_ || generation != disk_generation_[static_cast<std::size_t>(id - 1)]) return;
      replica(id).disk().set_params(DiskParams{});
      if (timeline_) timeline_->fault_end(now_, FaultKind::DiskSlow, id);
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
    if (timeline_) {
      timeline_->fault_instant(now_, FaultKind::CrashTrap, fired.whole_cluster ? 0 : node,
                               fmt::format("crash trap sprung: {} by n{}{}", to_string(trigger), node,
                                           fired.whole_cluster ? " (power loss)" : ""));
    }
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
  if (timeline_) timeline_->heal(now_);
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


// ---------------------------------------------------------------------------------------------
// Timeline

void Simulation::observe_lanes() {
  for (const auto& r : replicas_) {
    LaneState state = LaneState::Down;
    raft::Term term = 0;
    if (const raft::Node* n = r->node(); n && r->alive()) {
      term = n->term();
      switch (n->role()) {
        case raft::Role::Follower: state = LaneState::Follower; break;
        case raft::Role::PreCandidate: state = LaneState::PreCandidate; break;
        case raft::Role::Candidate: state = LaneState::Candidate; break;
        case raft::Role::Leader: state = LaneState::Leader; break;
      }
      if (r->paused()) state = LaneState::Paused;
    }
    timeline_->replica(now_, r->id(), state, term);
  }
}

// `resolved`: the node a per-node fault acts on (after "the leader" was resolved).
void Simulation::record_fault(const Fault& fault, raft::NodeId resolved) {
  const std::string label = describe(fault);
  if (auto* f = std::get_if<PartitionFault>(&fault)) {
    timeline_->fault_end_all(now_, FaultKind::Partition);
    timeline_->fault_begin(now_, FaultKind::Partition, 0, label);
    // Shaded on the lanes of the nodes with a cut link.
    const auto n = static_cast<raft::NodeId>(options_.nodes);
    for (raft::NodeId a = 1; a <= n; ++a) {
      std::string cut;
      for (raft::NodeId b = 1; b <= n; ++b) {
        if (a == b) continue;
        if (f->partition.blocked(a, b)) cut += fmt::format(" {}->{}", a, b);
        if (f->partition.blocked(b, a)) cut += fmt::format(" {}->{}", b, a);
      }
      if (!cut.empty()) timeline_->fault_begin(now_, FaultKind::Partition, a, label + "; cut:" + cut);
    }
  } else if (std::holds_alternative<LinkFault>(fault)) {
    timeline_->fault_begin(now_, FaultKind::Network, 0, label);
  } else if (std::holds_alternative<ClockDriftFault>(fault)) {
    timeline_->fault_begin(now_, FaultKind::ClockDrift, resolved, label);
  } else if (std::holds_alternative<ClockJumpFault>(fault)) {
    timeline_->fault_instant(now_, FaultKind::ClockJump, resolved, label);
  } else if (auto* p = std::get_if<PauseFault>(&fault)) {
    timeline_->fault_span(now_, std::min(now_ + p->duration_us, heal_at_), FaultKind::Pause, resolved, label);
  } else if (auto* c = std::get_if<CrashFault>(&fault)) {
    timeline_->fault_instant(now_, c->whole_cluster ? FaultKind::PowerLoss : FaultKind::Crash, resolved, label);
  } else if (std::holds_alternative<DiskFailFault>(fault)) {
    timeline_->fault_begin(now_, FaultKind::DiskFail, resolved, label);
  } else if (std::holds_alternative<DiskSlowFault>(fault)) {
    timeline_->fault_begin(now_, FaultKind::DiskSlow, resolved, label);
  }
}

}  // namespace coord::sim::detail
