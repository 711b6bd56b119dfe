#include "raft/node.h"

#include <algorithm>
#include <utility>

#include "raft/assert.h"

// Deliberately broken variants, compiled only into test targets (tests/CMakeLists.txt) to show
// that the simulator's checkers catch real consensus bugs. Production builds never define them.
#if defined(COORD_RAFT_BUG_COMMIT_PREVIOUS_TERM)
inline constexpr bool kBugCommitPreviousTerm = true;
#else
inline constexpr bool kBugCommitPreviousTerm = false;
#endif
#if defined(COORD_RAFT_BUG_VOTE_WITHOUT_LOG_CHECK)
inline constexpr bool kBugVoteWithoutLogCheck = true;
#else
inline constexpr bool kBugVoteWithoutLogCheck = false;
#endif
#if defined(COORD_RAFT_BUG_EARLY_VOTES)
inline constexpr bool kBugEarlyVotes = true;  // votes handed out as early messages
#else
inline constexpr bool kBugEarlyVotes = false;
#endif
#if defined(COORD_RAFT_BUG_READ_WITHOUT_QUORUM)
inline constexpr bool kBugReadWithoutQuorum = true;
#else
inline constexpr bool kBugReadWithoutQuorum = false;
#endif

namespace coord::raft {

namespace {

// The default home of an incoming snapshot's chunks.
class InMemoryReceiver final : public SnapshotReceiver {
 public:
  bool append(std::string_view chunk) override {
    bytes_.append(chunk);
    return true;
  }
  std::uint64_t size() const override { return bytes_.size(); }
  SnapshotDataPtr finish() override { return snapshot_bytes(std::move(bytes_)); }

 private:
  std::string bytes_;
};

bool is_response(MessageType type) {
  return type == MessageType::AppendResp || type == MessageType::HeartbeatResp ||
         type == MessageType::SnapshotResp;
}

bool is_from_leader(MessageType type) {
  return type == MessageType::Append || type == MessageType::Heartbeat ||
         type == MessageType::Snapshot;
}

// Far beyond any term or index a cluster reaches; refusing messages above them keeps term + 1
// and index + 1 from wrapping around.
constexpr Term message_term_max = Term{1} << 62;
constexpr Index message_index_max = Index{1} << 62;

// Why no correct peer could have sent `m`, judged from the message alone; nullptr when it is
// well-formed. The wire codec checks only that the fields have known values, so a corrupt or
// hostile message would otherwise reach the log's assertions (and abort the node) or leave it
// in a state no cluster produces, such as a follower naming itself leader.
const char* malformed(const Message& m, NodeId self) {
  if (m.from == kNoNode || m.from == self) return "sent by nobody or by this node";
  if (m.term > message_term_max) return "term out of range";
  // Terms start at 1 with the first election: no leader speaks at term 0.
  if (is_from_leader(m.type) && m.term == 0) return "a leader of term 0";
  if (m.index > message_index_max || m.snapshot.index > message_index_max) return "index out of range";
  if (m.type == MessageType::Snapshot && m.snapshot.term > m.term) return "snapshot of a later term";
  // A configuration naming node 0 (nobody) would make the node send votes and appends to nobody.
  for (const std::vector<NodeId>* ids : {&m.snapshot.conf.voters, &m.snapshot.conf.learners}) {
    if (std::find(ids->begin(), ids->end(), kNoNode) != ids->end()) return "a configuration naming node 0";
  }
  if (m.type != MessageType::Append) return nullptr;
  // A leader's Append: entries (prev index + 1, ...) of non-decreasing terms, from the previous
  // entry's term up to the leader's own.
  if (m.log_term > m.term || m.snapshot.term > m.term) return "previous entry of a later term";
  if (m.entries.size() > message_index_max - m.index) return "index out of range";
  Index next = m.index + 1;
  Term prev_term = m.log_term;
  for (const Entry& e : m.entries) {
    if (e.index != next || e.term == 0 || e.term < prev_term || e.term > m.term) {
      return "entries out of order";
    }
    ++next;
    prev_term = e.term;
  }
  return nullptr;
}

}  // namespace

Node::Node(const Config& config, Random& random, RestoreState state)
    : config_(config), random_(random), log_(state.snapshot, std::move(state.entries)) {
  COORD_ASSERT(config_.id != kNoNode, "node id 0 is reserved");
  COORD_ASSERT(config_.heartbeat_ticks > 0 && config_.heartbeat_ticks < config_.election_ticks,
               "heartbeat_ticks must be positive and below election_ticks");
  if (config_.read_entries) log_.set_reader(config_.read_entries);
  snapshot_.meta = state.snapshot;
  snapshot_.data = state.snapshot_data ? state.snapshot_data : snapshot_bytes("");
  term_ = state.hard_state.term;
  vote_ = state.hard_state.vote;
  commit_ = std::max(state.hard_state.commit, state.snapshot.index);
  applied_ = std::max(state.applied, state.snapshot.index);
  COORD_ASSERT(applied_ <= log_.last_index(), "applied index beyond the restored log");
  // The host may have applied (and so seen committed) more than the last persisted commit.
  commit_ = std::max(commit_, applied_);
  COORD_ASSERT(commit_ <= log_.last_index(), "commit index beyond the restored log");
  last_hard_state_ = state.hard_state;

  // Membership as of the applied index; later conf changes take effect when handed out again.
  conf_ = state.snapshot.conf;
  conf_history_[state.snapshot.index] = conf_;
  for (Index i = log_.first_index(); i <= applied_; ++i) {
    const Entry& e = log_.at(i);
    if (e.type != EntryType::ConfChange) continue;
    if (auto change = decode_conf_change(e.data)) {
      conf_ = apply_conf_change(conf_, *change);
      conf_history_[i] = conf_;
    }
  }
  role_ = Role::Follower;
  reset_election_timeout();
  drop_entry_data();
}

// ---------------------------------------------------------------------------------------------
// Role changes

void Node::reset(Term term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNoNode;
  }
  leader_ = kNoNode;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  reset_election_timeout();
  votes_.clear();
  progress_.clear();
  transferee_ = kNoNode;
  transfer_elapsed_ = 0;
  // Reads waiting on this node's leadership can no longer be confirmed: the host times them out.
  reads_.clear();
  reads_before_commit_.clear();
  read_round_wanted_ = false;
  broadcast_wanted_ = false;
}

void Node::become_follower(Term term, NodeId leader) {
  reset(term);
  role_ = Role::Follower;
  leader_ = leader;
}

void Node::become_pre_candidate() {
  // A pre-candidate changes neither its term nor its vote: that is what makes pre-vote harmless.
  votes_.clear();
  leader_ = kNoNode;
  role_ = Role::PreCandidate;
  election_elapsed_ = 0;
  reset_election_timeout();
}

void Node::become_candidate() {
  reset(term_ + 1);
  vote_ = config_.id;
  role_ = Role::Candidate;
}

void Node::become_leader() {
  COORD_ASSERT(role_ == Role::Candidate, "only a candidate becomes leader");
  reset(term_);
  role_ = Role::Leader;
  leader_ = config_.id;
  sync_progress_with_conf();
  // Any membership change still in the log may not have applied yet: block new ones until it has.
  pending_conf_index_ = log_.last_index();
  // An entry of the new term: committing it commits everything before it (§5.4.2), and it is
  // what lets the leader serve reads and membership changes.
  append_entries_and_broadcast({Entry{term_, log_.last_index() + 1, EntryType::Normal, {}}});
  maybe_commit_and_release();
}

void Node::reset_election_timeout() {
  randomized_election_ticks_ =
      config_.election_ticks +
      static_cast<int>(random_.below(static_cast<std::uint64_t>(config_.election_ticks)));
}

bool Node::promotable() const { return is_voter(conf_, config_.id); }

std::size_t Node::quorum() const { return conf_.voters.size() / 2 + 1; }

void Node::start_election(bool transfer) {
  if (!promotable()) return;
  if (config_.pre_vote && !transfer) {
    become_pre_candidate();
    request_votes(MessageType::PreVote, term_ + 1, false);
  } else {
    become_candidate();
    request_votes(MessageType::Vote, term_, transfer);
  }
}

void Node::request_votes(MessageType type, Term term, bool transfer) {
  votes_[config_.id] = true;
  if (votes_.size() >= quorum()) {  // a single-voter cluster wins at once
    if (role_ == Role::PreCandidate) {
      start_election(true);
    } else {
      become_leader();
    }
    return;
  }
  for (NodeId voter : conf_.voters) {
    if (voter == config_.id) continue;
    Message m;
    m.type = type;
    m.to = voter;
    m.term = term;
    m.index = log_.last_index();
    m.log_term = log_.last_term();
    m.transfer = transfer;
    send(std::move(m));
  }
}

void Node::campaign() {
  if (role_ == Role::Leader) return;
  start_election(false);
}

// ---------------------------------------------------------------------------------------------
// Ticks

void Node::tick() {
  if (role_ == Role::Leader) {
    tick_leader();
  } else {
    tick_election();
  }
}

void Node::tick_election() {
  ++election_elapsed_;
  if (promotable() && election_elapsed_ >= randomized_election_ticks_) {
    election_elapsed_ = 0;
    start_election(false);
  }
}

void Node::tick_leader() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= config_.election_ticks) {
    election_elapsed_ = 0;
    if (config_.check_quorum && !quorum_active()) {
      // Cut off from a quorum for a whole election timeout: another leader may exist by now, so
      // stop acting as one (and stop serving reads).
      become_follower(term_, kNoNode);
      return;
    }
  }
  if (transferee_ != kNoNode && ++transfer_elapsed_ >= config_.election_ticks) {
    transferee_ = kNoNode;  // the transfer did not finish in time; accept proposals again
    transfer_elapsed_ = 0;
  }
  for (auto& [id, pr] : progress_) {
    if (pr.state != Progress::State::Snapshot) continue;
    if (++pr.snapshot_idle_ticks < config_.election_ticks) continue;
    // A chunk or its answer was lost. If the follower has every byte, its install answer was
    // the one lost: probe to learn where it stands; otherwise resend from where it confirmed.
    if (pr.snapshot_offset >= pr.snapshot_data->size() && pr.snapshot_offset > 0) {
      pr.become_probe();
      send_append(id, pr, true);
    } else {
      send_snapshot_chunk(id, pr);
    }
  }
  if (heartbeat_elapsed_ >= config_.heartbeat_ticks) {
    heartbeat_elapsed_ = 0;
    broadcast_heartbeat();
  }
}

bool Node::quorum_active() {
  std::size_t active = is_voter(conf_, config_.id) ? 1 : 0;
  for (auto& [id, pr] : progress_) {
    if (pr.recent_active && is_voter(conf_, id)) ++active;
    pr.recent_active = false;
  }
  return active >= quorum();
}

// ---------------------------------------------------------------------------------------------
// Messages

void Node::step(const Message& m) {
  // Dropped like a message lost on the wire: the sender retries or times out, and nothing in it
  // can be trusted.
  if (malformed(m, config_.id) != nullptr) return;
  if (m.term > term_) {
    if (m.type == MessageType::Vote || m.type == MessageType::PreVote) {
      // Leader lease: we heard from a live leader within the minimum election timeout, so this
      // candidate is disrupting a healthy cluster (it may be partitioned or removed).
      bool in_lease = config_.check_quorum && leader_ != kNoNode &&
                      election_elapsed_ < config_.election_ticks;
      if (in_lease && !m.transfer) return;
    }
    if (m.type == MessageType::PreVote) {
      // Not a real term yet: answer below without adopting it.
    } else if (m.type == MessageType::PreVoteResp && !m.reject) {
      // A grant carries the term we asked about; it is tallied below.
    } else {
      become_follower(m.term, is_from_leader(m.type) ? m.from : kNoNode);
    }
  } else if (m.term < term_) {
    if ((config_.check_quorum || config_.pre_vote) && is_from_leader(m.type)) {
      // A deposed leader that our pre-vote/check-quorum rules may keep from ever seeing a higher
      // term: tell it our term so it steps down.
      Message resp;
      resp.type = MessageType::AppendResp;
      resp.to = m.from;
      send(std::move(resp));
    } else if (m.type == MessageType::PreVote) {
      Message resp;
      resp.type = MessageType::PreVoteResp;
      resp.to = m.from;
      resp.term = term_;
      resp.reject = true;
      send(std::move(resp));
    }
    return;
  }

  if (m.type == MessageType::PreVote || m.type == MessageType::Vote) {
    handle_vote_request(m);
    return;
  }
  switch (role_) {
    case Role::Leader: step_leader(m); break;
    case Role::PreCandidate:
    case Role::Candidate: step_candidate(m); break;
    case Role::Follower: step_follower(m); break;
  }
}

void Node::handle_vote_request(const Message& m) {
  MessageType resp_type =
      m.type == MessageType::Vote ? MessageType::VoteResp : MessageType::PreVoteResp;
  // We may vote again for the same candidate (a retransmitted request), for anyone when we
  // neither voted nor know a leader this term, and pre-vote for anyone asking about a later term.
  bool can_vote = vote_ == m.from || (vote_ == kNoNode && leader_ == kNoNode) ||
                  (m.type == MessageType::PreVote && m.term > term_);
  bool up_to_date = kBugVoteWithoutLogCheck || log_.is_up_to_date(m.index, m.log_term);
  Message resp;
  resp.type = resp_type;
  resp.to = m.from;
  if (can_vote && up_to_date) {
    resp.term = m.term;
    if (m.type == MessageType::Vote) {
      election_elapsed_ = 0;
      vote_ = m.from;
    }
  } else {
    resp.term = term_;
    resp.reject = true;
  }
  send(std::move(resp));
}

void Node::step_candidate(const Message& m) {
  switch (m.type) {
    case MessageType::Append:
    case MessageType::Heartbeat:
    case MessageType::Snapshot:
      // Someone won this term.
      become_follower(m.term, m.from);
      step_follower(m);
      break;
    case MessageType::PreVoteResp:
      if (role_ == Role::PreCandidate) tally_vote(m);
      break;
    case MessageType::VoteResp:
      if (role_ == Role::Candidate) tally_vote(m);
      break;
    default:
      break;
  }
}

void Node::tally_vote(const Message& m) {
  if (!is_voter(conf_, m.from)) return;
  votes_.emplace(m.from, !m.reject);
  std::size_t granted = 0;
  std::size_t rejected = 0;
  for (const auto& [id, yes] : votes_) (yes ? granted : rejected) += 1;
  if (granted >= quorum()) {
    if (role_ == Role::PreCandidate) {
      become_candidate();
      request_votes(MessageType::Vote, term_, false);
    } else {
      become_leader();
    }
  } else if (rejected > conf_.voters.size() - quorum()) {
    become_follower(term_, kNoNode);  // cannot win any more
  }
}

void Node::step_follower(const Message& m) {
  switch (m.type) {
    case MessageType::Append: handle_append(m); break;
    case MessageType::Heartbeat: handle_heartbeat(m); break;
    case MessageType::Snapshot: handle_snapshot_chunk(m); break;
    case MessageType::TimeoutNow:
      // Leadership transfer: campaign at once, skipping pre-vote and the voters' leases.
      if (promotable()) start_election(true);
      break;
    case MessageType::ReadIndexResp:
      ready_reads_.push_back(ReadState{m.context, m.index});
      break;
    default:
      break;
  }
}

void Node::handle_append(const Message& m) {
  election_elapsed_ = 0;
  leader_ = m.from;
  Message resp;
  resp.type = MessageType::AppendResp;
  resp.to = m.from;
  if (m.index < commit_) {
    // Everything up to our commit index matches any leader's log; say where we are.
    resp.index = commit_;
    send(std::move(resp));
    return;
  }
  if (log_.match_term(m.index, m.log_term)) {
    Index conflict = 0;
    for (const Entry& e : m.entries) {
      if (!log_.match_term(e.index, e.term)) {
        conflict = e.index;
        break;
      }
    }
    if (conflict != 0 && conflict <= commit_) {
      fault_ = "leader " + std::to_string(m.from) + " at term " + std::to_string(m.term) +
               " asked to overwrite committed entry " + std::to_string(conflict);
      return;
    }
    // Only a log that is empty after its start: the host replaces the stored log with the
    // snapshot it is handed, so any entry already held would be lost on disk but not here.
    if (conf_.voters.empty() && conf_.learners.empty() && m.index == log_.snapshot_index() &&
        log_.last_index() == log_.snapshot_index() && m.snapshot.index == m.index &&
        m.snapshot.term == log_.snapshot_term()) {
      adopt_log_start_conf(m.snapshot);
    }
    log_.merge(m.entries);
    Index last_new = m.index + m.entries.size();
    // Only what this message proved to match may be committed: entries after it may be a stale
    // tail from an older term.
    commit_to(std::min(m.commit, last_new));
    resp.index = last_new;
  } else {
    // Fast back-off: point the leader at the last entry that could match, skipping a whole
    // conflicting term per round trip instead of one entry.
    Index hint = log_.find_conflict_by_term(std::min(m.index, log_.last_index()), m.log_term);
    resp.reject = true;
    resp.index = m.index;
    resp.reject_hint = hint;
    resp.reject_term = log_.term(hint).value_or(0);
  }
  send(std::move(resp));
}

void Node::handle_heartbeat(const Message& m) {
  election_elapsed_ = 0;
  leader_ = m.from;
  // The leader only sends a commit index up to what it knows we hold.
  commit_to(std::min(m.commit, log_.last_index()));
  Message resp;
  resp.type = MessageType::HeartbeatResp;
  resp.to = m.from;
  resp.context = m.context;
  send(std::move(resp));
}

void Node::handle_snapshot_chunk(const Message& m) {
  election_elapsed_ = 0;
  leader_ = m.from;
  if (m.snapshot.index <= commit_) {
    // We already have everything it covers (perhaps a duplicate of the last chunk).
    Message resp;
    resp.type = MessageType::AppendResp;
    resp.to = m.from;
    resp.index = commit_;
    send(std::move(resp));
    return;
  }
  Message resp;
  resp.type = MessageType::SnapshotResp;
  resp.to = m.from;
  resp.index = m.snapshot.index;
  if (m.snapshot_offset == 0) {
    incoming_meta_ = m.snapshot;
    incoming_ = config_.snapshot_receiver ? config_.snapshot_receiver(m.snapshot)
                                          : std::make_unique<InMemoryReceiver>();
  } else if (!incoming_ || !(incoming_meta_ == m.snapshot) || incoming_->size() != m.snapshot_offset) {
    // A duplicate, a gap, or a chunk of another transfer: say how much of it we hold.
    resp.snapshot_offset = incoming_ && incoming_meta_ == m.snapshot ? incoming_->size() : 0;
    resp.reject = true;
    send(std::move(resp));
    return;
  }
  // A receiver that cannot keep the bytes (a full disk, say): drop the transfer and answer
  // nothing; the leader resends after its idle timeout and hears that we hold nothing.
  SnapshotDataPtr data;
  if (!incoming_ || !incoming_->append(m.snapshot_chunk) || (m.snapshot_done && !(data = incoming_->finish()))) {
    incoming_.reset();
    incoming_meta_ = SnapshotMeta{};
    return;
  }
  if (!m.snapshot_done) {
    resp.snapshot_offset = incoming_->size();
    send(std::move(resp));
    return;
  }
  SnapshotMeta meta = incoming_meta_;
  install_snapshot(meta, std::move(data));
  incoming_.reset();
  incoming_meta_ = SnapshotMeta{};
  // Acknowledge the snapshot's index only: entries we kept after it may not match the leader.
  Message done;
  done.type = MessageType::AppendResp;
  done.to = m.from;
  done.index = meta.index;
  send(std::move(done));
}

void Node::install_snapshot(const SnapshotMeta& meta, SnapshotDataPtr data) {
  if (log_.match_term(meta.index, meta.term)) {
    // Our log already holds the entries; the snapshot only tells us they are committed.
    commit_to(meta.index);
    return;
  }
  log_.restore(meta);
  commit_ = meta.index;
  applied_ = meta.index;
  conf_ = meta.conf;
  conf_history_.clear();
  conf_history_[meta.index] = conf_;
  snapshot_ = Snapshot{meta, std::move(data)};
  pending_snapshot_ = snapshot_;
}

void Node::adopt_log_start_conf(const SnapshotMeta& meta) {
  conf_ = meta.conf;
  conf_history_[meta.index] = conf_;
  snapshot_.meta = meta;
  // The host persists it as its snapshot point, so a restart still knows the configuration.
  pending_snapshot_ = snapshot_;
}

void Node::step_leader(const Message& m) {
  if (m.type == MessageType::ReadIndex) {
    add_read(m.context, m.from);
    return;
  }
  if (!is_response(m.type)) return;
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  pr.recent_active = true;
  switch (m.type) {
    case MessageType::AppendResp: handle_append_response(m, pr); break;
    case MessageType::SnapshotResp: handle_snapshot_response(m, pr); break;
    case MessageType::HeartbeatResp: handle_heartbeat_response(m, pr); break;
    default: break;
  }
}

void Node::handle_append_response(const Message& m, Progress& pr) {
  if (m.reject) {
    if (pr.state == Progress::State::Replicate) {
      if (m.index <= pr.match) return;  // stale: we know it matches further
      pr.become_probe();
    } else if (pr.state == Progress::State::Probe) {
      if (pr.next - 1 != m.index) return;  // answer to an older probe
      Index hint = m.reject_hint;
      if (m.reject_term > 0) hint = log_.find_conflict_by_term(hint, m.reject_term);
      pr.next = std::max(std::min(m.index, hint + 1), pr.match + 1);
      pr.probe_sent = false;
    } else {
      return;  // a snapshot transfer is under way
    }
    send_append(m.from, pr, true);
    return;
  }
  if (m.index > log_.last_index()) return;  // cannot be an answer to this leader
  bool updated = pr.maybe_update(m.index);
  // Within one leader's term a follower's match only grows, so any acceptance at or above what
  // we knew tells us where to replicate from.
  if (m.index >= pr.match) {
    if (pr.state == Progress::State::Probe ||
        (pr.state == Progress::State::Snapshot && pr.match >= pr.snapshot_meta.index)) {
      pr.become_replicate();
    }
  }
  if (pr.state == Progress::State::Replicate) pr.free_inflight_to(m.index);
  if (updated && maybe_commit_and_release()) {
    broadcast_append();  // followers learn the new commit index
  } else {
    send_append(m.from, pr, false);
  }
  maybe_send_timeout_now(m.from, pr);
}

void Node::handle_snapshot_response(const Message& m, Progress& pr) {
  if (pr.state != Progress::State::Snapshot || m.index != pr.snapshot_meta.index) return;
  // One chunk is in flight at a time, and each answer sends the next. An answer saying what we
  // already knew is a duplicate (the network's, or a follower's reject of a duplicated chunk):
  // acting on it would start a second stream of chunks beside the first, and every further
  // duplicate another (a simulator run with 15% duplication sent 56,694 chunks in a second). A
  // lost chunk or answer is resent after the idle timeout (tick) instead.
  if (m.snapshot_offset == pr.snapshot_offset) return;
  pr.snapshot_offset = m.snapshot_offset;
  if (pr.snapshot_offset < pr.snapshot_data->size()) send_snapshot_chunk(m.from, pr);
}

void Node::handle_heartbeat_response(const Message& m, Progress& pr) {
  pr.read_round_acked = std::max(pr.read_round_acked, m.context);
  release_confirmed_reads();
  if (pr.match < log_.last_index()) {
    // At most once per heartbeat broadcast (Progress::heartbeat_resent): later answers in the
    // same round, a backlog arriving together, would only repeat the same resend.
    if (pr.heartbeat_resent) return;
    pr.heartbeat_resent = true;
    // The follower is behind: an Append or its answer may have been lost. Probing again (or,
    // when the pipeline is full, freeing one slot) makes replication resume.
    if (pr.state == Progress::State::Probe) pr.probe_sent = false;
    if (pr.state == Progress::State::Replicate &&
        pr.inflight_full(config_.inflight_msgs_max, config_.inflight_bytes_max)) {
      pr.pop_inflight();
    }
    send_append(m.from, pr, true);
  }
}

void Node::maybe_send_timeout_now(NodeId to, const Progress& pr) {
  if (to != transferee_ || pr.match != log_.last_index()) return;
  Message m;
  m.type = MessageType::TimeoutNow;
  m.to = to;
  send(std::move(m));
}

// ---------------------------------------------------------------------------------------------
// Leader: replication and commitment

void Node::send(Message m) {
  m.from = config_.id;
  // (Pre)vote messages carry the term they are about; everything else carries ours.
  if (m.type != MessageType::PreVote && m.type != MessageType::PreVoteResp &&
      m.type != MessageType::Vote && m.type != MessageType::VoteResp) {
    m.term = term_;
  }
  messages_.push_back(std::move(m));
}

void Node::send_append(NodeId to, Progress& pr, bool allow_empty) {
  if (pr.state == Progress::State::Snapshot) return;
  if (pr.state == Progress::State::Probe && pr.probe_sent) return;
  if (pr.state == Progress::State::Replicate &&
      pr.inflight_full(config_.inflight_msgs_max, config_.inflight_bytes_max)) {
    return;
  }
  Index prev = pr.next - 1;
  std::optional<Term> prev_term = log_.term(prev);
  if (!prev_term) {
    // The follower needs entries we compacted away: send the snapshot instead.
    pr.state = Progress::State::Snapshot;
    pr.clear_inflight();
    pr.snapshot_meta = snapshot_.meta;
    pr.snapshot_data = snapshot_.data;
    pr.snapshot_offset = 0;
    send_snapshot_chunk(to, pr);
    return;
  }
  std::vector<Entry> entries;
  if (pr.next <= log_.last_index()) {
    entries = log_.slice(pr.next, log_.last_index() + 1, config_.append_bytes_max);
  }
  if (entries.empty() && !allow_empty) return;
  if (pr.state == Progress::State::Replicate && !entries.empty()) {
    // Pipelining: assume it arrives; a rejection sends us back to probing.
    pr.next = entries.back().index + 1;
    std::size_t bytes = 0;
    for (const Entry& e : entries) bytes += e.data.size();
    pr.add_inflight(entries.back().index, bytes);
  } else if (pr.state == Progress::State::Probe) {
    pr.probe_sent = true;
  }
  bool more = pr.state == Progress::State::Replicate && pr.next <= log_.last_index();
  Message m;
  m.type = MessageType::Append;
  m.to = to;
  m.index = prev;
  m.log_term = *prev_term;
  m.entries = std::move(entries);
  m.commit = commit_;
  // Replicating from the very start of our log: a member added after bootstrap knows no
  // configuration yet, and the one in force at our log start is not in any entry we send.
  if (prev == log_.snapshot_index()) m.snapshot = snapshot_.meta;
  send(std::move(m));
  // Pipelining: keep filling the window while there is more to send (each message stays
  // within append_bytes_max).
  if (more) send_append(to, pr, false);
}

void Node::send_snapshot_chunk(NodeId to, Progress& pr) {
  if (pr.snapshot_offset == 0 && snapshot_.meta.index >= pr.snapshot_meta.index) {
    // A transfer (re)starting from its first byte takes the latest snapshot: the follower holds
    // nothing of the old one (it may have refused it whole: a host checks the bytes it receives,
    // and its leader may have replaced damaged bytes since).
    pr.snapshot_meta = snapshot_.meta;
    pr.snapshot_data = snapshot_.data;
  }
  const std::string_view data = pr.snapshot_data->bytes();
  std::size_t offset = std::min<std::size_t>(pr.snapshot_offset, data.size());
  std::size_t length = std::min(config_.snapshot_chunk_bytes_max, data.size() - offset);
  Message m;
  m.type = MessageType::Snapshot;
  m.to = to;
  m.snapshot = pr.snapshot_meta;
  m.snapshot_offset = offset;
  m.snapshot_chunk = std::string(data.substr(offset, length));
  m.snapshot_done = offset + length == data.size();
  m.commit = commit_;
  pr.snapshot_idle_ticks = 0;
  send(std::move(m));
}

void Node::broadcast_append() {
  for (auto& [id, pr] : progress_) send_append(id, pr, true);
}

void Node::broadcast_heartbeat() {
  for (auto& [id, pr] : progress_) {
    pr.heartbeat_resent = false;  // a new round: its answer may resend again
    Message m;
    m.type = MessageType::Heartbeat;
    m.to = id;
    m.commit = std::min(pr.match, commit_);
    m.context = read_round_;
    send(std::move(m));
  }
}

void Node::append_entries_and_broadcast(std::vector<Entry> entries) {
  log_.append(std::move(entries));
  // Sent at the next ready(), so proposals between two Readys share one Append per follower.
  broadcast_wanted_ = true;
}

bool Node::maybe_commit_and_release() {
  std::vector<Index> matches;
  for (NodeId voter : conf_.voters) {
    if (voter == config_.id) {
      // The leader counts itself only for what it has made durable.
      matches.push_back(log_.persisted());
    } else if (auto it = progress_.find(voter); it != progress_.end()) {
      matches.push_back(it->second.match);
    } else {
      matches.push_back(0);
    }
  }
  if (matches.empty()) return false;
  std::sort(matches.begin(), matches.end(), std::greater<>());
  Index candidate = matches[quorum() - 1];
  if (candidate <= commit_) return false;
  // Raft §5.4.2 (Figure 8): an entry from an earlier term is committed only indirectly, by
  // committing an entry of the current term after it.
  if (!kBugCommitPreviousTerm && log_.term(candidate) != term_) return false;
  commit_to(candidate);
  if (committed_in_current_term() && !reads_before_commit_.empty()) {
    std::vector<PendingRead> waiting = std::move(reads_before_commit_);
    reads_before_commit_.clear();
    for (const PendingRead& r : waiting) add_read(r.request_id, r.from);
  }
  return true;
}

void Node::commit_to(Index index) {
  if (index <= commit_) return;
  COORD_ASSERT(index <= log_.last_index(), "commit beyond the last log index");
  commit_ = index;
}

bool Node::committed_in_current_term() const { return log_.term(commit_) == term_; }

// ---------------------------------------------------------------------------------------------
// Reads

Error Node::read_index(std::uint64_t request_id) {
  if (role_ == Role::Leader) {
    add_read(request_id, kNoNode);
    return Error::Ok;
  }
  if (leader_ == kNoNode) return Error::NotLeader;
  Message m;
  m.type = MessageType::ReadIndex;
  m.to = leader_;
  m.context = request_id;
  send(std::move(m));
  return Error::Ok;
}

void Node::add_read(std::uint64_t request_id, NodeId from) {
  if (!committed_in_current_term()) {
    // Our commit index may lag entries an earlier leader committed; wait for our own entry.
    reads_before_commit_.push_back(PendingRead{request_id, 0, 0, from});
    return;
  }
  PendingRead read{request_id, commit_, read_round_ + 1, from};
  if (kBugReadWithoutQuorum || (quorum() == 1 && is_voter(conf_, config_.id))) {
    deliver_read(read);
    return;
  }
  reads_.push_back(read);
  read_round_wanted_ = true;
}

void Node::deliver_read(const PendingRead& read) {
  if (read.from == kNoNode) {
    ready_reads_.push_back(ReadState{read.request_id, read.index});
    return;
  }
  Message m;
  m.type = MessageType::ReadIndexResp;
  m.to = read.from;
  m.index = read.index;
  m.context = read.request_id;
  send(std::move(m));
}

void Node::release_confirmed_reads() {
  if (reads_.empty()) return;
  std::vector<std::uint64_t> acks;
  for (NodeId voter : conf_.voters) {
    if (voter == config_.id) {
      acks.push_back(read_round_);
    } else if (auto it = progress_.find(voter); it != progress_.end()) {
      acks.push_back(it->second.read_round_acked);
    } else {
      acks.push_back(0);
    }
  }
  std::sort(acks.begin(), acks.end(), std::greater<>());
  std::uint64_t confirmed = acks[quorum() - 1];
  while (!reads_.empty() && reads_.front().round <= confirmed) {
    deliver_read(reads_.front());
    reads_.pop_front();
  }
}

// ---------------------------------------------------------------------------------------------
// Proposals, membership, transfer, compaction

ProposeResult Node::propose(std::string data) {
  if (role_ != Role::Leader) return ProposeResult{Error::NotLeader, 0, 0};
  if (transferee_ != kNoNode) return ProposeResult{Error::TransferInProgress, 0, 0};
  Index index = log_.last_index() + 1;
  append_entries_and_broadcast({Entry{term_, index, EntryType::Normal, std::move(data)}});
  return ProposeResult{Error::Ok, index, term_};
}

ProposeResult Node::propose_conf_change(const ConfChange& change) {
  if (role_ != Role::Leader) return ProposeResult{Error::NotLeader, 0, 0};
  if (transferee_ != kNoNode) return ProposeResult{Error::TransferInProgress, 0, 0};
  // One change at a time, and only once an entry of this term committed: together they keep
  // any two configurations that can make decisions overlapping in a quorum.
  if (pending_conf_index_ > applied_ || !committed_in_current_term()) {
    return ProposeResult{Error::ConfChangePending, 0, 0};
  }
  if (change.node == kNoNode) return ProposeResult{Error::InvalidConfChange, 0, 0};
  if (apply_conf_change(conf_, change).voters.empty()) {
    return ProposeResult{Error::InvalidConfChange, 0, 0};
  }
  Index index = log_.last_index() + 1;
  append_entries_and_broadcast(
      {Entry{term_, index, EntryType::ConfChange, encode_conf_change(change)}});
  pending_conf_index_ = index;
  return ProposeResult{Error::Ok, index, term_};
}

void Node::apply_conf(Index index, const ConfChange& change) {
  conf_ = apply_conf_change(conf_, change);
  conf_history_[index] = conf_;
  if (role_ == Role::PreCandidate || role_ == Role::Candidate) {
    // A campaign started before this change was handed out (ticks and the entry's commit can
    // arrive together): once removed or demoted, winning it would make a leader that is not a
    // voter.
    if (!is_voter(conf_, config_.id)) become_follower(term_, kNoNode);
    return;
  }
  if (role_ != Role::Leader) return;
  if (!is_voter(conf_, config_.id)) {
    become_follower(term_, kNoNode);  // removed (or demoted): let the remaining voters elect
    return;
  }
  if (transferee_ != kNoNode && !is_voter(conf_, transferee_)) transferee_ = kNoNode;
  sync_progress_with_conf();
  // The quorum changed: entries may now be committed (for example after removing a dead node).
  if (maybe_commit_and_release()) broadcast_wanted_ = true;
}

void Node::sync_progress_with_conf() {
  auto member = [&](NodeId id) { return is_voter(conf_, id) || is_learner(conf_, id); };
  for (auto it = progress_.begin(); it != progress_.end();) {
    it = member(it->first) ? std::next(it) : progress_.erase(it);
  }
  auto add = [&](NodeId id) {
    if (id == config_.id || progress_.count(id) != 0) return;
    Progress pr;
    pr.next = log_.last_index() + 1;
    // Count new peers as active so that adding one does not make check-quorum fire at once.
    pr.recent_active = true;
    progress_.emplace(id, std::move(pr));
  };
  for (NodeId id : conf_.voters) add(id);
  for (NodeId id : conf_.learners) add(id);
}

Error Node::transfer_leadership(NodeId to) {
  if (role_ != Role::Leader) return Error::NotLeader;
  if (to == config_.id) return Error::Ok;
  if (!is_voter(conf_, to)) return Error::UnknownNode;
  auto it = progress_.find(to);
  if (it == progress_.end()) return Error::UnknownNode;
  transferee_ = to;
  transfer_elapsed_ = 0;
  if (it->second.match == log_.last_index()) {
    maybe_send_timeout_now(to, it->second);
  } else {
    send_append(to, it->second, false);
  }
  return Error::Ok;
}

void Node::compact(Index index, SnapshotDataPtr data) {
  COORD_ASSERT(index <= applied_, "compact beyond the applied index");
  // Entries handed out in a Ready are durable only after advance(); never drop a log prefix
  // that a crash could still lose.
  if (index > log_.persisted() || index <= log_.snapshot_index()) return;
  auto conf_it = std::prev(conf_history_.upper_bound(index));
  snapshot_ = Snapshot{SnapshotMeta{index, *log_.term(index), conf_it->second}, std::move(data)};
  conf_history_.erase(conf_history_.begin(), conf_it);
  log_.compact(index);
}

void Node::replace_snapshot_data(Index index, SnapshotDataPtr data) {
  COORD_ASSERT(data != nullptr, "snapshot data replaced by nothing");
  if (index != snapshot_.meta.index || index == 0) return;
  COORD_ASSERT(data->size() == snapshot_.data->size(), "replacement snapshot data of another size");
  snapshot_.data = std::move(data);
}

// ---------------------------------------------------------------------------------------------
// Ready / advance

void Node::flush_batched_sends() {
  if (role_ != Role::Leader) {
    read_round_wanted_ = false;
    broadcast_wanted_ = false;
    return;
  }
  if (broadcast_wanted_) {
    broadcast_wanted_ = false;
    broadcast_append();
  }
  if (read_round_wanted_) {
    read_round_wanted_ = false;
    ++read_round_;
    broadcast_heartbeat();
  }
}

bool Node::has_ready() const {
  return read_round_wanted_ || broadcast_wanted_ || pending_snapshot_.has_value() ||
         !messages_.empty() || !ready_reads_.empty() || term_or_vote_unpersisted() ||
         log_.unstable_from() <= log_.last_index() ||
         applied_ < std::min(commit_, log_.last_index());
}

Ready Node::ready() {
  flush_batched_sends();
  Ready rd;
  // Committed entries first: a membership change takes effect as it is handed out, which can
  // change our role and the messages below.
  Index last_committed = std::min(commit_, log_.last_index());
  std::size_t bytes = 0;
  bool conf_handed_out = false;
  while (applied_ < last_committed) {
    const Entry& e = log_.at(applied_ + 1);
    if (!rd.committed.empty() && bytes + e.data.size() > config_.committed_bytes_max) break;
    bytes += e.data.size();
    rd.committed.push_back(e);
    ++applied_;
    if (e.type == EntryType::ConfChange) {
      conf_handed_out = true;
      if (auto change = decode_conf_change(e.data)) apply_conf(e.index, *change);
    }
  }
  flush_batched_sends();
  if (pending_snapshot_) {
    rd.snapshot = std::move(*pending_snapshot_);
    pending_snapshot_.reset();
  }
  for (Index i = log_.unstable_from(); i <= log_.last_index(); ++i) rd.entries.push_back(log_.at(i));
  log_.mark_handed_out();
  HardState hs = hard_state();
  // A leader's Appends, Heartbeats and Snapshot chunks may leave before this Ready is durable
  // when the term and vote they carry were persisted by an earlier one: a crash then loses at
  // most entries the leader has not counted for itself, which it can never contradict (it
  // cannot lead this term again). Votes and every answer promise durable state: they wait.
  const bool term_durable = !term_or_vote_unpersisted();
  // A commit index that moved alone is not worth an fsync (etcd's MustSync): Raft keeps it in
  // volatile state, and a restart takes max(stored commit, snapshot, applied) and learns the rest
  // from the leader. It rides along with the next entries, snapshot, term or vote instead, so a
  // committed entry is applied without waiting for a disk round trip of its own. Except when a
  // configuration change is handed out: a restart rebuilds the configuration only up to the
  // stored commit, and one that was applied (and answered) must not come back older, or members
  // already removed could be needed for a quorum again (found in review; raft_membership_test).
  if (hs != last_hard_state_ && (!term_durable || !rd.entries.empty() || rd.snapshot || conf_handed_out)) {
    rd.hard_state = hs;
    last_hard_state_ = hs;
  }
  for (Message& m : messages_) {
    if ((term_durable && is_from_leader(m.type) && m.term == hs.term) ||
        (kBugEarlyVotes && m.type == MessageType::VoteResp)) {
      rd.early_messages.push_back(std::move(m));
    } else {
      rd.messages.push_back(std::move(m));
    }
  }
  messages_.clear();
  rd.reads = std::move(ready_reads_);
  ready_reads_.clear();
  return rd;
}

void Node::advance(const Ready& rd) {
  if (!rd.entries.empty()) log_.mark_persisted(rd.entries.back().index, rd.entries.back().term);
  // Our own entries count towards commitment only now that they are durable.
  if (role_ == Role::Leader && maybe_commit_and_release()) broadcast_wanted_ = true;
  drop_entry_data();
}

void Node::drop_entry_data() {
  if (!config_.read_entries || config_.log_memory_bytes_max == 0) return;
  // Handed out to apply (so never needed by ready() again) and durable (so the host can read
  // them back): only Appends to lagging followers still want them.
  log_.drop_data(std::min(applied_, log_.persisted()), config_.log_memory_bytes_max);
}

}  // namespace coord::raft
