// LmdbStorage with MDB_WRITEMAP (kv/lmdb_page_room.h): the data file stays the size of its
// pages, and a full file system is a StorageError with ENOSPC that leaves the store as it was,
// never a SIGBUS. A small tmpfs makes the file system full; mounting needs root, so without it
// that case says so and passes nothing.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "kv/lmdb_storage.h"
#include "kv/storage.h"
#include "kv_test_util.h"
#include "tmpfs_mount.h"

namespace {

using namespace coord::kv;
using kvtest::TempDir;
using kvtest::test_lmdb_options;

std::uint64_t file_bytes(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return static_cast<std::uint64_t>(st.st_size);
}

std::string row_key(int i) { return fmt::format("/k/{:06}", i); }
std::string row_value(int i, std::size_t bytes) { return std::string(bytes, static_cast<char>('a' + i % 26)); }

// Writes rows [from, to) in one transaction.
void write_rows(LmdbStorage& storage, int from, int to, std::size_t bytes) {
  auto txn = storage.write();
  for (int i = from; i < to; ++i) txn->put(Table::Nodes, row_key(i), row_value(i, bytes));
  txn->commit();
}

void check_rows(LmdbStorage& storage, int from, int to, std::size_t bytes) {
  auto txn = storage.read();
  for (int i = from; i < to; ++i) {
    const auto got = txn->get(Table::Nodes, row_key(i));
    REQUIRE_MESSAGE(got.has_value(), row_key(i));
    CHECK(*got == row_value(i, bytes));
  }
}

using SmallFs = coordtest::TmpfsMount;

// A store's directory on a tmpfs of its own.
struct StoreOnSmallFs {
  explicit StoreOnSmallFs(std::size_t bytes)
      : fs(dir.path() + "/fs", bytes), options(test_lmdb_options(dir.path() + "/fs/db")) {}
  // False (and says so) without root, where the case is not run.
  bool mounted() const {
    if (!fs.mounted()) MESSAGE("cannot mount a tmpfs (" << fs.error() << "); needs root: not run");
    return fs.mounted();
  }
  TempDir dir;
  SmallFs fs;
  LmdbOptions options;
};

}  // namespace

TEST_CASE("kv lmdb write map: the data file is as big as its pages plus a little room, at open and as it grows") {
  TempDir dir;
  LmdbOptions options = test_lmdb_options(dir.path() + "/db");
  REQUIRE(options.write_map);
  const std::string file = options.directory + "/data.mdb";
  {
    LmdbStorage storage(options);
    REQUIRE(storage.write_map());
    // LMDB sizes a MDB_WRITEMAP file to the whole map (256 MiB here); it is cut back.
    CHECK(file_bytes(file) == storage.allocated_bytes());
    CHECK(file_bytes(file) < (std::uint64_t{4} << 20));
    for (int batch = 0; batch < 20; ++batch) write_rows(storage, batch * 500, (batch + 1) * 500, 1000);
    // 10,000 rows of about 1 KiB: the file grew with them, by a bounded margin.
    CHECK(file_bytes(file) == storage.allocated_bytes());
    CHECK(file_bytes(file) > (std::uint64_t{10} << 20));
    CHECK(file_bytes(file) < (std::uint64_t{40} << 20));
    check_rows(storage, 0, 10'000, 1000);
  }
  LmdbStorage reopened(options);
  check_rows(reopened, 0, 10'000, 1000);
  CHECK(file_bytes(file) < (std::uint64_t{40} << 20));
}

TEST_CASE("kv lmdb write map: one transaction far bigger than the room kept ahead gets its pages as it goes") {
  TempDir dir;
  LmdbOptions options = test_lmdb_options(dir.path() + "/db");
  LmdbStorage storage(options);
  REQUIRE(storage.write_map());
  // About 60 MiB in one transaction (as a snapshot restore writes), with values on overflow pages.
  write_rows(storage, 0, 6'000, 10'000);
  check_rows(storage, 0, 6'000, 10'000);
}

TEST_CASE("kv lmdb write map: a full file system is ENOSPC before anything changes, and writes go on once there is room") {
  StoreOnSmallFs small(std::size_t{8} << 20);
  if (!small.mounted()) return;
  SmallFs& fs = small.fs;
  LmdbOptions options = small.options;
  LmdbStorage storage(options);
  REQUIRE(storage.write_map());
  write_rows(storage, 0, 100, 1000);

  fs.fill();
  // Transactions of 64 KiB until one finds no room: with the file's blocks not allocated ahead,
  // LMDB would touch a page in a hole of the file and the process would die of SIGBUS.
  int written = 100;
  int error = 0;
  for (int attempt = 0; attempt < 200 && error == 0; ++attempt) {
    try {
      write_rows(storage, written, written + 16, 4000);
      written += 16;
    } catch (const StorageError& e) {
      error = e.code();
      CHECK_MESSAGE(e.code() == ENOSPC, e.what());
    }
  }
  REQUIRE_MESSAGE(error != 0, "200 transactions of 64 KiB fit on a full 8 MiB file system");
  check_rows(storage, 0, 100, 1000);
  check_rows(storage, 100, written, 4000);
  CHECK_FALSE(storage.read()->get(Table::Nodes, row_key(written)).has_value());

  fs.free_space();
  write_rows(storage, written, written + 16, 4000);
  check_rows(storage, 0, 100, 1000);
  check_rows(storage, 100, written + 16, 4000);
}

// A storage failure for lack of room: ENOSPC, or EIO where LMDB's own pwrite was cut short.
bool lack_of_room(const StorageError& e) { return e.code() == ENOSPC || e.code() == EIO; }

TEST_CASE("kv lmdb write map: a store written without it, with holes below its last page, reopened with it on a nearly full file system: ENOSPC, never SIGBUS") {
  StoreOnSmallFs small(std::size_t{16} << 20);
  if (!small.mounted()) return;
  SmallFs& fs = small.fs;
  LmdbOptions options = small.options;
  options.write_map = false;  // as a build before MDB_WRITEMAP wrote it
  {
    LmdbStorage storage(options);
    REQUIRE_FALSE(storage.write_map());
    write_rows(storage, 0, 20'000, 100);
    // Pages LMDB frees in the transaction that made them are never written, but stay below the
    // last page: holes in the file, which a later transaction reuses.
    auto txn = storage.write();
    for (int i = 0; i < 20'000; ++i) txn->put(Table::Nodes, fmt::format("/tmp/{:06}", i), std::string(100, 't'));
    for (int i = 0; i < 20'000; ++i) txn->erase(Table::Nodes, fmt::format("/tmp/{:06}", i));
    txn->commit();
  }
  fs.fill(std::uint64_t{1536} << 10);

  options.write_map = true;
  LmdbStorage storage(options);
  check_rows(storage, 0, 20'000, 100);
  int written = 20'000;
  bool refused = false;
  for (int round = 0; round < 200 && !refused; ++round) {
    try {
      write_rows(storage, written, written + 50, 100);
      written += 50;
    } catch (const StorageError& e) {
      refused = true;
      CHECK_MESSAGE(lack_of_room(e), e.what());
    }
  }
  check_rows(storage, 0, written, 100);
  fs.free_space();
  write_rows(storage, written, written + 50, 100);
  check_rows(storage, 0, written + 50, 100);
}

TEST_CASE("kv lmdb write map: a store opens on a full file system and serves its reads, and a write is refused for lack of room") {
  StoreOnSmallFs small(std::size_t{8} << 20);
  if (!small.mounted()) return;
  SmallFs& fs = small.fs;
  LmdbOptions options = small.options;
  options.write_map = false;  // a file of its pages and no room ahead, as a build before wrote it
  {
    LmdbStorage storage(options);
    write_rows(storage, 0, 1'000, 1000);
  }
  fs.fill();
  options.write_map = true;
  LmdbStorage storage(options);  // opening writes nothing: it needs no room
  check_rows(storage, 0, 1'000, 1000);
  bool refused = false;
  try {
    write_rows(storage, 1'000, 3'000, 1000);
  } catch (const StorageError& e) {
    refused = true;
    CHECK_MESSAGE(lack_of_room(e), e.what());
  }
  CHECK(refused);
  check_rows(storage, 0, 1'000, 1000);
  CHECK_FALSE(storage.read()->get(Table::Nodes, row_key(1'000)).has_value());
  fs.free_space();
  write_rows(storage, 1'000, 3'000, 1000);
  check_rows(storage, 0, 3'000, 1000);
}
