// Scenario tests: linearizable reads (ReadIndex). A read point is released only after a quorum
// acknowledged a heartbeat round started after the request, never by a deposed leader, and never
// by a new leader before an entry of its term committed.
#include <doctest/doctest.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "tests/raft_test_cluster.h"

using namespace coord::raft;
using coord::raft::testing::TestCluster;

namespace {

std::vector<Message> of_type(const std::vector<Message>& messages, MessageType type) {
  std::vector<Message> out;
  for (const Message& m : messages) {
    if (m.type == type) out.push_back(m);
  }
  return out;
}


}  // namespace

TEST_CASE("read index: released only after a quorum acknowledged a round started after it") {
  TestCluster c(3);
  c.elect(1);
  Index commit = c.node(1).commit();
  REQUIRE(commit == 1);

  // A heartbeat round from before the request is in flight.
  c.tick(1);
  c.process_readies();
  std::vector<Message> old_round =
      c.take([](const Message& m) { return m.type == MessageType::Heartbeat; });
  REQUIRE(old_round.size() == 2);

  REQUIRE(c.node(1).read_index(42) == Error::Ok);
  c.process_readies();
  std::vector<Message> new_round =
      c.take([](const Message& m) { return m.type == MessageType::Heartbeat; });
  REQUIRE(new_round.size() == 2);
  CHECK(new_round[0].context > old_round[0].context);
  CHECK(new_round[0].context == new_round[1].context);
  CHECK(c.reads(1).empty());

  // Acknowledgements of the older round confirm nothing about the read.
  for (const Message& m : old_round) c.deliver(m);
  c.process_readies();
  std::vector<Message> old_acks =
      c.take([](const Message& m) { return m.type == MessageType::HeartbeatResp; });
  REQUIRE(old_acks.size() == 2);
  for (const Message& m : old_acks) c.deliver(m);
  c.process_readies();
  CHECK(c.reads(1).empty());

  // The new round reaches the followers; while their answers are in flight, still nothing.
  for (const Message& m : new_round) c.deliver(m);
  c.process_readies();
  std::vector<Message> acks =
      c.take([](const Message& m) { return m.type == MessageType::HeartbeatResp; });
  REQUIRE(acks.size() == 2);
  CHECK(c.reads(1).empty());
  // One follower plus the leader is a quorum of three.
  c.deliver(acks[0]);
  c.process_readies();
  CHECK(c.reads(1) == std::vector<ReadState>{ReadState{42, commit}});
  c.deliver(acks[1]);
  c.process_readies();
  CHECK(c.reads(1).size() == 1);  // released once
  CHECK(c.failures().empty());
}

TEST_CASE("read index: the read point is the commit index at request time") {
  TestCluster c(3);
  c.elect(1);
  REQUIRE(c.node(1).propose("a").error == Error::Ok);
  c.stabilize();
  Index commit = c.node(1).commit();
  REQUIRE(commit == 2);

  REQUIRE(c.node(1).read_index(7) == Error::Ok);
  // Writes proposed after the request commit before the read is confirmed...
  ProposeResult b = c.node(1).propose("b");
  REQUIRE(b.error == Error::Ok);
  c.stabilize();
  CHECK(c.node(1).commit() == b.index);
  // ...but the read waits only for what was committed when it was asked.
  CHECK(c.reads(1) == std::vector<ReadState>{ReadState{7, commit}});

  // A read asked now covers "b".
  REQUIRE(c.node(1).read_index(8) == Error::Ok);
  c.stabilize();
  REQUIRE(c.reads(1).size() == 2);
  CHECK(c.reads(1)[1] == ReadState{8, b.index});
  CHECK(c.failures().empty());
}

TEST_CASE("read index: reads asked between two Readys share one heartbeat round") {
  TestCluster c(5);
  c.elect(1);
  Index commit = c.node(1).commit();
  for (std::uint64_t id = 1; id <= 6; ++id) REQUIRE(c.node(1).read_index(id) == Error::Ok);
  c.process_readies();
  std::vector<Message> heartbeats = of_type(c.queued(), MessageType::Heartbeat);
  CHECK(heartbeats.size() == 4);  // one per follower, not one per read
  std::set<NodeId> to;
  for (const Message& m : heartbeats) {
    to.insert(m.to);
    CHECK(m.context == heartbeats[0].context);
  }
  CHECK(to == std::set<NodeId>{2, 3, 4, 5});
  CHECK(c.queued().size() == heartbeats.size());  // and nothing else
  std::uint64_t round = heartbeats[0].context;

  c.stabilize();
  std::vector<ReadState> expected;
  for (std::uint64_t id = 1; id <= 6; ++id) expected.push_back(ReadState{id, commit});
  CHECK(c.reads(1) == expected);

  // The next batch is a new round.
  REQUIRE(c.node(1).read_index(7) == Error::Ok);
  REQUIRE(c.node(1).read_index(8) == Error::Ok);
  c.process_readies();
  heartbeats = of_type(c.queued(), MessageType::Heartbeat);
  CHECK(heartbeats.size() == 4);
  for (const Message& m : heartbeats) CHECK(m.context == round + 1);
  c.stabilize();
  CHECK(c.reads(1).size() == 8);
  CHECK(c.failures().empty());
}

TEST_CASE("read index: a read on a follower is forwarded to the leader and answered") {
  TestCluster c(3);
  c.elect(1);
  REQUIRE(c.node(1).propose("a").error == Error::Ok);
  c.stabilize();
  Index commit = c.node(1).commit();

  REQUIRE(c.node(2).read_index(99) == Error::Ok);
  c.process_readies();
  std::vector<Message> out = c.take_all();
  REQUIRE(out.size() == 1);
  CHECK(out[0].type == MessageType::ReadIndex);
  CHECK(out[0].from == 2);
  CHECK(out[0].to == 1);
  CHECK(out[0].context == 99);
  c.deliver(out[0]);

  // The leader confirms its leadership with a heartbeat round before answering.
  c.process_readies();
  CHECK(of_type(c.queued(), MessageType::Heartbeat).size() == 2);
  CHECK(of_type(c.queued(), MessageType::ReadIndexResp).empty());
  REQUIRE(c.deliver_until([&] { return !c.reads(2).empty(); }));
  CHECK(c.reads(2) == std::vector<ReadState>{ReadState{99, commit}});
  CHECK(c.reads(1).empty());  // the leader does not serve it itself
  CHECK(c.reads(3).empty());
  c.stabilize();
  CHECK(c.reads(2).size() == 1);
  CHECK(c.failures().empty());
}

TEST_CASE("read index: a leader cut off from the majority never serves a read asked after") {
  TestCluster c(3);
  c.elect(1);
  c.run_ticks(2);
  Term term = c.node(1).term();
  c.isolate(1);
  REQUIRE(c.node(1).read_index(5) == Error::Ok);
  c.process_readies();
  // Hold the read round's heartbeats back instead of losing them.
  std::vector<Message> held =
      c.take([](const Message& m) { return m.type == MessageType::Heartbeat; });
  REQUIRE(held.size() == 2);

  c.run_ticks(21);  // check-quorum deposes node 1
  CHECK(c.node(1).role() == Role::Follower);
  CHECK(c.reads(1).empty());
  CHECK(c.node(1).read_index(6) == Error::NotLeader);  // it knows no leader now

  // The majority elects a new leader, which serves reads.
  c.run_ticks(100);
  NodeId leader = c.leader();
  REQUIRE((leader == 2 || leader == 3));
  Term new_term = c.node(leader).term();
  CHECK(new_term > term);
  REQUIRE(c.node(leader).read_index(10) == Error::Ok);
  c.stabilize();
  CHECK(c.reads(leader) == std::vector<ReadState>{ReadState{10, c.node(leader).commit()}});

  // The held round arrives late, the partition heals: node 1 still serves nothing.
  c.heal();
  for (const Message& m : held) c.deliver(m);
  c.stabilize();
  c.run_ticks(5);
  CHECK(c.reads(1).empty());
  CHECK(c.node(1).role() == Role::Follower);
  CHECK(c.node(1).leader() == leader);
  CHECK(c.node(1).term() == new_term);

  // Even leading again later, node 1 has forgotten the read asked in its old term (serving it
  // now, at the old commit index, could miss writes the other leader committed meanwhile).
  REQUIRE(c.node(leader).transfer_leadership(1) == Error::Ok);
  c.run_ticks(3);
  REQUIRE(c.node(1).role() == Role::Leader);
  REQUIRE(c.node(1).read_index(11) == Error::Ok);
  c.stabilize();
  CHECK(c.reads(1) == std::vector<ReadState>{ReadState{11, c.node(1).commit()}});
  CHECK(c.failures().empty());
}

TEST_CASE("read index: a new leader defers reads until its own no-op commits") {
  TestCluster c(3);
  SUBCASE("first leader of the cluster") {
    c.node(1).campaign();
    REQUIRE(c.deliver_until([&] { return c.node(1).role() == Role::Leader; }));
    CHECK(c.node(1).commit() == 0);
    REQUIRE(c.node(1).read_index(1) == Error::Ok);
    c.process_readies();
    CHECK(of_type(c.queued(), MessageType::Heartbeat).empty());  // no round yet
    CHECK(c.reads(1).empty());
    c.stabilize();
    CHECK(c.node(1).commit() == 1);
    CHECK(c.reads(1) == std::vector<ReadState>{ReadState{1, 1}});
  }
  SUBCASE("a leader whose commit index lags what its predecessor committed") {
    c.elect(1);
    ProposeResult x = c.node(1).propose("x");
    REQUIRE(x.error == Error::Ok);
    // Replicate "x" and let leader 1 commit it, but lose the Appends that would tell the
    // followers: node 2 holds "x" without knowing it is committed.
    c.process_readies();
    for (const Message& m : c.take_all()) c.deliver(m);
    c.process_readies();
    for (const Message& m : c.take_all()) c.deliver(m);
    REQUIRE(c.node(1).commit() == x.index);
    c.process_readies();
    c.take([](const Message& m) { return m.type == MessageType::Append; });
    REQUIRE(c.node(2).log().last_index() == x.index);
    REQUIRE(c.node(2).commit() == x.index - 1);

    REQUIRE(c.node(1).transfer_leadership(2) == Error::Ok);
    REQUIRE(c.deliver_until([&] { return c.node(2).role() == Role::Leader; }));
    CHECK(c.node(2).commit() == x.index - 1);
    // Serving at commit x.index - 1 would miss the committed "x": the read must wait.
    REQUIRE(c.node(2).read_index(50) == Error::Ok);
    c.process_readies();
    CHECK(of_type(c.queued(), MessageType::Heartbeat).empty());
    CHECK(c.reads(2).empty());
    c.stabilize();
    Index noop = x.index + 1;
    CHECK(c.node(2).commit() == noop);
    CHECK(c.reads(2) == std::vector<ReadState>{ReadState{50, noop}});
  }
  CHECK(c.failures().empty());
}

TEST_CASE("read index: a node that knows no leader refuses with NotLeader") {
  TestCluster c(3);
  for (NodeId id : c.ids()) {
    CHECK(c.node(id).leader() == kNoNode);
    CHECK(c.node(id).read_index(1) == Error::NotLeader);
  }
  c.process_readies();
  CHECK(c.queued().empty());
  CHECK(c.reads(1).empty());

  // A pre-candidate knows no leader either.
  c.node(2).campaign();
  CHECK(c.node(2).role() == Role::PreCandidate);
  CHECK(c.node(2).read_index(2) == Error::NotLeader);
  CHECK(c.failures().empty());
}
