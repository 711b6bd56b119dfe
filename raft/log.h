// The Raft log of one node: a snapshot's (index, term) followed by the entries after it. The
// host keeps the durable copy and hands it back at restart. The core keeps the entries in memory
// except, when given a reader of the durable copy (Config::read_entries), the oldest ones that
// the host has persisted and the node has handed out to apply: those keep only their terms (one
// record per run of equal terms), and their data is read back when a lagging follower needs it.
// At 1,000,000 keys the log between two snapshots held 250 MB in memory; what a caught-up
// cluster needs is its last few batches. Also tracks which entries the host has been given to
// persist.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
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
  Index last_index() const { return memory_first_ + entries_.size() - 1; }
  Term last_term() const;
  Index snapshot_index() const { return snapshot_index_; }
  Term snapshot_term() const { return snapshot_term_; }

  // Term of entry i, or nullopt when i is compacted away (below the snapshot) or beyond the end.
  std::optional<Term> term(Index i) const;
  bool match_term(Index i, Term t) const;
  // memory_first() <= i <= last_index(): entries below memory_first() are read with slice().
  const Entry& at(Index i) const;

  // Raft's "at least as up-to-date" rule (§5.4.1).
  bool is_up_to_date(Index last_index, Term last_term) const;

  // Entries [lo, hi) with at most max_bytes of data, but always at least one entry (none only
  // when the reader failed to read dropped ones back).
  std::vector<Entry> slice(Index lo, Index hi, std::size_t max_bytes) const;

  // Reading dropped entries back (Config::read_entries).
  using Reader = std::function<std::vector<Entry>(Index lo, Index hi, std::size_t max_bytes)>;
  void set_reader(Reader reader) { reader_ = std::move(reader); }
  // Drops the data of the oldest entries up to `through` (which the caller guarantees are
  // durable and handed out) while the entries in memory hold more than `budget` bytes of data.
  // Needs a reader.
  void drop_data(Index through, std::size_t budget);
  // First entry whose data is in memory; first_index() when nothing was dropped.
  Index memory_first() const { return memory_first_; }
  std::size_t memory_bytes() const { return memory_bytes_; }

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

  std::size_t entry_count() const { return static_cast<std::size_t>(last_index() - snapshot_index_); }

 private:
  std::size_t offset(Index i) const { return static_cast<std::size_t>(i - memory_first_); }
  void truncate_from(Index index);
  // Term of a dropped entry: first_index() <= i < memory_first_.
  Term dropped_term(Index i) const;

  // Terms of the entries whose data was dropped, [first_index(), memory_first_): each run starts
  // at `first` and lasts until the next run's first (or memory_first_). The first run may start
  // below first_index() after a compaction.
  struct TermRun {
    Index first = 0;
    Term term = 0;
  };

  Index snapshot_index_ = 0;
  Term snapshot_term_ = 0;
  std::vector<TermRun> dropped_terms_;
  Index memory_first_ = 1;
  std::deque<Entry> entries_;  // from memory_first_ to the last index
  std::size_t memory_bytes_ = 0;  // data bytes in entries_
  Reader reader_;
  Index unstable_from_ = 1;
  Index persisted_ = 0;
};

}  // namespace coord::raft
