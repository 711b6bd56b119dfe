#include "net/replica_host.h"

#include <malloc.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <utility>
#include <variant>

#include "kv/codec.h"
#include "net/data_dir.h"
#include "net/member_table.h"
#include "net/snapshot_receiver.h"
#include "net/uv_util.h"
#include "raft/conf_change.h"
#include "storage/log_conversion.h"

namespace coord::net {

namespace {

// A deliberately broken host, compiled only into a test program (tests/CMakeLists.txt,
// coordd_bug_local_reads), never into coordd: it answers linearizable reads from its own state,
// as if they were serializable. The fault harness must catch it (e2e_faults_broken_build_caught).
#if defined(COORD_NET_BUG_LOCAL_READS)
inline constexpr bool kBugLocalReads = true;
#else
inline constexpr bool kBugLocalReads = false;
#endif

// A new member of the initial cluster: nothing on disk yet.
bool fresh(const storage::WalLogStore& log) {
  return log.last_index() == 0 && log.snapshot_meta() == raft::SnapshotMeta{} &&
         log.hard_state() == raft::HardState{};
}

ClientResponse from_status(std::uint64_t id, const kv::Status& status) {
  ClientResponse r = error_response(id, from_kv(status.error), status.message);
  r.compact_revision = status.compact_revision;
  return r;
}

}  // namespace

ReplicaHost::ReplicaHost(const HostOptions& options, const ClusterConfig& cluster, const MemberConfig& self,
                         std::string self_client_address, const std::string& data_dir,
                         raft::Random& random, HostOutput& output, DiskExecutor& disk)
    : options_(options),
      cluster_(cluster),
      self_(self),
      self_client_address_(std::move(self_client_address)),
      output_(output),
      disk_(disk),
      watches_(options.watch),
      data_dir_(data_dir),
      disk_full_(options.disk_full) {
  {
    const auto timeout = static_cast<std::uint64_t>(std::max(1, options_.raft.election_ticks));
    const auto max_timeouts = static_cast<std::uint64_t>(std::max(1, options_.snapshot_refusal_backoff_max_timeouts));
    snapshot_refusals_ = SnapshotRefusalBackoff(timeout, timeout * max_timeouts);
  }
  // The member table: as saved, else (a data dir from before runtime membership, or a new one)
  // the initial cluster; a joining member starts knowing only itself.
  if (auto table = load_member_table(data_dir)) {
    for (MemberConfig& m : *table) members_[m.id] = std::move(m);
  } else if (!options_.join_existing) {
    for (const MemberConfig& m : cluster_.members) members_[m.id] = m;
  }
  members_[self_.id] = self_;
  open_stores(data_dir);
  raft::RestoreState restore = log_->load();
  // The state machine commits on its own, after the log: it may be behind the log's snapshot
  // (a crash between installing a leader's snapshot in the log and restoring from it), never
  // ahead of the log's end (entries are durable before they apply).
  // Otherwise the state is intact and only the log after it is replayed: the snapshot file is
  // not read before serving (it is checked in the background, below).
  bool snapshot_read = false;
  if (sm_->applied_index() < restore.snapshot.index) {
    snapshot_read = true;
    if (!restore.snapshot_data) {
      throw std::runtime_error(fmt::format("the log's snapshot at {} has no data to restore the state from",
                                           restore.snapshot.index));
    }
    // A torn or damaged file is refused by its checksum, naming it, before anything is restored.
    // Nothing can replace it here: the state it holds is on no other disk of this member.
    const auto file = std::dynamic_pointer_cast<const storage::SnapshotFile>(restore.snapshot_data);
    if (file) {
      try {
        file->verify();
      } catch (const storage::LogStoreError& e) {
        throw std::runtime_error(fmt::format(
            "{}; the state machine (applied index {}) is behind that snapshot (index {}), so this member does not "
            "hold the data: restore the data directory, or wipe it and add the member again",
            e.what(), sm_->applied_index(), restore.snapshot.index));
      }
    }
    const kv::Status status = sm_->restore(restore.snapshot_data->bytes());
    if (file) file->release_pages();
    ::malloc_trim(0);  // as after any restore (install_snapshot)
    if (!status.ok() || sm_->applied_index() != restore.snapshot.index) {
      throw std::runtime_error(fmt::format("restoring the state from the log's snapshot at {} failed: {}",
                                           restore.snapshot.index, status.message));
    }
    spdlog::info("state restored from the log's snapshot index={}", restore.snapshot.index);
  }
  if (auto file = std::dynamic_pointer_cast<const storage::SnapshotFile>(restore.snapshot_data);
      file && !snapshot_read) {
    // Not read to restore from: checked whole off the loop (inline in tests). Until it passed,
    // the file is not sent to a follower (send_raft); damage is repaired from the intact state
    // (finish_snapshot_check).
    unverified_snapshot_ = file;
    unverified_snapshot_index_ = restore.snapshot.index;
    if (options_.snapshot_check_after_ticks <= 0) {
      snapshot_check_ = std::make_unique<SnapshotFileCheck>(file, options_.snapshot_in_background);
    }
  }
  if (sm_->applied_index() > log_->last_index()) {
    throw std::runtime_error(fmt::format(
        "the state has applied index {} but the Raft log ends at {}: the data directory is damaged",
        sm_->applied_index(), log_->last_index()));
  }
  // The state store, checked whole from here on (after any restore above: a view pinned before it
  // would hold the replaced state's pages): every row is checked as it is read, so nothing damaged
  // is served meanwhile; this finds damage at rest in rows nobody reads. Inline (tests), damage
  // still refuses the start.
  state_check_ = std::make_unique<StateFileCheck>(kv_storage_->pin(), options_.snapshot_in_background);
  if (const auto error = state_check_->result(); error && !error->empty()) {
    throw std::runtime_error("state storage: " + *error);
  }
  restore.applied = std::max(restore.applied, sm_->applied_index());
  last_snapshot_index_ = restore.snapshot.index;
  last_snapshot_bytes_ = restore.snapshot_data ? restore.snapshot_data->size() : 0;
  for (const raft::Entry& e : restore.entries) log_bytes_since_snapshot_ += e.data.size();
  // Snapshots for the log are files in its directory; those for `snapshot save` stay in memory.
  snapshots_ = std::make_unique<SnapshotWorker>(options_.snapshot_in_background, log_->directory());
  transfer_snapshots_ = std::make_unique<SnapshotWorker>(options_.snapshot_in_background);
  raft::Config config = options_.raft;
  config.id = self_.id;
  // A snapshot from the leader goes into a file chunk by chunk, not into memory.
  config.snapshot_receiver = [dir = log_->directory()](const raft::SnapshotMeta& meta) {
    return std::make_unique<FileSnapshotReceiver>(dir, meta.index);
  };
  if (options_.log_memory_bytes_max > 0) {
    config.log_memory_bytes_max = options_.log_memory_bytes_max;
    // Read on the loop thread, beside the disk thread's writes (wal_log_store.h). A damaged
    // entry stops the replica, as it would at the next restart's load().
    config.read_entries = [this](raft::Index lo, raft::Index hi, std::size_t max_bytes) {
      try {
        std::vector<raft::Entry> entries = log_->read_entries(lo, hi, max_bytes);
        // The core asks only for entries it knows are durable and not compacted: a store
        // without them lost them, which the core cannot repair by waiting (found in review).
        if (entries.empty() && lo < hi && entry_read_error_.empty()) {
          entry_read_error_ = fmt::format("the raft log lacks entry {}, which the core dropped from memory as durable", lo);
        }
        return entries;
      } catch (const storage::LogStoreError& e) {
        if (entry_read_error_.empty()) entry_read_error_ = fmt::format("reading the raft log back failed: {}", e.what());
        return std::vector<raft::Entry>{};
      }
    };
  }
  spdlog::info("replica restored id={} name={} term={} vote={} commit={} applied={} snapshot={} log_last={} revision={}",
               self_.id, self_.name, restore.hard_state.term, restore.hard_state.vote,
               restore.hard_state.commit, restore.applied, restore.snapshot.index, log_->last_index(),
               sm_->revision());
  node_ = std::make_unique<raft::Node>(config, random, std::move(restore));
  election_tick_advance_pending_ = options_.election_tick_advance;
  maybe_advance_election_ticks();  // a single member: at once
  known_conf_ = node_->conf();
  logged_term_ = node_->term();
  leases_.reset(sm_->leases().value, now_ms());
}

std::uint64_t ReplicaHost::now_ms() const {
  if (options_.clock_ms) return options_.clock_ms();
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

ReplicaHost::~ReplicaHost() {
  snapshot_check_.reset();  // joins its thread
  state_check_.reset();     // joins its thread and ends its view of the state
  snapshots_.reset();  // its view of the state must end before the state closes
  transfer_snapshots_.reset();
  // A stop that gets here (not a crash): make the state durable, so that the next start need
  // not distrust it even after a machine crash.
  if (!kv_storage_ || options_.kv_sync) return;
  try {
    kv_storage_->sync();
    disarm_sync_marker(kv_dir_);
  } catch (const std::exception& e) {
    spdlog::warn("state machine not synced at stop ({}); the next start after a machine crash rebuilds it from the log",
                 e.what());
  }
}

void ReplicaHost::prepare_unsynced_state(const std::string& state_dir) {
  const std::string boot_id = read_boot_id(options_.boot_id_path);
  if (check_sync_marker(state_dir, boot_id) == MarkerState::OtherBoot) {
    spdlog::warn("the machine restarted while the state machine had unsynced commits: discarding {} and rebuilding "
                 "it from the Raft log",
                 state_dir);
    discard_state_files(state_dir);
  }
  if (!options_.kv_sync) arm_sync_marker(state_dir, boot_id);
}

void ReplicaHost::open_stores(const std::string& data_dir) {
  storage::WalLogStoreOptions log_options;
  log_options.segment_bytes = options_.log_segment_bytes;
  // A log written by a build before the WAL (LMDB, data.mdb) is converted once, atomically.
  if (storage::convert_lmdb_log_to_wal(raft_dir(data_dir), log_options)) {
    spdlog::warn("converted the raft log in {} from LMDB to segment files", raft_dir(data_dir));
  }
  log_ = storage::WalLogStore::open(raft_dir(data_dir), log_options);
  if (!log_->torn_tail().empty()) spdlog::warn("raft log: {}", log_->torn_tail());
  if (fresh(*log_) && !options_.join_existing) {
    // storage/README.md: a brand-new store starts from a snapshot at index 0 holding the
    // initial configuration, so that every initial member knows the voters from the start.
    raft::Ready seed;
    seed.snapshot = raft::Snapshot{raft::SnapshotMeta{0, 0, raft::ConfState{cluster_.ids(), {}}}, nullptr};
    log_->write(seed);
    spdlog::info("new member: log seeded with the initial configuration members={}", cluster_.spec());
  }
  kv_dir_ = kv_dir(data_dir);
  prepare_unsynced_state(kv_dir_);
  kv::LmdbOptions kv_options;
  kv_options.directory = kv_dir_;
  kv_options.map_bytes = options_.kv_map_bytes;
  kv_options.sync = options_.kv_sync;
  // Checked whole after the start instead (state_check_, in the constructor): it reads every row.
  kv_options.verify = false;
  kv_storage_ = std::make_unique<kv::LmdbStorage>(kv_options);
  // Synced from now on: a marker left by an unsynced run is no longer needed.
  if (options_.kv_sync) {
    kv_storage_->sync();
    disarm_sync_marker(kv_dir_);
  }
  sm_ = std::make_unique<kv::StateMachine>(*kv_storage_, options_.limits);
}

// ---------------------------------------------------------------------------------------------
// Inputs

void ReplicaHost::tick() {
  if (failed_ || stopped_) return;
  ++wall_ticks_;
  retry_member_table_save();
  if (failed_) return;
  watches_.heartbeat(
      *sm_, wall_ticks_, [this](ConnectionId c) { return output_.queued_bytes(c); },
      [this](ConnectionId c, const ClientResponse& r) { output_.respond(c, r); });
  if (persisting_ && disk_full_.retry_due(wall_ticks_)) {
    disk_full_.retry_started();
    if (apply_held_) {
      retry_held_apply();
      if (failed_) return;
    } else {
      persist_in_flight();
    }
  }
  if (persisting_) {
    // Overdue ticks collapse, as a timer wheel's do: a long fsync must not fire a burst of
    // elections afterwards.
    pending_ticks_ = std::min(pending_ticks_ + 1, options_.tick_burst_max);
    return;
  }
  do_tick();
}

void ReplicaHost::do_tick() {
  ++ticks_;
  node_->tick();
  if (!check_fault()) return;
  finish_snapshot();  // one serialized in the background while the host was idle
  if (failed_) return;
  finish_transfer_snapshot();
  sync_leadership();
  expire_requests();
  expire_leases();
  auto_compact();
  release_sent_snapshot();
  track_snapshot_refusals();
  finish_snapshot_check();
  finish_state_check();
  if (failed_) return;
  maybe_advance_election_ticks();
}

void ReplicaHost::finish_state_check() {
  if (!state_check_) return;
  const std::optional<std::string> error = state_check_->result();
  if (!error) return;
  state_check_.reset();
  if (error->empty()) {
    spdlog::info("state store {} checked: intact", kv_dir_);
    return;
  }
  // As a damaged row read by a request would: the member stops, naming the file, table and key.
  fail(fmt::format("state storage: {}", *error));
}

void ReplicaHost::maybe_advance_election_ticks() {
  // As etcd's --initial-election-tick-advance: a member that starts has been without a leader
  // for at least as long as it was down, so it need not wait a whole election timeout more
  // before it may campaign. But not before it can hear a running leader: two followers of three
  // that restart together would otherwise campaign and elect each other before the leader's
  // heartbeat comes (pre-vote does not stop them: neither has heard from a leader). So it waits
  // for connections from a quorum counting itself and, as etcd 3.5 (ActivePeers > 1), from at
  // least two peers (for three members: both, the leader among them), and then leaves
  // heartbeat_ticks + 1 ticks for the leader's heartbeat. Not the core's ticks while a write is
  // in flight: do_tick comes back here.
  if (!election_tick_advance_pending_ || failed_ || stopped_ || persisting_) return;
  const int election_ticks = options_.raft.election_ticks;
  const raft::ConfState& conf = node_->conf();
  if (!raft::is_voter(conf, self_.id) || node_->leader() != raft::kNoNode) {
    election_tick_advance_pending_ = false;  // never campaigns, or already hears a leader
    return;
  }
  std::size_t others = 0, connected = 0;
  for (raft::NodeId id : conf.voters) {
    if (id == self_.id) continue;
    ++others;
    connected += connected_peers_.count(id);
  }
  const std::size_t quorum = conf.voters.size() / 2 + 1;
  const std::size_t needed = std::max(quorum - 1, std::min<std::size_t>(2, others));
  const int elapsed = static_cast<int>(std::min<std::uint64_t>(ticks_, static_cast<std::uint64_t>(election_ticks)));
  if (connected < needed) {
    if (elapsed >= election_ticks) {
      election_tick_advance_pending_ = false;
      spdlog::info("no initial election tick advance: connections from {} of the {} peers it needs within an "
                   "election timeout",
                   connected, needed);
    }
    return;
  }
  election_tick_advance_pending_ = false;
  // Ticks already passed count; these reach no timeout, so they send nothing.
  const int target = others == 0 ? election_ticks - 1 : election_ticks - 1 - options_.raft.heartbeat_ticks;
  const int advance = std::max(0, target - elapsed);
  for (int t = 0; t < advance; ++t) node_->tick();
  if (advance > 0) {
    spdlog::info("initial election tick advance: {} ticks, with connections from {} of {} peers", advance,
                 connected, others);
  }
}

void ReplicaHost::finish_snapshot_check() {
  if (!snapshot_check_) {
    // Started once its ticks have passed (tests hold it back); never again after damage.
    if (unverified_snapshot_ && !regenerate_snapshot_ &&
        ticks_ >= static_cast<std::uint64_t>(std::max(0, options_.snapshot_check_after_ticks))) {
      snapshot_check_ = std::make_unique<SnapshotFileCheck>(unverified_snapshot_, options_.snapshot_in_background);
    }
    if (!snapshot_check_) return;
  }
  const std::optional<std::string> error = snapshot_check_->result();
  if (!error) return;
  if (snapshot_recheck_ &&
      ticks_ < snapshot_recheck_started_tick_ +
                   static_cast<std::uint64_t>(std::max(0, options_.snapshot_recheck_result_after_ticks))) {
    return;
  }
  const std::shared_ptr<const storage::SnapshotFile> file = snapshot_check_->file();
  snapshot_check_.reset();
  if (std::exchange(snapshot_recheck_, false)) {
    // A re-check after a follower's refusal: nothing was held back but the chunks to the
    // followers that refused. Intact: they cannot take it, and their backoff spaces the
    // transfers; damaged: as after a restart, below.
    if (file != log_->snapshot_file()) return;
    if (error->empty()) {
      spdlog::warn("snapshot file {} checked again: intact; {} member(s) refusing it get it less and less often",
                   file->path(), snapshot_refusals_.followers().size());
      return;
    }
    unverified_snapshot_ = file;
    unverified_snapshot_index_ = log_->snapshot_meta().index;
  } else {
    // Damage in a file a newer snapshot has replaced meanwhile is no longer anyone's concern.
    if (file != unverified_snapshot_ || file != log_->snapshot_file()) return;
    if (error->empty()) {
      spdlog::info("snapshot file {} checked: intact", file->path());
      unverified_snapshot_.reset();
      return;
    }
  }
  // The file is damaged, but the state it was made from is intact here (a restart that did not
  // need the file): a fresh snapshot of the state replaces it, instead of stopping a member that
  // holds all of its data. Until then no chunk of the damaged file leaves (send_raft).
  spdlog::error("{}; the state machine is intact (applied index {}): replacing it with a fresh snapshot of the state",
                *error, sm_->applied_index());
  regenerate_snapshot_ = true;
  maybe_snapshot();
}

void ReplicaHost::recheck_refused_snapshot(const raft::Message& m) {
  // A follower that holds nothing of a transfer whose later chunks we sent (it answers a chunk
  // past offset 0 with a reject at 0) restarted, or refused the whole snapshot. The core sends
  // it the whole file again; when it keeps refusing, that would go on forever, so transfers to
  // it back off (net/snapshot_refusals.h). Called before the core steps the answer.
  if (m.type != raft::MessageType::SnapshotResp || !m.reject || m.snapshot_offset != 0) return;
  if (node_->role() != raft::Role::Leader) return;
  const auto pr = node_->progress().find(m.from);
  // Only the answer to a chunk past the start of the transfer under way: a repeated answer
  // finds the core already back at its start, and counts once.
  if (pr == node_->progress().end() || pr->second.state != raft::Progress::State::Snapshot ||
      m.index != pr->second.snapshot_meta.index || pr->second.snapshot_offset == 0) {
    return;
  }
  note_snapshot_refusal(m.from, m.index, pr->second.match);
}

void ReplicaHost::note_snapshot_refusal(raft::NodeId from, raft::Index index, raft::Index match) {
  snapshot_refusals_.refused(from, match, ticks_);
  spdlog::warn("member {} holds nothing of the snapshot at {} it was sent ({} time(s) in a row): the next transfer "
               "to it waits {} more ticks",
               from, index, snapshot_refusals_.refusals(from), snapshot_refusals_.hold_ticks(from));
  // Damage at rest since the file was written or checked is the one cause that is ours to
  // repair. Checked again, off the loop, at most once per ten election timeouts; meanwhile only
  // the followers that refused it get no chunk of it (send_raft): for the others the file is
  // as good as before, and a follower checks what it receives anyway.
  if (unverified_snapshot_ || snapshot_check_) return;
  const auto& file = log_->snapshot_file();
  if (!file || index != log_->snapshot_meta().index) return;
  const std::uint64_t spacing = 10 * static_cast<std::uint64_t>(std::max(1, options_.raft.election_ticks));
  if (last_snapshot_recheck_tick_ && ticks_ < *last_snapshot_recheck_tick_ + spacing) return;
  last_snapshot_recheck_tick_ = ticks_;
  spdlog::warn("checking {} again", file->path());
  snapshot_recheck_ = true;
  snapshot_recheck_started_tick_ = ticks_;
  snapshot_check_ = std::make_unique<SnapshotFileCheck>(file, options_.snapshot_in_background);
}

bool ReplicaHost::hold_refused_snapshot(const raft::Message& chunk) {
  const raft::NodeId to = chunk.to;
  const auto pr = node_->progress().find(to);
  const raft::Index match = pr != node_->progress().end() ? pr->second.match : 0;
  auto held = [&] {
    if (!snapshot_refusals_.refusing(to)) return false;
    snapshot_refusals_.progressed(to, match);
    return snapshot_refusals_.holding(to, ticks_) || (snapshot_recheck_ && snapshot_refusals_.refusing(to));
  };
  if (chunk.snapshot_offset != 0 || !chunk.snapshot_done) return held();
  // A snapshot in one chunk: a follower that refuses it answers nothing (it holds nothing of a
  // later chunk to say so about), and the core sends the chunk again after its idle timeout.
  // That resend, with no progress since the chunk went out, is the refusal.
  auto sent = single_chunk_sent_.find(to);
  if (sent != single_chunk_sent_.end() && sent->second.index == chunk.snapshot.index && match <= sent->second.match &&
      !held()) {
    single_chunk_sent_.erase(sent);
    note_snapshot_refusal(to, chunk.snapshot.index, match);
  }
  if (held()) {
    single_chunk_sent_.erase(to);  // not out: the next one that goes is no resend
    return true;
  }
  single_chunk_sent_[to] = SingleChunkSent{chunk.snapshot.index, match};
  return false;
}

void ReplicaHost::track_snapshot_refusals() {
  if (node_->role() != raft::Role::Leader) {
    snapshot_refusals_.clear();
    single_chunk_sent_.clear();
    return;
  }
  for (auto it = single_chunk_sent_.begin(); it != single_chunk_sent_.end();) {
    const auto pr = node_->progress().find(it->first);
    const bool over = pr == node_->progress().end() || pr->second.state != raft::Progress::State::Snapshot ||
                      pr->second.match > it->second.match;
    it = over ? single_chunk_sent_.erase(it) : std::next(it);
  }
  std::vector<raft::NodeId> gone;
  for (const auto& [id, f] : snapshot_refusals_.followers()) {
    const auto pr = node_->progress().find(id);
    if (pr == node_->progress().end() || pr->second.match > f.match) gone.push_back(id);
  }
  for (raft::NodeId id : gone) snapshot_refusals_.forget(id);
}

void ReplicaHost::forget_replaced_unverified_snapshot() {
  if (!unverified_snapshot_ || unverified_snapshot_ == log_->snapshot_file()) return;
  // A check still running ends on its own (finish_snapshot_check drops its result): waiting for
  // it here would stall the loop for as long as reading the file takes.
  unverified_snapshot_.reset();
  regenerate_snapshot_ = false;
}

void ReplicaHost::send_raft(const raft::Message& message) {
  if (message.type == raft::MessageType::Snapshot && unverified_snapshot_ &&
      message.snapshot.index == unverified_snapshot_index_) {
    // Dropped like a message lost on the wire: the core sends the chunk again after its idle
    // timeout, from the snapshot it then has (raft/node.cc, send_snapshot_chunk).
    if (snapshot_chunks_held_back_++ % 100 == 0) {
      spdlog::info("snapshot chunk for member {} held back: the snapshot file {} is not checked yet", message.to,
                   unverified_snapshot_->path());
    }
    return;
  }
  if (message.type == raft::MessageType::Snapshot && hold_refused_snapshot(message)) {
    // Dropped the same way; the core resends after its idle timeout, on hold or not.
    if (snapshot_chunks_held_for_refusal_++ % 100 == 0) {
      spdlog::info("snapshot chunk for member {} held back: it refused earlier transfers", message.to);
    }
    return;
  }
  output_.send(message);
}

void ReplicaHost::release_sent_snapshot() {
  // The pages of the snapshot file read to send it to a follower stay in this process's
  // resident set until let go (they stay in the page cache); every 50 ticks, when no transfer
  // is running.
  const auto& file = log_->snapshot_file();
  if (!file || ticks_ % 50 != 0) return;
  for (const auto& [id, pr] : node_->progress()) {
    if (pr.state == raft::Progress::State::Snapshot) return;
  }
  file->release_pages();
}

void ReplicaHost::step(const raft::Message& message) {
  if (failed_ || stopped_) return;
  if (persisting_) {
    std::size_t bytes = 64 + message.snapshot_chunk.size();
    for (const raft::Entry& e : message.entries) bytes += 32 + e.data.size();
    enqueue(message, bytes);  // a dropped message is like one lost on the wire
    return;
  }
  recheck_refused_snapshot(message);
  node_->step(message);
  if (check_fault()) sync_leadership();
}

void ReplicaHost::set_client_address(raft::NodeId id, std::string address) {
  client_addresses_[id] = std::move(address);
}

bool ReplicaHost::peer_hello(const PeerHello& hello) {
  // A hello must not contradict a current member: its id under another name, or its name under
  // another id. (A removed member's name may come back under a new id.)
  const raft::ConfState& conf = node_->conf();
  auto current = [&](raft::NodeId id) { return raft::is_voter(conf, id) || raft::is_learner(conf, id); };
  for (const auto& [id, m] : members_) {
    if (!current(id) || (id == hello.from) == (m.name == hello.name)) continue;
    spdlog::warn("peer hello from {} (id {}) contradicts member {} (id {})", hello.name, hello.from, m.name, id);
    return false;
  }
  set_client_address(hello.from, hello.client_address);
  connected_peers_.insert(hello.from);
  maybe_advance_election_ticks();
  // Older builds send no peer address; such a member is only known from the log.
  if (!hello.peer_address.empty() && valid_member_name(hello.name) &&
      parse_socket_address(hello.peer_address, nullptr)) {
    const MemberConfig heard{hello.from, hello.name, hello.peer_address};
    auto it = heard_.find(hello.from);
    if (it == heard_.end() || !(it->second == heard)) {
      heard_[hello.from] = heard;
      learn_from_hellos();
      output_.members_changed();
    }
  }
  return true;
}

std::vector<MemberConfig> ReplicaHost::peers() const {
  std::vector<MemberConfig> out;
  const raft::ConfState& conf = node_->conf();
  if (conf.voters.empty() && conf.learners.empty()) {
    // Joining: answer whoever reaches out (the leader), until the log says who the members are.
    for (const auto& table : {&members_, &heard_}) {
      for (const auto& entry : *table) {
        const MemberConfig& m = entry.second;
        if (m.id != self_.id && std::none_of(out.begin(), out.end(), [&](const MemberConfig& o) { return o.id == m.id; })) {
          out.push_back(m);
        }
      }
    }
    return out;
  }
  for (const auto* ids : {&conf.voters, &conf.learners}) {
    for (raft::NodeId id : *ids) {
      if (id == self_.id) continue;
      if (const MemberConfig* m = find_member(id)) out.push_back(*m);
    }
  }
  return out;
}

const MemberConfig* ReplicaHost::find_member(raft::NodeId id) const {
  if (auto it = members_.find(id); it != members_.end()) return &it->second;
  if (auto it = heard_.find(id); it != heard_.end()) return &it->second;
  return nullptr;
}

const MemberConfig* ReplicaHost::find_member(std::string_view name) const {
  for (const auto& table : {&members_, &heard_}) {
    for (const auto& [id, m] : *table) {
      if (m.name == name) return &m;
    }
  }
  return nullptr;
}

bool ReplicaHost::learn_from_hellos() {
  bool changed = false;
  const raft::ConfState& conf = node_->conf();
  for (const auto* ids : {&conf.voters, &conf.learners}) {
    for (raft::NodeId id : *ids) {
      auto it = heard_.find(id);
      if (members_.count(id) != 0 || it == heard_.end()) continue;
      spdlog::info("member {} (id {}) at {} learned from its hello", it->second.name, id, it->second.peer_address);
      members_[id] = it->second;
      changed = true;
    }
  }
  if (changed) {
    if (auto no_room = save_members()) {
      spdlog::warn("member table not saved ({}); tried again on the next ticks", *no_room);
    }
  }
  return changed;
}

std::optional<std::string> ReplicaHost::save_members() {
  std::vector<MemberConfig> table;
  for (const auto& [id, m] : members_) table.push_back(m);
  members_unsaved_ = true;
  try {
    save_member_table(data_dir_, table);
  } catch (const DataDirNoSpace& e) {
    return fmt::format("saving the member table: {}", e.what());
  } catch (const DataDirError& e) {
    fail(fmt::format("saving the member table failed: {}", e.what()));
    return std::nullopt;
  }
  members_unsaved_ = false;
  members_change_unsaved_ = false;
  members_save_pause_ = 0;
  return std::nullopt;
}

void ReplicaHost::retry_member_table_save() {
  if (!members_unsaved_ || failed_ || wall_ticks_ < members_save_retry_tick_) return;
  if (auto no_room = save_members()) {
    members_save_pause_ = std::clamp(members_save_pause_ * 2, options_.disk_full.retry_ticks_min,
                                     std::max(options_.disk_full.retry_ticks_min, options_.disk_full.retry_ticks_max));
    members_save_retry_tick_ = wall_ticks_ + std::max<std::uint64_t>(1, members_save_pause_);
    spdlog::debug("member table still not saved ({}); next try in {} ticks", *no_room, members_save_pause_);
    return;
  }
  if (!failed_) spdlog::info("member table saved (it had found no room before)");
}

void ReplicaHost::request(ConnectionId connection, const ClientRequest& request) {
  if (failed_ || stopped_) {
    output_.respond(connection, error_response(request.id, ErrorCode::Unavailable, "replica stopping"));
    return;
  }
  const bool needs_core = request.kind == RequestKind::Write || request.kind == RequestKind::LeaseTtl ||
                          request.kind == RequestKind::MemberAdd || request.kind == RequestKind::MemberRemove ||
                          request.kind == RequestKind::MemberPromote ||
                          ((request.kind == RequestKind::Get || request.kind == RequestKind::Exists ||
                            request.kind == RequestKind::List || request.kind == RequestKind::Range) &&
                           !request.serializable);
  if (disk_full_.active() && needs_core) {
    if (auto refused = refused_for_space(request)) {
      output_.respond(connection, *refused);
      return;
    }
  }
  if (persisting_ && needs_core) {
    const std::size_t bytes = 64 + request.command.size() + request.path.size() + request.start_after.size();
    if (!enqueue(QueuedRequest{connection, request}, bytes)) {
      output_.respond(connection, error_response(request.id, ErrorCode::Unavailable, "replica busy: too much queued input"));
    }
    return;
  }
  do_request(connection, request);
}

bool ReplicaHost::enqueue(Input input, std::size_t bytes) {
  if (inbox_.size() >= options_.inbox_inputs_max || inbox_bytes_ + bytes > options_.inbox_bytes_max) {
    ++inbox_drops_;
    return false;
  }
  inbox_.push_back(std::move(input));
  inbox_bytes_ += bytes;
  return true;
}

void ReplicaHost::drain_inbox() {
  while (pending_ticks_ > 0 && !failed_) {
    --pending_ticks_;
    do_tick();
  }
  for (std::size_t n = 0; n < options_.inputs_per_ready_max && !inbox_.empty() && !failed_; ++n) {
    Input input = std::move(inbox_.front());
    inbox_.pop_front();
    if (auto* m = std::get_if<raft::Message>(&input)) {
      recheck_refused_snapshot(*m);
      node_->step(*m);
      if (check_fault()) sync_leadership();
    } else {
      auto& q = std::get<QueuedRequest>(input);
      do_request(q.connection, q.request);
    }
  }
  if (inbox_.empty()) inbox_bytes_ = 0;  // the byte count is an estimate; resync when empty
}

void ReplicaHost::do_request(ConnectionId connection, const ClientRequest& request) {
  switch (request.kind) {
    case RequestKind::Write:
      request_write(connection, request);
      return;
    case RequestKind::Get:
    case RequestKind::Exists:
    case RequestKind::List:
    case RequestKind::Range:
      request_read(connection, request);
      return;
    case RequestKind::Status:
      output_.respond(connection, status_response(request.id));
      return;
    case RequestKind::MemberList:
      output_.respond(connection, members_response(request.id));
      return;
    case RequestKind::LeaseTtl:
      request_lease_ttl(connection, request);
      return;
    case RequestKind::Watch:
      // The hub reads only the state machine, which the disk thread never touches.
      output_.respond(connection, watches_.open(connection, request, *sm_));
      return;
    case RequestKind::WatchCancel:
      output_.respond(connection, watches_.cancel(connection, request, *sm_));
      return;
    case RequestKind::Snapshot:
      request_snapshot(connection, request);
      return;
    case RequestKind::MemberAdd:
    case RequestKind::MemberRemove:
    case RequestKind::MemberPromote:
      request_member_change(connection, request);
      return;
  }
  output_.respond(connection, error_response(request.id, ErrorCode::InvalidRequest, "unknown request kind"));
}

void ReplicaHost::connection_closed(ConnectionId connection) {
  if (failed_) return;
  watches_.connection_closed(connection, *sm_);
  std::erase_if(transfers_, [&](const SnapshotTransfer& t) { return t.connection == connection; });
  std::erase_if(snapshot_waiters_now_, [&](const SnapshotWaiter& w) { return w.connection == connection; });
  std::erase_if(snapshot_waiters_next_, [&](const SnapshotWaiter& w) { return w.connection == connection; });
}

void ReplicaHost::request_snapshot(ConnectionId connection, const ClientRequest& request) {
  const std::size_t under_way = transfers_.size() + snapshot_waiters_now_.size() + snapshot_waiters_next_.size();
  if (under_way >= options_.snapshot_transfers_max) {
    output_.respond(connection, error_response(request.id, ErrorCode::Unavailable,
                                               fmt::format("{} snapshot transfers under way; retry later",
                                                           under_way)));
    return;
  }
  snapshot_waiters_next_.push_back(SnapshotWaiter{connection, request.id});
  begin_transfer_snapshot();
  finish_transfer_snapshot();  // done already when serialized inline
}

void ReplicaHost::begin_transfer_snapshot() {
  if (snapshot_waiters_next_.empty() || transfer_snapshots_->busy()) return;
  try {
    // The view is pinned here, on the loop thread: it holds everything applied so far.
    transfer_snapshots_->start(sm_->begin_snapshot());
  } catch (const kv::StorageError& e) {
    for (const SnapshotWaiter& w : snapshot_waiters_next_) {
      output_.respond(w.connection, error_response(w.request_id, ErrorCode::Unavailable,
                                                   fmt::format("snapshot failed: {}", e.what())));
    }
    snapshot_waiters_next_.clear();
    return;
  }
  snapshot_waiters_now_ = std::exchange(snapshot_waiters_next_, {});
}

void ReplicaHost::finish_transfer_snapshot() {
  std::optional<SnapshotWorker::Done> done = transfer_snapshots_->take();
  if (!done) return;
  for (const SnapshotWaiter& w : std::exchange(snapshot_waiters_now_, {})) {
    if (!done->data) {
      output_.respond(w.connection, error_response(w.request_id, ErrorCode::Unavailable,
                                                   fmt::format("snapshot failed: {}", done->error)));
      continue;
    }
    SnapshotTransfer t;
    t.connection = w.connection;
    t.request_id = w.request_id;
    t.data = done->data;  // shared by every waiter of this round
    t.revision = done->revision;
    t.index = done->index;
    spdlog::info("snapshot transfer started bytes={} index={} revision={} serialized_s={:.3f}", t.data->size(),
                 t.index, t.revision, done->seconds);
    transfers_.push_back(std::move(t));
  }
  send_snapshots();
  begin_transfer_snapshot();
}

void ReplicaHost::send_snapshots() {
  for (auto it = transfers_.begin(); it != transfers_.end();) {
    SnapshotTransfer& t = *it;
    bool done = false;
    while (!done && output_.queued_bytes(t.connection) < options_.snapshot_send_queue_bytes_max) {
      const std::size_t n = std::min<std::size_t>(options_.snapshot_chunk_bytes, t.data->size() - t.offset);
      ClientResponse r;
      r.id = t.request_id;
      r.chunk = std::string(t.data->bytes().substr(t.offset, n));
      r.offset = t.offset;
      r.total_bytes = t.data->size();
      r.revision = t.revision;
      r.index = t.index;
      t.offset += n;
      done = t.offset == t.data->size();
      r.done = done;
      output_.respond(t.connection, r);
    }
    it = done ? transfers_.erase(it) : it + 1;
  }
}

void ReplicaHost::route_to_leader(ConnectionId connection, const ClientRequest& request) {
  const raft::NodeId leader = node_->leader();
  if (options_.forward_to_leader && !request.forwarded && leader != raft::kNoNode && leader != self_.id) {
    ClientResponse hint = not_leader(request.id);
    if (hint.leader && !hint.leader->client_address.empty() && output_.forward(connection, request, *hint.leader)) {
      return;
    }
  }
  output_.respond(connection, not_leader(request.id));
}

void ReplicaHost::request_member_change(ConnectionId connection, const ClientRequest& request) {
  auto refuse = [&](ErrorCode code, std::string message) {
    output_.respond(connection, error_response(request.id, code, std::move(message)));
  };
  // Membership changes are rare: the client follows the hint instead of a forward.
  if (node_->role() != raft::Role::Leader) {
    output_.respond(connection, not_leader(request.id));
    return;
  }
  const raft::ConfState& conf = node_->conf();
  auto in_conf = [&](raft::NodeId id) { return raft::is_voter(conf, id) || raft::is_learner(conf, id); };
  const std::string& name = request.member_name;
  const MemberConfig* known = find_member(name);
  const bool is_member = known != nullptr && in_conf(known->id);
  raft::ConfChange change;
  MemberConfig target;
  switch (request.kind) {
    case RequestKind::MemberAdd: {
      if (!valid_member_name(name)) {
        refuse(ErrorCode::InvalidRequest, fmt::format("'{}' is not a member name (1-63 of A-Z a-z 0-9 _ - .)", name));
        return;
      }
      std::string error;
      if (!parse_socket_address(request.peer_address, &error)) {
        refuse(ErrorCode::InvalidRequest, fmt::format("--peer-url: {}", error));
        return;
      }
      if (is_member) {
        refuse(ErrorCode::MemberExists, fmt::format("member {} already exists (id {})", name, known->id));
        return;
      }
      target = MemberConfig{member_id_for_name(name), name, request.peer_address};
      if (in_conf(target.id)) {
        refuse(ErrorCode::MemberExists, fmt::format("member id {} (of name {}) is already in the cluster", target.id, name));
        return;
      }
      for (const raft::NodeId id : conf.voters) {
        const MemberConfig* m = find_member(id);
        if (m != nullptr && m->peer_address == request.peer_address) {
          refuse(ErrorCode::MemberExists, fmt::format("peer address {} is member {}'s", request.peer_address, m->name));
          return;
        }
      }
      for (const raft::NodeId id : conf.learners) {
        const MemberConfig* m = find_member(id);
        if (m != nullptr && m->peer_address == request.peer_address) {
          refuse(ErrorCode::MemberExists, fmt::format("peer address {} is member {}'s", request.peer_address, m->name));
          return;
        }
      }
      change = raft::ConfChange{request.learner ? raft::ConfChangeType::AddLearner : raft::ConfChangeType::AddVoter,
                                target.id, encode_member_context(target)};
      break;
    }
    case RequestKind::MemberPromote:
      if (!is_member) {
        refuse(ErrorCode::UnknownMember, fmt::format("no member named '{}'", name));
        return;
      }
      if (raft::is_voter(conf, known->id)) {
        refuse(ErrorCode::NotLearner, fmt::format("member {} is a voter already; only a learner can be promoted", name));
        return;
      }
      target = *known;
      change = raft::ConfChange{raft::ConfChangeType::AddVoter, target.id, encode_member_context(target)};
      break;
    case RequestKind::MemberRemove:
      if (!is_member) {
        refuse(ErrorCode::UnknownMember, fmt::format("no member named '{}'", name));
        return;
      }
      target = *known;
      change = raft::ConfChange{raft::ConfChangeType::RemoveNode, target.id, {}};
      if (raft::apply_conf_change(conf, change).voters.empty()) {
        refuse(ErrorCode::LastVoter, fmt::format("member {} is the last voter; a cluster cannot lose its last voter", name));
        return;
      }
      if (target.id == self_.id) {
        // A leader that removed itself would leave the cluster leaderless for an election
        // timeout: hand leadership to the most up-to-date other voter first; the client retries
        // (Unavailable) and reaches the new leader, which removes us.
        raft::NodeId best = raft::kNoNode;
        raft::Index best_match = 0;
        for (const auto& [id, pr] : node_->progress()) {
          if (raft::is_voter(conf, id) && (best == raft::kNoNode || pr.match > best_match)) {
            best = id;
            best_match = pr.match;
          }
        }
        const raft::Error error = best == raft::kNoNode ? raft::Error::UnknownNode : node_->transfer_leadership(best);
        if (!check_fault()) return;
        const MemberConfig* to = find_member(best);
        spdlog::info("removing the leader: transferring leadership to {} first ({})", to ? to->name : std::to_string(best),
                     raft::to_string(error));
        refuse(ErrorCode::Unavailable, fmt::format("member {} leads: leadership is moving to {} first; retry",
                                                   name, to ? to->name : std::to_string(best)));
        return;
      }
      break;
    default:
      refuse(ErrorCode::InvalidRequest, "not a membership change");
      return;
  }
  const raft::ProposeResult proposed = node_->propose_conf_change(change);
  if (!check_fault()) return;
  switch (proposed.error) {
    case raft::Error::Ok:
      break;
    case raft::Error::NotLeader:
      output_.respond(connection, not_leader(request.id));
      return;
    case raft::Error::ConfChangePending:
    case raft::Error::TransferInProgress:
      refuse(ErrorCode::Unavailable, fmt::format("another membership change or a leadership transfer is under way; retry ({})",
                                                 raft::to_string(proposed.error)));
      return;
    case raft::Error::InvalidConfChange:
      refuse(ErrorCode::LastVoter, "the change would leave the cluster without a voter");
      return;
    case raft::Error::UnknownNode:
      refuse(ErrorCode::UnknownMember, fmt::format("no member named '{}'", name));
      return;
  }
  spdlog::info("membership change proposed: {} {} (id {}) peer={} index={}", to_string(request.kind), target.name,
               target.id, target.peer_address, proposed.index);
  pending_changes_[proposed.index] = PendingChange{connection, request.id, proposed.term,
                                                   ticks_ + static_cast<std::uint64_t>(options_.request_timeout_ticks),
                                                   target};
}

std::optional<std::string> ReplicaHost::apply_membership(const std::vector<raft::Entry>& committed) {
  bool changed = false;
  for (const raft::Entry& e : committed) {
    if (e.type != raft::EntryType::ConfChange) continue;
    const auto change = raft::decode_conf_change(e.data);
    if (!change) continue;  // the core skipped it too
    if (change->type == raft::ConfChangeType::RemoveNode) {
      if (change->node != self_.id && members_.erase(change->node) > 0) changed = true;
      heard_.erase(change->node);
      spdlog::info("membership: member id {} removed at index {}", change->node, e.index);
      continue;
    }
    if (auto m = decode_member_context(change->node, change->context)) {
      spdlog::info("membership: {} {} (id {}) peer={} at index {}",
                   change->type == raft::ConfChangeType::AddLearner ? "learner" : "voter", m->name, m->id,
                   m->peer_address, e.index);
      if (members_.count(m->id) == 0 || !(members_[m->id] == *m)) {
        members_[m->id] = *m;
        changed = true;
      }
    }
  }
  // Also when the save of a change applied earlier found no room: these are its entries, held
  // until it succeeds (members_ already holds the change, so `changed` is false the second
  // time). A table left unsaved by a hello is not theirs to wait for: the ticks retry it.
  if (changed || members_change_unsaved_) {
    auto no_room = save_members();
    if (no_room) members_change_unsaved_ = true;
    return no_room;
  }
  return std::nullopt;
}

void ReplicaHost::answer_member_changes(const std::vector<raft::Entry>& committed) {
  for (const raft::Entry& e : committed) {
    auto it = pending_changes_.find(e.index);
    if (it == pending_changes_.end()) continue;
    const PendingChange& c = it->second;
    if (e.term != c.term || e.type != raft::EntryType::ConfChange) {
      output_.respond(c.connection, error_response(c.request_id, ErrorCode::Unavailable,
                                                   "the change was lost in a leadership change; retry"));
    } else {
      ClientResponse r;
      r.id = c.request_id;
      MemberInfo info = member_info(c.member.id);
      info.name = c.member.name;  // a removed member is no longer in the table
      info.peer_address = c.member.peer_address;
      r.members.push_back(std::move(info));
      r.cluster = cluster_.token;
      r.index = e.index;
      output_.respond(c.connection, r);
    }
    pending_changes_.erase(it);
  }
}

void ReplicaHost::request_write(ConnectionId connection, const ClientRequest& request) {
  if (node_->role() != raft::Role::Leader) {
    route_to_leader(connection, request);
    return;
  }
  if (request.command.size() > options_.limits.command_bytes_max) {
    output_.respond(connection, error_response(request.id, ErrorCode::TooLarge,
                                               fmt::format("command of {} bytes exceeds the limit of {} bytes",
                                                           request.command.size(),
                                                           options_.limits.command_bytes_max)));
    return;
  }
  // Verified here so that garbage never takes a log entry; the state machine checks it again
  // when it applies (every replica must refuse the same commands).
  const kv::DecodedCommand decoded = kv::decode_command(request.command);
  if (!decoded.status.ok()) {
    output_.respond(connection, error_response(request.id, ErrorCode::InvalidRequest, decoded.status.message));
    return;
  }
  // An expiry must come from the leader's own lease clock, never from a client.
  if (std::holds_alternative<kv::LeaseExpire>(decoded.command.body)) {
    output_.respond(connection, error_response(request.id, ErrorCode::InvalidRequest,
                                               "lease expiry is proposed by the leader only"));
    return;
  }
  if (pending_writes_.size() >= options_.pending_writes_max) {
    output_.respond(connection, error_response(request.id, ErrorCode::Unavailable, "too many writes in flight"));
    return;
  }
  const raft::ProposeResult proposed = node_->propose(request.command);
  if (!check_fault()) return;
  if (proposed.error == raft::Error::NotLeader) {
    route_to_leader(connection, request);
    return;
  }
  if (proposed.error != raft::Error::Ok) {
    output_.respond(connection, error_response(request.id, ErrorCode::Unavailable,
                                               fmt::format("proposal refused: {}", raft::to_string(proposed.error))));
    return;
  }
  PendingWrite pending{connection, request.id, proposed.term, ticks_ + static_cast<std::uint64_t>(options_.request_timeout_ticks)};
  auto [it, inserted] = pending_writes_.try_emplace(proposed.index, pending);
  if (!inserted) {
    // An older proposal at this index was truncated away when leadership changed hands.
    output_.respond(it->second.connection,
                    error_response(it->second.request_id, ErrorCode::Unavailable,
                                   "the entry was lost in a leadership change; retry with the same sequence"));
    it->second = pending;
  }
}

void ReplicaHost::request_read(ConnectionId connection, const ClientRequest& request) {
  if (request.serializable || kBugLocalReads) {
    output_.respond(connection, read_now(request));
    return;
  }
  if (pending_reads_.size() >= options_.pending_reads_max) {
    output_.respond(connection, error_response(request.id, ErrorCode::Unavailable, "too many reads in flight"));
    return;
  }
  const std::uint64_t read_id = next_read_id_++;
  const raft::Error error = node_->read_index(read_id);
  if (!check_fault()) return;
  if (error != raft::Error::Ok) {
    output_.respond(connection, error_response(request.id, ErrorCode::Unavailable,
                                               "no leader to confirm a linearizable read; retry, or read serializable"));
    return;
  }
  pending_reads_.emplace(read_id, PendingRead{connection, request,
                                              ticks_ + static_cast<std::uint64_t>(options_.request_timeout_ticks),
                                              std::nullopt});
}

void ReplicaHost::request_lease_ttl(ConnectionId connection, const ClientRequest& request) {
  // Only the leader's clock counts down. A ReadIndex round confirms it still leads (a deposed
  // leader that has not heard of its successor would report a countdown nobody runs); the
  // answer is computed when the read is served.
  if (node_->role() != raft::Role::Leader) {
    route_to_leader(connection, request);
    return;
  }
  ClientRequest read = request;
  read.serializable = false;
  request_read(connection, read);
}

// ---------------------------------------------------------------------------------------------
// Leases

void ReplicaHost::sync_leadership() {
  const bool leading = node_->role() == raft::Role::Leader;
  if (leading == leases_.leading()) return;
  if (leading) {
    // Whatever its predecessor had counted is unknown here: every countdown starts over.
    leases_.on_become_leader(now_ms());
    spdlog::info("lease countdowns restarted leases={}", leases_.size());
  } else {
    leases_.on_lose_leadership();
  }
}

void ReplicaHost::expire_leases() {
  if (node_->role() != raft::Role::Leader || !leases_.leading()) return;
  const std::vector<kv::LeaseExpire> expired = leases_.expired(now_ms(), options_.lease_expiries_per_tick_max);
  for (const kv::LeaseExpire& e : expired) {
    kv::Command command;  // session 0: an expiry is not de-duplicated, the keep-alive count guards it
    command.body = e;
    const raft::ProposeResult proposed = node_->propose(kv::encode_command(command));
    if (!check_fault()) return;
    if (proposed.error != raft::Error::Ok) {
      leases_.on_expire_dropped(e.id);  // asked again on the next tick
      continue;
    }
    spdlog::info("lease expired id={} keepalives={} proposed index={}", e.id, e.keepalives, proposed.index);
  }
}

void ReplicaHost::auto_compact() {
  const std::uint64_t retain = options_.auto_compact_revisions;
  if (retain == 0 || node_->role() != raft::Role::Leader) return;
  // One at a time: the last one applied (or its entry was lost and later ones applied instead).
  if (sm_->applied_index() < auto_compact_index_) return;
  const kv::Revision revision = sm_->revision();
  const kv::Revision compacted = sm_->compact_revision();
  if (revision <= retain || revision - retain <= compacted) return;
  const kv::Revision keep_from = revision - retain;
  // Not for a handful of revisions at a time: each compaction walks what it removes.
  const std::uint64_t step = std::max<std::uint64_t>(1, options_.auto_compact_step_revisions);
  if (keep_from - compacted < std::max<std::uint64_t>(1, std::min(step, retain / 10))) return;
  kv::Command command;  // session 0: a compaction to a revision already passed is harmless
  command.body = kv::Compact{std::min(keep_from, compacted + step)};
  const raft::ProposeResult proposed = node_->propose(kv::encode_command(command));
  if (!check_fault() || proposed.error != raft::Error::Ok) return;
  auto_compact_index_ = proposed.index;
  spdlog::info("automatic compaction to revision={} proposed index={} (revision={}, keeping {})",
               std::get<kv::Compact>(command.body).revision, proposed.index, revision, retain);
}

void ReplicaHost::track_leases(const std::vector<raft::Entry>& committed, const std::vector<kv::Result>& results) {
  const std::uint64_t now = now_ms();
  for (std::size_t i = 0; i < committed.size(); ++i) {
    const kv::Result& result = results[i];
    const kv::Error error = result.status.error;
    // Only lease commands fill result.lease or fail with a lease error: decode just those again.
    if (result.lease.lease.id == 0 && error != kv::Error::LeaseNotFound && error != kv::Error::LeaseRenewed) continue;
    if (committed[i].type != raft::EntryType::Normal) continue;
    const kv::DecodedCommand decoded = kv::decode_command(committed[i].data);
    if (!decoded.status.ok()) continue;
    leases_.on_applied(decoded.command.body, result, now);
    if (const auto* expire = std::get_if<kv::LeaseExpire>(&decoded.command.body);
        expire != nullptr && error == kv::Error::LeaseRenewed) {
      // A keep-alive was applied after the expiry was decided. Its countdown normally restarted
      // then; but a clock that learned an older count (a retried grant answered from its
      // session) would keep proposing stale expiries, so start over from the state's count.
      const auto info = sm_->lease_ttl(expire->id, /*with_keys=*/false);
      if (info.ok()) leases_.on_keepalive_applied(info.value.lease, now);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The Ready cycle

void ReplicaHost::pump() {
  if (!entry_read_error_.empty()) fail(entry_read_error_);
  while (!failed_ && !stopped_ && !persisting_) {
    drain_inbox();
    if (failed_ || !node_->has_ready()) break;
    start_ready();
  }
  if (failed_) return;
  log_role_change();
  deliver_watches();
  if (!transfers_.empty() && !stopped_) send_snapshots();
}

void ReplicaHost::deliver_watches() {
  if (stopped_) return;
  watches_.deliver(
      *sm_, [this](ConnectionId c) { return output_.queued_bytes(c); },
      [this](ConnectionId c, const ClientResponse& r) { output_.respond(c, r); });
}

void ReplicaHost::stop() { stopped_ = true; }

void ReplicaHost::start_ready() {
  raft::Ready ready = node_->ready();
  {
    ReadyPeak r;
    for (const auto* list : {&ready.early_messages, &ready.messages}) {
      for (const raft::Message& m : *list) {
        ++r.messages;
        r.bytes += m.snapshot_chunk.size();
        for (const raft::Entry& e : m.entries) r.bytes += e.data.size();
      }
    }
    if (r.bytes > ready_peak_.bytes) ready_peak_.bytes = r.bytes;
    if (r.messages > ready_peak_.messages) ready_peak_.messages = r.messages;
  }
  // A leader's appends go out now, while its own log write runs (raft/ready.h): the followers'
  // fsyncs overlap ours instead of following it.
  for (const raft::Message& m : ready.early_messages) send_raft(m);
  if (!ready.snapshot && ready.entries.empty() && !ready.hard_state) {
    finish_ready(ready);  // nothing to make durable: no disk round trip
    return;
  }
  // 1-2. Snapshot, entries and hard state: one LMDB transaction, one fsync, on the disk thread.
  // The loop thread does not touch the log store until `persisted` runs.
  in_flight_ = std::move(ready);
  persisting_ = true;
  persist_in_flight();
}

void ReplicaHost::persist_in_flight() {
  in_start_ready_ = true;
  disk_.run(
      [this] {
        try {
          const std::uint64_t bytes = log_write_bytes(*in_flight_, log_->directory());
          if (auto no_room = lacks_room(log_->directory(), bytes, options_.disk_full)) {
            persist_no_space_ = std::move(*no_room);
            return;
          }
          log_->write(*in_flight_);
        } catch (const storage::LogStoreError& e) {
          if (e.kind() == storage::LogStoreError::Kind::Full) {
            persist_no_space_ = e.what();  // nothing was written: retry once there is room
          } else {
            persist_error_ = fmt::format("raft log write failed ({}): {}", storage::to_string(e.kind()), e.what());
          }
        } catch (const std::exception& e) {
          // Nothing may escape a thread-pool thread; whatever it was, the write did not happen.
          persist_error_ = fmt::format("raft log write failed: {}", e.what());
        }
      },
      [this] {
        // Done before run() returned: the executor ran inline, and the pump loop that called us
        // carries on instead of pumping recursively.
        persist_done_inline_ = in_start_ready_;
        persisted();
      });
  in_start_ready_ = false;
}

void ReplicaHost::persisted() {
  if (!persist_no_space_.empty() && persist_error_.empty()) {
    hold_for_space(std::exchange(persist_no_space_, {}));
    return;
  }
  persist_no_space_.clear();
  if (disk_full_.active() && persist_error_.empty()) {
    spdlog::warn("disk space is back: the held log write went through after {} attempts; serving writes again",
                 disk_full_.attempts());
    disk_full_.recovered();
  }
  persisting_ = false;
  raft::Ready ready = std::move(*in_flight_);
  in_flight_.reset();
  if (!persist_error_.empty()) {
    fail(persist_error_);
    return;
  }
  finish_ready(ready);
  // After an asynchronous write, nobody else will pump until the loop's next iteration.
  if (!persist_done_inline_) pump();
}

void ReplicaHost::retry_held_apply() {
  raft::Ready ready = std::move(*apply_held_);
  apply_held_.reset();
  persisting_ = false;
  apply_and_advance(ready);  // holds it again (backing off) while there is still no room
  if (apply_held_ || failed_) return;
  spdlog::warn("disk space is back: the held entries applied after {} attempts; serving writes again",
               disk_full_.attempts());
  disk_full_.recovered();
  pump();
}

void ReplicaHost::hold_for_space(std::string reason) {
  // in_flight_ stays, persisting_ stays true: the core waits, its messages stay unsent.
  const bool entering = !disk_full_.active();
  disk_full_.failed(std::move(reason), wall_ticks_);
  if (!entering) {
    spdlog::debug("disk still full (attempt {}): {}", disk_full_.attempts(), disk_full_.reason());
    return;
  }
  spdlog::error("disk full: refusing writes, serving serializable reads, retrying the held {}: {}",
                apply_held_ ? "apply" : "log write",
                disk_full_.reason());
  // Writes waiting for their entries: those may still commit (on this member once space
  // returns, or through another leader that has them), so the outcome is unknown; answered now
  // rather than left to hang, since this member cannot time them out while the core waits.
  for (const auto& [index, w] : pending_writes_) {
    output_.respond(w.connection, error_response(w.request_id, ErrorCode::NoSpace,
                                                 fmt::format("{}; the write may still apply: retry with the "
                                                             "same sequence", disk_full_.reason())));
  }
  for (const auto& [read_id, r] : pending_reads_) {
    output_.respond(r.connection, error_response(r.request.id, ErrorCode::Unavailable,
                                                 fmt::format("{}; this member cannot confirm linearizable "
                                                             "reads now: retry on another member",
                                                             disk_full_.reason())));
  }
  for (const auto& [index, c] : pending_changes_) {
    output_.respond(c.connection, error_response(c.request_id, ErrorCode::NoSpace,
                                                 fmt::format("{}; the change may still apply: check member list",
                                                             disk_full_.reason())));
  }
  pending_writes_.clear();
  pending_reads_.clear();
  pending_changes_.clear();
}

std::optional<ClientResponse> ReplicaHost::refused_for_space(const ClientRequest& request) const {
  if (request.kind == RequestKind::Write) {
    return error_response(request.id, ErrorCode::NoSpace,
                          fmt::format("member {} refuses writes: {}", self_.name, disk_full_.reason()));
  }
  // Linearizable reads and LeaseTtl need the core, which waits for the held write.
  return error_response(request.id, ErrorCode::Unavailable,
                        fmt::format("member {} cannot confirm linearizable reads ({}): retry on another "
                                    "member, or read serializable",
                                    self_.name, disk_full_.reason()));
}

void ReplicaHost::finish_ready(raft::Ready& ready) {
  sync_leadership();
  // The log holds the snapshot now; a crash before the state catches up is repaired at start.
  if (ready.snapshot) {
    install_snapshot(*ready.snapshot);
    if (failed_) return;
  }
  // 3. What the messages promise is durable.
  for (const raft::Message& m : ready.messages) send_raft(m);
  apply_and_advance(ready);
}

void ReplicaHost::apply_and_advance(raft::Ready& ready) {
  // 4. Apply, then serve the reads whose index is applied.
  apply_committed(ready.committed);
  if (failed_) return;
  if (!apply_no_space_.empty()) {
    // The entries are durable in the log; only applying them waits for room. The core waits
    // with them (persisting_), as it does for a held log write.
    apply_held_ = std::move(ready);
    persisting_ = true;
    hold_for_space(std::exchange(apply_no_space_, {}));
    return;
  }
  for (const raft::ReadState& rs : ready.reads) {
    auto it = pending_reads_.find(rs.request_id);
    if (it != pending_reads_.end()) it->second.read_index = rs.index;
  }
  serve_reads();
  if (!(node_->conf() == known_conf_)) {
    known_conf_ = node_->conf();
    learn_from_hellos();
    output_.members_changed();
  }
  // 5.
  node_->advance(ready);
  if (!check_fault()) return;
  maybe_snapshot();
}

void ReplicaHost::install_snapshot(const raft::Snapshot& snapshot) {
  const raft::Index index = snapshot.meta.index;
  if (!snapshot.data && index == sm_->applied_index()) {
    // A joining member adopting the configuration at the leader's log start (raft/node.h): no
    // state to restore, the log store keeps the configuration.
    spdlog::info("configuration adopted at index={} voters={} learners={}", index, snapshot.meta.conf.voters.size(),
                 snapshot.meta.conf.learners.size());
    return;
  }
  if (index < sm_->applied_index()) {
    fail(fmt::format("snapshot at {} is behind the applied index {}", index, sm_->applied_index()));
    return;
  }
  if (!snapshot.data) {
    fail(fmt::format("snapshot at {} carries no data", index));
    return;
  }
  kv::Status status;
  const auto file = std::dynamic_pointer_cast<const storage::SnapshotFile>(snapshot.data);
  try {
    status = sm_->restore(snapshot.data->bytes());
    if (file) file->release_pages();  // read once; the page cache keeps them if memory allows
    // A restore is one LMDB transaction holding every page it writes in the heap: give that back.
    ::malloc_trim(0);
  } catch (const kv::StorageError& e) {
    fail(fmt::format("restoring the snapshot at {} failed: {}", index, e.what()));
    return;
  }
  if (!status.ok() || sm_->applied_index() != index) {
    fail(fmt::format("snapshot at {} does not restore (applied {}): {}", index, sm_->applied_index(), status.message));
    return;
  }
  // The log store wrote the bytes to a file: the core keeps that (mapped) instead of its copy.
  if (const auto& file = log_->snapshot_file(); file && log_->snapshot_meta().index == index) {
    node_->replace_snapshot_data(index, file);
  }
  forget_replaced_unverified_snapshot();
  last_snapshot_index_ = index;
  last_snapshot_bytes_ = snapshot.data->size();
  log_bytes_since_snapshot_ = 0;
  log_bytes_at_snapshot_start_ = 0;
  leases_.reset(sm_->leases().value, now_ms());
  // Entries covered by a snapshot are never handed out one by one, so whether these writes made
  // it cannot be told here.
  while (!pending_writes_.empty() && pending_writes_.begin()->first <= index) {
    const PendingWrite& w = pending_writes_.begin()->second;
    output_.respond(w.connection, error_response(w.request_id, ErrorCode::Unavailable,
                                                 "outcome unknown (replaced by a snapshot); retry with the same sequence"));
    pending_writes_.erase(pending_writes_.begin());
  }
  while (!pending_changes_.empty() && pending_changes_.begin()->first <= index) {
    const PendingChange& c = pending_changes_.begin()->second;
    output_.respond(c.connection, error_response(c.request_id, ErrorCode::Unavailable,
                                                 "outcome unknown (replaced by a snapshot); check member list"));
    pending_changes_.erase(pending_changes_.begin());
  }
  spdlog::info("snapshot installed index={} term={} revision={}", index, snapshot.meta.term, sm_->revision());
}

void ReplicaHost::apply_committed(const std::vector<raft::Entry>& committed) {
  if (committed.empty()) return;
  if (committed.front().index != sm_->applied_index() + 1) {
    fail(fmt::format("committed entry {} does not follow the applied index {}", committed.front().index,
                     sm_->applied_index()));
    return;
  }
  // Before the state machine marks them applied: a crash in between re-applies them at restart.
  if (auto no_room = apply_membership(committed)) {
    // The membership is learned again when the held entries are applied again.
    apply_no_space_ = fmt::format("applying entries {}..{}: {}", committed.front().index, committed.back().index,
                                  *no_room);
    return;
  }
  if (failed_) return;
  std::vector<kv::AppliedEntry> batch;
  batch.reserve(committed.size());
  for (const raft::Entry& e : committed) {
    // Membership changes are the core's business; the state machine only advances past them.
    batch.push_back(kv::AppliedEntry{e.index, e.type == raft::EntryType::Normal ? e.data : std::string()});
  }
  std::vector<kv::Result> results;
  try {
    // Writes are answered as soon as their results are decided, while LMDB then writes the
    // pages of the commit (kv/state_machine.h): their entries are committed on a quorum's disks
    // already, and a commit that fails for lack of room is retried with the same results. This
    // loop runs nothing else before the commit, so a read that follows the answer here sees it.
    results = sm_->apply_batch(batch, [&](const std::vector<kv::Result>& decided) { answer_writes(committed, decided); });
  } catch (const kv::StorageError& e) {
    if (failed_for_lack_of_space(e.code(), kv_dir_)) {
      // The commit failed before it changed anything (kv/storage.h): apply again once there is
      // room (apply_and_advance holds the Ready).
      apply_no_space_ = fmt::format("applying entries {}..{}: {}", committed.front().index, committed.back().index,
                                    e.what());
      return;
    }
    fail(fmt::format("applying entries {}..{} failed: {}", committed.front().index, committed.back().index, e.what()));
    return;
  }
  for (const raft::Entry& e : committed) log_bytes_since_snapshot_ += e.data.size();
  track_leases(committed, results);
  answer_member_changes(committed);
}

void ReplicaHost::answer_writes(const std::vector<raft::Entry>& committed, const std::vector<kv::Result>& results) {
  for (std::size_t i = 0; i < committed.size(); ++i) {
    auto it = pending_writes_.find(committed[i].index);
    if (it == pending_writes_.end()) continue;
    const PendingWrite& w = it->second;
    if (committed[i].term != w.term) {
      output_.respond(w.connection, error_response(w.request_id, ErrorCode::Unavailable,
                                                   "the entry was lost in a leadership change; retry with the same sequence"));
    } else {
      ClientResponse r = from_status(w.request_id, results[i].status);
      r.revision = results[i].revision;
      r.result = results[i];
      output_.respond(w.connection, r);
    }
    pending_writes_.erase(it);
  }
}

void ReplicaHost::serve_reads() {
  const raft::Index applied = sm_->applied_index();
  for (auto it = pending_reads_.begin(); it != pending_reads_.end();) {
    const PendingRead& r = it->second;
    if (!r.read_index || *r.read_index > applied) {
      ++it;
      continue;
    }
    output_.respond(r.connection, read_now(r.request));
    it = pending_reads_.erase(it);
  }
}

void ReplicaHost::maybe_snapshot() {
  finish_snapshot();
  if (failed_ || snapshots_->busy()) return;
  const raft::Index applied = sm_->applied_index();
  if (!regenerate_snapshot_) {
    if (options_.snapshot_every_entries == 0 || applied < last_snapshot_index_ + options_.snapshot_every_entries) {
      return;
    }
    if (static_cast<double>(log_bytes_since_snapshot_) <
        options_.snapshot_log_ratio * static_cast<double>(last_snapshot_bytes_)) {
      return;
    }
  }
  if (node_->applied() != applied) return;  // mid-cycle; the next advance will do
  if (auto no_room = lacks_room(log_->directory(), last_snapshot_bytes_, options_.disk_full)) {
    // The log keeps its older snapshot and every entry after it, which load() restarts from
    // just as well; try again after more entries.
    spdlog::warn("no snapshot at {}: {}", applied, *no_room);
    last_snapshot_index_ = applied;
    return;
  }
  try {
    // The view is pinned here, on the loop thread, at `applied`; the bytes are made elsewhere.
    snapshots_->start(sm_->begin_snapshot());
  } catch (const kv::StorageError& e) {
    // A read transaction can fail transiently (MDB_READERS_FULL); try again after more entries.
    spdlog::warn("snapshot of the state at {} failed: {}", applied, e.what());
    last_snapshot_index_ = applied;
    return;
  }
  log_bytes_at_snapshot_start_ = log_bytes_since_snapshot_;
  finish_snapshot();  // done already when serialized inline
}

void ReplicaHost::finish_snapshot() {
  // The log store belongs to the disk thread while a write is in flight.
  if (failed_ || persisting_) return;
  std::optional<SnapshotWorker::Done> done = snapshots_->take();
  if (!done) return;
  const raft::Index index = done->index;
  log_bytes_since_snapshot_ -= std::min(log_bytes_since_snapshot_, log_bytes_at_snapshot_start_);
  if (!done->data) {
    spdlog::warn("snapshot of the state at {} failed: {}", index, done->error);
    last_snapshot_index_ = std::max(last_snapshot_index_, index);
    return;
  }
  // A file of the log's directory, already durable (snapshot_worker.h): save_snapshot records it.
  const raft::SnapshotDataPtr& data = done->data;
  if (regenerate_snapshot_ && index == node_->snapshot_meta().index && index == log_->snapshot_meta().index) {
    // The damaged file's snapshot made again from the same state: the same bytes (the dump is
    // deterministic), to be recorded in its place.
    const auto& damaged = log_->snapshot_file();
    if (!damaged || damaged->info().bytes != data->size()) {
      fail(fmt::format("the fresh snapshot at {} has {} bytes, the damaged file {} has {}: they should be the same", index,
                       data->size(), damaged ? damaged->path() : std::string("(none)"),
                       damaged ? damaged->info().bytes : 0));
      return;
    }
    node_->replace_snapshot_data(index, data);
  } else {
    // A leader's snapshot installed meanwhile may have replaced the log beyond this one.
    node_->compact(index, data);
  }
  if (node_->snapshot_meta().index != index) {
    // The core keeps what is not yet durable: nobody holds this file, which removes itself once
    // `done` goes (storage/snapshot_file.h, unlink_unless_recorded).
    return;
  }
  // Timed: both run on the loop thread, and the drop's time grows with the entries it removes.
  const auto compact_start = std::chrono::steady_clock::now();
  try {
    // save_snapshot before drop_prefix: a crash in between leaves both, never neither.
    log_->save_snapshot(node_->snapshot_meta(), data);
    log_->drop_prefix(index);
  } catch (const storage::LogStoreError& e) {
    if (e.kind() == storage::LogStoreError::Kind::Full) {
      spdlog::warn("snapshot at {} not saved to the log: {}", index, e.what());
      last_snapshot_index_ = index;
      return;
    }
    fail(fmt::format("saving the snapshot at {} failed ({}): {}", index, storage::to_string(e.kind()), e.what()));
    return;
  }
  last_snapshot_index_ = index;
  last_snapshot_bytes_ = data->size();
  spdlog::info("snapshot taken index={} bytes={} revision={} serialized_s={:.3f} log_compacted_s={:.3f}", index,
               data->size(), done->revision, done->seconds,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - compact_start).count());
  forget_replaced_unverified_snapshot();
}

void ReplicaHost::expire_requests() {
  for (auto it = pending_writes_.begin(); it != pending_writes_.end();) {
    if (it->second.deadline_tick > ticks_) {
      ++it;
      continue;
    }
    output_.respond(it->second.connection,
                    error_response(it->second.request_id, ErrorCode::Timeout,
                                   "not committed in time; the write may still apply: retry with the same sequence"));
    it = pending_writes_.erase(it);
  }
  for (auto it = pending_changes_.begin(); it != pending_changes_.end();) {
    if (it->second.deadline_tick > ticks_) {
      ++it;
      continue;
    }
    output_.respond(it->second.connection,
                    error_response(it->second.request_id, ErrorCode::Timeout,
                                   "membership change not committed in time; it may still apply: check member list"));
    it = pending_changes_.erase(it);
  }
  // Reads the core dropped (leadership changed before they were confirmed) end here too.
  for (auto it = pending_reads_.begin(); it != pending_reads_.end();) {
    if (it->second.deadline_tick > ticks_) {
      ++it;
      continue;
    }
    output_.respond(it->second.connection,
                    error_response(it->second.request.id, ErrorCode::Timeout, "read index not confirmed in time"));
    it = pending_reads_.erase(it);
  }
}

// ---------------------------------------------------------------------------------------------
// Answers

ClientResponse ReplicaHost::read_now(const ClientRequest& request) const {
  try {
    switch (request.kind) {
      case RequestKind::Get: {
        auto r = sm_->get(request.path, request.revision);
        ClientResponse out = from_status(request.id, r.status);
        out.revision = r.revision;
        if (r.ok()) out.node = std::move(r.value);
        return out;
      }
      case RequestKind::Exists: {
        auto r = sm_->exists(request.path, request.revision);
        ClientResponse out = from_status(request.id, r.status);
        out.revision = r.revision;
        out.exists = r.ok() && r.value;
        return out;
      }
      case RequestKind::List: {
        kv::ListOptions options;
        options.revision = request.revision;
        options.start_after = request.start_after;
        options.limit = request.limit;
        auto r = sm_->list(request.path, options);
        ClientResponse out = from_status(request.id, r.status);
        out.revision = r.revision;
        out.names = std::move(r.value.names);
        out.more = r.value.more;
        return out;
      }
      case RequestKind::Range: {
        kv::RangeOptions options;
        options.revision = request.revision;
        options.start_after = request.start_after;
        options.limit = request.limit;
        options.keys_only = request.keys_only;
        auto r = sm_->range(request.path, options);
        ClientResponse out = from_status(request.id, r.status);
        out.revision = r.revision;
        out.nodes = std::move(r.value.nodes);
        out.more = r.value.more;
        return out;
      }
      case RequestKind::LeaseTtl:
        return lease_ttl_now(request);
      default:
        break;
    }
  } catch (const kv::StorageError& e) {
    return error_response(request.id, ErrorCode::Unavailable, fmt::format("read failed: {}", e.what()));
  }
  return error_response(request.id, ErrorCode::InvalidRequest, "not a read");
}

ClientResponse ReplicaHost::lease_ttl_now(const ClientRequest& request) const {
  if (node_->role() != raft::Role::Leader || !leases_.leading()) return not_leader(request.id);
  auto r = sm_->lease_ttl(request.lease, /*with_keys=*/true);
  ClientResponse out = from_status(request.id, r.status);
  out.revision = r.revision;
  if (!r.ok()) return out;
  // A lease the clock has not heard of yet (its grant is applied in this very cycle) has its
  // whole TTL ahead of it.
  const std::optional<std::uint64_t> remaining = leases_.remaining(request.lease, now_ms());
  out.lease = LeaseTtlInfo{request.lease, r.value.lease.ttl_ms, r.value.lease.keepalives,
                           remaining.value_or(r.value.lease.ttl_ms), std::move(r.value.keys)};
  return out;
}

ClientResponse ReplicaHost::status_response(std::uint64_t id) const {
  ClientResponse r;
  r.id = id;
  StatusInfo s;
  s.id = self_.id;
  s.name = self_.name;
  s.cluster = cluster_.token;
  s.role = raft::to_string(node_->role());
  s.leader = node_->leader();
  s.term = node_->term();
  s.commit = node_->commit();
  s.applied = sm_->applied_index();
  // From the core's copy of the log: the log store may be in the middle of a write on the disk
  // thread.
  s.log_first = node_->log().first_index();
  s.log_last = node_->log().last_index();
  s.snapshot_index = node_->snapshot_meta().index;
  s.revision = sm_->revision();
  s.compact_revision = sm_->compact_revision();
  r.status = std::move(s);
  r.revision = sm_->revision();
  return r;
}

MemberInfo ReplicaHost::member_info(raft::NodeId id) const {
  const raft::ConfState& conf = node_->conf();
  MemberInfo info;
  info.id = id;
  if (const MemberConfig* m = find_member(id)) {
    info.name = m->name;
    info.peer_address = m->peer_address;
  }
  info.client_address = client_address_of(id);
  info.voter = raft::is_voter(conf, id);
  info.learner = raft::is_learner(conf, id);
  info.leader = node_->leader() == id;
  return info;
}

ClientResponse ReplicaHost::members_response(std::uint64_t id) const {
  ClientResponse r;
  r.id = id;
  r.cluster = cluster_.token;
  const raft::ConfState& conf = node_->conf();
  std::vector<raft::NodeId> ids;
  if (conf.voters.empty() && conf.learners.empty()) {
    for (const auto& [member_id, m] : members_) ids.push_back(member_id);  // joining: not told yet
  } else {
    ids = conf.voters;
    ids.insert(ids.end(), conf.learners.begin(), conf.learners.end());
  }
  for (raft::NodeId member_id : ids) r.members.push_back(member_info(member_id));
  // By name: the order an operator reads, the same on every member.
  std::sort(r.members.begin(), r.members.end(), [](const MemberInfo& a, const MemberInfo& b) { return a.name < b.name; });
  return r;
}

ClientResponse ReplicaHost::not_leader(std::uint64_t id) const {
  const raft::NodeId leader = node_->leader();
  if (leader == raft::kNoNode) {
    return error_response(id, ErrorCode::Unavailable, "no leader elected yet; retry");
  }
  ClientResponse r = error_response(id, ErrorCode::NotLeader, "not the leader");
  LeaderHint hint;
  hint.id = leader;
  if (const MemberConfig* m = find_member(leader)) hint.name = m->name;
  hint.client_address = client_address_of(leader);
  r.leader = std::move(hint);
  return r;
}

std::string ReplicaHost::client_address_of(raft::NodeId id) const {
  if (id == self_.id) return self_client_address_;
  auto it = client_addresses_.find(id);
  return it == client_addresses_.end() ? std::string() : it->second;
}

// ---------------------------------------------------------------------------------------------
// Failure and logging

void ReplicaHost::fail(const std::string& reason) {
  if (failed_) return;
  failed_ = true;
  spdlog::critical("replica stopping: {}", reason);
  for (const auto& [index, w] : pending_writes_) {
    output_.respond(w.connection, error_response(w.request_id, ErrorCode::Unavailable, "replica stopped"));
  }
  for (const auto& [read_id, r] : pending_reads_) {
    output_.respond(r.connection, error_response(r.request.id, ErrorCode::Unavailable, "replica stopped"));
  }
  pending_writes_.clear();
  pending_reads_.clear();
  transfers_.clear();
  watches_.end_all(ErrorCode::Unavailable, "replica stopped; resume the watch on another member", *sm_,
                   [this](ConnectionId c, const ClientResponse& r) { output_.respond(c, r); });
  output_.fatal(reason);
}

bool ReplicaHost::check_fault() {
  if (node_->fault().empty()) return true;
  fail(fmt::format("raft core fault: {}", node_->fault()));
  return false;
}

void ReplicaHost::log_role_change() {
  if (node_->role() == logged_role_ && node_->leader() == logged_leader_ && node_->term() == logged_term_) return;
  logged_role_ = node_->role();
  logged_leader_ = node_->leader();
  logged_term_ = node_->term();
  spdlog::info("raft role={} term={} leader={} commit={} applied={}", raft::to_string(logged_role_), logged_term_,
               logged_leader_, node_->commit(), sm_->applied_index());
}

}  // namespace coord::net
