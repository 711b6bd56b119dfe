// Shared by the two port targets (fuzz_frame_client, fuzz_frame_peer): a byte stream read into
// frames as a connection reads it, and the checks every framed port gets before dispatch.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "net/frame.h"

namespace coord::fuzz {

struct FrameRead {
  std::vector<net::Frame> frames;
  net::FrameError error = net::FrameError::None;
};

// Feeds `stream` to a FrameReader in pieces whose sizes come from `cut` (0: all at once),
// draining after each piece, as a connection's read callback does. Keeps the first frames_max.
inline FrameRead read_frames(std::string_view stream, std::uint8_t cut, std::size_t payload_bytes_max,
                             std::size_t frames_max) {
  net::FrameReader reader(payload_bytes_max);
  FrameRead out;
  std::uint64_t state = cut;
  while (!stream.empty()) {
    std::size_t n = stream.size();
    if (cut != 0) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      n = std::min<std::size_t>(stream.size(), 1 + (state >> 33) % 64);
    }
    reader.feed(stream.substr(0, n));
    stream.remove_prefix(n);
    while (auto frame = reader.next()) {
      if (out.frames.size() < frames_max) out.frames.push_back(std::move(*frame));
    }
  }
  out.error = reader.error();
  return out;
}

// Reads the stream whole and cut by `cut` and checks that both give the same frames and error
// (framing must not depend on how TCP split the bytes), and that the frames re-encode to the
// bytes they were read from. Returns the frames.
inline FrameRead read_frames_checked(std::string_view stream, std::uint8_t cut, std::size_t payload_bytes_max,
                                     std::size_t frames_max) {
  FrameRead whole = read_frames(stream, 0, payload_bytes_max, frames_max);
  const FrameRead pieces = read_frames(stream, cut == 0 ? 1 : cut, payload_bytes_max, frames_max);
  FUZZ_CHECK(whole.frames == pieces.frames && whole.error == pieces.error,
             "the frames depend on how the stream was cut (%zu vs %zu frames)", whole.frames.size(),
             pieces.frames.size());
  std::string again;
  for (const net::Frame& f : whole.frames) net::append_frame(again, f.kind, f.payload);
  FUZZ_CHECK(stream.substr(0, again.size()) == again, "frames do not re-encode to their bytes");
  return whole;
}

}  // namespace coord::fuzz
