// The real server's host of one replica: it owns the raft::Node, the Raft log on disk
// (storage::WalLogStore) and the state machine (kv::StateMachine on kv::LmdbStorage), and runs
// the Ready cycle of raft/ready.h: persist (snapshot, entries, hard state: one LMDB commit),
// then send, then apply the committed entries (one kv apply_batch), answer the clients waiting
// on them, serve the reads whose index is applied, advance; then snapshot and compact when the
// log has grown enough. It knows no sockets and no event loop: the server (net/server.h) feeds
// it ticks, Raft messages and client requests, and calls pump() once per loop iteration.
//
// The log write (the fsync) runs on a DiskExecutor, off the loop thread. While it is in flight
// the host is busy, as in the simulator (sim/replica.h): Raft messages, ticks, writes and
// linearizable reads wait in a bounded inbox and go to the core together once it completes, so
// everything that arrived during one fsync is persisted by the next one (group commit).
// Serializable reads, status and member lists are answered at once even while busy: they read
// only the state machine and the core, which the disk thread does not touch.
//
// Writes are answered when their entry applies: the entry proposed at (index, term) applied
// with that term means it is ours; another term at that index means it was overwritten after a
// leadership change, and the client hears Unavailable (retrying with the same session and
// sequence is safe). Linearizable reads go through ReadIndex on any member (a follower asks the
// leader); serializable reads are served at once from local state.
//
// Leases: every replica tracks the leases it has applied in a kv::LeaseClock; only the leader's
// counts down (restarted, for every lease, when it becomes leader), and when a countdown runs
// out the leader proposes LeaseExpire with the keep-alive count it saw, so that every replica
// deletes the same keys at the same revision and a keep-alive that raced the expiry wins.
// Keep-alives are ordinary writes: only a leader whose term commits them answers. LeaseTtl is
// served by the leader after a ReadIndex round confirms it still leads.
//
// Watches: any member serves them from its own state machine's watch hub (net/watch_streams.h),
// polled after every applied batch.
//
// Forwarding: a write (or LeaseTtl) that reaches a follower goes to the leader through the
// output (HostOutput::forward), with its command bytes, so its session and sequence, unchanged;
// a forwarded request is never forwarded again (one hop), it is answered NotLeader instead.
//
// A full disk is not a failure: see net/disk_full.h (the held Ready is retried, writes get
// NoSpace, serializable reads go on).
//
// Fail-stop: when the log store or the state machine's storage fails, or the core reports a
// fault, the host stops taking input and tells its output (fatal); the process must restart
// from disk. A failed fsync cannot be retried safely (the kernel may have dropped the pages).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "kv/lease_clock.h"
#include "kv/limits.h"
#include "kv/lmdb_storage.h"
#include "kv/state_machine.h"
#include "net/client_messages.h"
#include "net/cluster_config.h"
#include "net/connection.h"
#include "net/disk_full.h"
#include "net/peer_codec.h"
#include "net/snapshot_check.h"
#include "net/state_check.h"
#include "net/snapshot_refusals.h"
#include "net/snapshot_worker.h"
#include "net/state_sync_marker.h"
#include "net/watch_streams.h"
#include "raft/config.h"
#include "raft/node.h"
#include "raft/random.h"
#include "storage/wal_log_store.h"

namespace coord::net {

struct HostOptions {
  raft::Config raft;  // `id` is taken from the member identity
  // Snapshot the state machine and drop the log prefix every this many applied entries...
  std::uint64_t snapshot_every_entries = 10'000;
  // ...once the entries applied since the last snapshot also hold this many times its size in
  // bytes: a snapshot costs about its size, so the cost per byte written stays bounded however
  // large the state grows (and the log stays within this ratio of the state). 0: entries only.
  double snapshot_log_ratio = 1.0;
  // Data bytes of applied, durable log entries the core keeps in memory; older ones are read
  // back from the log store when a lagging follower needs them (raft::Config::read_entries).
  // Without it the core held the whole log since the snapshot: 250 MB at 1,000,000 keys, as the
  // log may grow to snapshot_log_ratio times the state. 0: keep them all.
  std::size_t log_memory_bytes_max = std::size_t{8} << 20;
  // Serialize snapshots on a thread of their own (off the event loop); false: inline (tests).
  bool snapshot_in_background = true;
  // Writes waiting for their entry to apply, and reads waiting for their read index; beyond
  // these a request is refused with Unavailable instead of queued.
  std::size_t pending_writes_max = 10'000;
  std::size_t pending_reads_max = 10'000;
  // A request not answered after this many ticks gets Timeout (its write may still apply).
  int request_timeout_ticks = 50;
  // Input waiting while a log write is in flight. Beyond these, Raft messages are dropped (the
  // core retries) and requests are refused with Unavailable.
  std::size_t inbox_inputs_max = 4096;
  std::size_t inbox_bytes_max = std::size_t{64} << 20;
  // Queued inputs handed to the core before it is asked for the next Ready.
  std::size_t inputs_per_ready_max = 1024;
  // Ticks that came due while busy fire at once afterwards, at most this many.
  int tick_burst_max = 20;
  kv::Limits limits;
  // The monotonic clock lease countdowns run on, in milliseconds; empty: std::chrono's
  // steady_clock.
  std::function<std::uint64_t()> clock_ms;
  // LeaseExpire proposals per tick at most; the rest follow on the next ticks.
  std::size_t lease_expiries_per_tick_max = 256;
  // Automatic MVCC compaction (etcd's --auto-compaction-mode=revision): the leader keeps this
  // many revisions of history and proposes Compact for the older ones (0: never; clients may
  // still compact). At most auto_compact_step_revisions per proposal, one proposal at a time,
  // so that no one apply removes an unbounded amount of history on the loop thread.
  std::uint64_t auto_compact_revisions = 1'000'000;
  std::uint64_t auto_compact_step_revisions = 10'000;
  // Tests: the background check of a snapshot file a restart did not read starts only after
  // this many ticks (0: at once), to see what the host does while it has not finished.
  int snapshot_check_after_ticks = 0;
  // A follower that refuses whole snapshot transfers (net/snapshot_refusals.h): the interval
  // between transfers to it doubles from one election timeout up to this many.
  int snapshot_refusal_backoff_max_timeouts = 32;
  // Tests: the result of the re-check a follower's refusal starts is taken only this many ticks
  // after it started (0: once done), to see what the host sends while it runs.
  int snapshot_recheck_result_after_ticks = 0;
  // Initial election tick advance, as etcd 3.5 does it: once connections from enough voters are
  // up (a quorum counting this member, and at least two peers where there are two), count most
  // of an election timeout as already passed, leaving heartbeat_ticks + 1 ticks for a running
  // leader's heartbeat to arrive on its connection; no advance when those connections are not
  // up within one election timeout. A restarted cluster elects a leader about one election
  // timeout sooner; a single member advances at once.
  bool election_tick_advance = true;
  WatchStreamOptions watch;
  // Send writes and LeaseTtl that reach a follower on to the leader (HostOutput::forward)
  // instead of answering NotLeader.
  bool forward_to_leader = true;
  // Snapshot requests (coordctl snapshot save): the state is serialized on the loop thread, held
  // in memory, and sent in chunks of snapshot_chunk_bytes while the connection has less than
  // snapshot_send_queue_bytes_max queued; at most snapshot_transfers_max at once.
  std::size_t snapshot_chunk_bytes = std::size_t{1} << 20;
  std::size_t snapshot_send_queue_bytes_max = std::size_t{4} << 20;
  std::size_t snapshot_transfers_max = 2;
  std::size_t kv_map_bytes = std::size_t{8} << 30;
  // fsync the state machine's LMDB on every commit. Off (the default), its commits are not
  // synced: the Raft log is the durable record and the state replays it after a crash; a
  // machine crash is told from a process crash by the boot id (net/state_sync_marker.h).
  bool kv_sync = false;
  // Where the machine's boot id is read; tests point it at a file of their own.
  std::string boot_id_path = boot_id_path_default;
  // Size the Raft log's segment files are preallocated to (storage/wal_log_store.h).
  std::uint64_t log_segment_bytes = storage::wal_segment_bytes_default;
  // A full disk: free space kept in reserve, retry pauses (net/disk_full.h).
  DiskFullOptions disk_full;
  // The member joined a running cluster (coordd --initial-cluster-state existing): its log
  // starts empty and the configuration comes from the leader, never from `cluster`.
  bool join_existing = false;
};

// Where the host's effects go: the peer transport, the client port, the process.
class HostOutput {
 public:
  virtual ~HostOutput() = default;
  virtual void send(const raft::Message& message) = 0;
  virtual void respond(ConnectionId connection, const ClientResponse& response) = 0;
  // The host stopped for good; `reason` says why. Called once.
  virtual void fatal(const std::string& reason) = 0;
  // Bytes waiting to go out on a client connection: watch streams are not polled beyond a bound.
  virtual std::size_t queued_bytes(ConnectionId connection) const {
    (void)connection;
    return 0;
  }
  // Sends `request` to the leader's client port on the client's behalf and relays the answer to
  // `connection` (with the client's request id). False when it cannot; the host then answers
  // NotLeader with the hint, as it would without forwarding.
  virtual bool forward(ConnectionId connection, const ClientRequest& request, const LeaderHint& leader) {
    (void)connection;
    (void)request;
    (void)leader;
    return false;
  }
  // The members to dial changed (ReplicaHost::peers()).
  virtual void members_changed() {}
};

// Runs the log write away from the event loop: `work` on another thread, then `done` back on the
// loop thread. One job at a time. An executor may also run both inline (tests, fallback).
class DiskExecutor {
 public:
  virtual ~DiskExecutor() = default;
  virtual void run(std::function<void()> work, std::function<void()> done) = 0;
};

class InlineExecutor final : public DiskExecutor {
 public:
  void run(std::function<void()> work, std::function<void()> done) override {
    work();
    done();
  }
};

class ReplicaHost {
 public:
  // Opens (or, for a new member, seeds) the stores under `data_dir` and restores the node.
  // Throws storage::LogStoreError, kv::StorageError or std::runtime_error when they cannot be
  // opened or do not fit together.
  ReplicaHost(const HostOptions& options, const ClusterConfig& cluster, const MemberConfig& self,
              std::string self_client_address, const std::string& data_dir, raft::Random& random,
              HostOutput& output, DiskExecutor& disk);
  ~ReplicaHost();
  ReplicaHost(const ReplicaHost&) = delete;
  ReplicaHost& operator=(const ReplicaHost&) = delete;

  // Inputs. Each is ignored once the host has failed.
  void tick();
  void step(const raft::Message& message);
  void request(ConnectionId connection, const ClientRequest& request);
  // The client connection is gone: its watches end.
  void connection_closed(ConnectionId connection);
  // A peer told us its client address (net/peer_codec.h), for leader hints and member lists.
  void set_client_address(raft::NodeId id, std::string address);
  // A peer's hello: its client address, and its name and peer address, which teach a replica
  // about a member whose addition it did not see in the log. False: the id is a member with
  // another name, and the connection is refused.
  bool peer_hello(const PeerHello& hello);
  // The members to dial: every member of the configuration whose address is known (while the
  // configuration is still unknown, a joining member dials whoever said hello).
  std::vector<MemberConfig> peers() const;

  // Runs Ready cycles until the core has nothing more to hand out or a log write is in flight
  // (its completion pumps again).
  void pump();
  // Takes no more input and starts no more Ready cycles; a log write in flight completes.
  void stop();

  bool failed() const { return failed_; }
  bool busy() const { return persisting_; }
  std::uint64_t inbox_drops() const { return inbox_drops_; }
  // Estimated bytes of the inputs waiting in the inbox (metrics).
  std::size_t inbox_bytes() const { return inbox_bytes_; }
  // The largest Ready since the last call, by the Raft messages it handed out: their count and
  // the bytes of entries and snapshot chunks they carry (metrics; all of them are in memory at once).
  struct ReadyPeak {
    std::size_t messages = 0;
    std::size_t bytes = 0;
  };
  ReadyPeak take_ready_peak() { return std::exchange(ready_peak_, ReadyPeak{}); }
  const raft::Node& node() const { return *node_; }
  const kv::StateMachine& state() const { return *sm_; }
  const kv::LeaseClock& lease_clock() const { return leases_; }
  std::size_t watch_streams() const { return watches_.size(); }

 private:
  struct PendingWrite {
    ConnectionId connection;
    std::uint64_t request_id;
    raft::Term term;
    std::uint64_t deadline_tick;
  };
  struct PendingRead {
    ConnectionId connection;
    ClientRequest request;
    std::uint64_t deadline_tick;
    std::optional<raft::Index> read_index;  // set once the core confirmed it
  };
  struct QueuedRequest {
    ConnectionId connection;
    ClientRequest request;
  };
  using Input = std::variant<raft::Message, QueuedRequest>;

  void open_stores(const std::string& data_dir);
  // Before the state machine's LMDB opens: discards it if a machine crash may have torn it, and
  // arms the marker that lets the next start tell (net/state_sync_marker.h).
  void prepare_unsynced_state(const std::string& state_dir);
  bool enqueue(Input input, std::size_t bytes);
  void drain_inbox();
  void do_tick();
  void do_request(ConnectionId connection, const ClientRequest& request);
  void start_ready();
  void persisted();
  // Runs the log write of in_flight_ on the disk executor; persisted() follows.
  void persist_in_flight();
  // The held write failed for lack of space (net/disk_full.h).
  void hold_for_space(std::string reason);
  // A request the host cannot serve while its disk is full; nullopt when it can.
  std::optional<ClientResponse> refused_for_space(const ClientRequest& request) const;
  void finish_ready(raft::Ready& ready);
  // Steps 4-5 of a Ready (apply, reads, advance). When the state machine's commit finds no room
  // (net/disk_full.h) the Ready is held in apply_held_ and retried like a held log write.
  void apply_and_advance(raft::Ready& ready);
  void retry_held_apply();
  void install_snapshot(const raft::Snapshot& snapshot);
  void apply_committed(const std::vector<raft::Entry>& committed);
  void serve_reads();
  void maybe_snapshot();
  // Compacts the log with a snapshot the worker finished, if any (never while a log write runs).
  void finish_snapshot();
  void expire_requests();
  // The initial election tick advance (HostOptions::election_tick_advance), once its
  // connections are up; given up after one election timeout.
  void maybe_advance_election_ticks();
  void log_role_change();
  void sync_leadership();
  void expire_leases();
  // Leader only, on each tick: proposes the next automatic compaction when one is due.
  void auto_compact();
  void release_sent_snapshot();
  // Takes the result of the background check of the snapshot file a restart did not read: an
  // intact file may be sent from now on; a damaged one is replaced by a fresh snapshot of the
  // (intact) state.
  void finish_snapshot_check();
  // The state store's check after a restart: stops the member when it found damage.
  void finish_state_check();
  // Sends a message of the core; holds back the chunks of a snapshot file not known to be intact.
  void send_raft(const raft::Message& message);
  // The log's snapshot changed: the unverified file, if it was replaced, no longer matters.
  void forget_replaced_unverified_snapshot();
  // A follower answered that it holds nothing of a snapshot transfer past its start: backs off
  // transfers to it (net/snapshot_refusals.h) and checks the leader's file again (rate-limited),
  // holding back only the chunks to the followers that refused it meanwhile.
  void recheck_refused_snapshot(const raft::Message& message);
  // A follower refused the snapshot at `index`: backs off transfers to it, and re-checks the file.
  void note_snapshot_refusal(raft::NodeId from, raft::Index index, raft::Index match);
  // Whether a snapshot chunk is held back because its follower refused earlier transfers (and
  // notes the refusal of a snapshot in one chunk, which the follower cannot answer).
  bool hold_refused_snapshot(const raft::Message& chunk);
  // On each tick: forgets the backoff of followers that progressed, left, or of a lost leadership.
  void track_snapshot_refusals();
  void track_leases(const std::vector<raft::Entry>& committed, const std::vector<kv::Result>& results);
  void deliver_watches();
  void request_snapshot(ConnectionId connection, const ClientRequest& request);
  void send_snapshots();
  // Begins serializing for the waiters in `next`, if any and the worker is free.
  void begin_transfer_snapshot();
  // Hands a finished snapshot to its waiters as transfers; then begins the next one.
  void finish_transfer_snapshot();
  std::uint64_t now_ms() const;

  void request_write(ConnectionId connection, const ClientRequest& request);
  void request_read(ConnectionId connection, const ClientRequest& request);
  void request_lease_ttl(ConnectionId connection, const ClientRequest& request);
  void request_member_change(ConnectionId connection, const ClientRequest& request);
  // Learns the members that committed changes add or remove and saves the table (before the
  // state machine marks those entries applied). Returns why the table could not be saved for
  // lack of room (the caller holds the entries and applies them again later), else nullopt.
  std::optional<std::string> apply_membership(const std::vector<raft::Entry>& committed);
  // Answers the waiting writes among `committed` with their results.
  void answer_writes(const std::vector<raft::Entry>& committed, const std::vector<kv::Result>& results);
  // Members of the configuration known only from their hellos join the table; true if any did.
  bool learn_from_hellos();
  // Saves the table. No room: it stays unsaved (members_unsaved_, retried on the ticks) and the
  // reason is returned; any other failure stops the member.
  std::optional<std::string> save_members();
  // On each tick while the table is unsaved: tries again, with pauses as a held write's
  // (net/disk_full.h). A table unsaved after a hello holds no applied entries: only a change
  // applied from the log must be on disk before it counts as applied (apply_membership).
  void retry_member_table_save();
  const MemberConfig* find_member(raft::NodeId id) const;
  const MemberConfig* find_member(std::string_view name) const;
  MemberInfo member_info(raft::NodeId id) const;
  void answer_member_changes(const std::vector<raft::Entry>& committed);
  // Not the leader: forward when possible, else NotLeader (Unavailable without a leader).
  void route_to_leader(ConnectionId connection, const ClientRequest& request);
  ClientResponse read_now(const ClientRequest& request) const;
  ClientResponse lease_ttl_now(const ClientRequest& request) const;
  ClientResponse status_response(std::uint64_t id) const;
  ClientResponse members_response(std::uint64_t id) const;
  ClientResponse not_leader(std::uint64_t id) const;
  std::string client_address_of(raft::NodeId id) const;

  void fail(const std::string& reason);
  bool check_fault();

  HostOptions options_;
  ClusterConfig cluster_;
  MemberConfig self_;
  std::string self_client_address_;
  HostOutput& output_;
  DiskExecutor& disk_;
  std::unique_ptr<storage::WalLogStore> log_;
  std::unique_ptr<kv::LmdbStorage> kv_storage_;
  std::string kv_dir_;
  std::unique_ptr<kv::StateMachine> sm_;
  std::unique_ptr<raft::Node> node_;

  kv::LeaseClock leases_;
  WatchStreams watches_;
  struct SnapshotTransfer {
    ConnectionId connection = 0;
    std::uint64_t request_id = 0;
    raft::SnapshotDataPtr data;
    std::uint64_t offset = 0;
    kv::Revision revision = 0;
    raft::Index index = 0;
  };
  std::vector<SnapshotTransfer> transfers_;
  // `coordctl snapshot save` requests waiting for their snapshot's bytes, which a worker of their
  // own serializes off the loop (a large state would stall it for seconds). Those in `now` get
  // the snapshot being made; those in `next` came after it began, so they get a fresh one (it
  // must hold every write acknowledged before the request).
  struct SnapshotWaiter {
    ConnectionId connection = 0;
    std::uint64_t request_id = 0;
  };
  std::vector<SnapshotWaiter> snapshot_waiters_now_;
  std::vector<SnapshotWaiter> snapshot_waiters_next_;

  std::string data_dir_;
  // Every member this replica knows, saved in DIR/members (net/member_table.h); and what hellos
  // said about members not in it yet.
  std::map<raft::NodeId, MemberConfig> members_;
  bool members_unsaved_ = false;  // members_ differs from the saved table (the disk was full)
  // ...and holds a change applied from the log, whose entries wait at the apply until it is saved.
  bool members_change_unsaved_ = false;
  std::uint64_t members_save_retry_tick_ = 0;  // wall tick of the next retry
  std::uint64_t members_save_pause_ = 0;
  std::map<raft::NodeId, MemberConfig> heard_;
  struct PendingChange {
    ConnectionId connection;
    std::uint64_t request_id;
    raft::Term term;
    std::uint64_t deadline_tick;
    MemberConfig member;
  };
  std::map<raft::Index, PendingChange> pending_changes_;  // member changes, by the entry's index
  raft::ConfState known_conf_;  // the configuration the output last heard about
  std::map<raft::NodeId, std::string> client_addresses_;  // learned from peers' hellos
  // Members whose connection to us is up (their hello came): the way their messages, a
  // leader's heartbeats among them, reach us. Counted for the initial election tick advance.
  std::set<raft::NodeId> connected_peers_;
  bool election_tick_advance_pending_ = false;
  std::map<raft::Index, PendingWrite> pending_writes_;    // by the proposal's index
  std::map<std::uint64_t, PendingRead> pending_reads_;    // by ReadIndex request id
  std::uint64_t next_read_id_ = 1;
  std::uint64_t ticks_ = 0;
  std::uint64_t wall_ticks_ = 0;  // every tick, busy or not (watch progress frames)
  raft::Index auto_compact_index_ = 0;  // where the last automatic Compact was proposed
  raft::Index last_snapshot_index_ = 0;
  std::uint64_t last_snapshot_bytes_ = 0;
  std::uint64_t log_bytes_since_snapshot_ = 0;  // entry bytes applied after the last snapshot
  std::uint64_t log_bytes_at_snapshot_start_ = 0;
  // Declared after the stores: a snapshot in progress holds a view of the state machine's.
  std::unique_ptr<SnapshotWorker> snapshots_;
  std::unique_ptr<SnapshotWorker> transfer_snapshots_;  // for snapshot_waiters_now_
  // The snapshot file a restart did not read, being checked (net/snapshot_check.h). Until the
  // check says it is intact, no chunk of it goes to a follower (a damaged snapshot would be
  // refused by the follower anyway, and sent again and again).
  std::unique_ptr<SnapshotFileCheck> snapshot_check_;
  // The state machine's store, checked whole after the start (net/state_check.h): damage stops
  // the member. Declared after the stores: it holds a pinned view of the state.
  std::unique_ptr<StateFileCheck> state_check_;
  std::shared_ptr<const storage::SnapshotFile> unverified_snapshot_;
  raft::Index unverified_snapshot_index_ = 0;
  std::uint64_t snapshot_chunks_held_back_ = 0;
  // The log's snapshot file is damaged and the state intact: take a fresh snapshot now, whatever
  // the thresholds (at the same index, it replaces the damaged file's bytes).
  bool regenerate_snapshot_ = false;
  std::optional<std::uint64_t> last_snapshot_recheck_tick_;
  // snapshot_check_ is a re-check after a follower's refusal (not the check after a restart):
  // only the chunks to the followers that refused wait for it.
  bool snapshot_recheck_ = false;
  std::uint64_t snapshot_recheck_started_tick_ = 0;
  SnapshotRefusalBackoff snapshot_refusals_{1, 1};  // set up in the constructor
  std::uint64_t snapshot_chunks_held_for_refusal_ = 0;
  // The single-chunk snapshot last sent to each follower and its match index then: sent again
  // with no progress means it was refused.
  struct SingleChunkSent {
    raft::Index index = 0;
    raft::Index match = 0;
  };
  std::map<raft::NodeId, SingleChunkSent> single_chunk_sent_;

  // Last role, leader and term logged, to log changes once.
  raft::Role logged_role_ = raft::Role::Follower;
  raft::NodeId logged_leader_ = raft::kNoNode;
  raft::Term logged_term_ = 0;

  // The Ready whose log write is in flight, and what went wrong with it (set on the disk thread,
  // read on the loop thread after the executor's hand-over).
  std::optional<raft::Ready> in_flight_;
  std::string persist_error_;
  // Set when the core could not read entries back from the log store (inside a step); the next
  // pump fails the replica with it.
  std::string entry_read_error_;
  std::string persist_no_space_;  // like persist_error_, for a write refused for lack of space
  // A Ready durable in the log whose entries the state machine could not apply for lack of
  // space (its commit changed nothing); persisting_ stays true while it is held.
  std::optional<raft::Ready> apply_held_;
  std::string apply_no_space_;
  DiskFullState disk_full_{DiskFullOptions{}};
  bool persisting_ = false;
  bool persist_done_inline_ = false;
  bool in_start_ready_ = false;
  std::deque<Input> inbox_;
  std::size_t inbox_bytes_ = 0;
  ReadyPeak ready_peak_;
  int pending_ticks_ = 0;
  std::uint64_t inbox_drops_ = 0;

  bool stopped_ = false;
  bool failed_ = false;
};

}  // namespace coord::net
