// A follower's incoming snapshot, chunk by chunk, straight into a snapshot file of the Raft log's
// directory (storage/snapshot_file.h) instead of memory: the core calls it from step() on the
// loop thread, so it only writes to the page cache; the file is synced by the log store on the
// disk thread, before the Ready's transaction records it (LmdbLogStore::write).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "raft/types.h"
#include "storage/snapshot_file.h"

namespace coord::net {

class FileSnapshotReceiver final : public raft::SnapshotReceiver {
 public:
  FileSnapshotReceiver(std::string directory, raft::Index index);
  bool append(std::string_view chunk) override;
  std::uint64_t size() const override { return size_; }
  raft::SnapshotDataPtr finish() override;

 private:
  std::string directory_;
  raft::Index index_ = 0;
  std::unique_ptr<storage::SnapshotFileWriter> writer_;  // null once it failed
  std::uint64_t size_ = 0;
};

}  // namespace coord::net
