#include "net/frame.h"

#include <fmt/format.h>

#include <utility>

#include "raft/assert.h"

namespace coord::net {

namespace {

static_assert(frame_payload_bytes_max <= UINT32_MAX, "frame lengths are 32-bit");

// Once this much of the buffer has been handed out, the rest moves to the front; below it the
// copy would cost more than the memory it frees.
constexpr std::size_t compact_offset_bytes_min = 64 << 10;

std::uint32_t read_u32_le(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return static_cast<std::uint32_t>(b[0]) | static_cast<std::uint32_t>(b[1]) << 8 |
         static_cast<std::uint32_t>(b[2]) << 16 | static_cast<std::uint32_t>(b[3]) << 24;
}

}  // namespace

void append_frame(std::string& out, FrameKind kind, std::string_view payload) {
  COORD_ASSERT(payload.size() <= frame_payload_bytes_max, "frame payload exceeds frame_payload_bytes_max");
  const auto length = static_cast<std::uint32_t>(payload.size());
  const char header[frame_header_bytes] = {
      static_cast<char>(length & 0xff),
      static_cast<char>((length >> 8) & 0xff),
      static_cast<char>((length >> 16) & 0xff),
      static_cast<char>((length >> 24) & 0xff),
      static_cast<char>(protocol_version),
      static_cast<char>(kind),
  };
  out.reserve(out.size() + frame_header_bytes + payload.size());
  out.append(header, frame_header_bytes);
  out.append(payload);
}

std::string encode_frame(FrameKind kind, std::string_view payload) {
  std::string out;
  append_frame(out, kind, payload);
  return out;
}

const char* to_string(FrameError error) {
  switch (error) {
    case FrameError::None: return "none";
    case FrameError::TooLarge: return "frame too large";
    case FrameError::BadVersion: return "unsupported protocol version";
  }
  return "unknown frame error";
}

FrameReader::FrameReader(std::size_t payload_bytes_max) : payload_bytes_max_(payload_bytes_max) {
  COORD_ASSERT(payload_bytes_max_ <= frame_payload_bytes_max,
               "a reader's limit must be within frame_payload_bytes_max");
}

void FrameReader::feed(std::string_view bytes) {
  if (error_ != FrameError::None) return;
  if (read_offset_ == buffer_.size()) {
    buffer_.clear();
    read_offset_ = 0;
  } else if (read_offset_ >= compact_offset_bytes_min && read_offset_ * 2 >= buffer_.size()) {
    buffer_.erase(0, read_offset_);
    read_offset_ = 0;
  }
  buffer_.append(bytes);
}

std::optional<Frame> FrameReader::next() {
  if (error_ != FrameError::None) return std::nullopt;
  if (buffered_bytes() < frame_header_bytes) return std::nullopt;
  const char* header = buffer_.data() + read_offset_;
  // Version before length: a peer speaking another version may lay out its header differently,
  // so its length field means nothing to us.
  const auto version = static_cast<std::uint8_t>(header[4]);
  if (version != protocol_version) {
    fail(FrameError::BadVersion,
         fmt::format("protocol version {} (this build speaks {})", version, protocol_version));
    return std::nullopt;
  }
  const std::uint32_t length = read_u32_le(header);
  if (length > payload_bytes_max_) {
    fail(FrameError::TooLarge,
         fmt::format("frame of {} bytes exceeds the limit of {} bytes", length, payload_bytes_max_));
    return std::nullopt;
  }
  if (buffered_bytes() - frame_header_bytes < length) return std::nullopt;
  Frame frame;
  frame.kind = static_cast<FrameKind>(static_cast<std::uint8_t>(header[5]));
  frame.payload.assign(header + frame_header_bytes, length);
  read_offset_ += frame_header_bytes + length;
  if (read_offset_ == buffer_.size()) {
    // Everything handed out: start over, and give back what a large frame made the buffer grow to.
    buffer_.clear();
    read_offset_ = 0;
    if (buffer_.capacity() > buffer_retained_bytes_max) std::string().swap(buffer_);
  }
  return frame;
}

void FrameReader::fail(FrameError error, std::string message) {
  error_ = error;
  error_message_ = std::string(to_string(error)) + ": " + std::move(message);
  buffer_.clear();
  buffer_.shrink_to_fit();
  read_offset_ = 0;
}

}  // namespace coord::net
