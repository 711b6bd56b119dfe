// The WAL's torn-write rule (storage/wal_replay.h): a torn write is the last write, so a bad
// record (or a zero length) with a write-start record after it is damage and Corrupt; without
// one, a write that landed in part (a middle page lost, its tail cut short) is still torn, also
// when whole records of that same write landed after the gap, and the log goes on from the
// write before it. The write-start bit marks exactly the first record of each write.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "storage/crc32c.h"
#include "storage/wal_log_store.h"
#include "tests/wal_test_files.h"
#include "storage/wal_records.h"
#include "storage/wal_segment.h"

namespace raft = coord::raft;
namespace fs = std::filesystem;
using coord::storage::LogStoreError;
using coord::storage::WalFrame;
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
  e.data = std::string(size, static_cast<char>('a' + index % 26));
  return e;
}

std::vector<raft::Entry> run(raft::Index first, raft::Index last, raft::Term term, std::size_t size = 40) {
  std::vector<raft::Entry> out;
  for (raft::Index i = first; i <= last; ++i) out.push_back(entry(i, term, size));
  return out;
}

raft::Ready ready(std::vector<raft::Entry> entries, std::optional<raft::HardState> hs = std::nullopt) {
  raft::Ready r;
  r.entries = std::move(entries);
  r.hard_state = hs;
  return r;
}

std::string only_segment(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (coord::storage::parse_wal_segment_name(e.path().filename().string())) out.push_back(e.path().string());
  }
  REQUIRE(out.size() == 1);
  return out.front();
}

WalFrame frame_at(const std::string& bytes, const std::string& path, std::uint64_t at) {
  const auto seq = coord::storage::parse_wal_segment_name(fs::path(path).filename().string());
  return coord::storage::parse_wal_record(std::string_view(bytes).substr(at), *seq, at);
}

Kind open_error(const std::string& dir, std::string* message) {
  try {
    (void)WalLogStore::open(dir);
  } catch (const LogStoreError& e) {
    *message = e.what();
    return e.kind();
  }
  FAIL("the log opened");
  return Kind::Io;
}

}  // namespace

TEST_CASE("wal torn: the first record of each write, and only it, carries the write-start bit") {
  coordtest::ScratchDir dir;
  {
    auto store = WalLogStore::open(dir.log());
    store->write(ready(run(1, 1, 1), raft::HardState{1, 1, 0}));  // after the segment's head, one pwrite
    store->write(ready(run(2, 3, 1)));
    store->write(ready(run(4, 4, 1), raft::HardState{1, 1, 4}));
  }
  const std::string segment = only_segment(dir.log());
  const std::string bytes = slurp(segment);
  std::vector<bool> starts;
  for (const auto& [offset, size] : records_of(segment)) starts.push_back(frame_at(bytes, segment, offset).write_start);
  // head snapshot, head hard state, entries 1, hard state | entries 2-3 | entries 4, hard state
  CHECK(starts == std::vector<bool>{true, false, false, false, true, true, false});
}

TEST_CASE("wal torn: a type byte with an unknown flag bit is a bad record, its checksum right") {
  const std::uint64_t seq = 7;
  const std::uint64_t offset = 96;
  std::string record;
  coord::storage::append_wal_record(record, seq, offset, coord::storage::WalRecordType::HardState, "payload",
                                    {.continued = false, .write_start = true});
  REQUIRE(coord::storage::parse_wal_record(record, seq, offset).status == WalFrame::Status::Ok);
  record[8] = static_cast<char>(static_cast<unsigned char>(record[8]) | 0x20);
  std::string salt;
  for (int i = 0; i < 8; ++i) salt.push_back(static_cast<char>((seq >> (8 * i)) & 0xff));
  for (int i = 0; i < 8; ++i) salt.push_back(static_cast<char>((offset >> (8 * i)) & 0xff));
  salt.push_back(record[8]);
  const std::uint32_t crc = coord::storage::crc32c("payload", coord::storage::crc32c(salt));
  for (int i = 0; i < 4; ++i) record[4 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  const WalFrame frame = coord::storage::parse_wal_record(record, seq, offset);
  CHECK(frame.status == WalFrame::Status::Bad);
  CHECK(frame.problem.find("unknown record type") != std::string::npos);
}

TEST_CASE("wal torn: a last write that landed in part is torn, also with whole records of it after the gap") {
  enum class Loss { MiddlePage, CutAtPage, CutMidRecord };
  for (const Loss loss : {Loss::MiddlePage, Loss::CutAtPage, Loss::CutMidRecord}) {
    CAPTURE(static_cast<int>(loss));
    coordtest::ScratchDir dir;
    {
      auto store = WalLogStore::open(dir.log());
      store->write(ready(run(1, 1, 1), raft::HardState{1, 1, 1}));
      // One write of two records: entries spanning three pages, then a hard state.
      store->write(ready(run(2, 4, 2, 3000), raft::HardState{2, 2, 4}));
    }
    const std::string segment = only_segment(dir.log());
    const auto records = records_of(segment);
    REQUIRE(records.size() == 6);
    const auto [entries_at, entries_size] = records[4];
    const auto [hs_at, hs_size] = records[5];
    const std::uint64_t page = (entries_at + 4095) / 4096 * 4096;  // the first page wholly inside the entries
    REQUIRE(page + 4096 < entries_at + entries_size);
    switch (loss) {
      case Loss::MiddlePage:
        overwrite(segment, page, std::string(4096, '\0'));
        break;
      case Loss::CutAtPage:
        overwrite(segment, page, std::string(hs_at + hs_size - page, '\0'));
        break;
      case Loss::CutMidRecord:
        overwrite(segment, entries_at + 100, std::string(hs_at + hs_size - entries_at - 100, '\0'));
        break;
    }
    if (loss == Loss::MiddlePage) {
      // The write's hard state landed whole and checks; it does not start a write.
      const WalFrame hs = frame_at(slurp(segment), segment, hs_at);
      REQUIRE(hs.status == WalFrame::Status::Ok);
      REQUIRE(!hs.write_start);
    }
    {
      auto store = WalLogStore::open(dir.log());
      CHECK(store->torn_tail().find("torn write") != std::string::npos);
      CHECK(store->last_index() == 1);
      CHECK(store->hard_state() == raft::HardState{1, 1, 1});
      store->write(ready(run(2, 2, 1)));
    }
    auto store = WalLogStore::open(dir.log());
    CHECK(store->torn_tail() == "");
    CHECK(store->load().entries == run(1, 2, 1));
  }
}

TEST_CASE("wal torn: a zeroed length in the middle of the last segment, writes after it, is Corrupt") {
  coordtest::ScratchDir dir;
  {
    auto store = WalLogStore::open(dir.log());
    store->write(ready(run(1, 1, 1), raft::HardState{1, 0, 0}));
    store->write(ready(run(2, 2, 1)));
    store->write(ready(run(3, 3, 2), raft::HardState{2, 2, 2}));  // acknowledged after it
  }
  const std::string segment = only_segment(dir.log());
  const auto records = records_of(segment);
  REQUIRE(records.size() == 7);
  overwrite(segment, records[4].first, std::string(4, '\0'));  // entry 2's length: the data "ends" there
  std::string message;
  CHECK(open_error(dir.log(), &message) == Kind::Corrupt);
  CHECK(message.find(segment) != std::string::npos);
  CHECK(message.find("offset " + std::to_string(records[4].first)) != std::string::npos);
  CHECK(message.find("later write starts at offset " + std::to_string(records[5].first)) != std::string::npos);
}
