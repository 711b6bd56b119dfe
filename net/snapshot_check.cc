#include "net/snapshot_check.h"

#include <exception>
#include <utility>

namespace coord::net {

namespace {

std::string check(const storage::SnapshotFile& file) {
  try {
    file.verify();
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

}  // namespace

SnapshotFileCheck::SnapshotFileCheck(std::shared_ptr<const storage::SnapshotFile> file, bool background)
    : file_(std::move(file)) {
  if (!background) {
    error_ = check(*file_);
    finished_ = true;
    return;
  }
  thread_ = std::thread([this] {
    error_ = check(*file_);
    finished_.store(true, std::memory_order_release);
  });
}

SnapshotFileCheck::~SnapshotFileCheck() {
  if (thread_.joinable()) thread_.join();
}

std::optional<std::string> SnapshotFileCheck::result() const {
  if (!finished_.load(std::memory_order_acquire)) return std::nullopt;
  return error_;
}

}  // namespace coord::net
