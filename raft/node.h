// One Raft replica as a pure, deterministic state machine (in the style of etcd's RawNode).
// Inputs: tick(), step(Message), propose(), propose_conf_change(), read_index(),
// transfer_leadership(), compact(). Output: ready(), which the host acts on (persist, send,
// apply) before calling advance(). No threads, clocks, sockets, files or global randomness.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "raft/config.h"
#include "raft/conf_change.h"
#include "raft/log.h"
#include "raft/progress.h"
#include "raft/random.h"
#include "raft/ready.h"
#include "raft/types.h"

namespace coord::raft {

enum class Error : std::uint8_t {
  Ok = 0,
  NotLeader,           // ask leader() for a hint
  TransferInProgress,  // a leadership transfer is under way; retry shortly
  ConfChangePending,   // one membership change at a time; or the leader has no entry of its term
                       // committed yet
  InvalidConfChange,   // would remove the last voter, or names node 0
  UnknownNode,
};

const char* to_string(Error error);

struct ProposeResult {
  Error error = Error::Ok;
  Index index = 0;  // where the entry was appended (valid when error == Ok)
  Term term = 0;
};

// What a node was when it stopped: read back from durable storage at restart. A brand-new
// member of the initial cluster starts with an empty log and `snapshot.conf` set to the initial
// voters; a member added later starts with an empty configuration and learns it from the leader.
struct RestoreState {
  HardState hard_state;
  SnapshotMeta snapshot;
  SnapshotDataPtr snapshot_data;
  std::vector<Entry> entries;  // durable entries after snapshot.index
  Index applied = 0;           // highest index the host's state machine has applied (>= snapshot)
};

class Node {
 public:
  Node(const Config& config, Random& random, RestoreState state);

  // Inputs.
  void tick();
  void step(const Message& message);
  ProposeResult propose(std::string data);
  ProposeResult propose_conf_change(const ConfChange& change);
  // Asks for a linearizable read point; the answer comes as a ReadState in a later Ready.
  // NotLeader when this node knows no leader to ask. A request may be dropped silently when
  // leadership changes: the host times it out and retries.
  Error read_index(std::uint64_t request_id);
  Error transfer_leadership(NodeId to);
  // Starts an election now (tests and operators); ignored on a non-voter.
  void campaign();
  // The host took a snapshot of its state machine at `index` (<= applied): drop the log prefix.
  void compact(Index index, SnapshotDataPtr data);
  // The host stored the snapshot at `index` (the node's latest) elsewhere, a file say: keep
  // `data` (the same bytes) instead of the node's copy, so a received snapshot's bytes need not
  // stay in memory. Ignored unless `index` is the latest snapshot's.
  void replace_snapshot_data(Index index, SnapshotDataPtr data);

  // Output.
  bool has_ready() const;
  Ready ready();
  void advance(const Ready& ready);

  // Read-only inspection, for hosts, checkers and tests.
  NodeId id() const { return config_.id; }
  Role role() const { return role_; }
  Term term() const { return term_; }
  NodeId vote() const { return vote_; }
  NodeId leader() const { return leader_; }
  Index commit() const { return commit_; }
  Index applied() const { return applied_; }
  const RaftLog& log() const { return log_; }
  const ConfState& conf() const { return conf_; }
  const std::map<NodeId, Progress>& progress() const { return progress_; }
  NodeId transferee() const { return transferee_; }
  HardState hard_state() const { return HardState{term_, vote_, commit_}; }
  // The term or vote differs from what the last Ready handed out: only those must be durable
  // before the node may act on them (the commit index alone never needs an fsync).
  bool term_or_vote_unpersisted() const { return term_ != last_hard_state_.term || vote_ != last_hard_state_.vote; }
  const SnapshotMeta& snapshot_meta() const { return snapshot_.meta; }

  // Set when the node saw something that cannot happen in a correct cluster (for example a
  // leader asking it to overwrite a committed entry). The node refuses such input; hosts and
  // checkers treat a non-empty fault as fatal.
  const std::string& fault() const { return fault_; }

 private:
  struct PendingRead {
    std::uint64_t request_id;
    Index index;
    std::uint64_t round;
    NodeId from;  // kNoNode for a local request, else the follower to answer
  };

  // Role changes.
  void reset(Term term);
  void become_follower(Term term, NodeId leader);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void start_election(bool transfer);
  void request_votes(MessageType type, Term term, bool transfer);
  void reset_election_timeout();
  bool promotable() const;
  std::size_t quorum() const;
  bool quorum_active();

  // Per-role message handling.
  void step_leader(const Message& m);
  void step_candidate(const Message& m);
  void step_follower(const Message& m);
  void handle_vote_request(const Message& m);
  void handle_append(const Message& m);
  void handle_heartbeat(const Message& m);
  void handle_snapshot_chunk(const Message& m);
  void install_snapshot(const SnapshotMeta& meta, SnapshotDataPtr data);
  void adopt_log_start_conf(const SnapshotMeta& meta);
  void handle_append_response(const Message& m, Progress& pr);
  void handle_snapshot_response(const Message& m, Progress& pr);
  void handle_heartbeat_response(const Message& m, Progress& pr);
  void tally_vote(const Message& m);

  // Leader actions.
  void send(Message m);
  void send_append(NodeId to, Progress& pr, bool allow_empty);
  void send_snapshot_chunk(NodeId to, Progress& pr);
  void broadcast_append();
  void broadcast_heartbeat();
  bool maybe_commit_and_release();
  void append_entries_and_broadcast(std::vector<Entry> entries);
  void add_read(std::uint64_t request_id, NodeId from);
  void deliver_read(const PendingRead& read);
  void release_confirmed_reads();
  void flush_batched_sends();
  // Lets the log drop the data of entries beyond its memory budget (Config::read_entries).
  void drop_entry_data();
  bool committed_in_current_term() const;
  void tick_leader();
  void tick_election();
  void maybe_send_timeout_now(NodeId to, const Progress& pr);

  // Shared.
  void commit_to(Index index);
  void apply_conf(Index index, const ConfChange& change);
  void sync_progress_with_conf();

  Config config_;
  Random& random_;
  RaftLog log_;
  Snapshot snapshot_;  // latest local snapshot (what the leader streams to lagging followers)
  ConfState conf_;     // configuration after the last handed-out committed entry
  // Configuration as of each conf-change index still in the log (and the snapshot's), so that
  // compact() can record the configuration at an earlier index.
  std::map<Index, ConfState> conf_history_;

  Role role_ = Role::Follower;
  Term term_ = 0;
  NodeId vote_ = kNoNode;
  NodeId leader_ = kNoNode;
  Index commit_ = 0;
  Index applied_ = 0;  // highest index handed out in Ready::committed
  // Index of the latest membership change the leader appended; a new one waits until it applies.
  Index pending_conf_index_ = 0;

  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_ticks_ = 0;

  std::map<NodeId, Progress> progress_;  // leader only; one per peer (not self)
  std::map<NodeId, bool> votes_;         // (pre-)candidate only: granted?

  NodeId transferee_ = kNoNode;
  int transfer_elapsed_ = 0;

  // Linearizable reads (ReadIndex). Reads asked between two Readys share one heartbeat round;
  // a read is safe once a quorum acknowledged its round (or a later one).
  std::deque<PendingRead> reads_;                 // leader: waiting for their round
  std::vector<PendingRead> reads_before_commit_;  // leader: waiting for an entry of its term
  std::uint64_t read_round_ = 0;
  bool read_round_wanted_ = false;
  // Proposals between two Readys go out in one Append per follower.
  bool broadcast_wanted_ = false;

  // Snapshot being received from the leader, chunk by chunk (null when none is).
  SnapshotMeta incoming_meta_;
  std::unique_ptr<SnapshotReceiver> incoming_;

  // Output queues, drained by ready().
  std::vector<Message> messages_;
  std::vector<ReadState> ready_reads_;
  std::optional<Snapshot> pending_snapshot_;  // received, to be installed by the host
  HardState last_hard_state_;                 // as last handed out (or restored)

  std::string fault_;
};

}  // namespace coord::raft
