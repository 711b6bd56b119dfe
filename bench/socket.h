// A TCP connection for the benchmark's own event loop: connected (blocking, with a bound), then
// switched to non-blocking with Nagle off, since requests are small and latency is the point.
#pragma once

#include <chrono>
#include <string>

namespace coord::bench {

class Socket {
 public:
  // "host:port"; throws std::runtime_error when it cannot connect.
  static Socket connect(const std::string& endpoint, std::chrono::milliseconds timeout);

  Socket(Socket&& other) noexcept;
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket();

  int fd() const { return fd_; }

 private:
  explicit Socket(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace coord::bench
