// Lines over a socket or pipe between coord-faults and its lock clients (harness/locks.h,
// harness/locker_main.cc): one request or answer a line, blocking, EINTR retried.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace coord::harness {

// One line ("" once the other side is gone; a line is never empty).
inline std::string read_line(int fd) {
  std::string line;
  char c = 0;
  while (true) {
    const ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return {};
    if (c == '\n') return line;
    line += c;
  }
}

// Sends `line` and a newline; false once the other side is gone (no SIGPIPE on a socket).
inline bool send_line(int fd, const std::string& line) {
  const std::string out = line + "\n";
  std::size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::send(fd, out.data() + done, out.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK) n = ::write(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace coord::harness
