// The background check of a snapshot file (net/snapshot_check.h): destroying one that is still
// reading stops it between two pieces of the file, so a member that stops does not first read
// a large snapshot to its end.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "net/snapshot_check.h"
#include "storage/log_store_error.h"
#include "storage/snapshot_file.h"

namespace {

using namespace coord;
using Clock = std::chrono::steady_clock;

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/coord-snapcheck-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

// A sparse file of `bytes` zeros under a snapshot file's name, with a checksum that does not
// match (a check reads it whole and finds it damaged).
std::shared_ptr<const storage::SnapshotFile> sparse_snapshot(const std::string& dir, std::uint64_t bytes) {
  storage::SnapshotFileInfo info;
  info.name = storage::new_snapshot_file_name(5);
  info.bytes = bytes;
  info.crc = 1;
  { std::ofstream(dir + "/" + info.name, std::ios::binary); }
  std::filesystem::resize_file(dir + "/" + info.name, bytes);
  return storage::SnapshotFile::open(dir, info);
}

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

}  // namespace

TEST_CASE("snapshot file check: verify gives up when asked before a piece, and reads every piece otherwise") {
  TempDir dir;
  const auto file = sparse_snapshot(dir.path, std::uint64_t{20} << 20);  // pieces at 0, 8 and 16 MiB
  std::vector<std::uint64_t> asked;
  CHECK_FALSE(file->verify([&](std::uint64_t offset) {
    asked.push_back(offset);
    return offset == 0;  // the first piece, then stop
  }));
  CHECK(asked == std::vector<std::uint64_t>{0, std::uint64_t{8} << 20});
  asked.clear();
  CHECK_THROWS_AS(file->verify([&](std::uint64_t offset) {  // read whole: the checksum differs
    asked.push_back(offset);
    return true;
  }),
                  storage::LogStoreError);
  CHECK(asked.size() == 3);
}

TEST_CASE("snapshot file check: destroying a check still reading stops it before its next piece, not at the end of the file") {
  TempDir dir;
  const auto file = sparse_snapshot(dir.path, std::uint64_t{256} << 20);  // 32 pieces
  std::atomic<bool> destroying{false};
  std::atomic<int> pieces_after_destroy{0};
  std::atomic<int> pieces{0};
  net::SnapshotFileCheck* raw = nullptr;
  std::atomic<bool> started{false};
  auto check = std::make_unique<net::SnapshotFileCheck>(file, /*background=*/true, [&](std::uint64_t offset) {
    ++pieces;
    if (offset != 0) {
      if (destroying) ++pieces_after_destroy;
      return;
    }
    // In the middle of the read when the member stops: wait (bounded) until the stop is asked.
    while (!started) std::this_thread::yield();
    for (int i = 0; i < 2000 && !raw->stopping(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  raw = check.get();
  started = true;
  destroying = true;
  const Clock::time_point stop_start = Clock::now();
  check.reset();  // as ~ReplicaHost does: joins the thread
  MESSAGE("stopped in ", ms_since(stop_start), " ms after ", pieces.load(), " of 32 pieces");
  // It went no further than the piece it was at.
  CHECK(pieces_after_destroy.load() == 0);
  CHECK(pieces.load() == 1);
}
