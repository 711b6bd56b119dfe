#include "net/snapshot_worker.h"

#include <chrono>
#include <exception>
#include <utility>

#include "raft/assert.h"
#include "storage/snapshot_file.h"

namespace coord::net {

namespace {

SnapshotWorker::Done serialize(const kv::SnapshotSource& source, const std::string& file_directory) {
  SnapshotWorker::Done done;
  done.index = source.index();
  done.revision = source.revision();
  const auto start = std::chrono::steady_clock::now();
  try {
    if (file_directory.empty()) {
      done.data = raft::snapshot_bytes(source.bytes());
    } else {
      storage::SnapshotFileWriter file(file_directory, source.index());
      source.write_to([&file](std::string_view piece) { file.append(piece); });
      // Removed unless the log records it (the host may drop it: a leader's snapshot replaced
      // the log meanwhile, or the log had no room for its record).
      done.data = storage::SnapshotFile::open(file_directory, file.finish(), /*durable=*/true,
                                              /*unlink_unless_recorded=*/true);
    }
  } catch (const std::exception& e) {
    // A read can fail transiently (MDB_READERS_FULL, say), the disk can be full; the host tries
    // again later. An unfinished file removes itself.
    done.error = e.what();
  }
  done.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return done;
}

}  // namespace

void SnapshotWorker::start(kv::SnapshotSource source) {
  COORD_ASSERT(!busy(), "one snapshot at a time");
  if (!background_) {
    done_ = serialize(source, file_directory_);
    return;
  }
  running_ = true;
  finished_ = false;
  thread_ = std::thread([this, source = std::move(source)] {
    result_ = serialize(source, file_directory_);
    finished_.store(true, std::memory_order_release);
  });
}

std::optional<SnapshotWorker::Done> SnapshotWorker::take() {
  if (running_ && finished_.load(std::memory_order_acquire)) wait();
  std::optional<Done> out = std::move(done_);
  done_.reset();
  return out;
}

void SnapshotWorker::wait() {
  if (!running_) return;
  thread_.join();
  running_ = false;
  done_ = std::move(result_);
  result_.reset();
}

}  // namespace coord::net
