// Damage at rest for tests: flips one bit in every copy of a byte string in a file.
#pragma once

#include <cstddef>
#include <fstream>
#include <iterator>
#include <string>

namespace coordtest {

// Flips `mask` in the byte `at` of every copy of `needle` in the file (LMDB's copy-on-write may
// leave stale copies of a page in free space; the live one is among them). Returns how many.
inline int flip_everywhere(const std::string& path, const std::string& needle, std::size_t at, char mask) {
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  int flipped = 0;
  for (std::size_t found = bytes.find(needle); found != std::string::npos; found = bytes.find(needle, found + 1)) {
    bytes[found + at] = static_cast<char>(bytes[found + at] ^ mask);
    ++flipped;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return flipped;
}

}  // namespace coordtest
