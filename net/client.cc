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
#include <ostream>
#include <random>
#include <thread>
#include <utility>

#include "kv/codec.h"
#include "net/client_codec.h"
#include "net/client_retry.h"
#include "net/frame.h"

namespace coord::net {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t read_chunk_bytes = 64 << 10;
// Longest poll(2) between two looks at ClientOptions::interrupted.
constexpr int interrupt_check_ms = 100;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

std::string errno_text(int err) { return std::strerror(err); }

bool is_interrupted(const std::function<bool()>* interrupted) {
  return interrupted != nullptr && *interrupted && (*interrupted)();
}

// Sleeps until `until`, waking early when interrupted; false when interrupted.
bool pause_until(Clock::time_point until, const std::function<bool()>* interrupted) {
  for (;;) {
    if (is_interrupted(interrupted)) return false;
    const int ms = remaining_ms(until);
    if (ms == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(ms, interrupt_check_ms)));
  }
}

// Waits until `fd` is ready for `events`; false with a reason on timeout, interruption or error.
bool wait_for(int fd, short events, Clock::time_point deadline, std::string* error,
              const std::function<bool()>* interrupted) {
  for (;;) {
    if (is_interrupted(interrupted)) {
      *error = "interrupted";
      return false;
    }
    int ms = remaining_ms(deadline);
    if (ms == 0) {
      *error = "timed out";
      return false;
    }
    if (interrupted != nullptr && *interrupted) ms = std::min(ms, interrupt_check_ms);
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
class ClientSocket {
 public:
  ~ClientSocket() {
    if (fd_ >= 0) ::close(fd_);
  }

  static std::unique_ptr<ClientSocket> connect(const std::string& endpoint, Clock::time_point deadline,
                                               std::string* error, const std::function<bool()>* interrupted) {
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
    std::unique_ptr<ClientSocket> out;
    for (addrinfo* a = found; a != nullptr && !out; a = a->ai_next) {
      out = try_connect(*a, deadline, error, interrupted);
    }
    ::freeaddrinfo(found);
    if (out) out->interrupted_ = interrupted;
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
        if (!wait_for(fd_, POLLOUT, deadline, error, interrupted_)) return false;
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
        if (!wait_for(fd_, POLLIN, deadline, error, interrupted_)) return std::nullopt;
        continue;
      }
      *error = fmt::format("recv: {}", errno_text(errno));
      return std::nullopt;
    }
  }

 private:
  explicit ClientSocket(int fd) : fd_(fd) {}

  static std::unique_ptr<ClientSocket> try_connect(const addrinfo& a, Clock::time_point deadline, std::string* error,
                                                   const std::function<bool()>* interrupted) {
    const int fd = ::socket(a.ai_family, a.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a.ai_protocol);
    if (fd < 0) {
      *error = fmt::format("socket: {}", errno_text(errno));
      return nullptr;
    }
    std::unique_ptr<ClientSocket> s(new ClientSocket(fd));
    if (::connect(fd, a.ai_addr, a.ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        *error = fmt::format("connect: {}", errno_text(errno));
        return nullptr;
      }
      if (!wait_for(fd, POLLOUT, deadline, error, interrupted)) {
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
  const std::function<bool()>* interrupted_ = nullptr;
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
    socket_ = ClientSocket::connect(endpoint, deadline, error, &options_.interrupted);
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
  MemberRoute route(options_.endpoints, current_endpoint_);
  ClientResponse last = error_response(request.id, ErrorCode::Unavailable, "no endpoint answered");
  auto wait_before_retry = [&] {
    (void)pause_until(std::min(deadline, Clock::now() + route.take_pause()), &options_.interrupted);
  };

  while (Clock::now() < deadline) {
    if (is_interrupted(&options_.interrupted)) {
      last = error_response(request.id, ErrorCode::Unavailable, "interrupted");
      return last;
    }
    const auto attempt_deadline = std::min(deadline, Clock::now() + options_.attempt_timeout);
    std::string error;
    const std::string target = route.target();
    auto response = attempt(target, request, attempt_deadline, &error);
    if (!response) {
      last = error_response(request.id, ErrorCode::Unavailable, fmt::format("{}: {}", target, error));
      route.next();
      wait_before_retry();
      continue;
    }
    switch (classify(*response)) {
      case Answer::Redirect:
        last = *response;
        if (!route.follow(*response)) wait_before_retry();
        continue;
      case Answer::Retry:
        last = *response;
        last.message = fmt::format("{}: {}", target, response->message);
        route.next();
        wait_before_retry();
        continue;
      case Answer::Final:
        return *response;
    }
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

ClientResponse Client::lease_ttl(kv::LeaseId id) {
  ClientRequest request;
  request.kind = RequestKind::LeaseTtl;
  request.lease = id;
  return call(std::move(request));
}

ClientResponse Client::save_snapshot(std::ostream& out) {
  ClientRequest request;
  request.id = next_request_id_++;
  request.kind = RequestKind::Snapshot;
  ClientResponse last = error_response(request.id, ErrorCode::Unavailable, "no endpoint answered");
  for (const std::string& endpoint : options_.endpoints) {
    std::string error;
    auto socket = ClientSocket::connect(endpoint, Clock::now() + options_.attempt_timeout, &error, &options_.interrupted);
    std::string frame;
    append_frame(frame, FrameKind::ClientRequest, encode_request(request));
    if (!socket || !socket->send_all(frame, Clock::now() + options_.attempt_timeout, &error)) {
      last = error_response(request.id, ErrorCode::Unavailable, fmt::format("{}: {}", endpoint, error));
      continue;
    }
    std::uint64_t written = 0;
    for (;;) {
      auto f = socket->read_frame(Clock::now() + options_.attempt_timeout, &error);
      if (!f) {
        last = error_response(request.id, ErrorCode::Unavailable, fmt::format("{}: {}", endpoint, error));
        break;
      }
      if (f->kind != FrameKind::ClientResponse) continue;
      auto r = decode_response(f->payload, &error);
      if (!r) {
        last = error_response(request.id, ErrorCode::Unavailable, fmt::format("{}: {}", endpoint, error));
        break;
      }
      if (r->id != request.id && r->id != 0) continue;
      if (!r->ok()) {
        last = *r;
        last.message = fmt::format("{}: {}", endpoint, r->message);
        break;
      }
      if (r->offset != written || written + r->chunk.size() > r->total_bytes) {
        return error_response(request.id, ErrorCode::InvalidRequest,
                              fmt::format("{}: snapshot chunk at {} of {} bytes, expected {}", endpoint, r->offset,
                                          r->total_bytes, written));
      }
      out.write(r->chunk.data(), static_cast<std::streamsize>(r->chunk.size()));
      if (!out) return error_response(request.id, ErrorCode::Unavailable, "writing the snapshot failed");
      written += r->chunk.size();
      if (r->done) {
        if (written != r->total_bytes) {
          return error_response(request.id, ErrorCode::InvalidRequest,
                                fmt::format("{}: snapshot ended at {} of {} bytes", endpoint, written, r->total_bytes));
        }
        r->chunk.clear();
        current_endpoint_ = endpoint;
        return *r;
      }
    }
    // Part of it may be in `out` already: the caller must start over.
    if (written > 0) return last;
  }
  return last;
}

// ---------------------------------------------------------------------------------------------
// Watch streams

struct WatchStream::Impl {
  ClientOptions client;
  WatchOptions watch;
  std::uint64_t next_request_id = 1;

  std::unique_ptr<ClientSocket> socket;
  std::string endpoint;           // of `socket`
  std::size_t endpoint_index = 0;  // the next member to try
  std::uint64_t request_id = 0;   // of the Watch request on `socket`
  kv::WatchId watch_id = 0;
  Clock::time_point last_frame{};
  std::chrono::milliseconds pause = retry_pause_min;
  std::uint64_t resumes = 0;
  bool opened_once = false;

  WatchCursor cursor{0};
  std::optional<WatchUpdate> ended;

  kv::Revision resume_revision() const { return cursor.resume_revision(); }

  bool interrupted() const { return client.interrupted && client.interrupted(); }

  void drop(const std::string& why) {
    (void)why;
    socket.reset();
    endpoint.clear();
    watch_id = 0;
  }

  WatchUpdate end(ErrorCode error, std::string message, kv::Revision compact_revision) {
    WatchUpdate u;
    u.ended = true;
    u.error = error;
    u.message = std::move(message);
    u.compact_revision = compact_revision;
    u.progress_revision = cursor.progress();
    ended = u;
    socket.reset();
    return u;
  }

  // Connects to the next member and opens the watch there. nullopt: opened, or failed in a way
  // another member may not (then `socket` is null and the caller pauses and tries again); an
  // update: the watch cannot be opened anywhere (ended).
  std::optional<WatchUpdate> open(Clock::time_point deadline) {
    const std::string target = client.endpoints[endpoint_index % client.endpoints.size()];
    endpoint_index = (endpoint_index + 1) % client.endpoints.size();
    const auto attempt_deadline = std::min(deadline, Clock::now() + client.attempt_timeout);
    std::string error;
    socket = ClientSocket::connect(target, attempt_deadline, &error, &client.interrupted);
    if (!socket) return std::nullopt;
    ClientRequest request;
    request.id = next_request_id++;
    request.kind = RequestKind::Watch;
    request.path = watch.path;
    request.watch_kind = watch.kind;
    request.revision = resume_revision();
    request.prev = watch.prev;
    std::string frame;
    append_frame(frame, FrameKind::ClientRequest, encode_request(request));
    if (!socket->send_all(frame, attempt_deadline, &error)) {
      drop(error);
      return std::nullopt;
    }
    for (;;) {
      auto f = socket->read_frame(attempt_deadline, &error);
      if (!f) {
        drop(error);
        return std::nullopt;
      }
      if (f->kind != FrameKind::ClientResponse) continue;
      auto response = decode_response(f->payload, &error);
      if (!response) {
        drop(error);
        return std::nullopt;
      }
      if (response->id != request.id && response->id != 0) continue;
      if (!response->ok()) {
        if (retryable(response->error) || response->error == ErrorCode::TooManyWatchers) {
          drop(response->message);
          return std::nullopt;
        }
        return end(response->error, fmt::format("{}: {}", target, response->message), response->compact_revision);
      }
      if (response->watch_id == 0) {
        // A member that does not know watches (an older build) answers InvalidRequest above;
        // anything else without an id is not a watch.
        return end(ErrorCode::InvalidRequest, fmt::format("{}: watch answered without a watch id", target), 0);
      }
      request_id = request.id;
      watch_id = response->watch_id;
      endpoint = target;
      last_frame = Clock::now();
      pause = retry_pause_min;
      if (opened_once) ++resumes;
      opened_once = true;
      cursor.opened(response->revision);
      return std::nullopt;
    }
  }

  // Keeps what is new in `frame` (a resumed stream may repeat the tail of a revision).
  std::optional<WatchUpdate> take(ClientResponse& frame) {
    WatchUpdate u;
    if (!cursor.take(frame.events, frame.progress_revision, u.events)) return std::nullopt;
    u.progress_revision = cursor.progress();
    return u;
  }

  std::optional<WatchUpdate> next(std::chrono::milliseconds timeout) {
    if (ended) return ended;
    const auto deadline = Clock::now() + timeout;
    if (client.endpoints.empty()) return end(ErrorCode::InvalidRequest, "no endpoints", 0);
    while (!interrupted()) {
      if (!socket) {
        if (Clock::now() >= deadline) return std::nullopt;
        if (auto over = open(deadline)) return over;
        if (!socket) {
          (void)pause_until(std::min(deadline, Clock::now() + pause), &client.interrupted);
          pause = std::min(pause * 2, retry_pause_max);
          continue;
        }
      }
      const bool idle_first = watch.idle_timeout.count() > 0 && last_frame + watch.idle_timeout < deadline;
      std::string error;
      auto f = socket->read_frame(idle_first ? last_frame + watch.idle_timeout : deadline, &error);
      if (!f) {
        if (error == "interrupted") return std::nullopt;
        if (error == "timed out") {
          if (!idle_first) return std::nullopt;
          drop("silent for longer than the idle timeout");
          continue;
        }
        drop(error);
        continue;
      }
      last_frame = Clock::now();
      if (f->kind != FrameKind::ClientResponse) continue;
      auto response = decode_response(f->payload, &error);
      if (!response) {
        drop(error);
        continue;
      }
      if (response->id != request_id || response->watch_id != watch_id) continue;
      if (response->canceled) {
        const bool resumable = retryable(response->error) ||
                               (watch.resume_after_overflow && (response->error == ErrorCode::WatchOverflow ||
                                                                response->error == ErrorCode::StaleState));
        if (resumable) {
          drop(response->message);
          continue;
        }
        return end(response->error, fmt::format("{}: {}", endpoint, response->message), response->compact_revision);
      }
      if (auto u = take(*response)) return u;
    }
    return std::nullopt;
  }
};

WatchStream::WatchStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WatchStream::WatchStream(WatchStream&&) noexcept = default;
WatchStream& WatchStream::operator=(WatchStream&&) noexcept = default;
WatchStream::~WatchStream() = default;

std::optional<WatchUpdate> WatchStream::next(std::chrono::milliseconds timeout) { return impl_->next(timeout); }
kv::Revision WatchStream::resume_revision() const { return impl_->resume_revision(); }
const std::string& WatchStream::endpoint() const { return impl_->endpoint; }
std::uint64_t WatchStream::resumes() const { return impl_->resumes; }

WatchStream Client::watch(WatchOptions options) {
  auto impl = std::make_unique<WatchStream::Impl>();
  impl->client = options_;
  impl->watch = std::move(options);
  impl->next_request_id = next_request_id_;
  impl->cursor = WatchCursor(impl->watch.start_revision);
  // Start where this client last got answers: a leader, or the member it was told about.
  auto found = std::find(options_.endpoints.begin(), options_.endpoints.end(), current_endpoint_);
  if (found != options_.endpoints.end()) impl->endpoint_index = static_cast<std::size_t>(found - options_.endpoints.begin());
  return WatchStream(std::move(impl));
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
