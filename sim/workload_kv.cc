#include "sim/workload_kv.h"

#include <algorithm>
#include <map>
#include <utility>

#include <fmt/format.h>

#include "sim/linearizability.h"

namespace coord::sim {

namespace {

using M = KvGroupModel;

// Operations listed around the one that could not be placed, at most.
inline constexpr std::size_t kReportOverlappingMax = 6;
inline constexpr std::size_t kReportBeforeMax = 4;

std::string show_time(Micros t) { return t == kNeverReturned ? "never" : format_time(t); }

std::string show(const Operation<M>& op) {
  std::string out = fmt::format("client {} [{} .. {}] ", op.client, show_time(op.call), show_time(op.ret));
  if (op.output) return out + M::describe(op.input, *op.output);
  return out + M::describe(op.input) + " -> unknown";
}

}  // namespace

KvWorkload::KvWorkload(int nodes, const KvWorkloadParams& params, std::uint64_t root_seed, Env& env,
                       ClientTransport& transport, const KvReference& reference)
    : params_(params),
      env_(env),
      reference_(reference),
      compactor_rng_(Rng::stream(root_seed, "kv-compactor")) {
  params_.keys = std::clamp(params_.keys, 1, M::kKeysMax);
  const auto slots = static_cast<std::size_t>(params_.groups * params_.keys);
  for (int i = 1; i <= params_.clients; ++i) {
    const auto id = static_cast<std::uint64_t>(i);
    Client c;
    c.index = i;
    c.kv = std::make_unique<SimKvClient>(id, id, nodes, params_.client,
                                         Rng::stream(root_seed, "kv-client", id), env, transport);
    c.rng = Rng::stream(root_seed, "kv-ops", id);
    c.seen_version.assign(slots, 0);
    c.seen_value.assign(slots, std::string());
    clients_.push_back(std::move(c));
  }
  const auto compactor_id = static_cast<std::uint64_t>(params_.clients + 1);
  compactor_ =
      std::make_unique<SimKvClient>(compactor_id, compactor_id, nodes, params_.client,
                                    Rng::stream(root_seed, "kv-client", compactor_id), env, transport);
}

void KvWorkload::start(Micros stop_at) {
  stop_at_ = stop_at;
  for (Client& c : clients_) issue_after(c, c.rng.between(0, params_.think_us_max));
  env_.schedule(env_.now() + params_.compact_every_us, [this] { compact_tick(); });
}

void KvWorkload::on_reply(const ClientReply& reply) {
  if (reply.client >= 1 && reply.client <= clients_.size()) {
    clients_[reply.client - 1].kv->on_reply(reply);
  } else if (reply.client == compactor_->id()) {
    compactor_->on_reply(reply);
  }
}

const WorkloadStats& KvWorkload::stats() const {
  stats_ = WorkloadStats{};
  for (const Client& c : clients_) {
    const SimKvClientStats& s = c.kv->stats();
    stats_.proposals += s.writes;
    stats_.acked += s.writes_answered;
    stats_.reads += s.reads;
    stats_.reads_done += s.reads_answered;
    stats_.redirected += s.redirects;
    stats_.timeouts += s.timeouts;
  }
  return stats_;
}

void KvWorkload::issue_after(Client& c, Micros delay_us) {
  const int index = c.index;
  env_.schedule(env_.now() + delay_us,
                [this, index] { issue(clients_[static_cast<std::size_t>(index - 1)]); });
}

M::Input KvWorkload::random_input(Client& c, int group) {
  M::Input in;
  auto key = [&] { return static_cast<int>(c.rng.below(static_cast<std::uint64_t>(params_.keys))); };
  auto value = [&] { return fmt::format("c{}.{}", c.index, ++c.values); };
  auto slot = [&](int k) { return static_cast<std::size_t>(group * params_.keys + k); };
  const std::uint64_t pick = c.rng.below(100);
  if (pick < 24) {
    in.kind = M::Kind::Get;
    in.key = key();
    return in;
  }
  if (pick < 32) {
    in.kind = M::Kind::List;
    return in;
  }
  in.kind = M::Kind::Txn;
  if (pick < 52) {
    in.success.push_back(M::TxnOp{M::OpType::Put, key(), value()});
  } else if (pick < 60) {
    in.success.push_back(M::TxnOp{M::OpType::Create, key(), value()});
  } else if (pick < 68) {
    in.success.push_back(M::TxnOp{M::OpType::Delete, key(), {}});
  } else if (pick < 79) {
    // Compare-and-set on the version this client last saw (sometimes a guess).
    const int k = key();
    const std::uint64_t version = c.rng.one_in(4) ? c.rng.below(4) : c.seen_version[slot(k)];
    in.compares.push_back(M::Compare{k, M::Target::Version, version, {}});
    in.success.push_back(M::TxnOp{M::OpType::Put, k, value()});
  } else if (pick < 87) {
    const int k = key();
    in.compares.push_back(M::Compare{k, M::Target::Value, 0, c.seen_value[slot(k)]});
    in.success.push_back(M::TxnOp{M::OpType::Put, k, value()});
  } else {
    // A transaction over the group: a comparison or two, writes to distinct keys, reads.
    const int compares = 1 + static_cast<int>(c.rng.below(2));
    for (int i = 0; i < compares; ++i) {
      const int k = key();
      switch (c.rng.below(4)) {
        case 0: in.compares.push_back(M::Compare{k, M::Target::Exists, 0, {}}); break;
        case 1: in.compares.push_back(M::Compare{k, M::Target::Missing, 0, {}}); break;
        case 2: in.compares.push_back(M::Compare{k, M::Target::Version, c.seen_version[slot(k)], {}}); break;
        default: in.compares.push_back(M::Compare{k, M::Target::Value, 0, c.seen_value[slot(k)]}); break;
      }
    }
    auto branch = [&](std::size_t ops_max) {
      std::vector<M::TxnOp> ops;
      std::uint32_t written = 0;
      const std::size_t count = c.rng.below(ops_max + 1);
      for (std::size_t i = 0; i < count; ++i) {
        const int k = key();
        const std::uint64_t kind = c.rng.below(4);
        if (kind == 0 || (written & (1u << k))) {
          ops.push_back(M::TxnOp{M::OpType::Get, k, {}});
          continue;
        }
        written |= 1u << k;
        if (kind == 1) ops.push_back(M::TxnOp{M::OpType::Put, k, value()});
        if (kind == 2) ops.push_back(M::TxnOp{M::OpType::Create, k, value()});
        if (kind == 3) ops.push_back(M::TxnOp{M::OpType::Delete, k, {}});
      }
      return ops;
    };
    in.success = branch(3);
    if (in.success.empty()) in.success.push_back(M::TxnOp{M::OpType::Put, key(), value()});
    in.failure = branch(2);
  }
  return in;
}

void KvWorkload::issue(Client& c) {
  if (env_.now() >= stop_at_) return;
  const int group = static_cast<int>(c.rng.below(static_cast<std::uint64_t>(params_.groups)));
  Record r;
  r.group = group;
  r.client = c.index;
  r.call = env_.now();
  r.input = random_input(c, group);
  const std::size_t index = history_.size();
  switch (r.input.kind) {
    case M::Kind::Get:
      history_.push_back(std::move(r));
      c.kv->get(M::key_path(group, history_[index].input.key),
                [this, index](const fencing::ReadOutcome<kv::Node>& out) {
                  if (!out.reached) return completed(index, std::nullopt);
                  completed(index, M::from_get(out.read));
                });
      return;
    case M::Kind::List:
      history_.push_back(std::move(r));
      c.kv->list(M::group_path(group), kv::ListOptions{},
                 [this, index](const fencing::ReadOutcome<kv::ListPage>& out) {
                   if (!out.reached) return completed(index, std::nullopt);
                   completed(index, M::from_list(out.read));
                 });
      return;
    case M::Kind::Txn: {
      r.write = true;
      r.session = c.kv->session();
      kv::Txn txn = M::to_txn(group, r.input);
      history_.push_back(std::move(r));
      c.kv->write(std::move(txn), [this, index](const fencing::WriteOutcome& out) {
        if (!out.result) return completed(index, std::nullopt);
        completed(index, M::from_result(history_[index].input, *out.result));
      });
      history_[index].sequence = c.kv->last_sequence();
      return;
    }
  }
}

void KvWorkload::completed(std::size_t index, std::optional<M::Output> output) {
  Record& r = history_[index];
  r.returned = true;
  r.ret = env_.now();
  r.output = std::move(output);
  Client& c = clients_[static_cast<std::size_t>(r.client - 1)];
  if (r.output) remember(c, r);
  issue_after(c, c.rng.between(0, params_.think_us_max));
}

void KvWorkload::remember(Client& c, const Record& r) {
  const M::Output& out = *r.output;
  auto note = [&](int key, bool exists, const std::string& value, std::uint64_t version) {
    const auto slot = static_cast<std::size_t>(r.group * params_.keys + key);
    c.seen_version[slot] = exists ? version : 0;
    c.seen_value[slot] = exists ? value : std::string();
  };
  if (r.input.kind == M::Kind::Get) {
    note(r.input.key, out.exists, out.value, out.version);
    return;
  }
  if (r.input.kind != M::Kind::Txn || out.error != kv::Error::Ok) return;
  const std::vector<M::TxnOp>& branch = out.succeeded ? r.input.success : r.input.failure;
  for (std::size_t i = 0; i < branch.size() && i < out.ops.size(); ++i) {
    if (branch[i].type == M::OpType::Get) {
      note(branch[i].key, out.ops[i].exists, out.ops[i].value, out.ops[i].version);
    }
  }
}

void KvWorkload::compact_tick() {
  if (env_.now() >= stop_at_) return;
  const Micros next = env_.now() + params_.compact_every_us;
  compactor_->get("/", [this, next](const fencing::ReadOutcome<kv::Node>& out) {
    auto again = [this, next] { env_.schedule(std::max(next, env_.now()), [this] { compact_tick(); }); };
    if (!out.reached || out.read.revision <= params_.compact_keep_revisions) return again();
    const kv::Revision to = out.read.revision - params_.compact_keep_revisions;
    compactor_->write(kv::Compact{to}, [again](const fencing::WriteOutcome&) { again(); });
  });
}

Verdict KvWorkload::final_check() {
  std::map<int, std::vector<Operation<M>>> groups;
  std::uint64_t settled = 0;
  std::uint64_t dropped = 0;
  for (const Record& r : history_) {
    Operation<M> op;
    op.client = r.client;
    op.call = r.call;
    op.input = r.input;
    if (r.returned && r.output) {
      op.ret = r.ret;
      op.output = r.output;
    } else if (!r.write) {
      ++dropped;  // a read nobody answered says nothing
      continue;
    } else if (const KvReference::Execution* e = reference_.execution(r.session, r.sequence)) {
      // Applied: it took effect no later than the first replica applied it.
      op.ret = std::max(e->at, r.call);
      op.output = M::from_result(r.input, e->result);
      ++settled;
    } else {
      ++dropped;  // never applied: it had no effect
      continue;
    }
    groups[r.group].push_back(std::move(op));
  }
  env_.trace(0, fmt::format("kv history: {} operations, {} unknown writes settled from the log, {} dropped",
                            history_.size(), settled, dropped));
  for (const auto& [group, ops] : groups) {
    const LinearizabilityResult result = check_linearizable(ops, params_.linearizability_steps_max);
    env_.trace(0, fmt::format("group {}: {} operations, linearizable={} steps={}", M::group_path(group),
                              ops.size(), result.linearizable, result.steps));
    if (result.exhausted) {
      return Violation{
          invariant::kSimulatorLimit,
          fmt::format("the linearizability search of group {} ({} operations) ran out of its {} steps "
                      "without a verdict",
                      M::group_path(group), ops.size(), params_.linearizability_steps_max)};
    }
    if (result.linearizable) continue;
    std::string message = fmt::format("group {}: {} operations have no linearization (at most {} fit)",
                                      M::group_path(group), ops.size(), result.longest_prefix);
    if (result.first_unplaced) {
      const Operation<M>& stuck = ops[*result.first_unplaced];
      message += "; cannot place: " + show(stuck);
      std::vector<const Operation<M>*> before;
      std::size_t overlapping = 0;
      for (const Operation<M>& op : ops) {
        if (&op == &stuck) continue;
        if (op.ret < stuck.call) {
          before.push_back(&op);
        } else if (op.call <= stuck.ret && overlapping < kReportOverlappingMax) {
          message += "; concurrent: " + show(op);
          ++overlapping;
        }
      }
      std::sort(before.begin(), before.end(), [](const auto* a, const auto* b) { return a->ret < b->ret; });
      const std::size_t from = before.size() > kReportBeforeMax ? before.size() - kReportBeforeMax : 0;
      for (std::size_t i = from; i < before.size(); ++i) message += "; before: " + show(*before[i]);
    }
    return Violation{invariant::kKvLinearizable, std::move(message)};
  }
  return std::nullopt;
}

}  // namespace coord::sim
