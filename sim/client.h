// What simulated clients send to replicas and get back. Plain values: the workload owns the
// clients, the replicas own the pending requests, the simulation carries both ways.
#pragma once

#include <cstdint>
#include <string>

#include "raft/types.h"
#include "sim/time.h"

namespace coord::sim {

struct ClientRequest {
  enum class Kind : std::uint8_t {
    Propose,
    Read,
    Transfer,  // an operator asks the leader to hand leadership to `transfer_to`
  };

  std::uint64_t client = 0;
  std::uint64_t op = 0;  // per client, increasing; tells a late reply from a current one
  Kind kind = Kind::Propose;
  std::string command;  // Propose: a unique command
  raft::NodeId transfer_to = raft::kNoNode;
  Micros issued_at = 0;
};

struct ClientReply {
  enum class Status : std::uint8_t {
    Acked,      // the proposing node applied the command at `index`
    ReadDone,   // the read was served at `index`
    Started,    // the leadership transfer was started
    NotLeader,  // try `leader_hint` (kNoNode: unknown)
    Failed,     // the proposal lost its slot (another entry was committed there)
  };

  std::uint64_t client = 0;
  std::uint64_t op = 0;
  Status status = Status::Failed;
  raft::NodeId node = raft::kNoNode;  // who answers
  raft::NodeId leader_hint = raft::kNoNode;
  raft::Index index = 0;
  raft::Term term = 0;   // Acked: the term of the entry
  std::string command;   // Acked: the command, echoed back
  Micros issued_at = 0;
};

const char* to_string(ClientReply::Status status);

}  // namespace coord::sim
