#include "kv/lmdb_storage.h"

#include <fmt/format.h>
#include <lmdb.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "raft/assert.h"

namespace coord::kv {

namespace {

[[noreturn]] void fail(int rc, const char* what) {
  throw StorageError(rc, fmt::format("lmdb: {}: {}", what, mdb_strerror(rc)));
}

void check(int rc, const char* what) {
  if (rc != MDB_SUCCESS) fail(rc, what);
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

class LmdbCursor final : public Cursor {
 public:
  LmdbCursor(MDB_txn* txn, MDB_dbi dbi, int& open_cursors) : open_cursors_(open_cursors) {
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
    return view(value_);
  }

 private:
  bool move(MDB_cursor_op op) {
    const int rc = mdb_cursor_get(cursor_, &key_, &value_, op);
    if (rc == MDB_NOTFOUND) return positioned_ = false;
    check(rc, "mdb_cursor_get");
    return positioned_ = true;
  }

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
  LmdbTxn(MDB_env* env, const std::array<MDB_dbi, table_count>& dbis, bool read_only)
      : dbis_(dbis), read_only_(read_only) {
    check(mdb_txn_begin(env, nullptr, read_only ? MDB_RDONLY : 0, &txn_), "mdb_txn_begin");
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
    return std::string(view(v));
  }

  std::unique_ptr<Cursor> cursor(Table table) const override {
    COORD_ASSERT(txn_, "use after commit");
    return std::make_unique<LmdbCursor>(txn_, dbi(table), open_cursors_);
  }

  void put(Table table, std::string_view key, std::string_view value) override {
    writable();
    MDB_val k = val(key);
    MDB_val v = val(value);
    check(mdb_put(txn_, dbi(table), &k, &v, 0), "mdb_put");
  }

  void erase(Table table, std::string_view key) override {
    writable();
    MDB_val k = val(key);
    const int rc = mdb_del(txn_, dbi(table), &k, nullptr);
    if (rc != MDB_NOTFOUND) check(rc, "mdb_del");
  }

  void clear(Table table) override {
    writable();
    check(mdb_drop(txn_, dbi(table), 0), "mdb_drop");
  }

  void commit() override {
    writable();
    COORD_ASSERT(open_cursors_ == 0, "commit with open cursors");
    MDB_txn* txn = std::exchange(txn_, nullptr);  // freed by mdb_txn_commit, even on failure
    check(mdb_txn_commit(txn), "mdb_txn_commit");
  }

 private:
  MDB_dbi dbi(Table table) const { return dbis_[static_cast<std::size_t>(table)]; }
  void writable() const {
    COORD_ASSERT(txn_, "use after commit");
    COORD_ASSERT(!read_only_, "write in a read transaction");
  }

  MDB_txn* txn_ = nullptr;
  const std::array<MDB_dbi, table_count>& dbis_;
  bool read_only_;
  mutable int open_cursors_ = 0;
};

}  // namespace

LmdbStorage::LmdbStorage(const LmdbOptions& options) {
  if (::mkdir(options.directory.c_str(), 0755) != 0 && errno != EEXIST) {
    throw StorageError(errno, fmt::format("mkdir {}: {}", options.directory, std::strerror(errno)));
  }
  check(mdb_env_create(&env_), "mdb_env_create");
  try {
    check(mdb_env_set_maxdbs(env_, table_count), "mdb_env_set_maxdbs");
    check(mdb_env_set_mapsize(env_, options.map_bytes), "mdb_env_set_mapsize");
    check(mdb_env_set_maxreaders(env_, options.readers_max), "mdb_env_set_maxreaders");
    // MDB_NOTLS: read transactions belong to their object, not their thread, so a pinned view
    // can be handed to a snapshot thread.
    unsigned flags = MDB_NOTLS;
    if (!options.sync) flags |= MDB_NOSYNC;
    check(mdb_env_open(env_, options.directory.c_str(), flags, 0644), "mdb_env_open");
    // Reader slots of a killed process would otherwise pin old pages forever.
    int dead_readers = 0;
    check(mdb_reader_check(env_, &dead_readers), "mdb_reader_check");

    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env_, nullptr, 0, &txn), "mdb_txn_begin");
    for (std::size_t t = 0; t < table_count; ++t) {
      const int rc = mdb_dbi_open(txn, table_name(static_cast<Table>(t)), MDB_CREATE, &dbis_[t]);
      if (rc != MDB_SUCCESS) {
        mdb_txn_abort(txn);
        fail(rc, "mdb_dbi_open");
      }
    }
    check(mdb_txn_commit(txn), "mdb_txn_commit");
  } catch (...) {
    mdb_env_close(env_);
    throw;
  }
}

LmdbStorage::~LmdbStorage() { mdb_env_close(env_); }

std::unique_ptr<ReadTxn> LmdbStorage::read() {
  return std::make_unique<LmdbTxn>(env_, dbis_, /*read_only=*/true);
}

std::unique_ptr<ReadTxn> LmdbStorage::pin() {
  return std::make_unique<LmdbTxn>(env_, dbis_, /*read_only=*/true);
}

std::unique_ptr<WriteTxn> LmdbStorage::write() {
  return std::make_unique<LmdbTxn>(env_, dbis_, /*read_only=*/false);
}

void LmdbStorage::sync() { check(mdb_env_sync(env_, 1), "mdb_env_sync"); }

std::size_t LmdbStorage::key_bytes_max() const {
  return static_cast<std::size_t>(mdb_env_get_maxkeysize(env_));
}

}  // namespace coord::kv
