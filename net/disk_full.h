// A member whose disk is full: what the host does instead of stopping.
//
// When the Raft log cannot be written for lack of space (the file system's free space is below
// the reserve, or LMDB's commit failed with ENOSPC / MDB_MAP_FULL), the write changed nothing
// on disk. The host then keeps the Ready it could not persist and does not send the messages
// that depend on it, exactly as if its fsync were taking very long: the host never steps or ticks the core
// while a Ready is outstanding (net/replica_host.h), so the core cannot step down or hand over
// leadership in this state either. It retries the same write with a growing pause, answers writes and linearizable
// reads at once with NoSpace / Unavailable instead of queueing them, and keeps serving
// serializable reads, status and watches from its applied state. A leader in this state sends
// no heartbeats, so the other members elect a new leader after an election timeout and the
// cluster keeps taking writes; a follower simply stops acknowledging until space returns, then
// catches up like any slow follower. Nothing is lost: what this member acknowledged was
// durable before, and what it holds was never acknowledged.
//
// The free-space check before each write keeps a reserve for what follows a log write (the
// state machine's own LMDB commit when the entries apply, snapshots). Should an apply still
// find no room (the state machine's directory on a file system of its own, or the space gone
// between the log write and the apply), its commit changed nothing (kv/storage.h), so the host
// holds the Ready at that step instead and retries the apply the same way.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "raft/ready.h"
#include "storage/disk_space.h"

namespace coord::net {

struct DiskFullOptions {
  // Refuse a log write unless this much space stays free on the data directory's file system
  // after it (plus a multiple of the write's own size, for the apply that follows). 0: no check
  // before writing; only the write's own ENOSPC counts.
  std::uint64_t reserve_bytes = std::uint64_t{64} << 20;
  // Pauses between retries, in ticks: the first, doubling up to the last.
  std::uint64_t retry_ticks_min = 1;
  std::uint64_t retry_ticks_max = 20;
};

using storage::failed_for_lack_of_space;
using storage::free_disk_bytes;

// Why a write of about `bytes` must not start in `directory` now, or nullopt when it may.
std::optional<std::string> lacks_room(const std::string& directory, std::uint64_t bytes,
                                      const DiskFullOptions& options);

// The bytes a log write of `ready` adds to the disk, for lacks_room: its entries, and its
// snapshot's bytes unless they are already a file of `log_directory` (a follower's received
// snapshot is written chunk by chunk as it arrives; recording it adds only a small record).
std::uint64_t log_write_bytes(const raft::Ready& ready, const std::string& log_directory);

// The retry schedule and the reason, for the host's one held write.
class DiskFullState {
 public:
  explicit DiskFullState(const DiskFullOptions& options) : options_(options) {}

  bool active() const { return active_; }
  const std::string& reason() const { return reason_; }
  std::uint64_t attempts() const { return attempts_; }

  // A write failed for lack of space at tick `now`: enter the state, or stay and back off.
  void failed(std::string reason, std::uint64_t now);
  bool retry_due(std::uint64_t now) const { return active_ && now >= next_retry_; }
  // A retry is under way: not due again until it fails.
  void retry_started() { next_retry_ = UINT64_MAX; }
  // The held write went through.
  void recovered();

 private:
  DiskFullOptions options_;
  bool active_ = false;
  std::string reason_;
  std::uint64_t attempts_ = 0;
  std::uint64_t pause_ = 0;
  std::uint64_t next_retry_ = 0;
};

}  // namespace coord::net
