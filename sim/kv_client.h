// A simulated client of the replicated kv store, implementing the interface the fencing recipes
// are written against (fencing/kv_client.h), over simulated replicas and virtual time. Workloads
// drive it (the kv and watch workloads; a locks workload can run the recipes on it unchanged).
//
// Writes are exactly-once: the client numbers them in its session (one sequence number per
// write() call, in call order) and keeps one in flight at a time, because the state machine
// remembers only a session's last sequence. Each attempt goes to the node it believes leads; on
// a NotLeader hint, a lost slot or silence for attempt_timeout_us it tries again with the same
// session and sequence, elsewhere, until write_give_up_us after the call: then the outcome is
// unknown. Reads go to one node (any member: ReadIndex makes a follower's read linearizable),
// moving on when it cannot serve them, until read_give_up_us.
//
// A watch is a stream of polls to one node: each poll is answered when the node has events or
// after its hold time, so silence beyond watch_poll_timeout_us means the node is gone (crashed,
// paused, or its watcher was dropped). The client then opens the watch on another node from the
// revision after the last one it has fully delivered, so the stream goes on exactly once, in
// order, across crashes, leader changes and partitions. It also moves when its node keeps saying
// it knows no leader (a partitioned follower falls behind), and now and then for no reason, so
// resumption is exercised all the time. Compacted and WatchOverflow end the stream (on_end).
//
// Callbacks never run inside the call that registered them: answers arrive as later events.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "fencing/kv_client.h"
#include "kv/command.h"
#include "raft/types.h"
#include "sim/client.h"
#include "sim/clock.h"
#include "sim/env.h"
#include "sim/rng.h"
#include "sim/time.h"

namespace coord::sim {

struct SimKvClientParams {
  Micros attempt_timeout_us = 500'000;  // no answer by then: try another node
  Micros retry_backoff_us_max = 30'000;
  Micros write_give_up_us = 10'000'000;  // after the call: the outcome is unknown
  Micros read_give_up_us = 3'000'000;
  // Longer than the replicas' hold time (ReplicaParams::watch_hold_us) plus the round trip.
  Micros watch_poll_timeout_us = 1'000'000;
  std::size_t watch_events_per_poll = 32;
  // A slow consumer: up to this long between receiving events and polling again.
  Micros watch_poll_delay_us_max = 0;
  // Per poll answered: move the watch to another node anyway (exercises resumption).
  std::uint32_t watch_move_ppm = 5'000;
  // Answers in a row from a node that knows no leader before the watch moves away from it.
  int watch_leaderless_polls_max = 5;
};

struct SimKvClientStats {
  std::uint64_t writes = 0;
  std::uint64_t writes_answered = 0;
  std::uint64_t writes_unknown = 0;
  std::uint64_t write_attempts = 0;
  std::uint64_t reads = 0;
  std::uint64_t reads_answered = 0;
  std::uint64_t reads_unreached = 0;
  std::uint64_t redirects = 0;
  std::uint64_t timeouts = 0;
  std::uint64_t watches = 0;
  std::uint64_t watch_moves = 0;
  std::uint64_t watch_events = 0;
};

class SimKvClient final : public fencing::KvClient {
 public:
  // What the client knows of one of its watches (for checkers).
  struct WatchView {
    kv::WatchRequest request;
    std::optional<kv::Revision> start;  // the resolved start, once a node opened it
    // Every matching event at or below this revision has been delivered to on_events.
    kv::Revision progress = 0;
    bool ended = false;
    kv::Status end_status;  // when ended: why (Ok: cancelled by its owner)
    std::uint64_t moves = 0;
  };

  SimKvClient(std::uint64_t id, kv::SessionId session, int nodes, const SimKvClientParams& params, Rng rng,
              Env& env, ClientTransport& transport);
  SimKvClient(const SimKvClient&) = delete;
  SimKvClient& operator=(const SimKvClient&) = delete;

  // fencing::KvClient.
  void write(kv::Body body, std::function<void(const fencing::WriteOutcome&)> done) override;
  void get(std::string path, std::function<void(const fencing::ReadOutcome<kv::Node>&)> done) override;
  void list(std::string path, kv::ListOptions options,
            std::function<void(const fencing::ReadOutcome<kv::ListPage>&)> done) override;
  fencing::WatchHandle watch(kv::WatchRequest request, fencing::WatchCallbacks callbacks) override;
  void cancel_watch(fencing::WatchHandle handle) override;
  fencing::Millis now_ms() const override;
  void after(fencing::Millis delay_ms, std::function<void()> action) override;

  // A reply addressed to this client (the simulation routes by ClientReply::client).
  void on_reply(const ClientReply& reply);

  std::uint64_t id() const { return id_; }
  kv::SessionId session() const { return session_; }
  // The sequence number the latest write() call was given.
  std::uint64_t last_sequence() const { return sequence_; }
  const WatchView* watch_view(fencing::WatchHandle handle) const;
  const SimKvClientStats& stats() const { return stats_; }
  // The client process's own clock (skewed, drifting), for now_ms() and after(): what the
  // recipes measure leases with. Null (the default): virtual time. Must outlive the client; it
  // only ever runs forward (a monotonic clock), so it may drift but must not jump.
  void set_clock(const LocalClock* clock) { clock_ = clock; }
  // A consumer that becomes faster or slower (SimKvClientParams::watch_poll_delay_us_max).
  void set_watch_poll_delay_max(Micros delay_us) { params_.watch_poll_delay_us_max = delay_us; }

 private:
  struct Write {
    std::uint64_t sequence = 0;
    std::string command;  // encoded once: every attempt carries the same bytes
    std::string label;
    std::function<void(const fencing::WriteOutcome&)> done;
    Micros give_up_at = 0;
    std::uint64_t attempts = 0;
  };
  struct Read {
    KvRead what;
    std::function<void(const fencing::ReadOutcome<kv::Node>&)> done_get;
    std::function<void(const fencing::ReadOutcome<kv::ListPage>&)> done_list;
    Micros give_up_at = 0;
    std::uint64_t attempts = 0;
    std::uint64_t op = 0;  // the attempt in flight, 0: none (waiting to retry)
  };
  struct Watch {
    WatchView view;
    fencing::WatchCallbacks callbacks;
    raft::NodeId node = raft::kNoNode;
    bool open = false;  // a node holds it under (incarnation, id)
    std::uint64_t incarnation = 0;
    kv::WatchId id = 0;
    int leaderless = 0;
    std::uint64_t op = 0;          // the open or poll in flight, 0: none
    std::uint64_t generation = 0;  // retires timers set before a move or an end
  };
  // What a request in flight is for.
  struct Attempt {
    enum class For : std::uint8_t { Write, Read, WatchOpen, WatchPoll };
    For what = For::Write;
    std::uint64_t key = 0;  // write sequence, read id or watch handle
  };

  std::uint64_t send(raft::NodeId to, ClientRequest request, Attempt attempt, Micros timeout_us);
  void timed_out(std::uint64_t op);

  void start_write();
  void send_write();
  void finish_write(fencing::WriteOutcome outcome);
  void on_write_reply(const ClientReply& reply);

  void send_read(std::uint64_t id);
  void finish_read(std::uint64_t id, const ClientReply* reply);
  void on_read_reply(std::uint64_t id, const ClientReply& reply);

  void watch_open(fencing::WatchHandle handle);
  void watch_poll(fencing::WatchHandle handle);
  void watch_move(fencing::WatchHandle handle, const char* why);
  void watch_close_remote(Watch& w);
  void watch_end(fencing::WatchHandle handle, kv::Status why);
  void on_watch_reply(const Attempt& attempt, const ClientReply& reply);

  raft::NodeId other_node(raft::NodeId avoid);
  raft::NodeId redirect(const ClientReply& reply);
  Micros backoff();

  std::uint64_t id_;
  kv::SessionId session_;
  int nodes_;
  SimKvClientParams params_;
  Rng rng_;
  Env& env_;
  ClientTransport& transport_;
  const LocalClock* clock_ = nullptr;

  raft::NodeId write_target_;
  raft::NodeId read_target_;
  std::uint64_t sequence_ = 0;
  std::uint64_t next_op_ = 1;
  std::uint64_t next_read_ = 1;
  fencing::WatchHandle next_watch_ = 1;
  std::deque<Write> writes_;    // the front one is in flight
  std::uint64_t write_op_ = 0;  // the write's latest attempt
  std::map<std::uint64_t, Read> reads_;
  std::map<fencing::WatchHandle, Watch> watches_;
  std::map<std::uint64_t, Attempt> attempts_;  // by op: requests in flight
  SimKvClientStats stats_;
};

// "put /a=v1", "txn[2 cmp; put /a=v; del /b | get /c]": one line, for traces and reports.
std::string describe(const kv::Body& body);

}  // namespace coord::sim
