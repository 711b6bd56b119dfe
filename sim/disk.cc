#include "sim/disk.h"

#include <fmt/format.h>

#include <utility>

namespace coord::sim {

raft::Index StoredLog::last_index() const {
  if (entries.empty() || entries.back().index < snapshot.index) return snapshot.index;
  return entries.back().index;
}

std::optional<raft::Term> StoredLog::term(raft::Index index) const {
  if (index == snapshot.index) return snapshot.term;
  if (entries.empty() || index < entries.front().index || index > entries.back().index) {
    return std::nullopt;
  }
  return entries[static_cast<std::size_t>(index - entries.front().index)].term;
}

std::vector<raft::Entry> StoredLog::entries_after_snapshot() const {
  std::vector<raft::Entry> out;
  for (const raft::Entry& e : entries) {
    if (e.index > snapshot.index) out.push_back(e);
  }
  return out;
}

std::vector<raft::Entry> StoredLog::read(raft::Index lo, raft::Index hi, std::size_t max_bytes) const {
  std::vector<raft::Entry> out;
  if (entries.empty() || lo < entries.front().index) return out;
  std::size_t bytes = 0;
  for (raft::Index i = lo; i < hi && i <= entries.back().index; ++i) {
    const raft::Entry& e = entries[static_cast<std::size_t>(i - entries.front().index)];
    bytes += e.data.size();
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

namespace {

using raft::Index;

std::optional<std::string> apply_op(StoredLog& log, const ReplaceWithSnapshot& op) {
  if (op.meta.index < log.snapshot.index) {
    return fmt::format("snapshot at {} older than the stored one at {}", op.meta.index,
                       log.snapshot.index);
  }
  log.snapshot = op.meta;
  log.snapshot_data = op.data;
  log.entries.clear();
  return std::nullopt;
}

std::optional<std::string> apply_op(StoredLog& log, const SaveSnapshot& op) {
  if (op.meta.index <= log.snapshot.index) {
    return fmt::format("host snapshot at {} not after the stored one at {}", op.meta.index,
                       log.snapshot.index);
  }
  auto term = log.term(op.meta.index);
  if (!term || *term != op.meta.term) {
    return fmt::format("host snapshot at {} term {} does not match the stored log", op.meta.index,
                       op.meta.term);
  }
  log.snapshot = op.meta;
  log.snapshot_data = op.data;
  return std::nullopt;
}

std::optional<std::string> apply_op(StoredLog& log, const AppendEntries& op) {
  if (op.entries.empty()) return std::nullopt;
  const Index first = op.entries.front().index;
  for (std::size_t i = 1; i < op.entries.size(); ++i) {
    if (op.entries[i].index != first + i) return fmt::format("entries to write are not contiguous at {}", first + i);
  }
  if (first <= log.snapshot.index) {
    return fmt::format("write at {} overwrites the snapshot at {}", first, log.snapshot.index);
  }
  if (first > log.last_index() + 1) {
    return fmt::format("write at {} leaves a gap after the stored last index {}", first,
                       log.last_index());
  }
  while (!log.entries.empty() && log.entries.back().index >= first) log.entries.pop_back();
  if (!log.entries.empty() && log.entries.back().index + 1 != first) {
    // Only entries at or below the snapshot were left: they are covered, drop them.
    log.entries.clear();
  }
  log.entries.insert(log.entries.end(), op.entries.begin(), op.entries.end());
  return std::nullopt;
}

std::optional<std::string> apply_op(StoredLog& log, const SetHardState& op) {
  log.hard_state = op.hard_state;
  return std::nullopt;
}

std::optional<std::string> apply_op(StoredLog& log, const DropPrefix& op) {
  if (op.through > log.snapshot.index) {
    return fmt::format("dropping the log through {} but the snapshot only covers {}", op.through,
                       log.snapshot.index);
  }
  while (!log.entries.empty() && log.entries.front().index <= op.through) log.entries.pop_front();
  return std::nullopt;
}

}  // namespace

std::optional<std::string> apply_batch(StoredLog& log, const WriteBatch& batch) {
  for (const WriteOp& op : batch) {
    auto problem = std::visit([&](const auto& o) { return apply_op(log, o); }, op);
    if (problem) return problem;
  }
  return std::nullopt;
}

Disk::Disk(StoredLog initial, Rng rng) : durable_(initial), written_(std::move(initial)), rng_(rng) {}

Disk::WriteStatus Disk::write(WriteBatch batch, std::string* problem) {
  if (failing_) return WriteStatus::IoError;
  if (auto p = apply_batch(written_, batch)) {
    if (problem) *problem = *p;
    return WriteStatus::Invalid;
  }
  unsynced_.push_back(Pending{next_seq_++, std::move(batch)});
  return WriteStatus::Ok;
}

Micros Disk::fsync_latency() { return rng_.between(params_.fsync_us_min, params_.fsync_us_max); }

void Disk::sync_through(std::uint64_t seq) {
  while (!unsynced_.empty() && unsynced_.front().seq <= seq) {
    // Already validated against `written_`, which went through the same sequence.
    (void)apply_batch(durable_, unsynced_.front().batch);
    unsynced_.pop_front();
  }
}

std::size_t Disk::crash(Rng& rng) {
  std::size_t keep = 0;
  if (!unsynced_.empty() && rng.one_in(2)) keep = static_cast<std::size_t>(rng.below(unsynced_.size() + 1));
  for (std::size_t i = 0; i < keep; ++i) (void)apply_batch(durable_, unsynced_[i].batch);
  const std::size_t lost = unsynced_.size() - keep;
  unsynced_.clear();
  written_ = durable_;
  return lost;
}

}  // namespace coord::sim
