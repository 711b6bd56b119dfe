#include "kv/lmdb_page_room.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <lmdb.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "kv/storage.h"

namespace coord::kv {

namespace {

// A change copies its root-to-leaf path (copy on write), may split every page on it and add a
// root, and a delete may rebalance with a sibling at each level: per level of the tree.
constexpr std::size_t pages_per_level = 3;
constexpr std::size_t pages_per_change_extra = 4;
// The tables a commit may copy a path of: LMDB's own two (the free-page list and the table of
// tables) and ours.
constexpr std::size_t tables_at_commit_max = 2 + table_count;
// Allocated at a time beyond what is needed, so that fallocate runs once per this much growth:
// 1/16 of the file, between these bounds.
constexpr std::uint64_t ahead_bytes_min = std::uint64_t{1} << 20;
constexpr std::uint64_t ahead_bytes_max = std::uint64_t{16} << 20;

}  // namespace

std::size_t next_page(MDB_txn* txn) {
  // struct MDB_txn { MDB_txn* mt_parent; MDB_txn* mt_child; pgno_t mt_next_pgno; ... } in LMDB
  // 0.9, pgno_t being size_t without MDB_VL32 (checked by layout_matches).
  std::size_t page = 0;
  std::memcpy(&page, reinterpret_cast<const char*>(txn) + 2 * sizeof(void*), sizeof page);
  return page;
}

bool layout_matches(MDB_env* env, MDB_txn* txn) {
  MDB_envinfo info;
  if (mdb_env_info(env, &info) != MDB_SUCCESS) return false;
  return next_page(txn) == info.me_last_pgno + 1;
}

PageRoom::PageRoom(int fd, std::size_t page_bytes, std::size_t map_bytes, std::size_t allocated_pages)
    : fd_(fd), page_bytes_(page_bytes), map_bytes_(map_bytes),
      allocated_bytes_(static_cast<std::uint64_t>(allocated_pages) * page_bytes) {}

void PageRoom::ensure(std::size_t next_page, std::size_t extra_pages) {
  const std::uint64_t needed =
      std::min<std::uint64_t>(static_cast<std::uint64_t>(next_page + extra_pages) * page_bytes_, map_bytes_);
  if (needed <= allocated_bytes_) return;
  // Ahead of the need when there is room for it, or just the need when there is not.
  const std::uint64_t ahead = std::clamp<std::uint64_t>(allocated_bytes_ / 16, ahead_bytes_min, ahead_bytes_max);
  const std::uint64_t wanted = std::min<std::uint64_t>(needed + ahead, map_bytes_);
  int rc = 0;
  for (const std::uint64_t target : {wanted, needed}) {
    if (::fallocate(fd_, 0, static_cast<off_t>(allocated_bytes_), static_cast<off_t>(target - allocated_bytes_)) == 0) {
      allocated_bytes_ = target;
      return;
    }
    rc = errno;
    if (rc != ENOSPC && rc != EDQUOT) break;
  }
  throw StorageError(rc, fmt::format("allocating the state file's blocks up to {} bytes: {}", needed,
                                     std::strerror(rc)));
}

std::size_t PageRoom::pages_for_change(std::size_t depth, std::size_t value_bytes) const {
  // One more level than now (a root split); a value too big for a leaf goes to overflow pages of
  // its own (plus the key and headers).
  return pages_per_level * (depth + 1) + pages_per_change_extra + (value_bytes + 1024) / page_bytes_ + 1;
}

std::size_t PageRoom::pages_for_commit(std::size_t next_page, std::size_t depth_max) const {
  // The free-page list is saved as 8-byte page numbers: at most every page of the file, twice
  // (the pages freed by this transaction and those it took back from older ones); and each table
  // changed gets its record in the table of tables rewritten.
  return 2 * (next_page / (page_bytes_ / 8) + 1) + tables_at_commit_max * pages_for_change(depth_max, 0);
}

}  // namespace coord::kv
