#include "storage/snapshot_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>
#include <vector>

#include "storage/crc32c.h"
#include "storage/hex_name.h"
#include "storage/log_store_error.h"

namespace coord::storage {

namespace {

using Kind = LogStoreError::Kind;

constexpr std::string_view name_prefix = "snap-";
constexpr std::string_view name_suffix = ".snap";
constexpr std::string_view part_suffix = ".part";
constexpr mode_t file_mode = 0644;
// Pieces in which verify() reads a file, dropping each from the resident set after it.
constexpr std::size_t verify_piece_bytes = std::size_t{8} << 20;

std::string errno_text(int err) { return fmt::format("{} (errno {})", std::strerror(err), err); }

[[noreturn]] void fail(int err, const std::string& path, const char* what) {
  const Kind kind = err == ENOSPC || err == EDQUOT ? Kind::Full : Kind::Io;
  throw LogStoreError(kind, err, fmt::format("snapshot file {}: {}: {}", path, what, errno_text(err)));
}

[[noreturn]] void corrupt(const std::string& path, const std::string& problem) {
  throw LogStoreError(Kind::Corrupt, 0, fmt::format("snapshot file {}: corrupt: {}", path, problem));
}

// A rename or a new name is durable only once its directory is fsynced.
void sync_directory(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail(errno, path, "open directory");
  // EINVAL: the file system cannot sync directories (it has nothing to make durable).
  const int rc = ::fsync(fd) == 0 || errno == EINVAL ? 0 : errno;
  ::close(fd);
  if (rc != 0) fail(rc, path, "fsync directory");
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::string new_snapshot_file_name(raft::Index index) {
  // The nonce only has to differ from any earlier file at this index in this directory: the
  // wall clock in nanoseconds (across restarts) plus a count (within the process, whose
  // snapshot worker and disk thread may both be naming files).
  static std::atomic<std::uint64_t> count{0};
  const auto now = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  return fmt::format("{}{:016x}-{:016x}-{}{}", name_prefix, index, now, count.fetch_add(1), name_suffix);
}

bool is_snapshot_file_name(std::string_view name) {
  if (name.substr(0, name_prefix.size()) != name_prefix) return false;
  if (ends_with(name, part_suffix)) name.remove_suffix(part_suffix.size());
  return ends_with(name, name_suffix);
}

SnapshotFileWriter::SnapshotFileWriter(std::string directory, raft::Index index)
    : directory_(std::move(directory)) {
  info_.name = new_snapshot_file_name(index);
  part_path_ = directory_ + "/" + info_.name + std::string(part_suffix);
  fd_ = ::open(part_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, file_mode);
  if (fd_ < 0) fail(errno, part_path_, "create");
}

SnapshotFileWriter::~SnapshotFileWriter() {
  if (fd_ < 0) return;
  ::close(fd_);
  ::unlink(part_path_.c_str());
}

void SnapshotFileWriter::append(std::string_view bytes) {
  if (fd_ < 0) throw LogStoreError(Kind::Invalid, 0, fmt::format("snapshot file {}: append after finish", part_path_));
  info_.crc = crc32c(bytes, info_.crc);
  info_.bytes += bytes.size();
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(errno, part_path_, "write");
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

SnapshotFileInfo SnapshotFileWriter::finish(bool sync) {
  if (fd_ < 0) throw LogStoreError(Kind::Invalid, 0, fmt::format("snapshot file {}: finished twice", part_path_));
  if (sync && ::fsync(fd_) != 0) fail(errno, part_path_, "fsync");
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(part_path_.c_str());
    fail(err, part_path_, "close");
  }
  const std::string path = directory_ + "/" + info_.name;
  if (::rename(part_path_.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(part_path_.c_str());
    fail(err, path, "rename into place");
  }
  if (sync) sync_directory(directory_);
  return info_;
}

std::shared_ptr<const SnapshotFile> SnapshotFile::open(const std::string& directory, const SnapshotFileInfo& info,
                                                       bool durable, bool unlink_unless_recorded) {
  std::shared_ptr<SnapshotFile> file(new SnapshotFile(directory, info));
  file->durable_ = durable;
  const std::string path = file->path();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) corrupt(path, "missing (the log records it as its snapshot)");
    fail(err, path, "open");
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail(err, path, "fstat");
  }
  if (static_cast<std::uint64_t>(st.st_size) != info.bytes) {
    ::close(fd);
    corrupt(path, fmt::format("{} bytes, the log records {} (a torn or truncated file)", st.st_size, info.bytes));
  }
  if (info.bytes > 0) {
    void* p = ::mmap(nullptr, info.bytes, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      fail(err, path, "mmap");
    }
    ::madvise(p, info.bytes, MADV_SEQUENTIAL);
    file->data_ = static_cast<const char*>(p);
    file->mapped_ = info.bytes;
  }
  ::close(fd);  // the mapping keeps the file
  file->unlink_unless_recorded_ = unlink_unless_recorded;  // only once it opened: never someone else's file
  return file;
}

SnapshotFile::~SnapshotFile() {
  if (mapped_ > 0) ::munmap(const_cast<char*>(data_), mapped_);
  // Nobody recorded it and nobody holds it any more: it is garbage (best effort).
  if (unlink_unless_recorded_ && !recorded_) ::unlink(path().c_str());
}

void SnapshotFile::verify() const {
  (void)verify([](std::uint64_t) { return true; });
}

bool SnapshotFile::verify(const std::function<bool(std::uint64_t offset)>& go_on) const {
  std::uint32_t crc = 0;
  const std::string_view all = bytes();
  for (std::size_t at = 0; at < all.size(); at += verify_piece_bytes) {
    if (!go_on(at)) return false;
    const std::size_t n = std::min(verify_piece_bytes, all.size() - at);
    crc = crc32c(all.substr(at, n), crc);
    ::madvise(const_cast<char*>(data_ + at), n, MADV_DONTNEED);
  }
  if (crc != info_.crc) {
    corrupt(path(), fmt::format("checksum {:#010x}, the log records {:#010x} (damaged or torn)", crc, info_.crc));
  }
  return true;
}

void SnapshotFile::sync() const {
  if (durable_) return;
  const std::string p = path();
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(errno, p, "open to sync");
  const int rc = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  if (rc != 0) fail(rc, p, "fsync");
  sync_directory(directory_);
  durable_ = true;
}

void SnapshotFile::release_pages() const {
  if (mapped_ > 0) ::madvise(const_cast<char*>(data_), mapped_, MADV_DONTNEED);
}

std::shared_ptr<const SnapshotFile> write_snapshot_file(const std::string& directory, raft::Index index,
                                                        std::string_view bytes) {
  SnapshotFileWriter writer(directory, index);
  writer.append(bytes);
  return SnapshotFile::open(directory, writer.finish());
}

std::optional<raft::Index> snapshot_file_index(std::string_view name) {
  if (!is_snapshot_file_name(name) || name.size() < name_prefix.size() + hex_name_digits) return std::nullopt;
  return parse_hex_name(name.substr(name_prefix.size(), hex_name_digits));
}

namespace {

// Removes the snapshot files of `directory` that `doomed` picks.
template <typename Pick>
void remove_snapshot_files(const std::string& directory, Pick doomed) {
  DIR* dir = ::opendir(directory.c_str());
  if (dir == nullptr) return;
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(dir)) {
    const std::string_view name = e->d_name;
    if (is_snapshot_file_name(name) && doomed(name)) names.emplace_back(name);
  }
  ::closedir(dir);
  for (const std::string& name : names) ::unlink((directory + "/" + name).c_str());
}

}  // namespace

void remove_replaced_snapshot_files(const std::string& directory, const std::string& keep, raft::Index index) {
  remove_snapshot_files(directory, [&](std::string_view name) {
    if (name == keep || ends_with(name, part_suffix)) return false;
    const auto at = snapshot_file_index(name);
    return at && *at <= index;
  });
}

void remove_snapshot_files_except(const std::string& directory, const std::string& keep) {
  remove_snapshot_files(directory, [&](std::string_view name) { return name != keep; });
}

}  // namespace coord::storage
