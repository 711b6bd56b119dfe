// Names for enums, for logs and traces. Kept apart so the core files stay about behaviour.
#include "raft/node.h"
#include "raft/progress.h"
#include "raft/types.h"

namespace coord::raft {

const char* to_string(MessageType type) {
  switch (type) {
    case MessageType::PreVote: return "PreVote";
    case MessageType::PreVoteResp: return "PreVoteResp";
    case MessageType::Vote: return "Vote";
    case MessageType::VoteResp: return "VoteResp";
    case MessageType::Append: return "Append";
    case MessageType::AppendResp: return "AppendResp";
    case MessageType::Heartbeat: return "Heartbeat";
    case MessageType::HeartbeatResp: return "HeartbeatResp";
    case MessageType::Snapshot: return "Snapshot";
    case MessageType::SnapshotResp: return "SnapshotResp";
    case MessageType::TimeoutNow: return "TimeoutNow";
    case MessageType::ReadIndex: return "ReadIndex";
    case MessageType::ReadIndexResp: return "ReadIndexResp";
  }
  return "?";
}

const char* to_string(Role role) {
  switch (role) {
    case Role::Follower: return "follower";
    case Role::PreCandidate: return "pre-candidate";
    case Role::Candidate: return "candidate";
    case Role::Leader: return "leader";
  }
  return "?";
}

const char* to_string(Progress::State state) {
  switch (state) {
    case Progress::State::Probe: return "probe";
    case Progress::State::Replicate: return "replicate";
    case Progress::State::Snapshot: return "snapshot";
  }
  return "?";
}

const char* to_string(Error error) {
  switch (error) {
    case Error::Ok: return "ok";
    case Error::NotLeader: return "not-leader";
    case Error::TransferInProgress: return "transfer-in-progress";
    case Error::ConfChangePending: return "conf-change-pending";
    case Error::InvalidConfChange: return "invalid-conf-change";
    case Error::UnknownNode: return "unknown-node";
  }
  return "?";
}

}  // namespace coord::raft
