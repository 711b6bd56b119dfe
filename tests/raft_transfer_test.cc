// Scenario tests: leadership transfer (TimeoutNow), to up-to-date and lagging followers, its
// effect on proposals, its timeout, and its interplay with check-quorum leases.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tests/raft_test_cluster.h"

using namespace coord::raft;
using coord::raft::testing::TestCluster;

namespace {

std::size_t count_type(const std::vector<Message>& messages, MessageType type) {
  std::size_t n = 0;
  for (const Message& m : messages) n += m.type == type ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("transfer: to an up-to-date follower, which wins at a higher term") {
  TestCluster c(3);
  c.elect(1);
  REQUIRE(c.node(1).propose("a").error == Error::Ok);
  c.stabilize();
  Term term = c.node(1).term();
  Index last = c.node(1).log().last_index();
  REQUIRE(c.node(1).progress().at(2).match == last);

  REQUIRE(c.node(1).transfer_leadership(2) == Error::Ok);
  CHECK(c.node(1).transferee() == 2);
  c.process_readies();
  // Already caught up: the leader sends TimeoutNow at once, and nothing else.
  std::vector<Message> out = c.take_all();
  REQUIRE(out.size() == 1);
  CHECK(out[0].type == MessageType::TimeoutNow);
  CHECK(out[0].to == 2);
  CHECK(out[0].term == term);
  c.deliver(out[0]);
  CHECK(c.node(2).role() == Role::Candidate);  // no pre-vote round for a transfer
  CHECK(c.node(2).term() == term + 1);
  c.stabilize();

  CHECK(c.node(2).role() == Role::Leader);
  CHECK(c.node(2).term() == term + 1);
  CHECK(c.node(1).role() == Role::Follower);
  CHECK(c.node(1).leader() == 2);
  CHECK(c.node(1).term() == term + 1);
  CHECK(c.node(1).transferee() == kNoNode);
  CHECK(c.node(3).leader() == 2);
  // The new leader's no-op commits, and so do new proposals.
  CHECK(c.node(2).commit() == last + 1);
  ProposeResult r = c.node(2).propose("b");
  REQUIRE(r.error == Error::Ok);
  c.stabilize();
  for (NodeId id : {1, 2, 3}) {
    CHECK(c.node(id).commit() == r.index);
    CHECK(c.applied_data(id) == std::vector<std::string>{"a", "b"});
  }
  CHECK(c.failures().empty());
}

TEST_CASE("transfer: to a lagging follower, which is caught up before TimeoutNow") {
  // One entry per Append: catching up takes several round trips, and TimeoutNow must wait for
  // the last one.
  TestCluster c(3, [](Config& cfg) { cfg.append_bytes_max = 1; });
  c.elect(1);
  Term term = c.node(1).term();
  c.isolate(3);
  for (const char* data : {"a", "b", "c"}) {
    REQUIRE(c.node(1).propose(data).error == Error::Ok);
    c.stabilize();
  }
  Index last = c.node(1).log().last_index();
  REQUIRE(c.node(1).commit() == last);
  REQUIRE(c.node(3).log().last_index() < last);
  c.heal();

  REQUIRE(c.node(1).transfer_leadership(3) == Error::Ok);
  c.process_readies();
  CHECK(count_type(c.queued(), MessageType::TimeoutNow) == 0);

  // Drive the cluster message by message. TimeoutNow overtakes anything queued with it (the
  // network may reorder): it must only leave once node 3 acknowledged the leader's whole log.
  bool timeout_now_sent = false;
  Index node3_last_at_timeout_now = 0;
  Index match_at_timeout_now = 0;
  std::size_t appends_to_3_before = 0;
  c.tick(1);  // a heartbeat round lets the leader find where node 3's log stands
  for (int round = 0; round < 50 && c.node(3).role() != Role::Leader; ++round) {
    c.process_readies();
    for (const Message& m :
         c.take([](const Message& m) { return m.type == MessageType::TimeoutNow; })) {
      CHECK(m.to == 3);
      if (!timeout_now_sent) {
        timeout_now_sent = true;
        node3_last_at_timeout_now = c.node(3).log().last_index();
        match_at_timeout_now = c.node(1).progress().at(3).match;
      }
      c.deliver(m);
    }
    for (const Message& m : c.take_all()) {
      if (m.type == MessageType::Append && m.to == 3 && !timeout_now_sent) {
        appends_to_3_before += m.entries.size();
      }
      c.deliver(m);
    }
  }
  CHECK(timeout_now_sent);
  CHECK(node3_last_at_timeout_now == last);
  CHECK(match_at_timeout_now == last);
  CHECK(appends_to_3_before == last - 1);  // the three proposals it missed (it had the no-op)
  c.stabilize();
  CHECK(c.node(3).role() == Role::Leader);
  CHECK(c.node(3).term() == term + 1);
  CHECK(c.node(1).leader() == 3);
  CHECK(c.node(3).commit() == last + 1);
  CHECK(c.applied_data(3) == std::vector<std::string>{"a", "b", "c"});
  CHECK(c.failures().empty());
}

TEST_CASE("transfer: proposals are refused while it is under way") {
  TestCluster c(3);
  c.elect(1);
  c.isolate(3);  // the transfer cannot finish
  REQUIRE(c.node(1).transfer_leadership(3) == Error::Ok);
  Index last = c.node(1).log().last_index();
  ProposeResult r = c.node(1).propose("x");
  CHECK(r.error == Error::TransferInProgress);
  CHECK(r.index == 0);
  CHECK(c.node(1).propose_conf_change(ConfChange{ConfChangeType::AddLearner, 4}).error ==
        Error::TransferInProgress);
  CHECK(c.node(1).log().last_index() == last);
  // Reads are not proposals: they are still served.
  CHECK(c.node(1).read_index(1) == Error::Ok);
  c.stabilize();
  CHECK(c.reads(1) == std::vector<ReadState>{ReadState{1, last}});
  CHECK(c.node(1).role() == Role::Leader);
  CHECK(c.node(1).transferee() == 3);
  CHECK(c.failures().empty());
}

TEST_CASE("transfer: aborted after an election timeout when the target is unreachable") {
  TestCluster c(3);
  c.elect(1);
  Term term = c.node(1).term();
  c.isolate(3);
  REQUIRE(c.node(1).transfer_leadership(3) == Error::Ok);
  c.stabilize();

  // Election timeout is 10 ticks: after 9 the transfer still blocks proposals...
  for (int i = 0; i < 9; ++i) {
    c.tick(1);
    c.stabilize();
  }
  CHECK(c.node(1).transferee() == 3);
  CHECK(c.node(1).propose("x").error == Error::TransferInProgress);
  // ...the tenth gives up on it.
  c.tick(1);
  c.stabilize();
  CHECK(c.node(1).transferee() == kNoNode);
  CHECK(c.node(1).role() == Role::Leader);
  CHECK(c.node(1).term() == term);
  ProposeResult r = c.node(1).propose("x");
  REQUIRE(r.error == Error::Ok);
  c.stabilize();
  CHECK(c.node(1).commit() == r.index);
  CHECK(c.node(2).commit() == r.index);

  // A late TimeoutNow was dropped by the partition; once healed nothing changes leadership.
  c.heal();
  c.run_ticks(5);
  CHECK(c.node(1).role() == Role::Leader);
  CHECK(c.node(1).term() == term);
  CHECK(c.node(3).commit() == r.index);
  CHECK(c.failures().empty());
}

TEST_CASE("transfer: to a node that is not a voter gives UnknownNode") {
  TestCluster c(3);
  c.elect(1);
  CHECK(c.node(1).transfer_leadership(9) == Error::UnknownNode);
  CHECK(c.node(1).transferee() == kNoNode);
  // A learner cannot lead either.
  REQUIRE(c.node(1).propose_conf_change(ConfChange{ConfChangeType::AddLearner, 4}).error ==
          Error::Ok);
  c.stabilize();
  REQUIRE(c.node(1).progress().count(4) == 1);
  CHECK(c.node(1).transfer_leadership(4) == Error::UnknownNode);
  CHECK(c.node(1).transferee() == kNoNode);
  // Transfer to itself is a no-op; a follower cannot transfer.
  CHECK(c.node(1).transfer_leadership(1) == Error::Ok);
  CHECK(c.node(1).transferee() == kNoNode);
  CHECK(c.node(2).transfer_leadership(3) == Error::NotLeader);
  c.process_readies();
  CHECK(count_type(c.queued(), MessageType::TimeoutNow) == 0);
  CHECK(c.node(1).propose("x").error == Error::Ok);
  CHECK(c.failures().empty());
}

TEST_CASE("transfer: succeeds although the followers are within their check-quorum lease") {
  TestCluster c(3);
  REQUIRE(c.node(1).propose("a").error == Error::NotLeader);
  c.elect(1);
  c.run_ticks(3);  // heartbeats: every follower has just heard from leader 1
  Term term = c.node(1).term();
  REQUIRE(c.node(3).leader() == 1);

  REQUIRE(c.node(1).transfer_leadership(2) == Error::Ok);
  c.process_readies();
  for (const Message& m : c.take_all()) c.deliver(m);  // TimeoutNow
  c.process_readies();
  std::vector<Message> votes = c.take([](const Message& m) { return m.type == MessageType::Vote; });
  REQUIRE(votes.size() == 2);
  for (const Message& m : votes) {
    CHECK(m.transfer);
    CHECK(m.term == term + 1);
  }
  Message to3 = votes[0].to == 3 ? votes[0] : votes[1];
  REQUIRE(to3.to == 3);

  // The control: the same request without the transfer flag bounces off node 3's lease.
  Message plain = to3;
  plain.transfer = false;
  c.deliver(plain);
  c.process_readies();
  CHECK(c.node(3).term() == term);
  CHECK(c.node(3).leader() == 1);
  CHECK(c.take([](const Message& m) { return m.from == 3; }).empty());

  // With it, node 3 grants its vote and node 2 wins.
  c.deliver(to3);
  c.process_readies();
  std::vector<Message> grants =
      c.take([](const Message& m) { return m.type == MessageType::VoteResp; });
  REQUIRE(grants.size() == 1);
  CHECK_FALSE(grants[0].reject);
  CHECK(c.node(3).vote() == 2);
  c.deliver(grants[0]);
  CHECK(c.node(2).role() == Role::Leader);
  for (const Message& m : votes) {
    if (m.to == 1) c.deliver(m);
  }
  c.stabilize();
  CHECK(c.node(2).role() == Role::Leader);
  CHECK(c.node(2).term() == term + 1);
  CHECK(c.node(1).role() == Role::Follower);
  CHECK(c.node(1).leader() == 2);
  CHECK(c.node(3).leader() == 2);
  CHECK(c.failures().empty());
}
