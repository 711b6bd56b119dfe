// Scenario tests: log compaction, chunked snapshot transfer to a lagging follower, and restart
// from a snapshot.
#include <doctest/doctest.h>

#include "tests/raft_test_cluster.h"

using namespace coord::raft;
using coord::raft::testing::TestCluster;

namespace {

void propose_n(TestCluster& c, NodeId leader, int n, const std::string& prefix) {
  for (int i = 0; i < n; ++i) {
    REQUIRE(c.node(leader).propose(prefix + std::to_string(i)).error == Error::Ok);
    c.stabilize();
  }
}

// Node 3 misses `n` entries that leader 1 then compacts away (its snapshot is at n + 1, with the
// election's entry): it can only catch up by a snapshot once the link heals.
void lag_behind_snapshot(TestCluster& c, int n) {
  c.elect(1);
  c.isolate(3);
  propose_n(c, 1, n, "a");
  c.compact(1, static_cast<Index>(n) + 1);
  c.heal();
}

}  // namespace

TEST_CASE("compaction drops the log prefix and keeps the terms needed for matching") {
  TestCluster c(3);
  c.elect(1);
  propose_n(c, 1, 10, "a");
  c.compact(1, 8);
  CHECK(c.node(1).log().first_index() == 9);
  CHECK(c.node(1).log().term(8) == c.node(1).term());
  CHECK_FALSE(c.node(1).log().term(7).has_value());
  CHECK(c.node(1).snapshot_meta().index == 8);
  CHECK(c.node(1).snapshot_meta().conf.voters == std::vector<NodeId>{1, 2, 3});
  // Replication continues past the snapshot point.
  propose_n(c, 1, 2, "b");
  CHECK(c.node(2).commit() == 13);
  CHECK(c.failures().empty());
}

TEST_CASE("a follower behind the leader's snapshot receives it in chunks and catches up") {
  TestCluster c(3, [](Config& cfg) { cfg.snapshot_chunk_bytes_max = 3; });
  lag_behind_snapshot(c, 10);  // everything node 3 misses is gone from the leader's log
  std::size_t chunks = 0;
  for (int round = 0; round < 100; ++round) {
    c.tick(1);
    c.process_readies();
    for (const Message& m : c.take_all()) {
      if (m.type == MessageType::Snapshot) ++chunks;
      c.deliver(m);
    }
  }
  std::size_t size = std::string("state@11").size();
  CHECK(chunks == (size + 2) / 3);
  CHECK(c.snapshots_installed(3) == 1);
  CHECK(c.disk(3).snapshot.index == 11);
  CHECK(c.disk(3).snapshot_data->bytes() == "state@11");
  CHECK(c.node(3).commit() == 11);
  propose_n(c, 1, 1, "after");
  CHECK(c.applied_data(3) == std::vector<std::string>{"after0"});
  CHECK(c.failures().empty());
}

TEST_CASE("a lost snapshot chunk is resent and the transfer completes") {
  TestCluster c(3, [](Config& cfg) { cfg.snapshot_chunk_bytes_max = 2; });
  lag_behind_snapshot(c, 5);
  bool dropped = false;
  for (int round = 0; round < 200; ++round) {
    c.tick(1);
    c.process_readies();
    for (const Message& m : c.take_all()) {
      if (!dropped && m.type == MessageType::Snapshot && m.snapshot_offset == 2) {
        dropped = true;  // the second chunk vanishes
        continue;
      }
      c.deliver(m);
    }
  }
  CHECK(dropped);
  CHECK(c.snapshots_installed(3) == 1);
  CHECK(c.disk(3).snapshot_data->bytes() == "state@6");
  CHECK(c.node(3).commit() == 6);
  CHECK(c.failures().empty());
}

TEST_CASE("duplicated snapshot answers and chunks do not multiply the chunk streams") {
  // The network delivers every message to the follower twice, and every answer back twice. Each
  // duplicate answer used to send one more chunk, each starting a stream of its own: the
  // chunks sent grew without bound (simulator, 15% duplication: 56,694 chunks in a second).
  TestCluster c(3, [](Config& cfg) { cfg.snapshot_chunk_bytes_max = 2; });
  lag_behind_snapshot(c, 5);
  std::size_t chunks = 0;
  for (int round = 0; round < 60; ++round) {
    c.tick(1);
    c.process_readies();
    for (const Message& m : c.take_all()) {
      const bool duplicate = (m.to == 3 && m.type == MessageType::Snapshot) ||
                             (m.from == 3 && m.type == MessageType::SnapshotResp);
      if (m.type == MessageType::Snapshot) ++chunks;
      c.deliver(m);
      if (duplicate) c.deliver(m);
    }
  }
  CHECK(c.snapshots_installed(3) == 1);
  CHECK(c.disk(3).snapshot_data->bytes() == "state@6");
  // "state@6" is 7 bytes: 4 chunks of 2 bytes, and no more.
  CHECK(chunks == 4);
  CHECK(c.failures().empty());
}

TEST_CASE("a node restarts from its snapshot and the entries after it") {
  TestCluster c(3);
  c.elect(1);
  propose_n(c, 1, 6, "a");
  c.compact(2, 5);
  propose_n(c, 1, 2, "b");
  c.crash(2);
  c.restart(2);
  CHECK(c.node(2).log().first_index() == 6);
  CHECK(c.node(2).log().last_index() == 9);
  CHECK(c.node(2).applied() == 5);
  c.run_ticks(3);
  // Entries after the snapshot are applied again on top of the restored state.
  CHECK(c.applied_data(2) == std::vector<std::string>{"a4", "a5", "b0", "b1"});
  CHECK(c.failures().empty());
}

TEST_CASE("a snapshot the follower already covers is answered without installing it") {
  TestCluster c(3);
  c.elect(1);
  propose_n(c, 1, 3, "a");
  Message m;
  m.type = MessageType::Snapshot;
  m.from = 1;
  m.to = 2;
  m.term = c.node(1).term();
  m.snapshot = SnapshotMeta{2, c.node(1).term(), c.node(1).conf()};
  m.snapshot_chunk = "old";
  m.snapshot_done = true;
  c.deliver(m);
  c.process_readies();
  CHECK(c.snapshots_installed(2) == 0);
  auto resp = c.take([](const Message& x) { return x.from == 2 && x.type == MessageType::AppendResp; });
  REQUIRE(resp.size() == 1);
  CHECK(resp[0].index == 4);
}

namespace {

// A host's receiver for incoming snapshot chunks: counts what it is given, and can refuse.
struct ReceiverLog {
  int made = 0;
  int refuse_appends = 0;  // refuse this many appends in all, from the first
  std::vector<std::string> chunks;
};

class CountingReceiver final : public SnapshotReceiver {
 public:
  explicit CountingReceiver(ReceiverLog& log) : log_(log) {}
  bool append(std::string_view chunk) override {
    if (log_.refuse_appends > 0) {
      --log_.refuse_appends;
      return false;
    }
    log_.chunks.emplace_back(chunk);
    bytes_.append(chunk);
    return true;
  }
  std::uint64_t size() const override { return bytes_.size(); }
  SnapshotDataPtr finish() override { return snapshot_bytes("received:" + bytes_); }

 private:
  ReceiverLog& log_;
  std::string bytes_;
};

}  // namespace

TEST_CASE("a follower's snapshot chunks go to the host's receiver, one that refuses makes the leader start over") {
  ReceiverLog log;
  log.refuse_appends = 1;  // the first chunk cannot be kept (a full disk, say)
  TestCluster c(3, [&log](Config& cfg) {
    cfg.snapshot_chunk_bytes_max = 3;
    cfg.snapshot_receiver = [&log](const SnapshotMeta& meta) {
      CHECK(meta.index == 11);
      ++log.made;
      return std::make_unique<CountingReceiver>(log);
    };
  });
  lag_behind_snapshot(c, 10);
  for (int round = 0; round < 200 && c.snapshots_installed(3) == 0; ++round) {
    c.tick(1);
    c.process_readies();
    for (const Message& m : c.take_all()) c.deliver(m);
  }
  REQUIRE(c.snapshots_installed(3) == 1);
  // Started over after the refusal: a second receiver got every chunk, in order.
  CHECK(log.made >= 2);
  std::string joined;
  for (const std::string& chunk : log.chunks) joined += chunk;
  CHECK(joined == "state@11");
  // What the receiver made of them is what the host is asked to install.
  CHECK(c.disk(3).snapshot_data->bytes() == "received:state@11");
  CHECK(c.failures().empty());
}
