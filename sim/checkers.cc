#include "sim/checkers.h"

#include <algorithm>
#include <cstdint>

#include <fmt/format.h>

#include "raft/assert.h"
#include "raft/node.h"

namespace coord::sim {

namespace {

Violation violation(const char* name, std::string message) {
  return Violation{name, std::move(message)};
}

std::string show(const EntryDigest& e) { return fmt::format("term {} hash {:016x}", e.term, e.hash); }

std::string show(const StateDigest& s) {
  return fmt::format("index {} count {} hash {:016x}", s.index, s.count, s.hash);
}

}  // namespace

const EntryDigest* LogView::at(raft::Index index) const {
  if (index < first_index() || index > last_index()) return nullptr;
  return &entries[static_cast<std::size_t>(index - first_index())];
}

LogView view_of(const raft::Node& node) {
  const raft::RaftLog& log = node.log();
  LogView v;
  v.node = node.id();
  v.snapshot_index = log.snapshot_index();
  v.snapshot_term = log.snapshot_term();
  v.entries.reserve(log.entry_count());
  // Entries whose data the core dropped are read back from the disk, as the core itself would.
  if (log.memory_first() > log.first_index()) {
    for (const raft::Entry& e : log.slice(log.first_index(), log.memory_first(), SIZE_MAX)) {
      v.entries.push_back(digest_of(e));
    }
    COORD_ASSERT(v.entries.size() == log.memory_first() - log.first_index(),
                 "the disk lacks entries whose data the core dropped");
  }
  for (raft::Index i = log.memory_first(); i <= log.last_index(); ++i) v.entries.push_back(digest_of(log.at(i)));
  return v;
}

Verdict ElectionSafety::observe_leader(raft::NodeId node, raft::Term term) {
  auto [it, inserted] = leaders_.emplace(term, node);
  if (inserted || it->second == node) return std::nullopt;
  return violation(invariant::kElectionSafety,
                   fmt::format("n{} and n{} are both leaders of term {}", it->second, node, term));
}

namespace {

Verdict check_pair(const LogView& a, const LogView& b) {
  const raft::Index lo = std::max(a.first_index(), b.first_index());
  const raft::Index hi = std::min(a.last_index(), b.last_index());
  if (lo > hi) return std::nullopt;
  // The highest index where the terms agree pins down everything at and below it.
  raft::Index agree = 0;
  for (raft::Index i = hi; i >= lo; --i) {
    if (a.at(i)->term == b.at(i)->term) {
      agree = i;
      break;
    }
  }
  for (raft::Index i = lo; i <= agree && agree != 0; ++i) {
    const EntryDigest& ea = *a.at(i);
    const EntryDigest& eb = *b.at(i);
    if (ea == eb) continue;
    return violation(invariant::kLogMatching,
                     fmt::format("n{} and n{} agree on term {} at index {} but differ at index {}: "
                                 "n{} has {}, n{} has {}",
                                 a.node, b.node, a.at(agree)->term, agree, i, a.node, show(ea),
                                 b.node, show(eb)));
  }
  return std::nullopt;
}

}  // namespace

Verdict check_log_matching(const std::vector<LogView>& logs) {
  for (std::size_t i = 0; i < logs.size(); ++i) {
    for (std::size_t j = i + 1; j < logs.size(); ++j) {
      if (auto v = check_pair(logs[i], logs[j])) return v;
    }
  }
  return std::nullopt;
}

void LeaderCompleteness::observe_committed(raft::Index index, EntryDigest entry, raft::Term known_at_term) {
  auto [it, inserted] = committed_.emplace(index, Committed{entry, known_at_term});
  // A differing entry is state-machine safety's to report; here keep the tightest term bound.
  if (!inserted) it->second.known_at_term = std::min(it->second.known_at_term, known_at_term);
}

Verdict LeaderCompleteness::observe_new_leader(const LogView& log, raft::Term term) const {
  for (auto it = committed_.lower_bound(log.snapshot_index); it != committed_.end(); ++it) {
    const auto& [index, c] = *it;
    if (c.known_at_term >= term) continue;  // may have been committed at this term or later
    if (index == log.snapshot_index) {
      if (log.snapshot_term != c.entry.term) {
        return violation(invariant::kLeaderCompleteness,
                         fmt::format("leader n{} of term {} has a snapshot at {} of term {}, but "
                                     "the committed entry there has term {}",
                                     log.node, term, index, log.snapshot_term, c.entry.term));
      }
      continue;
    }
    const EntryDigest* have = log.at(index);
    if (!have) {
      return violation(invariant::kLeaderCompleteness,
                       fmt::format("leader n{} of term {} lacks committed entry {} ({}, known "
                                   "committed at term {}); its log ends at {}",
                                   log.node, term, index, show(c.entry), c.known_at_term,
                                   log.last_index()));
    }
    if (*have != c.entry) {
      return violation(invariant::kLeaderCompleteness,
                       fmt::format("leader n{} of term {} has {} at index {}, but {} was committed "
                                   "there (known at term {})",
                                   log.node, term, show(*have), index, show(c.entry), c.known_at_term));
    }
  }
  return std::nullopt;
}

Verdict StateMachineSafety::observe_applied(raft::NodeId node, raft::Index index, EntryDigest entry) {
  auto [it, inserted] = entries_.emplace(index, std::make_pair(node, entry));
  if (inserted || it->second.second == entry) return std::nullopt;
  return violation(invariant::kStateMachineSafety,
                   fmt::format("at index {} n{} applied {} but n{} applied {}", index,
                               it->second.first, show(it->second.second), node, show(entry)));
}

Verdict StateMachineSafety::observe_state(raft::NodeId node, const StateDigest& state) {
  auto [it, inserted] = states_.emplace(state.index, std::make_pair(node, state));
  if (inserted || it->second.second == state) return std::nullopt;
  return violation(invariant::kStateMachineSafety,
                   fmt::format("state at index {} differs: n{} has {}, n{} has {}", state.index,
                               it->second.first, show(it->second.second), node, show(state)));
}

Verdict CommitMonotonic::observe_commit(raft::NodeId node, std::uint64_t incarnation, raft::Index commit) {
  auto [it, inserted] = last_.emplace(node, std::make_pair(incarnation, commit));
  if (inserted) return std::nullopt;
  auto& [last_incarnation, last_commit] = it->second;
  if (last_incarnation == incarnation && commit < last_commit) {
    return violation(invariant::kCommitMonotonic,
                     fmt::format("n{} commit index went back from {} to {}", node, last_commit, commit));
  }
  last_incarnation = incarnation;
  last_commit = commit;
  return std::nullopt;
}

Verdict CommitCurrentTerm::observe(raft::NodeId node, std::uint64_t incarnation, raft::Role role,
                                   raft::Term term, raft::Index commit,
                                   std::optional<raft::Term> commit_term) {
  const Seen now{incarnation, role, term, commit};
  auto [it, inserted] = last_.emplace(node, now);
  if (inserted) return std::nullopt;
  const Seen before = it->second;
  it->second = now;
  // Only a leader's own advances count: a follower learns commit from its leader, and a new
  // leader starts from whatever commit it had.
  const bool same_leadership = before.incarnation == incarnation && before.role == raft::Role::Leader &&
                               role == raft::Role::Leader && before.term == term;
  if (!same_leadership || commit <= before.commit || commit_term == term) return std::nullopt;
  return violation(invariant::kCommitCurrentTerm,
                   fmt::format("leader n{} of term {} advanced its commit index from {} to {}, an "
                               "entry of term {}",
                               node, term, before.commit, commit,
                               commit_term ? std::to_string(*commit_term) : std::string("?")));
}

Verdict AckedDurability::observe_ack(raft::NodeId node, raft::Index index, EntryDigest entry,
                                     std::string_view command) {
  auto [it, inserted] = acked_.emplace(index, Ack{node, entry, std::string(command)});
  if (inserted || it->second.entry == entry) return std::nullopt;
  return violation(invariant::kAckedDurability,
                   fmt::format("index {} acknowledged twice with different commands: '{}' by n{} "
                               "and '{}' by n{}",
                               index, it->second.command, it->second.node, command, node));
}

Verdict AckedDurability::observe_applied(raft::NodeId node, raft::Index index, EntryDigest entry) const {
  auto it = acked_.find(index);
  if (it == acked_.end() || it->second.entry == entry) return std::nullopt;
  return violation(invariant::kAckedDurability,
                   fmt::format("acknowledged command '{}' at index {} (acked by n{}) was replaced "
                               "on n{} by {}",
                               it->second.command, index, it->second.node, node, show(entry)));
}

Verdict AckedDurability::check_final(const std::vector<std::pair<raft::NodeId, raft::Index>>& applied) const {
  if (acked_.empty()) return std::nullopt;
  const auto& [index, ack] = *acked_.rbegin();
  for (const auto& [node, applied_index] : applied) {
    if (applied_index < index) {
      return violation(invariant::kAckedDurability,
                       fmt::format("n{} ended at applied index {}, before acknowledged command "
                                   "'{}' at index {}",
                                   node, applied_index, ack.command, index));
    }
  }
  return std::nullopt;
}

Verdict check_read(raft::NodeId node, std::uint64_t request_id, raft::Index read_index,
                   raft::Index acked_max_at_request) {
  if (read_index >= acked_max_at_request) return std::nullopt;
  return violation(invariant::kLinearizableRead,
                   fmt::format("n{} served read {} at index {}, but index {} was acknowledged "
                               "before the read was asked",
                               node, request_id, read_index, acked_max_at_request));
}

Verdict check_core(raft::NodeId node, const std::vector<std::string>& problems) {
  if (problems.empty()) return std::nullopt;
  std::string message = fmt::format("n{}:", node);
  for (const std::string& p : problems) message += " " + p + ";";
  message.pop_back();
  return violation(invariant::kCoreInvariants, std::move(message));
}

void Liveness::observe_ack(Micros proposed_at, Micros acked_at) {
  if (!healed_at_ || proposed_at < *healed_at_ || first_ack_after_heal_) return;
  first_ack_after_heal_ = acked_at;
}

Verdict Liveness::check_progress(Micros now) const {
  if (!healed_at_ || now < *healed_at_ + commit_deadline_us_) return std::nullopt;
  if (first_ack_after_heal_ && *first_ack_after_heal_ <= *healed_at_ + commit_deadline_us_) {
    return std::nullopt;
  }
  return violation(invariant::kLiveness,
                   fmt::format("no proposal made after the heal at {} committed within {} s",
                               format_time(*healed_at_), commit_deadline_us_ / kMicrosPerSecond));
}

Verdict Liveness::check_converged(const std::vector<ReplicaSummary>& replicas) {
  if (replicas.empty()) return std::nullopt;
  const ReplicaSummary& first = replicas.front();
  for (const ReplicaSummary& r : replicas) {
    if (!r.up) return violation(invariant::kLiveness, fmt::format("n{} is not up at the end", r.node));
    if (r.applied != r.commit || r.commit != first.commit || !(r.state == first.state)) {
      return violation(invariant::kLiveness,
                       fmt::format("replicas did not converge: n{} commit {} applied {} state [{}] "
                                   "vs n{} commit {} applied {} state [{}]",
                                   first.node, first.commit, first.applied, show(first.state),
                                   r.node, r.commit, r.applied, show(r.state)));
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Fencing

Verdict FencingMonotonic::observe_accepted(std::string_view resource, Holder holder) {
  auto it = highest_.find(resource);
  if (it == highest_.end()) {
    highest_.emplace(std::string(resource), holder);
    return std::nullopt;
  }
  if (holder.token < it->second.token) {
    return violation(invariant::kFencingMonotonic,
                     fmt::format("{} accepted token {} from client {} after token {} from client {}", resource,
                                 holder.token, holder.client, it->second.token, it->second.client));
  }
  it->second = holder;
  return std::nullopt;
}

Verdict MutualExclusion::observe_accepted(std::string_view resource, Holder holder, Micros at) {
  auto it = resources_.find(resource);
  if (it == resources_.end()) {
    resources_.emplace(std::string(resource), Resource{holder, {}});
    return std::nullopt;
  }
  Resource& r = it->second;
  if (holder == r.current) return std::nullopt;
  if (auto done = r.finished.find(holder); done != r.finished.end()) {
    return violation(invariant::kMutualExclusion,
                     fmt::format("{} accepted a write of client {} (token {}) at {}, after client {} (token {}) "
                                 "had taken over there at {} (and client {}, token {}, wrote last): two "
                                 "holders' writes interleave",
                                 resource, holder.client, holder.token, format_time(at), done->second.by.client,
                                 done->second.by.token, format_time(done->second.at), r.current.client,
                                 r.current.token));
  }
  r.finished[r.current] = Resource::Succeeded{holder, at};
  r.current = holder;
  return std::nullopt;
}

}  // namespace coord::sim
