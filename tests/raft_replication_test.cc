// Scenario tests: log replication (batching, pipelining, flow control, fast back-off) and the
// commitment rule of Figure 8.
#include <doctest/doctest.h>

#include "tests/raft_test_cluster.h"

using namespace coord::raft;
using coord::raft::testing::TestCluster;

namespace {

std::size_t count(const std::vector<Message>& ms, MessageType type, NodeId to = kNoNode) {
  std::size_t n = 0;
  for (const Message& m : ms) n += m.type == type && (to == kNoNode || m.to == to) ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("proposals are replicated, committed and applied in the same order everywhere") {
  TestCluster c(3);
  c.elect(1);
  for (int i = 0; i < 20; ++i) {
    CHECK(c.node(1).propose("cmd" + std::to_string(i)).error == Error::Ok);
    c.stabilize();
  }
  for (NodeId id : c.ids()) {
    std::vector<std::string> applied = c.applied_data(id);
    REQUIRE(applied.size() == 20);
    CHECK(applied.front() == "cmd0");
    CHECK(applied.back() == "cmd19");
    CHECK(c.node(id).commit() == 21);
  }
  CHECK(c.failures().empty());
}

TEST_CASE("a follower rejects proposals and names the leader") {
  TestCluster c(3);
  c.elect(1);
  ProposeResult r = c.node(2).propose("x");
  CHECK(r.error == Error::NotLeader);
  CHECK(c.node(2).leader() == 1);
}

TEST_CASE("batching: proposals between two Readys travel in one Append per follower") {
  TestCluster c(3);
  c.elect(1);
  for (int i = 0; i < 100; ++i) c.node(1).propose("v" + std::to_string(i));
  c.process_readies();
  std::vector<Message> out = c.take_all();
  CHECK(count(out, MessageType::Append, 2) == 1);
  CHECK(count(out, MessageType::Append, 3) == 1);
  for (const Message& m : out) {
    if (m.type == MessageType::Append) CHECK(m.entries.size() == 100);
  }
}

TEST_CASE("batches are bounded by bytes and pipelined up to the in-flight window") {
  TestCluster c(3, [](Config& cfg) {
    cfg.append_bytes_max = 1000;
    cfg.inflight_msgs_max = 4;
  });
  c.elect(1);
  for (int i = 0; i < 40; ++i) c.node(1).propose(std::string(300, 'a'));
  c.process_readies();
  std::vector<Message> out = c.take_all();
  // 3 entries of 300 bytes fit in 1000 bytes; 4 messages fill the window and then we wait.
  CHECK(count(out, MessageType::Append, 2) == 4);
  for (const Message& m : out) {
    if (m.type != MessageType::Append) continue;
    std::size_t bytes = 0;
    for (const Entry& e : m.entries) bytes += e.data.size();
    CHECK(bytes <= 1000);
    CHECK(m.entries.size() == 3);
  }
  // Acknowledging lets the rest flow; everything commits.
  for (const Message& m : out) c.deliver(m);
  c.stabilize();
  CHECK(c.node(1).commit() == 41);
  CHECK(c.node(2).commit() == 41);
  CHECK(c.failures().empty());
}

TEST_CASE("Appends lost in the pipeline are recovered by the next heartbeat") {
  TestCluster c(3);
  c.elect(1);
  c.block(1, 3);
  c.node(1).propose("lost");
  c.stabilize();
  c.node(1).propose("also lost");
  c.stabilize();
  CHECK(c.node(3).log().last_index() == 1);
  CHECK(c.node(1).commit() == 3);  // nodes 1 and 2 are a quorum
  c.heal();
  c.tick(1, 1);  // heartbeat: node 3 answers, the leader sees it lagging and probes
  c.stabilize();
  CHECK(c.node(3).log().last_index() == 3);
  CHECK(c.applied_data(3) == std::vector<std::string>{"lost", "also lost"});
  CHECK(c.failures().empty());
}

TEST_CASE("fast back-off skips a whole conflicting term per round trip") {
  TestCluster c(3, [](Config& cfg) {
    cfg.pre_vote = false;
    cfg.check_quorum = false;
  });
  c.elect(1);
  // Node 1 writes 50 entries that reach nobody, then loses leadership.
  c.isolate(1);
  for (int i = 0; i < 50; ++i) c.node(1).propose("stale" + std::to_string(i));
  c.stabilize();
  c.crash(1);
  c.heal();
  c.elect(2);
  for (int i = 0; i < 5; ++i) c.node(2).propose("fresh" + std::to_string(i));
  c.stabilize();
  c.restart(1);
  // Count the rejections node 1 sends while node 2 repairs its log.
  std::size_t rejects = 0;
  for (int round = 0; round < 50; ++round) {
    c.tick(2);
    c.process_readies();
    for (const Message& m : c.take_all()) {
      if (m.type == MessageType::AppendResp && m.reject) ++rejects;
      c.deliver(m);
    }
  }
  CHECK(rejects <= 3);
  CHECK(c.node(1).log().last_index() == c.node(2).log().last_index());
  CHECK(c.node(1).log().last_term() == c.node(2).term());
  CHECK(c.applied_data(1) == std::vector<std::string>{"fresh0", "fresh1", "fresh2", "fresh3", "fresh4"});
  CHECK(c.failures().empty());
}

// Raft paper, Figure 8, on three nodes: an entry of an old term stored on a majority is NOT
// committed by counting replicas, because a node with a newer last term can still be elected
// and overwrite it.
TEST_CASE("figure 8: an old-term entry on a majority is not committed by counting") {
  TestCluster c(3, [](Config& cfg) {
    cfg.pre_vote = false;
    cfg.check_quorum = false;
    cfg.append_bytes_max = 0;  // one entry per Append, so we choose exactly what node 3 gets
  });
  c.elect(1);
  REQUIRE(c.node(1).commit() == 1);

  // Term 1: node 1 appends X at index 2; it reaches nobody.
  c.isolate(1);
  REQUIRE(c.node(1).propose("X").index == 2);
  c.stabilize();

  // Term 2: node 2 wins with node 3's vote and appends its no-op at index 2; it reaches nobody.
  c.node(2).campaign();
  for (int round = 0; round < 2; ++round) {
    c.process_readies();
    for (const Message& m : c.take_all()) c.deliver(m);
  }
  REQUIRE(c.node(2).role() == Role::Leader);
  c.process_readies();  // the no-op is persisted on node 2 ...
  c.take_all();         // ... and its Appends are lost
  c.crash(2);  // its term-2 entry stays only on its disk
  c.crash(1);  // and node 1 restarts as a follower that still has X
  c.restart(1);

  // Term 3: node 1 wins with node 3's vote and replicates index 2 (term 1) to node 3, but not
  // its own term-3 entry at index 3.
  c.heal();
  c.isolate(2);
  for (int attempt = 0; attempt < 3 && c.node(1).role() != Role::Leader; ++attempt) {
    c.node(1).campaign();
    c.process_readies();
    for (int round = 0; round < 20; ++round) {
      for (const Message& m : c.take_all()) {
        // Drop only an Append that node 3 would accept with the term-3 entry in it.
        bool carries_new = m.type == MessageType::Append && m.to == 3 && !m.entries.empty() &&
                           m.entries.back().index >= 3 &&
                           c.node(3).log().match_term(m.index, m.log_term);
        if (!carries_new) c.deliver(m);
      }
      c.process_readies();
    }
  }
  REQUIRE(c.node(1).role() == Role::Leader);
  REQUIRE(c.node(1).term() == 3);
  REQUIRE(c.node(3).log().match_term(2, 1));
  CHECK(c.node(3).log().last_index() == 2);
  // X is on nodes 1 and 3, a majority, yet it must not count as committed.
  CHECK(c.node(1).commit() == 1);
  CHECK(c.node(3).commit() == 1);

  // Node 1 crashes; node 2 (last term 2 beats node 3's last term 1) is elected and overwrites
  // index 2 on node 3. Had X been committed, a committed entry would now be lost.
  c.crash(1);
  c.take_all();
  c.restart(2);
  c.heal();
  for (int attempt = 0; attempt < 3 && c.node(2).role() != Role::Leader; ++attempt) {
    c.node(2).campaign();
    c.stabilize();
  }
  REQUIRE(c.node(2).role() == Role::Leader);
  CHECK(c.node(3).log().match_term(2, 2));
  CHECK(c.applied_data(3).empty());  // X was never applied anywhere
  CHECK(c.failures().empty());
}

TEST_CASE("a leader that keeps little of its log in memory catches a lagging follower up from its disk") {
  // Budget of 64 bytes: the leader drops the data of almost every applied entry, and the
  // follower that was cut off gets them back through Config::read_entries.
  TestCluster c(3, [](Config& cfg) {
    cfg.log_memory_bytes_max = 64;
    cfg.append_bytes_max = 100;
  });
  c.elect(1);
  c.isolate(3);
  for (int i = 0; i < 200; ++i) {
    REQUIRE(c.node(1).propose("entry-" + std::to_string(i)).error == Error::Ok);
    if (i % 10 == 9) c.stabilize();
  }
  c.stabilize();
  const RaftLog& log = c.node(1).log();
  CHECK(log.memory_first() > 150);  // most entries' data is gone from memory
  CHECK(log.memory_bytes() <= 64 + 20);
  CHECK(c.entry_reads(1) == 0);  // nobody needed them yet
  CHECK(c.node(3).log().last_index() < 10);

  c.heal();
  for (int round = 0; round < 50 && c.node(3).applied() < c.node(1).commit(); ++round) c.run_ticks(1);
  CHECK(c.entry_reads(1) > 0);
  CHECK(c.applied_data(3) == c.applied_data(1));
  CHECK(c.applied_data(3).size() == 200);
  // After a restart the restored log is dropped down to the budget again: at once when the
  // state machine is durable (the host says what it applied), else as it applies again.
  const Index commit = c.node(1).commit();
  c.crash(1);
  c.restart_with_applied(1, commit);
  CHECK(c.node(1).log().memory_bytes() <= 64 + 20);
  c.crash(1);
  c.restart(1);
  CHECK(c.node(1).log().memory_first() == 1);
  c.run_ticks(30);
  CHECK(c.node(1).log().memory_bytes() <= 64 + 20);
  CHECK(c.failures().empty());
}
