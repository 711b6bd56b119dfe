// The 16 lower-case hex digits that number the store's files (snapshot files by index, WAL
// segments by sequence), written by fmt's {:016x}. Parsing is strict, one spelling per number,
// so that two names can never stand for the same file.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>

namespace coord::storage {

inline constexpr std::size_t hex_name_digits = 16;

inline std::optional<std::uint64_t> parse_hex_name(std::string_view digits) {
  if (digits.size() != hex_name_digits) return std::nullopt;
  for (char c : digits) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  }
  std::uint64_t value = 0;
  std::from_chars(digits.data(), digits.data() + digits.size(), value, 16);
  return value;
}

}  // namespace coord::storage
