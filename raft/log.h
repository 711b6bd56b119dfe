// The in-memory Raft log of one node: a snapshot's (index, term) followed by the entries after
// it. The core keeps the whole uncompacted log in memory; the host keeps the durable copy and
// hands it back at restart. Also tracks which entries the host has been given to persist.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <vector>

#include "raft/types.h"

namespace coord::raft {

class RaftLog {
 public:
  RaftLog() = default;
  // Restores a log whose prefix up to `snapshot.index` is compacted; `entries` must follow it
  // contiguously. Everything given here is already durable.
  RaftLog(const SnapshotMeta& snapshot, std::vector<Entry> entries);

  Index first_index() const { return snapshot_index_ + 1; }
  Index last_index() const { return snapshot_index_ + entries_.size(); }
  Term last_term() const;
  Index snapshot_index() const { return snapshot_index_; }
  Term snapshot_term() const { return snapshot_term_; }

  // Term of entry i, or nullopt when i is compacted away (below the snapshot) or beyond the end.
  std::optional<Term> term(Index i) const;
  bool match_term(Index i, Term t) const;
  const Entry& at(Index i) const;  // first_index() <= i <= last_index()

  // Raft's "at least as up-to-date" rule (§5.4.1).
  bool is_up_to_date(Index last_index, Term last_term) const;

  // Entries [lo, hi) with at most max_bytes of data, but always at least one entry.
  std::vector<Entry> slice(Index lo, Index hi, std::size_t max_bytes) const;

  // Leader side: appends entries with consecutive indices after last_index().
  void append(std::vector<Entry> entries);
  // Follower side: merges entries that follow `prev`, truncating a conflicting suffix. Returns the
  // index of the first entry that was written (0 if all were already present).
  Index merge(const std::vector<Entry>& entries);
  // Largest index <= i whose term is <= t (the fast back-off search of the conflict hint).
  Index find_conflict_by_term(Index i, Term t) const;

  // Drops entries up to and including `index`, which becomes the snapshot point.
  void compact(Index index);
  // Replaces everything with an empty log that starts after `snapshot`.
  void restore(const SnapshotMeta& snapshot);

  // Persistence bookkeeping. Entries from unstable_from() on have not been handed to the host.
  Index unstable_from() const { return unstable_from_; }
  void mark_handed_out() { unstable_from_ = last_index() + 1; }
  // Entries up to `index` with term `term` are durable (ignored when truncated since).
  void mark_persisted(Index index, Term term);
  Index persisted() const { return persisted_; }

  std::size_t entry_count() const { return entries_.size(); }

 private:
  std::size_t offset(Index i) const { return static_cast<std::size_t>(i - snapshot_index_ - 1); }
  void truncate_from(Index index);

  Index snapshot_index_ = 0;
  Term snapshot_term_ = 0;
  std::deque<Entry> entries_;
  Index unstable_from_ = 1;
  Index persisted_ = 0;
};

}  // namespace coord::raft
