#include "net/snapshot_worker.h"

#include <chrono>
#include <exception>
#include <utility>

#include "raft/assert.h"

namespace coord::net {

namespace {

SnapshotWorker::Done serialize(const kv::SnapshotSource& source) {
  SnapshotWorker::Done done;
  done.index = source.index();
  done.revision = source.revision();
  const auto start = std::chrono::steady_clock::now();
  try {
    done.data = std::make_shared<const std::string>(source.bytes());
  } catch (const std::exception& e) {
    // A read can fail transiently (MDB_READERS_FULL, say); the host tries again later.
    done.error = e.what();
  }
  done.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return done;
}

}  // namespace

void SnapshotWorker::start(kv::SnapshotSource source) {
  COORD_ASSERT(!busy(), "one snapshot at a time");
  if (!background_) {
    done_ = serialize(source);
    return;
  }
  running_ = true;
  finished_ = false;
  thread_ = std::thread([this, source = std::move(source)] {
    result_ = serialize(source);
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
