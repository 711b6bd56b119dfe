#include "sim/network.h"

#include <algorithm>

#include <fmt/format.h>

namespace coord::sim {

Partition::Partition(int nodes)
    : nodes_(nodes), blocked_(static_cast<std::size_t>(nodes) * static_cast<std::size_t>(nodes)) {}

std::size_t Partition::slot(raft::NodeId from, raft::NodeId to) const {
  return static_cast<std::size_t>((from - 1) * static_cast<raft::NodeId>(nodes_) + (to - 1));
}

bool Partition::blocked(raft::NodeId from, raft::NodeId to) const {
  if (from == 0 || to == 0 || from > static_cast<raft::NodeId>(nodes_) ||
      to > static_cast<raft::NodeId>(nodes_)) {
    return false;
  }
  return blocked_[slot(from, to)];
}

void Partition::block(raft::NodeId from, raft::NodeId to) {
  if (from == to) return;  // a node always reaches itself
  blocked_[slot(from, to)] = true;
}

void Partition::block_both(raft::NodeId a, raft::NodeId b) {
  block(a, b);
  block(b, a);
}

bool Partition::any() const { return std::find(blocked_.begin(), blocked_.end(), true) != blocked_.end(); }

std::string Partition::describe() const {
  std::string out;
  for (raft::NodeId from = 1; from <= static_cast<raft::NodeId>(nodes_); ++from) {
    for (raft::NodeId to = 1; to <= static_cast<raft::NodeId>(nodes_); ++to) {
      if (!blocked(from, to)) continue;
      if (!out.empty()) out += ' ';
      out += fmt::format("{}->{}", from, to);
    }
  }
  return out.empty() ? "none" : out;
}

Partition isolate(int nodes, raft::NodeId node) { return split(nodes, {node}); }

Partition split(int nodes, const std::vector<raft::NodeId>& group) {
  Partition p(nodes);
  auto in_group = [&](raft::NodeId id) {
    return std::find(group.begin(), group.end(), id) != group.end();
  };
  for (raft::NodeId a = 1; a <= static_cast<raft::NodeId>(nodes); ++a) {
    for (raft::NodeId b = 1; b <= static_cast<raft::NodeId>(nodes); ++b) {
      if (in_group(a) != in_group(b)) p.block(a, b);
    }
  }
  return p;
}

Partition one_way(int nodes, raft::NodeId from, raft::NodeId to) {
  Partition p(nodes);
  p.block(from, to);
  return p;
}

Partition bridge(int nodes, raft::NodeId bridge_node) {
  // The others alternate between halves, so both halves are as equal as possible.
  std::vector<raft::NodeId> left, right;
  for (raft::NodeId id = 1; id <= static_cast<raft::NodeId>(nodes); ++id) {
    if (id == bridge_node) continue;
    (left.size() <= right.size() ? left : right).push_back(id);
  }
  Partition p(nodes);
  for (raft::NodeId a : left) {
    for (raft::NodeId b : right) p.block_both(a, b);
  }
  return p;
}

const char* to_string(Route::Outcome outcome) {
  switch (outcome) {
    case Route::Outcome::Delivered: return "delivered";
    case Route::Outcome::Lost: return "lost";
    case Route::Outcome::Blocked: return "blocked";
    case Route::Outcome::Overflow: return "dropped (link queue full)";
  }
  return "?";
}

Network::Network(int nodes, Rng rng)
    : nodes_(nodes),
      rng_(rng),
      partition_(nodes),
      in_flight_(static_cast<std::size_t>(nodes) * static_cast<std::size_t>(nodes), 0) {}

std::size_t& Network::in_flight(raft::NodeId from, raft::NodeId to) {
  return in_flight_[static_cast<std::size_t>((from - 1) * static_cast<raft::NodeId>(nodes_) + (to - 1))];
}

void Network::arrived(raft::NodeId from, raft::NodeId to) {
  std::size_t& n = in_flight(from, to);
  if (n > 0) --n;
}

Micros Network::latency() {
  Micros us = params_.latency_us_base + rng_.between(0, params_.latency_us_jitter_max);
  if (rng_.chance_ppm(params_.tail_ppm)) us += rng_.between(0, params_.tail_latency_us_max);
  return std::max<Micros>(us, 1);  // never in the same instant: a send is not a function call
}

Route Network::route(raft::NodeId from, raft::NodeId to) {
  Route r;
  // Draw the same numbers whatever the outcome, so a partition elsewhere in the run does not
  // shift every later latency.
  const bool lost = rng_.chance_ppm(params_.loss_ppm);
  const bool duplicated = rng_.chance_ppm(params_.duplicate_ppm);
  const Micros first = latency();
  const Micros second = latency();
  if (partition_.blocked(from, to)) {
    r.outcome = Route::Outcome::Blocked;
    return r;
  }
  if (lost) {
    r.outcome = Route::Outcome::Lost;
    return r;
  }
  std::size_t& queued = in_flight(from, to);
  if (queued >= kInFlightPerLinkMax) {
    r.outcome = Route::Outcome::Overflow;
    return r;
  }
  r.outcome = Route::Outcome::Delivered;
  r.copies = duplicated && queued + 1 < kInFlightPerLinkMax ? 2 : 1;
  queued += static_cast<std::size_t>(r.copies);
  r.delay_us[0] = first;
  r.delay_us[1] = second;
  return r;
}

}  // namespace coord::sim
