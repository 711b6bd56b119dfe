// The `watch` workload: writers change a small tree under /w (puts, creates, deletes, recursive
// deletes, multi-key transactions, ephemeral keys whose leases are revoked or run out on the
// leader's clock) while watcher clients keep several watches open on keys, subtrees and
// children, starting now, a little in the past, far in the past (below the compaction point) or
// in the future; some are cancelled after a while, one watcher consumes slowly, a compactor
// drops old history. Every SimKvClient watch moves between replicas as they crash, pause, fall
// behind, or for no reason.
//
// The check, against the reference's committed events (sim/kv_reference.h), as events arrive:
// each watch receives exactly the committed events that match its filter from its start
// revision on, in order, with nothing missing, repeated or changed (previous values included
// when asked for). When a watch ends: Compacted only if its resume point really was below a
// compaction; WatchOverflow only if more matching events than a watcher may buffer were pending.
// At the end: every watch delivered everything up to the progress it reports, and every live
// watch reports progress at least up to the revision reached settle_us before the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kv/watch.h"
#include "sim/checkers.h"
#include "sim/client.h"
#include "sim/env.h"
#include "sim/kv_client.h"
#include "sim/kv_reference.h"
#include "sim/rng.h"
#include "sim/time.h"
#include "sim/workload.h"

namespace coord::sim {

struct WatchWorkloadParams {
  int writers = 3;
  int watchers = 3;  // watcher clients; the last one consumes slowly until the drain
  int watches_per_watcher = 3;
  Micros think_us_max = 30'000;
  Micros watch_pause_us_max = 1'000'000;     // before a watcher opens its next watch
  std::uint32_t watch_cancel_ppm = 500'000;  // a new watch gets cancelled after a while
  Micros watch_life_us_max = 6'000'000;
  SimKvClientParams client;
  Micros slow_poll_delay_us_max = 1'000'000;
  Micros compact_every_us = 3'000'000;
  kv::Revision compact_keep_revisions = 150;
  // Lease writer: TTLs, keep-alive spacing.
  std::uint64_t lease_ttl_ms_min = 300;
  std::uint64_t lease_ttl_ms_max = 1'500;
  // Live watches must have caught up with the revision reached this long before the end.
  Micros settle_us = 3'000'000;
  // As configured on the replicas (kv::Limits::watch_buffer_events_max).
  std::size_t watch_buffer_events_max = 4'096;
};

class WatchWorkload final : public ClientWorkload {
 public:
  WatchWorkload(int nodes, const WatchWorkloadParams& params, std::uint64_t root_seed, Env& env,
                ClientTransport& transport, const KvReference& reference, Micros end_at,
                std::function<void(Violation)> report);

  void start(Micros stop_at) override;
  void on_reply(const ClientReply& reply) override;
  const WorkloadStats& stats() const override;
  Verdict final_check() override;

 private:
  struct Actor {
    std::unique_ptr<SimKvClient> kv;
    Rng rng;
    std::uint64_t values = 0;
  };
  // The checker's view of one watch.
  struct Checked {
    std::size_t watcher = 0;
    fencing::WatchHandle handle = 0;
    kv::WatchRequest request;
    bool started = false;    // start and cursor set
    kv::Revision start = 0;  // the resolved start revision
    // The next candidate in reference().events(). Set when the start is known, which may be
    // before the reference reaches it: then events below the start are still to come after it.
    std::size_t cursor = 0;
    std::uint64_t delivered = 0;
  };

  void write_step(std::size_t writer);
  void lease_step();
  void lease_keepalive(kv::LeaseId lease, int left, std::uint64_t ttl_ms);
  void open_watch(std::size_t watcher);
  void on_events(std::size_t checked, const std::vector<kv::Event>& events);
  void on_end(std::size_t checked, const kv::Status& why);
  void compact_step();
  // Moves the cursor to the next reference event matching the watch (or the end).
  void seek(Checked& c);
  void begin(Checked& c);
  Verdict check_delivered_through(Checked& c, kv::Revision progress);
  std::string name(const Checked& c) const;
  void fail(std::string message);

  WatchWorkloadParams params_;
  Env& env_;
  const KvReference& reference_;
  Micros end_at_;
  std::function<void(Violation)> report_;
  std::vector<Actor> writers_;
  std::vector<Actor> watchers_;
  std::unique_ptr<Actor> leaser_;
  std::unique_ptr<Actor> compactor_;
  std::vector<SimKvClient*> by_id_;  // index: client id - 1
  std::vector<Checked> checked_;
  Micros stop_at_ = 0;
  bool failed_ = false;
  std::uint64_t events_checked_ = 0;
  std::uint64_t ended_compacted_ = 0;
  std::uint64_t ended_overflow_ = 0;
  mutable WorkloadStats stats_;
};

}  // namespace coord::sim
