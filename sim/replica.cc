#include "sim/replica.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "sim/describe.h"

namespace coord::sim {

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
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

void Replica::start() {
  if (alive_) return;
  const StoredLog& stored = disk_.durable();
  sm_ = HashStateMachine{};
  if (stored.snapshot.index > 0) {
    std::optional<HashStateMachine> sm;
    if (stored.snapshot_data) sm = HashStateMachine::restore(*stored.snapshot_data);
    if (!sm || sm->index() != stored.snapshot.index) {
      contract_violation(fmt::format("stored snapshot at {} is unreadable", stored.snapshot.index));
      return;
    }
    sm_ = *sm;
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
  } else {
    step_request(std::get<ClientRequest>(input));
  }
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
      env_.trace(id_, fmt::format("propose '{}' refused: {}", request.command, raft::to_string(r.error)));
      reply(request, ClientReply::Status::NotLeader, 0);
      return;
    }
    env_.trace(id_, fmt::format("propose '{}' at {}/t{}", request.command, r.index, r.term));
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
    std::optional<HashStateMachine> sm;
    if (snap.data) sm = HashStateMachine::restore(*snap.data);
    if (!sm || sm->index() != snap.meta.index) {
      contract_violation(fmt::format("snapshot {}/{} carries unreadable data", snap.meta.index, snap.meta.term));
      return;
    }
    if (snap.meta.index < sm_.index()) {
      contract_violation(fmt::format("snapshot at {} is behind the applied index {}", snap.meta.index, sm_.index()));
      return;
    }
    sm_ = *sm;
    ++stats_.snapshots_installed;
    fail_pending_acks_through(snap.meta.index);
    hooks_.restored(*this);
    if (env_.halted()) return;
    add(batch, ReplaceWithSnapshot{snap.meta, snap.data});
  }
  // Step 2: entries and hard state, then fsync.
  if (!rd.entries.empty()) add(batch, AppendEntries{rd.entries});
  if (rd.hard_state) add(batch, SetHardState{*rd.hard_state});
  pending_ = PendingReady{std::move(rd), batch.empty(), 0};
  if (batch.empty()) return;
  bool stopped = false;
  write_or_stop(std::move(batch), stopped);
  if (stopped) return;
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
  // Step 5.
  node_->advance(rd);
  hooks_.stepped(*this);
  if (env_.halted()) return;
  maybe_compact();
}

void Replica::apply_committed(const std::vector<raft::Entry>& committed) {
  for (const raft::Entry& e : committed) {
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
    hooks_.applied(*this, e);
    if (env_.halted()) return;
    auto it = pending_acks_.find(e.index);
    if (it != pending_acks_.end()) {
      const bool ours = e.type == raft::EntryType::Normal && e.term == it->second.term &&
                        e.data == it->second.request.command;
      reply(it->second.request, ours ? ClientReply::Status::Acked : ClientReply::Status::Failed,
            e.index, e.term);
      pending_acks_.erase(it);
    }
  }
  if (!committed.empty()) {
    env_.trace(id_, fmt::format("applied {}..{} count={}", committed.front().index,
                                committed.back().index, sm_.digest().count));
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
    reply(r.request, ClientReply::Status::ReadDone, *r.read_index);
    it = pending_reads_.erase(it);
  }
}

void Replica::maybe_compact() {
  const raft::Index applied = sm_.index();
  if (applied < disk_.written().snapshot.index + params_.snapshot_every_entries) return;
  const std::optional<raft::Term> term = node_->log().term(applied);
  if (!term) return;
  raft::SnapshotMeta meta{applied, *term, node_->conf()};
  auto data = std::make_shared<const std::string>(sm_.snapshot());
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

// ---------------------------------------------------------------------------------------------
// Helpers

void Replica::fail_stop(std::string_view reason) {
  crash(reason);
  hooks_.fail_stopped(*this);
}

void Replica::contract_violation(std::string message) {
  hooks_.violation(Violation{invariant::kReadyContract, fmt::format("n{}: {}", id_, message)});
}

void Replica::reply(const ClientRequest& request, ClientReply::Status status, raft::Index index,
                    raft::Term term) {
  ClientReply r;
  r.client = request.client;
  r.op = request.op;
  r.status = status;
  r.node = id_;
  r.leader_hint = node_ ? node_->leader() : raft::kNoNode;
  r.index = index;
  if (status == ClientReply::Status::Acked) {
    r.term = term;
    r.command = request.command;
  }
  r.issued_at = request.issued_at;
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

}  // namespace coord::sim
