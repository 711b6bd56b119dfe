// coord-faults' watch judgement (harness/watch_judge.h) on made-up records: a correct one passes,
// and each kind of broken delivery is caught.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "harness/watch_judge.h"

namespace {

using coord::harness::judge_watches;
using coord::harness::WatchRecord;

// Marker at 10; acknowledged puts at 11, 12 and 14, a delete at 15; an unknown put ("u") that
// applied at 13. Two watchers that both delivered 11..15.
WatchRecord correct() {
  WatchRecord r;
  r.marker_revision = 10;
  r.acknowledged[11] = {"/w/k1", false, "w1"};
  r.acknowledged[12] = {"/w/k2", false, "w2"};
  r.acknowledged[14] = {"/w/k1", false, "w4"};
  r.acknowledged[15] = {"/w/k2", true, ""};
  r.unknown.push_back({"/w/k3", false, "u"});
  const std::vector<WatchRecord::Seen> all{{11, "/w/k1", false, "w1"}, {12, "/w/k2", false, "w2"},
                                           {13, "/w/k3", false, "u"},  {14, "/w/k1", false, "w4"},
                                           {15, "/w/k2", true, ""}};
  r.watchers = {{WatchRecord::Segment{11, all, false, {}}}, {WatchRecord::Segment{11, all, false, {}}}};
  return r;
}

bool reports(const WatchRecord& r, const std::string& fragment) {
  for (const std::string& v : judge_watches(r)) {
    if (v.find(fragment) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("watch judge: a correct record passes") {
  CHECK(judge_watches(correct()).empty());
}

TEST_CASE("watch judge: a lost acknowledged event is a gap") {
  WatchRecord r = correct();
  auto& events = r.watchers[1][0].events;
  events.erase(events.begin() + 1);  // revision 12
  CHECK(reports(r, "watcher 2 missed the acknowledged write at revision 12"));
}

TEST_CASE("watch judge: a lost event of an unknown write is caught through the other watcher") {
  WatchRecord r = correct();
  auto& events = r.watchers[0][0].events;
  events.erase(events.begin() + 2);  // revision 13, the unknown write
  CHECK(reports(r, "watcher 1 missed revision 13"));
}

TEST_CASE("watch judge: a repeated event is caught") {
  WatchRecord r = correct();
  auto& events = r.watchers[0][0].events;
  events.insert(events.begin() + 2, events[1]);  // 12 twice
  CHECK(reports(r, "watcher 1 delivered revision 12 after revision 12"));
}

TEST_CASE("watch judge: a phantom event and a wrong value are caught") {
  WatchRecord phantom = correct();
  phantom.watchers[0][0].events[2].value = "nobody wrote this";
  CHECK(reports(phantom, "which no write explains"));
  WatchRecord wrong = correct();
  wrong.watchers[1][0].events[0].value = "w2";
  CHECK(reports(wrong, "where the acknowledged write was put /w/k1 \"w1\""));
  CHECK(reports(wrong, "saw different events at revision 11"));
}

TEST_CASE("watch judge: a stream that never caught up is caught") {
  WatchRecord r = correct();
  r.watchers[0][0].events.pop_back();  // stops at 14; 15 was acknowledged
  CHECK(reports(r, "watcher 1 never caught up"));
}

TEST_CASE("watch judge: a stream ended as compacted is legitimate only when its next revision is gone") {
  WatchRecord r = correct();
  // Watcher 1's first stream delivered 11 and was ended as compacted at 13 (the first revision
  // kept): 12 is gone, so its next stream starts at 13.
  auto all = r.watchers[0][0].events;
  WatchRecord::Segment first{11, {all[0]}, true, coord::kv::compacted_status(12, 13)};
  WatchRecord::Segment second{13, {all[2], all[3], all[4]}, false, {}};
  r.watchers[0] = {first, second};
  CHECK(judge_watches(r).empty());
  // Compacted at 12: revision 12 was still kept, so ending the stream there lost it.
  r.watchers[0][0].end = coord::kv::compacted_status(12, 12);
  CHECK(reports(r, "ended as compacted at 12 while its next revision 12 was still kept"));
  // The next stream must deliver the first revision kept.
  WatchRecord skipped = correct();
  skipped.watchers[0] = {first, WatchRecord::Segment{13, {all[3], all[4]}, false, {}}};
  CHECK(reports(skipped, "watcher 1 missed revision 13"));
}
