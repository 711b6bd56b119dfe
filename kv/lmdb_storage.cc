#include "kv/lmdb_storage.h"

#include <fmt/format.h>
#include <fcntl.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "kv/check_rows.h"
#include "kv/lmdb_page_room.h"
#include "kv/record_checksum.h"
#include "raft/assert.h"

namespace coord::kv {

namespace {

[[noreturn]] void fail(int rc, const char* what) {
  throw StorageError(rc, fmt::format("lmdb: {}: {}", what, mdb_strerror(rc)));
}

void check(int rc, const char* what) {
  if (rc != MDB_SUCCESS) fail(rc, what);
}

// The depth of the deepest table `txn` sees, LMDB's own two included.
std::size_t deepest(MDB_txn* txn, const std::array<MDB_dbi, table_count>& dbis) {
  std::size_t depth = 0;
  const auto deeper = [&](MDB_dbi dbi) {
    MDB_stat stat;
    check(mdb_stat(txn, dbi, &stat), "mdb_stat");
    depth = std::max<std::size_t>(depth, stat.ms_depth);
  };
  deeper(0);  // FREE_DBI, the free-page list
  deeper(1);  // MAIN_DBI, the table of tables
  for (const MDB_dbi dbi : dbis) deeper(dbi);
  return depth;
}

MDB_val val(std::string_view s) {
  MDB_val v;
  v.mv_size = s.size();
  v.mv_data = const_cast<char*>(s.data());
  return v;
}

std::string_view view(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

// Every value is stored behind its checksum (kv/record_checksum.h). The "format" database,
// beside the tables, says so; a store without it was written by a build that kept no checksums
// and gets them added when it is opened.
constexpr const char* format_db_name = "format";
constexpr std::string_view checksum_key = "record_checksum";
constexpr std::string_view checksum_kind = "crc32c-v1";
// The error code a checksum failure carries (the same as LMDB's own "located page was wrong
// type"), so that callers can tell damage from a transient failure.
constexpr int corrupt_code = MDB_CORRUPTED;

// The value behind its checksum, or an exception naming the file, the table and the key.
std::string_view checked(const std::string& file, Table table, std::string_view key, std::string_view stored) {
  CheckedValue c = read_checked_value(table, key, stored);
  if (!c.problem.empty()) {
    throw StorageError(corrupt_code, fmt::format("kv store {}: corrupt: table {}, key \"{}\": {}", file,
                                                 table_name(table), printable_key(key), c.problem));
  }
  return c.value;
}

class LmdbCursor final : public Cursor {
 public:
  LmdbCursor(MDB_txn* txn, MDB_dbi dbi, Table table, const std::string& file, int& open_cursors)
      : table_(table), file_(file), open_cursors_(open_cursors) {
    check(mdb_cursor_open(txn, dbi, &cursor_), "mdb_cursor_open");
    ++open_cursors_;
  }
  ~LmdbCursor() override {
    mdb_cursor_close(cursor_);
    --open_cursors_;
  }
  LmdbCursor(const LmdbCursor&) = delete;
  LmdbCursor& operator=(const LmdbCursor&) = delete;

  bool seek(std::string_view key) override {
    if (key.empty()) return move(MDB_FIRST);  // LMDB refuses empty keys; "" sorts first anyway
    key_ = val(key);
    return move(MDB_SET_RANGE);
  }
  bool seek_before(std::string_view key) override {
    if (key.empty()) return positioned_ = false;
    key_ = val(key);
    if (move(MDB_SET_RANGE)) return move(MDB_PREV);
    return move(MDB_LAST);
  }
  bool next() override {
    COORD_ASSERT(positioned_, "next() on an unpositioned cursor");
    return move(MDB_NEXT);
  }
  std::string_view key() const override {
    COORD_ASSERT(positioned_, "key() on an unpositioned cursor");
    return view(key_);
  }
  std::string_view value() const override {
    COORD_ASSERT(positioned_, "value() on an unpositioned cursor");
    return checked_value_;
  }

 private:
  bool move(MDB_cursor_op op) {
    const int rc = mdb_cursor_get(cursor_, &key_, &value_, op);
    if (rc == MDB_NOTFOUND) return positioned_ = false;
    check(rc, "mdb_cursor_get");
    checked_value_ = checked(file_, table_, view(key_), view(value_));
    return positioned_ = true;
  }

  Table table_;
  const std::string& file_;
  std::string_view checked_value_;
  MDB_cursor* cursor_ = nullptr;
  int& open_cursors_;
  MDB_val key_{};
  MDB_val value_{};
  bool positioned_ = false;
};

// A read or write transaction. Cursors must be closed before it ends (a write transaction frees
// its cursors itself, so a cursor outliving it would be freed twice).
class LmdbTxn : public WriteTxn {
 public:
  // `room`: the blocks kept ahead of a MDB_WRITEMAP environment (nullptr without it).
  LmdbTxn(MDB_env* env, const std::array<MDB_dbi, table_count>& dbis, const std::string& file, bool read_only,
          PageRoom* room)
      : dbis_(dbis), file_(file), read_only_(read_only), room_(read_only ? nullptr : room) {
    check(mdb_txn_begin(env, nullptr, read_only ? MDB_RDONLY : 0, &txn_), "mdb_txn_begin");
    if (room_ && !layout_matches(env, txn_)) {
      mdb_txn_abort(std::exchange(txn_, nullptr));
      throw StorageError(MDB_INCOMPATIBLE, fmt::format("kv store {}: the LMDB write transaction's next page "
                                                       "no longer reads as it did at open", file_));
    }
  }
  ~LmdbTxn() override {
    COORD_ASSERT(open_cursors_ == 0, "a cursor outlived its transaction");
    if (txn_) mdb_txn_abort(txn_);
  }
  LmdbTxn(const LmdbTxn&) = delete;
  LmdbTxn& operator=(const LmdbTxn&) = delete;

  std::optional<std::string> get(Table table, std::string_view key) const override {
    COORD_ASSERT(txn_, "use after commit");
    MDB_val k = val(key);
    MDB_val v;
    const int rc = mdb_get(txn_, dbi(table), &k, &v);
    if (rc == MDB_NOTFOUND) return std::nullopt;
    check(rc, "mdb_get");
    return std::string(checked(file_, table, key, view(v)));
  }

  std::unique_ptr<Cursor> cursor(Table table) const override {
    COORD_ASSERT(txn_, "use after commit");
    return std::make_unique<LmdbCursor>(txn_, dbi(table), table, file_, open_cursors_);
  }

  std::uint64_t rows(Table table) const override {
    COORD_ASSERT(txn_, "use after commit");
    MDB_stat stat;
    check(mdb_stat(txn_, dbi(table), &stat), "mdb_stat");
    return stat.ms_entries;
  }

  void put(Table table, std::string_view key, std::string_view value) override {
    writable();
    MDB_val k = val(key);
    MDB_val v;
    v.mv_size = record_checksum_bytes + value.size();
    make_room(table, key.size() + v.mv_size);
    // MDB_RESERVE: LMDB makes the room, the checksum and the value are written straight into it.
    check(mdb_put(txn_, dbi(table), &k, &v, MDB_RESERVE), "mdb_put");
    write_checked_value(table, key, value, static_cast<char*>(v.mv_data));
  }

  void erase(Table table, std::string_view key) override {
    writable();
    make_room(table, 0);
    MDB_val k = val(key);
    const int rc = mdb_del(txn_, dbi(table), &k, nullptr);
    if (rc != MDB_NOTFOUND) check(rc, "mdb_del");
  }

  void clear(Table table) override {
    writable();
    make_room(table, 0);
    check(mdb_drop(txn_, dbi(table), 0), "mdb_drop");
  }

  void commit() override {
    writable();
    COORD_ASSERT(open_cursors_ == 0, "commit with open cursors");
    if (room_) room_->ensure(next_page(txn_), room_->pages_for_commit(next_page(txn_), deepest(txn_, dbis_)));
    MDB_txn* txn = std::exchange(txn_, nullptr);  // freed by mdb_txn_commit, even on failure
    check(mdb_txn_commit(txn), "mdb_txn_commit");
  }

 private:
  MDB_dbi dbi(Table table) const { return dbis_[static_cast<std::size_t>(table)]; }
  void writable() const {
    COORD_ASSERT(txn_, "use after commit");
    COORD_ASSERT(!read_only_, "write in a read transaction");
  }
  // Before LMDB may allocate pages for a change of `bytes`: their blocks exist, or the change is
  // refused with ENOSPC (the transaction is then aborted, having changed nothing visible).
  void make_room(Table table, std::size_t bytes) {
    if (room_) room_->ensure(next_page(txn_), room_->pages_for_change(depth(dbi(table)), bytes));
  }
  std::size_t depth(MDB_dbi dbi) const {
    MDB_stat stat;
    check(mdb_stat(txn_, dbi, &stat), "mdb_stat");
    return stat.ms_depth;
  }

  MDB_txn* txn_ = nullptr;
  const std::array<MDB_dbi, table_count>& dbis_;
  const std::string& file_;
  bool read_only_;
  PageRoom* room_;
  mutable int open_cursors_ = 0;
};

}  // namespace

LmdbStorage::LmdbStorage(const LmdbOptions& options) : file_(options.directory + "/data.mdb") {
  if (::mkdir(options.directory.c_str(), 0755) != 0 && errno != EEXIST) {
    throw StorageError(errno, fmt::format("mkdir {}: {}", options.directory, std::strerror(errno)));
  }
  open_env(options, options.write_map ? MDB_WRITEMAP : 0);
  if (options.write_map && !start_page_room()) {
    // This LMDB or this file system cannot keep blocks ahead of the map: without MDB_WRITEMAP,
    // LMDB writes with pwrite, which reports a full disk as ENOSPC by itself.
    mdb_env_close(std::exchange(env_, nullptr));
    open_env(options, 0);
    cut_to_committed_pages();
  }
  try {
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env_, nullptr, 0, &txn), "mdb_txn_begin");
    int rc = MDB_SUCCESS;
    try {
      // Creating the tables (in a new store) allocates pages.
      if (room_) room_->ensure(next_page(txn), room_->pages_for_commit(next_page(txn), 1));
    } catch (...) {
      mdb_txn_abort(txn);
      throw;
    }
    for (std::size_t t = 0; t < table_count; ++t) {
      rc = mdb_dbi_open(txn, table_name(static_cast<Table>(t)), MDB_CREATE, &dbis_[t]);
      if (rc != MDB_SUCCESS) {
        mdb_txn_abort(txn);
        fail(rc, "mdb_dbi_open");
      }
    }
    try {
      rc = add_checksums(txn);
      if (rc == MDB_SUCCESS && room_) room_->ensure(next_page(txn), room_->pages_for_commit(next_page(txn), deepest(txn, dbis_)));
    } catch (...) {
      mdb_txn_abort(txn);
      throw;
    }
    if (rc != MDB_SUCCESS) {
      mdb_txn_abort(txn);
      fail(rc, "adding checksums");
    }
    check(mdb_txn_commit(txn), "mdb_txn_commit");
    if (options.verify) verify();
  } catch (...) {
    mdb_env_close(env_);
    throw;
  }
}

void LmdbStorage::open_env(const LmdbOptions& options, unsigned extra_flags) {
  check(mdb_env_create(&env_), "mdb_env_create");
  try {
    check(mdb_env_set_maxdbs(env_, table_count + 1), "mdb_env_set_maxdbs");
    check(mdb_env_set_mapsize(env_, options.map_bytes), "mdb_env_set_mapsize");
    check(mdb_env_set_maxreaders(env_, options.readers_max), "mdb_env_set_maxreaders");
    // MDB_NOTLS: read transactions belong to their object, not their thread, so a pinned view
    // can be handed to a snapshot thread.
    unsigned flags = MDB_NOTLS | extra_flags;
    if (!options.sync) flags |= MDB_NOSYNC;
    check(mdb_env_open(env_, options.directory.c_str(), flags, 0644), "mdb_env_open");
    // Reader slots of a killed process would otherwise pin old pages forever.
    int dead_readers = 0;
    check(mdb_reader_check(env_, &dead_readers), "mdb_reader_check");
  } catch (...) {
    mdb_env_close(std::exchange(env_, nullptr));
    throw;
  }
}

namespace {

// File systems that overwrite an allocated block in place, so that blocks allocated ahead stay
// enough: ext4, XFS (unless the file shares blocks by reflink, which coord never makes) and
// tmpfs. A copy-on-write file system (btrfs, bcachefs) needs new room for every overwrite, so a
// full one could still meet a write-map page fault without a block: SIGBUS.
bool overwrites_in_place(const struct statfs& fs) {
  constexpr long ext4_magic = 0xEF53, xfs_magic = 0x58465342, tmpfs_magic = 0x01021994;
  const long type = static_cast<long>(fs.f_type);
  return type == ext4_magic || type == xfs_magic || type == tmpfs_magic;
}

// Deeper than any table of ours can be in a map of up to 8 TiB (a 4 KiB branch page holds at
// least 7 keys of the longest size, 511 bytes, and 7^11 pages are 8 TiB): room for the
// transaction that opens the store is allocated for tables this deep, so opening needs no more.
constexpr std::size_t open_depth_max = 12;

}  // namespace

bool LmdbStorage::start_page_room() {
  int major = 0, minor = 0, patch = 0;
  mdb_version(&major, &minor, &patch);
  if (major != 0 || minor != 9) return false;  // next_page() knows LMDB 0.9's struct MDB_txn
  int fd = -1;
  MDB_stat stat;
  MDB_envinfo info;
  if (mdb_env_get_fd(env_, &fd) != MDB_SUCCESS || mdb_env_stat(env_, &stat) != MDB_SUCCESS ||
      mdb_env_info(env_, &info) != MDB_SUCCESS) {
    return false;
  }
  struct statfs fs;
  if (::fstatfs(fd, &fs) != 0 || !overwrites_in_place(fs)) return false;
  MDB_txn* txn = nullptr;
  if (mdb_txn_begin(env_, nullptr, 0, &txn) != MDB_SUCCESS) return false;
  const bool matches = layout_matches(env_, txn);
  mdb_txn_abort(txn);
  if (!matches) return false;
  // Every committed page gets its block now: a store written without MDB_WRITEMAP has holes
  // there, the pages LMDB freed in the transaction that made them ("loose" pages, never written:
  // mdb_page_flush skips them) and later reuses. Plus room for the transaction that opens the
  // store. Without that room (a full disk, a file system without fallocate) the store opens
  // without MDB_WRITEMAP, where pwrite reports a full disk as ENOSPC by itself.
  const std::size_t committed_pages = info.me_last_pgno + 1;
  auto room = std::make_unique<PageRoom>(fd, stat.ms_psize, info.me_mapsize, 0);
  try {
    room->ensure(committed_pages, room->pages_for_commit(committed_pages, open_depth_max));
  } catch (const StorageError&) {
    return false;
  }
  // LMDB sized the file to the whole map (a sparse file): cut it back to the blocks allocated,
  // so that it stays the size of its data for anyone who copies or measures it. PageRoom extends
  // it as it allocates; LMDB never touches a page past the transaction's next one.
  if (::ftruncate(fd, static_cast<off_t>(room->allocated_bytes())) != 0) return false;
  room_ = std::move(room);
  return true;
}

void LmdbStorage::cut_to_committed_pages() {
  int fd = -1;
  MDB_stat stat;
  MDB_envinfo info;
  if (mdb_env_get_fd(env_, &fd) != MDB_SUCCESS || mdb_env_stat(env_, &stat) != MDB_SUCCESS ||
      mdb_env_info(env_, &info) != MDB_SUCCESS) {
    return;
  }
  struct stat file;
  const auto committed = static_cast<off_t>((info.me_last_pgno + 1) * stat.ms_psize);
  if (::fstat(fd, &file) == 0 && file.st_size > committed) {
    // Only the sparse tail a MDB_WRITEMAP open added; without MDB_WRITEMAP LMDB writes pages past
    // the end with pwrite and never reads them from the map. Best effort: a failure leaves it.
    (void)!::ftruncate(fd, committed);
  }
}

LmdbStorage::~LmdbStorage() { mdb_env_close(env_); }

int LmdbStorage::add_checksums(MDB_txn* txn) {
  MDB_dbi format = 0;
  int rc = mdb_dbi_open(txn, format_db_name, MDB_CREATE, &format);
  if (rc != MDB_SUCCESS) return rc;
  MDB_val k = val(checksum_key);
  MDB_val v;
  rc = mdb_get(txn, format, &k, &v);
  if (rc == MDB_SUCCESS) {
    if (view(v) != checksum_kind) {
      throw StorageError(corrupt_code, fmt::format("kv store {}: records use checksum \"{}\", this build knows "
                                                   "only \"{}\"", file_, view(v), checksum_kind));
    }
    return MDB_SUCCESS;
  }
  if (rc != MDB_NOTFOUND) return rc;
  // Written by a build without checksums (or brand new): every value gets its checksum, in the
  // same transaction as the marker, so a crash leaves the old form or the new one.
  for (std::size_t t = 0; t < table_count; ++t) {
    std::vector<std::pair<std::string, std::string>> rows;
    MDB_cursor* cursor = nullptr;
    if ((rc = mdb_cursor_open(txn, dbis_[t], &cursor)) != MDB_SUCCESS) return rc;
    MDB_val ck, cv;
    for (rc = mdb_cursor_get(cursor, &ck, &cv, MDB_FIRST); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cursor, &ck, &cv, MDB_NEXT)) {
      rows.emplace_back(view(ck), view(cv));
    }
    mdb_cursor_close(cursor);
    if (rc != MDB_NOTFOUND) return rc;
    for (const auto& [key, value] : rows) {
      if (room_) room_->ensure(next_page(txn), room_->pages_for_change(deepest(txn, dbis_), key.size() + value.size()));
      MDB_val rk = val(key);
      MDB_val rv;
      rv.mv_size = record_checksum_bytes + value.size();
      if ((rc = mdb_put(txn, dbis_[t], &rk, &rv, MDB_RESERVE)) != MDB_SUCCESS) return rc;
      write_checked_value(static_cast<Table>(t), key, value, static_cast<char*>(rv.mv_data));
    }
  }
  MDB_val marker = val(checksum_kind);
  return mdb_put(txn, format, &k, &marker, 0);
}

void LmdbStorage::verify() { check_every_row(*read()); }

std::unique_ptr<ReadTxn> LmdbStorage::read() {
  return std::make_unique<LmdbTxn>(env_, dbis_, file_, /*read_only=*/true, nullptr);
}

std::unique_ptr<ReadTxn> LmdbStorage::pin() {
  return std::make_unique<LmdbTxn>(env_, dbis_, file_, /*read_only=*/true, nullptr);
}

std::unique_ptr<WriteTxn> LmdbStorage::write() {
  return std::make_unique<LmdbTxn>(env_, dbis_, file_, /*read_only=*/false, room_.get());
}

std::uint64_t LmdbStorage::allocated_bytes() const { return room_ ? room_->allocated_bytes() : 0; }

void LmdbStorage::sync() { check(mdb_env_sync(env_, 1), "mdb_env_sync"); }

std::size_t LmdbStorage::key_bytes_max() const {
  return static_cast<std::size_t>(mdb_env_get_maxkeysize(env_));
}

}  // namespace coord::kv
