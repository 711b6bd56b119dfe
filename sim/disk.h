// A node's simulated durable storage: hard state, the latest snapshot and the log after it.
// Writes land in a page cache first (`written`) and become durable only when an fsync issued
// after them completes. A crash keeps the durable state plus possibly a prefix of the unsynced
// batches (a journal keeps the order of its records and discards a torn tail), never more.
// A batch is atomic: a record either survives whole or not at all.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "raft/types.h"
#include "sim/rng.h"
#include "sim/time.h"

namespace coord::sim {

struct StoredLog {
  raft::HardState hard_state;
  raft::SnapshotMeta snapshot;
  raft::SnapshotDataPtr snapshot_data;
  // Contiguous. Between saving a snapshot and dropping the prefix it covers, the first entries
  // may be at or below snapshot.index; readers skip those.
  std::deque<raft::Entry> entries;

  raft::Index last_index() const;
  std::optional<raft::Term> term(raft::Index index) const;
  // The entries a restarting node gets back: those after the snapshot.
  std::vector<raft::Entry> entries_after_snapshot() const;
  // Entries [lo, hi) by raft::RaftLog::slice's rule (the core's Config::read_entries); empty
  // when lo is not stored.
  std::vector<raft::Entry> read(raft::Index lo, raft::Index hi, std::size_t max_bytes) const;
};

// Ready.snapshot: the log restarts after the snapshot's index.
struct ReplaceWithSnapshot {
  raft::SnapshotMeta meta;
  raft::SnapshotDataPtr data;
};
// The host's own snapshot of its state machine; the log stays until DropPrefix.
struct SaveSnapshot {
  raft::SnapshotMeta meta;
  raft::SnapshotDataPtr data;
};
// Ready.entries: overwrites the stored suffix from entries[0].index on.
struct AppendEntries {
  std::vector<raft::Entry> entries;
};
struct SetHardState {
  raft::HardState hard_state;
};
// Drops entries up to and including `through`; allowed only once a snapshot covers them.
struct DropPrefix {
  raft::Index through = 0;
};

using WriteOp = std::variant<ReplaceWithSnapshot, SaveSnapshot, AppendEntries, SetHardState, DropPrefix>;
using WriteBatch = std::vector<WriteOp>;

// Appends one op, built in place (a temporary variant trips GCC 12's -Wmaybe-uninitialized).
template <typename Op>
void add(WriteBatch& batch, Op op) {
  batch.emplace_back(std::in_place_type<Op>, std::move(op));
}

// Applies one batch; on a broken rule (a gap in the log, overwriting a compacted entry, dropping
// a prefix no snapshot covers) returns what was wrong and leaves `log` partly modified.
std::optional<std::string> apply_batch(StoredLog& log, const WriteBatch& batch);

struct DiskParams {
  Micros fsync_us_min = 100;
  Micros fsync_us_max = 3'000;

  bool operator==(const DiskParams&) const = default;
};

class Disk {
 public:
  Disk(StoredLog initial, Rng rng);

  enum class WriteStatus : std::uint8_t { Ok, IoError, Invalid };
  // IoError when the disk is failing (the host must crash, fail-stop); Invalid when the batch
  // breaks a storage rule (`problem` says which): a host or core bug.
  WriteStatus write(WriteBatch batch, std::string* problem);
  // Sequence number of the last batch written; an fsync issued now covers it.
  std::uint64_t written_seq() const { return next_seq_ - 1; }
  // How long an fsync issued now takes.
  Micros fsync_latency();
  // An fsync covering batches up to `seq` completed.
  void sync_through(std::uint64_t seq);
  // Power loss: unsynced batches are lost, except (sometimes) a random prefix of them.
  // Returns how many batches were lost.
  std::size_t crash(Rng& rng);

  const StoredLog& durable() const { return durable_; }
  const StoredLog& written() const { return written_; }
  std::size_t unsynced_batches() const { return unsynced_.size(); }

  bool failing() const { return failing_; }
  void set_failing(bool failing) { failing_ = failing; }
  const DiskParams& params() const { return params_; }
  void set_params(const DiskParams& params) { params_ = params; }

 private:
  struct Pending {
    std::uint64_t seq;
    WriteBatch batch;
  };

  StoredLog durable_;
  StoredLog written_;
  std::deque<Pending> unsynced_;
  std::uint64_t next_seq_ = 1;
  bool failing_ = false;
  DiskParams params_;
  Rng rng_;
};

}  // namespace coord::sim
