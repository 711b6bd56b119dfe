#include "net/listener.h"

#include <fmt/format.h>

#include <utility>

#include "net/uv_util.h"

namespace coord::net {

namespace {

// Connections the kernel queues before we accept them.
constexpr int listen_backlog = 128;

// Refused connections need a handler too; it ignores everything.
class DiscardHandler final : public Connection::Handler {
 public:
  void on_frame(Connection&, Frame) override {}
  void on_frame_error(Connection&, FrameError, const std::string&) override {}
  void on_closed(Connection&, const std::string&) override {}
};
DiscardHandler discard_handler;

}  // namespace

Listener::Listener(uv_loop_t* loop, OnIncoming on_incoming)
    : loop_(loop), on_incoming_(std::move(on_incoming)) {}

Listener::~Listener() { close(); }

void Listener::listen(const std::string& address) {
  std::string error;
  const auto addr = parse_socket_address(address, &error);
  if (!addr) throw UvError(UV_EINVAL, error);
  auto* server = new uv_tcp_t{};
  int rc = uv_tcp_init(loop_, server);
  if (rc < 0) {
    delete server;
    uv_check(rc, "uv_tcp_init");
  }
  server_ = server;
  server_->data = this;
  rc = uv_tcp_bind(server_, reinterpret_cast<const sockaddr*>(&*addr), 0);
  if (rc < 0) {
    close();
    uv_check(rc, fmt::format("bind {}", address));
  }
  rc = uv_listen(reinterpret_cast<uv_stream_t*>(server_), listen_backlog, [](uv_stream_t* stream, int status) {
    auto* self = static_cast<Listener*>(stream->data);
    if (self == nullptr || status < 0) return;  // closing, or a transient accept error
    self->on_incoming_(*self);
  });
  if (rc < 0) {
    close();
    uv_check(rc, fmt::format("listen {}", address));
  }
  address_ = local_address(server_);
}

Connection* Listener::accept(Connection::Handler& handler, const ConnectionOptions& options, std::string* error) {
  Connection* c = nullptr;
  try {
    c = Connection::create(loop_, handler, options);
  } catch (const UvError& e) {
    if (error != nullptr) *error = e.what();
    return nullptr;
  }
  const int rc = uv_accept(reinterpret_cast<uv_stream_t*>(server_), reinterpret_cast<uv_stream_t*>(c->tcp()));
  if (rc < 0) {
    if (error != nullptr) *error = fmt::format("uv_accept: {}", uv_error_text(rc));
    c->close(*error);  // on_closed goes to `handler`, which must expect unknown connections
    return nullptr;
  }
  if (c->start_reading() < 0) {
    if (error != nullptr) *error = "uv_read_start failed";
    return nullptr;
  }
  return c;
}

void Listener::refuse(const std::string& reason) {
  std::string error;
  Connection* c = accept(discard_handler, ConnectionOptions{}, &error);
  if (c != nullptr) c->close(reason);
}

void Listener::close() {
  close_and_delete(server_);
  server_ = nullptr;
}

}  // namespace coord::net
