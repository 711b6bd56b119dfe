// Flatbuffers reads scalars in place, so a buffer must be aligned for its widest scalar (8
// bytes). A frame payload may start anywhere in a receive buffer; this copies it into aligned
// storage when it is misaligned, instead of reading scalars unaligned.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace coord::net {

inline const std::uint8_t* aligned_bytes(std::string_view bytes, std::vector<std::uint64_t>& storage) {
  const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
  if (reinterpret_cast<std::uintptr_t>(data) % alignof(std::uint64_t) == 0) return data;
  storage.resize((bytes.size() + sizeof(std::uint64_t) - 1) / sizeof(std::uint64_t));
  std::memcpy(storage.data(), bytes.data(), bytes.size());
  return reinterpret_cast<const std::uint8_t*>(storage.data());
}

}  // namespace coord::net
