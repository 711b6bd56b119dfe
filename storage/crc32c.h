// CRC-32C (Castagnoli), the checksum on every record the log store writes. Chosen over a
// faster hash because it needs no dependency (libxxhash-dev is not in the package set) and,
// unlike a general hash, guarantees to catch every burst error up to 32 bits, which is the
// failure a flipped or torn disk sector produces.
#pragma once

#include <cstdint>
#include <string_view>

namespace coord::storage {

// Continues a running checksum: crc32c(b, crc32c(a)) == crc32c(a + b). Start from 0.
std::uint32_t crc32c(std::string_view bytes, std::uint32_t crc = 0);

}  // namespace coord::storage
