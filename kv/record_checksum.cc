#include "kv/record_checksum.h"

#include <isa-l/crc.h>

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cstring>

namespace coord::kv {

namespace {

// CRC-32C continued over `bytes` (ISA-L neither inverts its seed nor its result; the standard
// CRC-32C does both).
std::uint32_t crc32c(std::string_view bytes, std::uint32_t crc) {
  auto* p = reinterpret_cast<unsigned char*>(const_cast<char*>(bytes.data()));  // only read
  std::size_t n = bytes.size();
  crc = ~crc;
  while (n > 0) {
    const std::size_t piece = std::min<std::size_t>(n, INT_MAX / 2);
    crc = crc32_iscsi(p, static_cast<int>(piece), crc);
    p += piece;
    n -= piece;
  }
  return ~crc;
}

}  // namespace

std::uint32_t record_checksum(Table table, std::string_view key, std::string_view value) {
  // The CRC of table byte, key length (4 bytes, little-endian: ("ab", "c") and ("a", "bc") must
  // not sum alike), key and value, in that order. Keys are short (LMDB's are at most 511 bytes):
  // the first three go through one call from a buffer on the stack, since each call has a fixed
  // cost that dominates for a few bytes, and checksums run on every row read and written.
  const std::uint32_t key_size = static_cast<std::uint32_t>(key.size());
  char head[1 + 4 + 512];
  std::size_t n = 0;
  head[n++] = static_cast<char>(table);
  for (int i = 0; i < 4; ++i) head[n++] = static_cast<char>(key_size >> (8 * i));
  std::uint32_t crc = 0;
  if (key.size() <= sizeof(head) - n) {
    if (!key.empty()) std::memcpy(head + n, key.data(), key.size());
    crc = crc32c(std::string_view(head, n + key.size()), 0);
  } else {
    crc = crc32c(key, crc32c(std::string_view(head, n), 0));
  }
  return crc32c(value, crc);
}

void write_checked_value(Table table, std::string_view key, std::string_view value, char* out) {
  const std::uint32_t crc = record_checksum(table, key, value);
  for (std::size_t i = 0; i < record_checksum_bytes; ++i) out[i] = static_cast<char>(crc >> (8 * i));
  if (!value.empty()) std::memcpy(out + record_checksum_bytes, value.data(), value.size());
}

CheckedValue read_checked_value(Table table, std::string_view key, std::string_view stored) {
  CheckedValue out;
  if (stored.size() < record_checksum_bytes) {
    out.problem = fmt::format("a value of {} bytes, shorter than its checksum", stored.size());
    return out;
  }
  std::uint32_t recorded = 0;
  for (std::size_t i = 0; i < record_checksum_bytes; ++i) {
    recorded |= static_cast<std::uint32_t>(static_cast<unsigned char>(stored[i])) << (8 * i);
  }
  out.value = stored.substr(record_checksum_bytes);
  const std::uint32_t computed = record_checksum(table, key, out.value);
  if (computed != recorded) {
    out.problem = fmt::format("checksum mismatch (stored {:#010x}, computed {:#010x})", recorded, computed);
  }
  return out;
}

std::string printable_key(std::string_view key) {
  constexpr std::size_t shown_max = 96;
  std::string out;
  for (std::size_t i = 0; i < key.size() && i < shown_max; ++i) {
    const auto c = static_cast<unsigned char>(key[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (key.size() > shown_max) out += fmt::format("... ({} bytes)", key.size());
  return out;
}

}  // namespace coord::kv
