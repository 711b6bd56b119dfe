#include "net/client.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <thread>
#include <utility>

#include "kv/codec.h"
#include "net/client_codec.h"
#include "net/frame.h"

namespace coord::net {

namespace {

using Clock = std::chrono::steady_clock;

// Redirections followed within one call before falling back to plain rotation: guards against
// two members pointing at each other during an election.
constexpr int leader_hops_max = 3;
constexpr std::chrono::milliseconds retry_pause_min{50};
constexpr std::chrono::milliseconds retry_pause_max{500};
constexpr std::size_t read_chunk_bytes = 64 << 10;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

std::string errno_text(int err) { return std::strerror(err); }

// Waits until `fd` is ready for `events`; false with a reason on timeout or error.
bool wait_for(int fd, short events, Clock::time_point deadline, std::string* error) {
  for (;;) {
    const int ms = remaining_ms(deadline);
    if (ms == 0) {
      *error = "timed out";
      return false;
    }
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, ms);
    if (rc > 0) return true;
    if (rc == 0) continue;  // the loop re-checks the deadline
    if (errno == EINTR) continue;
    *error = fmt::format("poll: {}", errno_text(errno));
    return false;
  }
}

// "host:port" or "[v6]:port" to host and port strings.
bool split_host_port(const std::string& endpoint, std::string& host, std::string& port) {
  const std::size_t colon = endpoint.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == endpoint.size()) return false;
  host = endpoint.substr(0, colon);
  port = endpoint.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return true;
}

}  // namespace

// A connected, non-blocking TCP socket with a frame reader.
class Client::Socket {
 public:
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }

  static std::unique_ptr<Socket> connect(const std::string& endpoint, Clock::time_point deadline, std::string* error) {
    std::string host;
    std::string port;
    if (!split_host_port(endpoint, host, port)) {
      *error = "not host:port";
      return nullptr;
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
      *error = fmt::format("resolve: {}", gai_strerror(rc));
      return nullptr;
    }
    std::unique_ptr<Socket> out;
    for (addrinfo* a = found; a != nullptr && !out; a = a->ai_next) out = try_connect(*a, deadline, error);
    ::freeaddrinfo(found);
    return out;
  }

  bool send_all(std::string_view bytes, Clock::time_point deadline, std::string* error) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n > 0) {
        bytes.remove_prefix(static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!wait_for(fd_, POLLOUT, deadline, error)) return false;
        continue;
      }
      *error = fmt::format("send: {}", errno_text(errno));
      return false;
    }
    return true;
  }

  std::optional<Frame> read_frame(Clock::time_point deadline, std::string* error) {
    std::string buffer(read_chunk_bytes, '\0');
    for (;;) {
      if (auto frame = reader_.next()) return frame;
      if (reader_.error() != FrameError::None) {
        *error = reader_.error_message();
        return std::nullopt;
      }
      const ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
      if (n > 0) {
        reader_.feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
        continue;
      }
      if (n == 0) {
        *error = "connection closed by the server";
        return std::nullopt;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!wait_for(fd_, POLLIN, deadline, error)) return std::nullopt;
        continue;
      }
      *error = fmt::format("recv: {}", errno_text(errno));
      return std::nullopt;
    }
  }

 private:
  explicit Socket(int fd) : fd_(fd) {}

  static std::unique_ptr<Socket> try_connect(const addrinfo& a, Clock::time_point deadline, std::string* error) {
    const int fd = ::socket(a.ai_family, a.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a.ai_protocol);
    if (fd < 0) {
      *error = fmt::format("socket: {}", errno_text(errno));
      return nullptr;
    }
    std::unique_ptr<Socket> s(new Socket(fd));
    if (::connect(fd, a.ai_addr, a.ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        *error = fmt::format("connect: {}", errno_text(errno));
        return nullptr;
      }
      if (!wait_for(fd, POLLOUT, deadline, error)) {
        *error = fmt::format("connect: {}", *error);
        return nullptr;
      }
      int so_error = 0;
      socklen_t length = sizeof so_error;
      if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &length) != 0 || so_error != 0) {
        *error = fmt::format("connect: {}", errno_text(so_error != 0 ? so_error : errno));
        return nullptr;
      }
    }
    const int one = 1;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // latency only
    return s;
  }

  int fd_;
  FrameReader reader_{client_response_bytes_max};
};

Client::Client(ClientOptions options) : options_(std::move(options)) {
  session_id_ = options_.session_id;
  std::random_device rd;
  while (session_id_ == 0) session_id_ = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  next_request_id_ = (static_cast<std::uint64_t>(rd()) << 16) | 1;  // distinct across clients, for logs
}

Client::~Client() = default;

std::optional<ClientResponse> Client::attempt(const std::string& endpoint, const ClientRequest& request,
                                              Clock::time_point deadline, std::string* error) {
  if (!socket_ || current_endpoint_ != endpoint) {
    socket_.reset();
    socket_ = Socket::connect(endpoint, deadline, error);
    if (!socket_) return std::nullopt;
    current_endpoint_ = endpoint;
  }
  std::string frame;
  append_frame(frame, FrameKind::ClientRequest, encode_request(request));
  if (!socket_->send_all(frame, deadline, error)) {
    socket_.reset();
    return std::nullopt;
  }
  for (;;) {
    auto f = socket_->read_frame(deadline, error);
    if (!f) {
      socket_.reset();
      return std::nullopt;
    }
    if (f->kind != FrameKind::ClientResponse) continue;  // a kind from a newer server: not ours
    auto response = decode_response(f->payload, error);
    if (!response) {
      socket_.reset();
      return std::nullopt;
    }
    // A server that could not read our request answers with id 0.
    if (response->id == request.id || response->id == 0) return response;
    // Otherwise a late answer to an earlier request on this connection: skip it.
  }
}

ClientResponse Client::call_endpoint(const std::string& endpoint, ClientRequest request) {
  request.id = next_request_id_++;
  std::string error;
  const auto deadline = Clock::now() + std::min(options_.timeout, options_.attempt_timeout);
  auto response = attempt(endpoint, request, deadline, &error);
  if (!response) return error_response(request.id, ErrorCode::Unavailable, fmt::format("{}: {}", endpoint, error));
  return *response;
}

ClientResponse Client::call(ClientRequest request) {
  request.id = next_request_id_++;
  const auto deadline = Clock::now() + options_.timeout;
  if (options_.endpoints.empty()) return error_response(request.id, ErrorCode::InvalidRequest, "no endpoints");
  std::size_t index = 0;
  auto found = std::find(options_.endpoints.begin(), options_.endpoints.end(), current_endpoint_);
  if (found != options_.endpoints.end()) index = static_cast<std::size_t>(found - options_.endpoints.begin());
  std::string target = current_endpoint_.empty() ? options_.endpoints[0] : current_endpoint_;
  ClientResponse last = error_response(request.id, ErrorCode::Unavailable, "no endpoint answered");
  auto pause = retry_pause_min;
  int hops = 0;

  auto next_endpoint = [&] {
    index = (index + 1) % options_.endpoints.size();
    target = options_.endpoints[index];
  };
  auto wait_before_retry = [&] {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    std::this_thread::sleep_for(std::max(std::chrono::milliseconds(0), std::min(pause, left)));
    pause = std::min(pause * 2, retry_pause_max);
  };

  while (Clock::now() < deadline) {
    const auto attempt_deadline = std::min(deadline, Clock::now() + options_.attempt_timeout);
    std::string error;
    auto response = attempt(target, request, attempt_deadline, &error);
    if (!response) {
      last = error_response(request.id, ErrorCode::Unavailable, fmt::format("{}: {}", target, error));
      next_endpoint();
      wait_before_retry();
      continue;
    }
    if (response->error == ErrorCode::NotLeader) {
      last = *response;
      const LeaderHint* hint = response->leader ? &*response->leader : nullptr;
      if (hint != nullptr && !hint->client_address.empty() && hint->client_address != target &&
          hops < leader_hops_max) {
        ++hops;
        target = hint->client_address;
        continue;
      }
      next_endpoint();
      wait_before_retry();
      continue;
    }
    if (response->error == ErrorCode::Unavailable || response->error == ErrorCode::Timeout) {
      last = *response;
      last.message = fmt::format("{}: {}", target, response->message);
      next_endpoint();
      wait_before_retry();
      continue;
    }
    return *response;
  }
  last.message = fmt::format("gave up after {} ms: {}", options_.timeout.count(), last.message);
  return last;
}

ClientResponse Client::write(kv::Body body) {
  kv::Command command;
  command.session_id = session_id_;
  command.sequence = next_sequence_++;
  command.body = std::move(body);
  ClientRequest request;
  request.kind = RequestKind::Write;
  request.command = kv::encode_command(command);
  return call(std::move(request));
}

std::vector<std::string> split_endpoints(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(std::move(item));
    start = end + 1;
  }
  return out;
}

}  // namespace coord::net
