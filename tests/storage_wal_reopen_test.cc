// What a WalLogStore's open makes durable, and what a prefix drop keeps, when a crash left the
// log in an unusual place (found in review of the WAL): the replayed log is synced at open (a
// kill -9 may have left the last write in the page cache only), and a drop never deletes the
// segments holding the state when the newest segment holds no records yet.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "storage/wal_log_store.h"
#include "tests/wal_test_files.h"
#include "storage/wal_segment.h"

namespace raft = coord::raft;
namespace fs = std::filesystem;
using coord::storage::WalLogStore;
using coord::storage::WalLogStoreOptions;

using coordtest::overwrite;
using coordtest::records_of;
using coordtest::segment_files;
using coordtest::slurp;

namespace {

raft::Ready entries(raft::Index first, raft::Index last, raft::Term term, std::optional<raft::HardState> hs) {
  raft::Ready r;
  for (raft::Index i = first; i <= last; ++i) r.entries.push_back(raft::Entry{term, i, raft::EntryType::Normal, "e"});
  r.hard_state = hs;
  return r;
}

}  // namespace

TEST_CASE("wal reopen: open makes what it replayed durable before anything relies on it") {
  // A write left unsynced by a kill -9 (its pwrite done, its fdatasync not) is replayed from the
  // page cache; the reopened store syncs the last segment and the directory at once, one sync
  // counted in its stats. Without it only a later write's segment was ever synced (strace).
  coordtest::ScratchDir dir;
  WalLogStore::open(dir.log())->write(entries(1, 3, 1, raft::HardState{1, 1, 0}));
  std::unique_ptr<WalLogStore> reopened = WalLogStore::open(dir.log());
  CHECK(reopened->stats().commits == 1);
  CHECK(reopened->last_index() == 3);
}

TEST_CASE("wal reopen: a drop right after a reopen onto an empty newest segment keeps the state") {
  // The newest segment holds nothing (a crash inside its creation left it empty): it has no
  // head, so the segment before it, holding the hard state and the snapshot, must stay.
  coordtest::ScratchDir dir;
  const raft::HardState hs{3, 2, 5};
  {
    std::unique_ptr<WalLogStore> store = WalLogStore::open(dir.log());
    store->write(entries(1, 5, 3, hs));
    raft::SnapshotMeta meta;
    meta.index = 5;
    meta.term = 3;
    meta.conf.voters = {1, 2, 3};
    store->save_snapshot(meta, nullptr);
  }
  { std::ofstream(dir.log() + "/" + coord::storage::wal_segment_name(2)); }  // an empty segment 2
  WalLogStore::open(dir.log())->drop_prefix(5);
  std::unique_ptr<WalLogStore> store = WalLogStore::open(dir.log());
  CHECK(store->hard_state() == hs);
  CHECK(store->snapshot_meta().index == 5);
  CHECK(store->last_index() == 5);
}
