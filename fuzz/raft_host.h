// A minimal host for one raft::Node under fuzzing (fuzz_raft_step, fuzz_frame_peer): it keeps a
// model of what is durable, runs the Ready cycle of raft/ready.h (persist snapshot, entries and
// hard state; send; apply; advance), can restart the node from its durable state, and checks
// after every input that nothing node-local broke.
//
// What is checked holds for *any* input, however forged: a peer that speaks as the leader of a
// term can make this node adopt its log, commit what no quorum holds, or grant a read that is
// not linearizable, so the cross-node properties (election safety, log matching, leader
// completeness, state machine safety, linearizable reads) are the simulator's to check, not
// ours. Checked here, after every input:
//   - raft/invariants.h, all of it: log indices contiguous, terms non-decreasing and never above
//     the node's term, commit <= last index, applied <= commit, snapshot <= applied, role
//     consistency (a leader names and voted for itself and is a voter; no one else keeps
//     progress or names itself leader), progress within the leader's log. A fault (the node
//     refusing to overwrite a committed entry) is a refusal, not a broken invariant: the host
//     stops there, as the real hosts do (fail-stop).
//   - the host contract, after each Ready: entries follow the durable log without a gap and
//     never rewrite the snapshot; the hard state's term and commit never go back and its vote
//     never changes within a term; committed entries follow the applied index one by one and
//     are the durable entries at their indices; messages come from this node, go to another
//     node, survive the wire codec unchanged, and a granted vote is durable when it leaves
//     (unless the disk already holds a later term, which keeps the node from ever acting in the
//     vote's term again); what the core counts as persisted is on disk.
//   - a restart from the durable state always succeeds (the constructor's assertions hold).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "net/raft_codec.h"
#include "raft/conf_change.h"
#include "raft/invariants.h"
#include "raft/node.h"

namespace coord::fuzz {

class SplitMix final : public raft::Random {
 public:
  explicit SplitMix(std::uint64_t seed) : state_(seed) {}
  std::uint64_t below(std::uint64_t bound) override { return next() % bound; }
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

 private:
  std::uint64_t state_;
};

// FUZZ_TRACE=1 in the environment prints what a replayed input does (for debugging a crash).
inline bool tracing() {
  static const bool on = std::getenv("FUZZ_TRACE") != nullptr;
  return on;
}

inline std::string describe(const raft::Message& m) {
  std::string s = std::string(raft::to_string(m.type)) + " " + std::to_string(m.from) + "->" +
                  std::to_string(m.to) + " term=" + std::to_string(m.term) +
                  " log_term=" + std::to_string(m.log_term) + " index=" + std::to_string(m.index) +
                  " commit=" + std::to_string(m.commit) + (m.reject ? " reject" : "") +
                  " entries=[";
  for (const raft::Entry& e : m.entries) s += std::to_string(e.index) + "/" + std::to_string(e.term) + " ";
  s += "] snapshot=" + std::to_string(m.snapshot.index) + "/" + std::to_string(m.snapshot.term);
  return s;
}

inline bool same_message(const raft::Message& a, const raft::Message& b) {
  return a.type == b.type && a.from == b.from && a.to == b.to && a.term == b.term &&
         a.log_term == b.log_term && a.index == b.index && a.entries == b.entries &&
         a.commit == b.commit && a.reject == b.reject && a.reject_hint == b.reject_hint &&
         a.reject_term == b.reject_term && a.transfer == b.transfer && a.context == b.context &&
         a.snapshot == b.snapshot && a.snapshot_offset == b.snapshot_offset &&
         a.snapshot_chunk == b.snapshot_chunk && a.snapshot_done == b.snapshot_done;
}

// The wire codec must carry every message exactly.
inline void check_codec_round_trip(const raft::Message& m) {
  std::string error;
  const auto back = net::decode(net::encode(m), &error);
  FUZZ_CHECK(back.has_value(), "a message does not decode after encoding: %s", error.c_str());
  FUZZ_CHECK(same_message(*back, m), "a %s message changed through the codec", raft::to_string(m.type));
}

// What a host keeps on disk.
struct Durable {
  raft::HardState hard_state;
  raft::SnapshotMeta snapshot;
  raft::SnapshotDataPtr snapshot_data;
  std::vector<raft::Entry> entries;  // after snapshot.index, contiguous
  raft::Index applied = 0;           // the state machine's applied index (durable, as with LMDB)

  raft::Index last_index() const { return snapshot.index + entries.size(); }
  const raft::Entry* at(raft::Index i) const {
    if (i <= snapshot.index || i > last_index()) return nullptr;
    return &entries[i - snapshot.index - 1];
  }
};

class RaftHost {
 public:
  RaftHost(const raft::Config& config, std::uint64_t seed, Durable disk)
      : config_(config), random_(seed), disk_(std::move(disk)) {
    start(false);
  }

  raft::Node& node() { return *node_; }
  const Durable& disk() const { return disk_; }
  // The node reported a fault and the host stopped, as the real ones do.
  bool stopped() const { return stopped_; }
  // Messages the node sent, oldest first (the harness may drop them).
  std::vector<raft::Message>& outbox() { return outbox_; }

  // A restart: the node comes back from what is durable. `applied_from_snapshot` restarts the
  // state machine from the snapshot (as the simulator's in-memory one does) instead of keeping
  // its applied index (as LMDB does).
  void start(bool applied_from_snapshot) {
    if (applied_from_snapshot) disk_.applied = disk_.snapshot.index;
    raft::RestoreState state;
    state.hard_state = disk_.hard_state;
    state.snapshot = disk_.snapshot;
    state.snapshot_data = disk_.snapshot_data;
    state.entries = disk_.entries;
    state.applied = disk_.applied;
    node_ = std::make_unique<raft::Node>(config_, random_, std::move(state));
    check();
  }

  // Hands out and handles every Ready the node has; then checks.
  void pump() {
    for (int round = 0; round < 64 && !stopped_ && node_->has_ready(); ++round) {
      raft::Ready rd = node_->ready();
      handle(rd);
      node_->advance(rd);
      check();
      check_persisted();
    }
  }

  // After every input.
  void check() {
    const raft::Node& n = *node_;
    for (const std::string& problem : raft::check_invariants(n)) {
      if (problem == n.fault()) continue;
      FUZZ_CHECK(false, "node invariant broken: %s (role %s, term %llu, commit %llu, last %llu)",
                 problem.c_str(), raft::to_string(n.role()), static_cast<unsigned long long>(n.term()),
                 static_cast<unsigned long long>(n.commit()),
                 static_cast<unsigned long long>(n.log().last_index()));
    }
    if (!n.fault().empty()) stopped_ = true;
  }

  // The host took a snapshot of its state machine at `index` (at most what it applied).
  void compact(raft::Index index) {
    if (index > disk_.applied || index > node_->applied()) return;
    // As the real hosts do: the snapshot goes to disk before the core drops the prefix.
    if (index <= disk_.snapshot.index || index > disk_.last_index()) return;
    if (index > node_->log().persisted()) return;
    auto data = raft::snapshot_bytes("state@" + std::to_string(index));
    node_->compact(index, data);
    if (node_->log().snapshot_index() != index) return;  // the core declined
    const raft::Entry* e = disk_.at(index);
    FUZZ_CHECK(e != nullptr && e->term == node_->snapshot_meta().term, "compacted at a term the disk does not hold");
    disk_.entries.erase(disk_.entries.begin(),
                        disk_.entries.begin() + static_cast<std::ptrdiff_t>(index - disk_.snapshot.index));
    disk_.snapshot = node_->snapshot_meta();
    disk_.snapshot_data = data;
    check();
  }

 private:
  void handle(const raft::Ready& rd) {
    // 0. Early messages leave before anything of this Ready is durable: only a leader's
    // Appends, Heartbeats and Snapshot chunks, in the durable term the node voted itself into.
    for (const raft::Message& m : rd.early_messages) {
      if (tracing()) std::fprintf(stderr, "  send early %s\n", describe(m).c_str());
      FUZZ_CHECK(m.type == raft::MessageType::Append || m.type == raft::MessageType::Heartbeat ||
                     m.type == raft::MessageType::Snapshot,
                 "an early message that is not a leader's");
      FUZZ_CHECK(m.from == node_->id() && m.term == disk_.hard_state.term && disk_.hard_state.vote == node_->id(),
                 "an early message before its term and vote are durable");
      check_codec_round_trip(m);
      if (outbox_.size() < outbox_max) outbox_.push_back(m);
    }
    // 1. Snapshot: the log restarts after it, the state machine becomes it.
    if (rd.snapshot) {
      const raft::SnapshotMeta& meta = rd.snapshot->meta;
      FUZZ_CHECK(meta.index >= disk_.snapshot.index, "a snapshot behind the stored one");
      disk_.snapshot = meta;
      disk_.snapshot_data = rd.snapshot->data;
      disk_.entries.clear();
      disk_.applied = meta.index;
    }
    // 2. Entries (replacing any stored suffix they overlap) and hard state.
    if (!rd.entries.empty()) {
      const raft::Index first = rd.entries.front().index;
      FUZZ_CHECK(first > disk_.snapshot.index, "entries rewrite the snapshot");
      FUZZ_CHECK(first <= disk_.last_index() + 1, "entries leave a gap after the durable log");
      for (std::size_t k = 1; k < rd.entries.size(); ++k) {
        FUZZ_CHECK(rd.entries[k].index == rd.entries[k - 1].index + 1, "Ready entries not contiguous");
      }
      disk_.entries.resize(first - disk_.snapshot.index - 1);
      disk_.entries.insert(disk_.entries.end(), rd.entries.begin(), rd.entries.end());
    }
    if (rd.hard_state) {
      const raft::HardState& hs = *rd.hard_state;
      const raft::HardState& old = disk_.hard_state;
      FUZZ_CHECK(hs.term >= old.term, "the term went back");
      FUZZ_CHECK(hs.term > old.term || old.vote == raft::kNoNode || hs.vote == old.vote,
                 "voted twice in term %llu", static_cast<unsigned long long>(hs.term));
      FUZZ_CHECK(hs.commit >= old.commit, "the durable commit went back");
      FUZZ_CHECK(hs.commit <= disk_.last_index(), "a durable commit beyond the durable log");
      disk_.hard_state = hs;
    }
    // 3. Messages: only now, and only what is durable.
    if (tracing() && rd.hard_state) {
      std::fprintf(stderr, "  persist hard state term=%llu vote=%llu commit=%llu\n",
                   static_cast<unsigned long long>(rd.hard_state->term),
                   static_cast<unsigned long long>(rd.hard_state->vote),
                   static_cast<unsigned long long>(rd.hard_state->commit));
    }
    for (const raft::Message& m : rd.messages) {
      if (tracing()) std::fprintf(stderr, "  send %s\n", describe(m).c_str());
      FUZZ_CHECK(m.from == node_->id(), "a message not from this node");
      FUZZ_CHECK(m.to != node_->id() && m.to != raft::kNoNode, "a message to itself or to nobody");
      // A promise about a term the node has durably left behind is kept by that: it will
      // never act in the old term again.
      const bool term_left = disk_.hard_state.term > m.term;
      if (m.type == raft::MessageType::VoteResp && !m.reject) {
        FUZZ_CHECK(term_left || (disk_.hard_state.term == m.term && disk_.hard_state.vote == m.to),
                   "a vote granted before it is durable");
      }
      // (An accepted append is not checked the same way: two forged leaders of one term can
      // make the node replace, before the Ready, entries it already acknowledged; a real term
      // has one leader, whose entries never conflict with themselves.)
      check_codec_round_trip(m);
      if (outbox_.size() < outbox_max) outbox_.push_back(m);
    }
    // 4. Apply.
    for (const raft::Entry& e : rd.committed) {
      FUZZ_CHECK(e.index == disk_.applied + 1, "committed entry %llu does not follow applied %llu",
                 static_cast<unsigned long long>(e.index), static_cast<unsigned long long>(disk_.applied));
      const raft::Entry* stored = disk_.at(e.index);
      FUZZ_CHECK(stored != nullptr && *stored == e, "a committed entry that is not the durable one");
      disk_.applied = e.index;
    }
  }

  // What the core counts as persisted is on disk.
  void check_persisted() {
    const raft::RaftLog& log = node_->log();
    for (raft::Index i = std::max(log.snapshot_index(), disk_.snapshot.index) + 1; i <= log.persisted(); ++i) {
      const raft::Entry* stored = disk_.at(i);
      FUZZ_CHECK(stored != nullptr && stored->term == log.at(i).term,
                 "the core counts entry %llu as persisted but the disk does not hold it",
                 static_cast<unsigned long long>(i));
    }
  }

  static constexpr std::size_t outbox_max = 64;

  raft::Config config_;
  SplitMix random_;
  Durable disk_;
  std::unique_ptr<raft::Node> node_;
  bool stopped_ = false;
  std::vector<raft::Message> outbox_;
};

}  // namespace coord::fuzz
