#include "sim/time.h"

#include <fmt/format.h>

namespace coord::sim {

std::string format_time(Micros t) {
  return fmt::format("{}.{:06}", t / kMicrosPerSecond, t % kMicrosPerSecond);
}

}  // namespace coord::sim
