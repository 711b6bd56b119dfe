// Review findings on the WAL's torn-tail rule (storage/wal_replay.cc): a single flipped bit in
// an acknowledged record in the middle of the last segment is taken for a torn write, the log
// ends there, and every acknowledged write after it is zeroed by open() without an error.
// A torn write is always the last write (each write is fdatasynced before the next one), so a
// bad record followed by later acknowledged writes is damage, and should be Corrupt.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "storage/wal_log_store.h"
#include "tests/wal_test_files.h"
#include "storage/wal_records.h"
#include "storage/wal_segment.h"

namespace raft = coord::raft;
namespace fs = std::filesystem;
using coord::storage::LogStoreError;
using coord::storage::WalLogStore;
using Kind = coord::storage::LogStoreError::Kind;

using coordtest::overwrite;
using coordtest::records_of;
using coordtest::segment_files;
using coordtest::slurp;

namespace {

raft::Entry entry(raft::Index index, raft::Term term, std::size_t size = 40) {
  raft::Entry e;
  e.index = index;
  e.term = term;
  e.data = std::string(size, 'x');
  return e;
}

raft::Ready ready(std::vector<raft::Entry> entries, std::optional<raft::HardState> hs = std::nullopt) {
  raft::Ready r;
  r.entries = std::move(entries);
  r.hard_state = hs;
  return r;
}

std::string segment_of(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (coord::storage::parse_wal_segment_name(e.path().filename().string())) out.push_back(e.path().string());
  }
  REQUIRE(out.size() == 1);
  return out.front();
}

void flip(const std::string& path, std::uint64_t offset, unsigned char mask) {
  std::string byte = slurp(path).substr(offset, 1);
  byte[0] = static_cast<char>(static_cast<unsigned char>(byte[0]) ^ mask);
  overwrite(path, offset, byte);
}

// Reopens; the store must refuse (Corrupt). When it opens instead, says what it lost.
void expect_corrupt_not_truncated(const std::string& dir, raft::Index acknowledged_last,
                                  const raft::HardState& acknowledged_hs) {
  std::unique_ptr<WalLogStore> reopened;
  try {
    reopened = WalLogStore::open(dir);
  } catch (const LogStoreError& e) {
    CHECK(e.kind() == Kind::Corrupt);
    return;
  }
  INFO("open succeeded; torn_tail: " << reopened->torn_tail());
  CHECK(reopened->last_index() == acknowledged_last);
  CHECK(reopened->hard_state().term == acknowledged_hs.term);
  CHECK(reopened->hard_state().vote == acknowledged_hs.vote);
  FAIL("damage in an acknowledged record, with acknowledged writes after it, opened as a torn tail");
}

}  // namespace

TEST_CASE("wal review: a flipped high bit in a middle record's length is damage, not a torn write") {
  coordtest::ScratchDir dir;
  const raft::HardState last_hs{2, 2, 2};
  {
    auto store = WalLogStore::open(dir.log());
    store->write(ready({entry(1, 1)}, raft::HardState{1, 0, 0}));
    store->write(ready({entry(2, 1)}));
    store->write(ready({entry(3, 2)}, last_hs));  // a new term and a vote, acknowledged
    store->write(ready({entry(4, 2)}));
  }
  const std::string segment = segment_of(dir.log());
  const auto records = records_of(segment);
  // head snapshot, head hard state, Ready 1 (entries, hard state), Ready 2, Ready 3 (2), Ready 4
  REQUIRE(records.size() == 8);
  // Bit 30 of entry 2's length: the record now claims to run past the end of the file, whose
  // preallocated zeros make it look like a write that never landed.
  flip(segment, records[4].first + 3, 0x40);
  expect_corrupt_not_truncated(dir.log(), 4, last_hs);
}

TEST_CASE("wal review: a flipped bit in a hard state ending a few bytes into a sector is damage") {
  coordtest::ScratchDir dir;
  const raft::HardState hs2{1, 1, 1};
  const raft::HardState last_hs{2, 2, 2};
  std::uint64_t hs_offset = 0;
  {
    auto store = WalLogStore::open(dir.log());
    store->write(ready({entry(1, 1)}, raft::HardState{1, 0, 0}));
    const auto before = records_of(segment_of(dir.log())).back();
    const std::uint64_t end1 = before.first + before.second;
    // Ready 2 = an entries record (9 + 12 + 13 + data) and a hard state record (9 + 28): sized
    // so that the hard state ends 3 bytes into a sector. Those 3 bytes are the top bytes of its
    // commit, zeros, so the record "has a zero sector" by has_zero_sector's reckoning.
    const std::uint64_t fixed = 9 + 12 + 13 + 37;
    const std::uint64_t size = (512 + 3 - (end1 + fixed) % 512) % 512 + 512;
    store->write(ready({entry(2, 1, size)}, hs2));
    const auto hs_record = records_of(segment_of(dir.log())).back();
    REQUIRE((hs_record.first + hs_record.second) % 512 == 3);
    hs_offset = hs_record.first;
    store->write(ready({entry(3, 2)}, last_hs));  // acknowledged after it
    store->write(ready({entry(4, 2)}));
  }
  // One flipped bit in the hard state's term: every sector of the record was written.
  flip(segment_of(dir.log()), hs_offset + 9 + 4, 0x01);
  expect_corrupt_not_truncated(dir.log(), 4, last_hs);
}
