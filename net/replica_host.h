// The real server's host of one replica: it owns the raft::Node, the Raft log on disk
// (storage::LmdbLogStore) and the state machine (kv::StateMachine on kv::LmdbStorage), and runs
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
#include <string>
#include <variant>

#include "kv/limits.h"
#include "kv/lmdb_storage.h"
#include "kv/state_machine.h"
#include "net/client_messages.h"
#include "net/cluster_config.h"
#include "net/connection.h"
#include "raft/config.h"
#include "raft/node.h"
#include "raft/random.h"
#include "storage/lmdb_log_store.h"

namespace coord::net {

struct HostOptions {
  raft::Config raft;  // `id` is taken from the member identity
  // Snapshot the state machine and drop the log prefix every this many applied entries.
  std::uint64_t snapshot_every_entries = 10'000;
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
  std::size_t kv_map_bytes = std::size_t{8} << 30;
  std::size_t log_map_bytes = storage::log_map_bytes_default;
};

// Where the host's effects go: the peer transport, the client port, the process.
class HostOutput {
 public:
  virtual ~HostOutput() = default;
  virtual void send(const raft::Message& message) = 0;
  virtual void respond(ConnectionId connection, const ClientResponse& response) = 0;
  // The host stopped for good; `reason` says why. Called once.
  virtual void fatal(const std::string& reason) = 0;
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
  // A peer told us its client address (net/peer_codec.h), for leader hints and member lists.
  void set_client_address(raft::NodeId id, std::string address);

  // Runs Ready cycles until the core has nothing more to hand out or a log write is in flight
  // (its completion pumps again).
  void pump();
  // Takes no more input and starts no more Ready cycles; a log write in flight completes.
  void stop();

  bool failed() const { return failed_; }
  bool busy() const { return persisting_; }
  std::uint64_t inbox_drops() const { return inbox_drops_; }
  const raft::Node& node() const { return *node_; }
  const kv::StateMachine& state() const { return *sm_; }

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
  bool enqueue(Input input, std::size_t bytes);
  void drain_inbox();
  void do_tick();
  void do_request(ConnectionId connection, const ClientRequest& request);
  void start_ready();
  void persisted();
  void finish_ready(raft::Ready& ready);
  void install_snapshot(const raft::Snapshot& snapshot);
  void apply_committed(const std::vector<raft::Entry>& committed);
  void serve_reads();
  void maybe_snapshot();
  void expire_requests();
  void log_role_change();

  void request_write(ConnectionId connection, const ClientRequest& request);
  void request_read(ConnectionId connection, const ClientRequest& request);
  ClientResponse read_now(const ClientRequest& request) const;
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
  std::unique_ptr<storage::LmdbLogStore> log_;
  std::unique_ptr<kv::LmdbStorage> kv_storage_;
  std::unique_ptr<kv::StateMachine> sm_;
  std::unique_ptr<raft::Node> node_;

  std::map<raft::NodeId, std::string> client_addresses_;  // learned from peers' hellos
  std::map<raft::Index, PendingWrite> pending_writes_;    // by the proposal's index
  std::map<std::uint64_t, PendingRead> pending_reads_;    // by ReadIndex request id
  std::uint64_t next_read_id_ = 1;
  std::uint64_t ticks_ = 0;
  raft::Index last_snapshot_index_ = 0;

  // Last role, leader and term logged, to log changes once.
  raft::Role logged_role_ = raft::Role::Follower;
  raft::NodeId logged_leader_ = raft::kNoNode;
  raft::Term logged_term_ = 0;

  // The Ready whose log write is in flight, and what went wrong with it (set on the disk thread,
  // read on the loop thread after the executor's hand-over).
  std::optional<raft::Ready> in_flight_;
  std::string persist_error_;
  bool persisting_ = false;
  bool persist_done_inline_ = false;
  bool in_start_ready_ = false;
  std::deque<Input> inbox_;
  std::size_t inbox_bytes_ = 0;
  int pending_ticks_ = 0;
  std::uint64_t inbox_drops_ = 0;

  bool stopped_ = false;
  bool failed_ = false;
};

}  // namespace coord::net
