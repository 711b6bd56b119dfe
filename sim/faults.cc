#include "sim/faults.h"

#include <algorithm>

#include <fmt/format.h>

#include "sim/clock.h"

namespace coord::sim {

std::string FaultFamilies::describe() const {
  std::string out;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!out.empty()) out += ',';
    out += name;
  };
  add(network, "network");
  add(clock, "clock");
  add(pause, "pause");
  add(crash, "crash");
  add(disk, "disk");
  return out.empty() ? "none" : out;
}

std::optional<FaultFamilies> parse_fault_families(std::string_view text, std::string* error) {
  if (text == "none") return FaultFamilies{};
  if (text == "all") return FaultFamilies::all();
  FaultFamilies f;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view name = text.substr(start, comma - start);
    if (name == "network") {
      f.network = true;
    } else if (name == "clock") {
      f.clock = true;
    } else if (name == "pause") {
      f.pause = true;
    } else if (name == "crash") {
      f.crash = true;
    } else if (name == "disk") {
      f.disk = true;
    } else {
      if (error) {
        *error = fmt::format("unknown fault family '{}' (expected none, all, or a comma list of "
                             "network, clock, pause, crash, disk)",
                             name);
      }
      return std::nullopt;
    }
    start = comma + 1;
  }
  return f;
}

LinkParams baseline_link() { return LinkParams{}; }

namespace {

raft::NodeId any_node(int nodes, Rng& rng) { return 1 + rng.below(static_cast<std::uint64_t>(nodes)); }

// A node, or (one time in `leader_one_in`) whoever leads then.
raft::NodeId node_or_leader(int nodes, Rng& rng, std::uint64_t leader_one_in) {
  if (rng.one_in(leader_one_in)) return raft::kNoNode;
  return any_node(nodes, rng);
}

// Durations are skewed short: most faults are brief, some are long.
Micros skewed_duration(Rng& rng, Micros min_us, Micros max_us) {
  if (rng.one_in(4)) return rng.between(min_us, max_us);
  return rng.between(min_us, std::max(min_us, max_us / 4));
}

PartitionFault plan_partition(int nodes, Rng& rng) {
  PartitionFault f;
  f.duration_us = skewed_duration(rng, 200'000, 4'000'000);
  switch (rng.below(4)) {
    case 0: {
      const raft::NodeId n = any_node(nodes, rng);
      f.partition = isolate(nodes, n);
      f.shape = fmt::format("isolate n{}", n);
      break;
    }
    case 1: {
      // A minority group; the rest is the majority side.
      const int size = 1 + static_cast<int>(rng.below(static_cast<std::uint64_t>(std::max(1, (nodes - 1) / 2))));
      std::vector<raft::NodeId> all;
      for (int i = 1; i <= nodes; ++i) all.push_back(static_cast<raft::NodeId>(i));
      std::vector<raft::NodeId> group;
      for (int i = 0; i < size; ++i) {
        const std::size_t k = static_cast<std::size_t>(rng.below(all.size()));
        group.push_back(all[k]);
        all.erase(all.begin() + static_cast<std::ptrdiff_t>(k));
      }
      std::sort(group.begin(), group.end());
      f.partition = split(nodes, group);
      std::string names;
      for (raft::NodeId id : group) names += fmt::format("{}n{}", names.empty() ? "" : ",", id);
      f.shape = fmt::format("split {{{}}} from the rest", names);
      break;
    }
    case 2: {
      const raft::NodeId from = any_node(nodes, rng);
      raft::NodeId to = 1 + rng.below(static_cast<std::uint64_t>(nodes - 1));
      if (to >= from) ++to;
      f.partition = one_way(nodes, from, to);
      f.shape = fmt::format("one-way n{}->n{}", from, to);
      break;
    }
    default: {
      const raft::NodeId b = any_node(nodes, rng);
      f.partition = bridge(nodes, b);
      f.shape = fmt::format("bridge via n{}", b);
      break;
    }
  }
  return f;
}

LinkFault plan_link(Rng& rng) {
  LinkFault f;
  f.params = baseline_link();
  f.duration_us = skewed_duration(rng, 300'000, 5'000'000);
  switch (rng.below(4)) {
    case 0:
      f.params.loss_ppm = static_cast<std::uint32_t>(rng.between(10'000, 300'000));
      f.what = fmt::format("loss {}%", f.params.loss_ppm / 10'000);
      break;
    case 1:
      f.params.duplicate_ppm = static_cast<std::uint32_t>(rng.between(10'000, 200'000));
      f.what = fmt::format("duplication {}%", f.params.duplicate_ppm / 10'000);
      break;
    case 2:
      f.params.latency_us_base = rng.between(2'000, 30'000);
      f.params.latency_us_jitter_max = rng.between(1'000, 50'000);
      f.params.tail_ppm = 50'000;
      f.params.tail_latency_us_max = 300'000;
      f.what = fmt::format("latency spike base {} ms", f.params.latency_us_base / 1000);
      break;
    default:
      f.params.loss_ppm = static_cast<std::uint32_t>(rng.between(10'000, 100'000));
      f.params.duplicate_ppm = static_cast<std::uint32_t>(rng.between(10'000, 100'000));
      f.params.latency_us_jitter_max = rng.between(1'000, 20'000);
      f.what = "flaky (loss, duplication, jitter)";
      break;
  }
  return f;
}

CrashTrapFault plan_trap(int nodes, Rng& rng) {
  CrashTrapFault f;
  f.armed_us = rng.between(500'000, 5'000'000);
  switch (rng.below(3)) {
    case 0:
      f.trigger = CrashTrapFault::Trigger::VoteGranted;
      f.node = rng.one_in(2) ? raft::kNoNode : any_node(nodes, rng);
      f.downtime_us = rng.between(1'000, kQuickRestartUsMax);
      break;
    case 1:
      f.trigger = CrashTrapFault::Trigger::AppendAcked;
      f.node = rng.one_in(2) ? raft::kNoNode : any_node(nodes, rng);
      f.whole_cluster = rng.one_in(2);
      f.downtime_us = rng.between(1'000, 1'000'000);
      break;
    default:
      f.trigger = CrashTrapFault::Trigger::ClientAcked;
      f.whole_cluster = true;
      f.downtime_us = rng.between(1'000, 1'000'000);
      break;
  }
  return f;
}

Fault plan_one(const FaultFamilies& families, int nodes, Rng& rng) {
  std::vector<int> enabled;
  if (families.network) enabled.push_back(0);
  if (families.clock) enabled.push_back(1);
  if (families.pause) enabled.push_back(2);
  if (families.crash) enabled.push_back(3);
  if (families.disk) enabled.push_back(4);
  switch (enabled[static_cast<std::size_t>(rng.below(enabled.size()))]) {
    case 0:
      if (rng.one_in(2)) return plan_partition(nodes, rng);
      return plan_link(rng);
    case 1:
      if (rng.one_in(2)) {
        return ClockDriftFault{any_node(nodes, rng), rng.between_signed(kRatePpmMin, kRatePpmMax),
                               rng.between(1'000'000, 10'000'000)};
      } else {
        std::int64_t delta = rng.between_signed(20'000, kClockJumpUsMax);
        if (rng.one_in(2)) delta = -delta;
        return ClockJumpFault{any_node(nodes, rng), delta};
      }
    case 2:
      return PauseFault{node_or_leader(nodes, rng, 3), skewed_duration(rng, 50'000, kPauseUsMax)};
    case 3: {
      if (rng.one_in(3)) return plan_trap(nodes, rng);
      if (rng.one_in(6)) return CrashFault{raft::kNoNode, rng.between(1'000, 2'000'000), true};
      const raft::NodeId node = node_or_leader(nodes, rng, 2);
      if (rng.one_in(4)) return CrashFault{node, rng.between(1'000, kQuickRestartUsMax), false};
      return CrashFault{node, skewed_duration(rng, 50'000, kDowntimeUsMax), false};
    }
    default:
      if (rng.one_in(2)) return DiskFailFault{any_node(nodes, rng), skewed_duration(rng, 100'000, 2'000'000)};
      DiskParams slow;
      slow.fsync_us_min = rng.between(2'000, 20'000);
      slow.fsync_us_max = slow.fsync_us_min + rng.between(0, 80'000);
      return DiskSlowFault{any_node(nodes, rng), slow, skewed_duration(rng, 500'000, 5'000'000)};
  }
}

}  // namespace

std::vector<PlannedFault> plan_faults(const FaultFamilies& families, int nodes, Micros until_us, Rng& rng) {
  std::vector<PlannedFault> plan;
  if (!families.any() || nodes < 1) return plan;
  for (Micros t = kFaultsStartUs + rng.between(0, kFaultGapUsMax); t < until_us;
       t += rng.between(kFaultGapUsMin, kFaultGapUsMax)) {
    plan.push_back(PlannedFault{t, plan_one(families, nodes, rng)});
  }
  return plan;
}

std::vector<std::int64_t> plan_clock_skews(const FaultFamilies& families, int nodes, Rng& rng) {
  std::vector<std::int64_t> skews(static_cast<std::size_t>(nodes), 0);
  if (!families.clock) return skews;
  for (auto& s : skews) s = rng.between_signed(-1'000'000, 1'000'000);
  return skews;
}

namespace {

std::string who(raft::NodeId node) { return node == raft::kNoNode ? std::string("leader") : fmt::format("n{}", node); }

std::string ms(Micros us) { return fmt::format("{}.{:06} s", us / 1'000'000, us % 1'000'000); }

}  // namespace

const char* to_string(CrashTrapFault::Trigger trigger) {
  switch (trigger) {
    case CrashTrapFault::Trigger::VoteGranted: return "vote-granted";
    case CrashTrapFault::Trigger::VoteContested: return "vote-contested";
    case CrashTrapFault::Trigger::AppendAcked: return "append-acked";
    case CrashTrapFault::Trigger::ClientAcked: return "client-acked";
  }
  return "?";
}

std::string describe(const Fault& fault) {
  struct Visitor {
    std::string operator()(const PartitionFault& f) const { return fmt::format("partition {} for {}", f.shape, ms(f.duration_us)); }
    std::string operator()(const LinkFault& f) const { return fmt::format("network {} for {}", f.what, ms(f.duration_us)); }
    std::string operator()(const ClockDriftFault& f) const {
      return fmt::format("clock drift {} rate {}ppm for {}", who(f.node), f.rate_ppm, ms(f.duration_us));
    }
    std::string operator()(const ClockJumpFault& f) const {
      return fmt::format("clock jump {} by {} us", who(f.node), f.delta_us);
    }
    std::string operator()(const PauseFault& f) const { return fmt::format("pause {} for {}", who(f.node), ms(f.duration_us)); }
    std::string operator()(const CrashFault& f) const {
      return fmt::format("crash {} for {}", f.whole_cluster ? std::string("every node") : who(f.node), ms(f.downtime_us));
    }
    std::string operator()(const CrashTrapFault& f) const {
      return fmt::format("crash trap: {} right after {} by {}, down {}, armed {}",
                         f.whole_cluster ? "every node" : "that node", to_string(f.trigger),
                         f.node == raft::kNoNode ? std::string("any node") : who(f.node), ms(f.downtime_us),
                         ms(f.armed_us));
    }
    std::string operator()(const DiskFailFault& f) const {
      return fmt::format("disk of {} fails for {}", who(f.node), ms(f.duration_us));
    }
    std::string operator()(const DiskSlowFault& f) const {
      return fmt::format("disk of {} slow (fsync {}..{} us) for {}", who(f.node), f.params.fsync_us_min,
                         f.params.fsync_us_max, ms(f.duration_us));
    }
  };
  return std::visit(Visitor{}, fault);
}

}  // namespace coord::sim
