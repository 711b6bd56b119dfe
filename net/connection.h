// One TCP connection on the event loop, carrying frames (net/frame.h) both ways. It reads into
// a FrameReader with the owner's size limit and hands out whole frames; it batches outgoing
// frames into one uv_write at a time, with a bound on the bytes waiting to go out so that a
// peer or client that stops reading cannot make us buffer without limit.
//
// Lifetime: a Connection is created on the heap and deletes itself after libuv has closed its
// socket, right after telling its handler (on_closed). The owner keeps a raw pointer and must
// drop it in on_closed; the handler must outlive every connection it handles, or detach them
// first (close_detached).
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "net/frame.h"

namespace coord::net {

using ConnectionId = std::uint64_t;

class Connection;

// What a set of connections holds in memory, for metrics: the bytes queued to go out, and the
// bytes their buffers hold reserved (capacity of the send and receive buffers, which is what
// stays resident after a queue has drained).
struct ConnectionBytes {
  std::size_t queued = 0;
  std::size_t reserved = 0;
  void add(const Connection& connection);
  ConnectionBytes& operator+=(const ConnectionBytes& other) {
    queued += other.queued;
    reserved += other.reserved;
    return *this;
  }
};

struct ConnectionOptions {
  // Largest frame payload accepted from the other side (FrameReader limit).
  // Qualified: unqualified, the name would find this member itself (it did, and read garbage).
  std::size_t frame_payload_bytes_max = coord::net::frame_payload_bytes_max;
  // Bytes queued for sending (in flight plus waiting) beyond which send_frame() refuses.
  std::size_t send_queue_bytes_max = std::size_t{64} << 20;
};

class Connection {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    virtual void on_frame(Connection& connection, Frame frame) = 0;
    // The inbound stream broke (oversized frame, other protocol version). The connection is
    // already closing once its queued output is flushed: a last send_frame() still goes out.
    virtual void on_frame_error(Connection& connection, FrameError error, const std::string& message) = 0;
    // Outbound connections: the connect finished (status 0) or failed (status < 0, and the
    // connection is closing).
    virtual void on_connected(Connection& connection, int status) {
      (void)connection;
      (void)status;
    }
    // The last call for this connection; it is deleted right after.
    virtual void on_closed(Connection& connection, const std::string& reason) = 0;
  };

  // A new, unconnected connection: accept into tcp() and call start_reading(), or call connect().
  // Throws UvError when libuv cannot create the socket handle.
  static Connection* create(uv_loop_t* loop, Handler& handler, const ConnectionOptions& options);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  uv_tcp_t* tcp() { return &tcp_; }
  ConnectionId id() const { return id_; }
  // The other side's address, for logs ("" until known).
  const std::string& remote() const { return remote_; }

  // Starts delivering frames; on failure the connection closes and the error is returned.
  int start_reading();
  // Dials `address`; the result arrives in Handler::on_connected. Returns a libuv error (and
  // closes) when the attempt cannot even start.
  int connect(const sockaddr* address);

  // Queues one frame. False (nothing queued) when the connection is closing or the queue would
  // exceed send_queue_bytes_max; the caller decides whether that drops a message or the
  // connection.
  bool send_frame(FrameKind kind, std::string_view payload);
  std::size_t queued_bytes() const { return pending_.size() + inflight_.size(); }
  // Bytes the connection's buffers hold allocated (send and receive), queued or not.
  std::size_t reserved_bytes() const {
    return pending_.capacity() + inflight_.capacity() + read_buffer_.capacity() + reader_.reserved_bytes();
  }

  // Closes now, dropping queued output. Idempotent.
  void close(const std::string& reason);
  // Stops reading and closes once queued output has gone out (bounded by the queue limit).
  void close_after_flush(const std::string& reason);
  // Closes now and never calls the handler again: for an owner being destroyed before the loop
  // has finished closing its connections.
  void close_detached(const std::string& reason);
  bool closing() const { return closing_ || flush_then_close_; }

 private:
  Connection(uv_loop_t* loop, Handler& handler, const ConnectionOptions& options);
  ~Connection() = default;

  void start_write();
  void on_read(ssize_t nread, const uv_buf_t* buf);
  void on_write(int status);

  uv_tcp_t tcp_{};
  uv_write_t write_req_{};
  uv_connect_t connect_req_{};
  Handler* handler_;
  ConnectionOptions options_;
  ConnectionId id_;
  std::string remote_;
  FrameReader reader_;
  std::string read_buffer_;
  std::string pending_;   // frames waiting for the current write to finish
  std::string inflight_;  // the bytes of the uv_write in progress
  bool writing_ = false;
  bool closing_ = false;
  bool flush_then_close_ = false;
  std::string close_reason_;
};

}  // namespace coord::net
