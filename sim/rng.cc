#include "sim/rng.h"

namespace coord::sim {

std::uint64_t splitmix64(std::uint64_t& state) {
  state += 0x9e3779b97f4a7c15ULL;
  return mix64(state);
}

std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t fnv1a64(std::string_view bytes, std::uint64_t basis) {
  std::uint64_t h = basis;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

Rng::Rng(std::uint64_t seed) {
  std::uint64_t state = seed;
  for (auto& word : s_) word = splitmix64(state);
  // xoshiro must not start from all zeros; splitmix64 output makes that practically impossible,
  // but one guard costs nothing.
  if ((s_[0] | s_[1] | s_[2] | s_[3]) == 0) s_[0] = 1;
}

Rng Rng::stream(std::uint64_t root_seed, std::string_view purpose, std::uint64_t index) {
  std::uint64_t state = root_seed;
  std::uint64_t a = splitmix64(state);
  std::uint64_t b = mix64(fnv1a64(purpose) ^ mix64(index + 0x5851f42d4c957f2dULL));
  return Rng(a ^ b);
}

namespace {
std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

std::uint64_t Rng::next() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

std::uint64_t Rng::below(std::uint64_t bound) {
  if (bound <= 1) return 0;
  // Reject the top sliver of the range that would make small results more likely.
  const std::uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
  for (;;) {
    std::uint64_t x = next();
    if (x < limit) return x % bound;
  }
}

std::uint64_t Rng::between(std::uint64_t lo, std::uint64_t hi) {
  if (hi <= lo) return lo;
  if (hi - lo == UINT64_MAX) return next();
  return lo + below(hi - lo + 1);
}

std::int64_t Rng::between_signed(std::int64_t lo, std::int64_t hi) {
  if (hi <= lo) return lo;
  const auto span = static_cast<std::uint64_t>(hi - lo);
  return lo + static_cast<std::int64_t>(between(0, span));
}

bool Rng::chance_ppm(std::uint32_t ppm) { return below(1'000'000) < ppm; }

}  // namespace coord::sim
