// The simulated network between replicas: every message gets its own latency (so reordering
// falls out of it), may be lost or duplicated, and never crosses a blocked link. Partitions are
// a directed matrix of blocked links; the shapes below are the ones real networks produce.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "raft/types.h"
#include "sim/rng.h"
#include "sim/time.h"

namespace coord::sim {

// How links behave when no partition blocks them. Probabilities are parts per million.
struct LinkParams {
  Micros latency_us_base = 100;
  Micros latency_us_jitter_max = 900;
  // A small share of messages take a long detour (retransmits, queueing in a switch).
  std::uint32_t tail_ppm = 10'000;
  Micros tail_latency_us_max = 20'000;
  std::uint32_t loss_ppm = 0;
  std::uint32_t duplicate_ppm = 0;

  bool operator==(const LinkParams&) const = default;
};

// Which directed links are cut. Node ids are 1..nodes.
class Partition {
 public:
  Partition() = default;
  explicit Partition(int nodes);

  int nodes() const { return nodes_; }
  bool blocked(raft::NodeId from, raft::NodeId to) const;
  void block(raft::NodeId from, raft::NodeId to);
  void block_both(raft::NodeId a, raft::NodeId b);
  bool any() const;
  // "1->2 1->3 ..." (sorted), "none" when nothing is blocked.
  std::string describe() const;

  bool operator==(const Partition&) const = default;

 private:
  std::size_t slot(raft::NodeId from, raft::NodeId to) const;

  int nodes_ = 0;
  std::vector<bool> blocked_;  // nodes_ * nodes_, row = from
};

// Shapes. `group` lists the node ids on one side.
Partition isolate(int nodes, raft::NodeId node);
// The nodes in `group` cannot talk to the others (either side may hold the majority).
Partition split(int nodes, const std::vector<raft::NodeId>& group);
// Only from -> to is cut; replies still flow the other way.
Partition one_way(int nodes, raft::NodeId from, raft::NodeId to);
// Two halves that cannot see each other, and `bridge` which sees both (the classic case that
// trips check-quorum and pre-vote implementations).
Partition bridge(int nodes, raft::NodeId bridge_node);

// Messages in flight on one directed link beyond which new ones are dropped, as a full socket
// buffer would. Raft tolerates loss; an unbounded queue would hide a message storm as memory use.
inline constexpr std::size_t kInFlightPerLinkMax = 2048;

// What happens to one message.
struct Route {
  enum class Outcome : std::uint8_t { Delivered, Lost, Blocked, Overflow };
  Outcome outcome = Outcome::Delivered;
  int copies = 0;           // 0 unless delivered; 2 when duplicated
  Micros delay_us[2] = {0, 0};
};

const char* to_string(Route::Outcome outcome);

class Network {
 public:
  Network(int nodes, Rng rng);

  const LinkParams& params() const { return params_; }
  void set_params(const LinkParams& params) { params_ = params; }
  const Partition& partition() const { return partition_; }
  void set_partition(Partition partition) { partition_ = std::move(partition); }
  void heal() { partition_ = Partition(nodes_); }
  bool blocked(raft::NodeId from, raft::NodeId to) const { return partition_.blocked(from, to); }

  // Decides the fate of one message sent now from `from` to `to`. Each delivered copy must be
  // reported with arrived() when it leaves the wire.
  Route route(raft::NodeId from, raft::NodeId to);
  void arrived(raft::NodeId from, raft::NodeId to);

 private:
  Micros latency();
  std::size_t& in_flight(raft::NodeId from, raft::NodeId to);

  int nodes_;
  Rng rng_;
  LinkParams params_;
  Partition partition_;
  std::vector<std::size_t> in_flight_;  // per directed link, row = from
};

}  // namespace coord::sim
