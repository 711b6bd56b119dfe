#include "fencing/file_guard_store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <cstring>

#include <fmt/format.h>

namespace coord::fencing {

namespace {

constexpr std::string_view magic = "coord-guard 1 ";
// A guard file is one short line; anything longer is not one of ours.
constexpr std::size_t guard_file_bytes_max = 128;

// FNV-1a, 64 bits: catches torn or stray files, not adversaries.
std::uint64_t checksum(std::string_view resource, Token highest) {
  std::uint64_t h = 14695981039346656037ull;
  const auto mix = [&h](std::string_view bytes) {
    for (const char c : bytes) {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ull;
    }
  };
  mix(resource);
  mix(std::string_view("\0", 1));
  mix(fmt::format("{}", highest));
  return h;
}

StoreStatus os_error(const std::string& what, const std::string& path, int error) {
  return StoreStatus{false, fmt::format("{} {}: {}", what, path, std::strerror(error))};
}

// Closes `fd`, keeping the first error.
StoreStatus close_fd(int fd, const std::string& path, StoreStatus status) {
  if (::close(fd) != 0 && status.ok) return os_error("close", path, errno);
  return status;
}

StoreStatus write_all(int fd, const std::string& path, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return os_error("write", path, errno);
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

StoreStatus fsync_fd(int fd, const std::string& path) {
  while (::fsync(fd) != 0) {
    if (errno != EINTR) return os_error("fsync", path, errno);
  }
  return {};
}

}  // namespace

std::string encode_guard_file(std::string_view resource, Token highest) {
  return fmt::format("{}{} {:016x}\n", magic, highest, checksum(resource, highest));
}

bool decode_guard_file(std::string_view bytes, std::string_view resource, Token& highest) {
  if (bytes.size() > guard_file_bytes_max || bytes.substr(0, magic.size()) != magic) return false;
  bytes.remove_prefix(magic.size());
  if (bytes.empty() || bytes.back() != '\n') return false;
  bytes.remove_suffix(1);
  const std::size_t space = bytes.find(' ');
  if (space == std::string_view::npos) return false;
  const std::string_view token_text = bytes.substr(0, space);
  const std::string_view sum_text = bytes.substr(space + 1);
  Token token = 0;
  std::uint64_t sum = 0;
  auto [end, ec] = std::from_chars(token_text.data(), token_text.data() + token_text.size(), token);
  if (ec != std::errc() || end != token_text.data() + token_text.size()) return false;
  if (sum_text.size() != 16) return false;
  auto [send, sec] = std::from_chars(sum_text.data(), sum_text.data() + sum_text.size(), sum, 16);
  if (sec != std::errc() || send != sum_text.data() + sum_text.size()) return false;
  if (sum != checksum(resource, token)) return false;
  highest = token;
  return true;
}

std::string FileGuardStore::path_of(std::string_view resource) const {
  std::string name = directory_ + "/guard-";
  for (const char c : resource) name += fmt::format("{:02x}", static_cast<unsigned char>(c));
  return name;
}

StoreStatus FileGuardStore::load(std::string_view resource, Token& highest) {
  const std::string path = path_of(resource);
  int fd = -1;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (errno == ENOENT) {
      highest = 0;
      return {};
    }
    return os_error("open", path, errno);
  }
  std::string bytes;
  char buffer[guard_file_bytes_max + 1];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      return close_fd(fd, path, os_error("read", path, errno));
    }
    if (n == 0) break;
    bytes.append(buffer, static_cast<std::size_t>(n));
    if (bytes.size() > guard_file_bytes_max) break;
  }
  if (StoreStatus closed = close_fd(fd, path, {}); !closed.ok) return closed;
  // Checked as it is read back: a damaged file is an error, never token 0.
  if (!decode_guard_file(bytes, resource, highest)) {
    return StoreStatus{false, fmt::format("{}: not a valid guard file for {}", path, resource)};
  }
  return {};
}

StoreStatus FileGuardStore::save(std::string_view resource, Token highest) {
  const std::string path = path_of(resource);
  const std::string temp = path + ".tmp";
  const std::string bytes = encode_guard_file(resource, highest);
  // Checked before it is written.
  Token check = 0;
  if (!decode_guard_file(bytes, resource, check) || check != highest) {
    return StoreStatus{false, "guard file encoding does not read back"};
  }

  int fd = -1;
  do {
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return os_error("open", temp, errno);
  StoreStatus status = write_all(fd, temp, bytes);
  if (status.ok) status = fsync_fd(fd, temp);
  status = close_fd(fd, temp, std::move(status));
  if (!status.ok) {
    ::unlink(temp.c_str());
    return status;
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    return os_error("rename", temp, error);
  }
  // The rename is durable only once the directory is.
  do {
    fd = ::open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return os_error("open", directory_, errno);
  return close_fd(fd, directory_, fsync_fd(fd, directory_));
}

}  // namespace coord::fencing
