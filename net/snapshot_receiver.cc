#include "net/snapshot_receiver.h"

#include <spdlog/spdlog.h>

#include <exception>
#include <utility>

namespace coord::net {

FileSnapshotReceiver::FileSnapshotReceiver(std::string directory, raft::Index index)
    : directory_(std::move(directory)), index_(index), check_(index) {
  try {
    writer_ = std::make_unique<storage::SnapshotFileWriter>(directory_, index_);
  } catch (const std::exception& e) {
    spdlog::warn("snapshot at {} from the leader not received: {}", index_, e.what());
  }
}

bool FileSnapshotReceiver::append(std::string_view chunk) {
  if (!writer_) return false;
  try {
    writer_->append(chunk);
    check_.update(chunk);
    size_ += chunk.size();
    return true;
  } catch (const std::exception& e) {
    // A full disk, say: the core drops the transfer, the leader starts it again later.
    spdlog::warn("snapshot at {} from the leader not received: {}", index_, e.what());
    writer_.reset();  // removes its .part file
    return false;
  }
}

raft::SnapshotDataPtr FileSnapshotReceiver::finish() {
  if (!writer_) return nullptr;
  if (const kv::Status status = check_.finish(); !status.ok()) {
    // Never recorded: the core drops the transfer and the leader sends one again.
    spdlog::warn("snapshot at {} from the leader refused: {}", index_, status.message);
    writer_.reset();  // removes its .part file
    return nullptr;
  }
  try {
    // Not synced here (the loop thread): the log store syncs it before recording it.
    const storage::SnapshotFileInfo info = writer_->finish(/*sync=*/false);
    writer_.reset();
    // Removed unless a log records it: the core may ignore it (its log holds those entries
    // already), or the host may stop before recording it.
    return storage::SnapshotFile::open(directory_, info, /*durable=*/false, /*unlink_unless_recorded=*/true);
  } catch (const std::exception& e) {
    spdlog::warn("snapshot at {} from the leader not received: {}", index_, e.what());
    writer_.reset();
    return nullptr;
  }
}

}  // namespace coord::net
