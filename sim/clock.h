// A node's own clock, as its host sees it: an offset from virtual time (skew), a rate (drift)
// and sudden jumps (an NTP step, a VM migration). Integer arithmetic in parts per million keeps
// every run bit-identical across machines.
#pragma once

#include <cstdint>

#include "sim/time.h"

namespace coord::sim {

inline constexpr std::int64_t kRatePpmNominal = 1'000'000;
// Drift bounds: real oscillators are far better, but 10% makes timer bugs show up quickly.
inline constexpr std::int64_t kRatePpmMin = 900'000;
inline constexpr std::int64_t kRatePpmMax = 1'100'000;

class LocalClock {
 public:
  // Local time starts at `offset_us` when virtual time is 0.
  explicit LocalClock(std::int64_t offset_us = 0) : anchor_local_(offset_us) {}

  std::int64_t local(Micros now) const;
  // The earliest virtual time (>= now) at which local time reaches `target`.
  Micros when(std::int64_t target, Micros now) const;

  std::int64_t rate_ppm() const { return rate_ppm_; }
  // Rates outside [kRatePpmMin, kRatePpmMax] are clamped into it.
  void set_rate(Micros now, std::int64_t rate_ppm);
  // Moves local time by delta_us (negative: backwards) at virtual time `now`.
  void jump(Micros now, std::int64_t delta_us);

 private:
  // Local time is anchor_local_ at anchor_virtual_ and runs at rate_ppm_ from there on.
  Micros anchor_virtual_ = 0;
  std::int64_t anchor_local_ = 0;
  std::int64_t rate_ppm_ = kRatePpmNominal;
};

}  // namespace coord::sim
