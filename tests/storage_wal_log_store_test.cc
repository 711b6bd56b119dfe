// The write-ahead-log Raft store (storage/wal_log_store.h): Readies survive a reopen (also
// across segment files), a conflicting suffix is replaced wherever it lies, a snapshot Ready
// replaces the log, compaction deletes whole segments, refused calls change no byte, reads by
// range and byte limit (also from another thread while the disk thread writes and drops), a
// torn tail is cut where etcd's rule says and never comes back, damage elsewhere is Corrupt
// naming the file, and a process killed at a random moment reopens to the last reported Ready
// or the one after it.
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "storage/wal_index.h"
#include "storage/wal_log_store.h"
#include "storage/wal_records.h"
#include "storage/wal_segment.h"
#include "tests/wal_test_files.h"
#include "tmpfs_mount.h"

namespace raft = coord::raft;
namespace fs = std::filesystem;
using coord::storage::LogStoreError;
using coord::storage::WalLogStore;
using coord::storage::WalLogStoreOptions;
using Kind = coord::storage::LogStoreError::Kind;

using coordtest::overwrite;
using coordtest::records_of;
using coordtest::segment_files;
using coordtest::slurp;

namespace {

WalLogStoreOptions tiny(std::uint64_t bytes = 4096) { return WalLogStoreOptions{bytes}; }

raft::Entry make_entry(raft::Index index, raft::Term term, std::size_t size = 40) {
  raft::Entry e;
  e.index = index;
  e.term = term;
  e.data = std::string(size, static_cast<char>('a' + index % 26));
  e.data += std::to_string(index);
  return e;
}

std::vector<raft::Entry> run(raft::Index first, raft::Index last, raft::Term term, std::size_t size = 40) {
  std::vector<raft::Entry> out;
  for (raft::Index i = first; i <= last; ++i) out.push_back(make_entry(i, term, size));
  return out;
}

raft::Ready with(std::vector<raft::Entry> entries, std::optional<raft::HardState> hs = std::nullopt) {
  raft::Ready r;
  r.entries = std::move(entries);
  r.hard_state = hs;
  return r;
}

raft::SnapshotMeta snap_meta(raft::Index index, raft::Term term) {
  raft::SnapshotMeta m;
  m.index = index;
  m.term = term;
  m.conf.voters = {1, 2, 3};
  return m;
}

Kind error_kind(const std::function<void()>& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const LogStoreError& e) {
    if (message != nullptr) *message = e.what();
    return e.kind();
  }
  FAIL("no LogStoreError");
  return Kind::Io;
}

std::vector<raft::Index> indexes(const std::vector<raft::Entry>& es) {
  std::vector<raft::Index> out;
  for (const auto& e : es) out.push_back(e.index);
  return out;
}

}  // namespace

TEST_CASE("wal index: one row per record, trimmed by truncation and drops, terms as runs") {
  coord::storage::WalIndex index;
  auto chunk = [](std::uint64_t seq, std::uint64_t offset, std::uint64_t data) {
    return coord::storage::WalChunk{seq, offset, 100, 0, 0, 0, data};
  };
  index.append(chunk(1, 0, 300), run(1, 3, 1));
  index.append(chunk(1, 100, 300), run(4, 6, 2));
  index.append(chunk(2, 0, 300), run(7, 9, 2));
  CHECK(index.chunk_count() == 3);
  CHECK(index.term(3) == 1);
  CHECK(index.term(4) == 2);
  CHECK(index.term(10) == std::nullopt);
  // A byte limit stops collecting once the records read whole are surely past it.
  CHECK(index.chunks_for(1, 10, 250).size() == 1);
  CHECK(index.chunks_for(1, 10, 350).size() == 2);
  CHECK(index.chunks_for(2, 10, 250).size() == 2);  // the first is read from its middle: not counted
  CHECK(index.chunks_for(5, 6, 1 << 20).size() == 1);
  // A conflicting suffix from 5: the record of 4..6 keeps only 4, the one of 7..9 goes.
  index.append(chunk(2, 100, 30), run(5, 5, 3));
  CHECK(index.chunk_count() == 3);
  CHECK(index.term(4) == 2);
  CHECK(index.term(5) == 3);
  CHECK(index.term(6) == std::nullopt);
  const auto middle = index.chunks_for(4, 6, 1 << 20);
  REQUIRE(middle.size() == 2);
  CHECK(middle[0].first == 4);
  CHECK(middle[0].last == 4);
  CHECK(middle[0].data_bytes == 0);  // only part of its record: no longer a bound
  // Dropping through 4 leaves the record of 5, in segment 2.
  index.drop_through(4);
  CHECK(index.first_seq() == 2);
  CHECK(index.term(4) == std::nullopt);
  CHECK(index.term(5) == 3);
  index.drop_through(5);
  CHECK(index.first_seq() == std::nullopt);
}

TEST_CASE("wal store: Readies round-trip through a reopen, one fdatasync each") {
  coordtest::ScratchDir dir;
  std::vector<raft::Entry> written = run(1, 3, 1);
  written[1].type = raft::EntryType::ConfChange;
  written[2].data = std::string("\0\xff\x01 binary", 10);
  {
    auto store = WalLogStore::open(dir.log());
    CHECK(store->load().entries.empty());
    store->write(with(written, raft::HardState{1, 2, 0}));
    store->write(with({}, raft::HardState{1, 2, 2}));
    store->write(raft::Ready{});  // nothing to persist: no write at all
    CHECK(store->stats().commits == 2);
    CHECK(store->last_index() == 3);
  }
  auto store = WalLogStore::open(dir.log());
  const raft::RestoreState state = store->load();
  CHECK(state.entries == written);
  CHECK(state.hard_state == raft::HardState{1, 2, 2});
  CHECK(store->first_index() == 1);
  CHECK(error_kind([&] { (void)WalLogStore::open(dir.log()); }) == Kind::InUse);
}

TEST_CASE("wal store: segments rotate, a batch larger than a segment gets one of its own, all of it reopens") {
  coordtest::ScratchDir dir;
  std::vector<raft::Entry> all;
  {
    auto store = WalLogStore::open(dir.log(), tiny());
    for (raft::Index i = 1; i <= 200; i += 4) {
      auto es = run(i, i + 3, 1, 100);
      all.insert(all.end(), es.begin(), es.end());
      store->write(with(es, raft::HardState{1, 1, i}));
    }
    auto big = run(201, 210, 1, 2000);  // ~20 KiB: five times the segment size
    all.insert(all.end(), big.begin(), big.end());
    store->write(with(big));
    store->write(with(run(211, 211, 1)));
    all.push_back(make_entry(211, 1));
  }
  const auto files = segment_files(dir.log());
  CHECK(files.size() > 5);
  std::uintmax_t largest = 0;
  for (const auto& f : files) largest = std::max(largest, fs::file_size(f));
  CHECK(largest >= 20000);
  auto store = WalLogStore::open(dir.log(), tiny());
  const auto state = store->load();
  CHECK(state.entries == all);
  CHECK(state.hard_state.commit == 197);
  CHECK(store->read_entries(150, 212, 1 << 30) == std::vector<raft::Entry>(all.begin() + 149, all.end()));
}

TEST_CASE("wal store: a conflicting suffix is replaced, also when it starts in an older segment") {
  coordtest::ScratchDir dir;
  auto expected = run(1, 60, 1, 200);
  {
    auto store = WalLogStore::open(dir.log(), tiny());
    for (raft::Index i = 1; i <= 60; i += 5) store->write(with(run(i, i + 4, 1, 200), raft::HardState{1, 1, std::min<raft::Index>(i + 4, 10)}));
    REQUIRE(segment_files(dir.log()).size() >= 4);
    // A new leader's entries from 12 on: entries 12..60 lie in three segments before this one.
    auto replacement = run(12, 14, 2, 30);
    store->write(with(replacement, raft::HardState{2, 3, 10}));
    expected.resize(11);
    expected.insert(expected.end(), replacement.begin(), replacement.end());
    CHECK(store->last_index() == 14);
    CHECK(store->read_entries(1, 100, 1 << 30) == expected);
    // Writing on after it.
    store->write(with(run(15, 15, 2)));
    expected.push_back(make_entry(15, 2));
  }
  auto store = WalLogStore::open(dir.log(), tiny());
  CHECK(store->load().entries == expected);
  CHECK(store->hard_state() == raft::HardState{2, 3, 10});
}

TEST_CASE("wal store: a snapshot Ready replaces the log") {
  coordtest::ScratchDir dir;
  {
    auto store = WalLogStore::open(dir.log(), tiny());
    store->write(with(run(1, 30, 1, 300), raft::HardState{1, 1, 5}));
    raft::Ready r;
    r.snapshot = raft::Snapshot{snap_meta(100, 3), raft::snapshot_bytes("state at 100")};
    r.entries = run(101, 102, 3);
    r.hard_state = raft::HardState{3, 0, 100};
    store->write(r);
    CHECK(store->first_index() == 101);
    CHECK(store->read_entries(5, 10, 1 << 20).empty());
  }
  auto store = WalLogStore::open(dir.log(), tiny());
  const auto state = store->load();
  CHECK(state.snapshot == snap_meta(100, 3));
  REQUIRE(state.snapshot_data);
  CHECK(state.snapshot_data->bytes() == "state at 100");
  CHECK(state.entries == run(101, 102, 3));
  CHECK(state.applied == 100);
}

TEST_CASE("wal store: save_snapshot then drop_prefix deletes whole segments, and the reopened log is right") {
  coordtest::ScratchDir dir;
  {
    auto store = WalLogStore::open(dir.log(), tiny());
    for (raft::Index i = 1; i <= 100; i += 5) store->write(with(run(i, i + 4, 1, 200), raft::HardState{1, 1, i + 4}));
    const std::size_t before = segment_files(dir.log()).size();
    store->save_snapshot(snap_meta(80, 1), raft::snapshot_bytes("state at 80"));
    CHECK(segment_files(dir.log()).size() == before);  // saving drops nothing
    store->drop_prefix(80);
    CHECK(segment_files(dir.log()).size() < before / 2);
    CHECK(store->first_index() == 81);
    CHECK(store->read_entries(79, 90, 1 << 20).empty());
    CHECK(indexes(store->read_entries(81, 84, 1 << 20)) == std::vector<raft::Index>{81, 82, 83});
    store->write(with(run(101, 101, 1)));
  }
  auto store = WalLogStore::open(dir.log(), tiny());
  const auto state = store->load();
  CHECK(state.snapshot == snap_meta(80, 1));
  REQUIRE(state.snapshot_data);
  CHECK(state.snapshot_data->bytes() == "state at 80");
  auto expected = run(81, 100, 1, 200);
  expected.push_back(make_entry(101, 1));
  CHECK(state.entries == expected);
  CHECK(store->first_index() <= 81);  // entries sharing a kept segment come back (older than the snapshot)
  CHECK(state.hard_state.commit == 100);
  // Dropping everything up to the snapshot and beyond what any segment holds keeps the current one.
  store->drop_prefix(80);
  CHECK(!segment_files(dir.log()).empty());
}

TEST_CASE("wal store: a replay may start at a segment after a drop, with the snapshot recorded later") {
  // Entries 1..N in segments, the snapshot saved in a later segment than the entries it covers,
  // then every segment before it dropped: the replay starts at a head naming an older snapshot.
  coordtest::ScratchDir dir;
  {
    auto store = WalLogStore::open(dir.log(), tiny());
    for (raft::Index i = 1; i <= 40; i += 5) store->write(with(run(i, i + 4, 1, 300), raft::HardState{1, 1, i + 4}));
    store->save_snapshot(snap_meta(40, 1), raft::snapshot_bytes("s40"));
    store->drop_prefix(40);
    store->write(with(run(41, 41, 1)));
  }
  auto store = WalLogStore::open(dir.log(), tiny());
  const auto state = store->load();
  CHECK(state.snapshot == snap_meta(40, 1));
  CHECK(state.entries == run(41, 41, 1));
}

TEST_CASE("wal store: refused calls change no byte on disk") {
  coordtest::ScratchDir dir;
  auto store = WalLogStore::open(dir.log(), tiny());
  store->write(with(run(1, 5, 2), raft::HardState{2, 1, 3}));
  std::map<std::string, std::string> before;
  for (const auto& f : segment_files(dir.log())) before[f] = slurp(f);
  const auto shape = store->shape();
  CHECK(error_kind([&] { store->write(with(run(8, 9, 2))); }) == Kind::Invalid);          // a gap
  CHECK(error_kind([&] { store->write(with(run(6, 6, 1))); }) == Kind::Invalid);          // term goes back
  CHECK(error_kind([&] { store->write(with({}, raft::HardState{2, 3, 3})); }) == Kind::Invalid);  // vote changes
  CHECK(error_kind([&] { store->write(with({}, raft::HardState{2, 1, 9})); }) == Kind::Invalid);  // commit past the log
  CHECK(error_kind([&] { store->drop_prefix(3); }) == Kind::Invalid);  // beyond the snapshot
  CHECK(error_kind([&] { store->save_snapshot(snap_meta(4, 7), nullptr); }) == Kind::Invalid);  // wrong term
  std::map<std::string, std::string> after;
  for (const auto& f : segment_files(dir.log())) after[f] = slurp(f);
  CHECK(after == before);
  CHECK(store->shape() == shape);
  CHECK(store->stats().commits == 1);
  CHECK(!store->failed());
}

TEST_CASE("wal store: entries are read by range and byte limit") {
  coordtest::ScratchDir dir;
  auto store = WalLogStore::open(dir.log(), tiny());
  store->write(with(run(1, 10, 1, 100), raft::HardState{1, 0, 0}));
  store->write(with(run(11, 20, 1, 100)));
  const std::size_t one = make_entry(1, 1, 100).data.size();
  CHECK(indexes(store->read_entries(3, 7, 1 << 20)) == std::vector<raft::Index>{3, 4, 5, 6});
  CHECK(indexes(store->read_entries(9, 14, 1 << 20)) == std::vector<raft::Index>{9, 10, 11, 12, 13});
  CHECK(store->read_entries(5, 100, 3 * one).size() == 3);      // none past the limit
  CHECK(store->read_entries(5, 100, 3 * one + 1).size() == 3);
  CHECK(store->read_entries(5, 100, 0).size() == 1);            // but at least one
  CHECK(store->read_entries(15, 100, 1 << 20).size() == 6);     // the log ends
  CHECK(store->read_entries(21, 30, 1 << 20).empty());          // lo not stored
  CHECK(store->read_entries(0, 30, 1 << 20).empty());
}

TEST_CASE("wal store: reads on another thread run beside writes and drops") {
  coordtest::ScratchDir dir;
  auto store = WalLogStore::open(dir.log(), tiny(8192));
  store->write(with(run(1, 10, 1, 200), raft::HardState{1, 1, 10}));
  std::atomic<raft::Index> floor{1};  // entries from here on are kept by the writer
  std::atomic<raft::Index> durable{10};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> reads{0};
  std::string failure;
  std::thread reader([&] {
    std::mt19937_64 rng(7);
    while (!stop) {
      const raft::Index lo = floor.load() + rng() % 20;
      const raft::Index top = durable.load();
      if (lo > top) continue;
      try {
        const auto got = store->read_entries(lo, top + 1, 2000 + rng() % 5000);
        // A drop may race with the read; what it returns must be whole and right.
        for (std::size_t i = 0; i < got.size(); ++i) {
          if (!(got[i] == make_entry(lo + i, 1, 200))) failure = "entry " + std::to_string(lo + i) + " differs";
        }
      } catch (const std::exception& e) {
        failure = e.what();
      }
      ++reads;
    }
  });
  for (raft::Index i = 11; i <= 2000; i += 2) {
    store->write(with(run(i, i + 1, 1, 200), raft::HardState{1, 1, i + 1}));
    durable = i + 1;
    if (i % 100 == 1) {
      store->save_snapshot(snap_meta(i - 50, 1), nullptr);
      floor = i - 40;  // the reader stays a little above what is dropped
      store->drop_prefix(i - 50);
    }
  }
  stop = true;
  reader.join();
  CHECK(failure == "");
  CHECK(reads > 100);
  CHECK(segment_files(dir.log()).size() < 30);
}

TEST_CASE("wal store: a torn last record ends the log there, and what followed it never comes back") {
  for (const bool cut_in_half : {true, false}) {
    CAPTURE(cut_in_half);
    coordtest::ScratchDir dir;
    {
      auto store = WalLogStore::open(dir.log());
      store->write(with(run(1, 1, 1), raft::HardState{1, 1, 1}));
      // The last write: entry 2, spanning several sectors, and a hard state. A torn write is
      // the last one (a later write after it would make it damage, Corrupt).
      store->write(with(run(2, 2, 1, 3000), raft::HardState{1, 1, 2}));
    }
    const std::string segment = segment_files(dir.log()).back();
    const auto records = records_of(segment);
    REQUIRE(records.size() == 6);  // head snapshot and hard state, entries 1 and a hard state, entries 2, hard state
    auto [offset, size] = records[records.size() - 2];  // entry 2, followed by the write's hard state
    if (cut_in_half) {
      // The write's second half never landed: zeros from its middle to its end.
      overwrite(segment, offset + size / 2, std::string(size - size / 2, '\0'));
    } else {
      // One sector inside it never landed.
      const std::uint64_t sector = (offset + 1023) / 512 * 512;
      REQUIRE(sector + 512 <= offset + size);
      overwrite(segment, sector, std::string(512, '\0'));
    }
    {
      auto store = WalLogStore::open(dir.log());
      CHECK(store->torn_tail().find("torn write") != std::string::npos);
      CHECK(store->last_index() == 1);
      CHECK(store->load().entries == run(1, 1, 1));
      // Entry 2 again, as long as before: the next record would start exactly where the old
      // hard state record is, which checks there (same segment, same offset) unless open zeroed it.
      raft::Entry again = make_entry(2, 1, 3000);
      again.data.replace(0, 5, "AGAIN");
      store->write(with({again}));
    }
    auto store = WalLogStore::open(dir.log());
    CHECK(store->torn_tail() == "");
    const auto state = store->load();
    CHECK(indexes(state.entries) == std::vector<raft::Index>{1, 2});
    CHECK(state.entries.back().data.starts_with("AGAIN"));
    CHECK(state.hard_state == raft::HardState{1, 1, 1});  // the torn write's hard state never came back
  }
}

TEST_CASE("wal store: a Ready whose last record was torn is gone whole, its first records too") {
  coordtest::ScratchDir dir;
  {
    auto store = WalLogStore::open(dir.log());
    store->write(with(run(1, 1, 1), raft::HardState{1, 1, 1}));
    // A new term: its entry without the hard state naming the term would break the rules.
    store->write(with(run(2, 2, 2), raft::HardState{2, 3, 1}));
  }
  const std::string segment = segment_files(dir.log()).back();
  const auto [offset, size] = records_of(segment).back();  // the second Ready's hard state
  overwrite(segment, offset, std::string(size, '\0'));     // its sector never landed
  auto store = WalLogStore::open(dir.log());
  CHECK(store->torn_tail() != "");
  const auto state = store->load();
  CHECK(state.entries == run(1, 1, 1));
  CHECK(state.hard_state == raft::HardState{1, 1, 1});
  store->write(with(run(2, 2, 1)));
  store.reset();
  CHECK(WalLogStore::open(dir.log())->load().entries == run(1, 2, 1));
}

TEST_CASE("wal store: damage that no torn write explains is Corrupt, naming the file and offset") {
  SUBCASE("a flipped byte in the last record, every sector of it written") {
    coordtest::ScratchDir dir;
    {
      auto store = WalLogStore::open(dir.log());
      store->write(with(run(1, 1, 1), raft::HardState{1, 0, 0}));
      store->write(with(run(2, 2, 1, 3000)));
    }
    const std::string segment = segment_files(dir.log()).back();
    const auto [offset, size] = records_of(segment).back();
    std::string byte = slurp(segment).substr(offset + size / 2, 1);
    byte[0] = static_cast<char>(byte[0] ^ 0x10);
    overwrite(segment, offset + size / 2, byte);
    std::string message;
    CHECK(error_kind([&] { (void)WalLogStore::open(dir.log()); }, &message) == Kind::Corrupt);
    CHECK(message.find(segment) != std::string::npos);
    CHECK(message.find("offset " + std::to_string(offset)) != std::string::npos);
  }
  SUBCASE("a flipped byte (or a zeroed sector) in an earlier segment") {
    for (const bool zero_sector : {false, true}) {
      coordtest::ScratchDir dir;
      {
        auto store = WalLogStore::open(dir.log(), tiny());
        for (raft::Index i = 1; i <= 30; i += 3) store->write(with(run(i, i + 2, 1, 300), raft::HardState{1, 0, 0}));
      }
      const auto files = segment_files(dir.log());
      REQUIRE(files.size() >= 3);
      const auto [offset, size] = records_of(files[1]).back();
      if (zero_sector) {
        overwrite(files[1], offset + size - 100, std::string(100, '\0'));
      } else {
        overwrite(files[1], offset + size - 1, "\x7f");
      }
      std::string message;
      CHECK(error_kind([&] { (void)WalLogStore::open(dir.log(), tiny()); }, &message) == Kind::Corrupt);
      CHECK(message.find(files[1]) != std::string::npos);
    }
  }
  SUBCASE("a missing segment in the middle") {
    coordtest::ScratchDir dir;
    {
      auto store = WalLogStore::open(dir.log(), tiny());
      for (raft::Index i = 1; i <= 30; i += 3) store->write(with(run(i, i + 2, 1, 300), raft::HardState{1, 0, 0}));
    }
    fs::remove(segment_files(dir.log())[1]);
    CHECK(error_kind([&] { (void)WalLogStore::open(dir.log(), tiny()); }) == Kind::Corrupt);
  }
  SUBCASE("a damaged record read back is Corrupt too") {
    coordtest::ScratchDir dir;
    auto store = WalLogStore::open(dir.log());
    store->write(with(run(1, 3, 1), raft::HardState{1, 0, 0}));
    const std::string segment = segment_files(dir.log()).back();
    const auto [offset, size] = records_of(segment)[2];  // after the head's two: the entries
    overwrite(segment, offset + size - 2, "?");
    CHECK(error_kind([&] { (void)store->read_entries(1, 4, 1 << 20); }) == Kind::Corrupt);
  }
}

TEST_CASE("wal store: no room for a new segment is Full, and the store goes on once there is") {
  coordtest::TmpfsMount mount("/tmp/coord-wal-full-" + std::to_string(::getpid()), 1 << 20);
  if (!mount.mounted()) {
    MESSAGE("skipped: cannot mount a tmpfs (" << mount.error() << ")");
    return;
  }
  const std::string dir = mount.path() + "/raft";
  auto store = WalLogStore::open(dir, tiny(256 << 10));
  raft::Index next = 1;
  Kind kind = Kind::Io;
  for (;; ++next) {
    try {
      store->write(with({make_entry(next, 1, 10000)}, raft::HardState{1, 0, next}));
    } catch (const LogStoreError& e) {
      kind = e.kind();
      break;
    }
  }
  CHECK(kind == Kind::Full);
  CHECK(!store->failed());
  CHECK(store->last_index() == next - 1);
  // Room again: compact, and the same write goes through.
  store->save_snapshot(snap_meta(next - 1, 1), nullptr);
  store->drop_prefix(next - 1);
  store->write(with({make_entry(next, 1, 10000)}));
  CHECK(store->last_index() == next);
  store.reset();
  CHECK(WalLogStore::open(dir, tiny(256 << 10))->load().entries == std::vector<raft::Entry>{make_entry(next, 1, 10000)});
}

// Crash test. The child applies a seeded sequence of operations to a store with tiny segments
// (rotation, truncation across segments, snapshots, drops) and reports each one once it
// returned; the parent kills it at a random moment and compares the reopened store with a
// plain model of the log replayed to the last report, or the one after it.
namespace {

struct Expected {
  raft::HardState hs;
  raft::SnapshotMeta snap;
  std::string snap_bytes;
  bool has_snap_bytes = false;
  std::vector<raft::Entry> log;  // the entries after the snapshot

  raft::Index last() const { return log.empty() ? snap.index : log.back().index; }
  raft::Term term_at(raft::Index i) const { return i == snap.index ? snap.term : log[i - snap.index - 1].term; }
};

struct Step {
  int kind = 0;  // 0 Ready, 1 save_snapshot + drop_prefix (two calls, reported as one), 2 snapshot Ready
  raft::Ready ready;
  raft::SnapshotMeta meta;
  std::string bytes;
};

class Script {
 public:
  explicit Script(std::uint64_t seed) : rng_(seed) {}

  Step next(Expected& x) {
    Step s;
    const auto roll = rng_() % 20;
    raft::HardState hs = x.hs;
    if (hs.term == 0) hs.term = 1;
    if (roll == 0 && hs.commit > x.snap.index) {
      s.kind = 1;
      s.meta = snap_meta(hs.commit, x.term_at(hs.commit));
      s.bytes = "snapshot " + std::to_string(hs.commit);
      x.log.erase(x.log.begin(), x.log.begin() + static_cast<std::ptrdiff_t>(hs.commit - x.snap.index));
      x.snap = s.meta;
      x.snap_bytes = s.bytes;
      x.has_snap_bytes = true;
      return s;
    }
    if (roll == 1) {
      s.kind = 2;
      hs.term += 1;
      hs.vote = 0;
      hs.commit = x.last() + 1 + rng_() % 5;
      s.meta = snap_meta(hs.commit, hs.term);
      s.bytes = "from the leader " + std::to_string(hs.commit);
      s.ready.snapshot = raft::Snapshot{s.meta, raft::snapshot_bytes(s.bytes)};
      s.ready.hard_state = hs;
      x.snap = s.meta;
      x.snap_bytes = s.bytes;
      x.has_snap_bytes = true;
      x.log.clear();
      x.hs = hs;
      return s;
    }
    raft::Index from = x.last() + 1;
    if (roll < 4) {  // a new leader replaces the uncommitted suffix
      hs.term += 1;
      hs.vote = 1 + rng_() % 3;
      const raft::Index low = std::max(hs.commit, x.snap.index) + 1;
      from = low + rng_() % (x.last() + 2 - low);
    }
    const raft::Index count = 1 + rng_() % 6;
    x.log.resize(from - x.snap.index - 1);
    for (raft::Index i = from; i < from + count; ++i) {
      raft::Entry e = make_entry(i, hs.term, rng_() % 10 == 0 ? 5000 : 150);
      s.ready.entries.push_back(e);
      x.log.push_back(e);
    }
    hs.commit += rng_() % (x.last() - hs.commit + 1);
    if (hs != x.hs) s.ready.hard_state = hs;
    x.hs = hs;
    return s;
  }

 private:
  std::mt19937_64 rng_;
};

void perform(WalLogStore& store, const Step& s) {
  if (s.kind == 1) {
    store.save_snapshot(s.meta, raft::snapshot_bytes(s.bytes));
    store.drop_prefix(s.meta.index);
  } else {
    store.write(s.ready);
  }
}

bool same(const raft::RestoreState& got, const Expected& x) {
  return got.hard_state == x.hs && got.snapshot == x.snap && got.entries == x.log &&
         static_cast<bool>(got.snapshot_data) == x.has_snap_bytes &&
         (!got.snapshot_data || got.snapshot_data->bytes() == x.snap_bytes);
}

}  // namespace

TEST_CASE("wal store: a process killed at a random moment reopens to the last reported state or the next") {
  std::mt19937_64 rng(99);
  std::uint64_t total = 0;
  for (int round = 0; round < 8; ++round) {
    CAPTURE(round);
    coordtest::ScratchDir dir;
    const std::uint64_t seed = 7000 + static_cast<std::uint64_t>(round);
    int pipe_fds[2];
    REQUIRE(::pipe(pipe_fds) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      ::close(pipe_fds[0]);
      try {
        auto store = WalLogStore::open(dir.log(), tiny(16384));
        Expected x;
        Script script(seed);
        for (std::uint64_t n = 1;; ++n) {
          perform(*store, script.next(x));
          if (::write(pipe_fds[1], &n, sizeof n) != static_cast<ssize_t>(sizeof n)) ::_exit(3);
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "writer: %s\n", e.what());
        ::_exit(2);
      }
    }
    ::close(pipe_fds[1]);
    std::uint64_t reported = 0;
    auto drain = [&](int wait_ms) {
      pollfd p{pipe_fds[0], POLLIN, 0};
      if (::poll(&p, 1, wait_ms) <= 0) return false;
      std::uint64_t got[256];
      const ssize_t n = ::read(pipe_fds[0], got, sizeof got);
      if (n <= 0) return false;
      reported = got[static_cast<std::size_t>(n) / sizeof(std::uint64_t) - 1];
      return true;
    };
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(20 + rng() % 400);
    while (std::chrono::steady_clock::now() < until) drain(1);
    REQUIRE(::kill(child, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    while (drain(0)) {
    }
    ::close(pipe_fds[0]);
    REQUIRE_MESSAGE((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL), "the writer stopped on its own");
    total += reported;

    Expected at_report;
    Script script(seed);
    for (std::uint64_t i = 0; i < reported; ++i) (void)script.next(at_report);
    Expected one_more = at_report;
    (void)script.next(one_more);

    auto store = WalLogStore::open(dir.log(), tiny(16384));
    const auto state = store->load();
    const bool exact = same(state, at_report);
    CHECK_MESSAGE((exact || same(state, one_more)), "neither the reported state nor the next one");
    MESSAGE("round " << round << ": " << reported << " steps reported, the log holds "
                     << std::string(exact ? "exactly those" : "one more") << ", " << segment_files(dir.log()).size()
                     << " segments");
    const raft::Term term = std::max<raft::Term>(state.hard_state.term, 1);
    store->write(with({make_entry(store->last_index() + 1, term)}, raft::HardState{term, state.hard_state.vote, state.hard_state.commit}));
  }
  CHECK(total > 0);
}

TEST_CASE("wal store: a long random workload over tiny segments reopens to the model every time") {
  // The replay's hard cases (a replay starting at a later segment whose head names an older
  // snapshot, truncations below everything it replayed, snapshots saved after their entries'
  // segments went) arise from the order of operations, not from crashes: many seeds, reopened
  // often.
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    CAPTURE(seed);
    coordtest::ScratchDir dir;
    Expected x;
    Script script(seed);
    auto store = WalLogStore::open(dir.log(), tiny(8192));
    for (int step = 1; step <= 1500; ++step) {
      perform(*store, script.next(x));
      if (step % 29 == 0) {
        store.reset();
        store = WalLogStore::open(dir.log(), tiny(8192));
        const auto state = store->load();
        REQUIRE_MESSAGE(same(state, x), "step " << step);
        REQUIRE(store->read_entries(x.snap.index + 1, x.last() + 1, 1 << 30) == x.log);
      }
    }
  }
}
