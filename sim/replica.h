// The simulated host of one Raft node: it owns the raft::Node, the node's disk, clock and state
// machine, and runs the Ready cycle exactly as raft/ready.h asks (persist, fsync, then send,
// then apply, then advance). While an fsync is outstanding the host is busy: messages, ticks and
// client requests wait in its inbox, as they would in a real server's event loop.
//
// With ReplicaParams::host_kv (the kv and watch workloads) it also hosts the application: a
// kv::StateMachine on kv::MemoryStorage that applies every committed batch in one transaction,
// serves kv reads once ReadIndex allows, keeps watchers (polled as it applies), and, while it
// leads, counts lease deadlines down on its own clock (kv::LeaseClock) and proposes LeaseExpire.
// The HashStateMachine stays as the Raft-level digest the checkers compare; snapshots carry both.
//
// Faults act on it from outside: crash() drops everything in memory and whatever the disk had
// not synced; pause() freezes it (a GC pause, a stopped VM) so that on waking its timers fire
// late and queued input arrives at once; the clock can drift and jump; the disk can fail, and a
// failed write makes the host stop (fail-stop), as a real server must after an fsync error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "kv/lease_clock.h"
#include "kv/limits.h"
#include "kv/memory_storage.h"
#include "kv/state_machine.h"
#include "raft/config.h"
#include "raft/node.h"
#include "sim/checkers.h"
#include "sim/client.h"
#include "sim/clock.h"
#include "sim/disk.h"
#include "sim/env.h"
#include "sim/hash_sm.h"
#include "sim/rng.h"
#include "sim/time.h"

namespace coord::sim {

struct ReplicaParams {
  raft::Config raft;  // `id` is set per replica
  Micros tick_us = 10'000;
  // After a pause or a forward clock jump, at most this many overdue ticks fire at once; the
  // rest are skipped, as a timer wheel does.
  int tick_burst_max = 20;
  // The host snapshots its state machine and compacts the log every this many applied entries.
  raft::Index snapshot_every_entries = 100;
  // While the leader streams a snapshot to a follower it compacts only after this many times
  // snapshot_every_entries. Compacting sooner drops the entries that follow the snapshot being
  // sent: the follower, once it installed it, then needs a newer snapshot, and with small chunks
  // (one round trip each) a transfer can take longer than the next compaction, so it never
  // catches up (watch seed 131 with a heartbeat-resend limit: eight transfers in a row, each
  // overtaken). The bound keeps a follower that never finishes from pinning the log.
  static constexpr raft::Index kCompactHoldFactor = 16;
  std::size_t inbox_inputs_max = 4096;
  // Inputs handed to the core before it is asked for a Ready (one fsync per batch).
  std::size_t inputs_per_ready_max = 256;
  // Proposals waiting for their entry to apply, reads waiting for their read index.
  std::size_t pending_requests_max = 1024;

  // The application state machine (kv and watch workloads); the same limits on every replica.
  bool host_kv = false;
  kv::Limits kv_limits;
  // A watch poll with nothing to hand out waits this long (local clock) before it is answered
  // with progress only; a watcher nobody polled for watch_idle_us is dropped, as a server drops
  // the watchers of a closed connection.
  Micros watch_hold_us = 200'000;
  Micros watch_idle_us = 3'000'000;
  // LeaseExpire proposals per tick, at most.
  std::size_t lease_expiries_per_tick_max = 16;
  // Send the Ready's early messages (a leader's appends) while its fsync is in flight, as the
  // real host does; off: hold them until the fsync completes.
  bool send_early = true;
};

class Replica;

// What a replica reports to the simulation.
class ReplicaHooks {
 public:
  virtual ~ReplicaHooks() = default;
  virtual void send(raft::Message message) = 0;
  virtual void reply(const ClientReply& reply) = 0;
  // After each input handed to the core, each advance, each compaction and each (re)start.
  virtual void stepped(const Replica& replica) = 0;
  virtual void applied(const Replica& replica, const raft::Entry& entry) = 0;
  // The state machine was replaced by a snapshot (at start or from the leader).
  virtual void restored(const Replica& replica) = 0;
  // Highest acknowledged index right now; a read asked for now must not return less.
  virtual raft::Index acked_max() const = 0;
  virtual void read_served(const Replica& replica, std::uint64_t request_id, raft::Index read_index,
                           raft::Index acked_max_at_request) = 0;
  virtual void violation(Violation violation) = 0;
  // The host stopped itself after a disk error; the simulation decides when it restarts.
  virtual void fail_stopped(const Replica& replica) = 0;
};

struct ReplicaStats {
  std::uint64_t compactions = 0;
  std::uint64_t snapshots_installed = 0;
  std::uint64_t inbox_drops = 0;
  std::uint64_t fsyncs = 0;
  std::uint64_t early_messages = 0;  // sent while their Ready's fsync was in flight
  std::uint64_t crashes = 0;
  std::uint64_t lost_batches = 0;
  std::uint64_t lease_expiries_proposed = 0;
  std::uint64_t watches_dropped_idle = 0;
};

class Replica {
 public:
  Replica(raft::NodeId id, const ReplicaParams& params, StoredLog bootstrap, std::uint64_t root_seed,
          Env& env, ReplicaHooks& hooks);
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  // Boots (or reboots) from what the disk durably holds.
  void start();
  // Power loss: the node and all memory go; the disk keeps only what it synced (and maybe a
  // prefix of the rest).
  void crash(std::string_view reason);
  // Freezes the host until `until` (extends a pause already in force).
  void pause(Micros until);
  void wake();
  // Stops taking input until crash(): a crash decided now lands before anything else happens,
  // even though it runs as its own event.
  void doom() { doomed_ = alive_; }

  // Inputs.
  void deliver(raft::Message message);
  void request(ClientRequest request);
  // The clock was changed from outside (drift, jump): re-plan the next tick.
  void clock_changed();

  LocalClock& clock() { return clock_; }
  Disk& disk() { return disk_; }
  const Disk& disk() const { return disk_; }

  raft::NodeId id() const { return id_; }
  bool alive() const { return alive_; }
  bool paused() const { return paused_; }
  bool up() const { return alive_ && !paused_; }
  // Null while crashed.
  const raft::Node* node() const { return node_.get(); }
  std::uint64_t incarnation() const { return incarnation_; }
  const HashStateMachine& state() const { return sm_; }
  // The application state machine: null unless host_kv, and while crashed.
  const kv::StateMachine* kv() const { return kv_.get(); }
  const ReplicaStats& stats() const { return stats_; }

 private:
  struct TickInput {
    int ticks;
  };
  using Input = std::variant<raft::Message, TickInput, ClientRequest>;

  // A Ready handed out by the core, waiting for its fsync before the rest of the cycle.
  struct PendingReady {
    raft::Ready ready;
    bool synced = false;
    std::uint64_t seq = 0;  // disk batch the fsync covers
  };
  struct PendingAck {
    ClientRequest request;
    raft::Term term;
  };
  struct PendingRead {
    ClientRequest request;
    raft::Index acked_max_at_request;
    std::optional<raft::Index> read_index;  // set once the core confirmed it
  };

  // The one driver: runs the Ready cycle and drains the inbox until blocked or idle.
  void pump();
  void enqueue(Input input);
  void add_ticks(int ticks, bool first);
  void step_input(Input& input);
  void step_request(ClientRequest& request);
  void start_ready();
  void finish_ready();
  void apply_committed(const std::vector<raft::Entry>& committed);
  void serve_reads();
  void maybe_compact();
  // Leader with a follower in the Snapshot state (a transfer under way).
  bool streaming_snapshot() const;
  void write_or_stop(WriteBatch batch, bool& stopped);
  void fsync_completed(std::uint64_t incarnation, std::uint64_t seq, bool for_ready);
  void schedule_tick_check(Micros at);
  // `late_first`: overdue ticks go ahead of queued input (a woken process sees its timers
  // expired before it reads its sockets).
  void tick_check(bool late_first = false);
  void fail_stop(std::string_view reason);
  void contract_violation(std::string message);
  // Sends one of a Ready's early_messages, checking first that it may leave before the fsync.
  bool send_early(raft::Message m);
  ClientReply base_reply(const ClientRequest& request, ClientReply::Status status) const;
  void reply(const ClientRequest& request, ClientReply::Status status, raft::Index index,
             raft::Term term = 0);
  void fail_pending_acks_through(raft::Index index);

  // The application side (host_kv).
  // The state machines (and the lease countdowns) as `data` holds them, or false when it is not
  // a snapshot at `index`.
  bool restore_state(std::string_view data, raft::Index index);
  std::string snapshot_state() const;
  void step_watch(const ClientRequest& request);
  void answer_watch(const ClientRequest& poll, const kv::WatchResponse& response);
  // Answers held polls that now have something to hand out.
  void serve_watches();
  // Timers of the application side, after each batch of ticks.
  void application_ticks();
  void observe_leadership();
  std::uint64_t lease_now_ms() const;
  // lease-never-early, checked apart from kv::LeaseClock so that the check does not trust what
  // it checks: when this node began counting each lease down (a grant or keep-alive applied, a
  // restart or restore) and when its current leadership began, on the same settled clock the
  // LeaseClock is given (a clock stepping back does not go back).
  std::uint64_t countdown_settle();
  void countdown_reset();
  void countdown_applied(const kv::Body& body, const kv::Result& result);
  void check_expiry_not_early(const kv::LeaseExpire& expire);
  std::int64_t local_now() const { return clock_.local(env_.now()); }

  raft::NodeId id_;
  ReplicaParams params_;
  Env& env_;
  ReplicaHooks& hooks_;
  Rng raft_rng_;   // the core's randomness; outlives every Node built on it
  Rng crash_rng_;  // which unsynced batches survive a crash
  Disk disk_;
  LocalClock clock_;

  bool alive_ = false;
  bool paused_ = false;
  bool doomed_ = false;
  Micros paused_until_ = 0;
  std::uint64_t incarnation_ = 0;
  std::unique_ptr<raft::Node> node_;
  HashStateMachine sm_;
  std::deque<Input> inbox_;
  std::optional<PendingReady> pending_;
  std::map<raft::Index, PendingAck> pending_acks_;
  std::map<std::uint64_t, PendingRead> pending_reads_;  // by read request id
  std::uint64_t next_read_id_ = 1;

  struct HostedWatch {
    std::uint64_t client = 0;
    std::optional<ClientRequest> held;  // a poll waiting for events
    std::int64_t held_since_local = 0;
    std::int64_t seen_local = 0;  // last open or poll
  };
  std::unique_ptr<kv::MemoryStorage> kv_storage_;
  std::unique_ptr<kv::StateMachine> kv_;  // on kv_storage_
  kv::LeaseClock leases_;
  raft::Term leases_term_ = 0;  // the term whose leadership the lease clock counts for
  struct Countdown {
    std::uint64_t ttl_ms = 0;
    std::uint64_t since_ms = 0;
  };
  std::map<kv::LeaseId, Countdown> countdowns_;
  std::uint64_t countdown_leader_since_ms_ = 0;
  std::uint64_t countdown_latest_ms_ = 0;
  std::map<kv::WatchId, HostedWatch> watches_;

  // Ticks are due when local time reaches next_tick_local_; a clock change or a wake starts a
  // new chain of checks and the generation number retires the old one.
  std::int64_t next_tick_local_ = 0;
  std::uint64_t tick_generation_ = 0;

  ReplicaStats stats_;
};

}  // namespace coord::sim
