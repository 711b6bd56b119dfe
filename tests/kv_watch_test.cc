// Acceptance 5: key, subtree and children watchers; replay from history, then live events;
// exactly once and in order; compacted starts; progress notifications; slow watchers cancelled
// without holding anyone up; previous values on request.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "kv_test_util.h"

using namespace kvtest;

namespace {

const Backend backends[] = {Backend::Memory, Backend::Lmdb};

WatchRequest request(WatchKind kind, std::string path, Revision start = 0, bool prev = false) {
  WatchRequest r;
  r.filter.kind = kind;
  r.filter.path = std::move(path);
  r.start_revision = start;
  r.prev_value = prev;
  return r;
}

WatchId must_watch(Replica& r, const WatchRequest& req) {
  const WatchCreated created = r->watch(req);
  REQUIRE(created.status.ok());
  return created.id;
}

// Polls until the watcher has everything up to the current revision.
std::vector<Event> drain(Replica& r, WatchId id, std::size_t events_max = 1000) {
  std::vector<Event> out;
  for (int i = 0; i < 10000; ++i) {
    WatchResponse resp = r->poll_watch(id, events_max);
    REQUIRE_FALSE(resp.canceled);
    out.insert(out.end(), resp.events.begin(), resp.events.end());
    if (resp.progress_revision == r->revision()) return out;
  }
  FAIL("watcher never caught up");
  return out;
}

std::vector<std::string> paths(const std::vector<Event>& events) {
  std::vector<std::string> out;
  for (const Event& e : events)
    out.push_back(std::string(to_string(e.type)) + " " + e.path + "@" + std::to_string(e.revision));
  return out;
}

void put(Replica& r, const std::string& path, const std::string& value) {
  Op op = Op::put(path, value);
  op.parents = true;
  REQUIRE(r.op(op).ok());
}

}  // namespace

TEST_CASE("kv watch: key, subtree and children filters are path-aware") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Replica r(backend);
    const WatchId key = must_watch(r, request(WatchKind::Key, "/a"));
    const WatchId subtree = must_watch(r, request(WatchKind::Subtree, "/a"));
    const WatchId children = must_watch(r, request(WatchKind::Children, "/a"));
    const WatchId root = must_watch(r, request(WatchKind::Subtree, "/"));
    put(r, "/a", "1");        // 1
    put(r, "/ab", "x");       // 2
    put(r, "/a/x", "2");      // 3
    put(r, "/a/x/y", "3");    // 4
    put(r, "/ab/c", "4");     // 5
    put(r, "/a", "5");        // 6
    REQUIRE(r.op(Op::remove("/a", true)).ok());  // 7

    CHECK(paths(drain(r, key)) ==
          std::vector<std::string>{"created /a@1", "updated /a@6", "deleted /a@7"});
    CHECK(paths(drain(r, subtree)) ==
          std::vector<std::string>{"created /a@1", "created /a/x@3", "created /a/x/y@4",
                                   "updated /a@6", "deleted /a@7", "deleted /a/x@7",
                                   "deleted /a/x/y@7"});
    CHECK(paths(drain(r, children)) ==
          std::vector<std::string>{"created /a/x@3", "deleted /a/x@7"});
    CHECK(drain(r, root).size() == 9);
  }
}

TEST_CASE("kv watch: replay from history, then live, exactly once and in order") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Limits limits;
    limits.watch_replay_rows_max = 3;  // catch up in small steps
    Replica r(backend, limits);
    const WatchId live = must_watch(r, request(WatchKind::Subtree, "/", 0, true));
    for (int i = 0; i < 20; ++i) {
      // (Appending, not "v" + to_string(i): GCC 12's -Wrestrict misfires on that at -O3.)
      std::string key = "/k", value = "v";
      key += std::to_string(i % 4);
      value += std::to_string(i);
      put(r, key, value);
    }
    Txn three;
    three.success = {Op::create("/t/1", ""), Op::create("/t/2", ""), Op::create("/t/3", "")};
    three.success[0].parents = true;
    REQUIRE(r.txn(three).ok());  // revision 21: four events at one revision

    // A watcher from revision 5 replays history in small polls...
    const WatchId late = must_watch(r, request(WatchKind::Subtree, "/", 5, true));
    std::vector<Event> got;
    WatchResponse first = r->poll_watch(late, 2);
    CHECK(first.events.size() == 2);
    CHECK(first.progress_revision == 6);
    got = first.events;
    // ... then follows live writes made meanwhile.
    put(r, "/k9", "live");
    for (int i = 0; i < 100; ++i) {
      WatchResponse resp = r->poll_watch(late, 1);
      REQUIRE_FALSE(resp.canceled);
      if (!resp.events.empty()) {
        // A revision is never split, even with events_max = 1.
        CHECK(resp.progress_revision == resp.events.back().revision);
        for (const Event& e : resp.events) CHECK(e.revision == resp.events.front().revision);
      }
      got.insert(got.end(), resp.events.begin(), resp.events.end());
      if (resp.progress_revision == r->revision()) break;
    }
    const std::vector<Event> all = drain(r, live);
    REQUIRE(all.size() == 25);
    // The replayed events equal the live ones, previous values included.
    const std::vector<Event> expected(all.begin() + 4, all.end());
    CHECK(got == expected);
    for (std::size_t i = 1; i < got.size(); ++i) {
      CHECK((got[i - 1].revision < got[i].revision ||
             (got[i - 1].revision == got[i].revision && got[i - 1].path < got[i].path)));
    }
    // Nothing more arrives once drained.
    CHECK(r->poll_watch(late, 100).events.empty());
  }
}

TEST_CASE("kv watch: compacted starts and compaction under a catching-up watcher") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Limits limits;
    limits.watch_replay_rows_max = 2;
    Replica r(backend, limits);
    for (int i = 0; i < 10; ++i) put(r, "/k", std::to_string(i));
    REQUIRE(r.compact(4).ok());
    const WatchCreated refused = r->watch(request(WatchKind::Key, "/k", 3));
    CHECK(refused.status.error == Error::Compacted);
    CHECK(refused.status.compact_revision == 4);
    // At the compaction point itself the history is complete.
    const WatchId at = must_watch(r, request(WatchKind::Key, "/k", 4, true));
    const std::vector<Event> events = drain(r, at);
    REQUIRE(events.size() == 7);
    CHECK(events.front().revision == 4);
    REQUIRE(events.front().prev.has_value());
    CHECK(events.front().prev->value == "2");

    // A watcher still replaying when its history is compacted away is cancelled.
    const WatchId slow = must_watch(r, request(WatchKind::Subtree, "/", 5));
    CHECK(r->poll_watch(slow, 1).events.size() == 1);
    REQUIRE(r.compact(9).ok());
    const WatchResponse resp = r->poll_watch(slow, 1);
    CHECK(resp.canceled);
    CHECK(resp.cancel_status.error == Error::Compacted);
    CHECK(resp.cancel_status.compact_revision == 9);
    CHECK(resp.progress_revision == 5);
    // Once reported, the watcher is gone.
    CHECK(r->poll_watch(slow, 1).cancel_status.error == Error::UnknownWatch);
  }
}

TEST_CASE("kv watch: progress notifications for idle watchers") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Replica r(backend);
    const WatchId idle = must_watch(r, request(WatchKind::Key, "/quiet"));
    put(r, "/busy", "1");
    put(r, "/busy", "2");
    WatchResponse resp = r->poll_watch(idle, 10);
    CHECK(resp.events.empty());
    CHECK(resp.progress_revision == 2);
    CHECK(r->pending_watches().empty());
    put(r, "/busy", "3");
    resp = r->poll_watch(idle, 0);  // progress only
    CHECK(resp.progress_revision == 3);
    // With events pending, progress stops below them until they are handed out.
    put(r, "/quiet", "now");
    CHECK(r->pending_watches() == std::vector<WatchId>{idle});
    resp = r->poll_watch(idle, 0);
    CHECK(resp.events.empty());
    CHECK(resp.progress_revision == 3);
    resp = r->poll_watch(idle, 10);
    CHECK(resp.events.size() == 1);
    CHECK(resp.progress_revision == 4);
  }
}

TEST_CASE("kv watch: a slow watcher is cancelled on overflow, the others carry on") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Limits limits;
    limits.watch_buffer_events_max = 5;
    Replica r(backend, limits);
    const WatchId slow = must_watch(r, request(WatchKind::Subtree, "/"));
    const WatchId fast = must_watch(r, request(WatchKind::Subtree, "/"));
    const WatchId unrelated = must_watch(r, request(WatchKind::Key, "/other"));
    std::vector<Event> fast_events;
    for (int i = 0; i < 12; ++i) {
      put(r, "/k" + std::to_string(i), "v");
      const WatchResponse resp = r->poll_watch(fast, 100);
      REQUIRE_FALSE(resp.canceled);
      fast_events.insert(fast_events.end(), resp.events.begin(), resp.events.end());
    }
    CHECK(fast_events.size() == 12);
    const WatchResponse resp = r->poll_watch(slow, 100);
    CHECK(resp.canceled);
    CHECK(resp.cancel_status.error == Error::WatchOverflow);
    CHECK(resp.events.empty());
    CHECK(resp.progress_revision == 0);
    CHECK(resp.cancel_status.message.find("resume from revision 1") != std::string::npos);
    CHECK_FALSE(r->poll_watch(unrelated, 100).canceled);
    // The client resumes where it stopped, from history.
    const WatchId resumed = must_watch(r, request(WatchKind::Subtree, "/", 1));
    CHECK(drain(r, resumed, 3) == fast_events);
  }
}

TEST_CASE("kv watch: previous values on request") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Replica r(backend);
    const WatchId with = must_watch(r, request(WatchKind::Key, "/p", 0, true));
    const WatchId without = must_watch(r, request(WatchKind::Key, "/p", 0, false));
    put(r, "/p", "one");
    REQUIRE(r.op(Op::create("/p/child", "")).ok());  // not an event for /p
    put(r, "/p", "two");
    REQUIRE(r.op(Op::remove("/p", true)).ok());
    const std::vector<Event> a = drain(r, with), b = drain(r, without);
    REQUIRE(a.size() == 3);
    REQUIRE(b.size() == 3);
    CHECK_FALSE(a[0].prev.has_value());
    REQUIRE(a[1].prev.has_value());
    CHECK(a[1].prev->value == "one");
    CHECK(a[1].prev->num_children == 1);
    REQUIRE(a[1].node.has_value());
    CHECK(a[1].node->value == "two");
    REQUIRE(a[2].prev.has_value());
    CHECK(a[2].prev->value == "two");
    CHECK_FALSE(a[2].node.has_value());
    for (const Event& e : b) CHECK_FALSE(e.prev.has_value());
  }
}

TEST_CASE("kv watch: requests, limits, cancel and future starts") {
  Limits limits;
  limits.watchers_max = 2;
  Replica r(Backend::Memory, limits);
  CHECK(r->watch(request(WatchKind::Key, "bad")).status.error == Error::InvalidPath);
  const WatchId a = must_watch(r, request(WatchKind::Key, "/x", 3));  // a future start
  must_watch(r, request(WatchKind::Key, "/y"));
  CHECK(r->watch(request(WatchKind::Key, "/z")).status.error == Error::TooManyWatchers);
  put(r, "/x", "1");
  put(r, "/x", "2");
  CHECK(r->poll_watch(a, 10).events.empty());
  put(r, "/x", "3");
  const WatchResponse resp = r->poll_watch(a, 10);
  REQUIRE(resp.events.size() == 1);
  CHECK(resp.events[0].revision == 3);
  CHECK(r->cancel_watch(a).ok());
  CHECK(r->cancel_watch(a).error == Error::UnknownWatch);
  must_watch(r, request(WatchKind::Key, "/z"));
}

TEST_CASE("kv watch: watchers follow a snapshot restore") {
  Replica source(Backend::Memory), r(Backend::Lmdb);
  const WatchId w = must_watch(r, request(WatchKind::Subtree, "/"));
  put(r, "/a", "1");  // also applied on the source below
  put(source, "/a", "1");
  put(source, "/b", "2");
  put(source, "/c", "3");
  REQUIRE(r->restore(source->snapshot()).ok());
  CHECK(paths(drain(r, w)) ==
        std::vector<std::string>{"created /a@1", "created /b@2", "created /c@3"});
  // Restoring an older state under a watcher that saw more cancels it.
  Replica old(Backend::Memory);
  REQUIRE(r->restore(old->snapshot()).ok());
  const WatchResponse resp = r->poll_watch(w, 10);
  CHECK(resp.canceled);
  CHECK(resp.cancel_status.error == Error::StaleState);
}
