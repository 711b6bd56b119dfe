#include "sim/kv_client.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "kv/codec.h"

namespace coord::sim {

namespace {

const char* op_name(kv::OpType type) {
  switch (type) {
    case kv::OpType::Get: return "get";
    case kv::OpType::Put: return "put";
    case kv::OpType::Create: return "create";
    case kv::OpType::Delete: return "del";
  }
  return "?";
}

std::string describe_op(const kv::Op& op) {
  std::string out = fmt::format("{} {}", op_name(op.type), op.path);
  if (op.type == kv::OpType::Put || op.type == kv::OpType::Create) out += "=" + op.value;
  if (op.lease != 0) out += fmt::format(" lease={}", op.lease);
  if (op.recursive) out += " -r";
  return out;
}

std::string describe_compare(const kv::Compare& c) {
  const char* ops[] = {"==", "!=", "<", ">"};
  const char* op = ops[static_cast<int>(c.op) & 3];
  switch (c.target) {
    case kv::CompareTarget::Exists: return fmt::format("{} exists{}{}", c.path, op, c.number);
    case kv::CompareTarget::Version: return fmt::format("{} version{}{}", c.path, op, c.number);
    case kv::CompareTarget::CreateRevision: return fmt::format("{} create{}{}", c.path, op, c.number);
    case kv::CompareTarget::ModRevision: return fmt::format("{} mod{}{}", c.path, op, c.number);
    case kv::CompareTarget::Value: return fmt::format("{} value{}{}", c.path, op, c.value);
  }
  return "?";
}

std::string describe_ops(const std::vector<kv::Op>& ops) {
  std::string out;
  for (const kv::Op& op : ops) {
    if (!out.empty()) out += "; ";
    out += describe_op(op);
  }
  return out;
}

std::string describe_result(const kv::Result& r) {
  if (!r.ok()) return fmt::format("{} at revision {}", kv::to_string(r.status.error), r.revision);
  return fmt::format("ok{} at revision {}", r.succeeded ? "" : " (else branch)", r.revision);
}

}  // namespace

std::string describe(const kv::Body& body) {
  if (const auto* txn = std::get_if<kv::Txn>(&body)) {
    if (txn->compares.empty() && txn->failure.empty() && txn->success.size() == 1) {
      return describe_op(txn->success[0]);
    }
    std::string out = "txn[";
    for (std::size_t i = 0; i < txn->compares.size(); ++i) {
      out += (i ? ", " : "") + describe_compare(txn->compares[i]);
    }
    out += " ? " + describe_ops(txn->success) + " : " + describe_ops(txn->failure) + "]";
    return out;
  }
  if (const auto* c = std::get_if<kv::Compact>(&body)) return fmt::format("compact {}", c->revision);
  if (const auto* g = std::get_if<kv::LeaseGrant>(&body)) {
    return fmt::format("lease-grant {} ttl={}ms", g->id, g->ttl_ms);
  }
  if (const auto* r = std::get_if<kv::LeaseRevoke>(&body)) return fmt::format("lease-revoke {}", r->id);
  if (const auto* k = std::get_if<kv::LeaseKeepAlive>(&body)) return fmt::format("lease-keepalive {}", k->id);
  const auto& e = std::get<kv::LeaseExpire>(body);
  return fmt::format("lease-expire {} keepalives={}", e.id, e.keepalives);
}

SimKvClient::SimKvClient(std::uint64_t id, kv::SessionId session, int nodes, const SimKvClientParams& params,
                         Rng rng, Env& env, ClientTransport& transport)
    : id_(id),
      session_(session),
      nodes_(nodes),
      params_(params),
      rng_(rng),
      env_(env),
      transport_(transport) {
  write_target_ = 1 + rng_.below(static_cast<std::uint64_t>(nodes_));
  read_target_ = 1 + rng_.below(static_cast<std::uint64_t>(nodes_));
}

// ---------------------------------------------------------------------------------------------
// Requests

std::uint64_t SimKvClient::send(raft::NodeId to, ClientRequest request, Attempt attempt, Micros timeout_us) {
  const std::uint64_t op = next_op_++;
  request.client = id_;
  request.op = op;
  request.issued_at = env_.now();
  attempts_[op] = attempt;
  transport_.submit(to, std::move(request));
  env_.schedule(env_.now() + std::max<Micros>(timeout_us, 1), [this, op] { timed_out(op); });
  return op;
}

void SimKvClient::on_reply(const ClientReply& reply) {
  auto it = attempts_.find(reply.op);
  if (it == attempts_.end()) return;  // late: that attempt timed out
  const Attempt attempt = it->second;
  attempts_.erase(it);
  switch (attempt.what) {
    case Attempt::For::Write:
      if (!writes_.empty() && writes_.front().sequence == attempt.key && reply.op == write_op_) {
        on_write_reply(reply);
      }
      return;
    case Attempt::For::Read: on_read_reply(attempt.key, reply); return;
    case Attempt::For::WatchOpen:
    case Attempt::For::WatchPoll: on_watch_reply(attempt, reply); return;
  }
}

void SimKvClient::timed_out(std::uint64_t op) {
  auto it = attempts_.find(op);
  if (it == attempts_.end()) return;
  const Attempt attempt = it->second;
  attempts_.erase(it);
  ++stats_.timeouts;
  switch (attempt.what) {
    case Attempt::For::Write:
      if (writes_.empty() || writes_.front().sequence != attempt.key || op != write_op_) return;
      env_.trace(
          0, fmt::format("client {} write s{}#{} silent at n{}", id_, session_, attempt.key, write_target_));
      write_target_ = other_node(write_target_);
      write_op_ = 0;
      send_write();
      return;
    case Attempt::For::Read: {
      auto r = reads_.find(attempt.key);
      if (r == reads_.end() || r->second.op != op) return;
      read_target_ = other_node(read_target_);
      r->second.op = 0;
      send_read(attempt.key);
      return;
    }
    case Attempt::For::WatchOpen:
    case Attempt::For::WatchPoll: {
      auto w = watches_.find(attempt.key);
      if (w == watches_.end() || w->second.view.ended || w->second.op != op) return;
      w->second.op = 0;
      watch_move(attempt.key, "silent");
      return;
    }
  }
}

raft::NodeId SimKvClient::other_node(raft::NodeId avoid) {
  if (nodes_ <= 1) return 1;
  raft::NodeId pick = 1 + rng_.below(static_cast<std::uint64_t>(nodes_ - 1));
  if (pick >= avoid) ++pick;
  return pick;
}

raft::NodeId SimKvClient::redirect(const ClientReply& reply) {
  ++stats_.redirects;
  const auto n = static_cast<raft::NodeId>(nodes_);
  if (reply.leader_hint != raft::kNoNode && reply.leader_hint != reply.node && reply.leader_hint <= n) {
    return reply.leader_hint;
  }
  return other_node(reply.node);
}

Micros SimKvClient::backoff() { return rng_.between(1, std::max<Micros>(params_.retry_backoff_us_max, 1)); }

// ---------------------------------------------------------------------------------------------
// Writes

void SimKvClient::write(kv::Body body, std::function<void(const fencing::WriteOutcome&)> done) {
  Write w;
  w.sequence = ++sequence_;
  w.label = fmt::format("s{}#{} {}", session_, w.sequence, describe(body));
  w.command = kv::encode_command(kv::Command{session_, w.sequence, std::move(body)});
  w.done = std::move(done);
  w.give_up_at = env_.now() + params_.write_give_up_us;
  ++stats_.writes;
  writes_.push_back(std::move(w));
  if (writes_.size() == 1) start_write();
}

void SimKvClient::start_write() { send_write(); }

void SimKvClient::send_write() {
  Write& w = writes_.front();
  // The first attempt always goes out, so a give-up never answers inside write() itself.
  if (w.attempts > 0 && env_.now() >= w.give_up_at) {
    env_.trace(0, fmt::format("client {} gives up on '{}' after {} attempts: outcome unknown", id_, w.label,
                              w.attempts));
    finish_write(fencing::WriteOutcome{std::nullopt, fmt::format("no answer after {} attempts", w.attempts)});
    return;
  }
  ++w.attempts;
  ++stats_.write_attempts;
  ClientRequest r;
  r.kind = ClientRequest::Kind::Propose;
  r.command = w.command;
  r.label = w.label;
  env_.trace(
      0, fmt::format("client {} write '{}' -> n{} (attempt {})", id_, w.label, write_target_, w.attempts));
  const Micros left = w.give_up_at > env_.now() ? w.give_up_at - env_.now() : 1;
  write_op_ = send(write_target_, std::move(r), Attempt{Attempt::For::Write, w.sequence},
                   std::min(params_.attempt_timeout_us, left));
}

void SimKvClient::on_write_reply(const ClientReply& reply) {
  write_op_ = 0;
  const std::uint64_t sequence = writes_.front().sequence;
  auto retry = [this, sequence] {
    env_.schedule(env_.now() + backoff(), [this, sequence] {
      if (!writes_.empty() && writes_.front().sequence == sequence && write_op_ == 0) send_write();
    });
  };
  switch (reply.status) {
    case ClientReply::Status::Acked:
      if (reply.kv_result) {
        env_.trace(0, fmt::format("client {} '{}': {}", id_, writes_.front().label,
                                  describe_result(*reply.kv_result)));
        finish_write(fencing::WriteOutcome{*reply.kv_result, {}});
        return;
      }
      finish_write(fencing::WriteOutcome{std::nullopt, "acknowledged without a result"});
      return;
    case ClientReply::Status::NotLeader:
      write_target_ = redirect(reply);
      retry();
      return;
    case ClientReply::Status::Failed:
      // The entry lost its slot to another leader's: the same session and sequence are safe to
      // send again, and the state machine applies them at most once.
      if (reply.leader_hint != raft::kNoNode && reply.leader_hint <= static_cast<raft::NodeId>(nodes_)) {
        write_target_ = reply.leader_hint;
      }
      retry();
      return;
    case ClientReply::Status::ReadDone:
    case ClientReply::Status::Started:
    case ClientReply::Status::Watch: retry(); return;
  }
}

void SimKvClient::finish_write(fencing::WriteOutcome outcome) {
  Write w = std::move(writes_.front());
  writes_.pop_front();
  write_op_ = 0;
  if (outcome.result) {
    ++stats_.writes_answered;
  } else {
    ++stats_.writes_unknown;
  }
  if (!writes_.empty()) start_write();
  if (w.done) w.done(outcome);
}

// ---------------------------------------------------------------------------------------------
// Reads

void SimKvClient::get(std::string path, std::function<void(const fencing::ReadOutcome<kv::Node>&)> done) {
  const std::uint64_t id = next_read_++;
  Read r;
  r.what = KvRead{KvRead::What::Get, std::move(path), {}};
  r.done_get = std::move(done);
  r.give_up_at = env_.now() + params_.read_give_up_us;
  reads_.emplace(id, std::move(r));
  ++stats_.reads;
  send_read(id);
}

void SimKvClient::list(std::string path, kv::ListOptions options,
                       std::function<void(const fencing::ReadOutcome<kv::ListPage>&)> done) {
  const std::uint64_t id = next_read_++;
  Read r;
  r.what = KvRead{KvRead::What::List, std::move(path), std::move(options)};
  r.done_list = std::move(done);
  r.give_up_at = env_.now() + params_.read_give_up_us;
  reads_.emplace(id, std::move(r));
  ++stats_.reads;
  send_read(id);
}

void SimKvClient::send_read(std::uint64_t id) {
  Read& r = reads_.at(id);
  if (r.attempts > 0 && env_.now() >= r.give_up_at) {
    finish_read(id, nullptr);
    return;
  }
  ++r.attempts;
  ClientRequest q;
  q.kind = ClientRequest::Kind::Read;
  q.kv_read = r.what;
  const Micros left = r.give_up_at > env_.now() ? r.give_up_at - env_.now() : 1;
  r.op = send(read_target_, std::move(q), Attempt{Attempt::For::Read, id},
              std::min(params_.attempt_timeout_us, left));
}

void SimKvClient::on_read_reply(std::uint64_t id, const ClientReply& reply) {
  auto it = reads_.find(id);
  if (it == reads_.end() || it->second.op != reply.op) return;
  it->second.op = 0;
  if (reply.status == ClientReply::Status::ReadDone && (reply.kv_node || reply.kv_list)) {
    finish_read(id, &reply);
    return;
  }
  read_target_ = redirect(reply);
  env_.schedule(env_.now() + backoff(), [this, id] {
    auto r = reads_.find(id);
    if (r != reads_.end() && r->second.op == 0) send_read(id);
  });
}

void SimKvClient::finish_read(std::uint64_t id, const ClientReply* reply) {
  auto it = reads_.find(id);
  Read r = std::move(it->second);
  reads_.erase(it);
  if (reply) {
    ++stats_.reads_answered;
  } else {
    ++stats_.reads_unreached;
  }
  if (r.what.what == KvRead::What::Get) {
    fencing::ReadOutcome<kv::Node> out;
    if (reply && reply->kv_node) {
      out.reached = true;
      out.read = *reply->kv_node;
    }
    if (r.done_get) r.done_get(out);
  } else {
    fencing::ReadOutcome<kv::ListPage> out;
    if (reply && reply->kv_list) {
      out.reached = true;
      out.read = *reply->kv_list;
    }
    if (r.done_list) r.done_list(out);
  }
}

// ---------------------------------------------------------------------------------------------
// Watches

fencing::WatchHandle SimKvClient::watch(kv::WatchRequest request, fencing::WatchCallbacks callbacks) {
  const fencing::WatchHandle handle = next_watch_++;
  Watch w;
  w.view.request = std::move(request);
  if (w.view.request.start_revision > 0) {
    w.view.start = w.view.request.start_revision;
    w.view.progress = w.view.request.start_revision - 1;
  }
  w.callbacks = std::move(callbacks);
  w.node = read_target_;
  watches_.emplace(handle, std::move(w));
  ++stats_.watches;
  watch_open(handle);
  return handle;
}

const SimKvClient::WatchView* SimKvClient::watch_view(fencing::WatchHandle handle) const {
  auto it = watches_.find(handle);
  return it == watches_.end() ? nullptr : &it->second.view;
}

void SimKvClient::watch_open(fencing::WatchHandle handle) {
  Watch& w = watches_.at(handle);
  WatchCall call;
  call.what = WatchCall::What::Open;
  call.request = w.view.request;
  // Once a node resolved the start, every later open resumes right after what was delivered.
  if (w.view.start) call.request.start_revision = w.view.progress + 1;
#ifdef COORD_SIM_BUG_WATCH_RESUME_REPEATS
  // Deliberately broken (test builds only): resumes at the last revision delivered, not after it.
  if (w.view.start && w.view.moves > 0 && w.view.progress > 0) call.request.start_revision = w.view.progress;
#endif
  ClientRequest q;
  q.kind = ClientRequest::Kind::Watch;
  q.watch = std::move(call);
  env_.trace(0, fmt::format("client {} watch {} open on n{} from {}", id_, handle, w.node,
                            q.watch->request.start_revision));
  w.op = send(w.node, std::move(q), Attempt{Attempt::For::WatchOpen, handle}, params_.watch_poll_timeout_us);
}

void SimKvClient::watch_poll(fencing::WatchHandle handle) {
  Watch& w = watches_.at(handle);
  WatchCall call;
  call.what = WatchCall::What::Poll;
  call.incarnation = w.incarnation;
  call.id = w.id;
  call.events_max = params_.watch_events_per_poll;
  ClientRequest q;
  q.kind = ClientRequest::Kind::Watch;
  q.watch = std::move(call);
  w.op = send(w.node, std::move(q), Attempt{Attempt::For::WatchPoll, handle}, params_.watch_poll_timeout_us);
}

void SimKvClient::watch_close_remote(Watch& w) {
  if (!w.open) return;
  w.open = false;
  WatchCall call;
  call.what = WatchCall::What::Close;
  call.incarnation = w.incarnation;
  call.id = w.id;
  ClientRequest q;
  q.kind = ClientRequest::Kind::Watch;
  q.watch = std::move(call);
  q.client = id_;
  q.op = next_op_++;  // no answer expected
  q.issued_at = env_.now();
  transport_.submit(w.node, std::move(q));
}

void SimKvClient::watch_move(fencing::WatchHandle handle, const char* why) {
  Watch& w = watches_.at(handle);
  watch_close_remote(w);
  w.op = 0;
  w.leaderless = 0;
  const raft::NodeId from = w.node;
  w.node = other_node(from);
  ++w.view.moves;
  ++stats_.watch_moves;
  const std::uint64_t generation = ++w.generation;
  env_.trace(0, fmt::format("client {} watch {} moves from n{} to n{} ({}), resuming at {}", id_, handle,
                            from, w.node, why, w.view.start ? w.view.progress + 1 : 0));
  env_.schedule(env_.now() + backoff(), [this, handle, generation] {
    auto it = watches_.find(handle);
    if (it == watches_.end() || it->second.view.ended || it->second.generation != generation) return;
    watch_open(handle);
  });
}

void SimKvClient::watch_end(fencing::WatchHandle handle, kv::Status why) {
  Watch& w = watches_.at(handle);
  w.view.ended = true;
  w.view.end_status = why;
  w.op = 0;
  ++w.generation;
  env_.trace(
      0, fmt::format("client {} watch {} ends: {} {}", id_, handle, kv::to_string(why.error), why.message));
  if (w.callbacks.on_end) {
    // Copied out: the callback may open other watches, which may move the map's nodes around.
    auto on_end = w.callbacks.on_end;
    on_end(why);
  }
}

void SimKvClient::cancel_watch(fencing::WatchHandle handle) {
  auto it = watches_.find(handle);
  if (it == watches_.end() || it->second.view.ended) return;
  Watch& w = it->second;
  watch_close_remote(w);
  w.view.ended = true;
  w.op = 0;
  ++w.generation;
  env_.trace(0, fmt::format("client {} watch {} cancelled at progress {}", id_, handle, w.view.progress));
  // on_end runs later, never inside this call.
  env_.schedule(env_.now(), [this, handle] {
    auto found = watches_.find(handle);
    if (found == watches_.end() || !found->second.callbacks.on_end) return;
    auto on_end = found->second.callbacks.on_end;
    on_end(kv::Status{});
  });
}

void SimKvClient::on_watch_reply(const Attempt& attempt, const ClientReply& reply) {
  const fencing::WatchHandle handle = attempt.key;
  auto it = watches_.find(handle);
  if (it == watches_.end() || it->second.view.ended || it->second.op != reply.op) return;
  Watch& w = it->second;
  w.op = 0;
  if (reply.status != ClientReply::Status::Watch || !reply.watch) {
    watch_move(handle, "unexpected answer");
    return;
  }
  const WatchAnswer& a = *reply.watch;
  if (attempt.what == Attempt::For::WatchOpen) {
    if (a.ended) {
      const kv::Error e = a.status.error;
      if (e == kv::Error::Compacted || e == kv::Error::InvalidPath || e == kv::Error::InvalidRequest) {
        watch_end(handle, a.status);
        return;
      }
      watch_move(handle, kv::to_string(e));
      return;
    }
    w.open = true;
    w.incarnation = a.incarnation;
    w.id = a.id;
    if (!w.view.start) {
      w.view.start = a.start_revision;
      w.view.progress = a.start_revision - 1;
    }
    watch_poll(handle);
    return;
  }
  if (a.ended) {
    w.open = false;  // the node no longer has it
    const kv::Error e = a.status.error;
    if (e == kv::Error::Compacted || e == kv::Error::WatchOverflow) {
      watch_end(handle, a.status);
      return;
    }
    watch_move(handle, kv::to_string(e));
    return;
  }
  if (!a.events.empty()) w.view.progress = std::max(w.view.progress, a.events.back().revision);
  w.view.progress = std::max(w.view.progress, a.progress_revision);
  w.leaderless = reply.leader_hint == raft::kNoNode ? w.leaderless + 1 : 0;
  const int leaderless = w.leaderless;
  const std::uint64_t generation = w.generation;
  if (!a.events.empty()) {
    stats_.watch_events += a.events.size();
    env_.trace(0, fmt::format("client {} watch {}: {} events {}..{} from n{}", id_, handle, a.events.size(),
                              a.events.front().revision, a.events.back().revision, reply.node));
    if (w.callbacks.on_events) {
      auto on_events = w.callbacks.on_events;  // the callback may reshape watches_
      on_events(a.events);
    }
  }
  it = watches_.find(handle);
  if (it == watches_.end() || it->second.view.ended || it->second.generation != generation) return;
  if (leaderless >= params_.watch_leaderless_polls_max) {
    watch_move(handle, "the node knows no leader");
    return;
  }
  if (rng_.chance_ppm(params_.watch_move_ppm)) {
    watch_move(handle, "reconnect");
    return;
  }
  const Micros delay =
      params_.watch_poll_delay_us_max > 0 ? rng_.between(0, params_.watch_poll_delay_us_max) : 0;
  if (delay == 0) {
    watch_poll(handle);
    return;
  }
  env_.schedule(env_.now() + delay, [this, handle, generation] {
    auto found = watches_.find(handle);
    if (found == watches_.end() || found->second.view.ended || found->second.generation != generation ||
        !found->second.open || found->second.op != 0) {
      return;
    }
    watch_poll(handle);
  });
}

// ---------------------------------------------------------------------------------------------
// Time

fencing::Millis SimKvClient::now_ms() const {
  if (clock_) return clock_->local(env_.now()) / static_cast<std::int64_t>(kMicrosPerMilli);
  return static_cast<fencing::Millis>(env_.now() / kMicrosPerMilli);
}

void SimKvClient::after(fencing::Millis delay_ms, std::function<void()> action) {
  const Micros delay = delay_ms > 0 ? static_cast<Micros>(delay_ms) * kMicrosPerMilli : 0;
  if (clock_) {
    // The timer is set on the process's clock: a slow clock makes it fire late in real time.
    const std::int64_t target = clock_->local(env_.now()) + static_cast<std::int64_t>(delay);
    env_.schedule(clock_->when(target, env_.now()), std::move(action));
    return;
  }
  env_.schedule(env_.now() + delay, std::move(action));
}

}  // namespace coord::sim
