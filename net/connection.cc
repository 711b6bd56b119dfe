#include "net/connection.h"

#include <fmt/format.h>

#include <atomic>
#include <utility>

#include "net/uv_util.h"

namespace coord::net {

namespace {

// One read lands here before the FrameReader copies what it needs; 64 KiB matches the socket
// buffer sizes the kernel hands out in one go.
constexpr std::size_t read_chunk_bytes = 64 << 10;

std::atomic<ConnectionId> next_connection_id{1};

Connection* from_handle(void* data) { return static_cast<Connection*>(data); }

}  // namespace

Connection* Connection::create(uv_loop_t* loop, Handler& handler, const ConnectionOptions& options) {
  return new Connection(loop, handler, options);
}

Connection::Connection(uv_loop_t* loop, Handler& handler, const ConnectionOptions& options)
    : handler_(&handler),
      options_(options),
      id_(next_connection_id.fetch_add(1)),
      reader_(options.frame_payload_bytes_max) {
  const int rc = uv_tcp_init(loop, &tcp_);
  if (rc < 0) {
    // Nothing was registered with the loop, so plain deletion is safe.
    throw UvError(rc, fmt::format("uv_tcp_init: {}", uv_error_text(rc)));
  }
  tcp_.data = this;
  write_req_.data = this;
  connect_req_.data = this;
}

int Connection::start_reading() {
  remote_ = peer_address(&tcp_);
  // Frames are small and latency matters more than packet count (Raft heartbeats, replies).
  (void)uv_tcp_nodelay(&tcp_, 1);  // best effort: a connection without it still works
  const int rc = uv_read_start(
      reinterpret_cast<uv_stream_t*>(&tcp_),
      [](uv_handle_t* handle, std::size_t, uv_buf_t* buf) {
        Connection* c = from_handle(handle->data);
        c->read_buffer_.resize(read_chunk_bytes);
        *buf = uv_buf_init(c->read_buffer_.data(), static_cast<unsigned>(c->read_buffer_.size()));
      },
      [](uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
        from_handle(stream->data)->on_read(nread, buf);
      });
  if (rc < 0) close(fmt::format("uv_read_start: {}", uv_error_text(rc)));
  return rc;
}

int Connection::connect(const sockaddr* address) {
  const int rc = uv_tcp_connect(&connect_req_, &tcp_, address, [](uv_connect_t* req, int status) {
    Connection* c = from_handle(req->data);
    // A connect cancelled by close() still calls back; the handler hears on_closed only.
    if (c->closing_) return;
    if (status < 0) {
      c->close(fmt::format("connect: {}", uv_error_text(status)));
      c->handler_->on_connected(*c, status);
      return;
    }
    if (c->start_reading() < 0) {
      c->handler_->on_connected(*c, -1);
      return;
    }
    c->handler_->on_connected(*c, 0);
  });
  if (rc < 0) close(fmt::format("uv_tcp_connect: {}", uv_error_text(rc)));
  return rc;
}

void Connection::on_read(ssize_t nread, const uv_buf_t* buf) {
  (void)buf;
  if (closing_) return;
  if (nread == UV_EOF) {
    close("closed by the other side");
    return;
  }
  if (nread < 0) {
    close(fmt::format("read: {}", uv_error_text(static_cast<int>(nread))));
    return;
  }
  if (nread == 0 || flush_then_close_) return;  // EAGAIN, or we stopped listening to it
  reader_.feed(std::string_view(read_buffer_.data(), static_cast<std::size_t>(nread)));
  // The handler may close us from on_frame; stop handing out frames then.
  while (!closing_ && !flush_then_close_) {
    std::optional<Frame> frame = reader_.next();
    if (!frame) break;
    handler_->on_frame(*this, std::move(*frame));
  }
  if (reader_.error() != FrameError::None && !closing()) {
    // Stop reading but let the handler queue a last frame (an error response) before closing.
    const std::string message = reader_.error_message();
    flush_then_close_ = true;
    close_reason_ = message;
    (void)uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    handler_->on_frame_error(*this, reader_.error(), message);
    if (!closing_ && !writing_ && pending_.empty()) close(close_reason_);
  }
}

void ConnectionBytes::add(const Connection& connection) {
  queued += connection.queued_bytes();
  reserved += connection.reserved_bytes();
}

bool Connection::send_frame(FrameKind kind, std::string_view payload) {
  if (closing_) return false;
  if (queued_bytes() + frame_header_bytes + payload.size() > options_.send_queue_bytes_max) return false;
  append_frame(pending_, kind, payload);
  if (!writing_) start_write();
  return true;
}

void Connection::start_write() {
  if (pending_.empty() || closing_) return;
  inflight_.swap(pending_);
  pending_.clear();
  uv_buf_t buf = uv_buf_init(inflight_.data(), static_cast<unsigned>(inflight_.size()));
  const int rc = uv_write(&write_req_, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1,
                          [](uv_write_t* req, int status) { from_handle(req->data)->on_write(status); });
  if (rc < 0) {
    close(fmt::format("uv_write: {}", uv_error_text(rc)));
    return;
  }
  writing_ = true;
}

void Connection::on_write(int status) {
  writing_ = false;
  // The written buffer becomes the next pending one (start_write swaps them): after a burst it
  // would hold the burst's size for as long as the connection lives, so a large one goes.
  if (inflight_.capacity() > buffer_retained_bytes_max) {
    std::string().swap(inflight_);
  } else {
    inflight_.clear();
  }
  if (closing_) return;  // cancelled by close()
  if (status < 0) {
    close(fmt::format("write: {}", uv_error_text(status)));
    return;
  }
  if (!pending_.empty()) {
    start_write();
    return;
  }
  if (flush_then_close_) close(close_reason_);
}

void Connection::close_after_flush(const std::string& reason) {
  if (closing()) return;
  flush_then_close_ = true;
  close_reason_ = reason;
  // Nothing more is read; uv_read_stop cannot fail on a TCP handle in a way that matters here.
  (void)uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  if (!writing_ && pending_.empty()) close(reason);
}

namespace {

class DetachedHandler final : public Connection::Handler {
 public:
  void on_frame(Connection&, Frame) override {}
  void on_frame_error(Connection&, FrameError, const std::string&) override {}
  void on_closed(Connection&, const std::string&) override {}
};
DetachedHandler detached_handler;

}  // namespace

void Connection::close_detached(const std::string& reason) {
  handler_ = &detached_handler;
  close(reason);
}

void Connection::close(const std::string& reason) {
  if (closing_) return;
  closing_ = true;
  close_reason_ = reason;
  pending_.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), [](uv_handle_t* handle) {
    Connection* c = from_handle(handle->data);
    c->handler_->on_closed(*c, c->close_reason_);
    delete c;
  });
}

}  // namespace coord::net
