// Running many seeds and reporting them: what cmd/coord-sim prints, kept here so tests can reach
// it. Seeds are independent runs; with several jobs they run on threads but are reported in
// seed order, so the output (and a trace file) does not depend on the number of jobs.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/simulation.h"

namespace coord::sim {

struct SeedRange {
  std::uint64_t first = 1;
  std::uint64_t last = 1;  // inclusive

  bool operator==(const SeedRange&) const = default;
};

// "A..B" with A <= B.
std::optional<SeedRange> parse_seed_range(std::string_view text, std::string* error);

inline constexpr int kJobsMax = 256;

// Runs seeds [range.first, range.last] with `base` options (its seed and trace are overridden)
// and calls `report` for each result in seed order, with that seed's trace text when
// `with_trace` (empty otherwise).
void run_seeds(const Options& base, SeedRange range, int jobs, bool with_trace,
               const std::function<void(const Result&, const std::string& trace)>& report);

// "seed=7 passed leaders=4 acked=812 ...".
std::string summary_line(const Result& result);
// "VIOLATION seed=N invariant=NAME", the message, then the last events, one per line.
std::vector<std::string> violation_lines(const Result& result);
// The last line of a run: "N passed, M failed".
std::string totals_line(std::uint64_t passed, std::uint64_t failed);

}  // namespace coord::sim
