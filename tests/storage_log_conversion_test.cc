// The one-time conversion of an LMDB Raft log into a WAL (storage/log_conversion.h): the WAL
// reads back exactly what LMDB held (hard state, snapshot and its bytes, every entry), a crash
// before or after the directories' exchange is finished by the next call, and a damaged LMDB log
// is refused and left as it was.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "storage/lmdb_log_store.h"
#include "storage/log_conversion.h"
#include "storage/wal_log_store.h"
#include "tests/wal_test_files.h"

namespace raft = coord::raft;
namespace fs = std::filesystem;
using coord::storage::convert_lmdb_log_to_wal;
using coord::storage::LmdbLogStore;
using coord::storage::LogStoreError;
using coord::storage::WalLogStore;
using coord::storage::WalLogStoreOptions;

using coordtest::overwrite;
using coordtest::records_of;
using coordtest::segment_files;
using coordtest::slurp;

namespace {

// Where the conversion writes the WAL before the exchange (log_conversion.h).
std::string staging(const coordtest::ScratchDir& s) { return s.log() + ".convert"; }

const WalLogStoreOptions kSmallSegments{64 << 10};  // several segments for the entries below

std::vector<raft::Entry> entries(raft::Index first, raft::Index last, raft::Term term) {
  std::vector<raft::Entry> out;
  for (raft::Index i = first; i <= last; ++i) {
    raft::Entry e;
    e.index = i;
    e.term = term;
    e.data = std::string(300, static_cast<char>('a' + i % 26)) + std::to_string(i);
    out.push_back(e);
  }
  return out;
}

// An LMDB log as a member leaves it: seeded, written over two terms, a snapshot with bytes saved
// and the log before it dropped, more entries after it.
raft::RestoreState write_lmdb_log(const std::string& dir) {
  std::unique_ptr<LmdbLogStore> lmdb = LmdbLogStore::open(dir);
  raft::Ready seed;
  seed.snapshot = raft::Snapshot{raft::SnapshotMeta{0, 0, raft::ConfState{{1, 2, 3}, {}}}, nullptr};
  lmdb->write(seed);
  raft::Ready first;
  first.entries = entries(1, 300, 1);
  first.hard_state = raft::HardState{1, 1, 300};
  lmdb->write(first);
  raft::SnapshotMeta meta{200, 1, raft::ConfState{{1, 2, 3}, {}}};
  lmdb->save_snapshot(meta, raft::snapshot_bytes(std::string(100000, 's') + "state@200"));
  lmdb->drop_prefix(200);
  raft::Ready second;
  second.entries = entries(301, 600, 2);
  second.hard_state = raft::HardState{2, 3, 550};
  lmdb->write(second);
  return lmdb->load();
}

void check_same(const raft::RestoreState& a, const raft::RestoreState& b) {
  CHECK(a.hard_state == b.hard_state);
  CHECK(a.snapshot == b.snapshot);
  REQUIRE(a.snapshot_data);
  REQUIRE(b.snapshot_data);
  CHECK(a.snapshot_data->bytes() == b.snapshot_data->bytes());
  CHECK(a.entries == b.entries);
}

}  // namespace

TEST_CASE("log conversion: the WAL holds what the LMDB log held, and a second call has nothing to do") {
  coordtest::ScratchDir s;
  const raft::RestoreState before = write_lmdb_log(s.log());
  REQUIRE(before.entries.size() == 400);

  CHECK(convert_lmdb_log_to_wal(s.log(), kSmallSegments));
  CHECK_FALSE(fs::exists(s.log() + "/data.mdb"));
  CHECK_FALSE(fs::exists(staging(s)));
  std::unique_ptr<WalLogStore> wal = WalLogStore::open(s.log(), kSmallSegments);
  check_same(before, wal->load());
  CHECK(wal->stats().used_bytes > (64 << 10));  // the entries span several segments
  wal.reset();

  CHECK_FALSE(convert_lmdb_log_to_wal(s.log(), kSmallSegments));
  check_same(before, WalLogStore::open(s.log(), kSmallSegments)->load());
}

TEST_CASE("log conversion: a conversion that stopped before the exchange is done again from the LMDB log") {
  coordtest::ScratchDir s;
  const raft::RestoreState before = write_lmdb_log(s.log());
  // A crash while the WAL was being written: a partial staging directory beside the intact log.
  fs::create_directories(staging(s));
  std::ofstream(staging(s) + "/wal-0000000000000001.log") << "half a segment";

  CHECK(convert_lmdb_log_to_wal(s.log(), kSmallSegments));
  CHECK_FALSE(fs::exists(staging(s)));
  check_same(before, WalLogStore::open(s.log(), kSmallSegments)->load());
}

TEST_CASE("log conversion: the old LMDB log left by a crash after the exchange is removed, the WAL kept") {
  coordtest::ScratchDir s;
  const raft::RestoreState before = write_lmdb_log(s.log());
  REQUIRE(convert_lmdb_log_to_wal(s.log(), kSmallSegments));
  // As if the crash came between the exchange and the removal: an LMDB log in the staging place.
  write_lmdb_log(staging(s));

  CHECK_FALSE(convert_lmdb_log_to_wal(s.log(), kSmallSegments));
  CHECK_FALSE(fs::exists(staging(s)));
  check_same(before, WalLogStore::open(s.log(), kSmallSegments)->load());
}

TEST_CASE("log conversion: a damaged LMDB log is refused and left as it was") {
  coordtest::ScratchDir s;
  write_lmdb_log(s.log());
  // Flip a byte inside entry 530's data, in every copy the file holds (LMDB's free pages may
  // keep older ones).
  const std::string file = s.log() + "/data.mdb";
  std::string bytes;
  {
    std::ifstream in(file, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string entry_530 = std::string(300, 'k') + "530";
  int flipped = 0;
  for (std::size_t at = bytes.find(entry_530); at != std::string::npos; at = bytes.find(entry_530, at + 1)) {
    bytes[at + 150] = 'K';
    ++flipped;
  }
  REQUIRE(flipped >= 1);
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << bytes;
  }

  try {
    convert_lmdb_log_to_wal(s.log(), kSmallSegments);
    FAIL("a damaged LMDB log was converted");
  } catch (const LogStoreError& e) {
    CHECK(e.kind() == LogStoreError::Kind::Corrupt);
    CHECK(std::string(e.what()).find("data.mdb") != std::string::npos);
  }
  CHECK(fs::exists(file));
  CHECK_FALSE(fs::exists(staging(s)));
  bool has_segments = false;
  for (const auto& f : fs::directory_iterator(s.log())) {
    has_segments = has_segments || f.path().filename().string().rfind("wal-", 0) == 0;
  }
  CHECK_FALSE(has_segments);
}
