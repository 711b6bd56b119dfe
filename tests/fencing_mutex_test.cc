// fencing::Mutex: sequential ephemeral keys under the lock's path, each waiter watching only its
// predecessor. Releasing a lock with 50 waiters wakes exactly one; tokens strictly increase over
// successive holders, across leader changes and restarts; try_lock gives up on time; unknown
// create outcomes are found by name; a lost session is reported. Driven by the in-process
// cluster of tests/fencing_test_client.h in virtual time.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "fencing/guard.h"
#include "fencing/mutex.h"
#include "fencing/session.h"
#include "fencing_test_client.h"

using namespace coord::fencing;
using namespace fencingtest;

namespace {

SessionOptions session_options() {
  SessionOptions o;
  o.ttl_ms = 3'000;
  return o;
}

// A participant: its own client, session and mutex on one lock path.
struct Party {
  Party(TestCluster& cluster, kv::SessionId id, const std::string& lock_path,
        std::string value = {})
      : client(cluster, id) {
    session = Session::make(client, session_options());
    Slot<Status> opened;
    session->open(opened.callback());
    REQUIRE(cluster.run_until([&] { return opened.ready(); }));
    REQUIRE(opened.value().ok());
    mutex = Mutex::make(session, lock_path, std::move(value));
  }

  TestClient client;
  std::shared_ptr<Session> session;
  std::shared_ptr<Mutex> mutex;
};

std::vector<std::string> children(TestCluster& cluster, const std::string& path) {
  const auto got = cluster.sm().list(path);
  if (got.status.error == kv::Error::NotFound) return {};
  REQUIRE(got.ok());
  return got.value.names;
}

}  // namespace

TEST_CASE("fencing mutex: contender names round-trip and foreign names are ignored") {
  CHECK(contender_prefix(17, 3, 1) == "17_3_1_");
  const auto parsed = parse_contender_name("17_3_1_0000000042");
  REQUIRE(parsed.has_value());
  CHECK(*parsed == ContenderName{17, 3, 1, 42});
  for (const char* bad : {"", "lock", "17_3_1_42", "17_3_1_00000000042", "17_3_0000000042",
                          "0_3_1_0000000042", "17_03_1_0000000042", "a_3_1_0000000042",
                          "17_3_1_000000004x", "17_3_1__0000000042"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_contender_name(bad).has_value());
  }
  const auto first = first_contender({"9_1_1_0000000007", "junk", "2_1_1_0000000003",
                                      "5_1_1_0000000005"});
  REQUIRE(first.has_value());
  CHECK(first->name == "2_1_1_0000000003");
  CHECK_FALSE(first_contender({"junk"}).has_value());
  CHECK(child_path("/locks/a", "x") == "/locks/a/x");
  CHECK(child_path("/", "x") == "/x");
}

TEST_CASE("fencing mutex: lock, wait, unlock, and the next holder's token is greater") {
  TestCluster cluster;
  Party a(cluster, 1, "/locks/one", "a");
  Party b(cluster, 2, "/locks/one", "b");

  Slot<LockResult> got_a;
  a.mutex->lock(got_a.callback());
  CHECK_FALSE(got_a.ready());
  REQUIRE(cluster.run_until([&] { return got_a.ready(); }));
  REQUIRE(got_a.value().status.ok());
  const Token ta = got_a.value().token;
  CHECK(a.mutex->held());
  CHECK(a.mutex->token() == ta);
  CHECK(a.mutex->key() == got_a.value().key);
  // The token is the key's create revision; the key is ephemeral, on a's lease, with a's value.
  const auto node = cluster.sm().get(got_a.value().key);
  REQUIRE(node.ok());
  CHECK(node.value.create_revision == ta);
  CHECK(node.value.lease == a.session->lease_id());
  CHECK(node.value.value == "a");

  Slot<LockResult> got_b;
  b.mutex->lock(got_b.callback());
  cluster.run_for(5'000);
  CHECK_FALSE(got_b.ready());
  CHECK_FALSE(b.mutex->held());
  CHECK(children(cluster, "/locks/one").size() == 2);

  // A second lock() on a busy mutex is refused.
  Slot<LockResult> busy;
  a.mutex->lock(busy.callback());
  REQUIRE(cluster.run_until([&] { return busy.ready(); }));
  CHECK(busy.value().status.code == Code::Busy);

  Slot<Status> released;
  a.mutex->unlock(released.callback());
  CHECK_FALSE(a.mutex->held());
  REQUIRE(cluster.run_until([&] { return got_b.ready() && released.ready(); }));
  CHECK(released.value().ok());
  REQUIRE(got_b.value().status.ok());
  CHECK(got_b.value().token > ta);
  CHECK(children(cluster, "/locks/one").size() == 1);

  // Unlocking what is not held.
  Slot<Status> again;
  a.mutex->unlock(again.callback());
  REQUIRE(cluster.run_until([&] { return again.ready(); }));
  CHECK(again.value().code == Code::NotHeld);
}

TEST_CASE("fencing mutex: releasing a lock with 50 waiters wakes exactly one") {
  TestCluster cluster;
  const std::string path = "/locks/herd";
  constexpr int waiters = 50;
  std::vector<std::unique_ptr<Party>> parties;
  for (int i = 0; i <= waiters; ++i) {
    parties.push_back(std::make_unique<Party>(cluster, 100 + i, path));
  }
  std::vector<Slot<LockResult>> results(waiters + 1);
  parties[0]->mutex->lock(results[0].callback());
  REQUIRE(cluster.run_until([&] { return results[0].ready(); }));
  REQUIRE(results[0].value().status.ok());
  for (int i = 1; i <= waiters; ++i) parties[i]->mutex->lock(results[i].callback());
  // Everyone in line, each watching one key.
  REQUIRE(cluster.run_until([&] {
    for (int i = 1; i <= waiters; ++i) {
      if (parties[i]->mutex->stats().watches != 1) return false;
    }
    return true;
  }));
  cluster.run_for(3'000);  // keep-alives only
  for (int i = 1; i <= waiters; ++i) {
    CAPTURE(i);
    CHECK_FALSE(results[i].ready());
    CHECK(parties[i]->mutex->stats().lists == 1);
    CHECK(parties[i]->mutex->stats().wakeups == 0);
  }
  CHECK(children(cluster, path).size() == waiters + 1);

  Token last = results[0].value().token;
  for (int holder = 0; holder < waiters; ++holder) {
    CAPTURE(holder);
    const std::uint64_t deliveries = cluster.watch_deliveries;
    const std::uint64_t lists = cluster.lists_served;
    std::vector<Mutex::Stats> before;
    for (const auto& p : parties) before.push_back(p->mutex->stats());

    Slot<Status> released;
    parties[holder]->mutex->unlock(released.callback());
    const int next = holder + 1;
    REQUIRE(cluster.run_until([&] { return results[next].ready(); }));
    cluster.run_for(1'000);  // time for any herd to show up
    REQUIRE(released.ready());
    CHECK(released.value().ok());

    // Exactly one waiter heard anything, and only it listed again.
    CHECK(cluster.watch_deliveries == deliveries + 1);
    CHECK(cluster.lists_served == lists + 1);
    int woken = 0;
    for (int i = 0; i <= waiters; ++i) {
      const Mutex::Stats& now = parties[i]->mutex->stats();
      if (now.wakeups != before[i].wakeups || now.lists != before[i].lists) {
        ++woken;
        CHECK(i == next);
        CHECK(now.wakeups == before[i].wakeups + 1);
        CHECK(now.lists == before[i].lists + 1);
      }
    }
    CHECK(woken == 1);
    REQUIRE(results[next].value().status.ok());
    CHECK(results[next].value().token > last);
    last = results[next].value().token;
    for (int i = next + 1; i <= waiters; ++i) CHECK_FALSE(results[i].ready());
  }
}

TEST_CASE("fencing mutex: try_lock gives up on time, deletes its key, and the line heals") {
  TestCluster cluster;
  const std::string path = "/locks/try";
  Party a(cluster, 1, path);
  Party b(cluster, 2, path);
  Party c(cluster, 3, path);
  Slot<LockResult> got_a;
  a.mutex->lock(got_a.callback());
  REQUIRE(cluster.run_until([&] { return got_a.ready(); }));

  // b tries for 500 ms behind a; c waits (forever) behind b.
  Slot<LockResult> got_b, got_c;
  const Millis started = cluster.now();
  b.mutex->try_lock(500, got_b.callback());
  cluster.run_for(10);
  c.mutex->lock(got_c.callback());
  REQUIRE(cluster.run_until([&] { return got_b.ready(); }));
  CHECK(got_b.value().status.code == Code::TimedOut);
  CHECK(cluster.now() == started + 500);
  CHECK_FALSE(b.mutex->busy());
  cluster.run_for(100);
  CHECK(children(cluster, path).size() == 2);  // a and c: b's key is gone
  // c noticed its predecessor go and now watches a.
  CHECK(c.mutex->stats().wakeups == 1);
  CHECK(c.mutex->stats().watches == 2);
  CHECK_FALSE(got_c.ready());

  // try_lock(0): one look, no wait.
  Slot<LockResult> once;
  b.mutex->try_lock(0, once.callback());
  REQUIRE(cluster.run_until([&] { return once.ready(); }));
  CHECK(once.value().status.code == Code::TimedOut);
  CHECK(b.mutex->stats().watches == 1);  // from the first try only
  cluster.run_for(100);
  CHECK(children(cluster, path).size() == 2);

  Slot<Status> released;
  a.mutex->unlock(released.callback());
  REQUIRE(cluster.run_until([&] { return got_c.ready(); }));
  REQUIRE(got_c.value().status.ok());
  CHECK(got_c.value().token > got_a.value().token);

  // On a free lock, try_lock(0) acquires.
  Slot<Status> released_c;
  c.mutex->unlock(released_c.callback());
  REQUIRE(cluster.run_until([&] { return released_c.ready(); }));
  Slot<LockResult> free;
  b.mutex->try_lock(0, free.callback());
  REQUIRE(cluster.run_until([&] { return free.ready(); }));
  REQUIRE(free.value().status.ok());
  CHECK(free.value().token > got_c.value().token);
}

TEST_CASE("fencing mutex: a mutex dropped after try_lock timed out leaves no key behind") {
  // Found by coord-sim --workload locks (seed 4): try_lock timed out while its create was in
  // flight, the caller dropped the Mutex, the create then landed, and the orphan key headed the
  // line for as long as the session was kept alive: nobody got the lock again.
  TestCluster cluster;
  cluster.latency_ms = 50;
  const std::string path = "/locks/dropped";
  Party a(cluster, 1, path);
  Party b(cluster, 2, path);
  Slot<LockResult> got_a;
  a.mutex->lock(got_a.callback());
  REQUIRE(cluster.run_until([&] { return got_a.ready(); }));

  Slot<LockResult> got_b;
  b.mutex->try_lock(10, got_b.callback());
  REQUIRE(cluster.run_until([&] { return got_b.ready(); }));
  CHECK(got_b.value().status.code == Code::TimedOut);
  b.mutex.reset();  // the create is still in flight
  cluster.run_for(1'000);
  CHECK(children(cluster, path).size() == 1);  // a's key only

  // The line is healthy: once a releases, a newcomer on b's (still open) session gets the lock.
  Slot<Status> released;
  a.mutex->unlock(released.callback());
  REQUIRE(cluster.run_until([&] { return released.ready(); }));
  auto again = Mutex::make(b.session, path);
  Slot<LockResult> got_again;
  again->lock(got_again.callback());
  REQUIRE(cluster.run_until([&] { return got_again.ready(); }));
  CHECK(got_again.value().status.ok());
}

TEST_CASE("fencing mutex: unlock while waiting cancels the wait") {
  TestCluster cluster;
  Party a(cluster, 1, "/l");
  Party b(cluster, 2, "/l");
  Slot<LockResult> got_a, got_b;
  a.mutex->lock(got_a.callback());
  REQUIRE(cluster.run_until([&] { return got_a.ready(); }));
  b.mutex->lock(got_b.callback());
  cluster.run_for(100);
  Slot<Status> canceled;
  b.mutex->unlock(canceled.callback());
  REQUIRE(cluster.run_until([&] { return canceled.ready() && got_b.ready(); }));
  CHECK(canceled.value().ok());
  CHECK(got_b.value().status.code == Code::Canceled);
  cluster.run_for(100);
  CHECK(children(cluster, "/l").size() == 1);
}

TEST_CASE("fencing mutex: a waiter whose predecessor dies watches the next one ahead") {
  TestCluster cluster;
  const std::string path = "/locks/dies";
  Party a(cluster, 1, path);
  Party b(cluster, 2, path);
  Party c(cluster, 3, path);
  Slot<LockResult> got_a, got_b, got_c;
  a.mutex->lock(got_a.callback());
  REQUIRE(cluster.run_until([&] { return got_a.ready(); }));
  b.mutex->lock(got_b.callback());
  cluster.run_for(10);
  c.mutex->lock(got_c.callback());
  cluster.run_for(100);

  // b is cut off: its session ends (its own deadline), then the leader expires its lease.
  b.client.set_reachable(false);
  REQUIRE(cluster.run_until([&] { return got_b.ready(); }, 10'000));
  CHECK(got_b.value().status.code == Code::SessionLost);
  REQUIRE(cluster.run_until([&] { return children(cluster, path).size() == 2; }, 10'000));
  cluster.run_for(100);
  CHECK(c.mutex->stats().wakeups == 1);
  CHECK_FALSE(got_c.ready());  // a still holds it
  CHECK(a.mutex->held());

  Slot<Status> released;
  a.mutex->unlock(released.callback());
  REQUIRE(cluster.run_until([&] { return got_c.ready(); }));
  REQUIRE(got_c.value().status.ok());
  CHECK(got_c.value().token > got_a.value().token);
}

TEST_CASE("fencing mutex: a holder whose session lapses hears it, and the next holder's token is greater") {
  TestCluster cluster;
  const std::string path = "/locks/lapse";
  Party a(cluster, 1, path);
  Party b(cluster, 2, path);
  Slot<LockResult> got_a, got_b;
  a.mutex->lock(got_a.callback());
  REQUIRE(cluster.run_until([&] { return got_a.ready(); }));
  std::vector<Status> lost;
  a.mutex->on_lost([&](const Status& why) { lost.push_back(why); });
  b.mutex->lock(got_b.callback());
  cluster.run_for(100);

  a.client.set_reachable(false);
  REQUIRE(cluster.run_until([&] { return !lost.empty(); }, 10'000));
  CHECK(lost.size() == 1);
  CHECK(lost[0].code == Code::SessionLost);
  CHECK_FALSE(a.mutex->held());
  // a stopped trusting the lock before anyone else could get it.
  CHECK_FALSE(got_b.ready());
  REQUIRE(cluster.run_until([&] { return got_b.ready(); }, 10'000));
  REQUIRE(got_b.value().status.ok());
  CHECK(got_b.value().token > got_a.value().token);
  // A lock() on the dead session is refused.
  Slot<LockResult> dead;
  a.mutex->lock(dead.callback());
  REQUIRE(cluster.run_until([&] { return dead.ready(); }));
  CHECK(dead.value().status.code == Code::SessionLost);
}

TEST_CASE("fencing mutex: a create whose reply was lost is found by its name") {
  TestCluster cluster;
  Party a(cluster, 1, "/locks/lost-reply");
  Party b(cluster, 2, "/locks/lost-reply");
  Slot<LockResult> got_a;
  a.mutex->lock(got_a.callback());
  REQUIRE(cluster.run_until([&] { return got_a.ready(); }));

  b.client.lose_replies(1);
  Slot<LockResult> got_b;
  b.mutex->lock(got_b.callback());
  cluster.run_for(2'000);
  CHECK_FALSE(got_b.ready());
  CHECK(b.mutex->stats().creates == 1);  // found, not created again
  CHECK(b.mutex->stats().watches == 1);
  CHECK(children(cluster, "/locks/lost-reply").size() == 2);

  Slot<Status> released;
  a.mutex->unlock(released.callback());
  REQUIRE(cluster.run_until([&] { return got_b.ready(); }));
  REQUIRE(got_b.value().status.ok());
  const auto node = cluster.sm().get(got_b.value().key);
  REQUIRE(node.ok());
  CHECK(got_b.value().token == node.value.create_revision);  // read back, not guessed
  CHECK(got_b.value().token > got_a.value().token);
}

TEST_CASE("fencing mutex: a create that did not happen is made again") {
  TestCluster cluster;
  Party a(cluster, 1, "/locks/unreachable");
  a.client.set_reachable(false);
  Slot<LockResult> got;
  a.mutex->lock(got.callback());
  cluster.run_for(700);  // the create gives up at 500; the listing is not answered either
  a.client.set_reachable(true);
  REQUIRE(cluster.run_until([&] { return got.ready(); }, 5'000));
  REQUIRE(got.value().status.ok());
  CHECK(a.mutex->stats().creates == 2);
  CHECK(children(cluster, "/locks/unreachable").size() == 1);
}

TEST_CASE("fencing mutex: a create applied after the client gave up never blocks the line") {
  TestCluster cluster;
  const std::string path = "/locks/late";
  Party a(cluster, 1, path);
  Party b(cluster, 2, path);

  SUBCASE("it lands before our listing: found by name and used") {
    a.client.apply_next_write_late(1);
    Slot<LockResult> got;
    a.mutex->lock(got.callback());
    REQUIRE(cluster.run_until([&] { return got.ready(); }));
    REQUIRE(got.value().status.ok());
    CHECK(a.mutex->stats().creates == 1);
    CHECK(children(cluster, path).size() == 1);
  }
  SUBCASE("it lands between our listing and our next create: deleted as a leftover") {
    a.client.apply_next_write_late(2);  // after the listing is served, before create #2
    Slot<LockResult> got;
    a.mutex->lock(got.callback());
    REQUIRE(cluster.run_until([&] { return got.ready(); }));
    REQUIRE(got.value().status.ok());
    CHECK(a.mutex->stats().creates == 2);
    REQUIRE(a.client.late_results.size() == 1);
    CHECK(a.client.late_results[0].ok());
    // The leftover was first in line, yet we did not wait for ourselves.
    CHECK(got.value().token > a.client.late_results[0].revision);
    cluster.run_for(100);
    CHECK(children(cluster, path).size() == 1);
  }
  SUBCASE("it comes after we acquired: refused as stale by the client's session") {
    a.client.apply_next_write_late(2'000);
    Slot<LockResult> got;
    a.mutex->lock(got.callback());
    REQUIRE(cluster.run_until([&] { return got.ready(); }));
    REQUIRE(got.value().status.ok());
    CHECK(a.mutex->stats().creates == 2);
    cluster.run_for(3'000);
    REQUIRE(a.client.late_results.size() == 1);
    CHECK(a.client.late_results[0].status.error == kv::Error::StaleSequence);
    CHECK(children(cluster, path).size() == 1);
  }
  SUBCASE("it lands after we acquired (session forgotten): swept on unlock") {
    a.client.apply_next_write_late(2'000, /*session_forgotten=*/true);
    Slot<LockResult> got;
    a.mutex->lock(got.callback());
    REQUIRE(cluster.run_until([&] { return got.ready(); }));
    REQUIRE(got.value().status.ok());
    CHECK(a.mutex->stats().creates == 2);
    cluster.run_for(3'000);
    REQUIRE(a.client.late_results.size() == 1);
    CHECK(a.client.late_results[0].ok());
    CHECK(children(cluster, path).size() == 2);  // the late key is in line behind us
    Slot<Status> released;
    a.mutex->unlock(released.callback());
    REQUIRE(cluster.run_until([&] { return released.ready(); }));
    cluster.run_for(100);
    CHECK(children(cluster, path).empty());
  }
  // Nothing of a's holds the line: b gets it at once.
  if (a.mutex->held()) {
    Slot<Status> released;
    a.mutex->unlock(released.callback());
    REQUIRE(cluster.run_until([&] { return released.ready(); }));
  }
  cluster.run_for(100);
  Slot<LockResult> got_b;
  b.mutex->try_lock(0, got_b.callback());
  REQUIRE(cluster.run_until([&] { return got_b.ready(); }));
  CHECK(got_b.value().status.ok());
}

// The acceptance test for tokens: many successive holders, some releasing, some losing their
// session, with leader changes and full restarts in between; every token is greater than the one
// before, and the Guard accepts each new holder and refuses the previous one.
TEST_CASE("fencing mutex: tokens strictly increase across holders, leader changes and restarts") {
  TestCluster cluster;
  const std::string path = "/locks/tokens";
  constexpr int slots = 3;
  std::vector<std::unique_ptr<Party>> parties;
  kv::SessionId next_id = 1;
  for (int i = 0; i < slots; ++i) parties.push_back(std::make_unique<Party>(cluster, next_id++, path));
  MemoryGuardStore store;
  Guard guard(store);

  std::vector<Token> tokens;
  int restarts = 0, leader_changes = 0, lapses = 0;
  for (int round = 0; round < 40; ++round) {
    CAPTURE(round);
    Party& p = *parties[static_cast<std::size_t>(round % slots)];
    Slot<LockResult> got;
    p.mutex->lock(got.callback());
    REQUIRE(cluster.run_until([&] { return got.ready(); }, 30'000));
    REQUIRE(got.value().status.ok());
    const Token token = got.value().token;
    if (!tokens.empty()) CHECK(token > tokens.back());
    CHECK(guard.check("resource", token).accepted());
    if (!tokens.empty()) CHECK(guard.check("resource", tokens.back()).verdict == Verdict::Stale);
    tokens.push_back(token);

    if (round % 4 == 1) {
      cluster.change_leader();
      ++leader_changes;
    }
    if (round % 5 == 2) {
      cluster.restart();
      ++restarts;
    }
    cluster.run_for(500);
    REQUIRE(p.mutex->held());  // sessions survive both

    if (round % 7 == 3) {
      // The holder goes silent: its session lapses and the leader expires its lease.
      bool lost = false;
      p.mutex->on_lost([&](const Status&) { lost = true; });
      p.client.set_reachable(false);
      REQUIRE(cluster.run_until([&] { return lost; }, 10'000));
      const kv::LeaseId lease = p.session->lease_id();
      REQUIRE(cluster.run_until(
          [&] { return !cluster.sm().lease_ttl(lease).ok(); }, 10'000));
      ++lapses;
      const std::size_t slot = static_cast<std::size_t>(round % slots);
      parties[slot] = std::make_unique<Party>(cluster, next_id++, path);
    } else {
      Slot<Status> released;
      p.mutex->unlock(released.callback());
      REQUIRE(cluster.run_until([&] { return released.ready(); }));
      CHECK(released.value().ok());
    }
  }
  CHECK(tokens.size() == 40);
  CHECK(restarts == 8);
  CHECK(leader_changes == 10);
  CHECK(lapses == 6);
}

TEST_CASE("fencing mutex: waiters keep their place across a restart and a leader change") {
  TestCluster cluster;
  const std::string path = "/locks/restart";
  std::vector<std::unique_ptr<Party>> parties;
  for (int i = 0; i < 5; ++i) parties.push_back(std::make_unique<Party>(cluster, 10 + i, path));
  std::vector<Slot<LockResult>> results(5);
  for (int i = 0; i < 5; ++i) {
    parties[static_cast<std::size_t>(i)]->mutex->lock(results[static_cast<std::size_t>(i)].callback());
    cluster.run_for(5);
  }
  REQUIRE(cluster.run_until([&] { return results[0].ready(); }));
  cluster.run_for(500);
  Token last = results[0].value().token;
  for (int holder = 0; holder < 4; ++holder) {
    CAPTURE(holder);
    if (holder % 2 == 0) {
      cluster.restart();
    } else {
      cluster.change_leader();
    }
    cluster.run_for(1'000);
    const auto next = static_cast<std::size_t>(holder + 1);
    CHECK_FALSE(results[next].ready());
    Slot<Status> released;
    parties[static_cast<std::size_t>(holder)]->mutex->unlock(released.callback());
    REQUIRE(cluster.run_until([&] { return results[next].ready(); }));
    REQUIRE(results[next].value().status.ok());
    CHECK(results[next].value().token > last);
    last = results[next].value().token;
  }
}
