// Tunables of one Raft node. Time is counted in ticks: the host calls Node::tick() at a fixed
// interval of its own clock, so the core never reads a clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "raft/types.h"

namespace coord::raft {

struct Config {
  NodeId id = kNoNode;

  // A follower campaigns after a random timeout in [election_ticks, 2 * election_ticks).
  int election_ticks = 10;
  // A leader sends heartbeats every heartbeat_ticks; must be well below election_ticks.
  int heartbeat_ticks = 1;

  // Pre-vote: a node asks whether it could win before disrupting the cluster with a new term.
  bool pre_vote = true;
  // Check-quorum: a leader that has not heard from a quorum for election_ticks steps down, and
  // followers that heard from a leader within election_ticks ignore (pre-)vote requests.
  bool check_quorum = true;

  // Upper bound on entry bytes in one Append message (at least one entry is always sent).
  std::size_t append_bytes_max = 1 << 20;
  // Appends in flight to one follower in the replicate state before the leader waits for acks.
  std::size_t inflight_msgs_max = 256;
  // Entry data bytes in flight to one follower before the leader waits for acks (0: only the
  // count above bounds it; one Append always goes out, however large). Without it a follower far behind gets inflight_msgs_max Appends of
  // up to append_bytes_max each in one Ready (256 MiB by default), all copied into messages at
  // once and, for entries the core no longer keeps in memory, read back from disk at once.
  std::size_t inflight_bytes_max = std::size_t{8} << 20;
  // Bytes of snapshot data in one Snapshot message.
  std::size_t snapshot_chunk_bytes_max = 64 << 10;
  // Upper bound on committed entry bytes handed out in one Ready (at least one entry).
  std::size_t committed_bytes_max = 16 << 20;

  // Reads durable entries back from the host's log: entries [lo, hi) in order, by the rule of
  // RaftLog::slice (at least one; no entry that would take the data past max_bytes). With it, the core keeps in memory only the entries not yet persisted or handed out
  // to apply, plus the newest of the others up to log_memory_bytes_max bytes of data; an Append
  // to a follower further behind reads the rest back. Empty (or a zero budget): the whole log
  // since the snapshot stays in memory. Called from step() and tick(), only for entries the
  // host has persisted and not compacted; an empty result (the host could not read them) sends
  // nothing, and the host must fail-stop. Deterministic hosts return the same entries as were
  // written, so a run is the same with or without it.
  std::function<std::vector<Entry>(Index lo, Index hi, std::size_t max_bytes)> read_entries;
  std::size_t log_memory_bytes_max = 0;

  // Makes the receiver of an incoming snapshot's chunks (a file, say); empty: kept in memory.
  // Called from step(), so it must not block for long; what it does is the host's I/O.
  std::function<std::unique_ptr<SnapshotReceiver>(const SnapshotMeta&)> snapshot_receiver;
};

}  // namespace coord::raft
