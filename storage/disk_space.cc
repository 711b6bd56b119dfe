#include "storage/disk_space.h"

#include <sys/statvfs.h>

#include <cerrno>

namespace coord::storage {

namespace {

// Below this much free space, a commit that failed with EIO is taken for a full file system.
constexpr std::uint64_t nearly_full_bytes = std::uint64_t{1} << 20;

}  // namespace

std::optional<std::uint64_t> free_disk_bytes(const std::string& path) {
  struct statvfs fs {};
  if (::statvfs(path.c_str(), &fs) != 0) return std::nullopt;
  return static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
}

bool failed_for_lack_of_space(int rc, const std::string& directory) {
  if (rc == ENOSPC || rc == EDQUOT) return true;
  if (rc != EIO) return false;
  const auto free = free_disk_bytes(directory);
  return free && *free < nearly_full_bytes;
}

}  // namespace coord::storage
