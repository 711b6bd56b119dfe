// The `kv` workload: a few clients (SimKvClient, one session each, one operation in flight)
// run get / put / create / delete / compare-and-set (on version and on value) / transactions /
// list against the replicated kv store, under every fault, over a few small key groups
// (/g0/k0.., /g1/k0.., ...); a compactor keeps the history short. Every operation's invocation
// and completion (virtual time) and answer are recorded; a write whose client gave up has an
// unknown outcome.
//
// At the end the history is split by group (no operation spans two) and each group is checked
// for linearizability against KvGroupModel (sim/kv_model.h). A write with an unknown outcome is
// settled with what the reference (sim/kv_reference.h) saw of its session and sequence: applied
// (with that result, taking effect by the time it was first applied) or never applied (dropped
// from the history). That is sound, since the log is the ground truth of which writes happened,
// and it keeps the search small: Wing-Gong's search is exponential in the operations that are
// open at once, and an unknown write would stay open until the end of the run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sim/client.h"
#include "sim/env.h"
#include "sim/kv_client.h"
#include "sim/kv_model.h"
#include "sim/kv_reference.h"
#include "sim/rng.h"
#include "sim/time.h"
#include "sim/workload.h"

namespace coord::sim {

struct KvWorkloadParams {
  int clients = 4;
  int groups = 3;
  int keys = 3;  // per group, at most KvGroupModel::kKeysMax
  Micros think_us_max = 20'000;
  // Clients give up on a write after 3 s (long partitions and pauses outlast that), so some
  // outcomes are unknown and get settled from the log.
  SimKvClientParams client = [] {
    SimKvClientParams p;
    p.write_give_up_us = 3'000'000;
    return p;
  }();
  // The compactor keeps this many revisions of history, compacting every so often.
  Micros compact_every_us = 2'000'000;
  kv::Revision compact_keep_revisions = 200;
  // Search steps per group before the checker gives up (reported as a failure, never a pass).
  std::size_t linearizability_steps_max = 20'000'000;
};

class KvWorkload final : public ClientWorkload {
 public:
  KvWorkload(int nodes, const KvWorkloadParams& params, std::uint64_t root_seed, Env& env,
             ClientTransport& transport, const KvReference& reference);

  void start(Micros stop_at) override;
  void on_reply(const ClientReply& reply) override;
  const WorkloadStats& stats() const override;
  Verdict final_check() override;

  // One recorded operation, as the checker sees it.
  struct Record {
    int group = 0;
    int client = 0;
    Micros call = 0;
    Micros ret = 0;
    bool returned = false;
    bool write = false;
    kv::SessionId session = 0;
    std::uint64_t sequence = 0;
    KvGroupModel::Input input;
    std::optional<KvGroupModel::Output> output;  // none: unknown outcome
  };
  const std::vector<Record>& history() const { return history_; }

 private:
  struct Client {
    int index = 0;
    std::unique_ptr<SimKvClient> kv;
    Rng rng{0};
    std::uint64_t values = 0;  // values written, for unique values
    // What this client last saw of each key (group * keys + key), to aim compare-and-sets.
    std::vector<std::uint64_t> seen_version;
    std::vector<std::string> seen_value;
  };

  void issue(Client& c);
  void issue_after(Client& c, Micros delay_us);
  KvGroupModel::Input random_input(Client& c, int group);
  void completed(std::size_t record, std::optional<KvGroupModel::Output> output);
  void remember(Client& c, const Record& r);
  void compact_tick();

  KvWorkloadParams params_;
  Env& env_;
  const KvReference& reference_;
  std::vector<Client> clients_;
  std::unique_ptr<SimKvClient> compactor_;
  Rng compactor_rng_;
  Micros stop_at_ = 0;
  std::vector<Record> history_;
  mutable WorkloadStats stats_;
};

}  // namespace coord::sim
