// The pieces both clients share (net/client_retry.h): which member a call tries next, and how a
// resumed watch stream drops what it already delivered.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "net/client_retry.h"

namespace {

using namespace coord;
using namespace std::chrono_literals;

net::ClientResponse not_leader(std::string address) {
  net::ClientResponse r = net::error_response(1, net::ErrorCode::NotLeader, "not the leader");
  if (!address.empty()) r.leader = net::LeaderHint{2, "n2", std::move(address)};
  return r;
}

kv::Event event(kv::Revision revision, std::string path) {
  kv::Event e;
  e.type = kv::EventType::Created;
  e.revision = revision;
  e.path = std::move(path);
  return e;
}

std::vector<std::string> paths(const std::vector<kv::Event>& events) {
  std::vector<std::string> out;
  for (const kv::Event& e : events) out.push_back(e.path + "@" + std::to_string(e.revision));
  return out;
}

}  // namespace

TEST_CASE("a route starts at the preferred member, follows leader hints, then rotates") {
  const std::vector<std::string> endpoints{"a:1", "b:1", "c:1"};
  net::MemberRoute fresh(endpoints, "");
  CHECK(fresh.target() == "a:1");
  net::MemberRoute route(endpoints, "b:1");
  CHECK(route.target() == "b:1");
  route.next();
  CHECK(route.target() == "c:1");
  route.next();
  CHECK(route.target() == "a:1");

  // Hints are followed at once, at most leader_hops_max times; a hint naming the current
  // target, or none, moves round the list instead.
  CHECK(route.follow(not_leader("x:1")));
  CHECK(route.target() == "x:1");
  CHECK_FALSE(route.follow(not_leader("x:1")));
  CHECK(route.target() == "b:1");
  CHECK_FALSE(route.follow(not_leader("")));
  CHECK(route.target() == "c:1");
  CHECK(route.follow(not_leader("y:1")));
  CHECK(route.follow(not_leader("z:1")));
  CHECK(route.target() == "z:1");
  CHECK_FALSE(route.follow(not_leader("w:1")));  // hops used up
  CHECK(route.target() == "a:1");

  // A leader outside the list (reached through a hint earlier) is still tried first.
  net::MemberRoute outside(endpoints, "leader:9");
  CHECK(outside.target() == "leader:9");
  outside.next();
  CHECK(outside.target() == "b:1");

  std::vector<long> pauses;
  for (int i = 0; i < 6; ++i) pauses.push_back(static_cast<long>(route.take_pause().count()));
  CHECK(pauses == std::vector<long>{50, 100, 200, 400, 500, 500});
}

TEST_CASE("answers are final, redirects or retries") {
  CHECK(net::classify(net::error_response(1, net::ErrorCode::Ok, "")) == net::Answer::Final);
  CHECK(net::classify(net::error_response(1, net::ErrorCode::NotFound, "")) == net::Answer::Final);
  CHECK(net::classify(net::error_response(1, net::ErrorCode::CompareFailed, "")) == net::Answer::Final);
  CHECK(net::classify(not_leader("")) == net::Answer::Redirect);
  CHECK(net::classify(net::error_response(1, net::ErrorCode::Unavailable, "")) == net::Answer::Retry);
  CHECK(net::classify(net::error_response(1, net::ErrorCode::Timeout, "")) == net::Answer::Retry);
}

TEST_CASE("a watch cursor resumes at the first revision not wholly delivered and drops repeats") {
  net::WatchCursor cursor(0);
  CHECK(cursor.resume_revision() == 0);  // "from now", not resolved yet
  cursor.opened(10);
  CHECK(cursor.resume_revision() == 10);
  cursor.opened(20);  // a later member's "now" changes nothing
  CHECK(cursor.resume_revision() == 10);

  std::vector<kv::Event> fresh;
  std::vector<kv::Event> frame{event(10, "/a"), event(11, "/a"), event(11, "/b")};
  CHECK(cursor.take(frame, 0, fresh));
  CHECK(paths(fresh) == std::vector<std::string>{"/a@10", "/a@11", "/b@11"});
  // Revision 11 may have more events still: a resume starts there.
  CHECK(cursor.resume_revision() == 11);
  CHECK(cursor.progress() == 10);

  // The next member repeats revision 11 from its start, and goes on.
  fresh.clear();
  frame = {event(11, "/a"), event(11, "/b"), event(11, "/c"), event(12, "/a")};
  CHECK(cursor.take(frame, 12, fresh));
  CHECK(paths(fresh) == std::vector<std::string>{"/c@11", "/a@12"});
  CHECK(cursor.progress() == 12);
  CHECK(cursor.resume_revision() == 13);

  // Nothing new: no events, no progress.
  fresh.clear();
  frame = {event(12, "/a")};
  CHECK_FALSE(cursor.take(frame, 12, fresh));
  CHECK(fresh.empty());
  // Progress alone is news.
  frame.clear();
  CHECK(cursor.take(frame, 15, fresh));
  CHECK(cursor.resume_revision() == 16);

  net::WatchCursor from_start(5);
  CHECK(from_start.resume_revision() == 5);
  CHECK(from_start.progress() == 4);
}
