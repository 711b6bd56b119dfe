// Scenario tests: membership changes one server at a time (learners, promotion, removal of a
// follower and of the leader, the one-change-at-a-time rules) and recovery of the configuration
// after a restart.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "tests/raft_test_cluster.h"

using namespace coord::raft;
using coord::raft::testing::TestCluster;

namespace {

// "voters{1,2} learners{4}": compared as text so that a failing CHECK shows both sides.
std::string str(const ConfState& conf) {
  auto list = [](const std::vector<NodeId>& ids) {
    std::string out;
    for (NodeId id : ids) out += (out.empty() ? "" : ",") + std::to_string(id);
    return "{" + out + "}";
  };
  return "voters" + list(conf.voters) + " learners" + list(conf.learners);
}

std::string conf_of(std::vector<NodeId> voters, std::vector<NodeId> learners = {}) {
  return str(ConfState{std::move(voters), std::move(learners)});
}

ProposeResult change(TestCluster& c, NodeId leader, ConfChangeType type, NodeId node) {
  return c.node(leader).propose_conf_change(ConfChange{type, node});
}


// Leader 1 of a three-node cluster adds blank node 4 as a learner, after compacting its log so
// that node 4 has to catch up from a snapshot (which carries the whole configuration).
void add_learner_via_snapshot(TestCluster& c) {
  c.add_blank_node(4);
  ProposeResult r = change(c, 1, ConfChangeType::AddLearner, 4);
  REQUIRE(r.error == Error::Ok);
  c.stabilize();
  REQUIRE(c.node(1).applied() == r.index);
  c.compact(1, r.index);
  c.run_ticks(3);  // a heartbeat makes the leader probe node 4 and fall back to the snapshot
  REQUIRE(c.snapshots_installed(4) == 1);
  REQUIRE(c.node(4).log().last_index() == c.node(1).log().last_index());
}

}  // namespace

TEST_CASE("membership: a learner added through the log catches up and learns the configuration") {
  TestCluster c(3);
  c.elect(1);
  REQUIRE(c.node(1).propose("a").error == Error::Ok);
  c.stabilize();
  c.add_blank_node(4);
  CHECK(str(c.node(4).conf()) == conf_of({}));

  ProposeResult r = change(c, 1, ConfChangeType::AddLearner, 4);
  REQUIRE(r.error == Error::Ok);
  CHECK(r.index == 3);
  c.stabilize();
  CHECK(str(c.node(1).conf()) == conf_of({1, 2, 3}, {4}));
  CHECK(c.node(1).progress().count(4) == 1);

  c.run_ticks(3);  // heartbeats reach node 4; the leader probes back to index 1
  // Nothing was compacted: node 4 caught up through the log. The only "snapshot" it persisted is
  // the leader's log start (index 0), which carries the configuration in force there.
  CHECK(c.disk(4).snapshot.index == 0);
  CHECK(c.disk(4).snapshot.conf.voters == std::vector<NodeId>{1, 2, 3});
  CHECK(c.node(4).log().last_index() == 3);
  CHECK(c.node(4).commit() == 3);
  CHECK(c.node(4).leader() == 1);
  CHECK(c.applied_data(4) == std::vector<std::string>{"a"});
  CHECK(c.node(1).progress().at(4).match == 3);
  // The learner must know the same configuration as everyone else. The initial voters are only
  // recorded in the bootstrap snapshot metadata (index 0), never in a log entry, so the leader
  // sends that metadata along when it replicates from its log start.
  CHECK(str(c.node(4).conf()) == conf_of({1, 2, 3}, {4}));
  CHECK(c.failures().empty());
}

TEST_CASE("membership: a learner caught up through the log and then promoted must not elect itself") {
  TestCluster c(3);
  c.elect(1);
  c.add_blank_node(4);
  REQUIRE(change(c, 1, ConfChangeType::AddLearner, 4).error == Error::Ok);
  c.stabilize();
  c.run_ticks(3);
  REQUIRE(c.node(4).log().last_index() == c.node(1).log().last_index());
  REQUIRE(change(c, 1, ConfChangeType::AddVoter, 4).error == Error::Ok);
  c.stabilize();
  c.run_ticks(2);
  REQUIRE(str(c.node(1).conf()) == conf_of({1, 2, 3, 4}));
  REQUIRE(c.node(4).applied() == c.node(1).applied());
  Term term = c.node(1).term();

  // Cut off from everyone, node 4 alone is one vote of four: it may campaign but never win.
  c.isolate(4);
  c.run_ticks(60);
  CHECK(c.node(4).role() != Role::Leader);
  CHECK(c.node(1).role() == Role::Leader);
  CHECK(c.node(1).term() == term);
  CHECK(str(c.node(4).conf()) == conf_of({1, 2, 3, 4}));
  CHECK(c.node(4).commit() == c.node(1).commit());  // nothing committed by node 4 alone

  // Meanwhile the real majority commits an entry at the next index: had node 4 committed
  // something there on its own, two different entries would now be committed at one index.
  ProposeResult y = c.node(1).propose("y");
  REQUIRE(y.error == Error::Ok);
  c.stabilize();
  REQUIRE(c.node(1).commit() == y.index);
  if (c.node(4).commit() >= y.index) {
    CHECK(c.node(4).log().at(y.index) == c.node(1).log().at(y.index));
  }
  CHECK(c.failures().empty());
}

TEST_CASE("membership: a learner catches up from a snapshot with the full configuration") {
  TestCluster c(3);
  c.elect(1);
  REQUIRE(c.node(1).propose("a").error == Error::Ok);
  c.stabilize();
  add_learner_via_snapshot(c);
  CHECK(c.node(4).snapshot_meta().index == 3);
  CHECK(str(c.node(4).conf()) == conf_of({1, 2, 3}, {4}));
  CHECK(str(c.disk(4).snapshot.conf) == conf_of({1, 2, 3}, {4}));
  CHECK(c.node(4).commit() == 3);
  CHECK(c.node(4).role() == Role::Follower);
  CHECK(c.node(4).leader() == 1);

  // Later entries reach the learner through the log.
  REQUIRE(c.node(1).propose("b").error == Error::Ok);
  c.stabilize();
  CHECK(c.node(4).log().last_index() == 4);
  CHECK(c.node(4).commit() == 4);
  CHECK(c.applied_data(4) == std::vector<std::string>{"b"});
  CHECK(c.failures().empty());
}

TEST_CASE("membership: a learner neither counts for commitment nor takes part in elections") {
  TestCluster c(3, [](Config& cfg) { cfg.pre_vote = false; cfg.check_quorum = false; });
  c.elect(1);
  add_learner_via_snapshot(c);
  Index before = c.node(1).commit();

  // Only the learner hears the new entry: leader + learner is two nodes, but one voter.
  c.block(1, 2);
  c.block(1, 3);
  ProposeResult r = c.node(1).propose("x");
  REQUIRE(r.error == Error::Ok);
  c.stabilize();
  CHECK(c.node(4).log().last_index() == r.index);
  CHECK(c.node(1).progress().at(4).match == r.index);
  CHECK(c.node(1).commit() == before);

  c.heal();
  c.run_ticks(2);
  CHECK(c.node(1).commit() == r.index);
  CHECK(c.node(4).commit() == r.index);

  // A learner never campaigns, however long it goes without a leader.
  Term term = c.node(4).term();
  c.isolate(4);
  c.tick(4, 100);
  c.process_readies();
  CHECK(c.node(4).role() == Role::Follower);
  CHECK(c.node(4).term() == term);
  CHECK(c.take([](const Message& m) { return m.from == 4; }).empty());
  c.heal();

  // A candidate asks only voters, and a grant from the learner does not count.
  c.node(2).campaign();
  c.process_readies();
  std::vector<Message> votes = c.take([](const Message& m) { return m.type == MessageType::Vote; });
  REQUIRE(votes.size() == 2);
  for (const Message& m : votes) CHECK(m.to != 4);
  Message grant;
  grant.type = MessageType::VoteResp;
  grant.from = 4;
  grant.to = 2;
  grant.term = c.node(2).term();
  c.deliver(grant);
  CHECK(c.node(2).role() == Role::Candidate);
  for (const Message& m : votes) c.deliver(m);
  c.stabilize();
  CHECK(c.node(2).role() == Role::Leader);
  CHECK(c.failures().empty());
}

TEST_CASE("membership: a promoted learner becomes a voter that counts towards the quorum") {
  TestCluster c(3);
  c.elect(1);
  add_learner_via_snapshot(c);

  ProposeResult r = change(c, 1, ConfChangeType::AddVoter, 4);
  REQUIRE(r.error == Error::Ok);
  c.stabilize();
  for (NodeId id : {1, 2, 3, 4}) CHECK(str(c.node(id).conf()) == conf_of({1, 2, 3, 4}));

  // Four voters: a quorum is three. The leader and node 4 alone cannot commit...
  c.block(1, 2);
  c.block(1, 3);
  ProposeResult x = c.node(1).propose("x");
  REQUIRE(x.error == Error::Ok);
  c.stabilize();
  CHECK(c.node(4).log().last_index() == x.index);
  CHECK(c.node(1).commit() == x.index - 1);
  // ...but with node 2 they are three of four (without node 4 they would be two).
  c.heal();
  c.block(1, 3);
  c.run_ticks(2);
  CHECK(c.node(1).commit() == x.index);
  CHECK(c.node(3).log().last_index() < x.index);
  c.heal();

  // The new voter is electable: leadership can move to it.
  REQUIRE(c.node(1).transfer_leadership(4) == Error::Ok);
  c.stabilize();
  CHECK(c.node(4).role() == Role::Leader);
  CHECK(c.node(1).leader() == 4);
  CHECK(c.failures().empty());
}

TEST_CASE("membership: after removing a follower, commits use the smaller quorum") {
  TestCluster c(4);
  c.elect(1);
  ProposeResult r = change(c, 1, ConfChangeType::RemoveNode, 4);
  REQUIRE(r.error == Error::Ok);
  c.stabilize();
  CHECK(str(c.node(1).conf()) == conf_of({1, 2, 3}));
  CHECK(str(c.node(2).conf()) == conf_of({1, 2, 3}));
  CHECK(c.node(1).progress().count(4) == 0);
  // Node 4 heard of its own removal (the commit went out before the leader applied it).
  CHECK(str(c.node(4).conf()) == conf_of({1, 2, 3}));

  // With nodes 3 and 4 unreachable, leader and node 2 are two of three: enough now (they would
  // have been two of four before).
  c.isolate(3);
  c.isolate(4);
  ProposeResult x = c.node(1).propose("x");
  REQUIRE(x.error == Error::Ok);
  c.stabilize();
  CHECK(c.node(1).commit() == x.index);
  CHECK(c.node(2).commit() == x.index);
  CHECK(c.applied_data(2) == std::vector<std::string>{"x"});

  // The leader no longer sends anything to the removed node.
  c.heal();
  c.tick(1);
  c.process_readies();
  CHECK(c.take([](const Message& m) { return m.to == 4; }).empty());
  CHECK(c.failures().empty());
}

TEST_CASE("membership: a leader that removes itself steps down once the change applies") {
  TestCluster c(3);
  c.elect(1);
  Term term = c.node(1).term();
  ProposeResult r = change(c, 1, ConfChangeType::RemoveNode, 1);
  REQUIRE(r.error == Error::Ok);

  // Appends out, acknowledgements back: the leader commits the change...
  c.process_readies();
  for (const Message& m : c.take_all()) c.deliver(m);
  c.process_readies();
  for (const Message& m : c.take_all()) c.deliver(m);
  CHECK(c.node(1).commit() == r.index);
  // ...and is still leader until its Ready hands the entry out.
  CHECK(c.node(1).role() == Role::Leader);
  CHECK(c.node(1).applied() < r.index);
  c.process_readies();
  CHECK(c.node(1).applied() == r.index);
  CHECK(c.node(1).role() == Role::Follower);
  CHECK(c.node(1).leader() == kNoNode);
  CHECK(str(c.node(1).conf()) == conf_of({2, 3}));
  CHECK(c.node(1).progress().empty());
  c.stabilize();
  CHECK(str(c.node(2).conf()) == conf_of({2, 3}));
  CHECK(str(c.node(3).conf()) == conf_of({2, 3}));

  // The remaining voters elect a new leader once their leases run out.
  c.run_ticks(60);
  NodeId leader = c.leader();
  REQUIRE((leader == 2 || leader == 3));
  CHECK(c.node(leader).term() > term);
  CHECK(c.node(1).role() == Role::Follower);
  ProposeResult x = c.node(leader).propose("after");
  REQUIRE(x.error == Error::Ok);
  c.stabilize();
  CHECK(c.node(2).commit() == x.index);
  CHECK(c.node(3).commit() == x.index);
  CHECK(c.failures().empty());
}

TEST_CASE("membership: a second change is refused while one is pending") {
  TestCluster c(3);
  c.elect(1);
  ProposeResult r = change(c, 1, ConfChangeType::AddLearner, 4);
  REQUIRE(r.error == Error::Ok);
  Index last = c.node(1).log().last_index();
  CHECK(change(c, 1, ConfChangeType::AddLearner, 5).error == Error::ConfChangePending);
  CHECK(change(c, 1, ConfChangeType::RemoveNode, 3).error == Error::ConfChangePending);
  CHECK(c.node(1).log().last_index() == last);
  // Ordinary proposals are not affected.
  CHECK(c.node(1).propose("x").error == Error::Ok);

  // Committed but not yet handed out on the leader: still pending.
  c.process_readies();
  for (const Message& m : c.take_all()) c.deliver(m);
  c.process_readies();
  for (const Message& m : c.take_all()) c.deliver(m);
  REQUIRE(c.node(1).commit() >= r.index);
  REQUIRE(c.node(1).applied() < r.index);
  CHECK(change(c, 1, ConfChangeType::AddLearner, 5).error == Error::ConfChangePending);

  c.stabilize();
  CHECK(str(c.node(1).conf()) == conf_of({1, 2, 3}, {4}));
  ProposeResult next = change(c, 1, ConfChangeType::AddLearner, 5);
  CHECK(next.error == Error::Ok);
  CHECK(next.index == c.node(1).log().last_index());
  c.stabilize();
  CHECK(str(c.node(1).conf()) == conf_of({1, 2, 3}, {4, 5}));
  CHECK(c.failures().empty());
}

TEST_CASE("membership: a new leader refuses changes until an entry of its term commits") {
  TestCluster c(3);
  c.elect(1);
  REQUIRE(c.node(1).transfer_leadership(2) == Error::Ok);
  // Run the election, but stop as soon as node 2 wins: its no-op is not replicated yet.
  REQUIRE(c.deliver_until([&] { return c.node(2).role() == Role::Leader; }));
  Term term = c.node(2).term();
  CHECK(term == c.node(1).term());
  CHECK(c.node(2).commit() == 1);
  CHECK(c.node(2).log().last_index() == 2);
  CHECK(c.node(2).log().term(2) == term);
  CHECK(change(c, 2, ConfChangeType::AddLearner, 4).error == Error::ConfChangePending);
  CHECK(change(c, 2, ConfChangeType::RemoveNode, 3).error == Error::ConfChangePending);
  CHECK(c.node(2).log().last_index() == 2);

  c.stabilize();
  CHECK(c.node(2).commit() == 2);
  ProposeResult r = change(c, 2, ConfChangeType::AddLearner, 4);
  CHECK(r.error == Error::Ok);
  CHECK(r.index == 3);
  CHECK(r.term == term);
  CHECK(c.failures().empty());
}

TEST_CASE("membership: invalid changes are refused and leave no trace") {
  SUBCASE("node 0") {
    TestCluster c(3);
    c.elect(1);
    Index last = c.node(1).log().last_index();
    for (auto type : {ConfChangeType::AddVoter, ConfChangeType::AddLearner,
                      ConfChangeType::RemoveNode}) {
      CHECK(change(c, 1, type, kNoNode).error == Error::InvalidConfChange);
    }
    CHECK(c.node(1).log().last_index() == last);
    // A refused change does not block the next one.
    CHECK(change(c, 1, ConfChangeType::AddLearner, 4).error == Error::Ok);
    CHECK(c.failures().empty());
  }
  SUBCASE("removing the last voter") {
    TestCluster c(1);
    c.elect(1);
    REQUIRE(c.node(1).role() == Role::Leader);
    Index last = c.node(1).log().last_index();
    CHECK(change(c, 1, ConfChangeType::RemoveNode, 1).error == Error::InvalidConfChange);
    CHECK(c.node(1).log().last_index() == last);
    CHECK(c.node(1).role() == Role::Leader);
    // Adding a learner and then removing the voter would still leave no voter.
    REQUIRE(change(c, 1, ConfChangeType::AddLearner, 2).error == Error::Ok);
    c.stabilize();
    CHECK(str(c.node(1).conf()) == conf_of({1}, {2}));
    CHECK(change(c, 1, ConfChangeType::RemoveNode, 1).error == Error::InvalidConfChange);
    CHECK(c.failures().empty());
  }
  SUBCASE("not the leader") {
    TestCluster c(3);
    c.elect(1);
    CHECK(change(c, 2, ConfChangeType::AddLearner, 4).error == Error::NotLeader);
    CHECK(c.failures().empty());
  }
}

TEST_CASE("membership: a restarted node recovers its configuration from its log") {
  TestCluster c(3);
  c.elect(1);
  REQUIRE(change(c, 1, ConfChangeType::AddLearner, 4).error == Error::Ok);  // node 4 never runs
  c.stabilize();
  REQUIRE(change(c, 1, ConfChangeType::RemoveNode, 3).error == Error::Ok);
  c.stabilize();
  REQUIRE(str(c.node(2).conf()) == conf_of({1, 2}, {4}));
  Index commit = c.node(2).commit();

  c.crash(2);
  c.restart(2);
  // A commit index that moved alone was not persisted (raft/node.cc, ready()): the restart has
  // the one that rode with the last entries, and the leader's next heartbeat brings the rest.
  CHECK(c.node(2).commit() <= commit);
  c.process_readies();  // the restarted node hands its committed log out again
  c.run_ticks(1);
  CHECK(c.node(2).applied() == commit);
  CHECK(str(c.node(2).conf()) == conf_of({1, 2}, {4}));
  CHECK(c.applied(2).size() == commit);

  // It works with the leader under the new configuration.
  c.run_ticks(2);
  ProposeResult x = c.node(1).propose("x");
  REQUIRE(x.error == Error::Ok);
  c.stabilize();
  CHECK(c.node(2).commit() == x.index);
  CHECK(c.failures().empty());
}

TEST_CASE("membership: a restarted node recovers its configuration from snapshot and log") {
  TestCluster c(3);
  c.elect(1);
  ProposeResult add = change(c, 1, ConfChangeType::AddLearner, 4);  // node 4 never runs
  REQUIRE(add.error == Error::Ok);
  c.stabilize();
  c.compact(2, add.index);  // the snapshot records the learner...
  CHECK(str(c.disk(2).snapshot.conf) == conf_of({1, 2, 3}, {4}));
  ProposeResult rm = change(c, 1, ConfChangeType::RemoveNode, 3);  // ...the log the removal
  REQUIRE(rm.error == Error::Ok);
  c.stabilize();
  REQUIRE(str(c.node(2).conf()) == conf_of({1, 2}, {4}));

  c.crash(2);
  c.restart(2);
  CHECK(c.node(2).snapshot_meta().index == add.index);
  CHECK(str(c.node(2).conf()) == conf_of({1, 2, 3}, {4}));  // as of the applied (snapshot) index
  c.process_readies();
  c.run_ticks(1);  // the commit of the removal comes with the leader's heartbeat
  CHECK(c.node(2).applied() == rm.index);
  CHECK(str(c.node(2).conf()) == conf_of({1, 2}, {4}));

  // Compacted past the removal, the snapshot alone carries the configuration.
  c.compact(2, rm.index);
  c.crash(2);
  c.restart(2);
  CHECK(str(c.node(2).conf()) == conf_of({1, 2}, {4}));
  c.run_ticks(2);
  ProposeResult x = c.node(1).propose("x");
  REQUIRE(x.error == Error::Ok);
  c.stabilize();
  CHECK(c.node(2).commit() == x.index);
  CHECK(c.failures().empty());
}

TEST_CASE("membership: a node restarted with a durable state machine rebuilds its configuration") {
  TestCluster c(3);
  c.elect(1);
  REQUIRE(change(c, 1, ConfChangeType::AddLearner, 4).error == Error::Ok);  // node 4 never runs
  c.stabilize();
  REQUIRE(change(c, 1, ConfChangeType::RemoveNode, 3).error == Error::Ok);
  c.stabilize();
  Index applied = c.node(2).applied();
  // Handing out a configuration change makes its commit durable (raft/node.cc, ready()).
  REQUIRE(c.disk(2).hard_state.commit == applied);

  // The host's state machine already applied everything: nothing is handed out again, so the
  // configuration must come from replaying the restored log up to the applied index.
  c.crash(2);
  c.restart_with_applied(2, applied);
  CHECK(c.node(2).applied() == applied);
  CHECK(str(c.node(2).conf()) == conf_of({1, 2}, {4}));
  c.process_readies();
  CHECK(c.applied(2).empty());
  CHECK(str(c.node(2).conf()) == conf_of({1, 2}, {4}));

  // Applied only up to the learner: the removal is handed out again and takes effect then.
  c.crash(2);
  c.restart_with_applied(2, applied - 1);
  CHECK(str(c.node(2).conf()) == conf_of({1, 2, 3}, {4}));
  c.process_readies();
  c.run_ticks(1);  // the leader's heartbeat says the removal is committed
  CHECK(c.applied(2).size() == 1);
  CHECK(str(c.node(2).conf()) == conf_of({1, 2}, {4}));
  CHECK(c.failures().empty());
}

// A commit index that moved alone is not made durable (raft/node.cc, ready()), but one that hands
// out a configuration change is: after an acknowledged change and a power loss, members restart
// with the configuration in force, not the one before it. Each of these failed without that rule.
namespace {

std::string voters_of(const ConfState& conf) {
  std::string out;
  for (NodeId id : conf.voters) out += std::to_string(id);
  return out;
}

}  // namespace

TEST_CASE("membership: a removal acknowledged in an idle cluster survives a power loss of every member") {
  TestCluster c(4);
  c.elect(1);
  REQUIRE(c.node(1).propose("x").error == Error::Ok);
  c.stabilize();
  const ProposeResult removal = change(c, 1, ConfChangeType::RemoveNode, 4);
  REQUIRE(removal.error == Error::Ok);
  c.stabilize();
  c.run_ticks(5);  // idle: heartbeats only
  for (NodeId id : {1, 2, 3}) REQUIRE(c.node(id).applied() >= removal.index);
  for (NodeId id : {1, 2, 3, 4}) c.crash(id);
  c.restart(1);
  c.restart(2);  // node 4 was decommissioned after its removal; node 3 does not come back
  c.process_readies();  // the committed log is handed out again, the removal with it
  CHECK(voters_of(c.node(1).conf()) == "123");
  c.run_ticks(200);
  CHECK(c.leader() != kNoNode);  // {1, 2} is a quorum of {1, 2, 3}
  CHECK(c.failures().empty());
}

TEST_CASE("membership: two members scaled down to one keep a leader after the machine reboots") {
  TestCluster c(2);
  c.elect(1);
  const ProposeResult removal = change(c, 1, ConfChangeType::RemoveNode, 2);
  REQUIRE(removal.error == Error::Ok);
  c.stabilize();
  c.run_ticks(5);
  REQUIRE(c.node(1).applied() >= removal.index);
  c.crash(2);
  c.crash(1);
  c.restart(1);
  c.run_ticks(200);
  CHECK(c.leader() == 1);
  CHECK(c.failures().empty());
}

TEST_CASE("membership: a learner promoted to third voter keeps the cluster electable after a power loss") {
  TestCluster c(2);
  c.elect(1);
  c.add_blank_node(3);
  REQUIRE(change(c, 1, ConfChangeType::AddLearner, 3).error == Error::Ok);
  c.stabilize();
  c.run_ticks(3);
  c.stabilize();
  const ProposeResult promotion = change(c, 1, ConfChangeType::AddVoter, 3);
  REQUIRE(promotion.error == Error::Ok);
  c.stabilize();
  c.run_ticks(5);
  for (NodeId id : {1, 2, 3}) c.crash(id);
  c.restart(1);
  c.restart(3);  // node 2 does not come back; {1, 3} is a quorum of {1, 2, 3}
  c.run_ticks(200);
  CHECK(c.leader() != kNoNode);
  CHECK(c.failures().empty());
}
