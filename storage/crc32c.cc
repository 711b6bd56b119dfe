#include "storage/crc32c.h"

#include <isa-l/crc.h>

#include <algorithm>
#include <climits>
#include <cstddef>

namespace coord::storage {

std::uint32_t crc32c(std::string_view bytes, std::uint32_t crc) {
  // ISA-L's crc32_iscsi neither inverts its seed nor its result; the standard CRC-32C does
  // both, so that a running value continues across calls.
  auto* p = reinterpret_cast<unsigned char*>(const_cast<char*>(bytes.data()));  // ISA-L only reads
  std::size_t n = bytes.size();
  crc = ~crc;
  while (n > 0) {
    // Its length is an int: feed larger inputs in pieces.
    const std::size_t piece = std::min<std::size_t>(n, INT_MAX / 2);
    crc = crc32_iscsi(p, static_cast<int>(piece), crc);
    p += piece;
    n -= piece;
  }
  return ~crc;
}

}  // namespace coord::storage
