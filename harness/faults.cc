#include "harness/faults.h"

#include <sys/wait.h>

#include <algorithm>
#include <numeric>
#include <thread>

#include <fmt/format.h>

namespace coord::harness {

using namespace std::chrono_literals;

FaultSchedule::FaultSchedule(std::uint64_t seed, Network& network, std::vector<std::unique_ptr<Member>>& members,
                             bool clock_faults, const std::atomic<bool>& interrupted)
    : rng_(seed), network_(network), members_(members), clock_faults_(clock_faults), interrupted_(interrupted) {}

void FaultSchedule::note(const std::string& kind, const std::string& detail) {
  ++injected_[kind];
  const double at = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  fmt::print("[{:7.1f}s] {} {}\n", at, kind, detail);
  std::fflush(stdout);
}

int FaultSchedule::any_member() {
  return std::uniform_int_distribution<int>(1, static_cast<int>(members_.size()))(rng_);
}

std::chrono::milliseconds FaultSchedule::between(int lo_ms, int hi_ms) {
  return std::chrono::milliseconds(std::uniform_int_distribution<int>(lo_ms, hi_ms)(rng_));
}

void FaultSchedule::supervise_for(std::chrono::milliseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  do {
    for (auto& m : members_) {
      const std::optional<int> status = m->exited();
      if (!status) continue;
      const int index = m->config().index;
      const bool full_now = disk_full_ && index == disk_full_member_;
      // A member may notice the full disk a moment after the space came back: its exit still
      // counts as the disk's, for a few seconds.
      const bool full_lately = index == disk_freed_member_ && std::chrono::steady_clock::now() < disk_freed_grace_;
      if (full_now || full_lately) {
        ++disk_full_exits_;
        if (!full_now) m->start();  // else restarted when the space is back
        continue;
      }
      unexpected_exits_.push_back(fmt::format("{} (status {}{})", m->config().name,
                                              WIFSIGNALED(*status) ? "signal " : "exit ",
                                              WIFSIGNALED(*status) ? WTERMSIG(*status) : WEXITSTATUS(*status)));
      m->start();
    }
    std::this_thread::sleep_for(50ms);
  } while (std::chrono::steady_clock::now() < until && !interrupted_);
}

void FaultSchedule::partition() {
  const int n = static_cast<int>(members_.size());
  std::vector<int> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 1);
  std::shuffle(order.begin(), order.end(), rng_);
  auto cut_both = [&](int a, int b) {
    network_.cut(a, b);
    network_.cut(b, a);
  };
  switch (std::uniform_int_distribution<int>(0, 3)(rng_)) {
    case 0:  // isolate one member from all others
      for (int i = 1; i < n; ++i) cut_both(order[0], order[static_cast<std::size_t>(i)]);
      note("partition-isolate", fmt::format("m{} alone", order[0]));
      return;
    case 1: {  // a minority (1 .. n/2) and a majority
      const int minority = std::uniform_int_distribution<int>(1, n / 2)(rng_);
      for (int i = 0; i < minority; ++i) {
        for (int j = minority; j < n; ++j) cut_both(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
      }
      std::string minority_names;
      for (int i = 0; i < minority; ++i) minority_names += fmt::format(" m{}", order[static_cast<std::size_t>(i)]);
      note("partition-split", "minority" + minority_names);
      return;
    }
    case 2:  // one-way: order[1] stops hearing order[0] (order[0] still hears it)
      network_.cut(order[0], order[1]);
      note("partition-oneway", fmt::format("m{} stops hearing m{}", order[1], order[0]));
      return;
    default: {  // a bridge: order[0] hears both sides, the sides do not hear each other
      const int side = (n - 1) / 2;
      for (int i = 1; i <= side; ++i) {
        for (int j = side + 1; j < n; ++j) cut_both(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
      }
      note("partition-bridge", fmt::format("m{} in the middle", order[0]));
      return;
    }
  }
}

void FaultSchedule::inject_one() {
  const int kinds = clock_faults_ ? 6 : 5;
  const int kind = std::uniform_int_distribution<int>(0, kinds - 1)(rng_);
  const int target = any_member();
  Member& m = *members_[static_cast<std::size_t>(target - 1)];
  switch (kind) {
    case 0:
      partition();
      supervise_for(between(1000, 6000));
      network_.heal_partitions();
      return;
    case 1: {
      Network::LinkFault f;
      f.delay_ms = std::uniform_int_distribution<int>(5, 150)(rng_);
      f.jitter_ms = f.delay_ms / 2;
      f.loss_pct = std::uniform_int_distribution<int>(0, 20)(rng_);
      f.duplicate_pct = std::uniform_int_distribution<int>(0, 10)(rng_);
      f.reorder_pct = std::uniform_int_distribution<int>(0, 25)(rng_);
      network_.degrade(target, f);
      note(network_.netem_available() ? "link-netem" : network_.tbf_available() ? "link-slow-loss-dup" : "link-loss-dup",
           fmt::format("m{} delay {}ms loss {}% duplicate {}% reorder {}%", target, f.delay_ms, f.loss_pct,
                       f.duplicate_pct, f.reorder_pct));
      supervise_for(between(1000, 6000));
      network_.restore(target);
      return;
    }
    case 2:
      m.pause();
      note("pause", m.config().name);
      supervise_for(between(300, 5000));
      m.resume();
      return;
    case 3:
      m.kill9();
      note("kill9", m.config().name);
      supervise_for(between(200, 3000));
      m.start();
      return;
    case 4:
      m.fill_disk();
      disk_full_ = true;
      disk_full_member_ = target;
      note("disk-full", m.config().name);
      supervise_for(between(1000, 5000));
      m.free_disk();
      disk_full_ = false;
      disk_full_member_ = 0;
      disk_freed_member_ = target;
      disk_freed_grace_ = std::chrono::steady_clock::now() + 3s;
      if (!m.running()) m.start();
      return;
    default: {
      const bool forward = std::uniform_int_distribution<int>(0, 1)(rng_) == 1;
      const int seconds = std::uniform_int_distribution<int>(1, 20)(rng_);
      m.set_clock(fmt::format("{}{}s", forward ? '+' : '-', seconds));
      note(forward ? "clock-forward" : "clock-back", fmt::format("{} {}{}s", m.config().name, forward ? '+' : '-', seconds));
      supervise_for(between(2000, 6000));
      m.set_clock("+0");
      return;
    }
  }
}

void FaultSchedule::run(std::chrono::steady_clock::time_point until) {
  while (std::chrono::steady_clock::now() < until && !interrupted_) {
    supervise_for(between(300, 2000));
    if (std::chrono::steady_clock::now() >= until || interrupted_) break;
    inject_one();
  }
  heal_all();
}

void FaultSchedule::heal_all() {
  network_.heal_partitions();
  for (auto& m : members_) {
    network_.restore(m->config().index);
    m->set_clock("+0");
    m->free_disk();
    if (m->paused()) m->resume();
  }
  disk_full_ = false;
  disk_full_member_ = 0;
  supervise_for(0ms);  // restarts (and reports) members that exited
  for (auto& m : members_) {
    if (!m->running()) m->start();
  }
}

}  // namespace coord::harness
