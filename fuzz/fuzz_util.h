// Shared by the fuzz targets: reading structured choices out of the fuzzer's bytes, and a check
// that stops the run loudly (a libFuzzer crash, or a failed replay test) with what broke.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#define FUZZ_CHECK(cond, ...)                                                   \
  do {                                                                         \
    if (!(cond)) [[unlikely]] {                                                \
      std::fprintf(stderr, "%s:%d: fuzz check failed: %s: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                       \
      std::fprintf(stderr, "\n");                                              \
      std::abort();                                                            \
    }                                                                          \
  } while (false)

namespace coord::fuzz {

// Consumes the input front to back. Past the end every read gives zeros (and empty strings), so
// a harness never has to check lengths: a short input is just a short program.
class Bytes {
 public:
  Bytes(const std::uint8_t* data, std::size_t size)
      : data_(reinterpret_cast<const char*>(data), size) {}
  explicit Bytes(std::string_view data) : data_(data) {}

  bool empty() const { return at_ >= data_.size(); }
  std::size_t left() const { return empty() ? 0 : data_.size() - at_; }

  std::uint8_t u8() { return empty() ? 0 : static_cast<std::uint8_t>(data_[at_++]); }
  bool flag() { return (u8() & 1) != 0; }
  // Little-endian; each byte read in its own statement (operand order is unspecified).
  std::uint16_t u16() {
    const std::uint16_t lo = u8();
    return static_cast<std::uint16_t>(lo | u8() << 8);
  }
  std::uint32_t u32() {
    const std::uint32_t lo = u16();
    return lo | static_cast<std::uint32_t>(u16()) << 16;
  }
  std::uint64_t u64() {
    const std::uint64_t lo = u32();
    return lo | static_cast<std::uint64_t>(u32()) << 32;
  }
  // Uniform enough in [0, bound); bound > 0.
  std::uint64_t below(std::uint64_t bound) { return bound <= 256 ? u8() % bound : u64() % bound; }

  // Up to `max` bytes, the length taken from the input first.
  std::string str(std::size_t max) {
    std::size_t n = max <= 255 ? u8() : u16();
    if (n > max) n = n % (max + 1);
    return take(n);
  }
  std::string take(std::size_t n) {
    if (n > left()) n = left();
    std::string out(data_.substr(at_, n));
    at_ += n;
    return out;
  }
  std::string rest() { return take(left()); }

 private:
  std::string_view data_;
  std::size_t at_ = 0;
};

}  // namespace coord::fuzz
