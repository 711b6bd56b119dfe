// A keep-alive that reaches a deposed leader must not renew the lease. Keep-alives go through the
// log for exactly this reason: an old leader cut off from the majority can still believe it
// leads (without check-quorum it never finds out on its own), but it cannot commit, so the
// keep-alive it accepted is never applied and never answered, and the lease's fate is decided by
// the new leader's countdown alone. Here the real Raft core and the real state machine run
// together, message by message.
#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <string>

#include "kv/codec.h"
#include "kv/memory_storage.h"
#include "kv/state_machine.h"
#include "raft_test_cluster.h"

namespace {

using coord::raft::Config;
using coord::raft::EntryType;
using coord::raft::NodeId;
using coord::raft::Role;
using coord::raft::testing::TestCluster;

// One kv state machine per node, fed the entries that node applied, in order.
class Replicas {
 public:
  explicit Replicas(TestCluster& cluster) : cluster_(cluster) {
    for (NodeId id : cluster.ids()) {
      storage_[id] = std::make_unique<coord::kv::MemoryStorage>();
      sm_[id] = std::make_unique<coord::kv::StateMachine>(*storage_[id]);
    }
  }

  void catch_up() {
    for (NodeId id : cluster_.ids()) {
      const auto& applied = cluster_.applied(id);
      std::size_t& next = fed_[id];
      for (; next < applied.size(); ++next) {
        const auto& e = applied[next];
        // Conf changes are the core's; the state machine only counts the index.
        std::string data = e.type == EntryType::Normal ? e.data : std::string();
        const auto results = sm_[id]->apply_batch({coord::kv::AppliedEntry{e.index, std::move(data)}});
        REQUIRE(results.size() == 1);
      }
    }
  }

  coord::kv::StateMachine& sm(NodeId id) { return *sm_[id]; }

 private:
  TestCluster& cluster_;
  std::map<NodeId, std::unique_ptr<coord::kv::MemoryStorage>> storage_;
  std::map<NodeId, std::unique_ptr<coord::kv::StateMachine>> sm_;
  std::map<NodeId, std::size_t> fed_;
};

std::string command(coord::kv::Body body, std::uint64_t sequence) {
  coord::kv::Command c;
  c.session_id = 7;
  c.sequence = sequence;
  c.body = std::move(body);
  return coord::kv::encode_command(c);
}

std::uint64_t keepalives(coord::kv::StateMachine& sm, coord::kv::LeaseId id) {
  const auto info = sm.lease_ttl(id, false);
  REQUIRE(info.ok());
  return info.value.lease.keepalives;
}

}  // namespace

TEST_CASE("fencing lease: a keep-alive accepted by a deposed leader is never applied") {
  TestCluster c(3, [](Config& cfg) {
    cfg.pre_vote = false;
    cfg.check_quorum = false;  // the old leader keeps believing it leads
  });
  Replicas kv(c);
  c.elect(1);
  REQUIRE(c.node(1).propose(command(coord::kv::LeaseGrant{0, 1000}, 1)).error == coord::raft::Error::Ok);
  c.stabilize();
  kv.catch_up();
  const coord::kv::LeaseId lease = 1;
  for (NodeId id : c.ids()) REQUIRE(keepalives(kv.sm(id), lease) == 0);

  // Node 1 is cut off and takes a keep-alive; nodes 2 and 3 elect node 2 meanwhile.
  c.isolate(1);
  REQUIRE(c.node(1).propose(command(coord::kv::LeaseKeepAlive{lease}, 2)).error == coord::raft::Error::Ok);
  c.stabilize();
  c.elect(2);
  REQUIRE(c.node(2).role() == Role::Leader);
  CHECK(c.node(1).role() == Role::Leader);  // it does not know yet
  kv.catch_up();
  for (NodeId id : c.ids()) CHECK(keepalives(kv.sm(id), lease) == 0);

  // Healed: the old leader's keep-alive is overwritten, on every replica, without ever applying.
  c.heal();
  c.run_ticks(5);
  REQUIRE(c.node(1).role() == Role::Follower);
  kv.catch_up();
  for (NodeId id : c.ids()) CHECK(keepalives(kv.sm(id), lease) == 0);

  // A keep-alive through the real leader does count.
  REQUIRE(c.node(2).propose(command(coord::kv::LeaseKeepAlive{lease}, 3)).error == coord::raft::Error::Ok);
  c.stabilize();
  kv.catch_up();
  for (NodeId id : c.ids()) CHECK(keepalives(kv.sm(id), lease) == 1);
  CHECK(c.failures().empty());
}
