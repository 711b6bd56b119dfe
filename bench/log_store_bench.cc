// coord-log-store-bench: how long one durable write of the Raft log takes with each store, on
// the same disk: LmdbLogStore (a write transaction: data flush, then the meta page) against
// WalLogStore (one pwrite into a preallocated segment, one fdatasync).
//
//   coord-log-store-bench DIR [--count N] [--bytes B] [--segment-bytes S]
//
// In a fresh directory under DIR per store (removed afterwards) it writes N Readies of one entry
// of B bytes each (2,000 of 300 bytes by default), the first with a hard state, and prints the
// p50, p99 and mean of write() in milliseconds and the number of commits, then how long a reopen
// and load() of what it wrote take (open replays a WAL; load reads every entry back), after a
// compaction that keeps the last tenth (drop_prefix timed). A tool, not a test:
// its numbers depend on the disk. Exit status: 0 measured, 1 a store failed, 2 bad usage.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "storage/lmdb_log_store.h"
#include "storage/wal_log_store.h"

namespace {

namespace raft = coord::raft;

struct Result {
  std::vector<double> ms;
  std::uint64_t commits = 0;
};

template <typename Store>
Result measure(Store& store, int count, std::size_t bytes) {
  Result result;
  result.ms.reserve(static_cast<std::size_t>(count));
  for (int i = 1; i <= count; ++i) {
    raft::Ready ready;
    ready.entries.push_back(raft::Entry{1, static_cast<raft::Index>(i), raft::EntryType::Normal,
                                        std::string(bytes, static_cast<char>('a' + i % 26))});
    if (i == 1) ready.hard_state = raft::HardState{1, 1, 0};
    const auto start = std::chrono::steady_clock::now();
    store.write(ready);
    result.ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  result.commits = store.stats().commits;
  return result;
}

// Compaction as the host does it: a snapshot near the end of the log (no bytes: only the
// log's own cost), then the prefix before it dropped; how long drop_prefix blocks its thread.
template <typename Store>
void compact(const char* name, Store& store, int count) {
  const raft::Index through = static_cast<raft::Index>(count) - static_cast<raft::Index>(count) / 10;
  raft::SnapshotMeta meta;
  meta.index = through;
  meta.term = 1;
  meta.conf.voters = {1};
  store.save_snapshot(meta, nullptr);
  const auto start = std::chrono::steady_clock::now();
  store.drop_prefix(through);
  std::printf("%-5s drop_prefix(%llu) %.1f ms\n", name, static_cast<unsigned long long>(through),
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
}

// Reopens the store in `dir` and loads it: the time a restart spends in the log.
template <typename Store, typename... Options>
void reopen(const char* name, const std::string& dir, Options... options) {
  const auto start = std::chrono::steady_clock::now();
  auto store = Store::open(dir, options...);
  const auto opened = std::chrono::steady_clock::now();
  const auto state = store->load();
  const auto loaded = std::chrono::steady_clock::now();
  std::printf("%-5s reopen %.1f ms, load %.1f ms (%zu entries)\n", name,
              std::chrono::duration<double, std::milli>(opened - start).count(),
              std::chrono::duration<double, std::milli>(loaded - opened).count(), state.entries.size());
}

void print(const char* name, Result r) {
  std::sort(r.ms.begin(), r.ms.end());
  double sum = 0;
  for (double v : r.ms) sum += v;
  auto at = [&](double q) { return r.ms[std::min(r.ms.size() - 1, static_cast<std::size_t>(q * static_cast<double>(r.ms.size())))]; };
  std::printf("%-5s writes %zu  p50 %.3f ms  p99 %.3f ms  mean %.3f ms  max %.3f ms  commits %llu\n", name,
              r.ms.size(), at(0.50), at(0.99), sum / static_cast<double>(r.ms.size()), r.ms.back(),
              static_cast<unsigned long long>(r.commits));
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  int count = 2000;
  std::size_t bytes = 300;
  std::uint64_t segment_bytes = coord::storage::wal_segment_bytes_default;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--count" && i + 1 < argc) {
      count = std::atoi(argv[++i]);
    } else if (arg == "--bytes" && i + 1 < argc) {
      bytes = static_cast<std::size_t>(std::atoll(argv[++i]));
    } else if (arg == "--segment-bytes" && i + 1 < argc) {
      segment_bytes = static_cast<std::uint64_t>(std::atoll(argv[++i]));
    } else if (dir.empty() && !arg.empty() && arg[0] != '-') {
      dir = arg;
    } else {
      dir.clear();
      break;
    }
  }
  if (dir.empty() || count < 1) {
    std::fprintf(stderr, "usage: coord-log-store-bench DIR [--count N] [--bytes B] [--segment-bytes S]\n");
    return 2;
  }
  const std::string lmdb_dir = dir + "/log-store-bench-lmdb";
  const std::string wal_dir = dir + "/log-store-bench-wal";
  try {
    {
      auto store = coord::storage::LmdbLogStore::open(lmdb_dir);
      print("lmdb", measure(*store, count, bytes));
      compact("lmdb", *store, count);
    }
    reopen<coord::storage::LmdbLogStore>("lmdb", lmdb_dir);
    {
      auto store = coord::storage::WalLogStore::open(wal_dir, coord::storage::WalLogStoreOptions{segment_bytes});
      print("wal", measure(*store, count, bytes));
      compact("wal", *store, count);
    }
    reopen<coord::storage::WalLogStore>("wal", wal_dir, coord::storage::WalLogStoreOptions{segment_bytes});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "coord-log-store-bench: %s\n", e.what());
    std::filesystem::remove_all(lmdb_dir);
    std::filesystem::remove_all(wal_dir);
    return 1;
  }
  std::filesystem::remove_all(lmdb_dir);
  std::filesystem::remove_all(wal_dir);
  return 0;
}
