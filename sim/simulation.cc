#include "sim/simulation.h"

#include <cmath>
#include <memory>
#include <utility>

#include <fmt/format.h>

#include "raft/invariants.h"
#include "sim/abort_context.h"
#include "sim/describe.h"
#include "sim/simulation_internal.h"
#include "sim/workload_kv.h"
#include "sim/workload_locks.h"
#include "sim/workload_watch.h"

namespace coord::sim {

const char* to_string(Workload workload) {
  switch (workload) {
    case Workload::Raft: return "raft";
    case Workload::Kv: return "kv";
    case Workload::Watch: return "watch";
    case Workload::Locks: return "locks";
  }
  return "?";
}

std::optional<Workload> parse_workload(std::string_view text) {
  if (text == "raft") return Workload::Raft;
  if (text == "kv") return Workload::Kv;
  if (text == "watch") return Workload::Watch;
  if (text == "locks") return Workload::Locks;
  return std::nullopt;
}

std::optional<std::string> validate(const Options& options) {
  if (options.nodes < kNodesMin || options.nodes > kNodesMax) {
    return fmt::format("nodes must be between {} and {}, not {}", kNodesMin, kNodesMax, options.nodes);
  }
  if (!(options.time_s > 0) || options.time_s > kTimeSecondsMax) {
    return fmt::format("time must be in (0, {}] seconds, not {}", kTimeSecondsMax, options.time_s);
  }
  if (!options.fencing && options.workload != Workload::Locks) {
    return fmt::format("turning fencing off only means something for the locks workload, not {}",
                       to_string(options.workload));
  }
  return std::nullopt;
}

namespace detail {

namespace {

// The cluster's Raft settings vary by seed (the same on every node), so runs cover both
// pre-vote and check-quorum on and off and a range of timer ratios.
raft::Config cluster_config(std::uint64_t seed) {
  Rng rng = Rng::stream(seed, "raft-config");
  raft::Config c;
  c.pre_vote = !rng.one_in(4);
  c.check_quorum = !rng.one_in(4);
  c.election_ticks = static_cast<int>(rng.between(5, 15));
  c.heartbeat_ticks = static_cast<int>(rng.between(1, static_cast<std::uint64_t>(c.election_ticks / 4)));
  // Small limits split appends, snapshots and committed batches into many pieces, so the paths
  // that handle pieces (pipelining windows, chunk resends, partial batches) run too.
  switch (rng.below(3)) {
    case 0: c.append_bytes_max = rng.between(1, 16); break;  // about one entry per Append
    case 1: c.append_bytes_max = rng.between(17, 1024); break;
    default: break;
  }
  if (rng.one_in(2)) c.inflight_msgs_max = rng.between(1, 8);
  if (rng.one_in(2)) c.snapshot_chunk_bytes_max = rng.between(64, 2048);
  if (rng.one_in(2)) c.committed_bytes_max = rng.between(16, 256);
  return c;
}

// The kv workloads' state machine limits, the same on every replica. Watch buffers are small so
// that slow watchers overflow now and then (and the checker sees that it is legitimate).
kv::Limits kv_limits(Workload workload) {
  kv::Limits limits;
  if (workload == Workload::Watch) limits.watch_buffer_events_max = 256;
  return limits;
}

ReplicaParams replica_params(std::uint64_t seed, const raft::Config& config, raft::NodeId id,
                             Workload workload) {
  ReplicaParams p;
  p.host_kv = workload != Workload::Raft;
  p.kv_limits = kv_limits(workload);
  p.raft = config;
  p.tick_us = 10'000;
  p.tick_burst_max = 2 * p.raft.election_ticks;
  // Nodes compact at different paces, so snapshots are cut at different indices.
  Rng rng = Rng::stream(seed, "replica-params", id);
  p.snapshot_every_entries = rng.between(50, 200);
  // Most seeds let the core keep only a few entries' data in memory and read the rest back from
  // the disk (raft::Config::read_entries); a run is the same either way, so this draw comes from
  // a stream of its own and changes no other.
  Rng memory_rng = Rng::stream(seed, "log-memory", id);
  if (!memory_rng.one_in(4)) p.raft.log_memory_bytes_max = memory_rng.between(1, 2048);
  // Half the seeds bound the bytes in flight to a follower to a few entries' worth, so the window
  // fills by bytes as well as by count; a stream of its own, so that the other half run exactly
  // as before the bound existed.
  Rng inflight_rng = Rng::stream(seed, "inflight-bytes");
  if (inflight_rng.one_in(2)) p.raft.inflight_bytes_max = inflight_rng.between(1, 4096);
  return p;
}

}  // namespace

Simulation::Simulation(const Options& options)
    : options_(options),
      timeline_(options.timeline),
      heal_at_(static_cast<Micros>(std::llround(options.time_s * 1e6))),
      config_(cluster_config(options.seed)),
      end_at_(heal_at_ + kQuietUs),
      trace_(options.trace),
      network_(options.nodes, Rng::stream(options.seed, "network")),
      client_link_rng_(Rng::stream(options.seed, "client-link")),
      exec_rng_(Rng::stream(options.seed, "fault-exec")),
      liveness_(kLivenessCommitUsMax),
      observed_(static_cast<std::size_t>(options.nodes)),
      drift_generation_(static_cast<std::size_t>(options.nodes), 0),
      disk_generation_(static_cast<std::size_t>(options.nodes), 0) {
  Rng skew_rng = Rng::stream(options.seed, "clock-skew");
  const std::vector<std::int64_t> skews = plan_clock_skews(options.faults, options.nodes, skew_rng);
  StoredLog bootstrap;
  for (int i = 1; i <= options.nodes; ++i) bootstrap.snapshot.conf.voters.push_back(static_cast<raft::NodeId>(i));
  for (int i = 1; i <= options.nodes; ++i) {
    const auto id = static_cast<raft::NodeId>(i);
    const ReplicaParams params = replica_params(options.seed, config_, id, options.workload);
    replicas_.push_back(std::make_unique<Replica>(id, params, bootstrap, options.seed, *this, *this));
    replicas_.back()->clock() = LocalClock(skews[static_cast<std::size_t>(i - 1)]);
  }
  switch (options.workload) {
    case Workload::Raft:
      workload_ = std::make_unique<RaftWorkload>(options.nodes, WorkloadParams{}, options.seed, *this, *this);
      break;
    case Workload::Kv:
      reference_ = std::make_unique<KvReference>(kv_limits(options.workload));
      workload_ = std::make_unique<KvWorkload>(options.nodes, KvWorkloadParams{}, options.seed, *this, *this,
                                               *reference_);
      break;
    case Workload::Watch: {
      reference_ = std::make_unique<KvReference>(kv_limits(options.workload));
      WatchWorkloadParams params;
      params.watch_buffer_events_max = kv_limits(options.workload).watch_buffer_events_max;
      workload_ = std::make_unique<WatchWorkload>(options.nodes, params, options.seed, *this, *this,
                                                  *reference_, end_at_,
                                                  [this](Violation v) { report(std::move(v)); });
      break;
    }
    case Workload::Locks: {
      reference_ = std::make_unique<KvReference>(kv_limits(options.workload));
      LocksWorkloadParams params;
      params.fencing = options.fencing;
      params.heal_at_us = heal_at_;
      workload_ = std::make_unique<LocksWorkload>(options.nodes, params, options.faults, options.seed, *this, *this,
                                                  [this](Violation v) { report(std::move(v)); });
      break;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The run

Result Simulation::run_events() {
  trace(0, fmt::format("run seed={} nodes={} faults={} workload={}{} time={}s quiet={}s", options_.seed,
                       options_.nodes, options_.faults.describe(), to_string(options_.workload),
                       options_.fencing ? "" : " fencing=off", options_.time_s, kQuietUs / kMicrosPerSecond));
  trace(0, fmt::format("raft config: election_ticks={} heartbeat_ticks={} pre_vote={} check_quorum={} "
                       "append_bytes_max={} inflight_msgs_max={} snapshot_chunk_bytes_max={} "
                       "committed_bytes_max={}",
                       config_.election_ticks, config_.heartbeat_ticks, config_.pre_vote, config_.check_quorum,
                       config_.append_bytes_max, config_.inflight_msgs_max, config_.snapshot_chunk_bytes_max,
                       config_.committed_bytes_max));
  for (auto& r : replicas_) r->start();
  if (timeline_) {
    timeline_->start(TimelineRun{options_.seed, options_.nodes, to_string(options_.workload),
                                 options_.faults.describe(), options_.fencing, heal_at_, end_at_});
    if (auto* locks = dynamic_cast<LocksWorkload*>(workload_.get())) locks->set_timeline(timeline_);
    observe_lanes();
  }
  workload_->start(end_at_ > kClientDrainUs ? end_at_ - kClientDrainUs : 0);

  Rng plan_rng = Rng::stream(options_.seed, "faults");
  for (const PlannedFault& p : plan_faults(options_.faults, options_.nodes, heal_at_, plan_rng)) {
    schedule(p.at, [this, fault = p.fault] {
      if (!healed_) inject(fault);
    });
  }
  if (options_.faults.crash) {
    // Contested elections are rare and short: a trap standing through the faulty period is the
    // only way to meet enough of them.
    CrashTrapFault contested{CrashTrapFault::Trigger::VoteContested, raft::kNoNode, false,
                             exec_rng_.between(10, kInstantRestartUsMax), heal_at_};
    traps_.push_back(ArmedTrap{contested, heal_at_, true});
  }
  schedule(heal_at_, [this] { heal_all(); });
  schedule(heal_at_ + kLivenessCommitUsMax, [this] { report(liveness_.check_progress(now_)); });
  schedule(kLogCheckIntervalUs, [this] { check_logs(); });

  while (!queue_.empty() && !violation_) {
    if (queue_.next_time() > end_at_) break;
    Micros at = 0;
    EventQueue::Action action = queue_.pop(at);
    now_ = at;
    action();
    if (timeline_) observe_lanes();
    if (++stats_.events > kEventsPerRunMax || queue_.size() > kQueuedEventsMax) {
      report(Violation{invariant::kSimulatorLimit,
                       fmt::format("runaway: {} events run, {} queued (limits {} and {})", stats_.events,
                                   queue_.size(), kEventsPerRunMax, kQueuedEventsMax)});
    }
  }
  if (!violation_) {
    now_ = end_at_;
    final_checks();
  }

  if (timeline_) timeline_->finish(now_);

  Result result;
  result.seed = options_.seed;
  const WorkloadStats& ws = workload_->stats();
  stats_.proposals = ws.proposals;
  stats_.acked = ws.acked;
  stats_.reads = ws.reads_done;
  stats_.transfers = ws.transfers;
  for (const auto& r : replicas_) {
    stats_.crashes += r->stats().crashes;
    stats_.compactions += r->stats().compactions;
    stats_.snapshots_installed += r->stats().snapshots_installed;
    stats_.early_messages += r->stats().early_messages;
  }
  stats_.virtual_us = now_;
  if (violation_) {
    result.passed = false;
    result.invariant = violation_->invariant;
    result.message = violation_->message;
    result.recent_events = std::move(recent_at_violation_);
  } else {
    trace(0, fmt::format("passed: leaders={} acked={} applied={} faults={}", stats_.leaders_elected,
                         stats_.acked, stats_.applied_max, stats_.faults_injected));
  }
  stats_.trace_lines = trace_.lines();
  result.stats = stats_;
  return result;
}

void Simulation::report(const Verdict& verdict) {
  if (verdict) report(*verdict);
}

void Simulation::report(Violation v) {
  if (violation_) return;
  trace(0, fmt::format("VIOLATION invariant={} {}", v.invariant, v.message));
  recent_at_violation_ = trace_.recent();
  if (timeline_) timeline_->violation(now_, v.invariant, v.message);
  violation_ = std::move(v);
}

void Simulation::check_logs() {
  std::vector<LogView> views;
  for (const auto& r : replicas_) {
    if (r->node()) views.push_back(view_of(*r->node()));
  }
  report(check_log_matching(views));
  if (now_ + kLogCheckIntervalUs <= end_at_) schedule(now_ + kLogCheckIntervalUs, [this] { check_logs(); });
}

void Simulation::final_checks() {
  trace(0, "final checks");
  check_logs();
  if (violation_) return;
  std::vector<ReplicaSummary> summaries;
  std::vector<std::pair<raft::NodeId, raft::Index>> applied;
  for (const auto& r : replicas_) {
    ReplicaSummary s;
    s.node = r->id();
    s.up = r->up();
    if (r->node()) s.commit = r->node()->commit();
    s.applied = r->state().index();
    s.state = r->state().digest();
    summaries.push_back(s);
    applied.emplace_back(r->id(), s.applied);
  }
  report(Liveness::check_converged(summaries));
  report(acked_.check_final(applied));
  report(liveness_.check_progress(now_));
  if (violation_) return;
  if (reference_) check_kv_states();
  if (violation_) return;
  report(workload_->final_check());
}

// Every replica's application state, byte for byte, is the reference's (they have converged on
// the same applied index by now).
void Simulation::check_kv_states() {
  trace(0, fmt::format("ephemeral-cleanup: {} lease ends checked, {} keys gone with them",
                       reference_->lease_ends_checked(), reference_->lease_keys_checked()));
  const std::string expected = reference_->state().snapshot();
  for (const auto& r : replicas_) {
    const kv::StateMachine* kv = r->kv();
    if (!kv || kv->applied_index() != reference_->applied_index()) continue;
    if (kv->snapshot() != expected) {
      report(Violation{invariant::kStateMachineSafety,
                       fmt::format("n{}'s kv state at index {} (revision {}) differs from the reference's "
                                   "(revision {})",
                                   r->id(), kv->applied_index(), kv->revision(), reference_->revision())});
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Replica hooks

void Simulation::send(raft::Message m) {
  ++stats_.messages_sent;
  const auto n = static_cast<raft::NodeId>(options_.nodes);
  if (m.to == raft::kNoNode || m.to > n || m.to == m.from) {
    ++stats_.messages_dropped;
    report(Violation{invariant::kReadyContract, fmt::format("n{} sent a message to n{}: {}", m.from, m.to, describe(m))});
    return;
  }
  if (!traps_.empty() && !m.reject) {
    if (m.type == raft::MessageType::VoteResp) {
      spring_traps(CrashTrapFault::Trigger::VoteGranted, m.from);
      if (contested(m.term, m.from, m.to)) spring_traps(CrashTrapFault::Trigger::VoteContested, m.from);
    }
    if (m.type == raft::MessageType::AppendResp) spring_traps(CrashTrapFault::Trigger::AppendAcked, m.from);
  }
  const Route route = network_.route(m.from, m.to);
  if (route.outcome != Route::Outcome::Delivered) {
    ++stats_.messages_dropped;
    trace(m.from, fmt::format("send {} {}", describe(m), to_string(route.outcome)));
    return;
  }
  trace(m.from, fmt::format("send {} +{}us{}", describe(m), route.delay_us[0],
                            route.copies > 1 ? fmt::format(" dup +{}us", route.delay_us[1]) : ""));
  auto shared = std::make_shared<const raft::Message>(std::move(m));
  for (int i = 0; i < route.copies; ++i) {
    schedule(now_ + route.delay_us[i], [this, shared] {
      const raft::Message& msg = *shared;
      network_.arrived(msg.from, msg.to);
      if (network_.blocked(msg.from, msg.to)) {
        ++stats_.messages_dropped;
        trace(msg.to, fmt::format("recv {} cut in flight", describe(msg)));
        return;
      }
      Replica& to = replica(msg.to);
      if (!to.alive()) {
        ++stats_.messages_dropped;
        return;
      }
      to.deliver(msg);
    });
  }
}

void Simulation::submit(raft::NodeId to, ClientRequest request) {
  if (to == raft::kNoNode || to > static_cast<raft::NodeId>(options_.nodes)) return;
  if (timeline_) timeline_->client_sent(now_, request.client, request.op, to, describe(request));
  const Micros delay = client_link_rng_.between(kClientLinkUsMin, kClientLinkUsMax);
  schedule(now_ + delay, [this, to, request = std::move(request)]() mutable {
    replica(to).request(std::move(request));
  });
}

void Simulation::reply(const ClientReply& r) {
  if (r.status == ClientReply::Status::Acked) {
    const raft::Entry entry{r.term, r.index, raft::EntryType::Normal, r.command};
    report(acked_.observe_ack(r.node, r.index, digest_of(entry), r.command));
    liveness_.observe_ack(r.issued_at, now_);
    trace(r.node, fmt::format("ack '{}' at {} to client {}", r.label.empty() ? r.command : r.label, r.index,
                              r.client));
    if (!traps_.empty()) spring_traps(CrashTrapFault::Trigger::ClientAcked, r.node);
  } else if (r.status == ClientReply::Status::Failed) {
    trace(r.node, fmt::format("client {} op {} failed at {}", r.client, r.op, r.index));
  }
  if (timeline_ && r.status != ClientReply::Status::NotLeader) {
    timeline_->client_answered(now_, r.client, r.op, fmt::format("{} by n{}", to_string(r.status), r.node));
  }
  const Micros delay = client_link_rng_.between(kClientLinkUsMin, kClientLinkUsMax);
  schedule(now_ + delay, [this, r] { workload_->on_reply(r); });
}

void Simulation::stepped(const Replica& replica) {
  const raft::Node& node = *replica.node();
  const raft::NodeId id = replica.id();
  report(check_core(id, raft::check_invariants(node)));
  Observed& o = observed_[static_cast<std::size_t>(id - 1)];
  if (o.incarnation != replica.incarnation() || o.role != node.role() || o.term != node.term()) {
    if (o.incarnation == replica.incarnation() || node.role() != raft::Role::Follower) {
      trace(id, fmt::format("{} term={} leader={}", raft::to_string(node.role()), node.term(), node.leader()));
    }
    o = Observed{replica.incarnation(), node.role(), node.term()};
    if (node.role() == raft::Role::Leader) {
      ++stats_.leaders_elected;
      report(election_.observe_leader(id, node.term()));
      report(completeness_.observe_new_leader(view_of(node), node.term()));
    }
  }
  report(commit_.observe_commit(id, replica.incarnation(), node.commit()));
  report(commit_term_.observe(id, replica.incarnation(), node.role(), node.term(), node.commit(),
                              node.log().term(node.commit())));
}

void Simulation::applied(const Replica& replica, const raft::Entry& entry) {
  const raft::NodeId id = replica.id();
  const EntryDigest d = digest_of(entry);
  report(state_machine_.observe_applied(id, entry.index, d));
  report(acked_.observe_applied(id, entry.index, d));
  report(state_machine_.observe_state(id, replica.state().digest()));
  completeness_.observe_committed(entry.index, d, replica.node()->term());
  if (reference_) report(reference_->observe(entry, now_));
  if (entry.index > stats_.applied_max) stats_.applied_max = entry.index;
}

void Simulation::restored(const Replica& replica) {
  trace(replica.id(), fmt::format("state restored from snapshot at {}", replica.state().index()));
  report(state_machine_.observe_state(replica.id(), replica.state().digest()));
}

void Simulation::read_served(const Replica& replica, std::uint64_t request_id, raft::Index read_index,
                             raft::Index acked_max_at_request) {
  report(check_read(replica.id(), request_id, read_index, acked_max_at_request));
}

void Simulation::fail_stopped(const Replica& replica) {
  // A failing disk keeps the node down until the failure ends (see DiskFailFault).
  if (!replica.disk().failing()) restart_later(replica.id(), exec_rng_.between(kRestartUsMin, kRestartUsMax));
}

Result Simulation::run() {
  // If the core aborts mid-run, the SIGABRT handler reports this seed and these events.
  AbortContext& abort = abort_context();
  abort.active = true;
  abort.seed = options_.seed;
  abort.trace = &trace_;
  Result result = run_events();
  abort.active = false;
  abort.trace = nullptr;
  return result;
}

}  // namespace detail

Result run(const Options& options) {
  Result result;
  result.seed = options.seed;
  if (auto problem = validate(options)) {
    result.passed = false;
    result.invariant = "invalid-options";
    result.message = *problem;
    return result;
  }
  detail::Simulation sim(options);
  return sim.run();
}

}  // namespace coord::sim
