#include "storage/lmdb_log_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "raft/assert.h"
#include "storage/crc32c.h"
#include "storage/disk_space.h"

namespace coord::storage {

namespace {

using Kind = LogStoreError::Kind;

static_assert(sizeof(std::size_t) >= 8, "the map reserves tens of GiB of address space: 64-bit only");

constexpr const char* entries_db_name = "entries";
constexpr const char* meta_db_name = "meta";
constexpr unsigned named_dbs_max = 2;
constexpr mode_t file_mode = 0644;

MDB_val to_val(std::string_view bytes) {
  MDB_val v;
  v.mv_size = bytes.size();
  v.mv_data = const_cast<char*>(bytes.data());
  return v;
}

std::string_view to_view(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

Kind kind_of(int rc) {
  switch (rc) {
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
      return Kind::Full;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
      return Kind::Corrupt;
    default:
      return Kind::Io;
  }
}


}  // namespace

// One LMDB transaction, aborted unless committed (also when an exception leaves the scope).
class LmdbLogStore::Txn {
 public:
  Txn(MDB_env* env, unsigned flags, int& rc) { rc = mdb_txn_begin(env, nullptr, flags, &txn_); }
  ~Txn() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
  }
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;

  MDB_txn* get() const { return txn_; }
  // LMDB frees the transaction whether or not the commit succeeds.
  int commit() { return mdb_txn_commit(std::exchange(txn_, nullptr)); }

 private:
  MDB_txn* txn_ = nullptr;
};

namespace {

// Error helpers bound to one store, for messages that name its directory.
struct Errors {
  const std::string& directory;
  std::size_t map_bytes;
  bool& failed;

  [[noreturn]] void lmdb(int rc, const char* what) const {
    // LMDB's "environment had fatal error, must be shut down": nothing more can be done with it.
    if (rc == MDB_PANIC) failed = true;
    std::string detail = mdb_strerror(rc);
    if (rc == MDB_MAP_FULL) {
      detail = fmt::format("the log's map of {} bytes is full (MDB_MAP_FULL): compact the log "
                           "(save_snapshot + drop_prefix) or reopen with a larger map_bytes",
                           map_bytes);
    } else if (rc == MDB_TXN_FULL) {
      detail = "one transaction changes too many pages (MDB_TXN_FULL): write smaller batches";
    }
    throw LogStoreError(kind_of(rc), rc, fmt::format("log store {}: {}: {}", directory, what, detail));
  }
  [[noreturn]] void corrupt(const std::string& problem) const {
    // Named by file: the operator must know which one to restore or remove.
    throw LogStoreError(Kind::Corrupt, 0, fmt::format("log store {}: corrupt: {}/data.mdb: {}", directory, directory, problem));
  }
  [[noreturn]] void invalid(const char* what, const std::string& problem) const {
    throw LogStoreError(Kind::Invalid, 0,
                        fmt::format("log store {}: {} refused: {}", directory, what, problem));
  }
};

}  // namespace

std::unique_ptr<LmdbLogStore> LmdbLogStore::open(const std::string& directory,
                                                 const LogStoreOptions& options) {
  std::unique_ptr<LmdbLogStore> store(new LmdbLogStore());
  store->directory_ = directory;
  store->map_bytes_ = options.map_bytes;
  store->open_env(options);  // on a throw the destructor releases what was acquired
  return store;
}

void LmdbLogStore::open_env(const LogStoreOptions& options) {
  const Errors errors{directory_, map_bytes_, failed_};
  owner_lock_fd_ = lock_log_directory(directory_);

  int rc = mdb_env_create(&env_);
  if (rc != 0) {
    env_ = nullptr;
    errors.lmdb(rc, "mdb_env_create");
  }
  if ((rc = mdb_env_set_mapsize(env_, options.map_bytes)) != 0) errors.lmdb(rc, "mdb_env_set_mapsize");
  if ((rc = mdb_env_set_maxdbs(env_, named_dbs_max)) != 0) errors.lmdb(rc, "mdb_env_set_maxdbs");
  // No MDB_NOSYNC / MDB_NOMETASYNC / MDB_WRITEMAP: every commit is durable when it returns.
  if ((rc = mdb_env_open(env_, directory_.c_str(), 0, file_mode)) != 0) errors.lmdb(rc, "mdb_env_open");
  sync_directory(directory_);  // data.mdb's name, when LMDB just created it

  // Named databases become usable by later transactions only once this one commits.
  Txn txn(env_, 0, rc);
  if (rc != 0) errors.lmdb(rc, "mdb_txn_begin");
  if ((rc = mdb_dbi_open(txn.get(), entries_db_name, MDB_CREATE, &entries_dbi_)) != 0) {
    errors.lmdb(rc, "mdb_dbi_open(entries)");
  }
  if ((rc = mdb_dbi_open(txn.get(), meta_db_name, MDB_CREATE, &meta_dbi_)) != 0) {
    errors.lmdb(rc, "mdb_dbi_open(meta)");
  }

  auto get_meta = [&](std::string_view key) -> std::optional<std::string_view> {
    MDB_val k = to_val(key);
    MDB_val v;
    const int get_rc = mdb_get(txn.get(), meta_dbi_, &k, &v);
    if (get_rc == MDB_NOTFOUND) return std::nullopt;
    if (get_rc != 0) errors.lmdb(get_rc, "mdb_get(meta)");
    return to_view(v);
  };
  std::string problem;
  if (auto value = get_meta(meta_key_layout_version)) {
    const auto version = decode_layout_version(*value, &problem);
    if (!version) errors.corrupt(problem);
    if (*version != log_layout_version) {
      errors.corrupt(fmt::format("layout version {}, this build reads only {}", *version, log_layout_version));
    }
  } else {
    MDB_stat stat;
    if ((rc = mdb_stat(txn.get(), entries_dbi_, &stat)) != 0) errors.lmdb(rc, "mdb_stat");
    if (stat.ms_entries != 0 || get_meta(meta_key_hard_state) || get_meta(meta_key_snapshot_meta)) {
      errors.corrupt("records without a layout version");
    }
    const std::string version = encode_layout_version(log_layout_version);
    MDB_val k = to_val(meta_key_layout_version);
    MDB_val v = to_val(version);
    if ((rc = mdb_put(txn.get(), meta_dbi_, &k, &v, 0)) != 0) errors.lmdb(rc, "mdb_put(layout version)");
  }

  // The shape of what is stored, from the metadata and the two ends of the log; load() reads
  // and checks everything in between.
  LogShape shape;
  if (auto value = get_meta(meta_key_hard_state)) {
    auto hs = decode_hard_state(*value, &problem);
    if (!hs) errors.corrupt(problem);
    shape.hard_state = *hs;
  }
  if (auto value = get_meta(meta_key_snapshot_meta)) {
    auto record = decode_snapshot_record(*value, &problem);
    if (!record) errors.corrupt(problem);
    shape.snapshot = *record;
  }
  MDB_cursor* cursor = nullptr;
  if ((rc = mdb_cursor_open(txn.get(), entries_dbi_, &cursor)) != 0) errors.lmdb(rc, "mdb_cursor_open");
  MDB_val k, v;
  rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST);
  if (rc == 0) {
    const auto first = parse_entry_key(to_view(k));
    rc = mdb_cursor_get(cursor, &k, &v, MDB_LAST);
    const auto last = rc == 0 ? parse_entry_key(to_view(k)) : std::nullopt;
    if (!first || !last) {
      mdb_cursor_close(cursor);
      if (rc != 0) errors.lmdb(rc, "mdb_cursor_get(last)");
      errors.corrupt("an entry key is not 8 bytes");
    }
    auto entry = decode_entry(*last, to_view(v), &problem);
    mdb_cursor_close(cursor);
    if (!entry) errors.corrupt(problem);
    shape.first = *first;
    shape.last = *last;
    shape.last_term = entry->term;
  } else {
    mdb_cursor_close(cursor);
    if (rc != MDB_NOTFOUND) errors.lmdb(rc, "mdb_cursor_get(first)");
  }
  if (auto broken = check_shape(shape)) errors.corrupt(*broken);
  commit(txn, "open");
  shape_ = shape;
  // The snapshot's file must be there, whole; any other snapshot file is a leftover of a crash
  // (a .part being written, a file written but never recorded, or one replaced and not yet
  // removed).
  if (!shape.snapshot.file.empty()) {
    snapshot_file_ = SnapshotFile::open(directory_, SnapshotFileInfo{shape.snapshot.file, shape.snapshot.data_bytes,
                                                                     shape.snapshot.data_crc});
  }
  remove_snapshot_files_except(directory_, shape.snapshot.file);
}

LmdbLogStore::~LmdbLogStore() {
  if (env_ != nullptr) mdb_env_close(env_);
  if (owner_lock_fd_ >= 0) ::close(owner_lock_fd_);  // releases the flock
}

void LmdbLogStore::check_usable() const {
  if (failed_) {
    throw LogStoreError(Kind::Failed, 0,
                        fmt::format("log store {}: an earlier commit failed; restart from a fresh open",
                                    directory_));
  }
}

void LmdbLogStore::commit(Txn& txn, const char* what) {
  const int rc = txn.commit();
  if (rc != 0) {
    // Full is found while LMDB allocates pages, before it writes anything: nothing changed.
    if (failed_for_lack_of_space(rc, directory_)) {
      // The disk ran out while LMDB wrote the new pages, before any fsync or meta page: the
      // last commit is intact and a retry once space returns is safe.
      const auto free = free_disk_bytes(directory_);
      throw LogStoreError(Kind::Full, rc,
                          fmt::format("log store {}: {}: no space left on the file system ({}; {} bytes free)",
                                      directory_, what, errno_text(rc), free.value_or(0)));
    }
    // Anything else may have failed half-way through the writes or the fsync.
    if (kind_of(rc) != Kind::Full) failed_ = true;
    Errors{directory_, map_bytes_, failed_}.lmdb(rc, what);
  }
  ++commits_;
}

std::optional<raft::Term> LmdbLogStore::stored_term(Txn& txn, raft::Index index) {
  const EntryKey key = entry_key(index);
  MDB_val k = to_val(std::string_view(key.data(), key.size()));
  MDB_val v;
  const int rc = mdb_get(txn.get(), entries_dbi_, &k, &v);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  const Errors errors{directory_, map_bytes_, failed_};
  if (rc != 0) errors.lmdb(rc, "mdb_get(entry)");
  std::string problem;
  auto entry = decode_entry(index, to_view(v), &problem);
  if (!entry) errors.corrupt(problem);
  return entry->term;
}

void LmdbLogStore::truncate_from(Txn& txn, raft::Index index) {
  const Errors errors{directory_, map_bytes_, failed_};
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn.get(), entries_dbi_, &cursor);
  if (rc != 0) errors.lmdb(rc, "mdb_cursor_open");
  const EntryKey key = entry_key(index);
  MDB_val k = to_val(std::string_view(key.data(), key.size()));
  MDB_val v;
  // After a delete the cursor already stands on the following entry; MDB_NEXT then returns it.
  for (rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE); rc == 0;
       rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
    if ((rc = mdb_cursor_del(cursor, 0)) != 0) break;
  }
  mdb_cursor_close(cursor);
  if (rc != MDB_NOTFOUND) errors.lmdb(rc, "truncating the log");
}

void LmdbLogStore::append(Txn& txn, const std::vector<raft::Entry>& entries) {
  const Errors errors{directory_, map_bytes_, failed_};
  for (const raft::Entry& e : entries) {
    encode_entry(e, scratch_);
    const EntryKey key = entry_key(e.index);
    MDB_val k = to_val(std::string_view(key.data(), key.size()));
    MDB_val v = to_val(scratch_);
    // MDB_APPEND: keys arrive in order after the truncation, so LMDB skips the search and
    // fills pages completely.
    const int rc = mdb_put(txn.get(), entries_dbi_, &k, &v, MDB_APPEND);
    COORD_ASSERT(rc != MDB_KEYEXIST, "log store: appended entry does not follow the stored log");
    if (rc != 0) errors.lmdb(rc, "mdb_put(entry)");
  }
}

void LmdbLogStore::put_snapshot(Txn& txn, const SnapshotRecord& record) {
  const Errors errors{directory_, map_bytes_, failed_};
  const std::string meta = encode_snapshot_record(record);
  MDB_val k = to_val(meta_key_snapshot_meta);
  MDB_val v = to_val(meta);
  int rc = mdb_put(txn.get(), meta_dbi_, &k, &v, 0);
  if (rc != 0) errors.lmdb(rc, "mdb_put(snapshot meta)");
  // The bytes of a store written before snapshot files: replaced by the file (or by nothing).
  k = to_val(meta_key_snapshot_data);
  if ((rc = mdb_del(txn.get(), meta_dbi_, &k, nullptr)) != 0 && rc != MDB_NOTFOUND) {
    errors.lmdb(rc, "mdb_del(snapshot data)");
  }
}

std::shared_ptr<const SnapshotFile> LmdbLogStore::file_for(const raft::SnapshotMeta& meta,
                                                           const raft::SnapshotDataPtr& data) {
  return snapshot_file_for(directory_, meta.index, data);
}

void LmdbLogStore::adopt_snapshot_file(std::shared_ptr<const SnapshotFile> file) {
  if (file) file->mark_recorded();
  snapshot_file_ = std::move(file);
  remove_replaced_snapshot_files(directory_, snapshot_file_ ? snapshot_file_->info().name : std::string(),
                                 shape_.snapshot.meta.index);
}

void LmdbLogStore::write(const raft::Ready& ready) {
  check_usable();
  if (!ready.snapshot && ready.entries.empty() && !ready.hard_state) return;
  const Errors errors{directory_, map_bytes_, failed_};
  // A snapshot's bytes go to their file (fsynced and named) before the record naming it.
  std::shared_ptr<const SnapshotFile> file;
  SnapshotRecord record;
  if (ready.snapshot) {
    if (ready.snapshot->data) file = file_for(ready.snapshot->meta, ready.snapshot->data);
    record = snapshot_record_of(ready.snapshot->meta, file.get());
  }
  LogShape next = shape_;
  try {
    int rc = 0;
    Txn txn(env_, 0, rc);
    if (rc != 0) errors.lmdb(rc, "mdb_txn_begin");
    // Plan first: a Ready that breaks a storage rule is refused before anything is written.
    write_ready(txn, next, ready, ready.snapshot ? &record : nullptr);
  } catch (const LogStoreError& e) {
    if (ready.snapshot) after_failed_record(file, ready.snapshot->data, e.kind());
    throw;
  }
  shape_ = next;
  if (ready.snapshot) adopt_snapshot_file(std::move(file));
}

void LmdbLogStore::write_ready(Txn& txn, LogShape& next, const raft::Ready& ready, const SnapshotRecord* record) {
  const Errors errors{directory_, map_bytes_, failed_};
  int rc = 0;
  if (auto problem = apply_ready(next, ready, [&](raft::Index i) { return stored_term(txn, i); }, record)) {
    errors.invalid("Ready", *problem);
  }
  if (ready.snapshot) {
    // The log restarts after the snapshot: every stored entry goes, in one cheap LMDB call.
    if ((rc = mdb_drop(txn.get(), entries_dbi_, 0)) != 0) errors.lmdb(rc, "mdb_drop(entries)");
    put_snapshot(txn, next.snapshot);
  }
  if (!ready.entries.empty()) {
    truncate_from(txn, ready.entries.front().index);
    append(txn, ready.entries);
  }
  if (ready.hard_state) {
    const std::string value = encode_hard_state(*ready.hard_state);
    MDB_val k = to_val(meta_key_hard_state);
    MDB_val v = to_val(value);
    if ((rc = mdb_put(txn.get(), meta_dbi_, &k, &v, 0)) != 0) errors.lmdb(rc, "mdb_put(hard state)");
  }
  commit(txn, "commit of a Ready");
}

void LmdbLogStore::save_snapshot(const raft::SnapshotMeta& meta, raft::SnapshotDataPtr data) {
  check_usable();
  const Errors errors{directory_, map_bytes_, failed_};
  std::shared_ptr<const SnapshotFile> file;
  LogShape next = shape_;
  try {
    int rc = 0;
    Txn txn(env_, 0, rc);
    if (rc != 0) errors.lmdb(rc, "mdb_txn_begin");
    // Refused before any bytes are written when it breaks a rule.
    SnapshotRecord planned = snapshot_record_of(meta, nullptr);
    planned.has_data = data != nullptr;  // the stored snapshot may be saved again only with bytes
    if (auto problem = apply_save_snapshot(next, planned, [&](raft::Index i) { return stored_term(txn, i); })) {
      errors.invalid("save_snapshot", *problem);
    }
    if (data) file = file_for(meta, data);
    next.snapshot = snapshot_record_of(meta, file.get());
    put_snapshot(txn, next.snapshot);
    commit(txn, "commit of a snapshot");
  } catch (const LogStoreError& e) {
    after_failed_record(file, data, e.kind());
    throw;
  }
  shape_ = next;
  adopt_snapshot_file(std::move(file));
}

void LmdbLogStore::drop_prefix(raft::Index through) {
  check_usable();
  const Errors errors{directory_, map_bytes_, failed_};
  LogShape next = shape_;
  if (auto problem = apply_drop_prefix(next, through)) errors.invalid("drop_prefix", *problem);
  if (next == shape_) return;  // nothing stored that far back: no transaction, no fsync

  int rc = 0;
  Txn txn(env_, 0, rc);
  if (rc != 0) errors.lmdb(rc, "mdb_txn_begin");
  MDB_cursor* cursor = nullptr;
  if ((rc = mdb_cursor_open(txn.get(), entries_dbi_, &cursor)) != 0) errors.lmdb(rc, "mdb_cursor_open");
  MDB_val k, v;
  std::optional<raft::Index> index;
  for (rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
    index = parse_entry_key(to_view(k));
    if (!index || *index > through) break;
    if ((rc = mdb_cursor_del(cursor, 0)) != 0) break;
  }
  mdb_cursor_close(cursor);
  if (rc != 0 && rc != MDB_NOTFOUND) errors.lmdb(rc, "dropping the log prefix");
  if (rc == 0 && !index) errors.corrupt("an entry key is not 8 bytes");
  commit(txn, "commit of a prefix drop");
  shape_ = next;
}

raft::RestoreState LmdbLogStore::load() {
  check_usable();
  const Errors errors{directory_, map_bytes_, failed_};
  int rc = 0;
  Txn txn(env_, MDB_RDONLY, rc);
  if (rc != 0) errors.lmdb(rc, "mdb_txn_begin(read)");
  auto get_meta = [&](std::string_view key) -> std::optional<std::string_view> {
    MDB_val k = to_val(key);
    MDB_val v;
    const int get_rc = mdb_get(txn.get(), meta_dbi_, &k, &v);
    if (get_rc == MDB_NOTFOUND) return std::nullopt;
    if (get_rc != 0) errors.lmdb(get_rc, "mdb_get(meta)");
    return to_view(v);
  };

  std::string problem;
  LogShape shape;
  raft::RestoreState state;
  if (auto value = get_meta(meta_key_hard_state)) {
    auto hs = decode_hard_state(*value, &problem);
    if (!hs) errors.corrupt(problem);
    shape.hard_state = *hs;
  }
  if (auto value = get_meta(meta_key_snapshot_meta)) {
    auto record = decode_snapshot_record(*value, &problem);
    if (!record) errors.corrupt(problem);
    shape.snapshot = *record;
  }
  const SnapshotRecord& snapshot = shape.snapshot;
  const auto data = get_meta(meta_key_snapshot_data);
  if (!snapshot.file.empty()) {
    // In a file of its own, mapped at open (which checked its size): not read here. Its
    // checksum is checked by whoever reads it whole (SnapshotFile::verify).
    if (data) errors.corrupt("snapshot data both in the log and in file " + snapshot.file);
    COORD_ASSERT(snapshot_file_ != nullptr, "log store: the snapshot file is not open");
    state.snapshot_data = snapshot_file_;
  } else if (data.has_value() != snapshot.has_data) {
    errors.corrupt(snapshot.has_data ? "snapshot data missing" : "snapshot data without a snapshot");
  }
  if (data) {
    const std::uint64_t bytes = data->size();
    const std::uint32_t crc = crc32c(*data);
    if (bytes != snapshot.data_bytes || crc != snapshot.data_crc) {
      errors.corrupt(fmt::format("snapshot data at {}: {} bytes with checksum {:#010x}, recorded {} "
                                 "bytes with checksum {:#010x}",
                                 snapshot.meta.index, bytes, crc, snapshot.data_bytes, snapshot.data_crc));
    }
    state.snapshot_data = raft::snapshot_bytes(std::string(*data));
  }

  MDB_cursor* cursor = nullptr;
  if ((rc = mdb_cursor_open(txn.get(), entries_dbi_, &cursor)) != 0) errors.lmdb(rc, "mdb_cursor_open");
  MDB_val k, v;
  raft::Term prev_term = 0;
  for (rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
    const auto index = parse_entry_key(to_view(k));
    if (!index) {
      problem = fmt::format("an entry key of {} bytes (expected 8)", k.mv_size);
      break;
    }
    auto entry = decode_entry(*index, to_view(v), &problem);
    if (!entry) break;
    if (shape.last != 0 && *index != shape.last + 1) {
      problem = fmt::format("entry {} follows entry {}: the log has a gap", *index, shape.last);
      break;
    }
    if (entry->term < prev_term) {
      problem = fmt::format("entry {} has term {}, below the term {} before it", *index, entry->term, prev_term);
      break;
    }
    if (*index == snapshot.meta.index && entry->term != snapshot.meta.term) {
      problem = fmt::format("entry {} has term {}, but the snapshot there has term {}", *index,
                            entry->term, snapshot.meta.term);
      break;
    }
    if (shape.last == 0) shape.first = *index;
    shape.last = *index;
    shape.last_term = prev_term = entry->term;
    if (*index > snapshot.meta.index) state.entries.push_back(std::move(*entry));
  }
  mdb_cursor_close(cursor);
  if (!problem.empty()) errors.corrupt(problem);
  if (rc != MDB_NOTFOUND) errors.lmdb(rc, "reading the log");
  if (auto broken = check_shape(shape)) errors.corrupt(*broken);

  // What was read back must be what this store believes it wrote.
  COORD_ASSERT(shape == shape_, "log store: the log read back differs from the one written");
  state.hard_state = shape.hard_state;
  state.snapshot = snapshot.meta;
  state.applied = snapshot.meta.index;
  return state;
}

std::vector<raft::Entry> LmdbLogStore::read_entries(raft::Index lo, raft::Index hi, std::size_t max_bytes) const {
  // Touches neither shape_ nor failed_ (the disk thread's while a write is in flight), only
  // LMDB, whose read transactions run beside a writer on another thread.
  bool failed = false;
  const Errors errors{directory_, map_bytes_, failed};
  int rc = 0;
  Txn txn(env_, MDB_RDONLY, rc);
  if (rc != 0) errors.lmdb(rc, "mdb_txn_begin(read)");
  MDB_cursor* cursor = nullptr;
  if ((rc = mdb_cursor_open(txn.get(), entries_dbi_, &cursor)) != 0) errors.lmdb(rc, "mdb_cursor_open");
  std::vector<raft::Entry> out;
  std::string problem;
  std::size_t bytes = 0;
  const EntryKey first = entry_key(lo);
  MDB_val k = to_val(std::string_view(first.data(), first.size()));
  MDB_val v;
  for (rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_KEY); rc == 0 && lo + out.size() < hi;
       rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
    const auto index = parse_entry_key(to_view(k));
    if (!index || *index != lo + out.size()) {
      problem = fmt::format("reading entries from {}: found key {} where entry {} belongs", lo,
                            index ? std::to_string(*index) : std::string("(malformed)"), lo + out.size());
      break;
    }
    auto entry = decode_entry(*index, to_view(v), &problem);
    if (!entry) break;
    bytes += entry->data.size();
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(std::move(*entry));
  }
  mdb_cursor_close(cursor);
  if (!problem.empty()) errors.corrupt(problem);
  if (rc != 0 && rc != MDB_NOTFOUND) errors.lmdb(rc, "reading entries");
  return out;
}

LogStoreStats LmdbLogStore::stats() const {
  LogStoreStats stats;
  stats.first_index = shape_.first;
  stats.last_index = shape_.last_index();
  stats.entry_count = shape_.entry_count();
  stats.snapshot_bytes = shape_.snapshot.data_bytes;
  stats.map_bytes = map_bytes_;
  stats.commits = commits_;
  MDB_envinfo info;
  MDB_stat stat;
  if (mdb_env_info(env_, &info) == 0 && mdb_env_stat(env_, &stat) == 0) {
    stats.used_bytes = (static_cast<std::uint64_t>(info.me_last_pgno) + 1) * stat.ms_psize;
  }
  return stats;
}

}  // namespace coord::storage
