// A WAL on a disk without room for a whole preallocated segment (storage/wal_log_store.h,
// create_segment): it opens and writes with smaller segments, just large enough, and reports Full
// (retryable, nothing written) only when not even those fit. Needs root for its tmpfs; skipped
// otherwise.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "storage/wal_log_store.h"
#include "tmpfs_mount.h"

namespace raft = coord::raft;
using coord::storage::LogStoreError;
using coord::storage::WalLogStore;
using coord::storage::WalLogStoreOptions;

namespace {

std::string mount_point() {
  char name[] = "/tmp/coord-wal-small-disk-XXXXXX";
  REQUIRE(::mkdtemp(name) != nullptr);
  return name;
}

raft::Ready entries(raft::Index first, raft::Index last, std::size_t size) {
  raft::Ready r;
  for (raft::Index i = first; i <= last; ++i) r.entries.push_back(raft::Entry{1, i, raft::EntryType::Normal, std::string(size, 'x')});
  r.hard_state = raft::HardState{1, 1, 0};
  return r;
}

}  // namespace

TEST_CASE("wal on a small disk: segments shrink to what fits, and Full comes only when nothing does") {
  const std::string root = mount_point();
  {
    coordtest::TmpfsMount fs(root, std::size_t{6} << 20);
    if (!fs.mounted()) {
      MESSAGE("skipped: cannot mount a tmpfs: " << fs.error());
      return;
    }
    const std::string dir = root + "/raft";
    const WalLogStoreOptions big{std::uint64_t{64} << 20};  // more than the whole disk
    {
      std::unique_ptr<WalLogStore> wal = WalLogStore::open(dir, big);
      raft::Index next = 1;
      // About 4.5 MiB in batches of 256 KiB: several small segments, each 1 MiB.
      for (int batch = 0; batch < 18; ++batch, next += 64) wal->write(entries(next, next + 63, 4096));
      CHECK(wal->last_index() == next - 1);
      // The disk is nearly full now: a batch that fits in no segment the disk can hold is Full,
      // and the store stays usable.
      try {
        wal->write(entries(next, next + 511, 4096));  // 2 MiB
        FAIL("a write larger than the free space went through");
      } catch (const LogStoreError& e) {
        CHECK(e.kind() == LogStoreError::Kind::Full);
      }
      CHECK_FALSE(wal->failed());
      CHECK(wal->last_index() == next - 1);
    }
    std::unique_ptr<WalLogStore> reopened = WalLogStore::open(dir, big);
    CHECK(reopened->load().entries.size() == 18 * 64);
  }
  std::filesystem::remove_all(root);
}
