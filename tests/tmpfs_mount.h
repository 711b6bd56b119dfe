// A small tmpfs for tests that need a file system to run out of room: mounted at construction,
// unmounted at the end (lazily: a server may still hold files in it). Mounting needs root
// (CAP_SYS_ADMIN); without it mounted() is false, error() says why, and the test skips.
#pragma once

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

namespace coordtest {

class TmpfsMount {
 public:
  TmpfsMount(const std::string& path, std::size_t bytes) : path_(path) {
    std::filesystem::create_directories(path);
    mounted_ = ::mount("tmpfs", path.c_str(), "tmpfs", 0, fmt::format("size={}", bytes).c_str()) == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~TmpfsMount() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
    std::error_code ignored;  // the mount point was made here: leave nothing behind in /tmp
    std::filesystem::remove(path_, ignored);
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  const std::string& path() const { return path_; }

  // Free bytes for unprivileged writers.
  std::uint64_t free_bytes() const {
    struct statvfs st {};
    REQUIRE(::statvfs(path_.c_str(), &st) == 0);
    return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
  }

  // Writes a filler file until `left` bytes are free, or (left 0) until no write fits at all.
  void fill(std::uint64_t left = 0) {
    std::ofstream out(filler(), std::ios::binary | std::ios::trunc);
    if (left == 0) {
      const std::string block(4096, 'f');
      for (int i = 0; i < 1 << 24 && out.write(block.data(), block.size()) && out.flush(); ++i) {
      }
      return;
    }
    const std::uint64_t free = free_bytes();
    REQUIRE(free > left);
    const std::string block(1 << 20, 'f');
    for (std::uint64_t n = free - left; n > 0;) {
      const std::size_t piece = static_cast<std::size_t>(std::min<std::uint64_t>(n, block.size()));
      out.write(block.data(), static_cast<std::streamsize>(piece));
      n -= piece;
    }
    out.flush();
    REQUIRE(out.good());
    out.close();
    MESSAGE("filled ", path_, ": ", free_bytes(), " bytes free");
  }
  void free_space() { std::filesystem::remove(filler()); }

 private:
  std::string filler() const { return path_ + "/filler"; }

  std::string path_;
  bool mounted_ = false;
  std::string error_;
};

}  // namespace coordtest
