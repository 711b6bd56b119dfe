// Randomized membership under crashes and partitions: seeded runs of proposals, learners added
// and promoted, voters removed (and then decommissioned for good), nodes crashed and restarted
// from what they persisted (here that is also a power loss: only what a Ready asked for is on the
// disk), whole-cluster power losses, and partitions. The simulator (sim/) never changes the
// membership, so this is where configuration changes meet restarts. Checked all along: every
// node's invariants (raft/invariants.h) and that no two nodes ever apply different entries at the
// same index; at the end, with the partitions healed and every node that was not decommissioned
// restarted, the cluster must elect a leader and commit a new entry on every voter.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "raft/conf_change.h"
#include "tests/raft_test_cluster.h"

using namespace coord::raft;
using coord::raft::testing::SplitMix;
using coord::raft::testing::TestCluster;

namespace {

struct Run {
  explicit Run(std::uint64_t seed) : rng(seed), cluster(3) {}

  SplitMix rng;
  TestCluster cluster;
  std::set<NodeId> crashed;         // down, to be restarted
  std::set<NodeId> configured{1, 2, 3};  // ever in the leader's configuration
  std::set<NodeId> decommissioned;  // removed from the configuration, then gone for good
  NodeId next_id = 4;
  std::map<Index, Entry> applied_anywhere;  // the entry each index holds, wherever applied
  std::vector<std::string> problems;

  bool chance(std::uint64_t percent) { return rng.below(100) < percent; }

  // Every node applies the same entry at each index (Raft's state machine safety).
  void check_applied() {
    for (NodeId id : cluster.ids()) {
      for (const Entry& e : cluster.applied(id)) {
        auto [it, inserted] = applied_anywhere.emplace(e.index, e);
        if (!inserted && !(it->second.term == e.term && it->second.data == e.data && it->second.type == e.type)) {
          problems.push_back("node " + std::to_string(id) + " applied another entry at index " + std::to_string(e.index));
        }
      }
    }
  }

  void change_membership(NodeId leader) {
    const ConfState& conf = cluster.node(leader).conf();
    const std::uint64_t pick = rng.below(3);
    if (pick == 0 && next_id <= 9) {
      const NodeId id = next_id++;
      cluster.add_blank_node(id);
      (void)cluster.node(leader).propose_conf_change(ConfChange{ConfChangeType::AddLearner, id});
    } else if (pick == 1 && !conf.learners.empty()) {
      const NodeId id = conf.learners[rng.below(conf.learners.size())];
      (void)cluster.node(leader).propose_conf_change(ConfChange{ConfChangeType::AddVoter, id});
    } else if (conf.voters.size() > 1) {
      const std::vector<NodeId>& from = conf.learners.empty() || chance(70) ? conf.voters : conf.learners;
      const NodeId id = from[rng.below(from.size())];
      (void)cluster.node(leader).propose_conf_change(ConfChange{ConfChangeType::RemoveNode, id});
    }
  }

  // A node whose removal the leader has applied leaves for good (as an operator would retire it).
  void decommission_removed(NodeId leader) {
    const ConfState& conf = cluster.node(leader).conf();
    const auto in = [](const std::vector<NodeId>& ids, NodeId id) { return std::count(ids.begin(), ids.end(), id) != 0; };
    for (NodeId id : conf.voters) configured.insert(id);
    for (NodeId id : conf.learners) configured.insert(id);
    for (NodeId id : std::set<NodeId>(configured)) {
      if (in(conf.voters, id) || in(conf.learners, id) || decommissioned.count(id) != 0) continue;
      decommissioned.insert(id);
      if (cluster.has_node(id)) cluster.crash(id);
      crashed.erase(id);
    }
  }

  void step() {
    const NodeId leader = cluster.leader();
    const std::uint64_t action = rng.below(100);
    if (action < 40) {
      if (leader != kNoNode) (void)cluster.node(leader).propose("v" + std::to_string(rng.below(1000)));
    } else if (action < 50) {
      if (leader != kNoNode) change_membership(leader);
    } else if (action < 58) {
      const std::vector<NodeId> up = cluster.ids();
      if (!up.empty()) {
        const NodeId id = up[rng.below(up.size())];
        cluster.crash(id);
        crashed.insert(id);
      }
    } else if (action < 68) {
      if (!crashed.empty()) {
        auto it = crashed.begin();
        std::advance(it, static_cast<long>(rng.below(crashed.size())));
        cluster.restart(*it);
        crashed.erase(it);
      }
    } else if (action < 70) {
      // Power loss of every node at once; all come back from their disks.
      for (NodeId id : cluster.ids()) {
        cluster.crash(id);
        crashed.insert(id);
      }
      for (NodeId id : std::set<NodeId>(crashed)) cluster.restart(id);
      crashed.clear();
    } else if (action < 74) {
      const std::vector<NodeId> up = cluster.ids();
      if (!up.empty()) cluster.isolate(up[rng.below(up.size())]);
    } else if (action < 80) {
      cluster.heal();
    }
    cluster.run_ticks(1);
    check_applied();
    if (const NodeId now = cluster.leader(); now != kNoNode) decommission_removed(now);
  }

  // Heals everything and restarts every node that was not decommissioned: a leader must come,
  // and a new entry must reach every voter of its configuration.
  void settle() {
    cluster.heal();
    for (NodeId id : std::set<NodeId>(crashed)) cluster.restart(id);
    crashed.clear();
    cluster.run_ticks(100);
    const NodeId leader = cluster.leader();
    if (leader == kNoNode) {
      problems.push_back("no leader after healing and restarting every member");
      return;
    }
    ProposeResult last{};
    for (int attempt = 0; attempt < 20; ++attempt) {
      const NodeId now = cluster.leader();
      if (now == kNoNode) {
        cluster.run_ticks(5);
        continue;
      }
      last = cluster.node(now).propose("final");
      if (last.error == Error::Ok) break;
      cluster.run_ticks(5);
    }
    if (last.error != Error::Ok) {
      problems.push_back("the leader does not take a proposal");
      return;
    }
    cluster.run_ticks(20);
    check_applied();
    const NodeId now = cluster.leader();
    if (now == kNoNode) {
      problems.push_back("the leader was lost while settling");
      return;
    }
    for (NodeId id : cluster.node(now).conf().voters) {
      if (!cluster.has_node(id)) {
        problems.push_back("voter " + std::to_string(id) + " is in the configuration but was decommissioned");
      } else if (cluster.node(id).commit() < last.index) {
        problems.push_back("voter " + std::to_string(id) + " did not commit the final entry");
      }
    }
  }
};

}  // namespace

TEST_CASE("membership, randomized: changes, crashes, power losses and partitions keep Raft safe and live") {
  for (std::uint64_t seed = 1; seed <= 300; ++seed) {
    CAPTURE(seed);
    Run run(seed);
    run.cluster.elect(1);
    for (int i = 0; i < 300; ++i) run.step();
    run.settle();
    CHECK_MESSAGE(run.problems.empty(), (run.problems.empty() ? "" : run.problems.front()));
    const std::vector<std::string>& failures = run.cluster.failures();
    CHECK_MESSAGE(failures.empty(), (failures.empty() ? "" : failures.front()));
  }
}
