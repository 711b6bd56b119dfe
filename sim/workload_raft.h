// The `raft` workload: a few clients, each with one request outstanding, propose unique commands
// to the node they believe leads (following NotLeader hints, moving on after a timeout) and now
// and then ask for a linearizable read; an operator now and then asks the leader to transfer
// leadership. Acknowledgements are what the checkers hold the cluster
// to: an acked command must never be lost.
#pragma once

#include <cstdint>
#include <vector>

#include "raft/types.h"
#include "sim/client.h"
#include "sim/env.h"
#include "sim/rng.h"
#include "sim/time.h"
#include "sim/workload.h"

namespace coord::sim {

struct WorkloadParams {
  int clients = 3;
  Micros think_us_max = 20'000;         // between a reply and the next request
  Micros retry_backoff_us_max = 30'000;  // before retrying elsewhere
  Micros request_timeout_us = 600'000;   // then the client tries another node
  std::uint32_t read_ppm = 100'000;      // share of requests that are reads
  // An operator asks the leader to hand over leadership every so often (0: never).
  Micros transfer_every_us_min = 1'000'000;
  Micros transfer_every_us_max = 6'000'000;
};

class RaftWorkload final : public ClientWorkload {
 public:
  RaftWorkload(int nodes, const WorkloadParams& params, std::uint64_t root_seed, Env& env,
               ClientTransport& transport);

  void start(Micros stop_at) override;
  void on_reply(const ClientReply& reply) override;
  const WorkloadStats& stats() const override { return stats_; }

 private:
  struct Client {
    std::uint64_t id;
    Rng rng;
    raft::NodeId target;
    std::uint64_t seq = 0;  // of commands, which must be unique
    std::uint64_t op = 0;   // of requests
    bool waiting = false;
  };

  void issue(Client& c);
  void issue_after(Client& c, Micros delay_us);
  void timed_out(Client& c, std::uint64_t op);
  raft::NodeId other_node(Client& c, raft::NodeId avoid);
  bool is_operator(const Client& c) const { return c.id == operator_id_; }

  int nodes_;
  WorkloadParams params_;
  Env& env_;
  ClientTransport& transport_;
  std::vector<Client> clients_;  // the last one is the operator when transfers are on
  std::uint64_t operator_id_ = 0;
  Micros stop_at_ = 0;
  WorkloadStats stats_;
};

}  // namespace coord::sim
