// Serializes the state machine's snapshot off the event loop. A kv::SnapshotSource pins one
// consistent view (an LMDB read transaction, MVCC), so the loop keeps applying entries while a
// thread of this worker turns that view into bytes; the host picks them up later, on the loop
// thread, to compact the Raft log with them. One snapshot at a time.
//
// With a directory (the Raft log's), the bytes are streamed into a new snapshot file there
// (storage/snapshot_file.h: written a piece at a time, fsynced, renamed, directory fsynced) and
// handed over as that file, mapped: never in memory whole, and the log store only records it.
// Without one, they are made in memory (a client's `snapshot save`, tests).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "kv/state_machine.h"
#include "raft/types.h"

namespace coord::net {

class SnapshotWorker {
 public:
  struct Done {
    kv::Index index = 0;
    kv::Revision revision = 0;
    raft::SnapshotDataPtr data;  // null when serializing failed
    std::string error;
    double seconds = 0;  // spent serializing
  };

  // `background` false: start() serializes at once on the calling thread (tests).
  explicit SnapshotWorker(bool background, std::string file_directory = {})
      : background_(background), file_directory_(std::move(file_directory)) {}
  ~SnapshotWorker() { wait(); }
  SnapshotWorker(const SnapshotWorker&) = delete;
  SnapshotWorker& operator=(const SnapshotWorker&) = delete;

  // A snapshot started and not yet taken.
  bool busy() const { return running_ || done_.has_value(); }
  // Starts serializing `source`; only when not busy.
  void start(kv::SnapshotSource source);
  // The finished snapshot, once; nothing while it runs (or when none was started).
  std::optional<Done> take();
  // Blocks until a running snapshot is serialized (before the storage under it closes).
  void wait();

 private:
  bool background_;
  std::string file_directory_;  // empty: in memory
  bool running_ = false;
  std::atomic<bool> finished_{false};
  std::thread thread_;
  std::optional<Done> result_;  // written by the thread before finished_, read after it
  std::optional<Done> done_;
};

}  // namespace coord::net
