// The replicated state machine: a hierarchical key store with revisions, MVCC history,
// transactions, exactly-once sessions and watches, on a Storage backend (kv/storage.h).
//
// Deterministic: the same entries applied to the same state give the same state and results,
// byte for byte, on either backend (no clocks, no randomness, no threads, no unordered
// iteration). Writes arrive as committed log entries through apply_batch(); reads are served
// locally (after ReadIndex, or as explicitly serializable reads) and never enter the log.
//
// Not thread-safe: the host calls it from one thread. The one exception is a SnapshotSource,
// which may be serialized on another thread while the owner keeps applying.
//
// Every replica must use the same Limits: a request one replica refuses and another accepts
// would fork their states.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kv/command.h"
#include "kv/event.h"
#include "kv/limits.h"
#include "kv/reads.h"
#include "kv/storage.h"
#include "kv/txn.h"
#include "kv/types.h"
#include "kv/watch.h"

namespace coord::kv {

// One committed log entry. Empty data is a leader's no-op: it only advances the applied index.
struct AppliedEntry {
  Index index = 0;
  std::string data;
};

// A consistent image of the state at one applied index, being serialized. It holds a pinned
// view of the storage, so the state machine may keep applying meanwhile; it must not outlive
// the Storage.
class SnapshotSource {
 public:
  explicit SnapshotSource(std::unique_ptr<ReadTxn> view);
  Index index() const { return index_; }
  Revision revision() const { return revision_; }
  // The snapshot bytes (kv/snapshot.h describes the format).
  std::string bytes() const;
  // The same bytes, streamed to `sink` a piece at a time (kv/snapshot.h).
  void write_to(const std::function<void(std::string_view)>& sink) const;

 private:
  std::unique_ptr<ReadTxn> view_;
  Index index_ = 0;
  Revision revision_ = 0;
};

class StateMachine final : private EventSource {
 public:
  // Opens the state in `storage`, initializing an empty one (the root "/" at revision 0).
  // Converts a storage written in layout format 3 to the current one, in one transaction
  // (kv/layout_v3.h). Throws StorageError (code storage_error_format) on a storage written in
  // another layout format, naming both formats; aborts on invalid limits.
  StateMachine(Storage& storage, const Limits& limits = {});

  // Applies committed entries, which must follow applied_index() without a gap, in one storage
  // transaction, and returns one result per entry. Afterwards the watch hub has the batch's
  // events. Throws StorageError when the storage fails; the state is then unchanged (the
  // transaction is aborted) and the batch may be retried.
  // `decided`, when given, sees the results once every entry has executed and before the
  // transaction commits: the entries are committed in the log, so their results are final (a
  // retry after a failed commit computes the same ones), and a host may answer its clients
  // while the storage writes its pages. It must not touch this state machine.
  using ResultsDecided = std::function<void(const std::vector<Result>&)>;
  std::vector<Result> apply_batch(const std::vector<AppliedEntry>& entries, const ResultsDecided& decided = {});

  // Reads. Revision 0 means the current revision; a past revision is served from the history
  // (Compacted below compact_revision(), FutureRevision above revision()). list and range of a
  // missing node are NotFound. Like apply_batch, reads throw StorageError when the backend
  // fails (for LMDB, e.g. MDB_READERS_FULL).
  ReadResult<Node> get(std::string_view path, Revision revision = 0) const;
  ReadResult<bool> exists(std::string_view path, Revision revision = 0) const;
  ReadResult<ListPage> list(std::string_view path, const ListOptions& options = {}) const;
  ReadResult<RangePage> range(std::string_view path, const RangeOptions& options = {}) const;

  // Leases, at the current state (they are not versioned). lease_ttl gives the granted TTL and
  // keep-alive count, and the lease's keys when `with_keys`; LeaseNotFound when it is gone. The
  // time left is the leader's to say (LeaseClock::remaining): only its clock counts down.
  ReadResult<LeaseInfo> lease_ttl(LeaseId id, bool with_keys = true) const;
  // Every lease, by id (at most leases_max).
  ReadResult<std::vector<Lease>> leases() const;

  Index applied_index() const { return applied_index_; }
  Revision revision() const { return revision_; }
  Revision compact_revision() const { return compact_revision_; }
  std::size_t session_count() const { return session_count_; }
  std::size_t lease_count() const { return lease_count_; }
  const Limits& limits() const { return limits_; }

  // Snapshots: a logical dump of every table taken in one read view.
  SnapshotSource begin_snapshot() const;
  std::string snapshot() const { return begin_snapshot().bytes(); }
  // Replaces the whole state with a snapshot's, in one storage transaction (the applied index
  // comes from the snapshot). Malformed bytes give InvalidRequest and change nothing.
  Status restore(std::string_view bytes);

  // Watches (kv/watch.h).
  WatchCreated watch(const WatchRequest& request);
  WatchResponse poll_watch(WatchId id, std::size_t events_max);
  Status cancel_watch(WatchId id);
  std::vector<WatchId> pending_watches() const { return hub_.pending(); }
  const WatchHub& watch_hub() const { return hub_; }

 private:
  struct Batch;

  void initialize();
  void load_meta();
  Result apply_entry(Batch& batch, const AppliedEntry& entry);
  Result apply_body(Batch& batch, const Body& body);
  Result apply_txn(Batch& batch, const Txn& txn);
  Result apply_compact(Batch& batch, const Compact& compact);
  Result apply_lease_grant(Batch& batch, const LeaseGrant& grant);
  Result apply_lease_keepalive(Batch& batch, const LeaseKeepAlive& keepalive);
  // Revoke (no expected count) and expire (applied only if the keep-alive count still matches).
  Result end_lease(Batch& batch, LeaseId id, std::optional<std::uint64_t> expected_keepalives);
  void write_changes(Batch& batch, ChangeSet& changes, Revision next);
  void remember(Batch& batch, SessionId session, std::uint64_t sequence, Index index,
                const Result& result);
  // Which state a read at `revision` sees, or why it cannot be served.
  Status read_point(Revision revision, ReadPoint& point, Revision& served) const;

  // EventSource, for the watch hub.
  Revision head_revision() const override { return revision_; }
  Revision history_start() const override { return compact_revision_; }
  ReplayChunk replay(const WatchFilter& filter, Revision from, std::size_t events_soft_max,
                     std::size_t rows_max) const override;

  Storage& storage_;
  Limits limits_;
  // Cached from the Meta table; updated only after a write commits.
  Index applied_index_ = 0;
  Revision revision_ = 0;
  Revision compact_revision_ = 0;
  std::size_t session_count_ = 0;
  LeaseId lease_next_ = 0;
  std::size_t lease_count_ = 0;
  WatchHub hub_;
};

}  // namespace coord::kv
