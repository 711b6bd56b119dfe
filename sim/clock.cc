#include "sim/clock.h"

#include <algorithm>

namespace coord::sim {

std::int64_t LocalClock::local(Micros now) const {
  const auto elapsed = static_cast<std::int64_t>(now - anchor_virtual_);
  return anchor_local_ + elapsed * rate_ppm_ / kRatePpmNominal;
}

Micros LocalClock::when(std::int64_t target, Micros now) const {
  if (local(now) >= target) return now;
  // Smallest elapsed e with anchor_local_ + floor(e * rate / 1e6) >= target.
  const std::int64_t need = target - anchor_local_;
  const std::int64_t elapsed = (need * kRatePpmNominal + rate_ppm_ - 1) / rate_ppm_;
  Micros at = anchor_virtual_ + static_cast<Micros>(std::max<std::int64_t>(elapsed, 0));
  return std::max(at, now);
}

void LocalClock::set_rate(Micros now, std::int64_t rate_ppm) {
  anchor_local_ = local(now);
  anchor_virtual_ = now;
  rate_ppm_ = std::clamp(rate_ppm, kRatePpmMin, kRatePpmMax);
}

void LocalClock::jump(Micros now, std::int64_t delta_us) {
  anchor_local_ = local(now) + delta_us;
  anchor_virtual_ = now;
}

}  // namespace coord::sim
