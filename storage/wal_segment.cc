#include "storage/wal_segment.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "storage/hex_name.h"
#include "storage/log_store_files.h"

namespace coord::storage {

namespace {

using Kind = LogStoreError::Kind;

constexpr std::string_view prefix = "wal-";
constexpr std::string_view suffix = ".log";
constexpr mode_t file_mode = 0644;

[[noreturn]] void io_error(int err, const std::string& path, const char* what) {
  throw LogStoreError(Kind::Io, err, fmt::format("{}: {}: {}", path, what, errno_text(err)));
}

}  // namespace

std::string wal_segment_name(std::uint64_t seq) { return fmt::format("wal-{:016x}.log", seq); }

std::optional<std::uint64_t> parse_wal_segment_name(std::string_view name) {
  if (name.size() != prefix.size() + hex_name_digits + suffix.size() || !name.starts_with(prefix) ||
      !name.ends_with(suffix)) {
    return std::nullopt;
  }
  return parse_hex_name(name.substr(prefix.size(), hex_name_digits));
}

std::shared_ptr<WalSegment> WalSegment::create(const std::string& directory, std::uint64_t seq, std::uint64_t bytes) {
  std::string path = directory + "/" + wal_segment_name(seq);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, file_mode);
  if (fd < 0) io_error(errno, path, "create");
  std::shared_ptr<WalSegment> segment(new WalSegment(seq, std::move(path), fd, bytes));
  // posix_fallocate returns the error instead of setting errno.
  const int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  if (rc == ENOSPC || rc == EDQUOT) {
    segment->remove();
    throw LogStoreError(Kind::Full, rc,
                        fmt::format("{}: no room for a segment of {} bytes: {}", segment->path(), bytes, errno_text(rc)));
  }
  if (rc != 0) {
    segment->remove();
    io_error(rc, segment->path(), "fallocate");
  }
  // The size (and the allocation) durable before any record relies on it.
  if (::fdatasync(fd) != 0) {
    const int err = errno;
    segment->remove();
    io_error(err, segment->path(), "fdatasync");
  }
  return segment;
}

std::shared_ptr<WalSegment> WalSegment::open(const std::string& directory, std::uint64_t seq) {
  std::string path = directory + "/" + wal_segment_name(seq);
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) io_error(errno, path, "open");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    io_error(err, path, "fstat");
  }
  return std::shared_ptr<WalSegment>(new WalSegment(seq, std::move(path), fd, static_cast<std::uint64_t>(st.st_size)));
}

WalSegment::~WalSegment() { ::close(fd_); }

void WalSegment::write(std::string_view data, std::uint64_t offset) const {
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) io_error(n < 0 ? errno : EIO, path_, "pwrite");
    data.remove_prefix(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
}

std::uint64_t WalSegment::data_end() const {
  std::uint64_t end = 0;
  off_t at = 0;
  while (static_cast<std::uint64_t>(at) < bytes_) {
    const off_t data = ::lseek(fd_, at, SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;  // nothing but holes from `at` on
    if (data < 0) return bytes_;            // not supported here: everything may be data
    const off_t hole = ::lseek(fd_, data, SEEK_HOLE);
    if (hole < 0) return bytes_;
    end = static_cast<std::uint64_t>(hole);
    at = hole;
  }
  return std::min(end, bytes_);
}

void WalSegment::sync() const {
  if (::fdatasync(fd_) != 0) io_error(errno, path_, "fdatasync");
}

void WalSegment::read(char* out, std::size_t n, std::uint64_t offset) const {
  while (n > 0) {
    const ssize_t got = ::pread(fd_, out, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) io_error(errno, path_, "pread");
    if (got == 0) {
      throw LogStoreError(Kind::Corrupt, 0, fmt::format("{}: corrupt: the file ends at {}, inside a record", path_, offset));
    }
    out += got;
    n -= static_cast<std::size_t>(got);
    offset += static_cast<std::uint64_t>(got);
  }
}

void WalSegment::remove() const {
  if (::unlink(path_.c_str()) != 0) io_error(errno, path_, "unlink");
}

WalSegmentMap::WalSegmentMap(const WalSegment& segment) : size_(segment.bytes()) {
  if (size_ == 0) return;
  const int fd = ::open(segment.path().c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) io_error(errno, segment.path(), "open");
  void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);
  if (p == MAP_FAILED) io_error(err, segment.path(), "mmap");
  ::madvise(p, size_, MADV_SEQUENTIAL);
  data_ = static_cast<const char*>(p);
}

WalSegmentMap::~WalSegmentMap() {
  if (data_ != nullptr) ::munmap(const_cast<char*>(data_), size_);
}

}  // namespace coord::storage
