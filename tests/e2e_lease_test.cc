// End-to-end leases on real coordd processes: an unrenewed lease expires no sooner than its TTL
// and takes its ephemeral keys with it in one revision; keep-alives keep them, across a kill -9
// of the leader too; revoke deletes them at once, in one revision.
#include <fmt/format.h>
#include <doctest/doctest.h>

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

kv::LeaseId grant(net::Client& client, std::uint64_t ttl_ms) {
  const net::ClientResponse r = client.write(kv::LeaseGrant{0, ttl_ms});
  REQUIRE_MESSAGE(r.ok(), r.message);
  return r.result->lease.lease.id;
}

net::ClientResponse create(net::Client& client, const std::string& path, kv::LeaseId lease) {
  return client.write(kv::single(kv::Op::create(path, "ephemeral", lease)));
}

bool exists(net::Client& client, const std::string& path) {
  net::ClientRequest r;
  r.kind = net::RequestKind::Get;
  r.path = path;
  const net::ClientResponse got = client.call(r);
  REQUIRE_MESSAGE((got.ok() || got.error == net::ErrorCode::NotFound), got.message);
  return got.ok();
}

// Deleted events seen by `stream` within `timeout`.
std::vector<kv::Event> deletions(net::WatchStream& stream, std::size_t count, std::chrono::milliseconds timeout) {
  std::vector<kv::Event> out;
  const auto deadline = e2e::Clock::now() + timeout;
  while (out.size() < count && e2e::Clock::now() < deadline) {
    const auto update = stream.next(200ms);
    if (!update) continue;
    REQUIRE_MESSAGE(!update->ended, update->message);
    for (const kv::Event& e : update->events) {
      if (e.type == kv::EventType::Deleted) out.push_back(e);
    }
  }
  return out;
}

struct Fixture {
  Fixture() {
    REQUIRE_MESSAGE(cluster.start_all(), cluster.all_logs());
    REQUIRE_MESSAGE(eventually(15s, [&] { return (leader = cluster.agreed_leader({0, 1, 2})).has_value(); }),
                    cluster.all_logs());
  }
  Cluster cluster{3, kFastArgs};
  std::optional<int> leader;
};

}  // namespace

TEST_CASE("an unrenewed lease expires no sooner than its TTL and deletes its keys in one revision") {
  Fixture f;
  net::Client client(f.cluster.options(15s));
  REQUIRE(client.write(kv::single(kv::Op::put("/eph", ""))).ok());
  net::WatchOptions w;
  w.kind = kv::WatchKind::Subtree;
  w.path = "/eph";
  net::WatchStream stream = client.watch(w);
  (void)stream.next(500ms);  // opened from now on

  const auto granted_at = e2e::Clock::now();
  const kv::LeaseId lease = grant(client, 1'000);
  REQUIRE(create(client, "/eph/a", lease).ok());
  REQUIRE(create(client, "/eph/b", lease).ok());
  const net::ClientResponse ttl = client.lease_ttl(lease);
  REQUIRE_MESSAGE(ttl.ok(), ttl.message);
  REQUIRE(ttl.lease.has_value());
  CHECK(ttl.lease->ttl_ms == 1'000);
  CHECK(ttl.lease->remaining_ms <= 1'000);
  CHECK(ttl.lease->keys == std::vector<std::string>{"/eph/a", "/eph/b"});

  const std::vector<kv::Event> gone = deletions(stream, 2, 15s);
  const auto deleted_after = e2e::Clock::now() - granted_at;
  REQUIRE_MESSAGE(gone.size() == 2, f.cluster.all_logs());
  CHECK(gone[0].path == "/eph/a");
  CHECK(gone[1].path == "/eph/b");
  CHECK(gone[0].revision == gone[1].revision);
  CHECK(deleted_after >= 1'000ms);
  CHECK_FALSE(exists(client, "/eph/a"));
  CHECK_FALSE(exists(client, "/eph/b"));
  CHECK(exists(client, "/eph"));
  CHECK(client.lease_ttl(lease).error == net::ErrorCode::LeaseNotFound);
  CHECK(client.write(kv::LeaseKeepAlive{lease}).error == net::ErrorCode::LeaseNotFound);
}

TEST_CASE("keep-alives keep a lease and its keys, across a kill -9 of the leader") {
  Fixture f;
  net::Client client(f.cluster.options(15s));
  const kv::LeaseId lease = grant(client, 3'000);
  REQUIRE(create(client, "/kept", lease).ok());
  auto keep_alive_for = [&](std::chrono::milliseconds how_long) {
    const auto until = e2e::Clock::now() + how_long;
    std::uint64_t count = 0;
    while (e2e::Clock::now() < until) {
      const net::ClientResponse r = client.write(kv::LeaseKeepAlive{lease});
      REQUIRE_MESSAGE(r.ok(), net::to_string(r.error) << ": " << r.message);
      count = r.result->lease.lease.keepalives;
      std::this_thread::sleep_for(500ms);
    }
    return count;
  };
  CHECK(keep_alive_for(4s) >= 4);
  CHECK(exists(client, "/kept"));

  f.cluster.kill9(*f.leader);
  keep_alive_for(6s);  // the client finds the new leader; its countdowns start over
  CHECK(exists(client, "/kept"));
  const net::ClientResponse ttl = client.lease_ttl(lease);
  REQUIRE_MESSAGE(ttl.ok(), ttl.message);
  CHECK(ttl.lease->remaining_ms <= 3'000);
  CHECK(ttl.lease->keys == std::vector<std::string>{"/kept"});

  // Left alone now, it expires.
  CHECK(eventually(20s, [&] { return !exists(client, "/kept"); }));
}

TEST_CASE("revoke deletes every key of the lease at once, in one revision") {
  Fixture f;
  net::Client client(f.cluster.options(15s));
  REQUIRE(client.write(kv::single(kv::Op::put("/r", ""))).ok());
  const kv::LeaseId lease = grant(client, 60'000);
  REQUIRE(create(client, "/r/a", lease).ok());
  const net::ClientResponse last = create(client, "/r/b", lease);
  REQUIRE(last.ok());
  net::WatchOptions w;
  w.kind = kv::WatchKind::Children;
  w.path = "/r";
  w.start_revision = last.result->revision + 1;
  net::WatchStream stream = client.watch(w);

  const net::ClientResponse revoked = client.write(kv::LeaseRevoke{lease});
  REQUIRE_MESSAGE(revoked.ok(), revoked.message);
  CHECK(revoked.result->lease.deleted == std::vector<std::string>{"/r/a", "/r/b"});
  CHECK(revoked.result->revision == last.result->revision + 1);
  CHECK_FALSE(exists(client, "/r/a"));
  CHECK_FALSE(exists(client, "/r/b"));
  const std::vector<kv::Event> gone = deletions(stream, 2, 10s);
  REQUIRE(gone.size() == 2);
  CHECK(gone[0].revision == revoked.result->revision);
  CHECK(gone[1].revision == revoked.result->revision);
  CHECK(client.lease_ttl(lease).error == net::ErrorCode::LeaseNotFound);
}
