// A follower's incoming snapshot, chunk by chunk, straight into a snapshot file of the Raft log's
// directory (storage/snapshot_file.h) instead of memory: the core calls it from step() on the
// loop thread, so it only writes to the page cache; the file is synced by the log store on the
// disk thread, before the Ready's write records it (WalLogStore::write).
//
// The bytes are checked as they arrive (kv::SnapshotStreamCheck: the kv snapshot's format, its
// applied index against the Raft snapshot's, and its FNV-1a trailer): a damaged or torn snapshot
// (the leader's file damaged at rest, say) is refused at finish(), its file removed, before the
// core records anything or drops any entry, so the follower stays as it was and the leader
// starts the transfer again (with its latest snapshot).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "kv/snapshot.h"
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
  kv::SnapshotStreamCheck check_;
};

}  // namespace coord::net
