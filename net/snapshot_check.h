// Checks the Raft log's snapshot file whole (its CRC-32C) on a thread of its own. A restart whose
// state is intact does not read the snapshot, so that it serves at once whatever the snapshot's
// size; this finds damage at rest soon after the start anyway. Until it passed, the host sends
// no chunk of the file to a follower; a damaged file is replaced by a fresh snapshot of the
// intact state (net/replica_host.cc, finish_snapshot_check). The host runs it again when a
// follower refuses a whole transfer. Destroying a check that is still reading stops it between
// two pieces of the file (a few milliseconds), so that a member stops promptly.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "storage/snapshot_file.h"

namespace coord::net {

class SnapshotFileCheck {
 public:
  // `background` false: checks at once, on the calling thread (tests). `before_piece` (tests):
  // called on the checking thread before each piece of the file is read, with its offset.
  SnapshotFileCheck(std::shared_ptr<const storage::SnapshotFile> file, bool background,
                    std::function<void(std::uint64_t offset)> before_piece = {});
  ~SnapshotFileCheck();
  SnapshotFileCheck(const SnapshotFileCheck&) = delete;
  SnapshotFileCheck& operator=(const SnapshotFileCheck&) = delete;

  // Once the check finished: "" when the file is intact, else the error naming it.
  std::optional<std::string> result() const;
  // Tells the thread to stop between two pieces of the file; result() then stays empty.
  void stop() { stop_.store(true, std::memory_order_relaxed); }
  bool stopping() const { return stop_.load(std::memory_order_relaxed); }
  const std::shared_ptr<const storage::SnapshotFile>& file() const { return file_; }

 private:
  // nullopt: stopped before the end.
  std::optional<std::string> check() const;

  std::shared_ptr<const storage::SnapshotFile> file_;
  std::function<void(std::uint64_t offset)> before_piece_;
  std::string error_;  // written by the thread before finished_
  std::atomic<bool> finished_{false};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace coord::net
