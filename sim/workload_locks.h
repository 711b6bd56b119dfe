// The `locks` workload: clients take a lock (fencing::Mutex on a fencing::Session, the very
// recipe code applications run), write to a simulated storage service that is protected by a
// fencing::Guard, and release, while nodes and clients suffer partitions, clock skew and drift,
// pauses and crashes.
//
// Each client is a process of its own (ClientProcess): its own clock (skewed, drifting: the
// session's drift margin is measured on it) and its own pauses (a GC pause freezes its timers
// and its replies until it wakes). A lock holder's critical section is several writes to the
// storage service, one at a time, each carrying the holder's fencing token, each sent only
// after the holder checked that it still holds the lock (Mutex::held()). The storage is reached
// over a link of its own that can hold a write in flight for seconds.
//
// The classic scenario (DDIA ch. 8, "process pauses" and "fencing tokens"): with the pause
// family on, a holder sometimes pauses right after its check, for longer than its lease; the
// lease expires on the leader's clock, the next waiter gets a greater token and writes; the
// first wakes and sends its write with the old token, and the storage refuses it. With
// `fencing` off (coord-sim --no-fencing) the storage accepts everything, and the same run breaks
// mutual exclusion: the reason fencing exists.
//
// Checks, as the storage accepts writes: `fencing-monotonic` (never a token lower than one
// already accepted, per resource) and `mutual-exclusion` (accepted writes of different holders
// never interleave). The lease checks (`lease-never-early` on the leaders' clocks, in
// sim/replica.h; `ephemeral-cleanup` against the committed state, in sim/kv_reference.h) run
// for every kv workload; this one is where they matter.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fencing/guard.h"
#include "fencing/mutex.h"
#include "fencing/session.h"
#include "sim/checkers.h"
#include "sim/client.h"
#include "sim/clock.h"
#include "sim/env.h"
#include "sim/faults.h"
#include "sim/kv_client.h"
#include "sim/rng.h"
#include "sim/time.h"
#include "sim/timeline.h"
#include "sim/workload.h"

namespace coord::sim {

struct LocksWorkloadParams {
  // The seed picks how many clients share how many locks (more contention, or less), in these
  // bounds.
  int clients_min = 3;
  int clients_max = 6;
  int locks_min = 1;  // lock paths /locks/l0.. ; each protects the storage resource of its name
  int locks_max = 3;
  // Of the acquisitions, this many use try_lock with a timeout (up to try_lock_ms_max) instead.
  std::uint32_t try_lock_ppm = 300'000;
  fencing::Millis try_lock_ms_max = 3'000;
  fencing::Millis ttl_ms_min = 500;
  fencing::Millis ttl_ms_max = 1'500;
  int writes_min = 2;  // per critical section
  int writes_max = 5;
  Micros write_gap_us_max = 100'000;  // between the writes of a section (client clock)
  Micros think_us_max = 300'000;      // between sections
  Micros storage_reply_timeout_us = 300'000;
  Micros storage_link_us_min = 200;
  Micros storage_link_us_max = 20'000;
  // With the network family: a write (or its answer) held in flight this long, now and then.
  std::uint32_t storage_slow_ppm = 20'000;
  Micros storage_slow_us_max = 3'000'000;
  // With the pause family: per write, the holder pauses between its check and the send (a GC
  // pause) for 1.2 to 3 lease TTLs; and, per client, random pauses of the whole process.
  std::uint32_t holder_pause_ppm = 40'000;
  Micros client_pause_gap_us_min = 1'000'000;
  Micros client_pause_gap_us_max = 8'000'000;
  Micros client_pause_us_max = 3'000'000;
  // With the clock family: client clocks start up to this far apart and run at a constant rate
  // this far (ppm) from the nominal one.
  std::int64_t client_skew_us_max = 5'000'000;
  std::int64_t client_drift_ppm_max = 20'000;
  SimKvClientParams client;
  bool fencing = true;
  // Client faults (pauses) stop here, with the cluster's; from then until the clients stop every
  // client must get a lock at least once (liveness of the recipe: no lost wake-up).
  Micros heal_at_us = 0;  // the storage checks tokens with a Guard; false: accepts everything
};

// A client's process: it sees virtual time through its own clock and freezes while paused
// (everything scheduled through it, timers and replies alike, waits for the wake).
class ClientProcess final : public Env {
 public:
  ClientProcess(Env& world, LocalClock clock) : world_(world), clock_(clock) {}

  Micros now() const override { return world_.now(); }
  void schedule(Micros at, std::function<void()> action) override;
  void trace(raft::NodeId node, std::string_view what) override { world_.trace(node, what); }
  bool halted() const override { return world_.halted(); }

  // Runs `action` now, or when the process wakes.
  void run(std::function<void()> action);
  // Freezes the process for `duration_us` of virtual time (extends a pause in force).
  void pause(Micros duration_us);
  bool paused() const { return paused_until_ > world_.now(); }
  const LocalClock& clock() const { return clock_; }

 private:
  Env& world_;
  LocalClock clock_;
  Micros paused_until_ = 0;
};

class LocksWorkload final : public ClientWorkload {
 public:
  LocksWorkload(int nodes, const LocksWorkloadParams& params, const FaultFamilies& faults,
                std::uint64_t root_seed, Env& env, ClientTransport& transport,
                std::function<void(Violation)> report);
  ~LocksWorkload() override;

  void start(Micros stop_at) override;
  void on_reply(const ClientReply& reply) override;
  const WorkloadStats& stats() const override;
  Verdict final_check() override;
  // Where lock holdings, guarded writes and client pauses are recorded (null: nowhere).
  void set_timeline(Timeline* timeline) { timeline_ = timeline; }

 private:
  struct Client;
  // A write on its way to the storage service.
  struct StorageWrite {
    std::size_t client = 0;
    std::uint64_t id = 0;  // per client
    std::string resource;
    Holder holder;
    std::string value;
    Micros paused_us = 0;      // the holder paused this long between its check and the send
    Micros in_flight_us = 0;   // the link held it this long
  };

  void step(std::size_t c);
  void open_session(std::size_t c);
  void acquire(std::size_t c);
  void write_next(std::size_t c);
  // The next write of the section, after a gap (client clock).
  void write_later(std::size_t c);
  void send_write(std::size_t c);
  void on_storage_answer(std::size_t c, std::uint64_t id, bool accepted, fencing::Token highest);
  void release(std::size_t c, const char* why);
  void think(std::size_t c);
  void random_pause(std::size_t c);
  Micros storage_delay(Rng& rng);
  // The storage service: checks the token (unless fencing is off), applies, checks the checkers.
  void storage_receive(const StorageWrite& write);

  LocksWorkloadParams params_;
  FaultFamilies faults_;
  Env& env_;
  std::function<void(Violation)> report_;
  std::vector<std::unique_ptr<Client>> clients_;
  Rng storage_rng_;
  Micros stop_at_ = 0;
  bool failed_ = false;
  Timeline* timeline_ = nullptr;

  fencing::MemoryGuardStore guard_store_;
  fencing::Guard guard_{guard_store_};
  FencingMonotonic monotonic_;
  MutualExclusion exclusion_;

  std::uint64_t sections_ = 0;
  std::uint64_t holder_pauses_ = 0;
  std::uint64_t accepted_ = 0;
  std::uint64_t refused_ = 0;
  std::uint64_t lost_before_write_ = 0;
  std::uint64_t stale_after_pause_refused_ = 0;
  std::vector<Micros> last_acquired_;  // per client
  std::uint64_t locks_ = 0;
  mutable WorkloadStats stats_;
};

}  // namespace coord::sim
