#include "net/disk_full.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "storage/snapshot_file.h"

namespace coord::net {

namespace {

// The state machine's commit of the same entries takes about as many bytes again (the value in
// the tree and in the history), and LMDB's copy-on-write adds pages on top.
constexpr std::uint64_t apply_factor = 4;

}  // namespace

std::optional<std::string> lacks_room(const std::string& directory, std::uint64_t bytes,
                                      const DiskFullOptions& options) {
  if (options.reserve_bytes == 0) return std::nullopt;
  const std::optional<std::uint64_t> free = free_disk_bytes(directory);
  if (!free) return std::nullopt;  // unknown: let the write itself find out
  const std::uint64_t needed = options.reserve_bytes + apply_factor * bytes;
  if (*free >= needed) return std::nullopt;
  return fmt::format("disk full: {} bytes free in {}, a write of {} bytes needs {} (reserve {})", *free,
                     directory, bytes, needed, options.reserve_bytes);
}

std::uint64_t log_write_bytes(const raft::Ready& ready, const std::string& log_directory) {
  std::uint64_t bytes = 0;
  for (const raft::Entry& e : ready.entries) bytes += e.data.size() + 32;
  if (ready.snapshot && ready.snapshot->data) {
    const auto file = std::dynamic_pointer_cast<const storage::SnapshotFile>(ready.snapshot->data);
    if (!file || file->directory() != log_directory) bytes += ready.snapshot->data->size();
  }
  return bytes;
}

void DiskFullState::failed(std::string reason, std::uint64_t now) {
  if (!active_) {
    active_ = true;
    attempts_ = 0;
    pause_ = std::max<std::uint64_t>(options_.retry_ticks_min, 1);
  } else {
    pause_ = std::min(pause_ * 2, std::max(options_.retry_ticks_max, options_.retry_ticks_min));
  }
  ++attempts_;
  reason_ = std::move(reason);
  next_retry_ = now + pause_;
}

void DiskFullState::recovered() {
  active_ = false;
  reason_.clear();
  pause_ = 0;
}

}  // namespace coord::net
