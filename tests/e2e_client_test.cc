// End-to-end tests of the client library (client/) on real coordd processes: coord::Client's
// calls, futures and callback thread, exactly-once writes and resuming watches across a kill -9
// of the leader, per-call timeouts, and the lock, election and session wrappers.
#include <fmt/format.h>
#include <doctest/doctest.h>

#include <atomic>
#include <algorithm>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "client/recipes.h"
#include "e2e_cluster.h"
#include "kv/command.h"

namespace {

using namespace coord;
using namespace std::chrono_literals;
using e2e::Cluster;
using e2e::eventually;

const std::vector<std::string> kFastArgs{"--tick-ms", "50", "--election-ticks", "10", "--watch-progress-ms", "500"};

struct Fixture {
  Fixture() {
    REQUIRE_MESSAGE(cluster.start_all(), cluster.all_logs());
    REQUIRE_MESSAGE(eventually(15s, [&] { return (leader = cluster.agreed_leader({0, 1, 2})).has_value(); }),
                    cluster.all_logs());
  }
  ClientOptions options(std::chrono::milliseconds timeout = 10s) const {
    ClientOptions o;
    o.endpoints = cluster.endpoints();
    o.call_timeout = timeout;
    o.attempt_timeout = 1s;
    o.watch_idle_timeout = 3s;
    return o;
  }
  Cluster cluster{3, kFastArgs};
  std::optional<int> leader;
};

bool ok(const WriteOutcome& outcome) { return outcome.result && outcome.result->ok(); }

// Events gathered by a watch's callbacks (on the client's thread), read by the test's.
struct EventLog {
  std::mutex mutex;
  std::vector<kv::Event> events;
  std::optional<kv::Status> ended;
  WatchCallbacks callbacks() {
    return WatchCallbacks{[this](const std::vector<kv::Event>& batch) {
                            std::lock_guard<std::mutex> lock(mutex);
                            events.insert(events.end(), batch.begin(), batch.end());
                          },
                          [this](const kv::Status& why) {
                            std::lock_guard<std::mutex> lock(mutex);
                            ended = why;
                          }};
  }
  std::size_t size() {
    std::lock_guard<std::mutex> lock(mutex);
    return events.size();
  }
};

}  // namespace

TEST_CASE("coord::Client: writes, linearizable reads and lists, futures, callbacks on its own thread") {
  Fixture f;
  Client client(f.options());
  const WriteOutcome put = client.write(kv::single(kv::Op::put("/a", "one"))).get();
  REQUIRE_MESSAGE(ok(put), put.error);
  CHECK(put.result->revision == 1);
  REQUIRE(ok(client.write(kv::single(kv::Op::create("/dir/x", "", 0))).get()) == false);  // no parent
  kv::Op child = kv::Op::create("/dir/x", "1", 0);
  child.parents = true;
  REQUIRE(ok(client.write(kv::single(child)).get()));
  REQUIRE(ok(client.write(kv::single(kv::Op::create("/dir/y", "2", 0))).get()));

  const ReadOutcome<kv::Node> got = client.get("/a").get();
  REQUIRE(got.reached);
  REQUIRE(got.read.ok());
  CHECK(got.read.value.value == "one");
  CHECK(got.read.revision >= 1);
  const ReadOutcome<kv::Node> missing = client.get("/missing").get();
  CHECK(missing.reached);
  CHECK(missing.read.status.error == kv::Error::NotFound);
  const ReadOutcome<kv::ListPage> listed = client.list("/dir").get();
  REQUIRE(listed.reached);
  CHECK(listed.read.value.names == std::vector<std::string>{"x", "y"});
  CHECK_FALSE(listed.read.value.more);
  const ReadOutcome<kv::Node> serializable = client.get("/a", CallOptions{0ms, true}).get();
  CHECK(serializable.read.ok());

  // A compare that fails is the state machine's answer, not an unknown outcome.
  const WriteOutcome failed = client.write(kv::compare_and_set_version("/a", 7, "x")).get();
  REQUIRE(failed.result);
  CHECK(failed.result->status.error == kv::Error::CompareFailed);

  // Callbacks run on the client's thread, and never inside the call that registered them, even
  // when that call is made on the client's thread itself.
  std::atomic<bool> in_call{false};
  std::atomic<int> inside{0};
  std::atomic<int> on_loop{0};
  std::atomic<int> done{0};
  client.post([&] {
    in_call = true;
    client.write(kv::single(kv::Op::put("/b", "two")), [&](const WriteOutcome& o) {
      if (in_call) ++inside;
      if (client.on_client_thread()) ++on_loop;
      if (ok(o)) ++done;
    });
    client.get("/b", [&](const ReadOutcome<kv::Node>&) {
      if (in_call) ++inside;
      if (client.on_client_thread()) ++on_loop;
      ++done;
    });
    client.after(0, [&] {
      if (in_call) ++inside;
      if (client.on_client_thread()) ++on_loop;
      ++done;
    });
    in_call = false;
  });
  REQUIRE(eventually(10s, [&] { return done == 3; }));
  CHECK(inside == 0);
  CHECK(on_loop == 3);
  CHECK_FALSE(client.on_client_thread());
  CHECK_THROWS_AS(client.run([&] { client.check_not_client_thread(); }), std::logic_error);

  // Timers fire in order of their due time.
  std::mutex mutex;
  std::vector<int> order;
  for (int delay : {60, 20, 40}) {
    client.after(delay, [&, delay] {
      std::lock_guard<std::mutex> lock(mutex);
      order.push_back(delay);
    });
  }
  REQUIRE(eventually(5s, [&] {
    std::lock_guard<std::mutex> lock(mutex);
    return order.size() == 3;
  }));
  CHECK(order == std::vector<int>{20, 40, 60});
}

TEST_CASE("coord::Client: concurrent writes across a kill -9 of the leader are each applied once") {
  Fixture f;
  Client client(f.options(20s));
  constexpr int writes = 60;
  std::vector<std::future<WriteOutcome>> pending;
  REQUIRE(ok(client.write(kv::single(kv::Op::put("/seq", ""))).get()));
  for (int i = 0; i < writes; ++i) {
    if (i == writes / 3) f.cluster.kill9(*f.leader);
    pending.push_back(client.write(kv::single(kv::Op::create_sequential("/seq/item-", fmt::format("{}", i), 0))));
    if (i % 4 == 0) std::this_thread::sleep_for(20ms);
  }
  std::set<std::string> created;
  for (auto& p : pending) {
    const WriteOutcome o = p.get();
    REQUIRE_MESSAGE(ok(o), o.error);
    created.insert(o.result->ops.at(0).path);
  }
  CHECK(created.size() == writes);
  // Exactly once: as many children as writes, although some were sent more than once.
  std::vector<std::string> names;
  std::string start_after;
  for (;;) {
    kv::ListOptions page;
    page.start_after = start_after;
    const ReadOutcome<kv::ListPage> listed = client.list("/seq", page).get();
    REQUIRE(listed.reached);
    REQUIRE(listed.read.ok());
    names.insert(names.end(), listed.read.value.names.begin(), listed.read.value.names.end());
    if (!listed.read.value.more || listed.read.value.names.empty()) break;
    start_after = names.back();
  }
  CHECK(names.size() == writes);
  const ClientStats stats = client.stats();
  CHECK(stats.attempts > stats.calls);  // the kill made some calls try again
  CHECK(client.sessions().size() == ClientOptions{}.write_lanes);
}

TEST_CASE("coord::Client: a watch resumes on another member with every event once, in order") {
  Fixture f;
  // The leader first: the first write goes straight to it, and the watch opens where the last
  // answer came from, on the leader, which is about to die.
  ClientOptions options = f.options(20s);
  std::rotate(options.endpoints.begin(), options.endpoints.begin() + *f.leader, options.endpoints.end());
  Client client(options);
  REQUIRE(ok(client.write(kv::single(kv::Op::put("/w", ""))).get()));
  EventLog log;
  kv::WatchRequest request;
  request.filter = {kv::WatchKind::Subtree, "/w"};
  request.start_revision = 2;
  const WatchHandle handle = client.watch(request, log.callbacks());
  for (int i = 0; i < 10; ++i) REQUIRE(ok(client.write(kv::single(kv::Op::put(fmt::format("/w/{}", i), "v"))).get()));
  REQUIRE(eventually(10s, [&] { return log.size() == 10; }));
  f.cluster.kill9(*f.leader);
  for (int i = 10; i < 20; ++i) {
    const WriteOutcome o = client.write(kv::single(kv::Op::put(fmt::format("/w/{}", i), "v"))).get();
    REQUIRE_MESSAGE(ok(o), o.error);
  }
  REQUIRE_MESSAGE(eventually(20s, [&] { return log.size() >= 20; }), f.cluster.all_logs());
  std::this_thread::sleep_for(300ms);  // anything repeated would arrive by now
  {
    std::lock_guard<std::mutex> lock(log.mutex);
    REQUIRE(log.events.size() == 20);
    for (int i = 0; i < 20; ++i) {
      CHECK(log.events[static_cast<std::size_t>(i)].path == fmt::format("/w/{}", i));
      CHECK(log.events[static_cast<std::size_t>(i)].revision == static_cast<kv::Revision>(i + 2));
    }
    CHECK_FALSE(log.ended.has_value());
  }
  CHECK(client.stats().watch_resumes >= 1);
  client.cancel_watch(handle);
  REQUIRE(ok(client.write(kv::single(kv::Op::put("/w/after", "v"))).get()));
  std::this_thread::sleep_for(300ms);
  CHECK(log.size() == 20);  // nothing after cancel_watch

  // A watch the service refuses ends once, with the reason. (Members serve watches from their
  // own state: a linearizable read through each makes sure it has applied the compaction.)
  REQUIRE(ok(client.write(kv::Compact{5}).get()));
  for (int i = 0; i < 3; ++i) {
    if (i == *f.leader) continue;
    net::Client member = f.cluster.client_of(i);
    net::ClientRequest read;
    read.kind = net::RequestKind::Get;
    read.path = "/w";
    REQUIRE(member.call(read).ok());
  }
  EventLog refused;
  request.start_revision = 3;
  client.watch(request, refused.callbacks());
  REQUIRE(eventually(10s, [&] {
    std::lock_guard<std::mutex> lock(refused.mutex);
    return refused.ended.has_value();
  }));
  std::lock_guard<std::mutex> lock(refused.mutex);
  CHECK(refused.ended->error == kv::Error::Compacted);
  CHECK(refused.ended->compact_revision == 5);
}

TEST_CASE("coord::Client: calls give up at their timeout when no member answers") {
  ClientOptions o;
  o.endpoints = {"127.0.0.1:1", "localhost:1"};
  o.call_timeout = 400ms;
  o.attempt_timeout = 200ms;
  Client client(o);
  const auto started = e2e::Clock::now();
  const WriteOutcome w = client.write(kv::single(kv::Op::put("/x", "y"))).get();
  CHECK_FALSE(w.result.has_value());
  CHECK(w.error.find("gave up after 400 ms") != std::string::npos);
  const auto took = e2e::Clock::now() - started;
  CHECK(took >= 400ms);
  CHECK(took < 5s);
  const ReadOutcome<kv::Node> r = client.get("/x", CallOptions{100ms, false}).get();
  CHECK_FALSE(r.reached);
  CHECK(client.stats().gave_up == 2);
  CHECK_THROWS_AS(Client(ClientOptions{}), std::invalid_argument);
}

TEST_CASE("coord::Lock: waiters get increasing tokens, and a released holder's fenced write is refused") {
  Fixture f;
  Client client(f.options());
  Session s1(client, SessionOptions{3'000});
  Session s2(client, SessionOptions{3'000});
  REQUIRE(s1.open().ok());
  REQUIRE(s2.open().ok());
  CHECK(s1.lease_id() != s2.lease_id());
  CHECK(s1.alive());
  Lock first(s1, "jobs", "first");
  Lock second(s2, "jobs", "second");
  CHECK(first.path() == "/locks/jobs");
  const LockResult a = first.lock();
  REQUIRE_MESSAGE(a.status.ok(), a.status.message);
  CHECK(a.token > 0);
  CHECK(first.held());
  CHECK(first.token() == a.token);
  auto waiting = second.lock_async();
  CHECK(waiting.wait_for(500ms) == std::future_status::timeout);
  CHECK(second.try_lock(0ms).status.code == fencing::Code::Busy);  // one attempt at a time

  REQUIRE(ok(first.write_fenced({kv::Op::put("/jobs-state", "first")})));
  REQUIRE(first.unlock().ok());
  REQUIRE(waiting.wait_for(10s) == std::future_status::ready);
  const LockResult b = waiting.get();
  REQUIRE(b.status.ok());
  CHECK(b.token > a.token);
  CHECK(second.held());
  CHECK_FALSE(first.held());

  // The first holder's token no longer writes; the second's does.
  const WriteOutcome stale = client.write(fencing::fenced_txn(a.key, a.token, {kv::Op::put("/jobs-state", "late")})).get();
  REQUIRE(stale.result);
  CHECK(stale.result->status.error == kv::Error::CompareFailed);
  REQUIRE(ok(second.write_fenced({kv::Op::put("/jobs-state", "second")})));
  CHECK(client.get("/jobs-state").get().read.value.value == "second");
  CHECK(first.unlock().code == fencing::Code::NotHeld);

  // A session that cannot keep its lease alive loses it, and with it the lock.
  std::atomic<int> session_lost{0};
  std::atomic<int> lock_lost{0};
  s2.on_lost([&](SessionEnd why) {
    if (why == SessionEnd::DeadlinePassed) ++session_lost;
  });
  second.on_lost([&](const Status&) { ++lock_lost; });
  for (int i = 0; i < 3; ++i) f.cluster.stop(i);
  CHECK(eventually(10s, [&] { return session_lost == 1 && lock_lost == 1; }));
  CHECK_FALSE(second.held());
  CHECK_FALSE(s2.alive());
}

TEST_CASE("coord::Election and LeaderObserver: campaign, proclaim, resign, and the observer follows") {
  Fixture f;
  Client client(f.options());
  std::mutex mutex;
  std::vector<std::optional<Leader>> seen;
  LeaderObserver observer(client, "primary", [&](const std::optional<Leader>& leader) {
    std::lock_guard<std::mutex> lock(mutex);
    seen.push_back(leader);
  });
  auto last_seen = [&]() -> std::optional<std::optional<Leader>> {
    std::lock_guard<std::mutex> lock(mutex);
    if (seen.empty()) return std::nullopt;
    return seen.back();
  };
  REQUIRE(eventually(10s, [&] { return last_seen().has_value(); }));
  CHECK_FALSE(last_seen()->has_value());  // nobody yet

  Session s1(client);
  Session s2(client);
  REQUIRE(s1.open().ok());
  REQUIRE(s2.open().ok());
  Election one(s1, "primary");
  Election two(s2, "primary");
  const LockResult first = one.campaign("alpha");
  REQUIRE(first.status.ok());
  CHECK(one.leading());
  auto second = two.campaign_async("beta");
  REQUIRE(eventually(10s, [&] {
    auto l = last_seen();
    return l && *l && (*l)->value == "alpha";
  }));
  REQUIRE(one.proclaim("alpha-2").ok());
  REQUIRE(eventually(10s, [&] {
    auto l = last_seen();
    return l && *l && (*l)->value == "alpha-2" && (*l)->token == first.token;
  }));
  CHECK(second.wait_for(200ms) == std::future_status::timeout);
  REQUIRE(one.resign().ok());
  REQUIRE(second.wait_for(10s) == std::future_status::ready);
  const LockResult elected = second.get();
  REQUIRE(elected.status.ok());
  CHECK(elected.token > first.token);
  REQUIRE(eventually(10s, [&] {
    auto l = last_seen();
    return l && *l && (*l)->value == "beta" && (*l)->token == elected.token;
  }));
  CHECK(one.proclaim("deposed").code == fencing::Code::NotHeld);
  CHECK(observer.leader()->value == "beta");
  CHECK(ok(two.write_fenced({kv::Op::put("/primary-state", "beta")})));
  const WriteOutcome stale = one.write_fenced({kv::Op::put("/primary-state", "alpha")});
  REQUIRE(stale.result);
  CHECK(stale.result->status.error == kv::Error::CompareFailed);
}
