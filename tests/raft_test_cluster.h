// A hand-driven cluster for scenario tests: real raft::Node objects, an in-memory durable copy
// of each node's state, and a message queue the test delivers, drops or reorders explicitly.
// Nothing happens unless the test says so, which is what lets a test script a scenario message
// by message.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "raft/invariants.h"
#include "raft/node.h"

namespace coord::raft::testing {

class SplitMix : public Random {
 public:
  explicit SplitMix(std::uint64_t seed) : state_(seed) {}
  std::uint64_t below(std::uint64_t bound) override { return next() % bound; }
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  std::uint64_t state_;
};

// What a node has on "disk": exactly what its Readys asked to persist.
struct Disk {
  HardState hard_state;
  SnapshotMeta snapshot;
  SnapshotDataPtr snapshot_data;
  std::vector<Entry> entries;
};

class TestCluster {
 public:
  explicit TestCluster(std::size_t size, std::function<void(Config&)> tweak = nullptr)
      : tweak_(std::move(tweak)) {
    ConfState conf;
    for (NodeId id = 1; id <= size; ++id) conf.voters.push_back(id);
    for (NodeId id = 1; id <= size; ++id) {
      disks_[id].snapshot.conf = conf;
      start(id);
    }
  }

  // Adds a node that knows no configuration: it waits to hear from a leader.
  void add_blank_node(NodeId id) {
    disks_[id] = Disk{};
    start(id);
  }

  Node& node(NodeId id) { return *nodes_.at(id); }
  bool has_node(NodeId id) const { return nodes_.count(id) != 0; }
  std::vector<NodeId> ids() const {
    std::vector<NodeId> out;
    for (const auto& [id, n] : nodes_) out.push_back(id);
    return out;
  }

  // Drains every node's Ready: persists, queues messages, applies. Returns messages queued.
  std::size_t process_readies() {
    std::size_t queued = 0;
    for (auto& [id, n] : nodes_) {
      while (n->has_ready()) {
        Ready rd = n->ready();
        persist(id, rd);
        queued += rd.early_messages.size() + rd.messages.size();
        for (Message& m : rd.early_messages) queue_.push_back(std::move(m));
        for (Message& m : rd.messages) queue_.push_back(std::move(m));
        for (const Entry& e : rd.committed) applied_[id].push_back(e);
        for (const ReadState& r : rd.reads) reads_[id].push_back(r);
        n->advance(rd);
        check(id);
      }
    }
    return queued;
  }

  // Removes and returns queued messages matching `pred`; the test decides what to deliver.
  std::vector<Message> take(const std::function<bool(const Message&)>& pred) {
    std::vector<Message> out;
    std::vector<Message> rest;
    for (Message& m : queue_) (pred(m) ? out : rest).push_back(std::move(m));
    queue_ = std::move(rest);
    return out;
  }
  std::vector<Message> take_all() {
    return take([](const Message&) { return true; });
  }
  const std::vector<Message>& queued() const { return queue_; }

  void deliver(const Message& m) {
    if (!has_node(m.to) || blocked(m.from, m.to)) return;
    node(m.to).step(m);
    check(m.to);
  }

  // Delivers messages until the cluster is quiet (bounded: a livelock fails the test).
  void stabilize(int rounds_max = 200) {
    for (int round = 0; round < rounds_max; ++round) {
      process_readies();
      if (queue_.empty()) return;
      for (const Message& m : take_all()) deliver(m);
    }
    failures_.push_back("cluster did not become quiet");
  }

  // Processes Readys and delivers queued messages one at a time, oldest first, until `done`
  // holds. Returns whether it did (false when the cluster went quiet first).
  bool deliver_until(const std::function<bool()>& done, int steps_max = 1000) {
    for (int step = 0; step < steps_max; ++step) {
      if (done()) return true;
      process_readies();
      if (done()) return true;
      if (queue_.empty()) return false;
      Message first = std::move(queue_.front());
      queue_.erase(queue_.begin());
      deliver(first);
    }
    return done();
  }

  void tick(NodeId id, int ticks = 1) {
    for (int i = 0; i < ticks; ++i) {
      node(id).tick();
      check(id);
    }
  }
  void tick_all(int ticks = 1) {
    for (int i = 0; i < ticks; ++i) {
      for (NodeId id : ids()) tick(id);
    }
  }
  // Ticks everyone one at a time with message delivery in between, like a real cluster.
  void run_ticks(int ticks) {
    for (int i = 0; i < ticks; ++i) {
      tick_all();
      stabilize();
    }
  }

  // Makes `id` win an election now.
  void elect(NodeId id) {
    node(id).campaign();
    stabilize();
  }

  NodeId leader() const {
    NodeId found = kNoNode;
    for (const auto& [id, n] : nodes_) {
      if (n->role() == Role::Leader && (found == kNoNode || n->term() > nodes_.at(found)->term())) {
        found = id;
      }
    }
    return found;
  }

  // Partitions: a blocked directed link drops every message on it.
  void isolate(NodeId id) {
    for (const auto& [other, n] : disks_) {
      if (other == id) continue;
      blocked_.insert({id, other});
      blocked_.insert({other, id});
    }
  }
  void block(NodeId from, NodeId to) { blocked_.insert({from, to}); }
  void heal() { blocked_.clear(); }
  bool blocked(NodeId from, NodeId to) const { return blocked_.count({from, to}) != 0; }

  // Crash: the node object and its queue are gone; the disk stays. Restart reads the disk back.
  void crash(NodeId id) {
    nodes_.erase(id);
    randoms_.erase(id);
    take([&](const Message& m) { return m.to == id || m.from == id; });
  }
  void restart(NodeId id) {
    applied_[id].clear();
    start(id);
  }

  // The host's state machine snapshot: here simply the number of applied entries.
  void compact(NodeId id, Index index) {
    node(id).compact(index, snapshot_bytes("state@" + std::to_string(index)));
    Disk& d = disks_[id];
    d.snapshot = node(id).snapshot_meta();
    d.snapshot_data = snapshot_bytes("state@" + std::to_string(index));
    std::erase_if(d.entries, [&](const Entry& e) { return e.index <= index; });
  }

  const std::vector<Entry>& applied(NodeId id) { return applied_[id]; }
  std::vector<std::string> applied_data(NodeId id) {
    std::vector<std::string> out;
    for (const Entry& e : applied_[id]) {
      if (e.type == EntryType::Normal && !e.data.empty()) out.push_back(e.data);
    }
    return out;
  }
  const std::vector<ReadState>& reads(NodeId id) { return reads_[id]; }
  const Disk& disk(NodeId id) { return disks_[id]; }
  std::size_t snapshots_installed(NodeId id) { return snapshots_installed_[id]; }
  // Times the node read dropped entries back from its disk (Config::log_memory_bytes_max).
  std::size_t entry_reads(NodeId id) { return entry_reads_[id]; }
  // Every invariant violation seen after any step; a scenario test requires it to stay empty.
  const std::vector<std::string>& failures() const { return failures_; }

  // Restart (after crash) of a host whose state machine is durable and had applied `applied`
  // (snapshot index <= applied <= durable commit): the node does not hand those entries out
  // again, so it must rebuild its configuration from them itself. applied(id) restarts empty.
  void restart_with_applied(NodeId id, Index applied) {
    applied_[id].clear();
    const Disk& d = disks_[id];
    RestoreState state;
    state.hard_state = d.hard_state;
    state.snapshot = d.snapshot;
    state.snapshot_data = d.snapshot_data;
    state.entries = d.entries;
    state.applied = applied;
    Config cfg;
    cfg.id = id;
    if (tweak_) tweak_(cfg);
    add_reader(id, cfg);
    randoms_[id] = std::make_unique<SplitMix>(id * 7919);
    nodes_[id] = std::make_unique<Node>(cfg, *randoms_[id], std::move(state));
  }

 private:
  // A node given a memory budget for its log reads dropped entries back from its disk here.
  void add_reader(NodeId id, Config& cfg) {
    if (cfg.log_memory_bytes_max == 0 || cfg.read_entries) return;
    cfg.read_entries = [this, id](Index lo, Index hi, std::size_t max_bytes) {
      ++entry_reads_[id];
      std::vector<Entry> out;
      std::size_t bytes = 0;
      for (const Entry& e : disks_[id].entries) {
        if (e.index < lo + out.size()) continue;
        if (e.index != lo + out.size() || e.index >= hi) break;
        bytes += e.data.size();
        if (!out.empty() && bytes > max_bytes) break;
        out.push_back(e);
      }
      return out;
    };
  }

  void start(NodeId id) {
    Config cfg;
    cfg.id = id;
    if (tweak_) tweak_(cfg);
    add_reader(id, cfg);
    const Disk& d = disks_[id];
    RestoreState state;
    state.hard_state = d.hard_state;
    state.snapshot = d.snapshot;
    state.snapshot_data = d.snapshot_data;
    state.entries = d.entries;
    state.applied = d.snapshot.index;
    randoms_[id] = std::make_unique<SplitMix>(id * 7919);
    nodes_[id] = std::make_unique<Node>(cfg, *randoms_[id], std::move(state));
  }

  void persist(NodeId id, const Ready& rd) {
    Disk& d = disks_[id];
    if (rd.snapshot) {
      d.snapshot = rd.snapshot->meta;
      d.snapshot_data = rd.snapshot->data;
      d.entries.clear();
      ++snapshots_installed_[id];
    }
    if (!rd.entries.empty()) {
      Index first = rd.entries.front().index;
      std::erase_if(d.entries, [&](const Entry& e) { return e.index >= first; });
      d.entries.insert(d.entries.end(), rd.entries.begin(), rd.entries.end());
    }
    if (rd.hard_state) d.hard_state = *rd.hard_state;
  }

  void check(NodeId id) {
    if (!has_node(id)) return;
    for (const std::string& v : check_invariants(node(id))) {
      failures_.push_back("node " + std::to_string(id) + ": " + v);
    }
  }

  std::function<void(Config&)> tweak_;
  std::map<NodeId, std::unique_ptr<SplitMix>> randoms_;
  std::map<NodeId, std::unique_ptr<Node>> nodes_;
  std::map<NodeId, Disk> disks_;
  std::map<NodeId, std::vector<Entry>> applied_;
  std::map<NodeId, std::vector<ReadState>> reads_;
  std::map<NodeId, std::size_t> snapshots_installed_;
  std::map<NodeId, std::size_t> entry_reads_;
  std::vector<Message> queue_;
  std::set<std::pair<NodeId, NodeId>> blocked_;
  std::vector<std::string> failures_;
};

}  // namespace coord::raft::testing
