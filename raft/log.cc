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
    : snapshot_index_(snapshot.index), snapshot_term_(snapshot.term) {
  assert_contiguous(entries);
  COORD_ASSERT(entries.empty() || entries.front().index == snapshot_index_ + 1,
               "restored entries must follow the snapshot");
  COORD_ASSERT(entries.empty() || entries.front().term >= snapshot_term_,
               "restored entry term below snapshot term");
  entries_.assign(std::make_move_iterator(entries.begin()), std::make_move_iterator(entries.end()));
  // Everything handed back at restart is already on disk.
  unstable_from_ = last_index() + 1;
  persisted_ = last_index();
}

Term RaftLog::last_term() const {
  return entries_.empty() ? snapshot_term_ : entries_.back().term;
}

std::optional<Term> RaftLog::term(Index i) const {
  if (i == snapshot_index_) return snapshot_term_;
  if (i < snapshot_index_ || i > last_index()) return std::nullopt;
  return entries_[offset(i)].term;
}

bool RaftLog::match_term(Index i, Term t) const {
  const std::optional<Term> ours = term(i);
  return ours.has_value() && *ours == t;
}

const Entry& RaftLog::at(Index i) const {
  COORD_ASSERT(i >= first_index() && i <= last_index(), "RaftLog::at out of range");
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
  for (Index i = lo; i < hi; ++i) {
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
  for (Entry& e : entries) entries_.push_back(std::move(e));
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
  for (auto it = first_new; it != entries.end(); ++it) entries_.push_back(*it);
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
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(offset(index) + 1));
  snapshot_index_ = index;
  snapshot_term_ = t;
  unstable_from_ = std::max(unstable_from_, index + 1);
}

void RaftLog::restore(const SnapshotMeta& snapshot) {
  entries_.clear();
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
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(offset(index)), entries_.end());
  unstable_from_ = std::min(unstable_from_, index);
  persisted_ = std::min(persisted_, index - 1);
}

}  // namespace coord::raft
