#include "sim/replica.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "kv/codec.h"
#include "sim/describe.h"

namespace coord::sim {

namespace {

// A node's clock may start below zero (skew); the lease clock wants a non-negative reading.
inline constexpr std::int64_t kLeaseClockBaseUs = 3'600'000'000;

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t get_u64(std::string_view in) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v |= std::uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
  return v;
}

// A host_kv snapshot: the length of the HashStateMachine's part (u64, little-endian), that part,
// then the kv::StateMachine's snapshot bytes.
struct SnapshotParts {
  std::string_view hash;
  std::string_view kv;
};

std::optional<SnapshotParts> split_snapshot(std::string_view data) {
  if (data.size() < 8) return std::nullopt;
  const std::uint64_t hash_bytes = get_u64(data);
  if (hash_bytes > data.size() - 8) return std::nullopt;
  return SnapshotParts{data.substr(8, hash_bytes), data.substr(8 + hash_bytes)};
}

}  // namespace

Replica::Replica(raft::NodeId id, const ReplicaParams& params, StoredLog bootstrap,
                 std::uint64_t root_seed, Env& env, ReplicaHooks& hooks)
    : id_(id),
      params_(params),
      env_(env),
      hooks_(hooks),
      raft_rng_(Rng::stream(root_seed, "raft", id)),
      crash_rng_(Rng::stream(root_seed, "crash", id)),
      disk_(std::move(bootstrap), Rng::stream(root_seed, "disk", id)) {
  params_.raft.id = id;
  // The core reads back what it dropped from what was written (entries it drops are durable).
  if (params_.raft.log_memory_bytes_max > 0) {
    params_.raft.read_entries = [this](raft::Index lo, raft::Index hi, std::size_t max_bytes) {
      return disk_.written().read(lo, hi, max_bytes);
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

void Replica::start() {
  if (alive_) return;
  const StoredLog& stored = disk_.durable();
  sm_ = HashStateMachine{};
  watches_.clear();
  kv_.reset();
  kv_storage_.reset();
  if (params_.host_kv) {
    kv_storage_ = std::make_unique<kv::MemoryStorage>();
    kv_ = std::make_unique<kv::StateMachine>(*kv_storage_, params_.kv_limits);
  }
  if (stored.snapshot.index > 0) {
    if (!stored.snapshot_data || !restore_state(stored.snapshot_data->bytes(), stored.snapshot.index)) {
      contract_violation(fmt::format("stored snapshot at {} is unreadable", stored.snapshot.index));
      return;
    }
  }
  raft::RestoreState restore;
  restore.hard_state = stored.hard_state;
  restore.snapshot = stored.snapshot;
  restore.snapshot_data = stored.snapshot_data;
  restore.entries = stored.entries_after_snapshot();
  // The state machine lives in memory, so after a restart it is what the snapshot holds.
  restore.applied = stored.snapshot.index;

  ++incarnation_;
  alive_ = true;
  paused_ = false;
  node_ = std::make_unique<raft::Node>(params_.raft, raft_rng_, std::move(restore));
  leases_ = kv::LeaseClock{};
  countdown_latest_ms_ = 0;
  countdowns_.clear();
  if (kv_) {
    leases_.reset(kv_->leases().value, lease_now_ms());
    countdown_reset();
  }
  env_.trace(id_, fmt::format("start incarnation={} {} snapshot={}/{} last={}", incarnation_,
                              describe(stored.hard_state), stored.snapshot.index,
                              stored.snapshot.term, stored.last_index()));
  if (stored.snapshot.index > 0) hooks_.restored(*this);
  hooks_.stepped(*this);
  next_tick_local_ = clock_.local(env_.now()) + static_cast<std::int64_t>(params_.tick_us);
  ++tick_generation_;
  schedule_tick_check(clock_.when(next_tick_local_, env_.now()));
  pump();
}

void Replica::crash(std::string_view reason) {
  if (!alive_) return;
  alive_ = false;
  paused_ = false;
  doomed_ = false;
  ++incarnation_;  // retires every event scheduled for the old incarnation
  node_.reset();
  sm_ = HashStateMachine{};
  watches_.clear();
  kv_.reset();
  kv_storage_.reset();
  leases_ = kv::LeaseClock{};
  countdowns_.clear();
  countdown_latest_ms_ = 0;
  inbox_.clear();
  pending_.reset();
  pending_acks_.clear();
  pending_reads_.clear();
  const std::size_t lost = disk_.crash(crash_rng_);
  ++stats_.crashes;
  stats_.lost_batches += lost;
  env_.trace(id_, fmt::format("crash ({}): {} unsynced batches lost, durable {} last={}", reason,
                              lost, describe(disk_.durable().hard_state),
                              disk_.durable().last_index()));
}

void Replica::pause(Micros until) {
  if (!alive_) return;
  paused_ = true;
  paused_until_ = std::max(paused_until_, until);
  env_.trace(id_, fmt::format("pause until {}", format_time(paused_until_)));
  const std::uint64_t incarnation = incarnation_;
  env_.schedule(paused_until_, [this, incarnation] {
    if (incarnation == incarnation_ && paused_ && env_.now() >= paused_until_) wake();
  });
}

void Replica::wake() {
  if (!alive_ || !paused_) return;
  paused_ = false;
  env_.trace(id_, fmt::format("wake with {} inputs queued", inbox_.size()));
  // Timers that should have fired during the pause fire now, before the queued input.
  ++tick_generation_;
  tick_check(true);
}

// ---------------------------------------------------------------------------------------------
// Inputs

void Replica::deliver(raft::Message message) { enqueue(std::move(message)); }

void Replica::request(ClientRequest request) { enqueue(std::move(request)); }

void Replica::enqueue(Input input) {
  if (!alive_) return;
  if (inbox_.size() >= params_.inbox_inputs_max) {
    ++stats_.inbox_drops;
    env_.trace(id_, "inbox full: input dropped");
    return;
  }
  inbox_.push_back(std::move(input));
  pump();
}

void Replica::add_ticks(int ticks, bool first) {
  // Overdue ticks collapse into one input, still bounded by the burst limit.
  Input* slot = nullptr;
  if (!inbox_.empty()) slot = first ? &inbox_.front() : &inbox_.back();
  if (slot) {
    if (auto* t = std::get_if<TickInput>(slot)) {
      t->ticks = std::min(t->ticks + ticks, params_.tick_burst_max);
      return;
    }
  }
  // In-place construction: building a temporary variant trips GCC 12's -Wmaybe-uninitialized.
  if (first) {
    inbox_.emplace_front(std::in_place_type<TickInput>, TickInput{ticks});
  } else {
    inbox_.emplace_back(std::in_place_type<TickInput>, TickInput{ticks});
  }
}

void Replica::clock_changed() {
  if (!alive_ || paused_) return;
  ++tick_generation_;
  tick_check();
}

void Replica::schedule_tick_check(Micros at) {
  const std::uint64_t generation = tick_generation_;
  const std::uint64_t incarnation = incarnation_;
  env_.schedule(at, [this, generation, incarnation] {
    if (generation == tick_generation_ && incarnation == incarnation_) tick_check();
  });
}

void Replica::tick_check(bool late_first) {
  if (!alive_ || paused_) return;  // wake() starts a new chain
  const Micros now = env_.now();
  const std::int64_t local = clock_.local(now);
  const auto tick_us = static_cast<std::int64_t>(params_.tick_us);
  if (local >= next_tick_local_) {
    const std::int64_t due = (local - next_tick_local_) / tick_us + 1;
    const int fire = static_cast<int>(std::min<std::int64_t>(due, params_.tick_burst_max));
    next_tick_local_ += due * tick_us;
    if (due > 1) env_.trace(id_, fmt::format("timers late: {} ticks due, {} fire", due, fire));
    add_ticks(fire, late_first);
  }
  schedule_tick_check(std::max(clock_.when(next_tick_local_, now), now + 1));
  pump();
}

// ---------------------------------------------------------------------------------------------
// The Ready cycle

void Replica::pump() {
  while (alive_ && !paused_ && !doomed_ && !env_.halted()) {
    if (pending_) {
      if (!pending_->synced) return;  // busy: the fsync has not completed
      finish_ready();
      continue;
    }
    if (!inbox_.empty()) {
      for (std::size_t n = 0; n < params_.inputs_per_ready_max && !inbox_.empty(); ++n) {
        Input input = std::move(inbox_.front());
        inbox_.pop_front();
        step_input(input);
        if (!alive_ || doomed_ || env_.halted()) return;
      }
      continue;
    }
    if (node_->has_ready()) {
      start_ready();
      continue;
    }
    return;
  }
}

void Replica::step_input(Input& input) {
  if (auto* m = std::get_if<raft::Message>(&input)) {
    if (m->to != id_) {
      contract_violation(fmt::format("received a message for n{}: {}", m->to, describe(*m)));
      return;
    }
    env_.trace(id_, "step " + describe(*m));
    node_->step(*m);
    hooks_.stepped(*this);
  } else if (auto* t = std::get_if<TickInput>(&input)) {
    for (int i = 0; i < t->ticks && !env_.halted(); ++i) {
      node_->tick();
      hooks_.stepped(*this);
    }
    if (kv_ && !env_.halted()) application_ticks();
    return;
  } else {
    step_request(std::get<ClientRequest>(input));
  }
  if (kv_ && alive_ && !env_.halted()) observe_leadership();
}

void Replica::step_request(ClientRequest& request) {
  if (request.kind == ClientRequest::Kind::Propose) {
    if (pending_acks_.size() >= params_.pending_requests_max) {
      reply(request, ClientReply::Status::NotLeader, 0);
      return;
    }
    const raft::ProposeResult r = node_->propose(request.command);
    hooks_.stepped(*this);
    if (r.error != raft::Error::Ok) {
      env_.trace(id_, fmt::format("propose '{}' refused: {}",
                                  request.label.empty() ? request.command : request.label,
                                  raft::to_string(r.error)));
      reply(request, ClientReply::Status::NotLeader, 0);
      return;
    }
    env_.trace(id_, fmt::format("propose '{}' at {}/t{}",
                                request.label.empty() ? request.command : request.label, r.index, r.term));
    auto [it, inserted] = pending_acks_.try_emplace(r.index, PendingAck{request, r.term});
    if (!inserted) {
      // An older proposal at this index was truncated away when leadership changed hands.
      reply(it->second.request, ClientReply::Status::Failed, r.index);
      it->second = PendingAck{request, r.term};
    }
    return;
  }
  if (request.kind == ClientRequest::Kind::Transfer) {
    const raft::Error err = node_->transfer_leadership(request.transfer_to);
    hooks_.stepped(*this);
    env_.trace(id_, fmt::format("transfer leadership to n{}: {}", request.transfer_to, raft::to_string(err)));
    reply(request, err == raft::Error::Ok ? ClientReply::Status::Started : ClientReply::Status::NotLeader, 0);
    return;
  }
  if (request.kind == ClientRequest::Kind::Watch) {
    step_watch(request);
    return;
  }
#ifdef COORD_SIM_BUG_KV_LOCAL_READS
  // Deliberately broken (test builds only): kv reads served from local state at once, without
  // asking ReadIndex whether this node is behind.
  if (request.kv_read && kv_) {
    ClientReply out = base_reply(request, ClientReply::Status::ReadDone);
    out.index = sm_.index();
    if (request.kv_read->what == KvRead::What::Get) {
      out.kv_node = kv_->get(request.kv_read->path);
    } else {
      out.kv_list = kv_->list(request.kv_read->path, request.kv_read->list);
    }
    hooks_.reply(out);
    return;
  }
#endif
  // Reads that never came back (the core drops them when leadership changes) are forgotten,
  // oldest first; their clients have long timed out.
  while (pending_reads_.size() >= params_.pending_requests_max) pending_reads_.erase(pending_reads_.begin());
  const std::uint64_t read_id = next_read_id_++;
  const raft::Index acked_max = hooks_.acked_max();
  const raft::Error err = node_->read_index(read_id);
  hooks_.stepped(*this);
  if (err != raft::Error::Ok) {
    reply(request, ClientReply::Status::NotLeader, 0);
    return;
  }
  env_.trace(id_, fmt::format("read {} asked (acked max {})", read_id, acked_max));
  pending_reads_.emplace(read_id, PendingRead{request, acked_max, std::nullopt});
}

void Replica::start_ready() {
  raft::Ready rd = node_->ready();
  env_.trace(id_, describe(rd));
  WriteBatch batch;
  if (rd.snapshot) {
    // Step 1: the state machine becomes the snapshot, the log restarts after it.
    const raft::Snapshot& snap = *rd.snapshot;
    if (snap.meta.index < sm_.index()) {
      contract_violation(
          fmt::format("snapshot at {} is behind the applied index {}", snap.meta.index, sm_.index()));
      return;
    }
    if (!snap.data || !restore_state(snap.data->bytes(), snap.meta.index)) {
      contract_violation(
          fmt::format("snapshot {}/{} carries unreadable data", snap.meta.index, snap.meta.term));
      return;
    }
    ++stats_.snapshots_installed;
    fail_pending_acks_through(snap.meta.index);
    hooks_.restored(*this);
    if (env_.halted()) return;
    if (kv_) {
      leases_.reset(kv_->leases().value, lease_now_ms());
      countdown_reset();
      serve_watches();
    }
    add(batch, ReplaceWithSnapshot{snap.meta, snap.data});
  }
  // Step 2: entries and hard state, then fsync.
  if (!rd.entries.empty()) add(batch, AppendEntries{rd.entries});
  if (rd.hard_state) add(batch, SetHardState{*rd.hard_state});
  std::vector<raft::Message> early = std::move(rd.early_messages);
  rd.early_messages.clear();
  if (!params_.send_early) {
    // Held back to step 3, as a host that ignores the early path would: also legal.
    for (raft::Message& m : early) rd.messages.push_back(std::move(m));
    early.clear();
  }
  pending_ = PendingReady{std::move(rd), batch.empty(), 0};
  bool stopped = false;
  if (!batch.empty()) write_or_stop(std::move(batch), stopped);
  if (stopped) return;
  // Early messages leave while the fsync is in flight (a crash may lose the batch they announce).
  for (raft::Message& m : early) {
    if (!send_early(std::move(m))) return;
  }
  if (pending_->synced) return;
  pending_->seq = disk_.written_seq();
  ++stats_.fsyncs;
  const std::uint64_t incarnation = incarnation_;
  const std::uint64_t seq = pending_->seq;
  env_.schedule(env_.now() + disk_.fsync_latency(),
                [this, incarnation, seq] { fsync_completed(incarnation, seq, true); });
}

void Replica::write_or_stop(WriteBatch batch, bool& stopped) {
  std::string problem;
  switch (disk_.write(std::move(batch), &problem)) {
    case Disk::WriteStatus::Ok:
      return;
    case Disk::WriteStatus::IoError:
      stopped = true;
      fail_stop("disk write failed");
      return;
    case Disk::WriteStatus::Invalid:
      stopped = true;
      contract_violation(problem);
      return;
  }
}

void Replica::fsync_completed(std::uint64_t incarnation, std::uint64_t seq, bool for_ready) {
  if (incarnation != incarnation_ || !alive_) return;
  if (disk_.failing()) {
    fail_stop("fsync failed");
    return;
  }
  disk_.sync_through(seq);
  if (!for_ready) return;
  if (!pending_ || pending_->seq != seq) return;
  pending_->synced = true;
  pump();  // a paused host finishes the cycle when it wakes
}

bool Replica::send_early(raft::Message m) {
  // What an early message rests on must already be durable: it comes from a leader whose term,
  // and its vote for itself in that term, an earlier fsync covered; and it promises nothing
  // about this Ready (an answer or a vote would).
  const raft::HardState& durable = disk_.durable().hard_state;
  const bool leader_kind = m.type == raft::MessageType::Append || m.type == raft::MessageType::Heartbeat ||
                           m.type == raft::MessageType::Snapshot;
  if (!leader_kind || m.term != durable.term || durable.vote != id_ || m.from != id_) {
    contract_violation(fmt::format("early message before its term and vote are durable (durable {}): {}",
                                   describe(durable), describe(m)));
    return false;
  }
  ++stats_.early_messages;
  hooks_.send(std::move(m));
  return alive_ && !env_.halted();
}

void Replica::finish_ready() {
  raft::Ready rd = std::move(pending_->ready);
  pending_.reset();
  // Step 3: what the messages promise is durable now.
  for (raft::Message& m : rd.messages) {
    if (m.from != id_) {
      contract_violation(fmt::format("message claims to be from n{}: {}", m.from, describe(m)));
      return;
    }
    hooks_.send(std::move(m));
  }
  // Step 4: apply, then serve the reads whose index is applied.
  apply_committed(rd.committed);
  if (!alive_ || env_.halted()) return;
  for (const raft::ReadState& rs : rd.reads) {
    auto it = pending_reads_.find(rs.request_id);
    if (it == pending_reads_.end()) continue;  // forgotten: its client gave up
    it->second.read_index = rs.index;
  }
  serve_reads();
  if (kv_) serve_watches();
  // Step 5.
  node_->advance(rd);
  hooks_.stepped(*this);
  if (env_.halted()) return;
  if (kv_) observe_leadership();
  maybe_compact();
}

void Replica::apply_committed(const std::vector<raft::Entry>& committed) {
  // The application applies the whole batch in one transaction, as a real host does; the checks
  // below run first, so nothing unchecked reaches it.
  std::vector<kv::Result> results;
  if (kv_ && !committed.empty()) {
    std::vector<kv::AppliedEntry> batch;
    batch.reserve(committed.size());
    for (const raft::Entry& e : committed) {
      const raft::Index expected = sm_.index() + 1 + batch.size();
      auto stored_term = disk_.written().term(e.index);
      if (e.index != expected || !stored_term || *stored_term != e.term) break;  // reported below
      // Membership changes mean nothing to the application; it only counts their index.
      batch.push_back(kv::AppliedEntry{e.index, e.type == raft::EntryType::Normal ? e.data : std::string()});
    }
    // A bad entry is reported below; the entries before it apply as usual.
    if (!batch.empty()) results = kv_->apply_batch(batch);
  }
  for (std::size_t i = 0; i < committed.size(); ++i) {
    const raft::Entry& e = committed[i];
    if (e.index != sm_.index() + 1) {
      contract_violation(fmt::format("committed entry {} does not follow the applied index {}",
                                     e.index, sm_.index()));
      return;
    }
    // Applying something this node has not written would make its state depend on an entry it
    // could lose in a crash.
    auto stored_term = disk_.written().term(e.index);
    if (!stored_term || *stored_term != e.term) {
      contract_violation(fmt::format("committed entry {}/t{} is not in the written log", e.index, e.term));
      return;
    }
    sm_.apply(e);
    if (kv_ && e.type == raft::EntryType::Normal && !e.data.empty()) {
      const kv::DecodedCommand decoded = kv::decode_command(e.data);
      if (decoded.status.ok()) {
        leases_.on_applied(decoded.command.body, results[i], lease_now_ms());
        countdown_applied(decoded.command.body, results[i]);
      }
    }
    hooks_.applied(*this, e);
    if (env_.halted()) return;
    auto it = pending_acks_.find(e.index);
    if (it != pending_acks_.end()) {
      const bool ours = e.type == raft::EntryType::Normal && e.term == it->second.term &&
                        e.data == it->second.request.command;
      ClientReply out =
          base_reply(it->second.request, ours ? ClientReply::Status::Acked : ClientReply::Status::Failed);
      out.index = e.index;
      if (ours) {
        out.term = e.term;
        out.command = it->second.request.command;
        out.label = it->second.request.label;
        if (kv_) out.kv_result = results[i];
      }
      hooks_.reply(out);
      pending_acks_.erase(it);
    }
  }
  if (!committed.empty()) {
    if (kv_) {
      env_.trace(id_, fmt::format("applied {}..{} count={} revision={}", committed.front().index,
                                  committed.back().index, sm_.digest().count, kv_->revision()));
    } else {
      env_.trace(id_, fmt::format("applied {}..{} count={}", committed.front().index,
                                  committed.back().index, sm_.digest().count));
    }
  }
}

void Replica::serve_reads() {
  for (auto it = pending_reads_.begin(); it != pending_reads_.end();) {
    PendingRead& r = it->second;
    if (!r.read_index || *r.read_index > sm_.index()) {
      ++it;
      continue;
    }
    env_.trace(id_, fmt::format("read {} served at {} (applied {})", it->first, *r.read_index, sm_.index()));
    hooks_.read_served(*this, it->first, *r.read_index, r.acked_max_at_request);
    ClientReply out = base_reply(r.request, ClientReply::Status::ReadDone);
    out.index = *r.read_index;
    if (r.request.kv_read && kv_) {
      const KvRead& q = *r.request.kv_read;
      if (q.what == KvRead::What::Get) {
        out.kv_node = kv_->get(q.path);
      } else {
        out.kv_list = kv_->list(q.path, q.list);
      }
    }
    hooks_.reply(out);
    it = pending_reads_.erase(it);
  }
}

void Replica::maybe_compact() {
  const raft::Index applied = sm_.index();
  const raft::Index since = disk_.written().snapshot.index;
  if (applied < since + params_.snapshot_every_entries) return;
  if (streaming_snapshot() &&
      applied < since + params_.snapshot_every_entries * ReplicaParams::kCompactHoldFactor) {
    return;
  }
  const std::optional<raft::Term> term = node_->log().term(applied);
  if (!term) return;
  raft::SnapshotMeta meta{applied, *term, node_->conf()};
  auto data = raft::snapshot_bytes(snapshot_state());
  node_->compact(applied, data);
  hooks_.stepped(*this);
  if (env_.halted()) return;
  ++stats_.compactions;
  env_.trace(id_, fmt::format("compact through {}/t{}", applied, *term));
  // The snapshot goes to disk before the prefix it replaces is dropped: a crash in between
  // leaves both, never neither.
  bool stopped = false;
  WriteBatch save;
  add(save, SaveSnapshot{meta, data});
  write_or_stop(std::move(save), stopped);
  if (stopped) return;
  WriteBatch drop;
  add(drop, DropPrefix{applied});
  write_or_stop(std::move(drop), stopped);
  if (stopped) return;
  const std::uint64_t incarnation = incarnation_;
  const std::uint64_t seq = disk_.written_seq();
  env_.schedule(env_.now() + disk_.fsync_latency(),
                [this, incarnation, seq] { fsync_completed(incarnation, seq, false); });
}

bool Replica::streaming_snapshot() const {
  if (node_->role() != raft::Role::Leader) return false;
  for (const auto& [id, pr] : node_->progress()) {
    if (pr.state == raft::Progress::State::Snapshot) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Helpers

void Replica::fail_stop(std::string_view reason) {
  crash(reason);
  hooks_.fail_stopped(*this);
}

void Replica::contract_violation(std::string message) {
  hooks_.violation(Violation{invariant::kReadyContract, fmt::format("n{}: {}", id_, message)});
}

ClientReply Replica::base_reply(const ClientRequest& request, ClientReply::Status status) const {
  ClientReply r;
  r.client = request.client;
  r.op = request.op;
  r.status = status;
  r.node = id_;
  r.leader_hint = node_ ? node_->leader() : raft::kNoNode;
  r.issued_at = request.issued_at;
  return r;
}

void Replica::reply(const ClientRequest& request, ClientReply::Status status, raft::Index index,
                    raft::Term term) {
  ClientReply r = base_reply(request, status);
  r.index = index;
  if (status == ClientReply::Status::Acked) {
    r.term = term;
    r.command = request.command;
    r.label = request.label;
  }
  hooks_.reply(r);
}

void Replica::fail_pending_acks_through(raft::Index index) {
  // Entries covered by an installed snapshot are never handed out one by one, so whether these
  // proposals made it cannot be told here: the client hears "failed" and moves on.
  while (!pending_acks_.empty() && pending_acks_.begin()->first <= index) {
    reply(pending_acks_.begin()->second.request, ClientReply::Status::Failed, pending_acks_.begin()->first);
    pending_acks_.erase(pending_acks_.begin());
  }
}

// ---------------------------------------------------------------------------------------------
// The application side (host_kv)

bool Replica::restore_state(std::string_view data, raft::Index index) {
  std::string_view hash_part = data;
  std::optional<SnapshotParts> parts;
  if (kv_) {
    parts = split_snapshot(data);
    if (!parts) return false;
    hash_part = parts->hash;
  }
  std::optional<HashStateMachine> sm = HashStateMachine::restore(hash_part);
  if (!sm || sm->index() != index) return false;
  if (kv_) {
    // Malformed bytes change nothing; well-formed ones replace the whole state, watchers stay
    // and catch up from the new history.
    const kv::Status s = kv_->restore(parts->kv);
    if (!s.ok() || kv_->applied_index() != index) return false;
  }
  sm_ = *sm;
  return true;
}

std::string Replica::snapshot_state() const {
  if (!kv_) return sm_.snapshot();
  const std::string hash = sm_.snapshot();
  std::string out;
  put_u64(out, hash.size());
  out += hash;
  out += kv_->snapshot();
  return out;
}

std::uint64_t Replica::lease_now_ms() const {
#ifdef COORD_SIM_BUG_LOCKS_LEASE_EARLY
  // Deliberately broken (test builds only): the lease clock counts at twice the node's clock
  // rate, so leases expire after half their TTL.
  const std::int64_t local = 2 * local_now() + kLeaseClockBaseUs;
#else
  const std::int64_t local = local_now() + kLeaseClockBaseUs;
#endif
  return local < 0 ? 0 : static_cast<std::uint64_t>(local) / kMicrosPerMilli;
}

std::uint64_t Replica::countdown_settle() {
  // Read from the node's clock here rather than through lease_now_ms(), which is under test.
  const std::int64_t local = clock_.local(env_.now()) + kLeaseClockBaseUs;
  const std::uint64_t now = local < 0 ? 0 : static_cast<std::uint64_t>(local) / kMicrosPerMilli;
  countdown_latest_ms_ = std::max(countdown_latest_ms_, now);
  return countdown_latest_ms_;
}

void Replica::countdown_reset() {
  const std::uint64_t now = countdown_settle();
  countdowns_.clear();
  for (const kv::Lease& lease : kv_->leases().value) countdowns_[lease.id] = Countdown{lease.ttl_ms, now};
}

void Replica::countdown_applied(const kv::Body& body, const kv::Result& result) {
  if (!result.ok()) {
    if (result.status.error != kv::Error::LeaseNotFound) return;
    if (const auto* k = std::get_if<kv::LeaseKeepAlive>(&body)) countdowns_.erase(k->id);
    if (const auto* r = std::get_if<kv::LeaseRevoke>(&body)) countdowns_.erase(r->id);
    if (const auto* e = std::get_if<kv::LeaseExpire>(&body)) countdowns_.erase(e->id);
    return;
  }
  if (std::holds_alternative<kv::LeaseGrant>(body) || std::holds_alternative<kv::LeaseKeepAlive>(body)) {
    countdowns_[result.lease.lease.id] = Countdown{result.lease.lease.ttl_ms, countdown_settle()};
  } else if (const auto* r = std::get_if<kv::LeaseRevoke>(&body)) {
    countdowns_.erase(r->id);
  } else if (const auto* e = std::get_if<kv::LeaseExpire>(&body)) {
    countdowns_.erase(e->id);
  }
}

void Replica::check_expiry_not_early(const kv::LeaseExpire& expire) {
  const auto it = countdowns_.find(expire.id);
  if (it == countdowns_.end()) {
    hooks_.violation(Violation{invariant::kLeaseNeverEarly,
                               fmt::format("n{} proposes to expire lease {}, which it never saw granted (or saw end)",
                                           id_, expire.id)});
    return;
  }
  const std::uint64_t since = std::max(it->second.since_ms, countdown_leader_since_ms_);
  const std::uint64_t now = countdown_latest_ms_;
  if (now < since + it->second.ttl_ms) {
    hooks_.violation(Violation{
        invariant::kLeaseNeverEarly,
        fmt::format("n{} proposes to expire lease {} (ttl {}ms) {}ms after it began counting it down (its "
                    "latest grant/keep-alive applied {}ms ago, leader for {}ms), by its own clock",
                    id_, expire.id, it->second.ttl_ms, now - since, now - it->second.since_ms,
                    now - countdown_leader_since_ms_)});
  }
}

void Replica::observe_leadership() {
  const bool leader = node_->role() == raft::Role::Leader;
  if (leader && (!leases_.leading() || leases_term_ != node_->term())) {
    // A new leadership (even this node's own, after a term it missed) restarts every countdown.
    if (leases_.leading()) leases_.on_lose_leadership();
    leases_.on_become_leader(lease_now_ms());
    countdown_leader_since_ms_ = countdown_settle();
    leases_term_ = node_->term();
  } else if (!leader && leases_.leading()) {
    leases_.on_lose_leadership();
  }
}

void Replica::application_ticks() {
  observe_leadership();
  if (leases_.leading()) {
    const auto expired = leases_.expired(lease_now_ms(), params_.lease_expiries_per_tick_max);
    (void)countdown_settle();
    for (const kv::LeaseExpire& expire : expired) {
      check_expiry_not_early(expire);
      if (env_.halted()) return;
      const raft::ProposeResult r = node_->propose(kv::encode_command(kv::Command{0, 0, expire}));
      hooks_.stepped(*this);
      if (env_.halted()) return;
      if (r.error != raft::Error::Ok) {
        leases_.on_expire_dropped(expire.id);
        continue;
      }
      ++stats_.lease_expiries_proposed;
      env_.trace(id_, fmt::format("lease {} ran out: propose expire (keep-alives {}) at {}/t{}", expire.id,
                                  expire.keepalives, r.index, r.term));
    }
  }
  const std::int64_t now = local_now();
  const auto hold = static_cast<std::int64_t>(params_.watch_hold_us);
  const auto idle = static_cast<std::int64_t>(params_.watch_idle_us);
  for (auto it = watches_.begin(); it != watches_.end();) {
    HostedWatch& w = it->second;
    if (w.held && now - w.held_since_local >= hold) {
      const ClientRequest poll = std::move(*w.held);
      w.held.reset();
      const kv::WatchId id = it->first;
      ++it;  // answer_watch may drop the watcher
      answer_watch(poll, kv_->poll_watch(id, poll.watch->events_max));
      continue;
    }
    if (!w.held && now - w.seen_local >= idle) {
      env_.trace(id_, fmt::format("watch {} of client {} idle: dropped", it->first, w.client));
      (void)kv_->cancel_watch(it->first);
      ++stats_.watches_dropped_idle;
      it = watches_.erase(it);
      continue;
    }
    ++it;
  }
}

void Replica::answer_watch(const ClientRequest& poll, const kv::WatchResponse& response) {
  ClientReply out = base_reply(poll, ClientReply::Status::Watch);
  WatchAnswer& a = out.watch.emplace();
  a.incarnation = incarnation_;
  a.id = poll.watch->id;
  a.events = response.events;
  a.progress_revision = response.progress_revision;
  a.ended = response.canceled;
  a.status = response.cancel_status;
  if (response.canceled) {
    env_.trace(id_, fmt::format("watch {} of client {} ended: {}", a.id, poll.client,
                                kv::to_string(a.status.error)));
    watches_.erase(a.id);
  }
  hooks_.reply(out);
}

void Replica::step_watch(const ClientRequest& request) {
  const WatchCall& call = *request.watch;
  const std::int64_t now = local_now();
  if (!kv_) return;
  switch (call.what) {
    case WatchCall::What::Open: {
      const kv::WatchCreated created = kv_->watch(call.request);
      ClientReply out = base_reply(request, ClientReply::Status::Watch);
      WatchAnswer& a = out.watch.emplace();
      a.incarnation = incarnation_;
      a.id = created.id;
      a.start_revision = created.start_revision;
      a.progress_revision = kv_->revision();
      a.ended = !created.status.ok();
      a.status = created.status;
      if (created.status.ok()) watches_[created.id] = HostedWatch{request.client, std::nullopt, 0, now};
      env_.trace(id_, fmt::format("watch {} opened for client {} from {}: {}", created.id, request.client,
                                  created.start_revision, kv::to_string(created.status.error)));
      hooks_.reply(out);
      return;
    }
    case WatchCall::What::Poll: {
      auto it = watches_.find(call.id);
      if (call.incarnation != incarnation_ || it == watches_.end()) {
        ClientReply out = base_reply(request, ClientReply::Status::Watch);
        WatchAnswer& a = out.watch.emplace();
        a.incarnation = incarnation_;
        a.id = call.id;
        a.ended = true;
        a.status = kv::make_status(kv::Error::UnknownWatch,
                                   fmt::format("no watch {} of incarnation {}", call.id, call.incarnation));
        hooks_.reply(out);
        return;
      }
      // A poll supersedes the one held before it: its client stopped waiting for that.
      it->second.held.reset();
      it->second.seen_local = now;
      kv::WatchResponse response = kv_->poll_watch(call.id, call.events_max);
      if (!response.events.empty() || response.canceled) {
        answer_watch(request, response);
        return;
      }
      it->second.held = request;
      it->second.held_since_local = now;
      return;
    }
    case WatchCall::What::Close:
      if (call.incarnation == incarnation_ && watches_.erase(call.id) > 0) (void)kv_->cancel_watch(call.id);
      return;
  }
}

void Replica::serve_watches() {
  if (watches_.empty()) return;
  for (const kv::WatchId id : kv_->pending_watches()) {
    auto it = watches_.find(id);
    if (it == watches_.end() || !it->second.held) continue;
    const std::size_t events_max = it->second.held->watch->events_max;
    kv::WatchResponse response = kv_->poll_watch(id, events_max);
    if (response.events.empty() && !response.canceled) continue;  // still catching up: keep holding
    const ClientRequest poll = std::move(*it->second.held);
    it->second.held.reset();
    answer_watch(poll, response);
  }
}

}  // namespace coord::sim
