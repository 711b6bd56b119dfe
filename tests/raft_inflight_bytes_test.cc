// Scenario tests: the leader's window to a follower is bounded in bytes as well as in Appends
// (Config::inflight_bytes_max). A follower far behind used to get inflight_msgs_max Appends of up
// to append_bytes_max each in one Ready: 256 MiB of copies by default, all read back from disk at
// once when the core no longer kept those entries in memory.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tests/raft_test_cluster.h"

using namespace coord::raft;
using coord::raft::testing::TestCluster;

namespace {

constexpr std::size_t kEntryBytes = 1000;

std::size_t append_bytes_to(const std::vector<Message>& ms, NodeId to) {
  std::size_t bytes = 0;
  for (const Message& m : ms) {
    if (m.type != MessageType::Append || m.to != to) continue;
    for (const Entry& e : m.entries) bytes += e.data.size();
  }
  return bytes;
}

// Node 3 cut off while the leader commits 40 entries of 1000 bytes with node 2; returns what the
// leader sends node 3 in the Ready after node 3 answers a heartbeat again (it is 40 behind, in
// the Replicate state, with the window emptied by a probe round).
std::vector<Message> catch_up_burst(TestCluster& c) {
  c.elect(1);
  c.block(1, 3);
  for (int i = 0; i < 40; ++i) c.node(1).propose(std::string(kEntryBytes, 'b'));
  c.stabilize();
  REQUIRE(c.node(2).log().last_index() == c.node(1).log().last_index());
  REQUIRE(c.node(3).log().last_index() < 5);
  c.heal();
  // The heartbeat's answer shows node 3 behind; its reject of the next Append sends the leader
  // probing, and the probe's acceptance back to replicating with an empty window, which the
  // leader then fills in one Ready.
  std::vector<Message> burst;
  for (int round = 0; round < 20 && burst.empty(); ++round) {
    c.tick(1, 1);
    for (int step = 0; step < 20; ++step) {
      c.process_readies();
      std::vector<Message> out = c.take_all();
      if (out.empty()) break;
      if (append_bytes_to(out, 3) > 2 * kEntryBytes) {
        burst = out;
        break;
      }
      for (const Message& m : out) c.deliver(m);
    }
  }
  REQUIRE(!burst.empty());
  return burst;
}

}  // namespace

TEST_CASE("a follower far behind gets at most the byte window, plus one Append, in one Ready") {
  TestCluster c(3, [](Config& cfg) {
    cfg.append_bytes_max = 2 * kEntryBytes;  // two entries per Append
    cfg.inflight_bytes_max = 6 * kEntryBytes;
  });
  std::vector<Message> burst = catch_up_burst(c);
  const std::size_t bytes = append_bytes_to(burst, 3);
  CHECK(bytes <= 6 * kEntryBytes + 2 * kEntryBytes);
  CHECK(c.node(1).progress().at(3).inflight_bytes == bytes);

  // The acknowledgements open the window again: node 3 catches up all the same.
  for (const Message& m : burst) c.deliver(m);
  c.stabilize();
  CHECK(c.node(3).log().last_index() == c.node(1).log().last_index());
  CHECK(c.node(3).commit() == c.node(1).commit());
  CHECK(c.node(1).progress().at(3).inflight_bytes == 0);
  CHECK(c.failures().empty());
}

TEST_CASE("without a byte window the same follower gets the whole backlog in one Ready") {
  // The count alone (256 Appends) does not bound it: this is what the byte window is for.
  TestCluster c(3, [](Config& cfg) {
    cfg.append_bytes_max = 2 * kEntryBytes;
    cfg.inflight_bytes_max = 0;
  });
  std::vector<Message> burst = catch_up_burst(c);
  CHECK(append_bytes_to(burst, 3) >= 30 * kEntryBytes);
}

TEST_CASE("the byte window of a follower whose Appends are lost is freed by the heartbeat's resend") {
  // Every Append to node 3 is lost while the window is full by bytes; the heartbeat answers still
  // free one slot per round (Progress::heartbeat_resent), so it catches up once the link heals.
  TestCluster c(3, [](Config& cfg) {
    cfg.append_bytes_max = 2 * kEntryBytes;
    cfg.inflight_bytes_max = 4 * kEntryBytes;
  });
  c.elect(1);
  c.block(1, 3);
  for (int i = 0; i < 20; ++i) c.node(1).propose(std::string(kEntryBytes, 'w'));
  c.stabilize();
  const Progress& pr = c.node(1).progress().at(3);
  REQUIRE(pr.state == Progress::State::Replicate);
  CHECK(pr.inflight_full(Config{}.inflight_msgs_max, 4 * kEntryBytes));
  CHECK(pr.inflight_bytes <= 6 * kEntryBytes);
  c.heal();
  for (int i = 0; i < 30 && c.node(3).log().last_index() < c.node(1).log().last_index(); ++i) {
    c.run_ticks(1);
  }
  CHECK(c.node(3).log().last_index() == c.node(1).log().last_index());
  CHECK(c.failures().empty());
}
