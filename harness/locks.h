// The locks workload of coord-faults: lock clients (coord-faults-locker processes, each a
// coord::Client with a coord::Session and coord::Lock, the recipes applications link) take one
// lock in turn and write to a resource that lives here, in coord-faults, behind a
// fencing::Guard. Some holders stop themselves (SIGSTOP) right after checking that they hold the
// lock, for longer than their lease, and are woken here. The resource checks each accepted write
// with the simulator's fencing checkers (sim/checkers.h): `fencing-monotonic` (never a lower
// token after a higher one) and `mutual-exclusion` (two holders' accepted writes never
// interleave). With fencing off (`coord-faults --no-fencing`: the resource accepts every write)
// a woken holder's write lands after its successor's, and the harness must report it.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fencing/guard.h"
#include "sim/checkers.h"

namespace coord::harness {

struct LocksOptions {
  std::vector<std::string> endpoints;
  std::string locker;  // the coord-faults-locker binary
  std::string work_dir;  // the lockers' logs go here
  int lockers = 3;
  std::uint64_t seed = 1;
  bool fencing = true;
  long ttl_ms = 2000;
  int pause_percent = 25;
};

struct LocksStats {
  std::uint64_t acquisitions = 0;
  std::uint64_t accepted = 0;
  std::uint64_t refused = 0;
  std::uint64_t pauses = 0;
  // Refused writes sent right after a pause: the stale holders fencing stopped.
  std::uint64_t refused_after_pause = 0;
  std::uint64_t unexpected_exits = 0;
};

class Locks {
 public:
  explicit Locks(LocksOptions options);
  ~Locks();  // stop()
  Locks(const Locks&) = delete;
  Locks& operator=(const Locks&) = delete;

  // Starts the lockers. Call from the main thread: a locker dies with the thread that forked it.
  void start();
  // Kills the lockers (by pid) and waits for them.
  void stop();

  LocksStats stats() const;
  // What the checkers found, plus a workload that never got a write accepted (it proved nothing).
  std::vector<std::string> violations() const;

 private:
  struct Locker {
    int index = 0;
    pid_t pid = -1;
    int channel = -1;  // our end of the socket pair
    bool reaped = false;  // under mutex_
    bool paused_last = false;  // its previous message was a pause
    std::thread reader;
  };

  void spawn(Locker& locker);
  void serve(Locker& locker);
  // The resource: a write with `token` from `locker`; true when accepted.
  bool write(Locker& locker, std::uint64_t token, std::uint64_t& highest);
  // Sleeps `ms` (cut short by stop()), then wakes the stopped locker.
  void wake_after(Locker& locker, long ms);
  // Reaps the locker if it has exited (under mutex_); true when it has.
  bool reap(Locker& locker, int flags, bool* stopped);

  LocksOptions options_;
  std::vector<Locker> lockers_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;  // the resource, the checkers, the stats and the lockers' pids
  fencing::MemoryGuardStore guard_store_;
  fencing::Guard guard_{guard_store_};
  sim::FencingMonotonic monotonic_;
  sim::MutualExclusion exclusion_;
  LocksStats stats_;
  std::vector<std::string> violations_;
};

}  // namespace coord::harness
