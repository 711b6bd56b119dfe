#include "raft/log.h"

#include <algorithm>
#include <utility>

#include "raft/assert.h"

namespace coord::raft {

namespace {

// Batches arrive from the network or from the host's disk; a gap or reordering inside one would
// silently shift every later index, so check before it reaches the log.
void assert_contiguous(const std::vector<Entry>& entries) {
  for (std::size_t k = 1; k < entries.size(); ++k) {
    COORD_ASSERT(entries[k].index == entries[k - 1].index + 1, "entry indices not contiguous");
    COORD_ASSERT(entries[k].term >= entries[k - 1].term, "entry terms decrease");
  }
}

}  // namespace

RaftLog::RaftLog(const SnapshotMeta& snapshot, std::vector<Entry> entries)
    : snapshot_index_(snapshot.index), snapshot_term_(snapshot.term), memory_first_(snapshot.index + 1) {
  assert_contiguous(entries);
  COORD_ASSERT(entries.empty() || entries.front().index == snapshot_index_ + 1,
               "restored entries must follow the snapshot");
  COORD_ASSERT(entries.empty() || entries.front().term >= snapshot_term_,
               "restored entry term below snapshot term");
  entries_.assign(std::make_move_iterator(entries.begin()), std::make_move_iterator(entries.end()));
  for (const Entry& e : entries_) memory_bytes_ += e.data.size();
  // Everything handed back at restart is already on disk.
  unstable_from_ = last_index() + 1;
  persisted_ = last_index();
}

Term RaftLog::last_term() const {
  if (!entries_.empty()) return entries_.back().term;
  return last_index() > snapshot_index_ ? dropped_term(last_index()) : snapshot_term_;
}

std::optional<Term> RaftLog::term(Index i) const {
  if (i == snapshot_index_) return snapshot_term_;
  if (i < snapshot_index_ || i > last_index()) return std::nullopt;
  if (i < memory_first_) return dropped_term(i);
  return entries_[offset(i)].term;
}

Term RaftLog::dropped_term(Index i) const {
  // The last run starting at or below i.
  auto it = std::upper_bound(dropped_terms_.begin(), dropped_terms_.end(), i,
                             [](Index index, const TermRun& run) { return index < run.first; });
  COORD_ASSERT(it != dropped_terms_.begin(), "no term recorded for a dropped entry");
  return std::prev(it)->term;
}

bool RaftLog::match_term(Index i, Term t) const {
  const std::optional<Term> ours = term(i);
  return ours.has_value() && *ours == t;
}

const Entry& RaftLog::at(Index i) const {
  COORD_ASSERT(i >= first_index() && i <= last_index(), "RaftLog::at out of range");
  COORD_ASSERT(i >= memory_first_, "RaftLog::at of an entry whose data was dropped (use slice)");
  return entries_[offset(i)];
}

bool RaftLog::is_up_to_date(Index last_index, Term last_term) const {
  const Term our_term = this->last_term();
  return last_term > our_term || (last_term == our_term && last_index >= this->last_index());
}

std::vector<Entry> RaftLog::slice(Index lo, Index hi, std::size_t max_bytes) const {
  COORD_ASSERT(lo >= first_index(), "slice below the snapshot");
  hi = std::min(hi, last_index() + 1);
  std::vector<Entry> out;
  std::size_t bytes = 0;
  if (lo < memory_first_ && lo < hi) {
    COORD_ASSERT(reader_ != nullptr, "entries were dropped without a reader");
    const Index read_hi = std::min(hi, memory_first_);
    out = reader_(lo, read_hi, max_bytes);
    if (out.empty()) return out;  // the host could not read them: it fails, nothing is sent
    // What comes back must be what was written: a host bug would otherwise reach a follower.
    COORD_ASSERT(out.size() <= read_hi - lo, "the reader returned more entries than asked for");
    for (std::size_t k = 0; k < out.size(); ++k) {
      COORD_ASSERT(out[k].index == lo + k, "the reader returned entries out of order");
      COORD_ASSERT(out[k].term == dropped_term(out[k].index), "the reader returned an entry of another term");
      bytes += out[k].data.size();
    }
    // Stopped by the byte limit before the entries in memory: so does this slice.
    if (out.back().index + 1 < read_hi) return out;
  }
  for (Index i = std::max(lo, memory_first_); i < hi; ++i) {
    const Entry& e = entries_[offset(i)];
    bytes += e.data.size();
    // At least one entry, or a single oversized entry could never be replicated.
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

void RaftLog::append(std::vector<Entry> entries) {
  if (entries.empty()) return;
  assert_contiguous(entries);
  COORD_ASSERT(entries.front().index == last_index() + 1, "append must follow the last entry");
  COORD_ASSERT(entries.front().term >= last_term(), "append with a term below the last term");
  for (Entry& e : entries) {
    memory_bytes_ += e.data.size();
    entries_.push_back(std::move(e));
  }
}

Index RaftLog::merge(const std::vector<Entry>& entries) {
  assert_contiguous(entries);
  // The first entry we do not already hold. Entries at or below the snapshot are committed and
  // therefore identical to ours, so they can never conflict.
  auto first_new = std::find_if(entries.begin(), entries.end(), [this](const Entry& e) {
    return e.index > snapshot_index_ && !match_term(e.index, e.term);
  });
  if (first_new == entries.end()) return 0;
  const Index from = first_new->index;
  COORD_ASSERT(from <= last_index() + 1, "merge would leave a gap in the log");
  if (from <= last_index()) truncate_from(from);
  for (auto it = first_new; it != entries.end(); ++it) {
    memory_bytes_ += it->data.size();
    entries_.push_back(*it);
  }
  return from;
}

Index RaftLog::find_conflict_by_term(Index i, Term t) const {
  i = std::min(i, last_index());
  while (i > snapshot_index_) {
    const std::optional<Term> ours = term(i);
    if (!ours.has_value() || *ours <= t) return i;
    --i;
  }
  return i;
}

void RaftLog::compact(Index index) {
  COORD_ASSERT(index >= snapshot_index_, "compact below the current snapshot");
  COORD_ASSERT(index <= last_index(), "compact beyond the last entry");
  // The snapshot replaces the entries, so they must be durable first or a crash loses them.
  COORD_ASSERT(index <= persisted_, "compact beyond the persisted entries");
  if (index == snapshot_index_) return;
  const Term t = *term(index);
  if (index >= memory_first_) {
    for (Index i = memory_first_; i <= index; ++i) {
      memory_bytes_ -= entries_.front().data.size();
      entries_.pop_front();
    }
    memory_first_ = index + 1;
    dropped_terms_.clear();
  } else {
    // Runs wholly below the new first index go; the one holding it stays (its start below).
    auto keep = std::upper_bound(dropped_terms_.begin(), dropped_terms_.end(), index + 1,
                                 [](Index i, const TermRun& run) { return i < run.first; });
    dropped_terms_.erase(dropped_terms_.begin(), std::prev(keep));
  }
  snapshot_index_ = index;
  snapshot_term_ = t;
  unstable_from_ = std::max(unstable_from_, index + 1);
}

void RaftLog::restore(const SnapshotMeta& snapshot) {
  entries_.clear();
  dropped_terms_.clear();
  memory_first_ = snapshot.index + 1;
  memory_bytes_ = 0;
  snapshot_index_ = snapshot.index;
  snapshot_term_ = snapshot.term;
  unstable_from_ = snapshot.index + 1;
  // The host persists the snapshot in the same Ready, and nothing acknowledging it leaves before
  // that, so counting it as persisted now is safe.
  persisted_ = snapshot.index;
}

void RaftLog::mark_persisted(Index index, Term term) {
  // A stale acknowledgement for a suffix we truncated since has a different term (or is past the
  // end) and must not mark the replacement entries durable.
  if (index <= persisted_ || index > last_index() || !match_term(index, term)) return;
  persisted_ = index;
}

void RaftLog::truncate_from(Index index) {
  COORD_ASSERT(index > snapshot_index_, "truncating into the snapshot");
  COORD_ASSERT(index <= last_index() + 1, "truncating beyond the end");
  // Only entries handed out to apply are dropped, and those are committed: never in conflict.
  COORD_ASSERT(index >= memory_first_, "truncating entries whose data was dropped");
  for (auto it = entries_.begin() + static_cast<std::ptrdiff_t>(offset(index)); it != entries_.end(); ++it) {
    memory_bytes_ -= it->data.size();
  }
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(offset(index)), entries_.end());
  unstable_from_ = std::min(unstable_from_, index);
  persisted_ = std::min(persisted_, index - 1);
}

void RaftLog::drop_data(Index through, std::size_t budget) {
  COORD_ASSERT(reader_ != nullptr, "dropping entry data without a reader");
  COORD_ASSERT(through <= persisted_, "dropping entries that are not durable");
  while (!entries_.empty() && memory_first_ <= through && memory_bytes_ > budget) {
    Entry& e = entries_.front();
    if (dropped_terms_.empty() || dropped_terms_.back().term != e.term) dropped_terms_.push_back({e.index, e.term});
    memory_bytes_ -= e.data.size();
    entries_.pop_front();
    ++memory_first_;
  }
}

}  // namespace coord::raft
