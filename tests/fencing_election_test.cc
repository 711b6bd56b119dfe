// fencing::Election and LeaderObserver: campaign, observe the leader and its value, proclaim a
// new value (fenced), resign, and the next candidate taking over; also when the leader's session
// lapses, and across a restart. Driven by the in-process cluster of tests/fencing_test_client.h.
#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fencing/election.h"
#include "fencing/session.h"
#include "fencing_test_client.h"

using namespace coord::fencing;
using namespace fencingtest;

namespace {

struct Candidate {
  Candidate(TestCluster& cluster, kv::SessionId id, const std::string& path)
      : client(cluster, id) {
    SessionOptions options;
    options.ttl_ms = 3'000;
    session = Session::make(client, options);
    Slot<Status> opened;
    session->open(opened.callback());
    REQUIRE(cluster.run_until([&] { return opened.ready(); }));
    REQUIRE(opened.value().ok());
    election = Election::make(session, path);
  }

  TestClient client;
  std::shared_ptr<Session> session;
  std::shared_ptr<Election> election;
};

// What an observer reported, in order.
struct Reports {
  std::vector<std::optional<Leader>> seen;
  LeaderObserver::Callback callback() {
    return [this](const std::optional<Leader>& leader) { seen.push_back(leader); };
  }
  std::optional<std::string> last_value() const {
    if (seen.empty() || !seen.back()) return std::nullopt;
    return seen.back()->value;
  }
};

}  // namespace

TEST_CASE("fencing election: campaign, observe, proclaim, resign, and the next one leads") {
  TestCluster cluster;
  const std::string path = "/election/primary";
  TestClient watcher(cluster, 99);
  Reports reports;
  auto observer = LeaderObserver::make(watcher, path, reports.callback());
  REQUIRE(cluster.run_until([&] { return observer->reported(); }));
  REQUIRE(reports.seen.size() == 1);
  CHECK_FALSE(reports.seen[0].has_value());  // nobody leads yet

  Candidate a(cluster, 1, path), b(cluster, 2, path);
  Slot<LockResult> won_a, won_b;
  a.election->campaign("10.0.0.1", won_a.callback());
  REQUIRE(cluster.run_until([&] { return won_a.ready(); }));
  REQUIRE(won_a.value().status.ok());
  CHECK(a.election->leading());
  CHECK(a.election->value() == "10.0.0.1");
  const Token ta = won_a.value().token;
  REQUIRE(cluster.run_until([&] { return reports.seen.size() == 2; }));
  REQUIRE(reports.seen[1].has_value());
  CHECK(reports.seen[1]->value == "10.0.0.1");
  CHECK(reports.seen[1]->token == ta);
  CHECK(reports.seen[1]->key == a.election->key());
  CHECK(reports.seen[1]->lease == a.session->lease_id());

  b.election->campaign("10.0.0.2", won_b.callback());
  cluster.run_for(2'000);
  CHECK_FALSE(won_b.ready());
  CHECK(reports.seen.size() == 2);  // a follower joining the line changes nothing

  // A second campaign while leading is refused.
  Slot<LockResult> twice;
  a.election->campaign("x", twice.callback());
  REQUIRE(cluster.run_until([&] { return twice.ready(); }));
  CHECK(twice.value().status.code == Code::Busy);

  // Proclaim: the same leader (same token), a new value.
  Slot<Status> proclaimed;
  a.election->proclaim("10.0.0.11", proclaimed.callback());
  REQUIRE(cluster.run_until([&] { return proclaimed.ready() && reports.seen.size() == 3; }));
  CHECK(proclaimed.value().ok());
  CHECK(a.election->value() == "10.0.0.11");
  REQUIRE(reports.seen[2].has_value());
  CHECK(reports.seen[2]->value == "10.0.0.11");
  CHECK(reports.seen[2]->token == ta);
  CHECK(reports.seen[2]->mod_revision > reports.seen[1]->mod_revision);
  // The key stays ephemeral on the leader's lease.
  CHECK(cluster.sm().get(a.election->key()).value.lease == a.session->lease_id());
  // A follower cannot proclaim.
  Slot<Status> not_leader;
  b.election->proclaim("10.0.0.2!", not_leader.callback());
  REQUIRE(cluster.run_until([&] { return not_leader.ready(); }));
  CHECK(not_leader.value().code == Code::NotHeld);

  // A late observer sees the current leader and value at once.
  Reports late_reports;
  auto late = LeaderObserver::make(watcher, path, late_reports.callback());
  REQUIRE(cluster.run_until([&] { return late->reported(); }));
  CHECK(late_reports.last_value() == "10.0.0.11");

  // Resign: b leads, with a greater token; both observers follow.
  const std::string old_key = a.election->key();
  Slot<Status> resigned;
  a.election->resign(resigned.callback());
  REQUIRE(cluster.run_until([&] { return resigned.ready() && won_b.ready(); }));
  CHECK(resigned.value().ok());
  CHECK_FALSE(a.election->leading());
  REQUIRE(won_b.value().status.ok());
  CHECK(won_b.value().token > ta);
  REQUIRE(cluster.run_until([&] {
    return reports.last_value() == "10.0.0.2" && late_reports.last_value() == "10.0.0.2";
  }));
  CHECK(reports.seen.back()->token == won_b.value().token);
  CHECK(reports.seen.size() == 4);

  // The old leader's fenced write, sent with its old token, is refused by the state machine.
  Slot<WriteOutcome> stale;
  a.client.write(fenced_txn(old_key, ta, {kv::Op::put(old_key, "stale", a.session->lease_id())}),
                 stale.callback());
  REQUIRE(cluster.run_until([&] { return stale.ready(); }));
  REQUIRE(stale.value().result.has_value());
  CHECK(stale.value().result->status.error == kv::Error::CompareFailed);
  Slot<Status> deposed;
  a.election->proclaim("still me?", deposed.callback());
  REQUIRE(cluster.run_until([&] { return deposed.ready(); }));
  CHECK(deposed.value().code == Code::NotHeld);

  // The last leader resigns: nobody leads.
  Slot<Status> resigned_b;
  b.election->resign(resigned_b.callback());
  REQUIRE(cluster.run_until([&] { return resigned_b.ready() && !reports.seen.back(); }));
  CHECK(reports.seen.size() == 5);

  // Stopped observers hear nothing more.
  late->stop();
  const std::size_t late_count = late_reports.seen.size();
  Slot<LockResult> again;
  a.election->campaign("10.0.0.1", again.callback());
  REQUIRE(cluster.run_until([&] { return again.ready() && reports.last_value() == "10.0.0.1"; }));
  CHECK(late_reports.seen.size() == late_count);
}

TEST_CASE("fencing election: a leader whose session lapses is replaced, and told") {
  TestCluster cluster;
  const std::string path = "/election/lapse";
  TestClient watcher(cluster, 99);
  Reports reports;
  auto observer = LeaderObserver::make(watcher, path, reports.callback());
  Candidate a(cluster, 1, path), b(cluster, 2, path), c(cluster, 3, path);
  Slot<LockResult> won_a, won_b, won_c;
  a.election->campaign("a", won_a.callback());
  REQUIRE(cluster.run_until([&] { return won_a.ready(); }));
  b.election->campaign("b", won_b.callback());
  cluster.run_for(10);
  c.election->campaign("c", won_c.callback());
  cluster.run_for(100);
  bool lost = false;
  a.election->on_lost([&](const Status& why) {
    CHECK(why.code == Code::SessionLost);
    lost = true;
  });

  a.client.set_reachable(false);
  REQUIRE(cluster.run_until([&] { return lost; }, 10'000));
  CHECK_FALSE(a.election->leading());
  REQUIRE(cluster.run_until([&] { return won_b.ready(); }, 10'000));
  REQUIRE(won_b.value().status.ok());
  CHECK(won_b.value().token > won_a.value().token);
  REQUIRE(cluster.run_until([&] { return reports.last_value() == "b"; }));
  CHECK_FALSE(won_c.ready());

  // A restart in the middle: the observer and the waiting candidate resume.
  cluster.restart();
  cluster.run_for(500);
  Slot<Status> resigned;
  b.election->resign(resigned.callback());
  REQUIRE(cluster.run_until([&] { return won_c.ready() && reports.last_value() == "c"; }));
  REQUIRE(won_c.value().status.ok());
  CHECK(won_c.value().token > won_b.value().token);
  // Every leader the observer reported had a greater token than the one before.
  Token last = 0;
  for (const auto& leader : reports.seen) {
    if (!leader) continue;
    CHECK(leader->token >= last);
    last = leader->token;
  }
}
