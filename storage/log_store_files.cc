#include "storage/log_store_files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace coord::storage {

namespace {

using Kind = LogStoreError::Kind;

constexpr const char* owner_lock_name = "owner.lock";
constexpr mode_t file_mode = 0644;
constexpr mode_t directory_mode = 0755;

}  // namespace

const char* to_string(LogStoreError::Kind kind) {
  switch (kind) {
    case Kind::Io: return "io";
    case Kind::Full: return "full";
    case Kind::Corrupt: return "corrupt";
    case Kind::Invalid: return "invalid";
    case Kind::InUse: return "in use";
    case Kind::Failed: return "failed";
  }
  return "unknown";
}

std::string errno_text(int err) { return fmt::format("{} (errno {})", std::strerror(err), err); }

void sync_directory(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    throw LogStoreError(Kind::Io, err, fmt::format("{}: open directory: {}", path, errno_text(err)));
  }
  const int rc = ::fsync(fd) == 0 || errno == EINVAL ? 0 : errno;
  ::close(fd);
  if (rc != 0) throw LogStoreError(Kind::Io, rc, fmt::format("{}: fsync directory: {}", path, errno_text(rc)));
}

int lock_log_directory(const std::string& directory) {
  bool created = false;
  if (::mkdir(directory.c_str(), directory_mode) == 0) {
    created = true;
  } else if (errno != EEXIST) {
    const int err = errno;
    throw LogStoreError(Kind::Io, err, fmt::format("log store {}: mkdir: {}", directory, errno_text(err)));
  }
  const std::string lock_path = directory + "/" + owner_lock_name;
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, file_mode);
  if (fd < 0) {
    const int err = errno;
    throw LogStoreError(Kind::Io, err, fmt::format("log store {}: open {}: {}", directory, lock_path, errno_text(err)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      throw LogStoreError(Kind::InUse, err,
                          fmt::format("log store {}: already open in another store or process", directory));
    }
    throw LogStoreError(Kind::Io, err, fmt::format("log store {}: flock: {}", directory, errno_text(err)));
  }
  if (created) {
    try {
      const std::filesystem::path parent = std::filesystem::path(directory).parent_path();
      sync_directory(parent.empty() ? std::string(".") : parent.string());
    } catch (...) {
      ::close(fd);
      throw;
    }
  }
  return fd;
}

std::shared_ptr<const SnapshotFile> snapshot_file_for(const std::string& directory, raft::Index index,
                                                      const raft::SnapshotDataPtr& data) {
  if (auto file = std::dynamic_pointer_cast<const SnapshotFile>(data); file && file->directory() == directory) {
    // Written by the host; it must still be there under its name when the record names it.
    struct stat st {};
    if (::stat(file->path().c_str(), &st) != 0 || static_cast<std::uint64_t>(st.st_size) != file->info().bytes) {
      throw LogStoreError(Kind::Invalid, 0,
                          fmt::format("log store {}: snapshot file {} is gone or changed", directory, file->path()));
    }
    file->sync();
    return file;
  }
  return write_snapshot_file(directory, index, data->bytes());
}

SnapshotRecord snapshot_record_of(const raft::SnapshotMeta& meta, const SnapshotFile* file) {
  SnapshotRecord record;
  record.meta = meta;
  if (file != nullptr) {
    record.has_data = true;
    record.data_bytes = file->info().bytes;
    record.data_crc = file->info().crc;
    record.file = file->info().name;
  }
  return record;
}

void after_failed_record(const std::shared_ptr<const SnapshotFile>& file, const raft::SnapshotDataPtr& given,
                         LogStoreError::Kind kind) {
  if (!file) return;
  if (kind != LogStoreError::Kind::Full && kind != LogStoreError::Kind::Invalid) {
    // The write may have landed (a failed fsync or meta-page write): the log may name this
    // file, so nothing here may remove it, not even its own self-removal (snapshot_file.h);
    // the next open keeps it exactly when it is recorded.
    file->mark_recorded();
    return;
  }
  // Nothing was written: the file is nobody's. The caller's own file removes itself when its
  // last reference goes; one this store wrote is removed now rather than at the next snapshot.
  if (file != given) ::unlink(file->path().c_str());
}

}  // namespace coord::storage
