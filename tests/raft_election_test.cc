// Scenario tests: leader election, pre-vote, check-quorum and the persistence contract of votes.
#include <doctest/doctest.h>

#include "tests/raft_test_cluster.h"

using namespace coord::raft;
using coord::raft::testing::TestCluster;

TEST_CASE("a three-node cluster elects exactly one leader by timeout") {
  TestCluster c(3);
  c.run_ticks(40);
  NodeId leader = c.leader();
  REQUIRE(leader != kNoNode);
  int leaders = 0;
  for (NodeId id : c.ids()) {
    if (c.node(id).role() == Role::Leader) ++leaders;
    CHECK(c.node(id).leader() == leader);
    CHECK(c.node(id).term() == c.node(leader).term());
  }
  CHECK(leaders == 1);
  CHECK(c.failures().empty());
}

TEST_CASE("a new leader commits an entry of its own term") {
  TestCluster c(3);
  c.elect(1);
  REQUIRE(c.node(1).role() == Role::Leader);
  CHECK(c.node(1).log().last_index() == 1);
  CHECK(c.node(1).commit() == 1);
  CHECK(c.node(1).log().term(1) == c.node(1).term());
  CHECK(c.failures().empty());
}

TEST_CASE("pre-vote: an isolated node does not inflate its term and cannot disrupt the leader") {
  TestCluster c(3);
  c.elect(1);
  Term term = c.node(1).term();
  c.isolate(3);
  c.run_ticks(100);  // node 3 campaigns repeatedly, but only as a pre-candidate
  CHECK(c.node(3).term() == term);
  CHECK(c.node(3).role() != Role::Leader);
  c.heal();
  c.run_ticks(5);
  CHECK(c.node(1).role() == Role::Leader);
  CHECK(c.node(1).term() == term);
  CHECK(c.failures().empty());
}

TEST_CASE("without pre-vote the same isolation would bump terms (the control case)") {
  TestCluster c(3, [](Config& cfg) { cfg.pre_vote = false; });
  c.elect(1);
  Term term = c.node(1).term();
  c.isolate(3);
  c.run_ticks(100);
  CHECK(c.node(3).term() > term);
  CHECK(c.failures().empty());
}

TEST_CASE("check-quorum: a leader cut off from its quorum steps down") {
  TestCluster c(3);
  c.elect(1);
  c.isolate(1);
  c.run_ticks(21);  // check-quorum fires within two election timeouts
  CHECK(c.node(1).role() != Role::Leader);
  // The majority side elects a new leader at a higher term (split votes may take a few rounds).
  c.run_ticks(100);
  NodeId other = c.node(2).role() == Role::Leader ? 2 : 3;
  CHECK(c.node(other).role() == Role::Leader);
  CHECK(c.node(other).term() > 1);
  CHECK(c.failures().empty());
}

TEST_CASE("check-quorum leases: followers ignore a vote request while their leader is alive") {
  TestCluster c(3, [](Config& cfg) { cfg.pre_vote = false; });
  c.elect(1);
  Term term = c.node(1).term();
  c.node(3).campaign();  // disruptive candidate at term+1
  c.stabilize();
  CHECK(c.node(1).role() == Role::Leader);
  CHECK(c.node(2).term() == term);
  CHECK(c.failures().empty());
}

TEST_CASE("persistence contract: a vote leaves only in a Ready that also persists it") {
  TestCluster c(3);
  c.node(1).campaign();
  c.process_readies();
  // Deliver the pre-votes and their answers, then the real vote requests.
  for (const Message& m : c.take_all()) c.deliver(m);
  c.process_readies();
  for (const Message& m : c.take_all()) c.deliver(m);
  REQUIRE(c.node(1).role() == Role::Candidate);
  c.process_readies();
  std::vector<Message> votes = c.take([](const Message& m) { return m.type == MessageType::Vote; });
  REQUIRE(votes.size() == 2);
  c.deliver(votes[0]);
  NodeId voter = votes[0].to;
  REQUIRE(c.node(voter).has_ready());
  Ready rd = c.node(voter).ready();
  REQUIRE(rd.hard_state.has_value());
  CHECK(rd.hard_state->vote == 1);
  bool resp = false;
  for (const Message& m : rd.messages) resp |= m.type == MessageType::VoteResp && !m.reject;
  CHECK(resp);
  c.node(voter).advance(rd);
}

TEST_CASE("a restarted node remembers its vote and refuses a second candidate in that term") {
  TestCluster c(3, [](Config& cfg) { cfg.pre_vote = false; cfg.check_quorum = false; });
  c.node(1).campaign();
  c.process_readies();
  std::vector<Message> votes = c.take([](const Message& m) { return m.type == MessageType::Vote; });
  Message to2 = votes[0].to == 2 ? votes[0] : votes[1];
  c.deliver(to2);
  c.process_readies();
  c.take_all();  // the grant is lost
  c.crash(2);
  c.restart(2);
  CHECK(c.node(2).vote() == 1);
  CHECK(c.node(2).term() == c.node(1).term());
  // Node 3 campaigns at the same term as node 1: node 2 must refuse.
  Message fake = to2;
  fake.from = 3;
  c.deliver(fake);
  c.process_readies();
  auto resp = c.take([](const Message& m) { return m.type == MessageType::VoteResp; });
  REQUIRE(resp.size() == 1);
  CHECK(resp[0].reject);
}
