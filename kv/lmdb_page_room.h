// Disk blocks kept allocated ahead of an LMDB environment opened with MDB_WRITEMAP.
//
// Why: with MDB_WRITEMAP a write transaction modifies its pages in a shared mapping of the file
// instead of pwrite()-ing every dirty page at commit (the largest CPU cost of a write-heavy
// load). But LMDB then sizes the file to the whole map with ftruncate, a sparse file, and a page
// first touched in a hole gets its block when it is written: if the file system is full at that
// moment the process gets SIGBUS, a crash, where pwrite would have returned ENOSPC, which the
// host turns into a held write and retries (storage/disk_space.h).
//
// So at open every committed page gets its block (a store written without MDB_WRITEMAP has
// holes) and the file is cut back to the blocks allocated; then every block LMDB may write is
// allocated beforehand, with fallocate(2) (which extends the file): before each change
// the transaction may make, the file holds blocks up to the transaction's next unallocated page
// plus the most that change can allocate (a copy-on-write of a root-to-leaf path, splits and
// rebalances on it, the value's overflow pages; from the table's depth as the transaction sees
// it); at commit, plus room for the free-page list and the tables' records. When fallocate fails for
// lack of room the change is refused with ENOSPC before LMDB touches anything: the transaction is
// aborted, nothing a reader or a later open could see has changed, and the caller retries once
// there is room, as before.
//
// The transaction's next unallocated page is not in LMDB's API. In LMDB 0.9 the struct MDB_txn
// starts with two pointers and then that page number (mt_next_pgno); `next_page` reads it there,
// and `layout_matches` checks that reading against mdb_env_info() at the start of a write
// transaction (where they must agree). An LMDB other than 0.9 or whose layout differs fails that
// check, and the storage opens without MDB_WRITEMAP instead (kv/lmdb_storage.cc), as it does on
// a file system that does not overwrite blocks in place (copy on write: btrfs) or when the room
// for the committed pages and the opening transaction cannot be allocated (a full disk).
#pragma once

#include <cstddef>
#include <cstdint>

struct MDB_env;
struct MDB_txn;

namespace coord::kv {

// The first page number the write transaction `txn` has not allocated yet.
std::size_t next_page(MDB_txn* txn);

// Whether next_page() reads LMDB's field: `txn` must be a write transaction that has changed
// nothing yet.
bool layout_matches(MDB_env* env, MDB_txn* txn);

class PageRoom {
 public:
  // `fd`: the environment's data file (mdb_env_get_fd); the first `allocated_pages` have their
  // blocks. (Not every committed page does: a store written without MDB_WRITEMAP has holes
  // where LMDB freed pages in the transaction that made them, and it reuses those pages later.)
  PageRoom(int fd, std::size_t page_bytes, std::size_t map_bytes, std::size_t allocated_pages);

  // Makes sure the pages below `next_page + extra_pages` have blocks; throws StorageError with
  // ENOSPC (or the errno fallocate gave) when they cannot. Pages beyond the map are left to LMDB,
  // which refuses them with MDB_MAP_FULL.
  void ensure(std::size_t next_page, std::size_t extra_pages);

  // The most one put of `value_bytes` (or an erase or a clear, with 0) may allocate in a table
  // `depth` levels deep (mdb_stat's ms_depth, as the transaction sees it).
  std::size_t pages_for_change(std::size_t depth, std::size_t value_bytes) const;
  // The most a commit may allocate, for a transaction that reached `next_page`, with its deepest
  // table `depth_max` levels deep.
  std::size_t pages_for_commit(std::size_t next_page, std::size_t depth_max) const;

  std::uint64_t allocated_bytes() const { return allocated_bytes_; }

 private:
  int fd_;
  std::size_t page_bytes_;
  std::size_t map_bytes_;
  std::uint64_t allocated_bytes_;
};

}  // namespace coord::kv
