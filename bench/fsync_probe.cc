// coord-fsync-probe: how long this disk takes to make a small write durable, the floor under any
// replicated write's latency (coord and etcd both fdatasync before acknowledging).
//
//   coord-fsync-probe DIR [--count N] [--json]
//
// Writes 4 KiB blocks into a 1 MiB file in DIR (created and removed), fdatasync after each,
// N times (200 by default), and prints the p50, p99 and mean fdatasync latency in milliseconds.
// Exit status: 0 measured, 1 an I/O error, 2 bad usage.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr std::size_t block_bytes = 4096;
constexpr std::size_t file_bytes = 1 << 20;
constexpr int count_max = 100'000;

int fail(const char* what, const std::string& path) {
  std::fprintf(stderr, "coord-fsync-probe: %s %s: %s\n", what, path.c_str(), std::strerror(errno));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  int count = 200;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json") {
      json = true;
    } else if (arg == "--count" && i + 1 < argc) {
      count = std::atoi(argv[++i]);
    } else if (dir.empty() && !arg.empty() && arg[0] != '-') {
      dir = arg;
    } else {
      dir.clear();
      break;
    }
  }
  if (dir.empty() || count < 1 || count > count_max) {
    std::fprintf(stderr, "usage: coord-fsync-probe DIR [--count N (1..%d)] [--json]\n", count_max);
    return 2;
  }

  const std::string path = dir + "/fsync-probe.tmp";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail("open", path);
  // Allocated and synced first, so the loop measures overwrites of a file's data, as a
  // database's pages or a preallocated log segment see them, not the growth of its metadata.
  const std::vector<char> block(block_bytes, 'f');
  for (std::size_t off = 0; off < file_bytes; off += block_bytes) {
    if (::pwrite(fd, block.data(), block.size(), static_cast<off_t>(off)) != static_cast<ssize_t>(block.size())) {
      ::close(fd);
      return fail("write", path);
    }
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return fail("fsync", path);
  }

  std::vector<double> ms;
  ms.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    const auto off = static_cast<off_t>((static_cast<std::size_t>(i) * block_bytes) % file_bytes);
    const auto start = std::chrono::steady_clock::now();
    if (::pwrite(fd, block.data(), block.size(), off) != static_cast<ssize_t>(block.size()) || ::fdatasync(fd) != 0) {
      ::close(fd);
      ::unlink(path.c_str());
      return fail("write/fdatasync", path);
    }
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  ::close(fd);
  ::unlink(path.c_str());

  double sum = 0;
  for (double v : ms) sum += v;
  std::sort(ms.begin(), ms.end());
  const auto at = [&](double q) { return ms[std::min(ms.size() - 1, static_cast<std::size_t>(q * static_cast<double>(ms.size())))]; };
  if (json) {
    std::printf("{\"count\":%d,\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"mean_ms\":%.4f}\n", count, at(0.5), at(0.99),
                sum / static_cast<double>(ms.size()));
  } else {
    std::printf("fdatasync of a 4 KiB write in %s: p50 %.3f ms, p99 %.3f ms, mean %.3f ms (%d samples)\n", dir.c_str(),
                at(0.5), at(0.99), sum / static_cast<double>(ms.size()), count);
  }
  return 0;
}
