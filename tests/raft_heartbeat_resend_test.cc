// Scenario tests: how a leader answers heartbeat responses from a follower that lags. It resends
// (a new probe, or one freed pipeline slot) at most once per heartbeat round, so a backlog of
// answers handled together (a stalled follower, a slow link's queue draining) cannot fill one
// Ready with a copy of the same entries per answer; and every round re-arms the resend, so a
// follower whose resends keep getting lost still catches up.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tests/raft_test_cluster.h"

using namespace coord::raft;
using coord::raft::testing::TestCluster;

namespace {

bool is_append_with_entries_to(const Message& m, NodeId to) {
  return m.type == MessageType::Append && m.to == to && !m.entries.empty();
}

std::size_t appends_with_entries_to(const std::vector<Message>& ms, NodeId to) {
  std::size_t n = 0;
  for (const Message& m : ms) n += is_append_with_entries_to(m, to) ? 1 : 0;
  return n;
}

// Runs the cluster until quiet, dropping every Append with entries to `to`.
void stabilize_dropping_appends_to(TestCluster& c, NodeId to) {
  for (int round = 0; round < 50; ++round) {
    c.process_readies();
    if (c.queued().empty()) return;
    for (const Message& m : c.take_all()) {
      if (!is_append_with_entries_to(m, to)) c.deliver(m);
    }
  }
}

// The leader (1) sends `rounds` heartbeat rounds; node 3 receives them all late, together, and
// answers each. Returns its answers, undelivered; everything else queued is dropped.
std::vector<Message> late_heartbeat_answers(TestCluster& c, int rounds) {
  c.tick(1, rounds);
  c.process_readies();
  std::vector<Message> heartbeats =
      c.take([](const Message& m) { return m.type == MessageType::Heartbeat && m.to == 3; });
  REQUIRE(heartbeats.size() == static_cast<std::size_t>(rounds));
  c.take_all();
  for (const Message& m : heartbeats) c.deliver(m);
  c.process_readies();
  std::vector<Message> answers =
      c.take([](const Message& m) { return m.type == MessageType::HeartbeatResp && m.from == 3; });
  REQUIRE(answers.size() == static_cast<std::size_t>(rounds));
  c.take_all();
  return answers;
}

// Delivers `answers` to the leader in one step and returns what its next Ready sends.
std::vector<Message> leader_reply(TestCluster& c, const std::vector<Message>& answers) {
  for (const Message& m : answers) c.deliver(m);
  c.process_readies();
  return c.take_all();
}

// Node 3 in the Probe state, 10 entries behind, with the leader's probe lost.
void lag_in_probe(TestCluster& c) {
  c.elect(1);
  c.block(1, 3);
  for (int i = 0; i < 10; ++i) c.node(1).propose(std::string(300, 'e'));
  c.stabilize();
  REQUIRE(c.node(3).log().last_index() == 1);
  c.heal();
  // A heartbeat tells the leader node 3 lags (a rejected Append turns it to probing); the probe
  // with the entries is lost.
  c.tick(1, 1);
  stabilize_dropping_appends_to(c, 3);
  REQUIRE(c.node(1).progress().at(3).state == Progress::State::Probe);
  REQUIRE(c.node(1).progress().at(3).probe_sent);
  REQUIRE(c.node(3).log().last_index() == 1);
}

// Node 3 in the Replicate state with its whole window (2 Appends) in flight, both lost.
void lag_in_replicate_with_full_window(TestCluster& c) {
  c.elect(1);
  REQUIRE(c.node(1).progress().at(3).state == Progress::State::Replicate);
  c.block(1, 3);
  for (int i = 0; i < 40; ++i) c.node(1).propose(std::string(300, 'r'));
  c.stabilize();
  c.heal();
  const Progress& pr = c.node(1).progress().at(3);
  REQUIRE(pr.state == Progress::State::Replicate);
  REQUIRE(pr.inflight_full(2));
  REQUIRE(c.node(3).log().last_index() == 1);
}

// `rounds` heartbeat rounds in which node 3's answer (together with a late duplicate of it) makes
// the leader resend exactly one Append, which is lost.
void lose_resends_for_rounds(TestCluster& c, int rounds) {
  for (int round = 0; round < rounds; ++round) {
    INFO("round " << round);
    std::vector<Message> answers = late_heartbeat_answers(c, 1);
    answers.push_back(answers.front());
    std::vector<Message> out = leader_reply(c, answers);
    CHECK(appends_with_entries_to(out, 3) == 1);
    CHECK(c.node(3).log().last_index() == 1);
  }
}

void small_pipeline(Config& cfg) {
  cfg.append_bytes_max = 1000;  // 3 entries of 300 bytes per Append
  cfg.inflight_msgs_max = 2;
}

}  // namespace

TEST_CASE("a backlog of heartbeat answers from a probing follower makes one probe, not one per answer") {
  TestCluster c(3);
  lag_in_probe(c);
  std::vector<Message> out = leader_reply(c, late_heartbeat_answers(c, 5));
  CHECK(appends_with_entries_to(out, 3) == 1);

  // That probe arrives: node 3 catches up.
  for (const Message& m : out) c.deliver(m);
  c.stabilize();
  CHECK(c.node(3).log().last_index() == c.node(1).log().last_index());
  CHECK(c.node(3).commit() == c.node(1).commit());
  CHECK(c.failures().empty());
}

TEST_CASE("a backlog of heartbeat answers from a follower with a full pipeline frees one slot, not one per answer") {
  TestCluster c(3, small_pipeline);
  lag_in_replicate_with_full_window(c);
  std::vector<Message> out = leader_reply(c, late_heartbeat_answers(c, 5));
  CHECK(appends_with_entries_to(out, 3) == 1);
  CHECK(c.node(1).progress().at(3).inflight.size() == 2);

  // The resent Append leaves a gap at node 3 (the two before it were lost): it rejects, the
  // leader probes from where it matches, and node 3 catches up.
  for (const Message& m : out) c.deliver(m);
  c.stabilize();
  for (int i = 0; i < 5 && c.node(3).log().last_index() < c.node(1).log().last_index(); ++i) c.run_ticks(1);
  CHECK(c.node(3).log().last_index() == c.node(1).log().last_index());
  CHECK(c.node(3).commit() == c.node(1).commit());
  CHECK(c.failures().empty());
}

TEST_CASE("a probing follower whose resends are lost round after round gets one in every round and catches up") {
  TestCluster c(3);
  lag_in_probe(c);
  // Each round's probe is lost too.
  lose_resends_for_rounds(c, 4);
  // The next round's probe arrives.
  c.tick(1, 1);
  c.stabilize();
  CHECK(c.node(3).log().last_index() == c.node(1).log().last_index());
  CHECK(c.node(3).commit() == c.node(1).commit());
  CHECK(c.failures().empty());
}

TEST_CASE("a follower with a full pipeline whose resends are lost round after round gets one in every round and catches up") {
  TestCluster c(3, small_pipeline);
  lag_in_replicate_with_full_window(c);
  lose_resends_for_rounds(c, 4);
  c.run_ticks(3);
  CHECK(c.node(3).log().last_index() == c.node(1).log().last_index());
  CHECK(c.node(3).commit() == c.node(1).commit());
  CHECK(c.failures().empty());
}

TEST_CASE("a read round re-arms the resend as a heartbeat tick does") {
  TestCluster c(3);
  lag_in_probe(c);
  // The first answer of a round resends; a second answer in the same round does not.
  std::vector<Message> answers = late_heartbeat_answers(c, 2);
  std::vector<Message> out = leader_reply(c, {answers[0]});
  CHECK(appends_with_entries_to(out, 3) == 1);
  out = leader_reply(c, {answers[1]});
  CHECK(appends_with_entries_to(out, 3) == 0);
  // A read starts a heartbeat round of its own: node 3's answer to it may resend again.
  REQUIRE(c.node(1).read_index(7) == Error::Ok);
  c.process_readies();
  std::vector<Message> heartbeats =
      c.take([](const Message& m) { return m.type == MessageType::Heartbeat && m.to == 3; });
  REQUIRE(heartbeats.size() == 1);
  c.take_all();
  c.deliver(heartbeats.front());
  c.process_readies();
  std::vector<Message> answer =
      c.take([](const Message& m) { return m.type == MessageType::HeartbeatResp && m.from == 3; });
  REQUIRE(answer.size() == 1);
  c.take_all();
  out = leader_reply(c, answer);
  CHECK(appends_with_entries_to(out, 3) == 1);
  CHECK(c.failures().empty());
}
