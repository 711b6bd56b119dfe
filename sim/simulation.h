// One simulated run: a seed, a cluster, a workload and a fault plan in, a verdict out.
// Everything in a run derives from Options::seed, so the same options give the same run and,
// with a trace sink, byte-identical trace files.
//
// Timeline: faults are injected during the first Options::time_s seconds of virtual time; then
// everything heals (partitions, links, clocks, disks; paused nodes wake, crashed nodes restart)
// and a quiet period of kQuietUs follows, in which liveness is judged: a proposal made after the
// heal must commit within kLivenessCommitUsMax, and by the end all replicas must agree.
//
// Workloads: `raft` proposes opaque commands and checks the Raft-level invariants; `kv` runs
// kv clients (sim/workload_kv.h) and checks their history for linearizability; `watch` runs
// writers and watchers (sim/workload_watch.h) and checks every watcher's events against the
// committed ones; `locks` runs lock holders writing to a storage service behind a fencing Guard
// (sim/workload_locks.h) and checks that the storage never takes a stale token nor interleaves
// two holders' writes. The kv workloads host a kv::StateMachine on every replica, and every
// Raft-level checker runs for them too, as do the lease checks (lease-never-early on the
// leaders' clocks, ephemeral-cleanup against the committed state).
//
// Besides the faults, the seed also picks the cluster's Raft settings (pre-vote and check-quorum
// on or off, timer ratios, small size limits that split appends, snapshots and committed
// batches), so that many seeds cover many code paths of the core.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "sim/faults.h"
#include "sim/time.h"

namespace coord::sim {

class Timeline;

enum class Workload : std::uint8_t { Raft, Kv, Watch, Locks };

const char* to_string(Workload workload);
std::optional<Workload> parse_workload(std::string_view text);

inline constexpr Micros kQuietUs = 10'000'000;
inline constexpr Micros kLivenessCommitUsMax = 5'000'000;
// Clients stop this long before the end, so the last proposals can reach every replica.
inline constexpr Micros kClientDrainUs = 2'000'000;
inline constexpr double kTimeSecondsMax = 3600;
inline constexpr int kNodesMin = 3;
inline constexpr int kNodesMax = 9;
// A run beyond these is stuck in a loop or a message storm; it stops with a simulator-limit
// violation instead of eating the machine. Normal runs stay far below (about 10^5 events per
// virtual second at most, 10^4 queued).
inline constexpr std::uint64_t kEventsPerRunMax = 100'000'000;
inline constexpr std::size_t kQueuedEventsMax = 1'000'000;

struct Options {
  std::uint64_t seed = 1;
  int nodes = 3;
  FaultFamilies faults = FaultFamilies::all();
  Workload workload = Workload::Raft;
  double time_s = 30;             // virtual seconds with faults, before the quiet period
  std::ostream* trace = nullptr;  // every event, one line each; null: keep only the last lines
  // The locks workload only: false runs the storage without its Guard (coord-sim --no-fencing),
  // which must break mutual exclusion on some seed.
  bool fencing = true;
  // Null, or where the run records its timeline (coord-sim --timeline; sim/timeline.h). Recording
  // does not change the run. One run per Timeline: not for run_seeds over several seeds.
  Timeline* timeline = nullptr;
};

// Empty when the options can run; otherwise what is wrong.
std::optional<std::string> validate(const Options& options);

struct Stats {
  std::uint64_t leaders_elected = 0;
  std::uint64_t proposals = 0;
  std::uint64_t acked = 0;
  std::uint64_t reads = 0;
  std::uint64_t transfers = 0;    // leadership transfers started
  std::uint64_t applied_max = 0;  // highest index any replica applied
  std::uint64_t faults_injected = 0;
  std::uint64_t messages_sent = 0;
  std::uint64_t messages_dropped = 0;  // lost, blocked or unroutable
  std::uint64_t crashes = 0;
  std::uint64_t compactions = 0;
  std::uint64_t snapshots_installed = 0;
  std::uint64_t early_messages = 0;  // sent while their Ready's fsync was in flight
  std::uint64_t events = 0;
  std::uint64_t trace_lines = 0;
  Micros virtual_us = 0;
};

struct Result {
  std::uint64_t seed = 0;
  bool passed = true;
  std::string invariant;  // empty when passed
  std::string message;
  std::vector<std::string> recent_events;  // the trace lines just before the violation
  Stats stats;
};

Result run(const Options& options);

}  // namespace coord::sim
