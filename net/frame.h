// Frames delimit messages on a byte stream (a TCP connection between replicas, later also
// clients). Layout, all integers little-endian:
//
//   offset 0  u32  payload length in bytes (header excluded)
//   offset 4  u8   protocol version (protocol_version)
//   offset 5  u8   frame kind (FrameKind)
//   offset 6  ...  payload, `length` bytes
//
// The version is per frame rather than per connection so that a reader can refuse a peer's very
// first frame without a handshake, and so that a future handshake is itself just a frame kind.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace coord::net {

inline constexpr std::size_t frame_header_bytes = 6;
// Bumped only for changes the payload schemas cannot absorb (see net/README.md); a reader
// refuses every other version.
inline constexpr std::uint8_t protocol_version = 1;
// Default bound on one frame's payload; a connection may set a lower one. Far below 4 GiB, the
// most the length field can say.
inline constexpr std::size_t frame_payload_bytes_max = std::size_t{128} << 20;
// A connection's buffer (send or receive) that drained keeps its allocation up to this size for
// the next frames; a larger one, grown by a burst (a big frame, or output queued while the other
// side was slow), is given back, so a burst does not stay resident for the connection's life.
inline constexpr std::size_t buffer_retained_bytes_max = std::size_t{256} << 10;

// What the payload is. Kinds a receiver does not know are its dispatcher's call (refuse or
// skip), not the reader's: the frame boundary is intact either way.
enum class FrameKind : std::uint8_t {
  RaftMessage = 1,     // net/raft_codec.h
  ClientRequest = 2,   // net/client_codec.h, client -> replica
  ClientResponse = 3,  // net/client_codec.h, replica -> client
  PeerHello = 4,       // net/peer_codec.h: first frame on a replica-to-replica connection
};

struct Frame {
  FrameKind kind = FrameKind::RaftMessage;
  std::string payload;

  bool operator==(const Frame&) const = default;
};

// Appends one frame to `out` (a send buffer). The payload must be within frame_payload_bytes_max
// (COORD_ASSERT): the sender bounds what it frames.
void append_frame(std::string& out, FrameKind kind, std::string_view payload);
std::string encode_frame(FrameKind kind, std::string_view payload);

enum class FrameError : std::uint8_t {
  None = 0,
  TooLarge,    // the length field exceeds the reader's limit
  BadVersion,  // a protocol version this build does not speak
};

const char* to_string(FrameError error);

// Reassembles frames from a byte stream delivered in arbitrary pieces. A header is checked as
// soon as all six of its bytes are in, without waiting for its payload, so a peer cannot make
// us buffer more than payload_bytes_max for one frame. An error is final: once the stream is out
// of step nothing after it can be trusted, so the connection must close. The same bytes give the
// same frames and the same error however they are split.
class FrameReader {
 public:
  explicit FrameReader(std::size_t payload_bytes_max = frame_payload_bytes_max);

  // Buffers `bytes`; ignored once the stream is broken. Call next() until it returns nullopt
  // after each feed, so the buffer holds at most one partial frame plus the last piece.
  void feed(std::string_view bytes);
  // The next complete frame, or nullopt when more bytes are needed or the stream is broken.
  std::optional<Frame> next();

  FrameError error() const { return error_; }
  // The error with its details (the offending length or version); empty while there is none.
  const std::string& error_message() const { return error_message_; }
  std::size_t buffered_bytes() const { return buffer_.size() - read_offset_; }
  std::size_t reserved_bytes() const { return buffer_.capacity(); }

 private:
  void fail(FrameError error, std::string message);

  std::size_t payload_bytes_max_;
  std::string buffer_;
  std::size_t read_offset_ = 0;  // bytes of buffer_ already handed out as frames
  FrameError error_ = FrameError::None;
  std::string error_message_;
};

}  // namespace coord::net
