// End-to-end: three coordd processes on 127.0.0.1, driven through the client library.
// Fast ticks (50 ms, election after 10-20 ticks) keep failover within a second or two; every
// wait is bounded, and a failed wait prints the members' log tails.
#include <fmt/format.h>
#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "e2e_cluster.h"
#include "kv/codec.h"
#include "kv/command.h"

namespace {

using namespace coord;
using namespace std::chrono_literals;
using e2e::Cluster;
using e2e::eventually;

// Small snapshots so that a member that was down catches up through a snapshot transfer.
const std::vector<std::string> kFastArgs{"--tick-ms", "50", "--election-ticks", "10", "--snapshot-every", "25",
                                         "--snapshot-log-ratio", "0",
                                         "--log-level", "debug"};

net::ClientResponse put(net::Client& client, const std::string& path, const std::string& value) {
  kv::Op op = kv::Op::put(path, value);
  op.parents = true;
  return client.write(kv::single(std::move(op)));
}

net::ClientResponse get(net::Client& client, const std::string& path, bool serializable = false) {
  net::ClientRequest r;
  r.kind = net::RequestKind::Get;
  r.path = path;
  r.serializable = serializable;
  return client.call(r);
}

std::string value_of(const net::ClientResponse& r) { return r.ok() && r.node ? r.node->value : fmt::format("<{}: {}>", net::to_string(r.error), r.message); }

std::vector<int> all_but(const Cluster& cluster, int excluded) {
  std::vector<int> out;
  for (int i = 0; i < cluster.size(); ++i) {
    if (i != excluded) out.push_back(i);
  }
  return out;
}

std::vector<int> all(const Cluster& cluster) { return all_but(cluster, -1); }

}  // namespace

TEST_CASE("writes through the leader are read back linearizably on every member") {
  Cluster cluster(3, kFastArgs);
  REQUIRE_MESSAGE(cluster.start_all(), cluster.all_logs());
  REQUIRE_MESSAGE(eventually(15s, [&] { return cluster.agreed_leader(all(cluster)).has_value(); }), cluster.all_logs());

  net::Client writer(cluster.options());
  std::map<std::string, std::string> written;
  for (int k = 0; k < 40; ++k) {
    const std::string path = fmt::format("/e2e/key{}", k);
    const std::string value = fmt::format("value-{}", k);
    const net::ClientResponse r = put(writer, path, value);
    REQUIRE_MESSAGE(r.ok(), net::to_string(r.error) << ": " << r.message << "\n" << cluster.all_logs());
    written[path] = value;
  }
  // A linearizable read on any member sees every acknowledged write: no waiting for followers.
  for (int i = 0; i < cluster.size(); ++i) {
    net::Client reader = cluster.client_of(i);
    for (const auto& entry : written) {  // (no structured binding: the message's lambda names it)
      CHECK_MESSAGE(value_of(get(reader, entry.first)) == entry.second, cluster.name(i) << " " << entry.first);
    }
  }
  // The client port answers status and member list on every member.
  for (int i = 0; i < cluster.size(); ++i) {
    const auto status = cluster.status(i);
    REQUIRE(status.has_value());
    CHECK(status->name == cluster.name(i));
    CHECK(status->applied >= written.size());
  }
  net::Client any(cluster.options());
  net::ClientRequest members;
  members.kind = net::RequestKind::MemberList;
  const net::ClientResponse m = any.call(members);
  REQUIRE(m.ok());
  REQUIRE(m.members.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(m.members[static_cast<std::size_t>(i)].name == cluster.name(i));
    CHECK(m.members[static_cast<std::size_t>(i)].voter);
  }
}

TEST_CASE("a write sent to a follower is forwarded to the leader, keeping its session and sequence") {
  Cluster cluster(3, kFastArgs);
  REQUIRE_MESSAGE(cluster.start_all(), cluster.all_logs());
  std::optional<int> leader;
  REQUIRE_MESSAGE(eventually(15s, [&] { return (leader = cluster.agreed_leader(all(cluster))).has_value(); }),
                  cluster.all_logs());
  const int follower = (*leader + 1) % cluster.size();
  const int other = (*leader + 2) % cluster.size();
  // The follower learns the leader's client address from its hello; until then it answers
  // NotLeader (or Unavailable) and the client retries.
  net::Client via_follower = cluster.client_of(follower, 10s);
  const net::ClientResponse r = put(via_follower, "/via-follower", "ok");
  REQUIRE_MESSAGE(r.ok(), net::to_string(r.error) << ": " << r.message << "\n" << cluster.all_logs());
  CHECK(via_follower.endpoint() == cluster.client_address(follower));  // answered there, not redirected
  CHECK(value_of(get(via_follower, "/via-follower")) == "ok");

  // One command (one session and sequence) sent through both followers and the leader: applied
  // once, and every copy answered with that one result.
  kv::Command command;
  command.session_id = 0xC0FFEE;
  command.sequence = 1;
  kv::Op op = kv::Op::create_sequential("/once/n-", "x");
  op.parents = true;
  command.body = kv::single(op);
  net::ClientRequest raw;
  raw.kind = net::RequestKind::Write;
  raw.command = kv::encode_command(command);
  std::vector<net::ClientResponse> answers;
  for (int i : {follower, other, *leader, follower}) {
    net::Client c = cluster.client_of(i, 10s);
    answers.push_back(c.call(raw));
    REQUIRE_MESSAGE(answers.back().ok(), cluster.name(i) << ": " << answers.back().message);
  }
  for (const net::ClientResponse& a : answers) {
    CHECK(a.result->ops.at(0).path == "/once/n-0000000000");
    CHECK(a.result->revision == answers.front().result->revision);
  }
  net::ClientRequest list;
  list.kind = net::RequestKind::List;
  list.path = "/once";
  const net::ClientResponse listed = via_follower.call(list);
  REQUIRE(listed.ok());
  CHECK(listed.names.size() == 1);

  // A request that was forwarded once is not forwarded again: the follower says where to go.
  raw.forwarded = true;
  command.sequence = 2;
  raw.command = kv::encode_command(command);
  const net::ClientResponse refused = via_follower.call_endpoint(cluster.client_address(follower), raw);
  CHECK(refused.error == net::ErrorCode::NotLeader);
  REQUIRE(refused.leader.has_value());
  CHECK(refused.leader->client_address == cluster.client_address(*leader));
}

TEST_CASE("--no-forward: a follower answers NotLeader with the leader's client address, and the client follows it") {
  std::vector<std::string> args = kFastArgs;
  args.push_back("--no-forward");
  Cluster cluster(3, args);
  REQUIRE_MESSAGE(cluster.start_all(), cluster.all_logs());
  std::optional<int> leader;
  REQUIRE_MESSAGE(eventually(15s, [&] { return (leader = cluster.agreed_leader(all(cluster))).has_value(); }),
                  cluster.all_logs());
  const int follower = (*leader + 1) % cluster.size();
  // The client follows the hint: a client configured with the follower only still succeeds.
  net::Client via_follower = cluster.client_of(follower);
  // The leader learns our client addresses from the peers' hellos; wait until the hint has one.
  REQUIRE(eventually(5s, [&] {
    kv::Op op = kv::Op::put("/hint", "x");
    net::ClientRequest raw;
    raw.kind = net::RequestKind::Write;
    kv::Command command;
    command.body = kv::single(op);
    raw.command = kv::encode_command(command);
    const net::ClientResponse r = via_follower.call_endpoint(cluster.client_address(follower), raw);
    return r.error == net::ErrorCode::NotLeader && r.leader && r.leader->client_address == cluster.client_address(*leader);
  }));
  const net::ClientResponse r = put(via_follower, "/via-follower", "ok");
  CHECK_MESSAGE(r.ok(), net::to_string(r.error) << ": " << r.message);
  CHECK(via_follower.endpoint() == cluster.client_address(*leader));
}

TEST_CASE("kill -9 of the leader: a new leader, no acknowledged write lost, the member restarts and catches up") {
  Cluster cluster(3, kFastArgs);
  REQUIRE_MESSAGE(cluster.start_all(), cluster.all_logs());
  std::optional<int> leader;
  REQUIRE_MESSAGE(eventually(15s, [&] { return (leader = cluster.agreed_leader(all(cluster))).has_value(); }),
                  cluster.all_logs());

  net::Client writer(cluster.options(15s));
  std::map<std::string, std::string> acked;
  for (int k = 0; k < 30; ++k) {
    const std::string path = fmt::format("/before/k{}", k);
    const net::ClientResponse r = put(writer, path, fmt::format("v{}", k));
    REQUIRE_MESSAGE(r.ok(), net::to_string(r.error) << ": " << r.message);
    acked[path] = fmt::format("v{}", k);
  }

  const int killed = *leader;
  cluster.kill9(killed);
  const auto killed_at = e2e::Clock::now();
  const std::vector<int> survivors = all_but(cluster, killed);
  std::optional<int> new_leader;
  // Election timeout is 10-20 ticks of 50 ms; "a few election timeouts" is a generous 10 s.
  REQUIRE_MESSAGE(eventually(10s, [&] { return (new_leader = cluster.agreed_leader(survivors)).has_value(); }),
                  cluster.all_logs());
  CHECK(*new_leader != killed);
  MESSAGE("new leader ", cluster.name(*new_leader), " after ",
          std::chrono::duration_cast<std::chrono::milliseconds>(e2e::Clock::now() - killed_at).count(), " ms");

  // Writes go on with two of three; enough of them that the leader compacts its log past where
  // the killed member stopped, so it must catch up from a snapshot.
  for (int k = 0; k < 60; ++k) {
    const std::string path = fmt::format("/during/k{}", k);
    const net::ClientResponse r = put(writer, path, fmt::format("d{}", k));
    REQUIRE_MESSAGE(r.ok(), net::to_string(r.error) << ": " << r.message << "\n" << cluster.all_logs());
    acked[path] = fmt::format("d{}", k);
  }
  for (int i : survivors) {
    net::Client reader = cluster.client_of(i);
    for (const auto& entry : acked) {
      CHECK_MESSAGE(value_of(get(reader, entry.first)) == entry.second, cluster.name(i) << " " << entry.first);
    }
  }

  // The killed member restarts from its data directory and catches up.
  cluster.start(killed);
  std::uint64_t leader_applied = 0;
  REQUIRE(eventually(5s, [&] {
    const auto s = cluster.status(*new_leader);
    if (s) leader_applied = s->applied;
    return s.has_value();
  }));
  REQUIRE_MESSAGE(eventually(15s, [&] {
    const auto s = cluster.status(killed);
    return s && s->applied >= leader_applied;
  }),
                  cluster.all_logs());
  // Served from its own state: exactly what was acknowledged.
  net::Client restarted = cluster.client_of(killed);
  for (const auto& entry : acked) {
    CHECK_MESSAGE(value_of(get(restarted, entry.first, /*serializable=*/true)) == entry.second, entry.first);
  }
  CHECK(cluster.log_tail(killed, 100000).find("snapshot installed") != std::string::npos);
  // What it received went to a snapshot file of its own (storage/snapshot_file.h), which its log
  // records: exactly one, and no unfinished one left behind.
  std::vector<std::string> snapshot_files;
  for (const auto& e : std::filesystem::directory_iterator(cluster.data_dir(killed) + "/raft")) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("snap-")) snapshot_files.push_back(name);
  }
  REQUIRE(snapshot_files.size() == 1);
  CHECK(snapshot_files[0].ends_with(".snap"));
  CHECK(std::filesystem::file_size(cluster.data_dir(killed) + "/raft/" + snapshot_files[0]) > 0);
}

TEST_CASE("a stopped cluster restarts from its data directories with everything it acknowledged") {
  Cluster cluster(3, kFastArgs);
  REQUIRE_MESSAGE(cluster.start_all(), cluster.all_logs());
  net::Client writer(cluster.options(15s));
  for (int k = 0; k < 30; ++k) REQUIRE(put(writer, fmt::format("/r/k{}", k), fmt::format("v{}", k)).ok());
  for (int i = 0; i < cluster.size(); ++i) {
    cluster.stop(i);  // SIGTERM: a clean stop
    CHECK(cluster.process(i).status() == 0);
  }
  for (int i = 0; i < cluster.size(); ++i) cluster.start(i);
  net::Client reader(cluster.options(15s));
  for (int k = 0; k < 30; ++k) CHECK(value_of(get(reader, fmt::format("/r/k{}", k))) == fmt::format("v{}", k));
  // The revision kept counting from where it was.
  const net::ClientResponse r = put(reader, "/r/after", "x");
  REQUIRE(r.ok());
  CHECK(r.result->revision > 30);
}

TEST_CASE("kill -9 of every member: after the restart every acknowledged write is there, applied once") {
  // The state machines commit without fsync (net/state_sync_marker.h); the Raft log is the
  // durable record they replay after a crash. Writes run up to the moment of the kills.
  Cluster cluster(3, kFastArgs);
  REQUIRE_MESSAGE(cluster.start_all(), cluster.all_logs());
  REQUIRE_MESSAGE(eventually(15s, [&] { return cluster.agreed_leader(all(cluster)).has_value(); }), cluster.all_logs());
  constexpr int writers = 4;
  std::vector<std::thread> threads;
  std::vector<std::vector<int>> acked(writers);  // per writer: sequence numbers acknowledged
  std::atomic<bool> stop{false};
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      net::ClientOptions o = cluster.options(2s);
      o.attempt_timeout = 1s;
      net::Client client(o);
      for (int k = 0; k < 2000 && !stop; ++k) {
        // A sequential create: a write lost or applied twice shows in the children's count.
        kv::Op op = kv::Op::create_sequential(fmt::format("/kill/w{}/n-", w), fmt::format("{}", k));
        op.parents = true;
        if (client.write(kv::single(op)).ok()) acked[static_cast<std::size_t>(w)].push_back(k);
      }
    });
  }
  std::this_thread::sleep_for(1500ms);
  for (int i = 0; i < cluster.size(); ++i) cluster.kill9(i);
  stop = true;
  for (auto& t : threads) t.join();
  std::size_t total = 0;
  for (const auto& a : acked) total += a.size();
  MESSAGE(total, " writes acknowledged before the kills");
  REQUIRE(total > 0);

  for (int i = 0; i < cluster.size(); ++i) cluster.start(i);
  REQUIRE_MESSAGE(eventually(15s, [&] { return cluster.agreed_leader(all(cluster)).has_value(); }), cluster.all_logs());
  net::Client reader(cluster.options(15s));
  for (int w = 0; w < writers; ++w) {
    // Every acknowledged value is a child (unacknowledged ones may be too: their outcome was
    // unknown), and none appears twice.
    std::multiset<std::string> values;
    std::string after;
    for (;;) {
      net::ClientRequest r;
      r.kind = net::RequestKind::Range;
      r.path = fmt::format("/kill/w{}", w);
      r.start_after = after;
      const net::ClientResponse page = reader.call(r);
      REQUIRE_MESSAGE(page.ok(), net::to_string(page.error) << ": " << page.message);
      for (const auto& node : page.nodes) {
        if (node.path != r.path) values.insert(node.node.value);
      }
      if (!page.more || page.nodes.empty()) break;
      after = page.nodes.back().path;
    }
    for (int k : acked[static_cast<std::size_t>(w)]) {
      CHECK_MESSAGE(values.count(fmt::format("{}", k)) == 1, "w" << w << " write " << k);
    }
    for (const std::string& v : values) CHECK_MESSAGE(values.count(v) == 1, "w" << w << " value " << v << " twice");
  }
}

TEST_CASE("concurrent writers: every acknowledged write is applied once, on every member") {
  Cluster cluster(3, kFastArgs);
  REQUIRE_MESSAGE(cluster.start_all(), cluster.all_logs());
  REQUIRE_MESSAGE(eventually(15s, [&] { return cluster.agreed_leader(all(cluster)).has_value(); }), cluster.all_logs());
  constexpr int writers = 8;
  constexpr int writes_each = 40;
  std::vector<std::thread> threads;
  std::vector<int> failures(writers, 0);
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      net::Client client(cluster.options(15s));
      for (int k = 0; k < writes_each; ++k) {
        // Each writer appends to its own counter node: a lost or doubled write shows in the count.
        kv::Op op = kv::Op::create_sequential(fmt::format("/c/w{}/n-", w), "x");
        op.parents = true;
        if (!client.write(kv::single(op)).ok()) ++failures[static_cast<std::size_t>(w)];
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int w = 0; w < writers; ++w) REQUIRE(failures[static_cast<std::size_t>(w)] == 0);
  for (int i = 0; i < cluster.size(); ++i) {
    net::Client reader = cluster.client_of(i);
    for (int w = 0; w < writers; ++w) {
      net::ClientRequest r;
      r.kind = net::RequestKind::List;
      r.path = fmt::format("/c/w{}", w);
      const net::ClientResponse listed = reader.call(r);
      REQUIRE(listed.ok());
      CHECK_MESSAGE(listed.names.size() == writes_each, cluster.name(i) << " w" << w);
    }
  }
}
