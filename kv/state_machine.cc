#include "kv/state_machine.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <utility>

#include "kv/codec.h"
#include "kv/history.h"
#include "kv/layout.h"
#include "kv/layout_v3.h"
#include "kv/path.h"
#include "kv/snapshot.h"
#include "kv/txn.h"
#include "raft/assert.h"

namespace coord::kv {

namespace {

std::uint64_t meta_u64(const ReadTxn& txn, std::string_view key) {
  const auto row = txn.get(Table::Meta, key);
  COORD_ASSERT(row.has_value(), "meta row missing");
  const auto v = decode_u64(*row);
  COORD_ASSERT(v.has_value(), "corrupt meta row");
  return *v;
}

Result failed(Status status, Revision revision) {
  Result result;
  result.status = std::move(status);
  result.revision = revision;
  return result;
}

Status not_found(std::string_view path) {
  return make_status(Error::NotFound, fmt::format("\"{}\" does not exist", path));
}

Status lease_not_found(LeaseId lease) {
  return make_status(Error::LeaseNotFound, fmt::format("lease {} does not exist", lease));
}

std::size_t page_limit(std::size_t asked, std::size_t max) {
  return asked == 0 || asked > max ? max : asked;
}

}  // namespace

// The state of one apply_batch: its write transaction and the meta values as the batch moves
// them; the cached copies in StateMachine change only after the commit.
struct StateMachine::Batch {
  std::unique_ptr<WriteTxn> txn;
  Index applied_index = 0;
  Revision revision = 0;
  Revision compact_revision = 0;
  std::size_t session_count = 0;
  LeaseId lease_next = 0;
  std::size_t lease_count = 0;
  std::vector<Event> events;
};

StateMachine::StateMachine(Storage& storage, const Limits& limits)
    : storage_(storage), limits_(limits), hub_(limits, 0) {
  COORD_ASSERT(valid(limits_), "inconsistent limits");
  // The longest key is a history key: path, "\0", revision.
  COORD_ASSERT(path_bytes_max + 9 <= storage_.key_bytes_max(), "storage keys too short for paths");
  initialize();
  load_meta();
  hub_.reset(revision_);
}

void StateMachine::initialize() {
  bool fresh = false;
  {
    const auto txn = storage_.read();
    if (const auto format = txn->get(Table::Meta, meta_key::format)) {
      const std::optional<std::uint64_t> found = decode_u64(*format);
      if (found == layout_format) return;
      if (found != layout_format_v3) {
        throw StorageError(storage_error_format,
                           fmt::format("the state storage has layout format {}; this build reads "
                                       "formats {} and {} only",
                                       found ? fmt::to_string(*found) : "(unreadable)",
                                       layout_format_v3, layout_format));
      }
    } else {
      fresh = true;
    }
  }
  if (!fresh) {
    // Written by the previous build: its records are converted, all in one transaction.
    upgrade_store_from_v3(storage_);
    return;
  }
  // A fresh store: the root exists from revision 0 on.
  const auto txn = storage_.write();
  NodeRecord root;
  txn->put(Table::Changes, change_key(0, "/"), encode_record(root));
  txn->put(Table::Nodes, history_key("/", 0), encode_kind(RecordKind::Value));
  root.kind = RecordKind::Metadata;
  txn->put(Table::Nodes, "/", encode_record(root));
  txn->put(Table::Meta, meta_key::format, encode_u64(layout_format));
  txn->put(Table::Meta, meta_key::applied_index, encode_u64(0));
  txn->put(Table::Meta, meta_key::revision, encode_u64(0));
  txn->put(Table::Meta, meta_key::compact_revision, encode_u64(0));
  txn->put(Table::Meta, meta_key::session_count, encode_u64(0));
  txn->put(Table::Meta, meta_key::lease_next, encode_u64(1));
  txn->put(Table::Meta, meta_key::lease_count, encode_u64(0));
  txn->commit();
}

void StateMachine::load_meta() {
  const auto txn = storage_.read();
  applied_index_ = meta_u64(*txn, meta_key::applied_index);
  revision_ = meta_u64(*txn, meta_key::revision);
  compact_revision_ = meta_u64(*txn, meta_key::compact_revision);
  session_count_ = meta_u64(*txn, meta_key::session_count);
  lease_next_ = meta_u64(*txn, meta_key::lease_next);
  lease_count_ = meta_u64(*txn, meta_key::lease_count);
  COORD_ASSERT(compact_revision_ <= revision_, "compacted beyond the head");
}

std::vector<Result> StateMachine::apply_batch(const std::vector<AppliedEntry>& entries, const ResultsDecided& decided) {
  std::vector<Result> results;
  if (entries.empty()) return results;
  results.reserve(entries.size());
  Batch batch;
  batch.txn = storage_.write();
  batch.applied_index = applied_index_;
  batch.revision = revision_;
  batch.compact_revision = compact_revision_;
  batch.session_count = session_count_;
  batch.lease_next = lease_next_;
  batch.lease_count = lease_count_;
  for (const AppliedEntry& entry : entries) {
    COORD_ASSERT(entry.index == batch.applied_index + 1,
                 "entries must follow the applied index without a gap");
    results.push_back(apply_entry(batch, entry));
    batch.applied_index = entry.index;
  }
  if (decided) decided(results);
  WriteTxn& txn = *batch.txn;
  txn.put(Table::Meta, meta_key::applied_index, encode_u64(batch.applied_index));
  txn.put(Table::Meta, meta_key::revision, encode_u64(batch.revision));
  txn.put(Table::Meta, meta_key::compact_revision, encode_u64(batch.compact_revision));
  txn.put(Table::Meta, meta_key::session_count, encode_u64(batch.session_count));
  txn.put(Table::Meta, meta_key::lease_next, encode_u64(batch.lease_next));
  txn.put(Table::Meta, meta_key::lease_count, encode_u64(batch.lease_count));
  txn.commit();  // throws StorageError, leaving every cached value as it was

  applied_index_ = batch.applied_index;
  revision_ = batch.revision;
  compact_revision_ = batch.compact_revision;
  session_count_ = batch.session_count;
  lease_next_ = batch.lease_next;
  lease_count_ = batch.lease_count;
  hub_.publish(batch.events, revision_);
  return results;
}

Result StateMachine::apply_entry(Batch& batch, const AppliedEntry& entry) {
  if (entry.data.empty()) return failed({}, batch.revision);  // a leader's no-op
  if (entry.data.size() > limits_.command_bytes_max) {
    return failed(make_status(Error::TooLarge,
                              fmt::format("command of {} bytes exceeds command_bytes_max ({})",
                                          entry.data.size(), limits_.command_bytes_max)),
                  batch.revision);
  }
  DecodedCommand decoded = decode_command(entry.data);
  if (!decoded.status.ok()) return failed(std::move(decoded.status), batch.revision);
  const Command& command = decoded.command;
  if (command.session_id == 0) return apply_body(batch, command.body);

  // Exactly once: the session remembers its last sequence and that request's result.
  WriteTxn& txn = *batch.txn;
  const std::string key = session_key(command.session_id);
  if (const auto row = txn.get(Table::Sessions, key)) {
    std::optional<SessionRecord> session = decode_session(*row);
    COORD_ASSERT(session.has_value(), "corrupt session record");
    if (command.sequence < session->sequence) {
      return failed(make_status(Error::StaleSequence,
                                fmt::format("sequence {} is older than the session's last, {}",
                                            command.sequence, session->sequence)),
                    batch.revision);
    }
    if (command.sequence == session->sequence) {
      std::optional<Result> first = decode_result(session->result);
      COORD_ASSERT(first.has_value(), "corrupt remembered result");
      remember(batch, command.session_id, command.sequence, entry.index, *first);
      return std::move(*first);
    }
  }
  Result result = apply_body(batch, command.body);
  remember(batch, command.session_id, command.sequence, entry.index, result);
  return result;
}

void StateMachine::remember(Batch& batch, SessionId session, std::uint64_t sequence, Index index,
                            const Result& result) {
  WriteTxn& txn = *batch.txn;
  const std::string key = session_key(session);
  if (const auto row = txn.get(Table::Sessions, key)) {
    const std::optional<SessionRecord> old = decode_session(*row);
    COORD_ASSERT(old.has_value(), "corrupt session record");
    txn.erase(Table::SessionLru, session_lru_key(old->index, session));
  } else {
    batch.session_count += 1;
  }
  txn.put(Table::Sessions, key,
          encode_session(SessionRecord{sequence, index, encode_result(result)}));
  txn.put(Table::SessionLru, session_lru_key(index, session), "");

  // Forget the least recently used sessions beyond the limit; the order is by applied index,
  // so every replica forgets the same ones.
  while (batch.session_count > limits_.sessions_max) {
    std::string oldest;
    {
      const auto rows = txn.cursor(Table::SessionLru);
      COORD_ASSERT(rows->seek(""), "session count without sessions");
      oldest.assign(rows->key());
    }
    const auto victim = parse_session_lru_key(oldest);
    COORD_ASSERT(victim.has_value(), "corrupt session order key");
    txn.erase(Table::SessionLru, oldest);
    txn.erase(Table::Sessions, session_key(*victim));
    batch.session_count -= 1;
  }
}

Result StateMachine::apply_body(Batch& batch, const Body& body) {
  if (const auto* txn = std::get_if<Txn>(&body)) return apply_txn(batch, *txn);
  if (const auto* compact = std::get_if<Compact>(&body)) return apply_compact(batch, *compact);
  if (const auto* grant = std::get_if<LeaseGrant>(&body)) return apply_lease_grant(batch, *grant);
  if (const auto* revoke = std::get_if<LeaseRevoke>(&body)) {
    return end_lease(batch, revoke->id, std::nullopt);
  }
  if (const auto* keepalive = std::get_if<LeaseKeepAlive>(&body)) {
    return apply_lease_keepalive(batch, *keepalive);
  }
  const auto& expire = std::get<LeaseExpire>(body);
  return end_lease(batch, expire.id, expire.keepalives);
}

Result StateMachine::apply_txn(Batch& batch, const Txn& request) {
  const Revision next = batch.revision + 1;
  TxnOutcome outcome = execute_txn(*batch.txn, request, next, limits_);
  Result& result = outcome.result;
  if (!result.ok() || outcome.changes.empty()) {  // failed, or read only: no new revision
    result.revision = batch.revision;
    return result;
  }
  write_changes(batch, outcome.changes, next);
  result.revision = next;
  return result;
}

// Writes the whole effect of one request in one place: the tree, its history, the change
// index, the lease index and the events; the request gets revision `next`.
void StateMachine::write_changes(Batch& batch, ChangeSet& changes, Revision next) {
  COORD_ASSERT(!changes.empty() && next == batch.revision + 1, "an empty or misplaced write");
  WriteTxn& txn = *batch.txn;
  std::map<LeaseId, std::int64_t> lease_delta;  // keys joining (+) and leaving (-) each lease
  for (auto& [path, change] : changes) {
    const LeaseId lease_before = change.before ? change.before->node.lease : 0;
    const LeaseId lease_after = change.after ? change.after->node.lease : 0;
    if (lease_before != lease_after) {
      if (lease_before != 0) {
        txn.erase(Table::LeaseKeys, lease_keys_key(lease_before, path));
        lease_delta[lease_before] -= 1;
      }
      if (lease_after != 0) {
        txn.put(Table::LeaseKeys, lease_keys_key(lease_after, path), "");
        lease_delta[lease_after] += 1;
      }
    }
    COORD_ASSERT(lease_after == 0 || change.after->node.num_children == 0,
                 "an ephemeral node with children");
    // Nodes gets the node without its value and, beside it, the version's kind under the
    // version key (the same leaf page, as a rule); Changes the version (with the value when
    // this revision wrote it), at its end.
    EventType type = EventType::Deleted;
    RecordKind kind = RecordKind::Tombstone;
    if (change.after) {
      NodeRecord& after = *change.after;
      const bool written = after.node.mod_revision == next;
      COORD_ASSERT(written == change.value_changed, "a value change without a new mod_revision");
      COORD_ASSERT(!written || !change.before ||
                       change.before->node.create_revision == after.node.create_revision,
                   "a node deleted and recreated in one request");
      kind = written ? RecordKind::Value : RecordKind::Metadata;
      after.kind = kind;
      txn.put(Table::Changes, change_key(next, path), encode_record(after));
      after.kind = RecordKind::Metadata;
      txn.put(Table::Nodes, path, encode_record(after));
      after.kind = RecordKind::Value;
      type = change.before ? EventType::Updated : EventType::Created;
    } else {
      COORD_ASSERT(change.before && change.value_changed, "deleting a node that did not exist");
      txn.erase(Table::Nodes, path);
      NodeRecord tombstone;
      tombstone.kind = RecordKind::Tombstone;
      txn.put(Table::Changes, change_key(next, path), encode_record(tombstone));
    }
    txn.put(Table::Nodes, history_key(path, next), encode_kind(kind));
    if (!change.value_changed) continue;
    Event event;
    event.type = type;
    event.path = path;
    event.revision = next;
    if (change.after) event.node = std::move(change.after->node);
    if (change.before && type != EventType::Created) event.prev = std::move(change.before->node);
    batch.events.push_back(std::move(event));
  }
  for (const auto& [lease, delta] : lease_delta) {
    if (delta == 0) continue;
    std::optional<LeaseRecord> record = read_lease(txn, lease);
    COORD_ASSERT(record.has_value(), "a key attached to a missing lease");
    const auto keys = static_cast<std::int64_t>(record->keys) + delta;
    COORD_ASSERT(keys >= 0 && static_cast<std::uint64_t>(keys) <= limits_.lease_keys_max,
                 "a lease's key count out of range");
    record->keys = static_cast<std::uint64_t>(keys);
    txn.put(Table::Leases, lease_key(lease), encode_lease(*record));
  }
  batch.revision = next;
}

Result StateMachine::apply_lease_grant(Batch& batch, const LeaseGrant& grant) {
  WriteTxn& txn = *batch.txn;
  if (grant.ttl_ms == 0) {
    return failed(make_status(Error::InvalidRequest, "a lease needs a TTL above 0"),
                  batch.revision);
  }
  if (grant.id > lease_id_max) {
    return failed(make_status(Error::InvalidRequest,
                              fmt::format("lease id {} exceeds {}", grant.id, lease_id_max)),
                  batch.revision);
  }
  if (grant.ttl_ms > limits_.lease_ttl_ms_max) {
    return failed(make_status(Error::TooLarge,
                              fmt::format("TTL of {} ms exceeds lease_ttl_ms_max ({})",
                                          grant.ttl_ms, limits_.lease_ttl_ms_max)),
                  batch.revision);
  }
  // Ids are never reused, so a client holding an old id can never keep someone else's lease
  // alive: every id ever granted is below lease_next.
  if (grant.id != 0 && grant.id < batch.lease_next) {
    return failed(make_status(Error::LeaseExists,
                              fmt::format("lease id {} is or was in use; ids from {} are free",
                                          grant.id, batch.lease_next)),
                  batch.revision);
  }
  if (batch.lease_count >= limits_.leases_max) {
    return failed(make_status(Error::TooManyLeases,
                              fmt::format("leases_max ({}) reached", limits_.leases_max)),
                  batch.revision);
  }
  const LeaseId id = grant.id != 0 ? grant.id : batch.lease_next;
  if (id > lease_id_max) {
    return failed(make_status(Error::TooManyLeases, "lease ids exhausted"), batch.revision);
  }
  COORD_ASSERT(!read_lease(txn, id), "a lease at or above lease_next");
  batch.lease_next = id + 1;
  txn.put(Table::Leases, lease_key(id), encode_lease(LeaseRecord{grant.ttl_ms, 0, 0}));
  batch.lease_count += 1;
  Result result = failed({}, batch.revision);
  result.lease.lease = Lease{id, grant.ttl_ms, 0};
  return result;
}

Result StateMachine::apply_lease_keepalive(Batch& batch, const LeaseKeepAlive& keepalive) {
  WriteTxn& txn = *batch.txn;
  std::optional<LeaseRecord> record = read_lease(txn, keepalive.id);
  if (!record) return failed(lease_not_found(keepalive.id), batch.revision);
  record->keepalives += 1;
  txn.put(Table::Leases, lease_key(keepalive.id), encode_lease(*record));
  Result result = failed({}, batch.revision);
  result.lease.lease = Lease{keepalive.id, record->ttl_ms, record->keepalives};
  return result;
}

Result StateMachine::end_lease(Batch& batch, LeaseId id,
                               std::optional<std::uint64_t> expected_keepalives) {
  WriteTxn& txn = *batch.txn;
  const std::optional<LeaseRecord> record = read_lease(txn, id);
  if (!record) return failed(lease_not_found(id), batch.revision);
  if (expected_keepalives && *expected_keepalives != record->keepalives) {
    return failed(make_status(Error::LeaseRenewed,
                              fmt::format("lease {} had {} keep-alives, the expiry saw {}", id,
                                          record->keepalives, *expected_keepalives)),
                  batch.revision);
  }
  Result result = failed({}, batch.revision);
  result.lease.lease = Lease{id, record->ttl_ms, record->keepalives};
  result.lease.deleted = read_lease_keys(txn, id);
  COORD_ASSERT(result.lease.deleted.size() == record->keys, "lease index and key count differ");
  if (!result.lease.deleted.empty()) {
    // All of its keys go in one revision: one watch batch, one point in the history.
    const Revision next = batch.revision + 1;
    ChangeSet changes = delete_lease_keys(txn, result.lease.deleted, next, limits_);
    write_changes(batch, changes, next);
    result.revision = next;
  }
  const std::optional<LeaseRecord> emptied = read_lease(txn, id);
  COORD_ASSERT(emptied && emptied->keys == 0, "a lease kept keys after deleting them");
  txn.erase(Table::Leases, lease_key(id));
  COORD_ASSERT(batch.lease_count > 0, "lease count below the leases");
  batch.lease_count -= 1;
  return result;
}

Result StateMachine::apply_compact(Batch& batch, const Compact& compact) {
  const Revision r = compact.revision;
  if (r == 0)
    return failed(make_status(Error::InvalidRequest, "compact to revision 0"), batch.revision);
  if (r > batch.revision) {
    return failed(make_status(Error::FutureRevision,
                              fmt::format("compact to {} beyond revision {}", r, batch.revision)),
                  batch.revision);
  }
  if (r <= batch.compact_revision) {
    return failed(compacted_status(r, batch.compact_revision), batch.revision);
  }
  compact_history(*batch.txn, batch.compact_revision, r);
  batch.compact_revision = r;
  return failed({}, batch.revision);
}

Status StateMachine::read_point(Revision revision, ReadPoint& point, Revision& served) const {
  if (revision == 0 || revision == revision_) {
    point.past.reset();
    served = revision_;
    return {};
  }
  if (revision > revision_) {
    return make_status(Error::FutureRevision,
                       fmt::format("revision {} is beyond the current {}", revision, revision_));
  }
  if (revision < compact_revision_) return compacted_status(revision, compact_revision_);
  point.past = revision;
  served = revision;
  return {};
}

ReadResult<Node> StateMachine::get(std::string_view path, Revision revision) const {
  ReadResult<Node> out;
  ReadPoint point;
  if (out.status = check_path(path); !out.ok()) return out;
  if (out.status = read_point(revision, point, out.revision); !out.ok()) return out;
  const auto txn = storage_.read();
  std::optional<Node> node = read_node(*txn, path, point);
  if (!node) {
    out.status = not_found(path);
    return out;
  }
  out.value = std::move(*node);
  return out;
}

ReadResult<bool> StateMachine::exists(std::string_view path, Revision revision) const {
  ReadResult<bool> out;
  ReadPoint point;
  if (out.status = check_path(path); !out.ok()) return out;
  if (out.status = read_point(revision, point, out.revision); !out.ok()) return out;
  const auto txn = storage_.read();
  out.value = read_node(*txn, path, point).has_value();
  return out;
}

ReadResult<ListPage> StateMachine::list(std::string_view path, const ListOptions& options) const {
  ReadResult<ListPage> out;
  ReadPoint point;
  if (out.status = check_path(path); !out.ok()) return out;
  if (out.status = read_point(options.revision, point, out.revision); !out.ok()) return out;
  const auto txn = storage_.read();
  if (!read_node(*txn, path, point)) {
    out.status = not_found(path);
    return out;
  }
  out.value = read_children(*txn, path, options.start_after,
                            page_limit(options.limit, limits_.list_page_max), point);
  return out;
}

ReadResult<LeaseInfo> StateMachine::lease_ttl(LeaseId id, bool with_keys) const {
  ReadResult<LeaseInfo> out;
  const auto txn = storage_.read();
  const std::optional<LeaseRecord> record = read_lease(*txn, id);
  if (!record) {
    out.status = lease_not_found(id);
    return out;
  }
  out.revision = revision_;
  out.value.lease = Lease{id, record->ttl_ms, record->keepalives};
  if (with_keys) out.value.keys = read_lease_keys(*txn, id);
  return out;
}

ReadResult<std::vector<Lease>> StateMachine::leases() const {
  ReadResult<std::vector<Lease>> out;
  const auto txn = storage_.read();
  out.revision = revision_;
  out.value = read_leases(*txn);
  COORD_ASSERT(out.value.size() == lease_count_, "lease count disagrees with the leases");
  return out;
}

ReadResult<RangePage> StateMachine::range(std::string_view path,
                                          const RangeOptions& options) const {
  ReadResult<RangePage> out;
  ReadPoint point;
  if (out.status = check_path(path); !out.ok()) return out;
  if (out.status = read_point(options.revision, point, out.revision); !out.ok()) return out;
  const auto txn = storage_.read();
  if (!read_node(*txn, path, point)) {
    out.status = not_found(path);
    return out;
  }
  out.value = read_range(*txn, path, options.start_after,
                         page_limit(options.limit, limits_.range_page_max),
                         limits_.range_page_bytes_max, options.keys_only, point);
  return out;
}

SnapshotSource::SnapshotSource(std::unique_ptr<ReadTxn> view) : view_(std::move(view)) {
  index_ = meta_u64(*view_, meta_key::applied_index);
  revision_ = meta_u64(*view_, meta_key::revision);
}

std::string SnapshotSource::bytes() const { return dump_snapshot(*view_); }

void SnapshotSource::write_to(const std::function<void(std::string_view)>& sink) const { dump_snapshot(*view_, sink); }

SnapshotSource StateMachine::begin_snapshot() const { return SnapshotSource(storage_.pin()); }

Status StateMachine::restore(std::string_view bytes) {
  const ParsedSnapshot parsed = parse_snapshot(bytes);
  if (!parsed.status.ok()) return parsed.status;
  {
    const auto txn = storage_.write();
    for (std::size_t t = 0; t < table_count; ++t) txn->clear(static_cast<Table>(t));
    for (const SnapshotRow& row : parsed.rows) txn->put(row.table, row.key, row.value);
    txn->commit();
  }
  load_meta();
  hub_.reset(revision_);
  return {};
}

WatchCreated StateMachine::watch(const WatchRequest& request) { return hub_.add(request, *this); }

WatchResponse StateMachine::poll_watch(WatchId id, std::size_t events_max) {
  return hub_.poll(id, *this, events_max);
}

Status StateMachine::cancel_watch(WatchId id) { return hub_.cancel(id); }

ReplayChunk StateMachine::replay(const WatchFilter& filter, Revision from,
                                 std::size_t events_soft_max, std::size_t rows_max) const {
  const auto txn = storage_.read();
  return replay_history(*txn, filter, from, revision_, events_soft_max, rows_max);
}

}  // namespace coord::kv
