// End-to-end: runtime membership with real coordd processes on 127.0.0.1. A fourth member is
// added as a learner to a running three-member cluster whose log was compacted (so it catches
// up from a snapshot and learns the other members from their hellos), promoted, an original
// member (the leader) is removed, and the new member restarts from its data directory still a
// member. Bad requests get their stable error codes.
#include <fmt/format.h>
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "e2e_cluster.h"
#include "kv/command.h"
#include "net/member_table.h"

namespace {

using namespace coord;
using namespace std::chrono_literals;
using e2e::Cluster;
using e2e::eventually;

// Small snapshots: the leader has compacted its log before the new member joins.
const std::vector<std::string> kFastArgs{"--tick-ms", "50", "--election-ticks", "10", "--snapshot-every", "20",
                                         "--log-level", "debug"};

net::ClientResponse put(net::Client& client, const std::string& path, const std::string& value) {
  kv::Op op = kv::Op::put(path, value);
  op.parents = true;
  return client.write(kv::single(std::move(op)));
}

std::string read(net::Client& client, const std::string& path, bool serializable) {
  net::ClientRequest r;
  r.kind = net::RequestKind::Get;
  r.path = path;
  r.serializable = serializable;
  const net::ClientResponse answer = client.call(r);
  return answer.ok() && answer.node ? answer.node->value : fmt::format("<{}>", net::to_string(answer.error));
}

net::ClientResponse change(net::Client& client, net::RequestKind kind, const std::string& name,
                           const std::string& peer = "", bool learner = false) {
  net::ClientRequest r;
  r.kind = kind;
  r.member_name = name;
  r.peer_address = peer;
  r.learner = learner;
  return client.call(r);
}

std::vector<net::MemberInfo> members(net::Client& client) {
  net::ClientRequest r;
  r.kind = net::RequestKind::MemberList;
  const net::ClientResponse answer = client.call(r);
  return answer.ok() ? answer.members : std::vector<net::MemberInfo>{};
}

const net::MemberInfo* find(const std::vector<net::MemberInfo>& list, const std::string& name) {
  auto it = std::find_if(list.begin(), list.end(), [&](const net::MemberInfo& m) { return m.name == name; });
  return it == list.end() ? nullptr : &*it;
}

std::string describe(const std::vector<net::MemberInfo>& list) {
  std::string out;
  for (const auto& m : list) {
    out += fmt::format("[{} id={} peer={} {}{}] ", m.name, m.id, m.peer_address,
                       m.voter ? "voter" : (m.learner ? "learner" : "-"), m.leader ? " leader" : "");
  }
  return out;
}

// The fourth member, started as `coordctl member add` says: join mode, the cluster's token.
struct NewMember {
  std::string dir;
  std::string peer = fmt::format("127.0.0.1:{}", e2e::free_port());
  std::string client = fmt::format("127.0.0.1:{}", e2e::free_port());
  std::unique_ptr<e2e::Process> process;

  void start(const std::string& token, const std::string& initial_cluster) {
    std::vector<std::string> argv{COORDD_PATH, "--name", "n4", "--data-dir", dir + "/n4", "--listen-peer", peer,
                                  "--listen-client", client, "--initial-cluster-state", "existing",
                                  "--cluster-token", token, "--initial-cluster", initial_cluster};
    argv.insert(argv.end(), kFastArgs.begin(), kFastArgs.end());
    process = std::make_unique<e2e::Process>(argv, dir + "/n4.log");
  }
  std::string log() const {
    std::ifstream in(dir + "/n4.log");
    std::stringstream s;
    s << in.rdbuf();
    const std::string all = s.str();
    return all.size() > 6000 ? all.substr(all.size() - 6000) : all;
  }
  net::Client client_of() const {
    net::ClientOptions o;
    o.endpoints = {client};
    o.timeout = 2s;
    o.attempt_timeout = 1s;
    return net::Client(o);
  }
};

}  // namespace

TEST_CASE("membership: add a learner, promote it, remove the leader, restart the new member") {
  Cluster cluster(3, kFastArgs);
  REQUIRE_MESSAGE(cluster.start_all(), cluster.all_logs());
  REQUIRE_MESSAGE(eventually(15s, [&] { return cluster.agreed_leader({0, 1, 2}).has_value(); }), cluster.all_logs());
  net::Client client(cluster.options(20s));
  for (int k = 0; k < 45; ++k) REQUIRE(put(client, fmt::format("/m/k{}", k), fmt::format("v{}", k)).ok());

  NewMember n4;
  n4.dir = cluster.dir();
  const net::ClientResponse added = change(client, net::RequestKind::MemberAdd, "n4", n4.peer, true);
  REQUIRE_MESSAGE(added.ok(), net::to_string(added.error), ": ", added.message);
  REQUIRE(added.members.size() == 1);
  CHECK(added.members[0].name == "n4");
  CHECK(added.members[0].id == net::member_id_for_name("n4"));
  CHECK(added.members[0].learner);
  CHECK_FALSE(added.members[0].voter);
  REQUIRE_FALSE(added.cluster.empty());

  // Bad requests, each with its own stable code.
  CHECK(change(client, net::RequestKind::MemberAdd, "n4", n4.peer, true).error == net::ErrorCode::MemberExists);
  CHECK(change(client, net::RequestKind::MemberAdd, "n5", cluster.peer_address(1)).error ==
        net::ErrorCode::MemberExists);  // n2's peer address
  CHECK(change(client, net::RequestKind::MemberAdd, "bad name!", "127.0.0.1:1").error ==
        net::ErrorCode::InvalidRequest);
  CHECK(change(client, net::RequestKind::MemberAdd, "n5", "not-an-address").error == net::ErrorCode::InvalidRequest);
  CHECK(change(client, net::RequestKind::MemberPromote, "nobody").error == net::ErrorCode::UnknownMember);
  CHECK(change(client, net::RequestKind::MemberRemove, "nobody").error == net::ErrorCode::UnknownMember);
  CHECK(change(client, net::RequestKind::MemberPromote, "n1").error == net::ErrorCode::NotLearner);

  n4.start(added.cluster, cluster.initial_cluster() + ",n4=" + n4.peer);
  // It catches up: its own serializable read sees the writes made before it joined.
  net::Client n4_client = n4.client_of();
  REQUIRE_MESSAGE(eventually(20s, [&] { return read(n4_client, "/m/k44", true) == "v44"; }), n4.log(),
                  cluster.all_logs());
  CHECK(read(n4_client, "/m/k0", true) == "v0");
  // It knows every member, with addresses, though it joined from a snapshot.
  REQUIRE_MESSAGE(eventually(10s, [&] {
                    const auto list = members(n4_client);
                    return list.size() == 4 && find(list, "n1") && find(list, "n1")->peer_address == cluster.peer_address(0);
                  }),
                  describe(members(n4_client)), n4.log());
  CHECK(find(members(n4_client), "n4")->learner);

  const net::ClientResponse promoted = change(client, net::RequestKind::MemberPromote, "n4");
  REQUIRE_MESSAGE(promoted.ok(), net::to_string(promoted.error), ": ", promoted.message);
  CHECK(promoted.members.at(0).voter);
  CHECK(change(client, net::RequestKind::MemberPromote, "n4").error == net::ErrorCode::NotLearner);

  // Remove the leader (an original member): it hands leadership over first.
  const auto leader = cluster.agreed_leader({0, 1, 2});
  REQUIRE(leader.has_value());
  const std::string removed_name = cluster.name(*leader);
  const net::ClientResponse removed = change(client, net::RequestKind::MemberRemove, removed_name);
  REQUIRE_MESSAGE(removed.ok(), net::to_string(removed.error), ": ", removed.message, cluster.all_logs());
  CHECK(removed.members.at(0).name == removed_name);
  cluster.stop(*leader);

  std::vector<int> rest;
  for (int i = 0; i < 3; ++i) {
    if (i != *leader) rest.push_back(i);
  }
  net::ClientOptions rest_options = cluster.options(20s);
  rest_options.endpoints = {cluster.client_address(rest[0]), cluster.client_address(rest[1]), n4.client};
  net::Client rest_client(rest_options);
  const net::ClientResponse after = put(rest_client, "/m/after", "removed");
  REQUIRE_MESSAGE(after.ok(), net::to_string(after.error), ": ", after.message, cluster.all_logs(), n4.log());
  const auto list = members(rest_client);
  CHECK_MESSAGE(list.size() == 3, describe(list));
  CHECK(find(list, removed_name) == nullptr);
  REQUIRE(find(list, "n4") != nullptr);
  CHECK(find(list, "n4")->voter);

  // The new member restarts from its data directory, still a voting member that knows the others.
  n4.process->stop();
  n4.start(added.cluster, cluster.initial_cluster() + ",n4=" + n4.peer);
  REQUIRE_MESSAGE(eventually(20s, [&] { return read(n4_client, "/m/after", true) == "removed"; }), n4.log());
  const auto after_restart = members(n4_client);
  CHECK_MESSAGE(after_restart.size() == 3, describe(after_restart));
  REQUIRE(find(after_restart, "n4") != nullptr);
  CHECK(find(after_restart, "n4")->voter);
  CHECK(find(after_restart, cluster.name(rest[0])) != nullptr);
  CHECK(find(after_restart, cluster.name(rest[0]))->peer_address == cluster.peer_address(rest[0]));

  // An original member restarted with its original flags still knows n4's address (DIR/members),
  // and the three voters keep taking writes.
  cluster.stop(rest[0]);
  cluster.start(rest[0]);
  net::Client restarted = cluster.client_of(rest[0], 2s);
  REQUIRE_MESSAGE(eventually(20s, [&] {
                    const auto l = members(restarted);
                    return find(l, "n4") != nullptr && find(l, "n4")->peer_address == n4.peer;
                  }),
                  describe(members(restarted)), cluster.all_logs());
  CHECK(put(rest_client, "/m/final", "ok").ok());
  CHECK(eventually(20s, [&] { return read(n4_client, "/m/final", true) == "ok"; }));
}

TEST_CASE("membership: the last voter cannot be removed") {
  Cluster cluster(1, kFastArgs);
  REQUIRE_MESSAGE(cluster.start_all(), cluster.all_logs());
  REQUIRE_MESSAGE(eventually(15s, [&] { return cluster.agreed_leader({0}).has_value(); }), cluster.all_logs());
  net::Client client(cluster.options(10s));
  const net::ClientResponse r = change(client, net::RequestKind::MemberRemove, "n1");
  CHECK(r.error == net::ErrorCode::LastVoter);
  CHECK(r.message.find("last voter") != std::string::npos);
  CHECK(put(client, "/still", "here").ok());
}
