// The leader's view of one follower's replication, as a small state machine:
//   Probe: we do not know where the follower's log matches; one Append at a time.
//   Replicate: the follower matches at `match`; Appends are pipelined up to a window.
//   Snapshot: the follower needs entries we compacted; we stream a snapshot in chunks.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <string>

#include "raft/types.h"

namespace coord::raft {

struct Progress {
  enum class State : std::uint8_t { Probe, Replicate, Snapshot };

  Index match = 0;
  Index next = 1;
  State state = State::Probe;

  // Probe: an Append is out and we wait for its answer (or the next heartbeat) before another.
  bool probe_sent = false;
  // Replicate: each Append in flight, oldest first: its last index and its entries' data bytes.
  struct InFlight {
    Index last = 0;
    std::size_t bytes = 0;
  };
  std::deque<InFlight> inflight;
  std::size_t inflight_bytes = 0;  // the sum of inflight's bytes

  // Heard from since the last check-quorum round.
  bool recent_active = false;
  // Highest read round this follower acknowledged in a heartbeat response.
  std::uint64_t read_round_acked = 0;
  // A heartbeat answer already made the leader resend to this (lagging) follower since the last
  // heartbeat broadcast. A follower answering a backlog of heartbeats at once (after a stall, or
  // as a slow link's queue drains) would otherwise get one Append per answer, each up to
  // append_bytes_max, all in one Ready. Every broadcast re-arms it, so a lost Append is still
  // recovered within one heartbeat interval.
  bool heartbeat_resent = false;

  // Snapshot transfer: what we send, how far the follower has confirmed, and ticks since the
  // last chunk went out (to resend a lost one).
  SnapshotMeta snapshot_meta;
  SnapshotDataPtr snapshot_data;
  std::uint64_t snapshot_offset = 0;
  int snapshot_idle_ticks = 0;

  void become_probe() {
    state = State::Probe;
    next = match + 1;
    probe_sent = false;
    clear_inflight();
    snapshot_data.reset();
  }
  void become_replicate() {
    state = State::Replicate;
    next = match + 1;
    probe_sent = false;
    clear_inflight();
    snapshot_data.reset();
  }
  // The window is full by count, or by bytes when max_bytes is not 0 (one Append always fits
  // into an empty window, however large).
  bool inflight_full(std::size_t max_msgs, std::size_t max_bytes = 0) const {
    return inflight.size() >= max_msgs || (max_bytes != 0 && inflight_bytes >= max_bytes);
  }
  void add_inflight(Index last, std::size_t bytes) {
    inflight.push_back({last, bytes});
    inflight_bytes += bytes;
  }
  void pop_inflight() {
    inflight_bytes -= inflight.front().bytes;
    inflight.pop_front();
  }
  void clear_inflight() {
    inflight.clear();
    inflight_bytes = 0;
  }
  void free_inflight_to(Index index) {
    while (!inflight.empty() && inflight.front().last <= index) pop_inflight();
  }
  // True when the answer is news: `index` moves match forward.
  bool maybe_update(Index index) {
    bool updated = false;
    if (index > match) {
      match = index;
      updated = true;
      probe_sent = false;
    }
    if (next < index + 1) next = index + 1;
    return updated;
  }
};

const char* to_string(Progress::State state);

}  // namespace coord::raft
