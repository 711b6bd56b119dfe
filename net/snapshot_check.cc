#include "net/snapshot_check.h"

#include <exception>
#include <utility>

namespace coord::net {

SnapshotFileCheck::SnapshotFileCheck(std::shared_ptr<const storage::SnapshotFile> file, bool background,
                                     std::function<void(std::uint64_t offset)> before_piece)
    : file_(std::move(file)), before_piece_(std::move(before_piece)) {
  if (!background) {
    error_ = check().value_or("");
    finished_ = true;
    return;
  }
  thread_ = std::thread([this] {
    const std::optional<std::string> error = check();
    if (!error) return;  // stopped: no result
    error_ = *error;
    finished_.store(true, std::memory_order_release);
  });
}

SnapshotFileCheck::~SnapshotFileCheck() {
  // A whole-file read may take seconds: the thread gives up before its next piece.
  stop();
  if (thread_.joinable()) thread_.join();
}

std::optional<std::string> SnapshotFileCheck::check() const {
  try {
    const bool finished = file_->verify([this](std::uint64_t offset) {
      if (before_piece_) before_piece_(offset);
      return !stopping();
    });
    if (!finished) return std::nullopt;
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

std::optional<std::string> SnapshotFileCheck::result() const {
  if (!finished_.load(std::memory_order_acquire)) return std::nullopt;
  return error_;
}

}  // namespace coord::net
