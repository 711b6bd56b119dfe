// coord-sim --timeline: what the recorder keeps of a run (sim/timeline.h) and the structure of the
// page drawn from it (sim/timeline_html.h), read back from the HTML text: lanes, fault shading,
// the violation marker, escaping. The screenshot is checked by sim_timeline_chromium_test.sh.
#include <doctest/doctest.h>

#include <cstddef>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "sim/simulation.h"
#include "sim/timeline.h"
#include "sim/timeline_html.h"

namespace {

using coord::sim::Timeline;

std::size_t count(std::string_view text, std::string_view needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string_view::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// The <g class="lane ..." data-lane="NAME"> ... </g> elements of the page, in order: lanes hold
// no nested <g>, so each ends at the next </g>.
struct LaneElement {
  std::string kind;  // replica, client, cluster
  std::string name;
  std::string body;
};

std::vector<LaneElement> lanes_of(std::string_view html) {
  std::vector<LaneElement> out;
  const std::string_view open = "<g class=\"lane ";
  for (std::size_t at = html.find(open); at != std::string_view::npos; at = html.find(open, at + 1)) {
    const std::size_t kind_end = html.find('"', at + open.size());
    const std::size_t name_at = html.find("data-lane=\"", kind_end) + 11;
    const std::size_t name_end = html.find('"', name_at);
    const std::size_t end = html.find("</g>", name_end);
    REQUIRE(end != std::string_view::npos);
    out.push_back(LaneElement{std::string(html.substr(at + open.size(), kind_end - at - open.size())),
                              std::string(html.substr(name_at, name_end - name_at)),
                              std::string(html.substr(name_end, end - name_end))});
  }
  return out;
}

struct Drawn {
  coord::sim::Result result;
  Timeline timeline;
  std::string html;
};

Drawn draw(coord::sim::Options options) {
  Drawn d;
  options.timeline = &d.timeline;
  d.result = coord::sim::run(options);
  d.html = coord::sim::timeline_html(d.timeline);
  return d;
}

void check_self_contained(const std::string& html) {
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(html.find("</html>") != std::string::npos);
  // Nothing fetched: no script, no external resource, no link.
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find(" src=") == std::string::npos);
  CHECK(html.find(" href=") == std::string::npos);
  CHECK(html.find("@import") == std::string::npos);
  CHECK(html.find("url(http") == std::string::npos);
  CHECK(count(html, "<svg") == count(html, "</svg>"));
  CHECK(count(html, "<g ") + count(html, "<g>") == count(html, "</g>"));
}

}  // namespace

TEST_CASE("a passing run's page: a lane per replica with its roles, faults shaded, no violation") {
  coord::sim::Options options;
  options.seed = 1;
  options.nodes = 5;
  options.time_s = 10;
  const Drawn d = draw(options);
  REQUIRE(d.result.passed);
  check_self_contained(d.html);

  // The recorder: every replica's lane covers the whole run without gaps or overlaps.
  for (coord::raft::NodeId n = 1; n <= 5; ++n) {
    INFO("n" << n);
    coord::sim::Micros next = 0;
    std::size_t spans = 0;
    for (const coord::sim::StateSpan& s : d.timeline.states()) {
      if (s.node != n) continue;
      CHECK(s.from == next);
      CHECK(s.to >= s.from);
      next = s.to;
      ++spans;
    }
    CHECK(spans >= 1);
    CHECK(next == d.timeline.end());
  }
  CHECK(d.timeline.end() == d.result.stats.virtual_us);

  // The page: one panel (no violation, no zoom), the cluster lane, five replica lanes, clients.
  CHECK(count(d.html, "<svg class=\"panel") == 1);
  const std::vector<LaneElement> lanes = lanes_of(d.html);
  std::vector<std::string> replicas;
  std::size_t clients = 0;
  for (const LaneElement& l : lanes) {
    if (l.kind == "replica") replicas.push_back(l.name);
    if (l.kind == "client") ++clients;
  }
  CHECK(replicas == std::vector<std::string>{"n1", "n2", "n3", "n4", "n5"});
  CHECK(clients >= 1);
  // Someone led, and the label says for which term.
  std::size_t leader_spans = 0;
  for (const LaneElement& l : lanes) {
    if (l.kind == "replica") leader_spans += count(l.body, "class=\"state leader\"");
  }
  CHECK(leader_spans >= 1);
  CHECK(d.html.find(" leader term ") != std::string::npos);
  // Faults were injected, so some are shaded: in a replica's lane or the cluster's.
  REQUIRE(d.result.stats.faults_injected > 0);
  CHECK(count(d.html, "class=\"fault ") >= 1);
  // Client operations as bars, with hover titles.
  CHECK(count(d.html, "class=\"op") >= 10);
  CHECK(d.html.find("<title>client ") != std::string::npos);
  CHECK(d.html.find("violation-marker") == std::string::npos);
  CHECK(d.html.find("id=\"verdict\">passed") != std::string::npos);
  // The axis is labelled, the legend is there.
  CHECK(count(d.html, " s</text>") >= 5);
  CHECK(d.html.find("id=\"legend\"") != std::string::npos);
}

TEST_CASE("a failing locks run without fencing: the violation marked, the two holders' writes overlap") {
  coord::sim::Options options;
  options.seed = 18;
  options.workload = coord::sim::Workload::Locks;
  options.fencing = false;
  const Drawn d = draw(options);
  REQUIRE_FALSE(d.result.passed);
  REQUIRE(d.result.invariant == "mutual-exclusion");
  check_self_contained(d.html);

  REQUIRE(d.timeline.violations().size() == 1);
  CHECK(d.timeline.violations()[0].at == d.result.stats.virtual_us);
  std::size_t violating = 0;
  for (const auto& w : d.timeline.writes()) violating += w.violating ? 1 : 0;
  CHECK(violating == 1);

  // Two panels: the whole run and the zoom before the violation; the marker in each.
  CHECK(count(d.html, "<svg class=\"panel") == 2);
  CHECK(count(d.html, "class=\"violation-marker\" data-invariant=\"mutual-exclusion\"") == 2);
  CHECK(d.html.find("invariant <span class=\"invariant\">mutual-exclusion</span>") != std::string::npos);

  // In each panel, overlapping writes in exactly two client lanes (the two holders), one of
  // them with the write that broke mutual exclusion; the lock holdings carry their tokens.
  const std::vector<LaneElement> lanes = lanes_of(d.html);
  std::size_t replica_lanes = 0;
  std::vector<std::set<std::string>> overlap_lanes_per_panel;
  for (const LaneElement& l : lanes) {
    if (l.kind == "cluster") overlap_lanes_per_panel.emplace_back();
    if (l.kind == "replica") ++replica_lanes;
    if (l.kind == "client" && l.body.find("class=\"write overlap") != std::string::npos) {
      overlap_lanes_per_panel.back().insert(l.name);
    }
  }
  CHECK(replica_lanes == 2 * 3);
  REQUIRE(overlap_lanes_per_panel.size() == 2);
  CHECK(overlap_lanes_per_panel[0].size() == 2);
  CHECK(overlap_lanes_per_panel[0] == overlap_lanes_per_panel[1]);
  CHECK(count(d.html, "class=\"write overlap violating\"") == 2);
  CHECK(count(d.html, "class=\"hold involved\"") >= 4);
  CHECK(d.html.find("with token ") != std::string::npos);
  CHECK(d.html.find(coord::sim::kOverlapColour) != std::string::npos);
  // The holder's pause that led to it is drawn on its lane.
  CHECK(count(d.html, "class=\"fault client-pause\"") >= 1);
}

TEST_CASE("every text from the run is escaped") {
  CHECK(coord::sim::html_escape("<a href='x'>&\"</a>") == "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
  CHECK(coord::sim::html_escape(std::string("a\x01z", 3)) == "a&#xFFFD;z");

  Timeline t;
  t.start(coord::sim::TimelineRun{7, 3, "locks<b>", "all", false, 1'000'000, 2'000'000});
  t.replica(0, 1, coord::sim::LaneState::Leader, 1);
  t.fault_begin(100, coord::sim::FaultKind::Partition, 0, "partition <isolate> & co");
  t.lock_acquired(200, 1, "/locks/<l0>", 5);
  t.write_sent(300, 1, "/locks/<l0>", 5, "c1.1\"><script>alert(1)</script>");
  t.write_landed(400, "c1.1\"><script>alert(1)</script>", true, true);
  t.violation(400, "mutual-exclusion", "client <1> & \"2\" wrote </title><script>");
  t.finish(500);
  const std::string html = coord::sim::timeline_html(t);
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("<isolate>") == std::string::npos);
  CHECK(html.find("<l0>") == std::string::npos);
  CHECK(html.find("locks<b>") == std::string::npos);
  CHECK(html.find("partition &lt;isolate&gt; &amp; co") != std::string::npos);
  CHECK(html.find("client &lt;1&gt; &amp; &quot;2&quot; wrote &lt;/title&gt;&lt;script&gt;") != std::string::npos);
  CHECK(html.find("/locks/&lt;l0&gt;") != std::string::npos);
  // Fabricated, but still drawn: the lone violating write, the marker.
  CHECK(count(html, "class=\"write overlap violating\"") >= 1);
  CHECK(count(html, "class=\"violation-marker\"") >= 1);
}

TEST_CASE("the recorder coalesces unchanged states and closes what is open at the end") {
  Timeline t;
  t.start(coord::sim::TimelineRun{1, 2, "raft", "all", true, 10, 20});
  t.replica(0, 1, coord::sim::LaneState::Follower, 1);
  t.replica(5, 1, coord::sim::LaneState::Follower, 1);  // same: nothing new
  t.replica(7, 1, coord::sim::LaneState::Leader, 2);
  t.replica(0, 2, coord::sim::LaneState::Down, 0);
  t.fault_begin(2, coord::sim::FaultKind::DiskSlow, 2, "slow");
  t.fault_begin(4, coord::sim::FaultKind::DiskSlow, 2, "slower");  // replaces the first
  t.client_sent(3, 9, 1, 1, "propose x");
  t.client_sent(4, 9, 1, 2, "propose x");  // the same op, retried elsewhere
  t.client_answered(6, 9, 1, "Acked by n2");
  t.client_sent(8, 9, 2, 2, "propose y");  // never answered
  t.finish(12);
  REQUIRE(t.states().size() == 3);
  CHECK(t.states()[0].from == 0);
  CHECK(t.states()[0].to == 7);
  CHECK(t.states()[1].state == coord::sim::LaneState::Leader);
  CHECK(t.states()[1].to == 12);
  CHECK(t.states()[2].to == 12);
  REQUIRE(t.faults().size() == 2);
  CHECK(t.faults()[0].to == 4);
  CHECK(t.faults()[1].from == 4);
  CHECK(t.faults()[1].to == 12);
  REQUIRE(t.ops().size() == 2);
  CHECK(t.ops()[0].node == 2);
  CHECK(t.ops()[0].to == 6);
  CHECK(t.ops()[0].outcome == "Acked by n2");
  CHECK(t.ops()[1].outcome.empty());
  CHECK(t.ops()[1].to == t.ops()[1].from);
  CHECK(t.end() == 12);
}
