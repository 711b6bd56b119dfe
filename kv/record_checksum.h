// The checksum LmdbStorage keeps in front of every value it stores: CRC-32C (Intel ISA-L,
// Debian's libisal-dev, the same function as the Raft log's records) over the table, the key and
// the value, so that a flipped bit, a torn page or a value under the wrong key or table is
// found when it is read instead of being served or applied.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kv/storage.h"

namespace coord::kv {

inline constexpr std::size_t record_checksum_bytes = 4;

std::uint32_t record_checksum(Table table, std::string_view key, std::string_view value);

// Writes the stored form (checksum, little-endian, then the value) into `out`, which holds
// record_checksum_bytes + value.size() bytes.
void write_checked_value(Table table, std::string_view key, std::string_view value, char* out);

// The value inside a stored form, or an explanation of why it fails its checksum.
struct CheckedValue {
  std::string_view value;
  std::string problem;  // empty when the checksum holds
};
CheckedValue read_checked_value(Table table, std::string_view key, std::string_view stored);

// A key as text for an error message: printable bytes as they are, others as \xNN, cut short.
std::string printable_key(std::string_view key);

}  // namespace coord::kv
