// fencing::Session: the lease a client keeps alive, the deadline past which it stops trusting it
// (send time of the last acknowledged keep-alive + TTL - drift margin), and the lost-session
// event: deadline passed, lease gone, closed. Driven by the in-process cluster of
// tests/fencing_test_client.h in virtual time.
#include <doctest/doctest.h>

#include <memory>
#include <vector>

#include "fencing/session.h"
#include "fencing_test_client.h"

using namespace coord::fencing;
using namespace fencingtest;

namespace {

SessionOptions options_3s() {
  SessionOptions o;
  o.ttl_ms = 3'000;
  o.drift_margin_percent = 5;
  o.drift_margin_ms = 50;  // margin 200: the client trusts 2'800 ms from each send
  return o;
}

std::shared_ptr<Session> open_session(TestCluster& cluster, TestClient& client,
                                      SessionOptions options) {
  auto session = Session::make(client, options);
  Slot<Status> opened;
  session->open(opened.callback());
  REQUIRE(cluster.run_until([&] { return opened.ready(); }));
  REQUIRE(opened.value().ok());
  return session;
}

}  // namespace

TEST_CASE("fencing session: options give the margin, the interval, and a trust window") {
  SessionOptions o = options_3s();
  CHECK(drift_margin(o) == 200);
  CHECK(keepalive_interval(o) == 1'000);
  CHECK(valid(o));
  o.keepalive_interval_ms = 700;
  CHECK(keepalive_interval(o) == 700);
  o.keepalive_interval_ms = 2'800;  // no shorter than the window: a single loss would lose it
  CHECK_FALSE(valid(o));
  o = options_3s();
  o.drift_margin_ms = 2'850;  // margin beyond the TTL
  CHECK_FALSE(valid(o));
  o = options_3s();
  o.ttl_ms = 0;
  CHECK_FALSE(valid(o));
  CHECK(valid(SessionOptions{}));
  CHECK(drift_margin(SessionOptions{}) == 550);
}

TEST_CASE("fencing session: keep-alives move the deadline to send time + TTL - margin") {
  TestCluster cluster;
  TestClient client(cluster, 1);
  const Millis t0 = cluster.now();
  auto session = Session::make(client, options_3s());
  CHECK_FALSE(session->deadline().has_value());
  CHECK_FALSE(session->alive());
  Slot<Status> opened;
  session->open(opened.callback());
  CHECK_FALSE(opened.ready());  // never inside the call
  REQUIRE(cluster.run_until([&] { return opened.ready(); }));
  REQUIRE(opened.value().ok());
  CHECK(cluster.now() == t0 + 2);  // one round trip
  CHECK(session->lease_id() != 0);
  CHECK(session->lease().ttl_ms == 3'000u);
  // The grant was sent at t0.
  CHECK(session->deadline() == t0 + 2'800);
  CHECK(session->remaining_ms() == 2'798);
  CHECK(session->alive());

  // The first keep-alive leaves at t0 + 2 + 1000 and is answered 2 ms later.
  cluster.run_for(1'001);
  CHECK(session->deadline() == t0 + 2'800);
  cluster.run_for(1);
  CHECK(session->deadline() == t0 + 1'002 + 2'800);
  CHECK(session->lease().keepalives == 1u);

  // Long after the TTL: still alive, never trusted further than a window from the last send.
  int ended = 0;
  session->on_end([&](SessionEnd) { ++ended; });
  for (int i = 0; i < 60; ++i) {
    cluster.run_for(500);
    REQUIRE(session->alive());
    CHECK(*session->deadline() <= cluster.now() + 2'800);
    CHECK(*session->deadline() > cluster.now());
  }
  CHECK(ended == 0);
  CHECK(cluster.sm().lease_ttl(session->lease_id()).ok());
  CHECK(session->lease().keepalives >= 29u);
}

TEST_CASE("fencing session: a client cut off stops trusting its lease before the leader ends it") {
  TestCluster cluster;
  TestClient client(cluster, 1);
  auto session = open_session(cluster, client, options_3s());
  const kv::LeaseId lease = session->lease_id();
  std::vector<std::pair<SessionEnd, Millis>> ends;
  session->on_end([&](SessionEnd why) { ends.emplace_back(why, cluster.now()); });
  cluster.run_for(2'500);
  const Millis deadline = *session->deadline();

  client.set_reachable(false);
  REQUIRE(cluster.run_until([&] { return !ends.empty(); }, 10'000));
  REQUIRE(ends.size() == 1);
  CHECK(ends[0].first == SessionEnd::DeadlinePassed);
  CHECK(ends[0].second == deadline);  // exactly at the deadline, not a tick later
  CHECK_FALSE(session->alive());
  CHECK(session->end_reason() == SessionEnd::DeadlinePassed);
  CHECK(session->remaining_ms() == 0);
  // The leader's countdown has not run out yet: the client gave up first.
  CHECK(cluster.sm().lease_ttl(lease).ok());

  // The leader expires it in its own time; the client never comes back to life.
  cluster.run_for(5'000);
  CHECK(cluster.sm().lease_ttl(lease).status.error == kv::Error::LeaseNotFound);
  client.set_reachable(true);
  cluster.run_for(5'000);
  CHECK_FALSE(session->alive());
  CHECK(ends.size() == 1);
}

TEST_CASE("fencing session: the lease ended on the server is a lost session at once") {
  TestCluster cluster;
  cluster.auto_expire = false;  // the test plays the leader
  TestClient client(cluster, 1);
  auto session = open_session(cluster, client, options_3s());
  std::vector<SessionEnd> ends;
  session->on_end([&](SessionEnd why) { ends.push_back(why); });
  cluster.run_for(1'500);
  REQUIRE(cluster.expire(session->lease_id()).ok());
  // The next keep-alive hears LeaseNotFound, well before the client's own deadline.
  const Millis deadline = *session->deadline();
  REQUIRE(cluster.run_until([&] { return !ends.empty(); }, 5'000));
  CHECK(ends == std::vector<SessionEnd>{SessionEnd::LeaseNotFound});
  CHECK(cluster.now() < deadline);
  CHECK_FALSE(session->alive());
  cluster.run_for(5'000);
  CHECK(ends.size() == 1);
}

TEST_CASE("fencing session: close revokes the lease and its ephemeral keys go with it") {
  TestCluster cluster;
  TestClient client(cluster, 1);
  auto session = open_session(cluster, client, options_3s());
  REQUIRE(cluster.apply(0, 0, kv::single(kv::Op::create("/eph", "x", session->lease_id()))).ok());
  std::vector<SessionEnd> ends;
  session->on_end([&](SessionEnd why) { ends.push_back(why); });
  Slot<Status> closed;
  session->close(closed.callback());
  CHECK(ends.empty());  // never inside the call
  CHECK_FALSE(session->alive());
  REQUIRE(cluster.run_until([&] { return closed.ready(); }));
  CHECK(closed.value().ok());
  CHECK(ends == std::vector<SessionEnd>{SessionEnd::Closed});
  CHECK_FALSE(cluster.sm().exists("/eph").value);
  CHECK(cluster.sm().lease_ttl(session->lease_id()).status.error == kv::Error::LeaseNotFound);
  // No keep-alives after the end.
  const std::uint64_t sent = client.writes_sent;
  cluster.run_for(10'000);
  CHECK(client.writes_sent == sent);

  // A listener registered after the end still hears it, once.
  int late = 0;
  session->on_end([&](SessionEnd why) {
    CHECK(why == SessionEnd::Closed);
    ++late;
  });
  cluster.run_for(10);
  CHECK(late == 1);

  // Opening twice is refused.
  Slot<Status> again;
  session->open(again.callback());
  REQUIRE(cluster.run_until([&] { return again.ready(); }));
  CHECK(again.value().code == Code::Busy);
}

TEST_CASE("fencing session: a grant answered after its own trust window is given back") {
  TestCluster cluster;
  cluster.latency_ms = 150;  // a round trip of 300 ms
  TestClient client(cluster, 1);
  SessionOptions o;
  o.ttl_ms = 300;
  o.drift_margin_percent = 5;
  o.drift_margin_ms = 0;
  o.keepalive_interval_ms = 100;
  auto session = Session::make(client, o);
  Slot<Status> opened;
  session->open(opened.callback());
  REQUIRE(cluster.run_until([&] { return opened.ready(); }));
  CHECK(opened.value().code == Code::SessionLost);
  CHECK_FALSE(session->alive());
  cluster.run_for(1'000);
  CHECK(cluster.sm().leases().value.empty());  // revoked
}

TEST_CASE("fencing session: a grant with an unknown outcome fails the open") {
  TestCluster cluster;
  TestClient client(cluster, 1);
  client.set_reachable(false);
  auto session = Session::make(client, options_3s());
  Slot<Status> opened;
  session->open(opened.callback());
  REQUIRE(cluster.run_until([&] { return opened.ready(); }));
  CHECK(opened.value().code == Code::Unknown);
  CHECK_FALSE(session->alive());
}

TEST_CASE("fencing session: dropping the last reference stops the keep-alives") {
  TestCluster cluster;
  TestClient client(cluster, 1);
  kv::LeaseId lease = 0;
  {
    auto session = open_session(cluster, client, options_3s());
    lease = session->lease_id();
    cluster.run_for(2'000);
  }
  const std::uint64_t sent = client.writes_sent;
  cluster.run_for(10'000);
  CHECK(client.writes_sent == sent);
  // Not revoked: the leader expires it.
  CHECK(cluster.sm().lease_ttl(lease).status.error == kv::Error::LeaseNotFound);
}
