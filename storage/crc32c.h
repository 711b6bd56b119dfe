// CRC-32C (Castagnoli), the checksum on every record the log store writes. Chosen over a
// general hash because, unlike one, it guarantees to catch every burst error up to 32 bits,
// which is the failure a flipped or torn disk sector produces. Computed by Intel's ISA-L
// (Debian's libisal-dev), which picks the CPU's CRC32 instruction at run time; the values are
// the standard CRC-32C ones, so data directories written by earlier builds still load.
#pragma once

#include <cstdint>
#include <string_view>

namespace coord::storage {

// Continues a running checksum: crc32c(b, crc32c(a)) == crc32c(a + b). Start from 0.
std::uint32_t crc32c(std::string_view bytes, std::uint32_t crc = 0);

}  // namespace coord::storage
