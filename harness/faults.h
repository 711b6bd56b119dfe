// The fault schedule: from a seed, one fault after another (a pause of 0.3 to 2 s between
// them), each held for a while and then healed, until the deadline; meanwhile it watches the
// members and restarts any that exits (after a full disk: once the space is freed).
//
// Kinds: partitions (isolate one member; split into a minority and a majority; one-way, where
// one member stops hearing another; a bridge, two sides that only one member hears both of),
// link faults on one member (netem delay/jitter/loss/duplication/reordering, or iptables
// loss/duplication without netem), SIGSTOP/SIGCONT, kill -9 and restart from the data dir, the
// clock of one member jumped forward or back (libfaketime), and a full disk for one member.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "harness/member.h"
#include "harness/network.h"

namespace coord::harness {

class FaultSchedule {
 public:
  FaultSchedule(std::uint64_t seed, Network& network, std::vector<std::unique_ptr<Member>>& members,
                bool clock_faults, const std::atomic<bool>& interrupted);

  // Injects faults until `until` (or an interrupt), then heals everything.
  void run(std::chrono::steady_clock::time_point until);
  // Heals every fault and restarts members that are down.
  void heal_all();
  // Waits `d`, restarting members that exit meanwhile (also used outside run()).
  void supervise_for(std::chrono::milliseconds d);

  const std::map<std::string, int>& injected() const { return injected_; }
  int disk_full_exits() const { return disk_full_exits_; }
  // Members that exited without a fault that explains it (kill -9 or a full disk): each with
  // its member name and wait status.
  const std::vector<std::string>& unexpected_exits() const { return unexpected_exits_; }

 private:
  // Counts a fault and prints it with the time since the schedule began.
  void note(const std::string& kind, const std::string& detail);
  int any_member();
  std::chrono::milliseconds between(int lo_ms, int hi_ms);
  void partition();
  void inject_one();

  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::mt19937_64 rng_;
  Network& network_;
  std::vector<std::unique_ptr<Member>>& members_;
  bool clock_faults_;
  const std::atomic<bool>& interrupted_;
  std::map<std::string, int> injected_;
  int disk_full_member_ = 0;  // the member whose disk is full now, 0: none
  bool disk_full_ = false;
  int disk_freed_member_ = 0;  // the member whose disk was full last, until the grace time
  std::chrono::steady_clock::time_point disk_freed_grace_{};
  int disk_full_exits_ = 0;
  std::vector<std::string> unexpected_exits_;
};

}  // namespace coord::harness
