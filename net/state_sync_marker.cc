#include "net/state_sync_marker.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace coord::net {

namespace {

constexpr const char* marker_name = "unsynced";

std::string marker_path(const std::string& dir) { return fmt::format("{}/{}", dir, marker_name); }

[[noreturn]] void io_error(const std::string& what) {
  throw std::runtime_error(fmt::format("{}: {}", what, std::strerror(errno)));
}

void fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) io_error("open " + path);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  errno = err;
  if (rc != 0) io_error("fsync " + path);
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

std::string read_boot_id(const std::string& path) {
  std::ifstream in(path);
  std::string id;
  if (!in || !std::getline(in, id) || trim(id).empty()) {
    throw std::runtime_error(fmt::format("cannot read the boot id from {}", path));
  }
  return trim(id);
}

MarkerState check_sync_marker(const std::string& state_dir, const std::string& boot_id) {
  std::ifstream in(marker_path(state_dir));
  if (!in) return MarkerState::Absent;
  std::ostringstream text;
  text << in.rdbuf();
  return trim(text.str()) == boot_id ? MarkerState::SameBoot : MarkerState::OtherBoot;
}

void arm_sync_marker(const std::string& state_dir, const std::string& boot_id) {
  if (::mkdir(state_dir.c_str(), 0755) != 0 && errno != EEXIST) io_error("mkdir " + state_dir);
  const std::string tmp = marker_path(state_dir) + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) io_error("open " + tmp);
  const std::string text = boot_id + "\n";
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  errno = err;
  if (!ok) io_error("write " + tmp);
  // Renamed into place: a crash leaves the old marker or the new one, never a torn one.
  if (::rename(tmp.c_str(), marker_path(state_dir).c_str()) != 0) io_error("rename " + tmp);
  fsync_path(state_dir, O_RDONLY | O_DIRECTORY);
}

void disarm_sync_marker(const std::string& state_dir) {
  if (::unlink(marker_path(state_dir).c_str()) != 0 && errno != ENOENT) io_error("unlink " + marker_path(state_dir));
  fsync_path(state_dir, O_RDONLY | O_DIRECTORY);
}

void discard_state_files(const std::string& state_dir) {
  for (const char* name : {"data.mdb", "lock.mdb"}) {
    const std::string path = fmt::format("{}/{}", state_dir, name);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) io_error("unlink " + path);
  }
  fsync_path(state_dir, O_RDONLY | O_DIRECTORY);
}

}  // namespace coord::net
