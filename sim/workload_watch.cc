#include "sim/workload_watch.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

namespace coord::sim {

namespace {

const char* const kLeaves[] = {"/w/a/x", "/w/a/y", "/w/a/z", "/w/b/p", "/w/b/q/r", "/w/b/q/s", "/w/c"};
constexpr std::size_t kLeafCount = sizeof(kLeaves) / sizeof(kLeaves[0]);

struct FilterChoice {
  kv::WatchKind kind;
  const char* path;
};
const FilterChoice kFilters[] = {
    {kv::WatchKind::Key, "/w/a/x"},    {kv::WatchKind::Key, "/w/b/q/r"},  {kv::WatchKind::Subtree, "/w"},
    {kv::WatchKind::Subtree, "/w/a"},  {kv::WatchKind::Subtree, "/w/b"},  {kv::WatchKind::Subtree, "/"},
    {kv::WatchKind::Children, "/w/a"}, {kv::WatchKind::Children, "/w/e"}, {kv::WatchKind::Subtree, "/w/e"},
    {kv::WatchKind::Children, "/w"},   {kv::WatchKind::Key, "/w/c"},
};
constexpr std::size_t kFilterCount = sizeof(kFilters) / sizeof(kFilters[0]);

const char* kind_name(kv::WatchKind kind) {
  switch (kind) {
    case kv::WatchKind::Key: return "key";
    case kv::WatchKind::Subtree: return "subtree";
    case kv::WatchKind::Children: return "children";
  }
  return "?";
}

std::string show(const kv::Event& e) {
  std::string out = fmt::format("{} {} @{}", kv::to_string(e.type), e.path, e.revision);
  if (e.node) {
    out += fmt::format(" value={} version={} mod={}", e.node->value, e.node->version, e.node->mod_revision);
  }
  if (e.prev) out += fmt::format(" prev={}/v{}", e.prev->value, e.prev->version);
  return out;
}

kv::Op put(std::string path, std::string value, kv::LeaseId lease = 0) {
  kv::Op op = kv::Op::put(std::move(path), std::move(value), lease);
  op.parents = true;
  return op;
}

}  // namespace

WatchWorkload::WatchWorkload(int nodes, const WatchWorkloadParams& params, std::uint64_t root_seed, Env& env,
                             ClientTransport& transport, const KvReference& reference, Micros end_at,
                             std::function<void(Violation)> report)
    : params_(params), env_(env), reference_(reference), end_at_(end_at), report_(std::move(report)) {
  std::uint64_t next_id = 1;
  auto make = [&](const SimKvClientParams& p) {
    const std::uint64_t id = next_id++;
    Actor a{std::make_unique<SimKvClient>(id, id, nodes, p, Rng::stream(root_seed, "watch-client", id), env,
                                          transport),
            Rng::stream(root_seed, "watch-actor", id)};
    by_id_.push_back(a.kv.get());
    return a;
  };
  for (int i = 0; i < params_.writers; ++i) writers_.push_back(make(params_.client));
  for (int i = 0; i < params_.watchers; ++i) {
    SimKvClientParams p = params_.client;
    if (i == params_.watchers - 1) p.watch_poll_delay_us_max = params_.slow_poll_delay_us_max;
    watchers_.push_back(make(p));
  }
  leaser_ = std::make_unique<Actor>(make(params_.client));
  compactor_ = std::make_unique<Actor>(make(params_.client));
}

void WatchWorkload::start(Micros stop_at) {
  stop_at_ = stop_at;
  for (std::size_t i = 0; i < writers_.size(); ++i) {
    env_.schedule(env_.now() + writers_[i].rng.between(0, params_.think_us_max),
                  [this, i] { write_step(i); });
  }
  for (std::size_t i = 0; i < watchers_.size(); ++i) {
    for (int k = 0; k < params_.watches_per_watcher; ++k) {
      env_.schedule(env_.now() + watchers_[i].rng.between(0, params_.watch_pause_us_max),
                    [this, i] { open_watch(i); });
    }
  }
  env_.schedule(env_.now() + leaser_->rng.between(0, params_.watch_pause_us_max), [this] { lease_step(); });
  env_.schedule(env_.now() + params_.compact_every_us, [this] { compact_step(); });
  // The slow consumer catches up once the writers stop: every live watch must have caught up by
  // the end.
  env_.schedule(stop_at, [this] {
    if (!watchers_.empty()) watchers_.back().kv->set_watch_poll_delay_max(0);
  });
}

void WatchWorkload::on_reply(const ClientReply& reply) {
  if (reply.client >= 1 && reply.client <= by_id_.size()) by_id_[reply.client - 1]->on_reply(reply);
}

const WorkloadStats& WatchWorkload::stats() const {
  stats_ = WorkloadStats{};
  for (const SimKvClient* c : by_id_) {
    stats_.proposals += c->stats().writes;
    stats_.acked += c->stats().writes_answered;
    stats_.reads += c->stats().reads;
    stats_.reads_done += c->stats().reads_answered;
    stats_.redirected += c->stats().redirects;
    stats_.timeouts += c->stats().timeouts;
  }
  return stats_;
}

void WatchWorkload::fail(std::string message) {
  if (failed_) return;
  failed_ = true;
  report_(Violation{invariant::kWatchDelivery, std::move(message)});
}

// ---------------------------------------------------------------------------------------------
// Writers

void WatchWorkload::write_step(std::size_t writer) {
  if (env_.now() >= stop_at_) return;
  Actor& a = writers_[writer];
  auto leaf = [&] { return std::string(kLeaves[a.rng.below(kLeafCount)]); };
  auto value = [&] { return fmt::format("w{}.{}", a.kv->id(), ++a.values); };
  kv::Txn txn;
  const std::uint64_t pick = a.rng.below(100);
  if (pick < 45) {
    txn.success.push_back(put(leaf(), value()));
  } else if (pick < 55) {
    kv::Op create = kv::Op::create(leaf(), value());
    create.parents = true;
    txn.success.push_back(std::move(create));
  } else if (pick < 70) {
    txn.success.push_back(kv::Op::remove(leaf()));
  } else if (pick < 73) {
    txn.success.push_back(kv::Op::remove(a.rng.one_in(2) ? "/w/a" : "/w/b", true));
  } else if (pick < 88) {
    // Several keys in one revision: their events must arrive together, in path order.
    const std::size_t first = a.rng.below(kLeafCount);
    const std::size_t count = 2 + a.rng.below(2);
    for (std::size_t i = 0; i < count; ++i) {
      txn.success.push_back(put(kLeaves[(first + i) % kLeafCount], value()));
    }
  } else if (pick < 95) {
    const std::string path = leaf();
    txn.compares.push_back(kv::Compare::version(path, kv::CompareOp::Equal, a.rng.below(3)));
    txn.success.push_back(put(path, value()));
  } else {
    txn.compares.push_back(kv::Compare::exists("/w/c"));
    txn.success.push_back(kv::Op::remove("/w/c"));
    txn.failure.push_back(put("/w/c", value()));
  }
  a.kv->write(std::move(txn), [this, writer](const fencing::WriteOutcome&) {
    Actor& w = writers_[writer];
    env_.schedule(env_.now() + w.rng.between(0, params_.think_us_max),
                  [this, writer] { write_step(writer); });
  });
}

void WatchWorkload::lease_step() {
  if (env_.now() >= stop_at_) return;
  Actor& a = *leaser_;
  const std::uint64_t ttl = a.rng.between(params_.lease_ttl_ms_min, params_.lease_ttl_ms_max);
  a.kv->write(kv::LeaseGrant{0, ttl}, [this, ttl](const fencing::WriteOutcome& out) {
    Actor& l = *leaser_;
    if (!out.result || !out.result->ok()) {
      env_.schedule(env_.now() + l.rng.between(0, params_.watch_pause_us_max), [this] { lease_step(); });
      return;
    }
    const kv::LeaseId lease = out.result->lease.lease.id;
    kv::Txn keys;
    const std::uint64_t count = 1 + l.rng.below(3);
    for (std::uint64_t i = 0; i < count; ++i) {
      keys.success.push_back(put(fmt::format("/w/e/l{}-{}", lease, i), fmt::format("lease{}", lease), lease));
    }
    const int keepalives = static_cast<int>(l.rng.below(4));
    l.kv->write(std::move(keys), [this, lease, keepalives, ttl](const fencing::WriteOutcome&) {
      lease_keepalive(lease, keepalives, ttl);
    });
  });
}

void WatchWorkload::lease_keepalive(kv::LeaseId lease, int left, std::uint64_t ttl_ms) {
  Actor& a = *leaser_;
  const Micros ttl_us = ttl_ms * kMicrosPerMilli;
  if (left == 0 || env_.now() >= stop_at_) {
    if (a.rng.one_in(2)) {
      // Revoked by its owner...
      a.kv->write(kv::LeaseRevoke{lease}, [this](const fencing::WriteOutcome&) {
        env_.schedule(env_.now() + leaser_->rng.between(0, params_.watch_pause_us_max),
                      [this] { lease_step(); });
      });
    } else {
      // ...or left to run out on the leader's clock.
      env_.schedule(env_.now() + 2 * ttl_us, [this] { lease_step(); });
    }
    return;
  }
  env_.schedule(env_.now() + ttl_us / 3, [this, lease, left, ttl_ms] {
    leaser_->kv->write(kv::LeaseKeepAlive{lease},
                       [this, lease, left, ttl_ms](const fencing::WriteOutcome& out) {
                         const bool alive = out.result && out.result->ok();
                         lease_keepalive(lease, alive ? left - 1 : 0, ttl_ms);
                       });
  });
}

void WatchWorkload::compact_step() {
  if (env_.now() >= stop_at_) return;
  const Micros next = env_.now() + params_.compact_every_us;
  compactor_->kv->get("/", [this, next](const fencing::ReadOutcome<kv::Node>& out) {
    auto again = [this, next] { env_.schedule(std::max(next, env_.now()), [this] { compact_step(); }); };
    if (!out.reached || out.read.revision <= params_.compact_keep_revisions) return again();
    compactor_->kv->write(kv::Compact{out.read.revision - params_.compact_keep_revisions},
                          [again](const fencing::WriteOutcome&) { again(); });
  });
}

// ---------------------------------------------------------------------------------------------
// Watchers

void WatchWorkload::open_watch(std::size_t watcher) {
  if (env_.now() >= stop_at_ || failed_) return;
  Actor& a = watchers_[watcher];
  const FilterChoice& f = kFilters[a.rng.below(kFilterCount)];
  kv::WatchRequest request;
  request.filter = kv::WatchFilter{f.kind, f.path};
  request.prev_value = a.rng.one_in(2);
  const kv::Revision head = reference_.revision();
  const std::uint64_t pick = a.rng.below(100);
  if (pick < 45) {
    request.start_revision = 0;  // from whatever the node has reached
  } else if (pick < 75) {
    const kv::Revision back = a.rng.below(40);
    request.start_revision = head > back ? head - back : 1;
  } else if (pick < 92) {
    request.start_revision = 1 + a.rng.below(head + 1);  // often below the compaction point
  } else {
    request.start_revision = head + 1 + a.rng.below(5);  // not reached yet
  }
  const std::size_t index = checked_.size();
  checked_.push_back(Checked{watcher, 0, request});
  fencing::WatchCallbacks callbacks;
  callbacks.on_events = [this, index](const std::vector<kv::Event>& events) { on_events(index, events); };
  callbacks.on_end = [this, index](const kv::Status& why) { on_end(index, why); };
  const fencing::WatchHandle handle = a.kv->watch(request, std::move(callbacks));
  checked_[index].handle = handle;
  if (a.rng.chance_ppm(params_.watch_cancel_ppm)) {
    env_.schedule(env_.now() + a.rng.between(0, params_.watch_life_us_max),
                  [this, watcher, handle] { watchers_[watcher].kv->cancel_watch(handle); });
  }
}

std::string WatchWorkload::name(const Checked& c) const {
  const SimKvClient::WatchView* view = watchers_[c.watcher].kv->watch_view(c.handle);
  std::string start = view && view->start ? std::to_string(*view->start) : "?";
  return fmt::format("watch {} of client {} ({} {} from {} asked {}{}; progress {}, {} delivered, {} moves)",
                     c.handle, watchers_[c.watcher].kv->id(), kind_name(c.request.filter.kind),
                     c.request.filter.path, start, c.request.start_revision,
                     c.request.prev_value ? ", prev" : "", view ? view->progress : 0, c.delivered,
                     view ? view->moves : 0);
}

void WatchWorkload::begin(Checked& c) {
  const SimKvClient::WatchView* view = watchers_[c.watcher].kv->watch_view(c.handle);
  if (c.started || !view || !view->start) return;
  c.started = true;
  c.start = *view->start;
  c.cursor = reference_.first_event_from(c.start);
}

void WatchWorkload::seek(Checked& c) {
  const std::vector<kv::Event>& events = reference_.events();
  while (c.cursor < events.size() &&
         (events[c.cursor].revision < c.start || !c.request.filter.matches(events[c.cursor].path))) {
    ++c.cursor;
  }
}

Verdict WatchWorkload::check_delivered_through(Checked& c, kv::Revision progress) {
  begin(c);
  if (!c.started) return std::nullopt;
  seek(c);
  const std::vector<kv::Event>& events = reference_.events();
  if (c.cursor < events.size() && events[c.cursor].revision <= progress) {
    return Violation{invariant::kWatchDelivery,
                     fmt::format("{} claims everything through revision {} but never got {}", name(c),
                                 progress, show(events[c.cursor]))};
  }
  return std::nullopt;
}

void WatchWorkload::on_events(std::size_t index, const std::vector<kv::Event>& events) {
  if (failed_) return;
  Checked& c = checked_[index];
  begin(c);
  if (!c.started) return fail(fmt::format("{} got events before it was opened", name(c)));
  const std::vector<kv::Event>& committed = reference_.events();
  for (const kv::Event& e : events) {
    seek(c);
    if (c.cursor >= committed.size()) {
      return fail(
          fmt::format("{} got {}, but no further matching event has been committed (the history is at "
                      "revision {})",
                      name(c), show(e), reference_.revision()));
    }
    kv::Event expected = committed[c.cursor];
    if (!c.request.prev_value) expected.prev.reset();
    if (!(e == expected)) {
      return fail(fmt::format("{} got {}, but the next committed matching event is {}", name(c), show(e),
                              show(expected)));
    }
    ++c.cursor;
    ++c.delivered;
    ++events_checked_;
  }
  const SimKvClient::WatchView* view = watchers_[c.watcher].kv->watch_view(c.handle);
  if (Verdict v = check_delivered_through(c, view->progress)) return fail(v->message);
}

void WatchWorkload::on_end(std::size_t index, const kv::Status& why) {
  Checked& c = checked_[index];
  const std::size_t watcher = c.watcher;
  if (!failed_) {
    const SimKvClient::WatchView* view = watchers_[c.watcher].kv->watch_view(c.handle);
    const kv::Revision resume = view->start ? view->progress + 1 : c.request.start_revision;
    if (Verdict v = check_delivered_through(c, view->progress)) return fail(v->message);
    switch (why.error) {
      case kv::Error::Ok: break;  // cancelled by its owner
      case kv::Error::Compacted:
        ++ended_compacted_;
        if (resume == 0 || resume >= why.compact_revision || !reference_.compacted_to(why.compact_revision)) {
          return fail(fmt::format("{} ended Compacted at {} while resuming at {}, which {}", name(c),
                                  why.compact_revision, resume,
                                  reference_.compacted_to(why.compact_revision)
                                      ? "is not below it"
                                      : "is no revision the log compacted to"));
        }
        break;
      case kv::Error::WatchOverflow: {
        ++ended_overflow_;
        std::size_t pending = 0;
        const std::vector<kv::Event>& events = reference_.events();
        for (std::size_t i = c.cursor; i < events.size(); ++i) {
          if (events[i].revision >= c.start && c.request.filter.matches(events[i].path)) ++pending;
        }
        if (pending <= params_.watch_buffer_events_max) {
          return fail(
              fmt::format("{} ended WatchOverflow with only {} matching events committed after its "
                          "progress (a watcher may buffer {})",
                          name(c), pending, params_.watch_buffer_events_max));
        }
        break;
      }
      default: return fail(fmt::format("{} ended: {} {}", name(c), kv::to_string(why.error), why.message));
    }
  }
  Actor& a = watchers_[watcher];
  env_.schedule(env_.now() + a.rng.between(0, params_.watch_pause_us_max),
                [this, watcher] { open_watch(watcher); });
}

Verdict WatchWorkload::final_check() {
  const kv::Revision settled =
      reference_.revision_at(end_at_ > params_.settle_us ? end_at_ - params_.settle_us : 0);
  std::uint64_t moves = 0;
  for (Checked& c : checked_) {
    const SimKvClient::WatchView* view = watchers_[c.watcher].kv->watch_view(c.handle);
    moves += view->moves;
    if (!view->start) {
      if (view->ended) continue;
      return Violation{invariant::kWatchDelivery, fmt::format("{} was never opened", name(c))};
    }
    if (Verdict v = check_delivered_through(c, view->progress)) return v;
    if (!view->ended && view->progress < settled) {
      return Violation{
          invariant::kWatchDelivery,
          fmt::format("{} is live but reached only revision {}; the cluster reached {} {} s before "
                      "the end",
                      name(c), view->progress, settled, params_.settle_us / kMicrosPerSecond)};
    }
  }
  env_.trace(
      0, fmt::format("watches: {} opened, {} events checked, {} moves, {} ended compacted, {} overflowed; "
                     "final revision {}",
                     checked_.size(), events_checked_, moves, ended_compacted_, ended_overflow_,
                     reference_.revision()));
  return std::nullopt;
}

}  // namespace coord::sim
