// Virtual time of the simulation. One clock for the whole simulated world, in microseconds
// since the run started; node-local clocks (sim/clock.h) are derived from it.
#pragma once

#include <cstdint>
#include <string>

namespace coord::sim {

using Micros = std::uint64_t;

inline constexpr Micros kMicrosPerMilli = 1'000;
inline constexpr Micros kMicrosPerSecond = 1'000'000;

constexpr Micros millis(std::uint64_t ms) { return ms * kMicrosPerMilli; }
constexpr Micros seconds(std::uint64_t s) { return s * kMicrosPerSecond; }

// "12.345678": seconds with microsecond digits, fixed width of the fraction so traces align.
std::string format_time(Micros t);

}  // namespace coord::sim
