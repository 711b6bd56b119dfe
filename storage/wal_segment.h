// One segment file of WalLogStore: `wal-<seq, 16 hex digits>.log`, preallocated to its full size
// (fallocate) when created, so that appending never changes the file's size or allocates blocks
// (an fdatasync then writes the data only, and a full disk shows at creation, not mid-append).
// The descriptor lives as long as the object: a reader holding a shared_ptr keeps reading a
// segment that a prefix drop unlinked meanwhile.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace coord::storage {

std::string wal_segment_name(std::uint64_t seq);
std::optional<std::uint64_t> parse_wal_segment_name(std::string_view name);

class WalSegment {
 public:
  // Creates DIR/wal-SEQ.log of `bytes` zeros (allocated), synced; not the directory. Full when the
  // file system has no room (ENOSPC, EDQUOT: the file is removed again), Io otherwise.
  static std::shared_ptr<WalSegment> create(const std::string& directory, std::uint64_t seq, std::uint64_t bytes);
  // Opens an existing segment for reading and appending.
  static std::shared_ptr<WalSegment> open(const std::string& directory, std::uint64_t seq);
  ~WalSegment();
  WalSegment(const WalSegment&) = delete;
  WalSegment& operator=(const WalSegment&) = delete;

  std::uint64_t seq() const { return seq_; }
  std::uint64_t bytes() const { return bytes_; }
  const std::string& path() const { return path_; }
  // One past the last byte that may not be zero: the end of the file's last data extent, by
  // SEEK_DATA / SEEK_HOLE (the preallocated space is unwritten extents, which read as zeros and
  // which the file system reports as holes), or bytes() where it cannot tell. A replay checks
  // the space after the records for leftovers up to here only: reading 64 MiB of preallocated
  // zeros made every open take a second or more.
  std::uint64_t data_end() const;

  // Each throws LogStoreError{Io} with the errno (a short read is Corrupt: the file is shorter
  // than a record the log indexed).
  void write(std::string_view data, std::uint64_t offset) const;
  void sync() const;  // fdatasync
  void read(char* out, std::size_t n, std::uint64_t offset) const;
  void remove() const;  // unlinks the file; the descriptor stays readable

 private:
  WalSegment(std::uint64_t seq, std::string path, int fd, std::uint64_t bytes)
      : seq_(seq), path_(std::move(path)), fd_(fd), bytes_(bytes) {}

  std::uint64_t seq_;
  std::string path_;
  int fd_;
  std::uint64_t bytes_;
};

// A segment's bytes mapped read-only for the replay at open; unmapped when destroyed.
class WalSegmentMap {
 public:
  explicit WalSegmentMap(const WalSegment& segment);
  ~WalSegmentMap();
  WalSegmentMap(const WalSegmentMap&) = delete;
  WalSegmentMap& operator=(const WalSegmentMap&) = delete;
  std::string_view bytes() const { return {data_, size_}; }

 private:
  const char* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace coord::storage
