#include "storage/wal_replay.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "storage/log_store_error.h"

namespace coord::storage {

namespace {

constexpr std::uint64_t sector_bytes = 512;

bool all_zero(std::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; });
}

// Whether the record at `offset` with `extent` bytes overlaps a 512-byte sector that holds only
// zeros from where the record starts in it (or from the sector's start) to the sector's end: a
// sector the write never landed in (the preallocated zeros, or the old bytes up to where the
// write began). The sector's bytes past the record's claimed end count too: a record that
// merely ends in zero bytes (a hard state's high bytes) a few bytes into a sector whose rest
// holds the next record has no such sector.
bool has_zero_sector(std::string_view segment, std::uint64_t offset, std::uint64_t extent) {
  const std::uint64_t end = offset + extent;
  for (std::uint64_t sector = offset / sector_bytes * sector_bytes; sector < end; sector += sector_bytes) {
    const std::uint64_t lo = std::max(sector, offset);
    const std::uint64_t hi = std::min<std::uint64_t>(sector + sector_bytes, segment.size());
    if (all_zero(segment.substr(lo, hi - lo))) return true;
  }
  return false;
}

// One past the last non-zero byte of `bytes` in [from, until), or 0 when they are all zero. The
// last segment's tail is most of a preallocated segment, read at every open: `until` stops at
// the file's last data extent (WalSegment::data_end: the rest reads as zeros without being
// read), and what is left is read forward, a block at a time with word-wide compares.
std::uint64_t dirty_end(std::string_view bytes, std::uint64_t from, std::uint64_t until) {
  constexpr std::size_t block = 64 << 10;
  const std::uint64_t end = std::min<std::uint64_t>(bytes.size(), until);
  std::uint64_t dirty = 0;
  for (std::uint64_t at = from; at < end; at += block) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(block, end - at));
    const char* p = bytes.data() + at;
    std::uint64_t any = 0;
    std::size_t i = 0;
    for (; i + sizeof(std::uint64_t) <= n; i += sizeof(std::uint64_t)) {
      std::uint64_t word;
      std::memcpy(&word, p + i, sizeof word);
      any |= word;
    }
    for (; i < n; ++i) any |= static_cast<unsigned char>(p[i]);
    if (any == 0) continue;
    for (std::size_t j = n; j > 0; --j) {
      if (p[j - 1] != 0) {
        dirty = at + j;
        break;
      }
    }
  }
  return dirty;
}

[[noreturn]] void corrupt(const std::string& path, std::uint64_t offset, const std::string& problem) {
  throw LogStoreError(LogStoreError::Kind::Corrupt, 0,
                      fmt::format("{}: corrupt: record at offset {}: {}", path, offset, problem));
}

}  // namespace

void WalReplay::segment(std::uint64_t seq, std::string_view bytes, bool last, const std::string& path,
                        std::uint64_t data_end) {
  // Segments before the first one were dropped (a store starts at segment 1): the records may
  // refer to entries that were in them.
  if (next_seq_ == 0) start_anywhere_ = seq > 1;
  if (next_seq_ != 0 && seq != next_seq_) {
    throw LogStoreError(LogStoreError::Kind::Corrupt, 0,
                        fmt::format("{}: corrupt: segment {} follows segment {}: one is missing", path, seq,
                                    next_seq_ - 1));
  }
  next_seq_ = seq + 1;
  // The records of one write, applied once its last record is seen: a write is all or nothing.
  struct Pending {
    std::uint64_t offset;
    std::uint64_t size;
    WalRecordType type;
    std::string_view payload;
  };
  std::vector<Pending> group;
  std::uint64_t offset = 0;
  std::uint64_t group_start = 0;
  bool stopped_at_bad = false;
  while (offset < bytes.size()) {
    const WalFrame frame = parse_wal_record(bytes.substr(offset), seq, offset);
    if (frame.status == WalFrame::Status::End) break;
    if (frame.status == WalFrame::Status::Bad) {
      if (last && has_zero_sector(bytes, offset, frame.extent)) {
        // A torn write is the last write: one that starts after this record was made after it,
        // so this record was written whole, synced and acknowledged, and has been damaged since.
        if (const auto later = find_wal_write_start(bytes, seq, offset, data_end)) {
          corrupt(path, offset, fmt::format("{}, and a later write starts at offset {}", frame.problem, *later));
        }
        torn_ = fmt::format("{}: a torn write at offset {} ({}) ends the log", path, offset, frame.problem);
        stopped_at_bad = true;
        break;
      }
      corrupt(path, offset, frame.problem);
    }
    const std::uint64_t size = wal_record_bytes(frame.payload.size());
    if (group.empty()) group_start = offset;
    group.push_back({offset, size, frame.type, frame.payload});
    offset += size;
    if (frame.continued) continue;
    for (const Pending& p : group) {
      const std::string problem = apply(seq, p.offset, p.size, p.type, p.payload, p.offset == 0);
      if (!problem.empty()) corrupt(path, p.offset, problem);
    }
    group.clear();
  }
  const std::uint64_t stopped_at = offset;
  if (!group.empty()) {
    // The write's last record is missing: torn in the last segment (it never completed, so it
    // was never acknowledged, and its first records go too), damage anywhere else.
    if (!last) corrupt(path, group_start, "a write whose last record is missing");
    if (torn_.empty()) {
      torn_ = fmt::format("{}: a torn write at offset {} (its last record is missing) ends the log", path, group_start);
    }
    offset = group_start;
  }
  if (offset > 0) headed_seq_ = seq;
  if (last) {
    end_ = offset;
    dirty_until_ = dirty_end(bytes, offset, data_end);
    // The records ended at a zero length with bytes after it: the rest of a torn write, unless a
    // later write starts there (a zeroed length hiding acknowledged writes). Bad records were
    // searched after already; a clean end (only zeros after it) costs no search.
    if (dirty_until_ != 0 && !stopped_at_bad) {
      if (const auto later = find_wal_write_start(bytes, seq, stopped_at, data_end)) {
        corrupt(path, stopped_at,
                fmt::format("a zero length ends the records here, but a later write starts at offset {}", *later));
      }
    }
  } else if (const std::uint64_t dirty = dirty_end(bytes, offset, data_end); dirty != 0) {
    // A record whose length was zeroed would hide every record after it: only the last segment
    // may end in anything but zeros (a torn write).
    corrupt(path, offset, fmt::format("the records end here but bytes up to {} are not zero", dirty));
  }
}

std::string WalReplay::apply(std::uint64_t seq, std::uint64_t offset, std::uint64_t bytes, WalRecordType type,
                             std::string_view payload, bool segment_head) {
  std::string problem;
  const bool first_record = !started_;
  started_ = true;
  if (segment_head != (type == WalRecordType::SnapshotHead)) {
    return segment_head ? "a segment does not begin with its head record" : "a head record inside a segment";
  }
  switch (type) {
    case WalRecordType::Entries: {
      auto entries = decode_wal_entries(payload, /*with_data=*/false, &problem);
      if (!entries) return problem;
      const auto summary = summarize_wal_entries(payload);
      const raft::Index before = entries->front().index - 1;
      const bool before_dropped = before != shape_.snapshot.meta.index &&
                                  (shape_.last == 0 ? before > shape_.snapshot.meta.index : before < shape_.first);
      if (start_anywhere_ && before_dropped) {
        // Entries following one that was in a dropped segment (a replay from a later segment,
        // whose head may name an older snapshot than a record further on): they start the
        // replayed log. Only their own order is checked here, their place after the snapshot
        // by check_shape at the end.
        for (std::size_t i = 1; i < entries->size(); ++i) {
          if ((*entries)[i].term < (*entries)[i - 1].term) {
            return fmt::format("entry {} has a term below the one before it", (*entries)[i].index);
          }
        }
        if (entries->front().index <= shape_.snapshot.meta.index) {
          return fmt::format("entries at {} overwrite the snapshot at {}", entries->front().index,
                             shape_.snapshot.meta.index);
        }
        shape_.first = entries->front().index;
        shape_.last = entries->back().index;
        shape_.last_term = entries->back().term;
      } else if (auto broken = apply_entries(shape_, *entries, [&](raft::Index i) { return index_.term(i); })) {
        return *broken;
      }
      index_.append(WalChunk{seq, offset, bytes, 0, 0, 0, summary->data_bytes}, *entries);
      return "";
    }
    case WalRecordType::HardState: {
      auto hs = decode_hard_state(payload, &problem);
      if (!hs) return problem;
      if (auto broken = apply_hard_state(shape_, *hs)) return *broken;
      return "";
    }
    default:
      break;
  }
  auto record = decode_snapshot_record(payload, &problem);
  if (!record) return problem;
  const raft::SnapshotMeta& meta = record->meta;
  if (type == WalRecordType::SnapshotHead) {
    // Where the replay starts, the state it starts from; anywhere else, what it already is.
    if (first_record) {
      shape_.snapshot = *record;
    } else if (!(*record == shape_.snapshot)) {
      return fmt::format("the segment's head names the snapshot at {}, the log holds the one at {}", meta.index,
                         shape_.snapshot.meta.index);
    }
    return "";
  }
  if (type == WalRecordType::SnapshotReplace) {
    if (meta.index < shape_.snapshot.meta.index) {
      return fmt::format("snapshot at {} is older than the one at {}", meta.index, shape_.snapshot.meta.index);
    }
    shape_.snapshot = *record;
    shape_.first = shape_.last = 0;
    shape_.last_term = 0;
    index_.clear();
    start_anywhere_ = false;
    return "";
  }
  // SnapshotSave. Its entries may have been in the segments a prefix drop deleted.
  const bool dropped = start_anywhere_ && (shape_.last == 0 || meta.index < shape_.first);
  if (dropped && meta.index > shape_.snapshot.meta.index) {
    shape_.snapshot = *record;
    return "";
  }
  if (auto broken = apply_save_snapshot(shape_, *record, [&](raft::Index i) { return index_.term(i); })) {
    return *broken;
  }
  return "";
}

void WalReplay::finish(const std::string& directory) {
  if (auto broken = check_shape(shape_)) {
    throw LogStoreError(LogStoreError::Kind::Corrupt, 0,
                        fmt::format("log store {}: corrupt: the replayed log breaks a rule: {}", directory, *broken));
  }
}

}  // namespace coord::storage
