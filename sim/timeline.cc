#include "sim/timeline.h"

#include <algorithm>

namespace coord::sim {

const char* to_string(LaneState state) {
  switch (state) {
    case LaneState::Follower: return "follower";
    case LaneState::PreCandidate: return "pre-candidate";
    case LaneState::Candidate: return "candidate";
    case LaneState::Leader: return "leader";
    case LaneState::Paused: return "paused";
    case LaneState::Down: return "down";
  }
  return "?";
}

const char* to_string(FaultKind kind) {
  switch (kind) {
    case FaultKind::Partition: return "partition";
    case FaultKind::Network: return "network";
    case FaultKind::ClockDrift: return "clock-drift";
    case FaultKind::ClockJump: return "clock-jump";
    case FaultKind::Pause: return "pause";
    case FaultKind::Crash: return "crash";
    case FaultKind::PowerLoss: return "power-loss";
    case FaultKind::CrashTrap: return "crash-trap";
    case FaultKind::DiskFail: return "disk-fail";
    case FaultKind::DiskSlow: return "disk-slow";
    case FaultKind::ClientPause: return "client-pause";
  }
  return "?";
}

void Timeline::replica(Micros at, raft::NodeId node, LaneState state, raft::Term term) {
  if (node == raft::kNoNode) return;
  const auto slot = static_cast<std::size_t>(node - 1);
  if (open_state_.size() <= slot) open_state_.resize(slot + 1, kNone);
  std::size_t& open = open_state_[slot];
  if (open != kNone) {
    StateSpan& s = states_[open];
    if (s.state == state && s.term == term) return;
    s.to = at;  // a zero-width span (two changes in one instant) is kept; the page skips it
  }
  states_.push_back(StateSpan{node, state, term, at, at});
  open = states_.size() - 1;
}

void Timeline::fault_begin(Micros at, FaultKind kind, std::uint64_t lane, std::string_view label) {
  fault_end(at, kind, lane);
  faults_.push_back(FaultSpan{kind, lane, std::string(label), at, at, false});
  open_faults_[{kind, lane}] = faults_.size() - 1;
}

void Timeline::fault_end(Micros at, FaultKind kind, std::uint64_t lane) {
  auto it = open_faults_.find({kind, lane});
  if (it == open_faults_.end()) return;
  faults_[it->second].to = at;
  open_faults_.erase(it);
}

void Timeline::fault_end_all(Micros at, FaultKind kind) {
  for (auto it = open_faults_.begin(); it != open_faults_.end();) {
    if (it->first.first == kind) {
      faults_[it->second].to = at;
      it = open_faults_.erase(it);
    } else {
      ++it;
    }
  }
}

void Timeline::fault_span(Micros from, Micros to, FaultKind kind, std::uint64_t lane, std::string_view label) {
  faults_.push_back(FaultSpan{kind, lane, std::string(label), from, to, false});
}

void Timeline::fault_instant(Micros at, FaultKind kind, std::uint64_t lane, std::string_view label) {
  faults_.push_back(FaultSpan{kind, lane, std::string(label), at, at, true});
}

void Timeline::heal(Micros at) {
  for (const auto& [key, index] : open_faults_) faults_[index].to = at;
  open_faults_.clear();
}

void Timeline::client_sent(Micros at, std::uint64_t client, std::uint64_t op, raft::NodeId node,
                           std::string_view what) {
  auto it = open_ops_.find({client, op});
  if (it != open_ops_.end()) {  // a retry of the same operation, elsewhere
    ops_[it->second].node = node;
    return;
  }
  if (ops_.size() >= kTimelineOpsMax) {
    ++ops_dropped_;
    return;
  }
  ops_.push_back(ClientOp{client, op, std::string(what), node, at, at, {}});
  open_ops_[{client, op}] = ops_.size() - 1;
}

void Timeline::client_answered(Micros at, std::uint64_t client, std::uint64_t op, std::string_view outcome) {
  auto it = open_ops_.find({client, op});
  if (it == open_ops_.end()) return;
  ClientOp& o = ops_[it->second];
  o.to = at;
  o.outcome = outcome;
  open_ops_.erase(it);
}

void Timeline::lock_acquired(Micros at, std::uint64_t client, std::string_view resource, std::uint64_t token) {
  lock_released(at, client, "acquired again");
  holds_.push_back(LockHold{client, std::string(resource), token, at, at, {}});
  open_holds_[client] = holds_.size() - 1;
}

void Timeline::lock_released(Micros at, std::uint64_t client, std::string_view why) {
  auto it = open_holds_.find(client);
  if (it == open_holds_.end()) return;
  holds_[it->second].to = at;
  holds_[it->second].end = why;
  open_holds_.erase(it);
}

void Timeline::write_sent(Micros at, std::uint64_t client, std::string_view resource, std::uint64_t token,
                          std::string_view value) {
  if (writes_.size() >= kTimelineWritesMax) return;
  writes_.push_back(GuardedWrite{client, std::string(resource), token, std::string(value), at, at,
                                 GuardedWrite::Fate::InFlight, false});
  in_flight_.emplace(std::string(value), writes_.size() - 1);
}

void Timeline::write_landed(Micros at, std::string_view value, bool accepted, bool violating) {
  auto it = in_flight_.find(value);
  if (it == in_flight_.end()) return;
  GuardedWrite& w = writes_[it->second];
  w.landed = at;
  w.fate = accepted ? GuardedWrite::Fate::Accepted : GuardedWrite::Fate::Refused;
  w.violating = violating;
  in_flight_.erase(it);
}

void Timeline::violation(Micros at, std::string_view invariant, std::string_view message) {
  violations_.push_back(ViolationMark{at, std::string(invariant), std::string(message)});
}

void Timeline::finish(Micros at) {
  end_ = std::max(at, end_);
  for (std::size_t open : open_state_) {
    if (open != kNone) states_[open].to = at;
  }
  open_state_.clear();
  heal(at);
  open_ops_.clear();  // never answered: they keep to == from, and the page says so
  for (const auto& [client, index] : open_holds_) {
    holds_[index].to = at;
    holds_[index].end = "still held at the end";
  }
  open_holds_.clear();
  for (const auto& [value, index] : in_flight_) writes_[index].landed = at;
  in_flight_.clear();
}

}  // namespace coord::sim
