// What simulated clients send to replicas and get back. Plain values: the workload owns the
// clients, the replicas own the pending requests, the simulation carries both ways.
//
// The `raft` workload proposes opaque commands and asks for bare ReadIndex reads; the kv and
// watch workloads propose encoded kv::Commands, read the kv state machine after ReadIndex, and
// open, poll and close watches on a replica's WatchHub.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kv/command.h"
#include "kv/event.h"
#include "kv/reads.h"
#include "kv/watch.h"
#include "raft/types.h"
#include "sim/time.h"

namespace coord::sim {

// A linearizable read of the kv state machine: served once ReadIndex confirmed a read index and
// the replica applied up to it.
struct KvRead {
  enum class What : std::uint8_t { Get, List };

  What what = What::Get;
  std::string path;
  kv::ListOptions list;
};

// One step of a watch stream. A replica answers a poll at once when it has events (or the
// watcher is gone), and otherwise holds it until it has some or its hold time runs out, so a
// client always has one poll outstanding per watch and notices a dead replica by its silence.
struct WatchCall {
  enum class What : std::uint8_t { Open, Poll, Close };

  What what = What::Open;
  kv::WatchRequest request;       // Open
  std::uint64_t incarnation = 0;  // Poll, Close: the replica incarnation that opened it
  kv::WatchId id = 0;             // Poll, Close
  std::size_t events_max = 0;     // Poll
};

struct ClientRequest {
  enum class Kind : std::uint8_t {
    Propose,
    Read,
    Transfer,  // an operator asks the leader to hand leadership to `transfer_to`
    Watch,
  };

  std::uint64_t client = 0;
  std::uint64_t op = 0;  // per client, increasing; tells a late reply from a current one
  Kind kind = Kind::Propose;
  std::string command;  // Propose: the entry's bytes
  std::string label;    // Propose: how the trace shows the command (empty: the command itself)
  raft::NodeId transfer_to = raft::kNoNode;
  std::optional<KvRead> kv_read;   // Read: what to read (none: a bare ReadIndex)
  std::optional<WatchCall> watch;  // Watch
  Micros issued_at = 0;
};

// A replica's answer to a WatchCall.
struct WatchAnswer {
  std::uint64_t incarnation = 0;
  kv::WatchId id = 0;
  kv::Revision start_revision = 0;  // Open: the resolved start
  std::vector<kv::Event> events;    // Poll: whole revisions, in order
  kv::Revision progress_revision = 0;
  bool ended = false;  // the open was refused or the watcher is gone: `status` says why
  kv::Status status;
};

struct ClientReply {
  enum class Status : std::uint8_t {
    Acked,      // the proposing node applied the command at `index`
    ReadDone,   // the read was served at `index`
    Started,    // the leadership transfer was started
    NotLeader,  // try `leader_hint` (kNoNode: unknown)
    Failed,     // the proposal lost its slot (another entry was committed there)
    Watch,      // `watch` answers a WatchCall
  };

  std::uint64_t client = 0;
  std::uint64_t op = 0;
  Status status = Status::Failed;
  raft::NodeId node = raft::kNoNode;  // who answers
  raft::NodeId leader_hint = raft::kNoNode;
  raft::Index index = 0;
  raft::Term term = 0;   // Acked: the term of the entry
  std::string command;   // Acked: the command, echoed back
  std::string label;     // Acked: the request's label
  Micros issued_at = 0;
  std::optional<kv::Result> kv_result;              // Acked, on a kv replica
  std::optional<kv::ReadResult<kv::Node>> kv_node;  // ReadDone of a KvRead Get
  std::optional<kv::ReadResult<kv::ListPage>> kv_list;  // ReadDone of a KvRead List
  std::optional<WatchAnswer> watch;                 // Watch
};

const char* to_string(ClientReply::Status status);

// How requests reach replicas (the simulation adds the client-link latency).
class ClientTransport {
 public:
  virtual ~ClientTransport() = default;
  virtual void submit(raft::NodeId to, ClientRequest request) = 0;
};

}  // namespace coord::sim
