#include "storage/log_conversion.h"

#include <fcntl.h>
#include <stdio.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>

#include "storage/lmdb_log_store.h"
#include "storage/log_store_files.h"

namespace coord::storage {
namespace {

namespace fs = std::filesystem;
using Kind = LogStoreError::Kind;

bool holds_lmdb_log(const std::string& directory) {
  std::error_code ec;
  return fs::exists(directory + "/data.mdb", ec);
}

void remove_tree(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) {
    throw LogStoreError(Kind::Io, ec.value(),
                        fmt::format("log conversion: removing {}: {}", path, ec.message()));
  }
}

std::string parent_of(const std::string& path) {
  const std::string parent = fs::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

// Entries per Ready of the copy: the WAL's writes stay small whatever the log's size.
constexpr std::size_t kCopyBytes = std::size_t{8} << 20;

[[noreturn]] void differs(const std::string& directory, const std::string& what) {
  throw LogStoreError(Kind::Corrupt, 0,
                      fmt::format("log conversion of {}: the new WAL does not read back as the LMDB log: {} "
                                  "differ; the LMDB log is kept as it was",
                                  directory, what));
}

std::string_view bytes_of(const raft::SnapshotDataPtr& data) { return data ? data->bytes() : std::string_view{}; }

// Writes what the LMDB log holds into a new WAL in `target`, in Readies of about kCopyBytes. Each
// carries the hard state, its commit held to the entries written so far (the storage rules: the
// hard state's term covers the log's, the commit never passes its end), the first one the
// snapshot too.
void write_wal(const raft::RestoreState& lmdb, const std::string& target, const WalLogStoreOptions& options) {
  std::unique_ptr<WalLogStore> wal = WalLogStore::open(target, options);
  std::size_t next = 0;
  bool first = true;
  do {
    raft::Ready part;
    if (first && !(lmdb.snapshot == raft::SnapshotMeta{})) {
      part.snapshot = raft::Snapshot{lmdb.snapshot, lmdb.snapshot_data};
    }
    first = false;
    std::size_t bytes = 0;
    while (next < lmdb.entries.size() && (part.entries.empty() || bytes < kCopyBytes)) {
      bytes += lmdb.entries[next].data.size();
      part.entries.push_back(lmdb.entries[next++]);
    }
    if (!(lmdb.hard_state == raft::HardState{})) {
      raft::HardState hs = lmdb.hard_state;
      const raft::Index end = part.entries.empty() ? lmdb.snapshot.index : part.entries.back().index;
      hs.commit = std::min(hs.commit, std::max(end, lmdb.snapshot.index));
      part.hard_state = hs;
    }
    if (part.snapshot || !part.entries.empty() || part.hard_state) wal->write(part);
  } while (next < lmdb.entries.size());
}

// Reopens the WAL and compares it with what the LMDB log held, entries in pieces.
void check_wal(const raft::RestoreState& lmdb, const std::string& target, const WalLogStoreOptions& options,
               const std::string& directory) {
  std::unique_ptr<WalLogStore> wal = WalLogStore::open(target, options);
  if (!(wal->hard_state() == lmdb.hard_state)) differs(directory, "the hard states");
  if (!(wal->snapshot_meta() == lmdb.snapshot)) differs(directory, "the snapshots' metadata");
  const std::shared_ptr<const SnapshotFile>& file = wal->snapshot_file();
  if ((file ? file->bytes() : std::string_view{}) != bytes_of(lmdb.snapshot_data)) {
    differs(directory, "the snapshots' bytes");
  }
  const raft::Index last = lmdb.entries.empty() ? lmdb.snapshot.index : lmdb.entries.back().index;
  if (wal->last_index() != last) differs(directory, fmt::format("the last indexes ({} and {})", last, wal->last_index()));
  std::size_t at = 0;
  while (at < lmdb.entries.size()) {
    const raft::Index lo = lmdb.entries[at].index;
    const std::vector<raft::Entry> piece = wal->read_entries(lo, last + 1, kCopyBytes);
    if (piece.empty()) differs(directory, fmt::format("the entries from {} (the WAL has none)", lo));
    for (const raft::Entry& e : piece) {
      if (at >= lmdb.entries.size() || !(e == lmdb.entries[at])) differs(directory, fmt::format("the entries at {}", e.index));
      ++at;
    }
  }
}

}  // namespace

bool convert_lmdb_log_to_wal(const std::string& directory, const WalLogStoreOptions& options) {
  const std::string staging = directory + ".convert";
  std::error_code ec;
  if (!holds_lmdb_log(directory)) {
    // Either a WAL (perhaps with the old LMDB directory left by a crash after the exchange) or
    // nothing yet.
    if (fs::exists(staging, ec)) {
      remove_tree(staging);
      sync_directory(parent_of(directory));
    }
    return false;
  }
  raft::RestoreState lmdb_contents;
  {
    std::unique_ptr<LmdbLogStore> lmdb = LmdbLogStore::open(directory);
    // Every checksum verified: damage stops the conversion here, as it would stop the start.
    lmdb_contents = lmdb->load();
  }
  remove_tree(staging);  // a conversion that stopped part-way
  write_wal(lmdb_contents, staging, options);
  check_wal(lmdb_contents, staging, options, directory);
  sync_directory(staging);
  // One atomic step: DIR becomes the WAL, DIR.convert the LMDB log.
  if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, directory.c_str(), RENAME_EXCHANGE) != 0) {
    const int err = errno;
    throw LogStoreError(Kind::Io, err,
                        fmt::format("log conversion: exchanging {} and {}: {}", staging, directory, errno_text(err)));
  }
  sync_directory(parent_of(directory));
  remove_tree(staging);
  sync_directory(parent_of(directory));
  return true;
}

}  // namespace coord::storage
