// End-to-end failover: a leader paused past the election timeout (SIGSTOP, then SIGCONT) never
// serves a stale linearizable read, and a watch survives the leader's kill -9 without missing
// or repeating an event. Real coordd processes on 127.0.0.1; every wait is bounded.
#include <fmt/format.h>
#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "e2e_cluster.h"
#include "kv/command.h"

namespace {

using namespace coord;
using namespace std::chrono_literals;
using e2e::Cluster;
using e2e::eventually;

const std::vector<std::string> kFastArgs{"--tick-ms", "50", "--election-ticks", "10", "--watch-progress-ms", "500",
                                         "--log-level", "debug"};

net::ClientResponse put(net::Client& client, const std::string& path, const std::string& value) {
  kv::Op op = kv::Op::put(path, value);
  op.parents = true;
  return client.write(kv::single(std::move(op)));
}

net::ClientRequest get_request(const std::string& path) {
  net::ClientRequest r;
  r.kind = net::RequestKind::Get;
  r.path = path;
  return r;
}

std::vector<int> all_but(const Cluster& cluster, int excluded) {
  std::vector<int> out;
  for (int i = 0; i < cluster.size(); ++i) {
    if (i != excluded) out.push_back(i);
  }
  return out;
}

net::ClientOptions options_of(const Cluster& cluster, const std::vector<int>& members, std::chrono::milliseconds timeout) {
  net::ClientOptions o;
  for (int i : members) o.endpoints.push_back(cluster.client_address(i));
  o.timeout = timeout;
  return o;
}

// Continues a stopped member whatever happens to the test, so that its SIGTERM is not held up.
struct Continue {
  e2e::Process& process;
  ~Continue() { process.signal(SIGCONT); }
};

}  // namespace

TEST_CASE("a leader paused past the election timeout steps down on waking and never serves a stale read") {
  Cluster cluster(3, kFastArgs);
  REQUIRE_MESSAGE(cluster.start_all(), cluster.all_logs());
  std::optional<int> leader;
  REQUIRE_MESSAGE(eventually(15s, [&] { return (leader = cluster.agreed_leader({0, 1, 2})).has_value(); }),
                  cluster.all_logs());
  const int paused = *leader;
  {
    net::Client writer(cluster.options(15s));
    REQUIRE(put(writer, "/x", "old").ok());
  }

  Continue guard{cluster.process(paused)};
  cluster.process(paused).signal(SIGSTOP);
  const std::vector<int> survivors = all_but(cluster, paused);
  std::optional<int> new_leader;
  REQUIRE_MESSAGE(eventually(15s, [&] { return (new_leader = cluster.agreed_leader(survivors)).has_value(); }),
                  cluster.all_logs());
  net::Client writer(options_of(cluster, survivors, 15s));
  const net::ClientResponse wrote = put(writer, "/x", "new");
  REQUIRE_MESSAGE(wrote.ok(), wrote.message);

  // A read sent to the paused leader before it wakes: it is the first thing it sees, while it
  // still believes it leads.
  net::ClientResponse early;
  std::thread reader([&] {
    net::Client c = cluster.client_of(paused, 5s);
    early = c.call_endpoint(cluster.client_address(paused), get_request("/x"));
  });
  std::this_thread::sleep_for(300ms);
  cluster.process(paused).signal(SIGCONT);
  reader.join();
  if (early.ok()) {
    REQUIRE(early.node.has_value());
    CHECK_MESSAGE(early.node->value == "new", "stale read from the woken leader at revision " << early.revision);
  } else {
    MESSAGE("read sent while paused: ", net::to_string(early.error), ": ", early.message);
    CHECK(net::retryable(early.error));
  }

  // And reads right after waking: the newest value or an error, never "old".
  int served = 0;
  for (int k = 0; k < 20; ++k) {
    net::Client c = cluster.client_of(paused, 2s);
    const net::ClientResponse r = c.call_endpoint(cluster.client_address(paused), get_request("/x"));
    if (!r.ok()) continue;
    ++served;
    REQUIRE(r.node.has_value());
    CHECK_MESSAGE(r.node->value == "new", "stale read from the woken leader at revision " << r.revision);
  }
  MESSAGE(served, " of 20 reads right after waking were served");

  // It stepped down, follows the new leader, and serves the newest value through ReadIndex.
  REQUIRE_MESSAGE(eventually(10s, [&] {
    const auto s = cluster.status(paused);
    return s && s->role != "leader" && cluster.agreed_leader({0, 1, 2}) == new_leader;
  }),
                  cluster.all_logs());
  CHECK(eventually(10s, [&] {
    net::Client c = cluster.client_of(paused, 2s);
    const net::ClientResponse r = c.call_endpoint(cluster.client_address(paused), get_request("/x"));
    return r.ok() && r.node && r.node->value == "new";
  }));
}

TEST_CASE("a watch survives a kill -9 of the leader serving it without missing or repeating an event") {
  Cluster cluster(3, kFastArgs);
  REQUIRE_MESSAGE(cluster.start_all(), cluster.all_logs());
  std::optional<int> leader;
  REQUIRE_MESSAGE(eventually(15s, [&] { return (leader = cluster.agreed_leader({0, 1, 2})).has_value(); }),
                  cluster.all_logs());
  const int killed = *leader;

  net::Client setup(cluster.options(15s));
  const net::ClientResponse root = put(setup, "/wk", "");
  REQUIRE(root.ok());
  const kv::Revision start = root.result->revision + 1;

  // The watch is served by the leader first: it is the first endpoint.
  std::vector<int> order{killed};
  for (int i : all_but(cluster, killed)) order.push_back(i);
  net::Client watcher_client(options_of(cluster, order, 15s));
  net::WatchOptions w;
  w.kind = kv::WatchKind::Subtree;
  w.path = "/wk";
  w.start_revision = start;
  w.idle_timeout = 3s;
  net::WatchStream stream = watcher_client.watch(w);

  // The first wait opens the stream (there is nothing to deliver yet).
  const auto first = stream.next(1s);
  REQUIRE_FALSE(first.has_value());
  REQUIRE(stream.endpoint() == cluster.client_address(killed));

  std::mutex mu;
  std::vector<kv::Event> seen;
  std::atomic<kv::Revision> progress{0};
  std::atomic<bool> stop{false};
  std::string ended;
  std::thread consumer([&] {
    const auto deadline = e2e::Clock::now() + 60s;
    while (!stop && e2e::Clock::now() < deadline) {
      const auto update = stream.next(200ms);
      if (!update) continue;
      std::lock_guard<std::mutex> lock(mu);
      if (update->ended) {
        ended = update->message;
        return;
      }
      seen.insert(seen.end(), update->events.begin(), update->events.end());
      progress = update->progress_revision;
    }
  });

  // Writers: creates of distinct keys, so each applied write is exactly one event, and the
  // final state says which writes applied (including those whose answer was lost).
  constexpr int writers = 3;
  constexpr int writes_each = 60;
  std::vector<std::thread> threads;
  std::atomic<int> written{0};
  std::vector<std::vector<std::string>> acked(writers);
  for (int t = 0; t < writers; ++t) {
    threads.emplace_back([&, t] {
      net::Client c(cluster.options(20s));
      for (int k = 0; k < writes_each; ++k) {
        const std::string path = fmt::format("/wk/w{}-{:03}", t, k);
        const net::ClientResponse r = c.write(kv::single(kv::Op::create(path, fmt::format("{}", k))));
        if (r.ok()) acked[static_cast<std::size_t>(t)].push_back(path);
        ++written;
      }
    });
  }
  REQUIRE(eventually(20s, [&] { return written.load() >= writers * writes_each / 3; }));
  cluster.kill9(killed);
  for (auto& t : threads) t.join();

  // Everything that applied, as the surviving members have it.
  std::set<std::string> applied;
  kv::Revision final_revision = 0;
  {
    net::Client reader(options_of(cluster, all_but(cluster, killed), 15s));
    std::string start_after;
    for (;;) {
      net::ClientRequest list;
      list.kind = net::RequestKind::List;
      list.path = "/wk";
      list.start_after = start_after;
      list.revision = final_revision;
      const net::ClientResponse r = reader.call(list);
      REQUIRE_MESSAGE(r.ok(), r.message);
      final_revision = r.revision;
      for (const std::string& name : r.names) applied.insert("/wk/" + name);
      if (!r.more || r.names.empty()) break;
      start_after = r.names.back();
    }
  }
  for (const auto& mine : acked) {
    for (const std::string& path : mine) CHECK_MESSAGE(applied.count(path) == 1, "acknowledged but not applied: " << path);
  }

  REQUIRE_MESSAGE(eventually(30s, [&] { return progress.load() >= final_revision; }),
                  "watch progress " << progress.load() << " of " << final_revision << "\n" << cluster.all_logs());
  stop = true;
  consumer.join();
  CHECK_MESSAGE(ended.empty(), ended);
  CHECK(stream.resumes() >= 1);

  // Exactly the applied writes, once each, in revision order, one revision after another.
  std::lock_guard<std::mutex> lock(mu);
  std::set<std::string> events;
  kv::Revision previous = start - 1;
  for (const kv::Event& e : seen) {
    CHECK(e.type == kv::EventType::Created);
    CHECK_MESSAGE(events.insert(e.path).second, "repeated event for " << e.path << " at " << e.revision);
    CHECK_MESSAGE(e.revision == previous + 1, "gap or reorder: " << previous << " then " << e.revision);
    previous = e.revision;
  }
  CHECK(previous == final_revision);
  CHECK(events == applied);
  MESSAGE(seen.size(), " events, ", stream.resumes(), " resume(s), final revision ", final_revision);
}
