// The replica host without sockets: a one-member cluster driven tick by tick with the log write
// run inline, through writes, reads, snapshots and a restart from the data directory.
#include <fmt/format.h>
#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "kv/codec.h"
#include "net/cluster_config.h"
#include "net/os_random.h"
#include "net/replica_host.h"

namespace {

using namespace coord;

class Recorder final : public net::HostOutput {
 public:
  void send(const raft::Message& message) override { sent.push_back(message); }
  void respond(net::ConnectionId connection, const net::ClientResponse& response) override {
    responses[response.id] = response;
    (void)connection;
  }
  void fatal(const std::string& reason) override { fatal_reason = reason; }

  std::vector<raft::Message> sent;
  std::map<std::uint64_t, net::ClientResponse> responses;
  std::string fatal_reason;
};

struct Fixture {
  Fixture() {
    spdlog::set_level(spdlog::level::warn);  // the host logs every role change at info
    char tmpl[] = "/tmp/coord-host-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    std::string error;
    cluster = *net::parse_initial_cluster("n1=127.0.0.1:1", "", &error);
    options.snapshot_every_entries = 5;
  }
  ~Fixture() { std::filesystem::remove_all(dir); }

  std::unique_ptr<net::ReplicaHost> open() {
    return std::make_unique<net::ReplicaHost>(options, cluster, cluster.members[0], "127.0.0.1:2", dir, random,
                                              output, disk);
  }
  void elect(net::ReplicaHost& host) {
    for (int t = 0; t < 100 && host.node().role() != raft::Role::Leader; ++t) {
      host.tick();
      host.pump();
    }
    REQUIRE(host.node().role() == raft::Role::Leader);
    host.pump();
  }
  net::ClientResponse call(net::ReplicaHost& host, net::ClientRequest request) {
    request.id = next_id++;
    host.request(1, request);
    host.pump();
    REQUIRE(output.responses.count(request.id) == 1);
    return output.responses[request.id];
  }
  net::ClientResponse put(net::ReplicaHost& host, const std::string& path, const std::string& value) {
    kv::Command command;
    command.session_id = 9;
    command.sequence = next_sequence++;
    command.body = kv::single(kv::Op::put(path, value));
    net::ClientRequest r;
    r.kind = net::RequestKind::Write;
    r.command = kv::encode_command(command);
    return call(host, r);
  }
  net::ClientResponse get(net::ReplicaHost& host, const std::string& path, bool serializable = false) {
    net::ClientRequest r;
    r.kind = net::RequestKind::Get;
    r.path = path;
    r.serializable = serializable;
    return call(host, r);
  }

  std::string dir;
  net::ClusterConfig cluster;
  net::HostOptions options;
  net::OsRandom random;
  Recorder output;
  net::InlineExecutor disk;
  std::uint64_t next_id = 1;
  std::uint64_t next_sequence = 1;
};

}  // namespace

TEST_CASE("a one-member host answers writes and reads, snapshots, and restarts from its data dir") {
  Fixture f;
  {
    auto host = f.open();
    f.elect(*host);
    for (int k = 0; k < 12; ++k) {
      const net::ClientResponse r = f.put(*host, fmt::format("/k{}", k), fmt::format("v{}", k));
      REQUIRE_MESSAGE(r.ok(), r.message);
      REQUIRE(r.result.has_value());
      CHECK(r.result->revision == static_cast<kv::Revision>(k + 1));
    }
    const net::ClientResponse got = f.get(*host, "/k3");
    REQUIRE(got.ok());
    CHECK(got.node->value == "v3");
    CHECK(f.get(*host, "/nope").error == net::ErrorCode::NotFound);
    // Every 5 applied entries the log is compacted behind a snapshot of the state.
    CHECK(host->node().snapshot_meta().index >= 10);
    CHECK(f.output.fatal_reason.empty());
  }
  auto host = f.open();
  // Before any election the state is already there for serializable reads.
  const net::ClientResponse early = f.get(*host, "/k11", /*serializable=*/true);
  REQUIRE(early.ok());
  CHECK(early.node->value == "v11");
  f.elect(*host);
  const net::ClientResponse r = f.put(*host, "/after", "restart");
  REQUIRE(r.ok());
  CHECK(r.result->revision == 13);
}

TEST_CASE("a retried write with the same session and sequence is applied once") {
  Fixture f;
  auto host = f.open();
  f.elect(*host);
  kv::Command command;
  command.session_id = 77;
  command.sequence = 1;
  command.body = kv::single(kv::Op::create_sequential("/q-", "x"));
  net::ClientRequest r;
  r.kind = net::RequestKind::Write;
  r.command = kv::encode_command(command);
  const net::ClientResponse first = f.call(*host, r);
  const net::ClientResponse again = f.call(*host, r);
  REQUIRE(first.ok());
  REQUIRE(again.ok());
  CHECK(first.result->ops[0].path == "/q-0000000000");
  CHECK(again.result->ops[0].path == "/q-0000000000");  // the remembered result, not a new node
  CHECK(again.result->revision == first.result->revision);
}

TEST_CASE("malformed and forbidden writes never reach the log") {
  Fixture f;
  auto host = f.open();
  f.elect(*host);
  const raft::Index before = host->node().log().last_index();
  net::ClientRequest garbage;
  garbage.kind = net::RequestKind::Write;
  garbage.command = "not a command";
  CHECK(f.call(*host, garbage).error == net::ErrorCode::InvalidRequest);
  kv::Command expire;
  expire.body = kv::LeaseExpire{1, 0};
  net::ClientRequest forged;
  forged.kind = net::RequestKind::Write;
  forged.command = kv::encode_command(expire);
  CHECK(f.call(*host, forged).error == net::ErrorCode::InvalidRequest);
  CHECK(host->node().log().last_index() == before);
}

TEST_CASE("a follower that knows no leader answers Unavailable, and status still works") {
  Fixture f;
  std::string error;
  f.cluster = *net::parse_initial_cluster("n1=127.0.0.1:1,n2=127.0.0.1:2,n3=127.0.0.1:3", "", &error);
  auto host = f.open();
  kv::Command command;
  command.body = kv::single(kv::Op::put("/a", "b"));
  net::ClientRequest w;
  w.kind = net::RequestKind::Write;
  w.command = kv::encode_command(command);
  CHECK(f.call(*host, w).error == net::ErrorCode::Unavailable);
  net::ClientRequest status;
  status.kind = net::RequestKind::Status;
  const net::ClientResponse s = f.call(*host, status);
  REQUIRE(s.status.has_value());
  CHECK(s.status->role == "follower");
  CHECK(s.status->id == 1);
}
