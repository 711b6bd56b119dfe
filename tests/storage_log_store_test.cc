// The LMDB log store: Ready sequences round-trip (truncation, snapshot replace, compaction), a
// reopened store gives back the same RestoreState, storage rules are refused without side
// effects, damage is reported with the index, and a process killed at a random moment leaves a
// consistent log holding every Ready it had reported written.
#include <doctest/doctest.h>
#include <lmdb.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "storage/crc32c.h"
#include "storage/lmdb_log_store.h"
#include "storage/log_records.h"
#include "storage/snapshot_file.h"

namespace raft = coord::raft;
using coord::storage::LmdbLogStore;
using coord::storage::LogStoreError;
using Kind = coord::storage::LogStoreError::Kind;

namespace {

// A directory under /tmp for one test, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/coord-storage-test-XXXXXX";
    const char* made = ::mkdtemp(pattern);
    REQUIRE(made != nullptr);
    path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string store() const { return path_ + "/log"; }

 private:
  std::string path_;
};

raft::Entry entry(raft::Index index, raft::Term term, std::string data = {},
                  raft::EntryType type = raft::EntryType::Normal) {
  return raft::Entry{term, index, type, std::move(data)};
}

std::vector<raft::Entry> entries(raft::Index first, raft::Index last, raft::Term term) {
  std::vector<raft::Entry> out;
  for (raft::Index i = first; i <= last; ++i) out.push_back(entry(i, term, "cmd" + std::to_string(i)));
  return out;
}

raft::Ready ready(std::vector<raft::Entry> es, std::optional<raft::HardState> hs = std::nullopt) {
  raft::Ready rd;
  rd.entries = std::move(es);
  rd.hard_state = hs;
  return rd;
}

raft::SnapshotMeta meta(raft::Index index, raft::Term term, std::vector<raft::NodeId> voters = {1, 2, 3}) {
  raft::SnapshotMeta m;
  m.index = index;
  m.term = term;
  m.conf.voters = std::move(voters);
  return m;
}

raft::Ready snapshot_ready(raft::SnapshotMeta m, std::string data, raft::HardState hs) {
  raft::Ready rd;
  rd.snapshot = raft::Snapshot{std::move(m), raft::snapshot_bytes(std::move(data))};
  rd.hard_state = hs;
  return rd;
}

raft::Ready snapshot_ready_with(raft::SnapshotMeta m, raft::SnapshotDataPtr data, raft::HardState hs) {
  raft::Ready rd;
  rd.snapshot = raft::Snapshot{std::move(m), std::move(data)};
  rd.hard_state = hs;
  return rd;
}

void check_same(const raft::RestoreState& a, const raft::RestoreState& b) {
  CHECK(a.hard_state == b.hard_state);
  CHECK(a.snapshot == b.snapshot);
  CHECK(a.entries == b.entries);
  CHECK(a.applied == b.applied);
  CHECK(static_cast<bool>(a.snapshot_data) == static_cast<bool>(b.snapshot_data));
  if (a.snapshot_data && b.snapshot_data) CHECK(a.snapshot_data->bytes() == b.snapshot_data->bytes());
}

std::vector<raft::Index> indices(const std::vector<raft::Entry>& es) {
  std::vector<raft::Index> out;
  for (const raft::Entry& e : es) out.push_back(e.index);
  return out;
}

template <typename F>
LogStoreError expect_error(F&& f) {
  try {
    f();
  } catch (const LogStoreError& e) {
    return e;
  }
  FAIL("expected a LogStoreError");
  return LogStoreError(Kind::Io, 0, "unreachable");
}

// Rewrites one raw value behind the store's back, as a disk or a bug would.
void poke(const std::string& dir, const char* db, std::string_view key,
          const std::function<void(std::string&)>& change) {
  MDB_env* env = nullptr;
  REQUIRE(mdb_env_create(&env) == 0);
  REQUIRE(mdb_env_set_maxdbs(env, 2) == 0);
  REQUIRE(mdb_env_set_mapsize(env, coord::storage::log_map_bytes_default) == 0);
  REQUIRE(mdb_env_open(env, dir.c_str(), 0, 0644) == 0);
  MDB_txn* txn = nullptr;
  REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
  MDB_dbi dbi;
  REQUIRE(mdb_dbi_open(txn, db, 0, &dbi) == 0);
  MDB_val k{key.size(), const_cast<char*>(key.data())};
  MDB_val v;
  REQUIRE(mdb_get(txn, dbi, &k, &v) == 0);
  std::string value(static_cast<const char*>(v.mv_data), v.mv_size);
  change(value);
  v = MDB_val{value.size(), value.data()};
  REQUIRE(mdb_put(txn, dbi, &k, &v, 0) == 0);
  REQUIRE(mdb_txn_commit(txn) == 0);
  mdb_env_close(env);
}

std::string entry_key_string(raft::Index index) {
  const auto key = coord::storage::entry_key(index);
  return std::string(key.data(), key.size());
}

}  // namespace

TEST_CASE("log store: crc32c matches the standard check value") {
  CHECK(coord::storage::crc32c("123456789") == 0xE3069283u);
  CHECK(coord::storage::crc32c("") == 0u);
  const std::string text = "The quick brown fox jumps over the lazy dog, twice over.";
  CHECK(coord::storage::crc32c(text.substr(20), coord::storage::crc32c(text.substr(0, 20))) ==
        coord::storage::crc32c(text));
}

TEST_CASE("log store: a fresh store loads empty") {
  TempDir dir;
  auto store = LmdbLogStore::open(dir.store());
  const raft::RestoreState state = store->load();
  CHECK(state.hard_state == raft::HardState{});
  CHECK(state.snapshot == raft::SnapshotMeta{});
  CHECK(state.snapshot_data == nullptr);
  CHECK(state.entries.empty());
  CHECK(store->last_index() == 0);
  CHECK(store->stats().entry_count == 0);
}

TEST_CASE("log store: Readys round-trip and one Ready is one commit") {
  TempDir dir;
  auto store = LmdbLogStore::open(dir.store());
  const std::uint64_t commits = store->stats().commits;
  store->write(ready(entries(1, 5, 1), raft::HardState{1, 1, 0}));
  CHECK(store->stats().commits == commits + 1);
  store->write(ready(entries(6, 50, 1), raft::HardState{1, 1, 5}));
  CHECK(store->stats().commits == commits + 2);  // 45 entries, one transaction
  store->write(ready({}, raft::HardState{1, 1, 40}));
  CHECK(store->stats().commits == commits + 3);

  raft::Ready nothing;  // messages, committed entries and reads are not storage's business
  nothing.messages.push_back(raft::Message{});
  nothing.committed = entries(1, 2, 1);
  store->write(nothing);
  CHECK(store->stats().commits == commits + 3);

  const raft::RestoreState state = store->load();
  CHECK(state.hard_state == raft::HardState{1, 1, 40});
  CHECK(state.entries == entries(1, 50, 1));
  CHECK(store->first_index() == 1);
  CHECK(store->last_index() == 50);
  const auto stats = store->stats();
  CHECK(stats.entry_count == 50);
  CHECK(stats.used_bytes > 0);
  CHECK(stats.map_bytes == coord::storage::log_map_bytes_default);
}

TEST_CASE("log store: entries with binary data and conf changes keep every byte") {
  TempDir dir;
  auto store = LmdbLogStore::open(dir.store());
  std::string binary(1000, '\0');
  for (std::size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<char>(i * 7);
  std::vector<raft::Entry> es{entry(1, 1), entry(2, 1, binary, raft::EntryType::ConfChange),
                              entry(3, 2, std::string(300'000, 'x'))};
  store->write(ready(es, raft::HardState{2, 0, 3}));
  CHECK(store->load().entries == es);
}

TEST_CASE("log store: a conflicting suffix is truncated and rewritten") {
  TempDir dir;
  auto store = LmdbLogStore::open(dir.store());
  store->write(ready(entries(1, 10, 1), raft::HardState{1, 2, 4}));
  // A new leader at term 2 overwrites 6..10 with a shorter suffix.
  store->write(ready(entries(6, 7, 2), raft::HardState{2, 0, 4}));
  std::vector<raft::Entry> expected = entries(1, 5, 1);
  for (const raft::Entry& e : entries(6, 7, 2)) expected.push_back(e);
  CHECK(store->load().entries == expected);
  CHECK(store->last_index() == 7);
  CHECK(store->stats().entry_count == 7);
  // Appending right after the new end works; the old 8..10 are gone for good.
  store->write(ready(entries(8, 8, 2)));
  CHECK(indices(store->load().entries) == std::vector<raft::Index>{1, 2, 3, 4, 5, 6, 7, 8});
}

TEST_CASE("log store: a snapshot in a Ready replaces the log") {
  TempDir dir;
  auto store = LmdbLogStore::open(dir.store());
  store->write(ready(entries(1, 10, 1), raft::HardState{1, 1, 3}));
  raft::Ready rd = snapshot_ready(meta(20, 2), "state at 20", raft::HardState{2, 0, 20});
  rd.entries = entries(21, 22, 2);  // entries may follow the snapshot in the same Ready
  store->write(rd);
  const raft::RestoreState state = store->load();
  CHECK(state.snapshot == meta(20, 2));
  REQUIRE(state.snapshot_data != nullptr);
  CHECK(state.snapshot_data->bytes() == "state at 20");
  CHECK(state.applied == 20);
  CHECK(state.entries == entries(21, 22, 2));
  CHECK(store->first_index() == 21);
  CHECK(store->stats().snapshot_bytes == 11);
}

TEST_CASE("log store: a snapshot at index 0 seeds the initial configuration") {
  TempDir dir;
  {
    auto store = LmdbLogStore::open(dir.store());
    raft::Ready rd;
    rd.snapshot = raft::Snapshot{meta(0, 0, {1, 2, 3}), nullptr};
    store->write(rd);
  }
  auto store = LmdbLogStore::open(dir.store());
  const raft::RestoreState state = store->load();
  CHECK(state.snapshot.conf.voters == std::vector<raft::NodeId>{1, 2, 3});
  CHECK(state.snapshot_data == nullptr);
}

TEST_CASE("log store: compaction saves a snapshot, then drops the prefix") {
  TempDir dir;
  auto store = LmdbLogStore::open(dir.store());
  store->write(ready(entries(1, 100, 1), raft::HardState{1, 1, 80}));
  const std::uint64_t commits = store->stats().commits;
  store->save_snapshot(meta(80, 1), raft::snapshot_bytes("sm@80"));
  // Between the two steps the log still holds everything; a restart skips what is covered.
  raft::RestoreState state = store->load();
  CHECK(state.snapshot == meta(80, 1));
  CHECK(indices(state.entries).front() == 81);
  CHECK(store->first_index() == 1);

  store->drop_prefix(75);  // keep a few for lagging followers
  CHECK(store->first_index() == 76);
  CHECK(store->stats().entry_count == 25);
  CHECK(store->stats().commits == commits + 2);
  state = store->load();
  CHECK(state.entries == entries(81, 100, 1));
  CHECK(state.snapshot_data->bytes() == "sm@80");

  store->drop_prefix(80);
  CHECK(store->first_index() == 81);
  store->drop_prefix(80);  // nothing left to drop: no transaction
  CHECK(store->stats().commits == commits + 3);

  // Compacting the whole log leaves only the snapshot; the log continues after it.
  store->write(ready({}, raft::HardState{1, 1, 100}));
  store->save_snapshot(meta(100, 1), raft::snapshot_bytes("sm@100"));
  store->drop_prefix(100);
  CHECK(store->first_index() == 0);
  CHECK(store->last_index() == 100);
  store->write(ready(entries(101, 102, 1)));
  CHECK(store->load().entries == entries(101, 102, 1));
}

TEST_CASE("log store: reopening gives the same RestoreState") {
  TempDir dir;
  raft::RestoreState before;
  {
    auto store = LmdbLogStore::open(dir.store());
    store->write(ready(entries(1, 30, 1), raft::HardState{1, 3, 10}));
    store->write(ready(entries(25, 40, 2), raft::HardState{2, 2, 20}));
    store->save_snapshot(meta(20, 1), raft::snapshot_bytes(std::string(5000, 's')));
    store->drop_prefix(15);
    before = store->load();
  }
  auto store = LmdbLogStore::open(dir.store());
  check_same(store->load(), before);
  CHECK(store->first_index() == 16);
  CHECK(store->last_index() == 40);
  CHECK(store->hard_state() == raft::HardState{2, 2, 20});
}

TEST_CASE("log store: writes that break a storage rule are refused and change nothing") {
  TempDir dir;
  auto store = LmdbLogStore::open(dir.store());
  store->write(ready(entries(1, 10, 2), raft::HardState{2, 1, 5}));
  store->save_snapshot(meta(3, 2), raft::snapshot_bytes("s"));
  const raft::RestoreState before = store->load();
  const std::uint64_t commits = store->stats().commits;

  auto refused = [&](const std::function<void()>& f, const char* needle) {
    const LogStoreError e = expect_error(f);
    CHECK(e.kind() == Kind::Invalid);
    CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
  };
  refused([&] { store->write(ready(entries(12, 12, 2))); }, "leaves a gap");
  refused([&] { store->write(ready(entries(3, 4, 2))); }, "overwrites the snapshot");
  refused([&] { store->write(ready({entry(11, 2), entry(13, 2)})); }, "not contiguous");
  refused([&] { store->write(ready(entries(11, 11, 1))); }, "below the term");
  refused([&] { store->write(ready({}, raft::HardState{1, 1, 5})); }, "term goes back");
  refused([&] { store->write(ready({}, raft::HardState{2, 3, 5})); }, "vote changes");
  refused([&] { store->write(ready({}, raft::HardState{2, 1, 4})); }, "commit goes back");
  refused([&] { store->write(ready({}, raft::HardState{2, 1, 11})); }, "beyond the last index");
  refused([&] { store->write(ready(entries(5, 5, 2), raft::HardState{2, 1, 6})); }, "beyond the last index");
  refused([&] { store->write(ready(entries(11, 11, 3))); }, "hard state's term");
  refused([&] { store->write(snapshot_ready(meta(2, 2), "old", raft::HardState{2, 1, 5})); }, "older");
  refused([&] { store->save_snapshot(meta(3, 2), nullptr); }, "not after");
  refused([&] { store->save_snapshot(meta(8, 1), nullptr); }, "does not match");
  refused([&] { store->save_snapshot(meta(20, 2), nullptr); }, "does not match");
  refused([&] { store->drop_prefix(4); }, "only covers 3");

  CHECK(store->stats().commits == commits);
  CHECK_FALSE(store->failed());
  check_same(store->load(), before);
  store->write(ready(entries(11, 11, 2)));  // and it still takes valid writes
  CHECK(store->last_index() == 11);
}

TEST_CASE("log store: a second open of the same directory is refused") {
  TempDir dir;
  auto store = LmdbLogStore::open(dir.store());
  const LogStoreError e = expect_error([&] { LmdbLogStore::open(dir.store()); });
  CHECK(e.kind() == Kind::InUse);
  store.reset();
  CHECK(LmdbLogStore::open(dir.store()) != nullptr);
}

TEST_CASE("log store: an unusable directory is an Io error") {
  const LogStoreError e = expect_error([] { LmdbLogStore::open("/nonexistent-parent/coord/log"); });
  CHECK(e.kind() == Kind::Io);
  CHECK(e.code() == ENOENT);
}

TEST_CASE("log store: a full map is a clear error and leaves the store usable") {
  TempDir dir;
  coord::storage::LogStoreOptions options;
  options.map_bytes = std::size_t{1} << 20;
  auto store = LmdbLogStore::open(dir.store(), options);
  raft::Index next = 1;
  std::optional<LogStoreError> full;
  for (int i = 0; i < 100 && !full; ++i) {
    try {
      store->write(ready({entry(next, 1, std::string(64 << 10, 'f'))}, raft::HardState{1, 0, 0}));
      ++next;
    } catch (const LogStoreError& e) {
      full = e;
    }
  }
  REQUIRE(full.has_value());
  CHECK(full->kind() == Kind::Full);
  CHECK(full->code() == MDB_MAP_FULL);
  CHECK(std::string(full->what()).find("MDB_MAP_FULL") != std::string::npos);
  CHECK_FALSE(store->failed());
  CHECK(store->last_index() == next - 1);
  CHECK(store->load().entries.size() == next - 1);
  // Compaction makes room again.
  store->save_snapshot(meta(next - 1, 1), nullptr);
  store->drop_prefix(next - 1);
  store->write(ready({entry(next, 1, "fits again")}));
  CHECK(store->load().entries == std::vector<raft::Entry>{entry(next, 1, "fits again")});
}

TEST_CASE("log store: a damaged entry is reported with its index") {
  TempDir dir;
  {
    auto store = LmdbLogStore::open(dir.store());
    store->write(ready(entries(1, 10, 1), raft::HardState{1, 1, 5}));
  }
  SUBCASE("a flipped data byte in the middle of the log") {
    poke(dir.store(), "entries", entry_key_string(7), [](std::string& v) { v.back() ^= 0x01; });
    auto store = LmdbLogStore::open(dir.store());  // open reads only the ends of the log
    const LogStoreError e = expect_error([&] { store->load(); });
    CHECK(e.kind() == Kind::Corrupt);
    CHECK_MESSAGE(std::string(e.what()).find("entry 7: checksum mismatch") != std::string::npos, e.what());
  }
  SUBCASE("a flipped term byte in the last entry fails the open") {
    poke(dir.store(), "entries", entry_key_string(10), [](std::string& v) { v[5] ^= 0x40; });
    const LogStoreError e = expect_error([&] { LmdbLogStore::open(dir.store()); });
    CHECK(e.kind() == Kind::Corrupt);
    CHECK_MESSAGE(std::string(e.what()).find("entry 10") != std::string::npos, e.what());
  }
  SUBCASE("a value moved under another key") {
    std::string value_of_3;
    poke(dir.store(), "entries", entry_key_string(3), [&](std::string& v) { value_of_3 = v; });
    poke(dir.store(), "entries", entry_key_string(4), [&](std::string& v) { v = value_of_3; });
    auto store = LmdbLogStore::open(dir.store());
    const LogStoreError e = expect_error([&] { store->load(); });
    CHECK_MESSAGE(std::string(e.what()).find("entry 4") != std::string::npos, e.what());
  }
  SUBCASE("a truncated value") {
    poke(dir.store(), "entries", entry_key_string(2), [](std::string& v) { v.resize(3); });
    auto store = LmdbLogStore::open(dir.store());
    const LogStoreError e = expect_error([&] { store->load(); });
    CHECK_MESSAGE(std::string(e.what()).find("entry 2") != std::string::npos, e.what());
  }
  SUBCASE("a damaged hard state") {
    poke(dir.store(), "meta", coord::storage::meta_key_hard_state, [](std::string& v) { v[12] ^= 1; });
    const LogStoreError e = expect_error([&] { LmdbLogStore::open(dir.store()); });
    CHECK(e.kind() == Kind::Corrupt);
    CHECK_MESSAGE(std::string(e.what()).find("hard state") != std::string::npos, e.what());
  }
}

TEST_CASE("log store: entries are read back by range and byte limit, as the core slices its log") {
  TempDir dir;
  auto store = LmdbLogStore::open(dir.store());
  store->write(ready(entries(1, 20, 1), raft::HardState{1, 1, 0}));
  store->write(ready(entries(21, 30, 2), raft::HardState{2, 1, 0}));
  // "cmd1".."cmd9" are 4 bytes, "cmd10".. 5.
  auto got = store->read_entries(5, 12, std::size_t{1} << 20);
  REQUIRE(got.size() == 7);
  CHECK(got.front() == entry(5, 1, "cmd5"));
  CHECK(got.back() == entry(11, 1, "cmd11"));
  CHECK(store->read_entries(18, 40, 1000).size() == 13);  // to the log's end
  CHECK(store->read_entries(25, 26, 0).size() == 1);        // at least one
  CHECK(store->read_entries(1, 30, 12).size() == 3);        // 4 + 4 + 4, a fourth would pass 12
  CHECK(store->read_entries(31, 40, 100).empty());         // beyond the end
  store->save_snapshot(meta(10, 1), raft::snapshot_bytes("state"));
  store->drop_prefix(10);
  CHECK(store->read_entries(5, 12, 100).empty());  // compacted
  CHECK(store->read_entries(11, 12, 100) == std::vector<raft::Entry>{entry(11, 1, "cmd11")});
}

TEST_CASE("log store: a damaged entry read back is a Corrupt error naming it") {
  TempDir dir;
  {
    auto store = LmdbLogStore::open(dir.store());
    store->write(ready(entries(1, 10, 1), raft::HardState{1, 1, 5}));
  }
  poke(dir.store(), "entries", entry_key_string(7), [](std::string& v) { v.back() ^= 0x01; });
  auto store = LmdbLogStore::open(dir.store());
  CHECK(store->read_entries(1, 7, 100).size() == 6);
  const LogStoreError e = expect_error([&] { store->read_entries(5, 9, 100); });
  CHECK(e.kind() == Kind::Corrupt);
  CHECK_MESSAGE(std::string(e.what()).find("entry 7: checksum mismatch") != std::string::npos, e.what());
}

TEST_CASE("log store: unknown layouts are refused") {
  TempDir dir;
  {
    auto store = LmdbLogStore::open(dir.store());
    store->write(snapshot_ready(meta(5, 1), "snapshot bytes", raft::HardState{1, 0, 5}));
  }
  poke(dir.store(), "meta", coord::storage::meta_key_layout_version,
       [](std::string& v) { v = coord::storage::encode_layout_version(99); });
  const LogStoreError e = expect_error([&] { LmdbLogStore::open(dir.store()); });
  CHECK(e.kind() == Kind::Corrupt);
  CHECK_MESSAGE(std::string(e.what()).find("layout version 99") != std::string::npos, e.what());
}

// ---------------------------------------------------------------------------------------------
// Snapshot files (storage/snapshot_file.h): the bytes live beside data.mdb, the log records
// their name, size and checksum.

namespace {

// The snapshot files in a store's directory, finished or not.
std::vector<std::string> snapshot_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (coord::storage::is_snapshot_file_name(name)) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("log store: snapshot bytes are a file of their own, not an LMDB value") {
  TempDir dir;
  const std::string big(3 << 20, 'x');  // larger than a piece, to cover the loops
  {
    auto store = LmdbLogStore::open(dir.store());
    store->write(snapshot_ready(meta(5, 1), big, raft::HardState{1, 0, 5}));
    const auto files = snapshot_files(dir.store());
    REQUIRE(files.size() == 1);
    CHECK(std::filesystem::file_size(dir.store() + "/" + files[0]) == big.size());
    REQUIRE(store->snapshot_file() != nullptr);
    CHECK(store->snapshot_file()->info().name == files[0]);
    // The LMDB environment stays small: it holds the record, not the bytes.
    CHECK(store->stats().used_bytes < big.size() / 4);
  }
  {
    auto store = LmdbLogStore::open(dir.store());
    const raft::RestoreState state = store->load();
    REQUIRE(state.snapshot_data != nullptr);
    CHECK(state.snapshot_data->bytes() == big);
    CHECK(std::dynamic_pointer_cast<const coord::storage::SnapshotFile>(state.snapshot_data) != nullptr);
    // A newer snapshot replaces the file; the old one goes only after the new record committed.
    store->write(ready(entries(6, 9, 1), raft::HardState{1, 0, 9}));
    store->save_snapshot(meta(9, 1), raft::snapshot_bytes("state at 9"));
    const auto files = snapshot_files(dir.store());
    REQUIRE(files.size() == 1);
    CHECK(files[0] == store->snapshot_file()->info().name);
    // The old mapping stays readable after its file is removed (a transfer may be using it).
    CHECK(state.snapshot_data->bytes() == big);
  }
  auto store = LmdbLogStore::open(dir.store());
  CHECK(store->load().snapshot_data->bytes() == "state at 9");
}

TEST_CASE("log store: a file the host wrote is recorded as it is, without a copy") {
  TempDir dir;
  auto store = LmdbLogStore::open(dir.store());
  store->write(ready(entries(1, 10, 1), raft::HardState{1, 0, 10}));
  coord::storage::SnapshotFileWriter writer(dir.store(), 10);
  writer.append("part one, ");
  writer.append("part two");
  const auto file = coord::storage::SnapshotFile::open(dir.store(), writer.finish());
  store->save_snapshot(meta(10, 1), file);
  CHECK(store->snapshot_file() == file);
  CHECK(snapshot_files(dir.store()) == std::vector<std::string>{file->info().name});
  store.reset();
  store = LmdbLogStore::open(dir.store());
  CHECK(store->load().snapshot_data->bytes() == "part one, part two");
}

TEST_CASE("log store: leftovers of a crash are removed at open, the recorded file kept") {
  TempDir dir;
  std::string recorded;
  {
    auto store = LmdbLogStore::open(dir.store());
    store->write(snapshot_ready(meta(5, 1), "recorded", raft::HardState{1, 0, 5}));
    recorded = store->snapshot_file()->info().name;
    // Killed while writing a newer snapshot, and after writing one it never recorded.
    coord::storage::SnapshotFileWriter unfinished(dir.store(), 7);
    unfinished.append("half");
    std::filesystem::copy_file(dir.store() + "/" + recorded, dir.store() + "/" + recorded + ".part");
    coord::storage::SnapshotFileWriter unrecorded(dir.store(), 6);
    unrecorded.append("never recorded");
    unrecorded.finish();
  }
  CHECK(snapshot_files(dir.store()).size() == 3);
  auto store = LmdbLogStore::open(dir.store());
  CHECK(snapshot_files(dir.store()) == std::vector<std::string>{recorded});
  CHECK(store->load().snapshot_data->bytes() == "recorded");
}

TEST_CASE("log store: a torn, damaged or missing snapshot file is refused, naming the file") {
  TempDir dir;
  std::string path;
  {
    auto store = LmdbLogStore::open(dir.store());
    store->write(snapshot_ready(meta(5, 1), std::string(10000, 's'), raft::HardState{1, 0, 5}));
    path = store->snapshot_file()->path();
  }
  SUBCASE("torn: shorter than recorded") {
    std::filesystem::resize_file(path, 4096);
    const LogStoreError e = expect_error([&] { LmdbLogStore::open(dir.store()); });
    CHECK(e.kind() == Kind::Corrupt);
    CHECK_MESSAGE(std::string(e.what()).find(path) != std::string::npos, e.what());
    CHECK_MESSAGE(std::string(e.what()).find("4096 bytes, the log records 10000") != std::string::npos, e.what());
  }
  SUBCASE("missing") {
    std::filesystem::remove(path);
    const LogStoreError e = expect_error([&] { LmdbLogStore::open(dir.store()); });
    CHECK(e.kind() == Kind::Corrupt);
    CHECK_MESSAGE(std::string(e.what()).find(path) != std::string::npos, e.what());
    CHECK_MESSAGE(std::string(e.what()).find("missing") != std::string::npos, e.what());
  }
  SUBCASE("damaged: a flipped byte, found by whoever reads it whole") {
    {
      std::FILE* f = std::fopen(path.c_str(), "r+b");
      REQUIRE(f != nullptr);
      REQUIRE(std::fseek(f, 7000, SEEK_SET) == 0);
      REQUIRE(std::fputc('t', f) == 't');
      REQUIRE(std::fclose(f) == 0);
    }
    auto store = LmdbLogStore::open(dir.store());  // opening reads no byte of it
    const raft::RestoreState state = store->load();
    const auto file = std::dynamic_pointer_cast<const coord::storage::SnapshotFile>(state.snapshot_data);
    REQUIRE(file != nullptr);
    const LogStoreError e = expect_error([&] { file->verify(); });
    CHECK(e.kind() == Kind::Corrupt);
    CHECK_MESSAGE(std::string(e.what()).find(path) != std::string::npos, e.what());
    CHECK_MESSAGE(std::string(e.what()).find("checksum") != std::string::npos, e.what());
  }
  SUBCASE("intact: verify passes") {
    auto store = LmdbLogStore::open(dir.store());
    CHECK_NOTHROW(store->snapshot_file()->verify());
  }
}

TEST_CASE("log store: the snapshot record names its file, records of older builds still decode") {
  coord::storage::SnapshotRecord record;
  record.meta = meta(9, 2);
  record.has_data = true;
  record.data_bytes = 123;
  record.data_crc = 0xabcdef01;
  std::string error;
  // Without a file (how builds before snapshot files wrote it): the bytes are in snapshot_data.
  auto decoded = coord::storage::decode_snapshot_record(coord::storage::encode_snapshot_record(record), &error);
  REQUIRE_MESSAGE(decoded.has_value(), error);
  CHECK(*decoded == record);
  record.file = "snap-0000000000000009-0000000000000001.snap";
  decoded = coord::storage::decode_snapshot_record(coord::storage::encode_snapshot_record(record), &error);
  REQUIRE_MESSAGE(decoded.has_value(), error);
  CHECK(*decoded == record);
  // A record cut short is damage (its checksum says so).
  std::string cut = coord::storage::encode_snapshot_record(record);
  cut.pop_back();
  CHECK_FALSE(coord::storage::decode_snapshot_record(cut, &error).has_value());
}

// ---------------------------------------------------------------------------------------------
// Crash test: a child process writes a deterministic sequence of operations and reports each
// one after it returned; the parent kills it at a random moment and checks the reopened store
// against a model of the log after the last reported operation (or the one after it, which may
// have committed without being reported).

namespace {

// What the log must hold: the same rules as the store, in the plainest possible form.
struct Model {
  raft::HardState hard_state;
  raft::SnapshotMeta snapshot;
  raft::SnapshotDataPtr snapshot_data;
  std::deque<raft::Entry> entries;  // contiguous; may start at or below snapshot.index

  raft::Index last_index() const {
    return entries.empty() || entries.back().index < snapshot.index ? snapshot.index : entries.back().index;
  }
  raft::Term term(raft::Index i) const {
    if (!entries.empty() && i >= entries.front().index && i <= entries.back().index) {
      return entries[i - entries.front().index].term;
    }
    return i == snapshot.index ? snapshot.term : 0;
  }
  raft::RestoreState restore_state() const {
    raft::RestoreState s;
    s.hard_state = hard_state;
    s.snapshot = snapshot;
    s.snapshot_data = snapshot_data;
    for (const raft::Entry& e : entries) {
      if (e.index > snapshot.index) s.entries.push_back(e);
    }
    s.applied = snapshot.index;
    return s;
  }
};

struct Op {
  enum class Type { Write, SaveSnapshot, DropPrefix } type = Type::Write;
  raft::Ready ready;
  raft::SnapshotMeta meta;
  raft::SnapshotDataPtr data;
  raft::Index through = 0;
};

class Workload {
 public:
  explicit Workload(std::uint64_t seed) : rng_(seed) {}

  // The next operation, valid for `model`, and applies it to `model`.
  Op next(Model& model) {
    Op op;
    const std::uint64_t pick = below(100);
    const raft::Index last = model.last_index();
    raft::HardState hs = model.hard_state;
    if (pick < 8 && hs.commit > model.snapshot.index) {
      op.type = Op::Type::SaveSnapshot;
      op.meta = meta(hs.commit, model.term(hs.commit));
      op.data = raft::snapshot_bytes(bytes(4000));
      model.snapshot = op.meta;
      model.snapshot_data = op.data;
      return op;
    }
    if (pick < 16 && !model.entries.empty() && model.entries.front().index <= model.snapshot.index) {
      op.type = Op::Type::DropPrefix;
      op.through = model.snapshot.index - below(std::min<raft::Index>(model.snapshot.index, 4));
      while (!model.entries.empty() && model.entries.front().index <= op.through) model.entries.pop_front();
      return op;
    }
    if (pick < 20) {
      // A snapshot from the leader, maybe with entries after it.
      hs.term += below(2);
      if (hs.term != model.hard_state.term) hs.vote = 0;
      const raft::Index index = std::max(last, hs.commit) + 1 + below(20);
      op.ready.snapshot = raft::Snapshot{meta(index, hs.term), raft::snapshot_bytes(bytes(3000))};
      hs.commit = index;
      model.snapshot = op.ready.snapshot->meta;
      model.snapshot_data = op.ready.snapshot->data;
      model.entries.clear();
      append(op, model, index + 1, hs.term, below(3));
    } else if (pick < 30) {
      // A new term whose leader overwrites the uncommitted suffix.
      hs.term += 1;
      hs.vote = below(4);
      const raft::Index lowest = std::max(hs.commit, model.snapshot.index) + 1;
      const raft::Index first = lowest + below(last + 2 - lowest);
      append(op, model, first, hs.term, 1 + below(6));
    } else if (pick < 35) {
      hs.commit += below(last - hs.commit + 1);  // hard state only
    } else {
      append(op, model, last + 1, std::max<raft::Term>(hs.term, 1), 1 + below(12));
      if (hs.term == 0) hs.term = 1;
      hs.commit += below(model.last_index() - hs.commit + 1);
    }
    if (hs != model.hard_state) op.ready.hard_state = hs;
    model.hard_state = hs;
    return op;
  }

 private:
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  std::string bytes(std::size_t max) {
    std::string out(below(max + 1), '\0');
    for (char& c : out) c = static_cast<char>(rng_() & 0xff);
    return out;
  }
  void append(Op& op, Model& model, raft::Index first, raft::Term term, std::uint64_t count) {
    while (!model.entries.empty() && model.entries.back().index >= first) model.entries.pop_back();
    for (raft::Index i = first; i < first + count; ++i) {
      raft::Entry e = entry(i, term, bytes(rng_() % 8 == 0 ? 20'000 : 200));
      op.ready.entries.push_back(e);
      model.entries.push_back(std::move(e));
    }
  }

  std::mt19937_64 rng_;
};

void perform(LmdbLogStore& store, const Op& op) {
  switch (op.type) {
    case Op::Type::Write: store.write(op.ready); break;
    case Op::Type::SaveSnapshot: store.save_snapshot(op.meta, op.data); break;
    case Op::Type::DropPrefix: store.drop_prefix(op.through); break;
  }
}

// The child: writes until killed, reporting the number of completed operations after each.
[[noreturn]] void run_writer(const std::string& dir, std::uint64_t seed, int report_fd) {
  try {
    auto store = LmdbLogStore::open(dir);
    Model model;
    Workload workload(seed);
    for (std::uint64_t done = 1;; ++done) {
      perform(*store, workload.next(model));
      if (::write(report_fd, &done, sizeof done) != static_cast<ssize_t>(sizeof done)) ::_exit(3);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crash-test writer: %s\n", e.what());
    ::_exit(2);
  }
}

}  // namespace

TEST_CASE("log store: a process killed mid-write leaves a consistent log with every reported Ready") {
  std::mt19937_64 rng(424242);
  std::uint64_t reported_total = 0;
  for (int round = 0; round < 6; ++round) {
    CAPTURE(round);
    TempDir dir;
    const std::uint64_t seed = 1000 + static_cast<std::uint64_t>(round);
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      run_writer(dir.store(), seed, fds[1]);
    }
    ::close(fds[1]);

    // Drain reports until a random moment, then kill.
    const auto kill_after = std::chrono::milliseconds(30 + rng() % 300);
    const auto deadline = std::chrono::steady_clock::now() + kill_after;
    std::uint64_t reported = 0;
    auto read_reports = [&](int timeout_ms) {
      pollfd p{fds[0], POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) <= 0) return false;
      std::uint64_t buffer[512];
      const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
      if (n <= 0) return false;
      REQUIRE(n % static_cast<ssize_t>(sizeof(std::uint64_t)) == 0);  // 8-byte writes are atomic
      reported = buffer[n / sizeof(std::uint64_t) - 1];
      return true;
    };
    while (std::chrono::steady_clock::now() < deadline) read_reports(1);
    REQUIRE(::kill(pid, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    while (read_reports(0)) {
    }
    ::close(fds[0]);
    REQUIRE_MESSAGE((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL), "the writer died on its own");
    reported_total += reported;

    // Replay the workload to the last reported operation and the one after it.
    Model model;
    Workload workload(seed);
    for (std::uint64_t i = 0; i < reported; ++i) workload.next(model);
    const raft::RestoreState at_report = model.restore_state();
    workload.next(model);
    const raft::RestoreState one_more = model.restore_state();

    auto store = LmdbLogStore::open(dir.store());
    const raft::RestoreState state = store->load();
    for (std::size_t i = 0; i < state.entries.size(); ++i) {
      REQUIRE(state.entries[i].index == state.snapshot.index + 1 + i);  // contiguous after the snapshot
    }
    CHECK(state.hard_state.commit <= std::max(state.snapshot.index, store->last_index()));
    const bool matches_report = state.hard_state == at_report.hard_state && state.snapshot == at_report.snapshot &&
                                state.entries == at_report.entries;
    const bool matches_next = state.hard_state == one_more.hard_state && state.snapshot == one_more.snapshot &&
                              state.entries == one_more.entries;
    REQUIRE_MESSAGE((matches_report || matches_next), "the reopened log is neither the reported state nor the next one");
    check_same(state, matches_report ? at_report : one_more);
    MESSAGE("round " << round << ": killed after " << kill_after.count() << " ms, " << reported
                     << " operations reported; the log holds "
                     << std::string(matches_report ? "exactly those" : "those and one more")
                     << ", last index " << store->last_index());
    // The recovered store keeps working.
    store->write(ready({entry(store->last_index() + 1, std::max<raft::Term>(state.hard_state.term, 1))},
                       raft::HardState{std::max<raft::Term>(state.hard_state.term, 1), state.hard_state.vote,
                                       state.hard_state.commit}));
  }
  CHECK(reported_total > 0);
}

TEST_CASE("log store: a commit removes the files it replaced, not a later one still waiting for its record") {
  TempDir dir;
  auto store = LmdbLogStore::open(dir.store());
  store->write(ready(entries(1, 10, 1), raft::HardState{1, 0, 10}));
  // A follower's received snapshot at 50, renamed into place, its Ready not yet written.
  coord::storage::SnapshotFileWriter received(dir.store(), 50);
  received.append("from the leader");
  const auto later = coord::storage::SnapshotFile::open(dir.store(), received.finish(/*sync=*/false), false);
  store->save_snapshot(meta(4, 1), raft::snapshot_bytes("at 4"));
  const std::string at4 = store->snapshot_file()->info().name;
  store->save_snapshot(meta(8, 1), raft::snapshot_bytes("at 8"));
  const std::string at8 = store->snapshot_file()->info().name;
  CHECK(coord::storage::snapshot_file_index(at8) == raft::Index{8});
  auto files = snapshot_files(dir.store());
  CHECK(std::find(files.begin(), files.end(), at4) == files.end());  // replaced: removed
  CHECK(std::find(files.begin(), files.end(), at8) != files.end());
  CHECK(std::find(files.begin(), files.end(), later->info().name) != files.end());  // kept
  // Its Ready comes: the store syncs it and records it as it is.
  store->write(snapshot_ready_with(meta(50, 2), later, raft::HardState{2, 0, 50}));
  CHECK(store->snapshot_file() == later);
  CHECK(snapshot_files(dir.store()) == std::vector<std::string>{later->info().name});
  store.reset();
  CHECK(LmdbLogStore::open(dir.store())->load().snapshot_data->bytes() == "from the leader");
}

TEST_CASE("log store: a store written before snapshot files (bytes in the snapshot_data row) loads, and moves to a file") {
  TempDir dir;
  {
    auto store = LmdbLogStore::open(dir.store());
    store->write(ready(entries(1, 6, 1), raft::HardState{1, 0, 6}));
  }
  // What an older build left: the record without a file name, the bytes beside it in LMDB.
  {
    const std::string bytes = "an old snapshot";
    coord::storage::SnapshotRecord record;
    record.meta = meta(5, 1);
    record.has_data = true;
    record.data_bytes = bytes.size();
    record.data_crc = coord::storage::crc32c(bytes);
    MDB_env* env = nullptr;
    REQUIRE(mdb_env_create(&env) == 0);
    REQUIRE(mdb_env_set_maxdbs(env, 2) == 0);
    REQUIRE(mdb_env_set_mapsize(env, coord::storage::log_map_bytes_default) == 0);
    REQUIRE(mdb_env_open(env, dir.store().c_str(), 0, 0644) == 0);
    MDB_txn* txn = nullptr;
    REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
    MDB_dbi dbi;
    REQUIRE(mdb_dbi_open(txn, "meta", 0, &dbi) == 0);
    const std::string value = coord::storage::encode_snapshot_record(record);
    for (const auto& [key, v] : {std::pair<std::string_view, std::string_view>{coord::storage::meta_key_snapshot_meta, value},
                                 {coord::storage::meta_key_snapshot_data, bytes}}) {
      MDB_val k{key.size(), const_cast<char*>(key.data())};
      MDB_val mv{v.size(), const_cast<char*>(v.data())};
      REQUIRE(mdb_put(txn, dbi, &k, &mv, 0) == 0);
    }
    REQUIRE(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
  }
  auto store = LmdbLogStore::open(dir.store());
  CHECK(store->snapshot_file() == nullptr);
  const raft::RestoreState state = store->load();
  REQUIRE(state.snapshot_data != nullptr);
  CHECK(state.snapshot_data->bytes() == "an old snapshot");
  CHECK(state.snapshot.index == 5);
  // The next snapshot is a file, and the old row goes.
  store->save_snapshot(meta(6, 1), raft::snapshot_bytes("a new one"));
  REQUIRE(store->snapshot_file() != nullptr);
  store.reset();
  store = LmdbLogStore::open(dir.store());
  CHECK(store->load().snapshot_data->bytes() == "a new one");
  CHECK(snapshot_files(dir.store()).size() == 1);
}

TEST_CASE("log store: the stored snapshot saved again with new bytes replaces its file (a damaged one)") {
  TempDir dir;
  auto store = LmdbLogStore::open(dir.store());
  store->write(ready(entries(1, 10, 1), raft::HardState{1, 0, 10}));
  store->save_snapshot(meta(10, 1), raft::snapshot_bytes("state at 10"));
  const std::string damaged = store->snapshot_file()->info().name;
  // Without bytes it is still refused: the record would lose its data.
  CHECK(std::string(expect_error([&] { store->save_snapshot(meta(10, 1), nullptr); }).what()).find("not after") !=
        std::string::npos);
  // Another snapshot at that index (another term or configuration) is not the stored one.
  CHECK(expect_error([&] { store->save_snapshot(meta(10, 2), raft::snapshot_bytes("x")); }).kind() == Kind::Invalid);
  store->save_snapshot(meta(10, 1), raft::snapshot_bytes("state at 10"));
  const std::string fresh = store->snapshot_file()->info().name;
  CHECK(fresh != damaged);
  CHECK(snapshot_files(dir.store()) == std::vector<std::string>{fresh});  // the damaged file is gone
  store.reset();
  store = LmdbLogStore::open(dir.store());
  const raft::RestoreState state = store->load();
  CHECK(state.snapshot == meta(10, 1));
  CHECK(state.snapshot_data->bytes() == "state at 10");
}

TEST_CASE("log store: a just-made snapshot file nobody records removes itself, a recorded one stays") {
  TempDir dir;
  auto store = LmdbLogStore::open(dir.store());
  store->write(ready(entries(1, 10, 1), raft::HardState{1, 0, 10}));
  auto made = [&](raft::Index index, const std::string& bytes) {
    coord::storage::SnapshotFileWriter writer(dir.store(), index);
    writer.append(bytes);
    return coord::storage::SnapshotFile::open(dir.store(), writer.finish(/*sync=*/false), /*durable=*/false,
                                              /*unlink_unless_recorded=*/true);
  };
  {
    // Received, then ignored (the core's log held those entries already): it must not linger.
    auto ignored = made(50, "ignored");
    REQUIRE(snapshot_files(dir.store()).size() == 1);
  }
  CHECK(snapshot_files(dir.store()).empty());
  auto kept = made(60, "recorded");
  store->write(snapshot_ready_with(meta(60, 2), kept, raft::HardState{2, 0, 60}));
  const std::string name = kept->info().name;
  kept.reset();
  store.reset();  // the last reference: recorded, so it stays
  CHECK(snapshot_files(dir.store()) == std::vector<std::string>{name});
  CHECK(LmdbLogStore::open(dir.store())->load().snapshot_data->bytes() == "recorded");
}

TEST_CASE("log store: after a failed record, a just-made snapshot file stays unless nothing was committed") {
  TempDir dir;
  auto store = LmdbLogStore::open(dir.store());
  auto made = [&](raft::Index index) {
    coord::storage::SnapshotFileWriter writer(dir.store(), index);
    writer.append("bytes");
    return coord::storage::SnapshotFile::open(dir.store(), writer.finish(/*sync=*/true), /*durable=*/true,
                                              /*unlink_unless_recorded=*/true);
  };
  {
    // An Io failure may have committed the record naming it: it must outlive every reference
    // (the next open keeps or removes it by what the log says).
    auto file = made(70);
    coord::storage::after_failed_record(file, file, Kind::Io);
  }
  CHECK(snapshot_files(dir.store()).size() == 1);
  for (const Kind kind : {Kind::Full, Kind::Invalid}) {
    // Nothing committed: the caller's own file removes itself once dropped.
    const std::size_t before = snapshot_files(dir.store()).size();
    {
      auto file = made(80);
      coord::storage::after_failed_record(file, file, kind);
      CHECK(snapshot_files(dir.store()).size() == before + 1);
    }
    CHECK(snapshot_files(dir.store()).size() == before);
  }
  store.reset();
  // The kept file was never recorded in fact: open removes it as a leftover.
  CHECK(LmdbLogStore::open(dir.store()) != nullptr);
  CHECK(snapshot_files(dir.store()).empty());
}
