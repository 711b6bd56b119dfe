#include "sim/timeline_html.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <set>
#include <tuple>
#include <vector>

#include <fmt/format.h>

namespace coord::sim {

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') {
          out += "&#xFFFD;";
        } else {
          out.push_back(c);
        }
    }
  }
  return out;
}

namespace {

// Layout, in CSS pixels: the page is made to fit a 1400-pixel-wide window.
constexpr double kSvgWidth = 1340;
constexpr double kLabelWidth = 110;
constexpr double kRightMargin = 24;
constexpr double kPanelTitleHeight = 22;
constexpr double kMarkerLabelHeight = 16;
constexpr double kClusterLaneHeight = 20;
constexpr double kLaneHeight = 26;
constexpr double kGroupGap = 8;
constexpr double kAxisHeight = 26;
constexpr double kMinBarWidth = 2;
constexpr double kMinWriteWidth = 4;
constexpr Micros kZoomMinUs = 200'000;
constexpr double kZoomShareMax = 0.6;

const char* state_colour(LaneState s) {
  switch (s) {
    case LaneState::Follower: return kFollowerColour;
    case LaneState::PreCandidate: return "#ffe0b2";
    case LaneState::Candidate: return kCandidateColour;
    case LaneState::Leader: return kLeaderColour;
    case LaneState::Paused: return "url(#tl-hatch-paused)";
    case LaneState::Down: return kDownColour;
  }
  return "#ffffff";
}

const char* fault_colour(FaultKind k) {
  switch (k) {
    case FaultKind::Partition: return "#e53935";
    case FaultKind::Network: return "#7e57c2";
    case FaultKind::ClockDrift:
    case FaultKind::ClockJump: return "#ef6c00";
    case FaultKind::Pause: return "#757575";
    case FaultKind::Crash:
    case FaultKind::PowerLoss:
    case FaultKind::CrashTrap: return "#000000";
    case FaultKind::DiskFail: return "#6d4c41";
    case FaultKind::DiskSlow: return "#a1887f";
    case FaultKind::ClientPause: return "#757575";
  }
  return "#000000";
}

std::string seconds(Micros t, int decimals = 3) {
  return fmt::format("{:.{}f} s", static_cast<double>(t) / 1e6, decimals);
}

std::string span_text(Micros from, Micros to) {
  if (from == to) return "at " + seconds(from, 6);
  return fmt::format("{} to {} ({})", seconds(from, 6), seconds(to, 6),
                     to - from >= kMicrosPerSecond ? seconds(to - from) : fmt::format("{} ms", (to - from) / 1000));
}

// Which writes and holdings the page draws as the violation, for mutual-exclusion: holder A's
// write that broke it and A's earlier writes there under the same token, and the writes of
// holder B, the one whose write first followed A's (the checker's "had taken over"), in
// between: the two holders' interleaved writes.
struct Highlights {
  std::set<std::size_t> writes;  // indexes into Timeline::writes()
  std::set<std::tuple<std::uint64_t, std::string, std::uint64_t>> holders;  // client, resource, token
  std::string callout;  // next to the culprit write
  bool any() const { return !writes.empty(); }
};

Highlights find_highlights(const Timeline& tl) {
  Highlights h;
  const auto& ws = tl.writes();
  auto culprit = std::find_if(ws.begin(), ws.end(), [](const GuardedWrite& w) { return w.violating; });
  if (culprit == ws.end()) return h;
  const GuardedWrite& v = *culprit;
  // The writes accepted on v's resource up to v, in the order the storage accepted them.
  std::vector<std::size_t> accepted;
  for (std::size_t i = 0; i < ws.size(); ++i) {
    const GuardedWrite& w = ws[i];
    if (w.fate == GuardedWrite::Fate::Accepted && w.resource == v.resource && w.landed <= v.landed) accepted.push_back(i);
  }
  std::stable_sort(accepted.begin(), accepted.end(),
                   [&ws](std::size_t a, std::size_t b) { return ws[a].landed < ws[b].landed; });
  const auto same_holder = [](const GuardedWrite& a, const GuardedWrite& b) {
    return a.client == b.client && a.token == b.token;
  };
  // A's last write before the culprit, then the first write of someone else after it: B.
  std::size_t last_a = accepted.size();
  for (std::size_t k = 0; k < accepted.size(); ++k) {
    if (accepted[k] != static_cast<std::size_t>(culprit - ws.begin()) && same_holder(ws[accepted[k]], v)) last_a = k;
  }
  const GuardedWrite* b = nullptr;
  for (std::size_t k = last_a == accepted.size() ? 0 : last_a + 1; k < accepted.size(); ++k) {
    if (!same_holder(ws[accepted[k]], v)) {
      b = &ws[accepted[k]];
      break;
    }
  }
  h.callout = b ? fmt::format("client {}'s write, token {}, accepted after client {}'s, token {} \u25B8", v.client,
                               v.token, b->client, b->token)
                 : fmt::format("client {}'s write, token {}, accepted \u25B8", v.client, v.token);
  for (std::size_t i : accepted) {
    const GuardedWrite& w = ws[i];
    if (same_holder(w, v) || (b && same_holder(w, *b))) {
      h.writes.insert(i);
      h.holders.emplace(w.client, w.resource, w.token);
    }
  }
  return h;
}

// The span of virtual time a panel shows, mapped onto its plot's x range.
struct Window {
  Micros t0 = 0;
  Micros t1 = 1;
  double x0 = kLabelWidth;
  double x1 = kSvgWidth - kRightMargin;

  double x(Micros t) const {
    const double f = (static_cast<double>(t) - static_cast<double>(t0)) / static_cast<double>(t1 - t0);
    return x0 + std::clamp(f, 0.0, 1.0) * (x1 - x0);
  }
  bool visible(Micros from, Micros to) const { return to >= t0 && from <= t1; }
};

struct Lane {
  enum class Kind : std::uint8_t { Cluster, Replica, Client };
  Kind kind;
  std::uint64_t id;  // replica or client id
  double y;
  double height;
};

class Page {
 public:
  explicit Page(const Timeline& tl) : tl_(tl), highlights_(find_highlights(tl)) {
    std::set<std::uint64_t> clients;
    for (const auto& o : tl.ops()) clients.insert(o.client);
    for (const auto& h : tl.holds()) clients.insert(h.client);
    for (const auto& w : tl.writes()) clients.insert(w.client);
    for (const auto& f : tl.faults()) {
      if (f.kind == FaultKind::ClientPause) clients.insert(f.lane);
    }
    clients_.assign(clients.begin(), clients.end());
    locks_ = !tl.holds().empty() || !tl.writes().empty() || tl.run().workload == "locks";
  }

  std::string render();

 private:
  void header();
  void legend();
  void panel(const Window& w, std::string_view title, std::string_view css_class);
  void lanes(const Window& w, const std::vector<Lane>& lanes);
  void replica_lane(const Window& w, const Lane& lane);
  void cluster_lane(const Window& w, const Lane& lane);
  void client_lane(const Window& w, const Lane& lane);
  void axis(const Window& w, double top, double bottom);
  void markers(const Window& w, double top, double bottom);
  void rect(double x, double y, double width, double height, std::string_view fill, std::string_view title,
            std::string_view extra = {});
  std::string replica_name(std::uint64_t id) const { return fmt::format("n{}", id); }

  const Timeline& tl_;
  Highlights highlights_;
  std::vector<std::uint64_t> clients_;
  bool locks_ = false;
  std::string out_;
};

void Page::rect(double x, double y, double width, double height, std::string_view fill, std::string_view title,
                std::string_view extra) {
  fmt::format_to(std::back_inserter(out_),
                 "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"{}><title>{}</title></rect>\n",
                 x, y, std::max(width, 0.0), height, fill, extra, html_escape(title));
}

std::string Page::render() {
  const TimelineRun& run = tl_.run();
  out_ += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  fmt::format_to(std::back_inserter(out_), "<title>coord-sim timeline: seed {} ({})</title>\n", run.seed,
                 html_escape(run.workload));
  out_ += R"html(<style>
body { font-family: sans-serif; margin: 12px 16px; color: #212121; background: #ffffff; }
h1 { font-size: 18px; margin: 0 0 4px 0; }
.run { font-size: 13px; color: #424242; margin-bottom: 6px; }
.verdict { font-size: 13px; padding: 6px 10px; margin-bottom: 8px; border-radius: 4px; }
.verdict.passed { background: #e8f5e9; border: 1px solid #2e7d32; }
.verdict.failed { background: #ffebee; border: 2px solid #d50000; }
.verdict .invariant { font-weight: bold; color: #d50000; }
svg { display: block; margin-bottom: 6px; }
svg text { font-family: sans-serif; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; margin-top: 4px; }
.legend span.swatch { display: inline-block; width: 18px; height: 11px; vertical-align: middle;
  margin-right: 4px; border: 1px solid #9e9e9e; }
.note { font-size: 12px; color: #616161; }
</style>
</head>
<body>
<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>
<pattern id="tl-hatch-paused" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
<rect width="6" height="6" fill="#e0e0e0"/><rect width="3" height="6" fill="#9e9e9e"/></pattern>
<pattern id="tl-hatch-client-pause" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)">
<rect width="6" height="6" fill="#ffffff" fill-opacity="0"/><rect width="2" height="6" fill="#757575" fill-opacity="0.55"/></pattern>
</defs></svg>
)html";
  header();
  const Micros end = std::max<Micros>(tl_.end(), 1);
  panel(Window{0, end}, "whole run", "overview");
  if (!tl_.violations().empty()) {
    const ViolationMark& v = tl_.violations().front();
    Micros from = v.at > 3 * kMicrosPerSecond ? v.at - 3 * kMicrosPerSecond : 0;
    if (highlights_.any()) {
      from = v.at;
      for (std::size_t i : highlights_.writes) from = std::min(from, tl_.writes()[i].sent);
      // Back to the start of the involved holdings, when they are not much longer.
      for (const LockHold& h : tl_.holds()) {
        if (highlights_.holders.count({h.client, h.resource, h.token}) && h.from < from &&
            v.at - h.from < 10 * kMicrosPerSecond) {
          from = h.from;
        }
      }
    }
    Micros span = std::max<Micros>(v.at - from, kZoomMinUs);
    const Micros margin = span / 12;
    const Micros t0 = from > margin ? from - margin : 0;
    // Past the run's end if need be: the violation ends the run, and its marker should not sit
    // on the edge.
    const Micros t1 = std::max<Micros>(v.at + margin, t0 + kZoomMinUs);
    // Not worth a second panel when it would show most of the first.
    if (static_cast<double>(t1 - t0) < kZoomShareMax * static_cast<double>(end)) {
      panel(Window{t0, std::max<Micros>(t1, t0 + 1)},
            fmt::format("zoom: {} to {}, before the violation", seconds(t0), seconds(t1)), "zoom");
    }
  }
  legend();
  if (tl_.ops_dropped() > 0) {
    fmt::format_to(std::back_inserter(out_), "<p class=\"note\">{} client operations after the first {} are not drawn.</p>\n",
                   tl_.ops_dropped(), kTimelineOpsMax);
  }
  out_ += "</body>\n</html>\n";
  return std::move(out_);
}

void Page::header() {
  const TimelineRun& run = tl_.run();
  fmt::format_to(std::back_inserter(out_), "<h1>coord-sim timeline: seed {}</h1>\n", run.seed);
  fmt::format_to(std::back_inserter(out_),
                 "<div class=\"run\">workload <b>{}</b>{} &middot; {} replicas &middot; faults {} &middot; "
                 "faults stop (heal) at {} &middot; run ends at {} (virtual time)</div>\n",
                 html_escape(run.workload), run.fencing ? "" : " <b>without fencing</b>", run.nodes,
                 html_escape(run.faults), seconds(run.heal_at, 1), seconds(tl_.end(), 3));
  if (tl_.violations().empty()) {
    out_ += "<div class=\"verdict passed\" id=\"verdict\">passed: no invariant broken</div>\n";
    return;
  }
  for (const ViolationMark& v : tl_.violations()) {
    fmt::format_to(std::back_inserter(out_),
                   "<div class=\"verdict failed\" id=\"verdict\">VIOLATION at {}: invariant <span "
                   "class=\"invariant\">{}</span><br>{}</div>\n",
                   seconds(v.at, 6), html_escape(v.invariant), html_escape(v.message));
  }
}

void Page::legend() {
  struct Item {
    std::string swatch;  // CSS background
    const char* text;
  };
  std::vector<Item> items = {
      {kLeaderColour, "leader"},
      {kFollowerColour, "follower"},
      {"#ffe0b2", "pre-candidate"},
      {kCandidateColour, "candidate"},
      {"repeating-linear-gradient(45deg,#9e9e9e 0 2px,#e0e0e0 2px 4px)", "paused"},
      {kDownColour, "down (crashed)"},
      {"#e53935", "partition"},
      {"#7e57c2", "lossy / slow network"},
      {"#ef6c00", "clock drift / jump"},
      {"#6d4c41", "disk failing"},
      {"#a1887f", "disk slow"},
      {"#000000", "crash / power loss"},
  };
  if (locks_) {
    items.push_back({kHoldColour, "lock held (token)"});
    items.push_back({"#0d47a1", "guarded write accepted (sent \u2192 landed)"});
    items.push_back({"#ef9a9a", "write refused (stale token)"});
    items.push_back({"#bdbdbd", "write in flight at the end"});
    items.push_back({kOverlapColour, "overlapping writes of two holders"});
    items.push_back({"repeating-linear-gradient(-45deg,#757575 0 2px,#ffffff 2px 4px)", "client process paused"});
  } else {
    items.push_back({"#5c6bc0", "client operation answered"});
    items.push_back({"#e57373", "operation failed"});
    items.push_back({"#ffffff", "never answered"});
  }
  items.push_back({kViolationColour, "violation"});
  out_ += "<div class=\"legend\" id=\"legend\">";
  for (const Item& i : items) {
    fmt::format_to(std::back_inserter(out_), "<div><span class=\"swatch\" style=\"background:{}\"></span>{}</div>",
                   i.swatch, html_escape(i.text));
  }
  out_ += "</div>\n<p class=\"note\">Hover over any bar for its details. Virtual time in seconds.</p>\n";
}

void Page::panel(const Window& w, std::string_view title, std::string_view css_class) {
  std::vector<Lane> ls;
  double y = kPanelTitleHeight + kMarkerLabelHeight;
  ls.push_back(Lane{Lane::Kind::Cluster, 0, y, kClusterLaneHeight});
  y += kClusterLaneHeight + 2;
  for (int n = 1; n <= tl_.run().nodes; ++n) {
    ls.push_back(Lane{Lane::Kind::Replica, static_cast<std::uint64_t>(n), y, kLaneHeight});
    y += kLaneHeight;
  }
  y += kGroupGap;
  for (std::uint64_t c : clients_) {
    ls.push_back(Lane{Lane::Kind::Client, c, y, kLaneHeight});
    y += kLaneHeight;
  }
  const double lanes_top = kPanelTitleHeight + kMarkerLabelHeight;
  const double lanes_bottom = y;
  const double height = y + kAxisHeight;
  fmt::format_to(std::back_inserter(out_),
                 "<svg class=\"panel {}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" "
                 "viewBox=\"0 0 {:.0f} {:.0f}\">\n",
                 css_class, kSvgWidth, height, kSvgWidth, height);
  fmt::format_to(std::back_inserter(out_), "<text x=\"0\" y=\"15\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
                 html_escape(title));
  axis(w, lanes_top, lanes_bottom);
  lanes(w, ls);
  markers(w, lanes_top, lanes_bottom);
  out_ += "</svg>\n";
}

void Page::lanes(const Window& w, const std::vector<Lane>& ls) {
  bool shade = false;
  for (const Lane& lane : ls) {
    std::string name;
    std::string css;
    switch (lane.kind) {
      case Lane::Kind::Cluster: name = "cluster"; css = "cluster"; break;
      case Lane::Kind::Replica: name = replica_name(lane.id); css = "replica"; break;
      case Lane::Kind::Client: name = fmt::format("client {}", lane.id); css = "client"; break;
    }
    fmt::format_to(std::back_inserter(out_), "<g class=\"lane {}\" data-lane=\"{}\">\n", css,
                   lane.kind == Lane::Kind::Client ? fmt::format("c{}", lane.id) : name);
    fmt::format_to(std::back_inserter(out_),
                   "<rect x=\"0\" y=\"{:.1f}\" width=\"{:.0f}\" height=\"{:.1f}\" fill=\"{}\"/>\n", lane.y,
                   kSvgWidth - kRightMargin + 4, lane.height, shade ? "#f5f5f5" : "#fcfcfc");
    shade = !shade;
    fmt::format_to(std::back_inserter(out_),
                   "<text x=\"4\" y=\"{:.1f}\" font-size=\"12\"{}>{}</text>\n", lane.y + lane.height / 2 + 4,
                   lane.kind == Lane::Kind::Cluster ? " fill=\"#616161\"" : " font-weight=\"bold\"", html_escape(name));
    switch (lane.kind) {
      case Lane::Kind::Cluster: cluster_lane(w, lane); break;
      case Lane::Kind::Replica: replica_lane(w, lane); break;
      case Lane::Kind::Client: client_lane(w, lane); break;
    }
    out_ += "</g>\n";
  }
}

void Page::replica_lane(const Window& w, const Lane& lane) {
  const std::string name = replica_name(lane.id);
  const double top = lane.y + 2;
  const double bar = lane.height - 4;
  for (const StateSpan& s : tl_.states()) {
    if (s.node != lane.id || s.to <= s.from || !w.visible(s.from, s.to)) continue;
    const double x = w.x(s.from);
    const double width = w.x(s.to) - x;
    if (width <= 0) continue;
    const std::string title = fmt::format("{} {} term {}, {}", name, to_string(s.state), s.term, span_text(s.from, s.to));
    rect(x, top, std::max(width, 0.5), bar, state_colour(s.state), title,
         fmt::format(" class=\"state {}\"", to_string(s.state)));
    if (width > 34 && s.state != LaneState::Down && s.state != LaneState::Paused) {
      fmt::format_to(std::back_inserter(out_),
                     "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"10\" fill=\"{}\" pointer-events=\"none\">t{}</text>\n",
                     x + 3, top + bar / 2 + 4, s.state == LaneState::Leader ? "#ffffff" : "#1b5e20", s.term);
    }
  }
  // Faults acting on this node: a band over the lower part of the lane (spans), a tick (instants).
  for (const FaultSpan& f : tl_.faults()) {
    if (f.kind == FaultKind::ClientPause || f.lane != lane.id || !w.visible(f.from, f.to)) continue;
    const std::string title = fmt::format("{} on {}: {}, {}", to_string(f.kind), name, f.label, span_text(f.from, f.to));
    const char* colour = fault_colour(f.kind);
    if (f.instant) {
      const double x = w.x(f.from);
      rect(x - 1.5, lane.y, 3, lane.height, colour, title, " class=\"fault instant\"");
      fmt::format_to(std::back_inserter(out_),
                     "<path d=\"M{:.1f} {:.1f} l5 -6 h-10 z\" fill=\"{}\" pointer-events=\"none\"/>\n", x,
                     lane.y + 6, colour);
      continue;
    }
    const double x = w.x(f.from);
    const double width = std::max(w.x(f.to) - x, kMinBarWidth);
    if (f.kind == FaultKind::Partition) {
      // Partitions cover the whole lane, translucent, over the role colours.
      rect(x, lane.y, width, lane.height, colour, title,
           fmt::format(" class=\"fault {}\" fill-opacity=\"0.35\" stroke=\"{}\" stroke-width=\"1\"", to_string(f.kind), colour));
    } else if (f.kind == FaultKind::Pause) {
      rect(x, lane.y + lane.height - 5, width, 5, colour, title, fmt::format(" class=\"fault {}\"", to_string(f.kind)));
    } else {
      rect(x, lane.y + lane.height - 7, width, 6, colour, title,
           fmt::format(" class=\"fault {}\" fill-opacity=\"0.9\"", to_string(f.kind)));
    }
  }
}

void Page::cluster_lane(const Window& w, const Lane& lane) {
  for (const FaultSpan& f : tl_.faults()) {
    if (f.kind == FaultKind::ClientPause || f.lane != 0 || !w.visible(f.from, f.to)) continue;
    const std::string title = fmt::format("{}: {}, {}", to_string(f.kind), f.label, span_text(f.from, f.to));
    const char* colour = fault_colour(f.kind);
    const double x = w.x(f.from);
    if (f.instant) {
      rect(x - 1.5, lane.y, 3, lane.height, colour, title, " class=\"fault instant\"");
      continue;
    }
    const double width = std::max(w.x(f.to) - x, kMinBarWidth);
    // Partitions in the upper half, link faults in the lower half: both can act at once.
    const bool upper = f.kind == FaultKind::Partition;
    rect(x, lane.y + (upper ? 1 : lane.height / 2), width, lane.height / 2 - 1, colour, title,
         fmt::format(" class=\"fault {}\" fill-opacity=\"0.8\"", to_string(f.kind)));
  }
}

void Page::client_lane(const Window& w, const Lane& lane) {
  const std::uint64_t id = lane.id;
  for (const LockHold& h : tl_.holds()) {
    if (h.client != id || !w.visible(h.from, h.to)) continue;
    const bool involved = highlights_.holders.count({h.client, h.resource, h.token}) > 0;
    const double x = w.x(h.from);
    const double width = std::max(w.x(h.to) - x, kMinBarWidth);
    const std::string title = fmt::format("client {} holds {} with token {}, {}; ended: {}", id, h.resource, h.token,
                                          span_text(h.from, h.to), h.end);
    rect(x, lane.y + 3, width, lane.height - 6, kHoldColour, title,
         involved ? fmt::format(" class=\"hold involved\" stroke=\"{}\" stroke-width=\"2\"", kOverlapColour)
                  : std::string(" class=\"hold\""));
    if (width > 56) {
      fmt::format_to(std::back_inserter(out_),
                     "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"10\" fill=\"#0d2b45\" pointer-events=\"none\">{} #{}</text>\n",
                     x + 3, lane.y + 12, html_escape(h.resource), h.token);
    }
  }
  // Over the holdings: a holder that pauses while it holds is the story of most failures.
  for (const FaultSpan& f : tl_.faults()) {
    if (f.kind != FaultKind::ClientPause || f.lane != id || !w.visible(f.from, f.to)) continue;
    const double x = w.x(f.from);
    rect(x, lane.y, std::max(w.x(f.to) - x, kMinBarWidth), lane.height, "url(#tl-hatch-client-pause)",
         fmt::format("{}, {}", f.label, span_text(f.from, f.to)), " class=\"fault client-pause\"");
  }
  const auto& ws = tl_.writes();
  for (std::size_t i = 0; i < ws.size(); ++i) {
    const GuardedWrite& wr = ws[i];
    if (wr.client != id || !w.visible(wr.sent, wr.landed)) continue;
    const bool overlap = highlights_.writes.count(i) > 0;
    const char* fate = wr.fate == GuardedWrite::Fate::Accepted  ? "accepted"
                       : wr.fate == GuardedWrite::Fate::Refused ? "refused (stale token)"
                                                                : "still in flight";
    const char* colour = overlap                                    ? kOverlapColour
                         : wr.fate == GuardedWrite::Fate::Accepted ? "#0d47a1"
                         : wr.fate == GuardedWrite::Fate::Refused  ? "#ef9a9a"
                                                                   : "#bdbdbd";
    const std::string title =
        fmt::format("write {} to {} with token {}: sent at {}, {} at {}{}{}", wr.value, wr.resource, wr.token,
                    seconds(wr.sent, 6), fate, seconds(wr.landed, 6),
                    overlap ? "; one of the two holders' overlapping writes" : "",
                    wr.violating ? " (accepting it broke mutual exclusion)" : "");
    const double x = w.x(wr.sent);
    const double width = std::max(w.x(wr.landed) - x, kMinWriteWidth);
    // Under the holding's label; the overlapping writes taller, to stand out.
    const double height = overlap ? 12 : 8;
    const double y = lane.y + lane.height - 3 - height;
    rect(x, y, width, height, colour, title,
         fmt::format(" class=\"write {}{}\"{}", overlap ? "overlap" : "", wr.violating ? " violating" : "",
                     wr.violating ? " stroke=\"#000000\" stroke-width=\"1\"" : ""));
    if (wr.violating) {
      // Said in words next to it: at the scale of a run this write is a few pixels wide.
      fmt::format_to(std::back_inserter(out_),
                     "<text class=\"callout\" x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"11\" font-weight=\"bold\" "
                     "fill=\"#000000\" stroke=\"#ffffff\" stroke-width=\"3\" paint-order=\"stroke\" "
                     "text-anchor=\"end\" pointer-events=\"none\">{}</text>\n",
                     x - 3, lane.y + 12, html_escape(highlights_.callout));
    }
  }
  if (locks_) return;
  for (const ClientOp& o : tl_.ops()) {
    if (o.client != id || !w.visible(o.from, o.to)) continue;
    const bool answered = !o.outcome.empty();
    const double x = w.x(o.from);
    const std::string title = fmt::format("client {} op {}: {} to n{}, {}; {}", id, o.op, o.what, o.node,
                                          span_text(o.from, o.to), answered ? o.outcome : "never answered");
    if (!answered) {
      rect(x, lane.y + 6, 4, lane.height - 12, "#ffffff", title, " class=\"op unanswered\" stroke=\"#757575\"");
      continue;
    }
    const bool failed = o.outcome.rfind("failed", 0) == 0;
    rect(x, lane.y + 6, std::max(w.x(o.to) - x, kMinBarWidth), lane.height - 12, failed ? "#e57373" : "#5c6bc0", title,
         " class=\"op\"");
  }
}

// Ticks at 1, 2 or 5 times a power of ten, about a dozen over the plot, with light grid lines.
void Page::axis(const Window& w, double top, double bottom) {
  const double range_s = static_cast<double>(w.t1 - w.t0) / 1e6;
  double step = std::pow(10.0, std::floor(std::log10(range_s / 12)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (range_s / (step * m) <= 14) {
      step *= m;
      break;
    }
  }
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  const double first = std::ceil(static_cast<double>(w.t0) / 1e6 / step) * step;
  out_ += "<g class=\"axis\">\n";
  for (double t = first; t <= static_cast<double>(w.t1) / 1e6 + 1e-9; t += step) {
    const double x = w.x(static_cast<Micros>(std::llround(t * 1e6)));
    fmt::format_to(std::back_inserter(out_),
                   "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#e0e0e0\"/>\n"
                   "<line x1=\"{0:.1f}\" y1=\"{2:.1f}\" x2=\"{0:.1f}\" y2=\"{3:.1f}\" stroke=\"#616161\"/>\n"
                   "<text x=\"{0:.1f}\" y=\"{4:.1f}\" font-size=\"11\" text-anchor=\"middle\">{5:.{6}f} s</text>\n",
                   x, top, bottom, bottom + 4, bottom + 16, t, decimals);
  }
  fmt::format_to(std::back_inserter(out_),
                 "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#616161\"/>\n</g>\n", w.x0,
                 bottom, w.x1, bottom);
}

// The heal and the violation, as vertical lines over every lane.
void Page::markers(const Window& w, double top, double bottom) {
  const TimelineRun& run = tl_.run();
  if (run.heal_at >= w.t0 && run.heal_at <= w.t1) {
    const double x = w.x(run.heal_at);
    fmt::format_to(std::back_inserter(out_),
                   "<g class=\"heal\"><line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#1565c0\" "
                   "stroke-dasharray=\"5 3\"/><text x=\"{0:.1f}\" y=\"{3:.1f}\" font-size=\"11\" fill=\"#1565c0\" "
                   "text-anchor=\"middle\">heal</text><title>faults stop at {4}; the quiet period follows</title></g>\n",
                   x, top - 2, bottom, top - 4, seconds(run.heal_at, 6));
  }
  for (const ViolationMark& v : tl_.violations()) {
    if (v.at < w.t0 || v.at > w.t1) continue;
    const double x = w.x(v.at);
    const bool right_half = x > (w.x0 + w.x1) / 2;
    fmt::format_to(std::back_inserter(out_),
                   "<g class=\"violation-marker\" data-invariant=\"{5}\"><line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" "
                   "y2=\"{2:.1f}\" stroke=\"{3}\" stroke-width=\"2\"/><text x=\"{4:.1f}\" y=\"{6:.1f}\" font-size=\"12\" "
                   "font-weight=\"bold\" fill=\"{3}\" text-anchor=\"{7}\">\u2716 {5} at {8}</text><title>VIOLATION "
                   "{5} at {8}: {9}</title></g>\n",
                   x, top - 14, bottom, kViolationColour, right_half ? x - 4 : x + 4, html_escape(v.invariant),
                   top - 4, right_half ? "end" : "start", seconds(v.at, 6), html_escape(v.message));
  }
}

}  // namespace

std::string timeline_html(const Timeline& timeline) { return Page(timeline).render(); }

}  // namespace coord::sim
