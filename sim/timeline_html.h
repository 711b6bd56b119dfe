// Renders a run's Timeline (sim/timeline.h) as one self-contained HTML page: inline CSS and
// inline SVG, no script, no font or file fetched from anywhere, so the page opens from disk in
// any browser. A lane per replica (role and term over virtual time, down and paused spans,
// the faults acting on it), a lane for cluster-wide faults, a lane per client (its operations;
// for the locks workload its lock holdings and guarded writes with their fencing tokens), the
// violation marked where it happened. A failing run gets a second panel zoomed on the moments
// before the violation; for mutual-exclusion the interleaved writes of the two holders are
// drawn in kOverlapColour. Every text taken from the run is escaped.
#pragma once

#include <string>
#include <string_view>

#include "sim/timeline.h"

namespace coord::sim {

// The colours the page promises (the screenshot test looks for them).
inline constexpr const char* kOverlapColour = "#ff00ff";   // mutual-exclusion: the overlapping writes
inline constexpr const char* kLeaderColour = "#2e7d32";
inline constexpr const char* kFollowerColour = "#a5d6a7";
inline constexpr const char* kCandidateColour = "#ffa726";
inline constexpr const char* kDownColour = "#37474f";
inline constexpr const char* kHoldColour = "#64b5f6";       // a client holding a lock
inline constexpr const char* kViolationColour = "#d50000";

// `&`, `<`, `>`, `"` and `'` as entities; control bytes as U+FFFD.
std::string html_escape(std::string_view text);

std::string timeline_html(const Timeline& timeline);

}  // namespace coord::sim
