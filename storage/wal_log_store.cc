#include "storage/wal_log_store.h"

#include <dirent.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "raft/assert.h"
#include "storage/wal_replay.h"

namespace coord::storage {

namespace {

using Kind = LogStoreError::Kind;

constexpr std::uint64_t allocation_unit = 4096;
// The smallest segment made when the disk has no room for a whole one (create_segment).
constexpr std::uint64_t small_segment_bytes = std::uint64_t{1} << 20;
constexpr std::size_t zero_piece_bytes = std::size_t{1} << 20;
// The write buffer is kept between writes up to this size (a usual batch is far smaller); the
// memory of a rare huge batch goes back after it.
constexpr std::size_t buffer_keep_bytes = std::size_t{4} << 20;
constexpr std::uint64_t read_window_bytes = std::uint64_t{1} << 20;

std::vector<std::uint64_t> segment_seqs(const std::string& directory) {
  DIR* dir = ::opendir(directory.c_str());
  if (dir == nullptr) {
    const int err = errno;
    throw LogStoreError(Kind::Io, err, fmt::format("log store {}: opendir: {}", directory, errno_text(err)));
  }
  std::vector<std::uint64_t> seqs;
  while (const dirent* e = ::readdir(dir)) {
    if (auto seq = parse_wal_segment_name(e->d_name)) seqs.push_back(*seq);
  }
  ::closedir(dir);
  std::sort(seqs.begin(), seqs.end());
  return seqs;
}

}  // namespace

std::unique_ptr<WalLogStore> WalLogStore::open(const std::string& directory, const WalLogStoreOptions& options) {
  std::unique_ptr<WalLogStore> store(new WalLogStore());
  store->directory_ = directory;
  store->segment_bytes_ = std::max<std::uint64_t>(options.segment_bytes, allocation_unit);
  store->owner_lock_fd_ = lock_log_directory(directory);  // on a throw the destructor releases it
  store->open_segments();
  return store;
}

WalLogStore::~WalLogStore() {
  if (owner_lock_fd_ >= 0) ::close(owner_lock_fd_);  // releases the flock
}

void WalLogStore::open_segments() {
  const std::vector<std::uint64_t> seqs = segment_seqs(directory_);
  if (seqs.empty()) {
    segments_.push_back(create_segment(1, 0));
    sync_directory(directory_);
  } else {
    WalReplay replay;
    for (std::size_t i = 0; i < seqs.size(); ++i) {
      auto segment = WalSegment::open(directory_, seqs[i]);
      const WalSegmentMap map(*segment);  // unmapped after its replay: memory keeps the index only
      replay.segment(seqs[i], map.bytes(), i + 1 == seqs.size(), segment->path(), segment->data_end());
      segments_.push_back(std::move(segment));
    }
    replay.finish(directory_);
    shape_ = replay.shape();
    index_ = std::move(replay.index());
    end_ = replay.end();
    headed_seq_ = replay.headed_seq();
    torn_tail_ = replay.torn();
    // The remains of a torn write go before anything is appended: a record of them could
    // otherwise check again after the next write ends just before it.
    if (replay.dirty_until() > end_) {
      const std::string zeros(zero_piece_bytes, '\0');
      for (std::uint64_t at = end_; at < replay.dirty_until(); at += zeros.size()) {
        const std::uint64_t n = std::min<std::uint64_t>(zeros.size(), replay.dirty_until() - at);
        segments_.back()->write(std::string_view(zeros).substr(0, n), at);
      }
    }
    // What was replayed may be in the page cache only: a kill -9 between a write's pwrite and
    // its fdatasync leaves it there, and this process may act on it at once (a vote granted
    // again from its hard state, its entries acknowledged to a leader). Made durable now, the
    // last segment (the only one a write can be unsynced in: rotation follows a synced write)
    // and the directory (a segment created just before the kill), before anything relies on
    // them; otherwise a power loss could take it back, or tear it in what is by then a
    // non-last segment, which would not open (found in review).
    segments_.back()->sync();
    sync_directory(directory_);
    ++commits_;
  }
  const SnapshotRecord& snapshot = shape_.snapshot;
  if (snapshot.has_data && snapshot.file.empty()) {
    throw LogStoreError(Kind::Corrupt, 0,
                        fmt::format("log store {}: corrupt: the snapshot at {} has data but names no file", directory_,
                                    snapshot.meta.index));
  }
  if (!snapshot.file.empty()) {
    snapshot_file_ = SnapshotFile::open(directory_, SnapshotFileInfo{snapshot.file, snapshot.data_bytes, snapshot.data_crc});
  }
  remove_snapshot_files_except(directory_, snapshot.file);
}

void WalLogStore::check_usable() const {
  if (failed_) {
    throw LogStoreError(Kind::Failed, 0,
                        fmt::format("log store {}: an earlier write failed; restart from a fresh open", directory_));
  }
}

std::optional<raft::Term> WalLogStore::stored_term(raft::Index index) const { return index_.term(index); }

std::shared_ptr<WalSegment> WalLogStore::create_segment(std::uint64_t seq, std::uint64_t bytes) const {
  // Preallocation is for speed (no block allocation at each write); a disk without room for a
  // whole segment still takes one just large enough for what must be written now, at least a
  // small one, so that a member on a nearly full (or small) disk keeps working until it is full.
  const std::uint64_t rounded = (bytes + allocation_unit - 1) / allocation_unit * allocation_unit;
  const std::uint64_t preferred = std::max(segment_bytes_, rounded);
  const std::uint64_t fallback = std::max(rounded, std::min(segment_bytes_, small_segment_bytes));
  try {
    return WalSegment::create(directory_, seq, preferred);
  } catch (const LogStoreError& e) {
    if (e.kind() != Kind::Full || preferred <= fallback) throw;
  }
  return WalSegment::create(directory_, seq, fallback);
}

void WalLogStore::rotate(std::uint64_t bytes) {
  auto segment = create_segment(segments_.back()->seq() + 1, bytes);
  {
    const std::lock_guard<std::mutex> lock(mu_);
    segments_.push_back(std::move(segment));
  }
  end_ = 0;
  // The new name durable before a record in it is acknowledged. A failure leaves a name this
  // process cannot vouch for: the store fails, as after a failed fdatasync.
  try {
    sync_directory(directory_);
  } catch (const LogStoreError&) {
    failed_ = true;
    throw;
  }
}

WalLogStore::Appended WalLogStore::append(const std::vector<Piece>& pieces) {
  auto piece_bytes = [](const Piece& p) {
    return p.entries != nullptr ? wal_entries_record_bytes(*p.entries) : wal_record_bytes(p.payload.size());
  };
  std::uint64_t bytes = 0;
  for (const Piece& p : pieces) {
    const std::uint64_t n = piece_bytes(p);
    // The length field is 32 bits; LMDB refuses an oversized transaction the same way.
    if (n - wal_header_bytes > std::numeric_limits<std::uint32_t>::max()) {
      throw LogStoreError(Kind::Full, 0, fmt::format("log store {}: a record of {} bytes is too large: write smaller batches",
                                                     directory_, n));
    }
    bytes += n;
  }
  // A segment begins with the state as it stands before this write, so that a replay may start
  // there (the records of this write follow it). Encoded only when a segment begins.
  std::string head_snapshot;
  std::string head_hard_state;
  if (end_ == 0 || end_ + bytes > segments_.back()->bytes()) {
    head_snapshot = encode_snapshot_record(shape_.snapshot);
    head_hard_state = encode_hard_state(shape_.hard_state);
    const std::uint64_t head_bytes = wal_record_bytes(head_snapshot.size()) + wal_record_bytes(head_hard_state.size());
    if (end_ + (end_ == 0 ? head_bytes : 0) + bytes > segments_.back()->bytes()) rotate(head_bytes + bytes);
  }

  const WalSegment& segment = *segments_.back();
  Appended at;
  at.seq = segment.seq();
  buffer_.clear();
  // Only the first record of the pwrite is marked as a write's start, the head's included: a
  // torn write must hold no record so marked after its first one (storage/wal_replay.h).
  if (end_ == 0) {  // a group of its own as far as the replay applies them
    append_wal_record(buffer_, at.seq, 0, WalRecordType::SnapshotHead, head_snapshot,
                      {.continued = true, .write_start = true});
    append_wal_record(buffer_, at.seq, buffer_.size(), WalRecordType::HardState, head_hard_state);
  }
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    const Piece& p = pieces[i];
    // The replay applies the pieces together or not at all.
    const WalRecordFlags flags{.continued = i + 1 < pieces.size(), .write_start = buffer_.empty()};
    const std::uint64_t offset = end_ + buffer_.size();
    if (p.entries != nullptr) {
      at.entries_offset = offset;
      append_wal_entries(buffer_, at.seq, offset, *p.entries, flags);
      at.entries_bytes = end_ + buffer_.size() - offset;
    } else {
      append_wal_record(buffer_, at.seq, offset, p.type, p.payload, flags);
    }
  }
  try {
    segment.write(buffer_, end_);
    segment.sync();
  } catch (const LogStoreError&) {
    // Part of the buffer may be on disk, or the kernel may have dropped pages after a failed
    // fdatasync: this process can no longer say what the log holds.
    failed_ = true;
    throw;
  }
  end_ += buffer_.size();
  headed_seq_ = at.seq;
  ++commits_;
  if (buffer_.capacity() > buffer_keep_bytes) std::string().swap(buffer_);  // one huge batch: let it go
  return at;
}

void WalLogStore::adopt_snapshot_file(std::shared_ptr<const SnapshotFile> file) {
  if (file) file->mark_recorded();
  snapshot_file_ = std::move(file);
  remove_replaced_snapshot_files(directory_, snapshot_file_ ? snapshot_file_->info().name : std::string(),
                                 shape_.snapshot.meta.index);
}

void WalLogStore::write(const raft::Ready& ready) {
  check_usable();
  if (!ready.snapshot && ready.entries.empty() && !ready.hard_state) return;
  // A snapshot's bytes go to their file (fsynced and named) before the record naming it.
  std::shared_ptr<const SnapshotFile> file;
  SnapshotRecord record;
  if (ready.snapshot) {
    if (ready.snapshot->data) file = snapshot_file_for(directory_, ready.snapshot->meta.index, ready.snapshot->data);
    record = snapshot_record_of(ready.snapshot->meta, file.get());
  }
  LogShape next = shape_;
  Appended at;
  try {
    // Planned first: a Ready that breaks a storage rule is refused before anything is written.
    if (auto problem = apply_ready(next, ready, [&](raft::Index i) { return stored_term(i); },
                                   ready.snapshot ? &record : nullptr)) {
      throw LogStoreError(Kind::Invalid, 0, fmt::format("log store {}: Ready refused: {}", directory_, *problem));
    }
    std::vector<Piece> pieces;
    if (ready.snapshot) pieces.push_back({WalRecordType::SnapshotReplace, encode_snapshot_record(next.snapshot)});
    if (!ready.entries.empty()) pieces.push_back({WalRecordType::Entries, {}, &ready.entries});
    if (ready.hard_state) pieces.push_back({WalRecordType::HardState, encode_hard_state(*ready.hard_state)});
    at = append(pieces);
  } catch (const LogStoreError& e) {
    if (ready.snapshot) after_failed_record(file, ready.snapshot->data, e.kind());
    throw;
  }
  {
    const std::lock_guard<std::mutex> lock(mu_);
    if (ready.snapshot) index_.clear();
    if (!ready.entries.empty()) {
      std::uint64_t data = 0;
      for (const raft::Entry& e : ready.entries) data += e.data.size();
      index_.append(WalChunk{at.seq, at.entries_offset, at.entries_bytes, 0, 0, 0, data}, ready.entries);
    }
  }
  shape_ = next;
  if (ready.snapshot) adopt_snapshot_file(std::move(file));
}

void WalLogStore::save_snapshot(const raft::SnapshotMeta& meta, raft::SnapshotDataPtr data) {
  check_usable();
  std::shared_ptr<const SnapshotFile> file;
  LogShape next = shape_;
  try {
    // Refused before any bytes are written when it breaks a rule.
    SnapshotRecord planned = snapshot_record_of(meta, nullptr);
    planned.has_data = data != nullptr;  // the stored snapshot may be saved again only with bytes
    if (auto problem = apply_save_snapshot(next, planned, [&](raft::Index i) { return stored_term(i); })) {
      throw LogStoreError(Kind::Invalid, 0, fmt::format("log store {}: save_snapshot refused: {}", directory_, *problem));
    }
    if (data) file = snapshot_file_for(directory_, meta.index, data);
    next.snapshot = snapshot_record_of(meta, file.get());
    append({Piece{WalRecordType::SnapshotSave, encode_snapshot_record(next.snapshot)}});
  } catch (const LogStoreError& e) {
    after_failed_record(file, data, e.kind());
    throw;
  }
  shape_ = next;
  adopt_snapshot_file(std::move(file));
}

void WalLogStore::drop_prefix(raft::Index through) {
  check_usable();
  LogShape next = shape_;
  if (auto problem = apply_drop_prefix(next, through)) {
    throw LogStoreError(Kind::Invalid, 0, fmt::format("log store {}: drop_prefix refused: {}", directory_, *problem));
  }
  if (next == shape_) return;
  shape_ = next;
  // Every segment before the one holding the oldest entry still in the log goes; the segment
  // it is in begins with a head that makes it (and those after it) replay on their own.
  std::vector<std::shared_ptr<WalSegment>> doomed;
  {
    const std::lock_guard<std::mutex> lock(mu_);
    index_.drop_through(through);
    // Never past the newest segment holding records: one with none yet (a crash inside its
    // creation left it empty, or a large write skipped it) has no head to replay from, and
    // dropping everything before it would drop the hard state and the snapshot (found in review).
    const std::uint64_t keep_from =
        std::min(index_.first_seq().value_or(segments_.back()->seq()),
                 headed_seq_ != 0 ? headed_seq_ : segments_.back()->seq());
    while (segments_.size() > 1 && segments_.front()->seq() < keep_from) {
      doomed.push_back(std::move(segments_.front()));
      segments_.pop_front();
    }
  }
  if (doomed.empty()) return;
  // Oldest first: a crash (or a failure) in between leaves a suffix of segments, which replays.
  for (const auto& segment : doomed) segment->remove();
  sync_directory(directory_);
}

raft::RestoreState WalLogStore::load() {
  check_usable();
  raft::RestoreState state;
  state.hard_state = shape_.hard_state;
  state.snapshot = shape_.snapshot.meta;
  state.applied = shape_.snapshot.meta.index;
  state.snapshot_data = snapshot_file_;
  const raft::Index after = shape_.snapshot.meta.index + 1;
  if (shape_.last >= after) {
    state.entries = read_entries(after, shape_.last + 1, std::numeric_limits<std::size_t>::max());
    if (state.entries.size() != shape_.last + 1 - after) {
      throw LogStoreError(Kind::Corrupt, 0,
                          fmt::format("log store {}: corrupt: {} entries read back from {}, the log holds {}",
                                      directory_, state.entries.size(), after, shape_.last + 1 - after));
    }
  }
  return state;
}

std::vector<raft::Entry> WalLogStore::read_entries(raft::Index lo, raft::Index hi, std::size_t max_bytes) const {
  std::vector<WalChunk> chunks;
  std::vector<std::shared_ptr<WalSegment>> segments;
  {
    const std::lock_guard<std::mutex> lock(mu_);
    chunks = index_.chunks_for(lo, hi, max_bytes);
    for (const WalChunk& c : chunks) {
      const std::uint64_t at = c.seq - segments_.front()->seq();
      COORD_ASSERT(c.seq >= segments_.front()->seq() && at < segments_.size(), "log store: an indexed segment is gone");
      segments.push_back(segments_[at]);
    }
  }
  std::vector<raft::Entry> out;
  std::size_t bytes = 0;
  // Records written one after the other are read together (one pread for up to
  // read_window_bytes of them), so that a load of many small Readies is not a pread each.
  std::string window;
  std::uint64_t window_seq = 0;
  std::uint64_t window_offset = 0;
  std::string problem;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    const WalChunk& c = chunks[i];
    const WalSegment& segment = *segments[i];
    if (window.empty() || c.seq != window_seq || c.offset < window_offset ||
        c.offset + c.bytes > window_offset + window.size()) {
      std::uint64_t span = c.bytes;
      for (std::size_t j = i + 1; j < chunks.size() && chunks[j].seq == c.seq &&
                                  chunks[j].offset == c.offset + span && span + chunks[j].bytes <= read_window_bytes;
           ++j) {
        span += chunks[j].bytes;
      }
      window.resize(span);
      segment.read(window.data(), window.size(), c.offset);
      window_seq = c.seq;
      window_offset = c.offset;
    }
    const std::string_view record = std::string_view(window).substr(c.offset - window_offset, c.bytes);
    const WalFrame frame = parse_wal_record(record, c.seq, c.offset);
    std::optional<std::vector<raft::Entry>> entries;
    if (frame.status != WalFrame::Status::Ok || frame.type != WalRecordType::Entries) {
      problem = frame.status == WalFrame::Status::Ok ? "not an entries record" : frame.problem;
    } else {
      entries = decode_wal_entries(frame.payload, /*with_data=*/true, &problem);
    }
    if (!entries) {
      throw LogStoreError(Kind::Corrupt, 0,
                          fmt::format("{}: corrupt: record at offset {} (entries from {}): {}", segment.path(),
                                      c.offset, c.record_first, problem));
    }
    for (raft::Entry& e : *entries) {
      if (e.index < std::max(lo, c.first) || e.index > c.last) continue;
      if (e.index >= hi) return out;
      bytes += e.data.size();
      if (!out.empty() && bytes > max_bytes) return out;
      out.push_back(std::move(e));
    }
  }
  return out;
}

LogStoreStats WalLogStore::stats() const {
  LogStoreStats stats;
  stats.first_index = shape_.first;
  stats.last_index = shape_.last_index();
  stats.entry_count = shape_.entry_count();
  stats.snapshot_bytes = shape_.snapshot.data_bytes;
  stats.commits = commits_;
  const std::lock_guard<std::mutex> lock(mu_);
  for (const auto& segment : segments_) stats.used_bytes += segment->bytes();
  return stats;
}

}  // namespace coord::storage
