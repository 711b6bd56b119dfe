#include "sim/kv_reference.h"

#include <algorithm>

#include <fmt/format.h>

#include "kv/codec.h"

namespace coord::sim {

namespace {

// Watch limits do not change the state, so the reference may buffer more than replicas do: one
// entry's events (a recursive delete, a lease's keys) must never overflow it.
kv::Limits reference_limits(kv::Limits limits) {
  limits.watch_buffer_events_max = std::max<std::size_t>(limits.watch_buffer_events_max, 1u << 20);
  return limits;
}

inline constexpr std::size_t kPollEventsMax = 1u << 20;

}  // namespace

KvReference::KvReference(const kv::Limits& limits)
    : sm_(std::make_unique<kv::StateMachine>(storage_, reference_limits(limits))) {
  kv::WatchRequest all;
  all.filter = kv::WatchFilter{kv::WatchKind::Subtree, "/"};
  all.start_revision = 1;
  all.prev_value = true;
  const kv::WatchCreated created = sm_->watch(all);
  all_ = created.id;
  revisions_.emplace_back(0, 0);
}

Verdict KvReference::observe(const raft::Entry& entry, Micros at) {
  if (entry.index <= sm_->applied_index()) return std::nullopt;
  if (entry.index != sm_->applied_index() + 1) {
    return Violation{invariant::kStateMachineSafety,
                     fmt::format("entry {} was applied before any replica applied entry {}", entry.index,
                                 sm_->applied_index() + 1)};
  }
  const bool normal = entry.type == raft::EntryType::Normal && !entry.data.empty();
  const std::vector<kv::Result> results =
      sm_->apply_batch({kv::AppliedEntry{entry.index, normal ? entry.data : std::string()}});
  const kv::Result& result = results.front();

  kv::WatchResponse polled = sm_->poll_watch(all_, kPollEventsMax);
  if (polled.canceled) {
    return Violation{invariant::kSimulatorLimit,
                     fmt::format("the reference watcher ended: {}", polled.cancel_status.message)};
  }
  for (kv::Event& e : polled.events) events_.push_back(std::move(e));
  if (sm_->revision() != revisions_.back().second) revisions_.emplace_back(at, sm_->revision());

  if (!normal) return std::nullopt;
  const kv::DecodedCommand decoded = kv::decode_command(entry.data);
  if (!decoded.status.ok()) return std::nullopt;  // refused alike by every replica
  if (std::holds_alternative<kv::Compact>(decoded.command.body) && result.ok()) {
    compactions_.insert(std::get<kv::Compact>(decoded.command.body).revision);
  }
  if (decoded.command.session_id == 0) return std::nullopt;
  return check_session(decoded.command, result, entry.index, at);
}

Verdict KvReference::check_session(const kv::Command& command, const kv::Result& result, raft::Index index,
                                   Micros at) {
  const kv::SessionId session = command.session_id;
  const std::uint64_t sequence = command.sequence;
  std::uint64_t& last = session_last_[session];
  if (sequence > last) {
    if (result.status.error == kv::Error::StaleSequence) {
      return Violation{
          invariant::kKvExactlyOnce,
          fmt::format("session {} sequence {} (first seen at index {}) was refused as stale; the "
                      "session's last sequence was {}",
                      session, sequence, index, last)};
    }
    last = sequence;
    executions_.emplace(std::make_pair(session, sequence), Execution{result, at, index});
    return std::nullopt;
  }
  if (sequence == last) {
    const Execution& first = executions_.at({session, sequence});
    if (result == first.result) return std::nullopt;
    return Violation{
        invariant::kKvExactlyOnce,
        fmt::format("session {} sequence {} came back at index {} with another result than at "
                    "index {}: {} at revision {} instead of {} at revision {} (applied twice?)",
                    session, sequence, index, first.index, kv::to_string(result.status.error),
                    result.revision, kv::to_string(first.result.status.error), first.result.revision)};
  }
  if (result.status.error == kv::Error::StaleSequence) return std::nullopt;
  return Violation{
      invariant::kKvExactlyOnce,
      fmt::format("session {} sequence {} at index {} is older than the session's {} but was "
                  "executed: {} at revision {}",
                  session, sequence, index, last, kv::to_string(result.status.error), result.revision)};
}

kv::Revision KvReference::revision_at(Micros at) const {
  auto it = std::upper_bound(revisions_.begin(), revisions_.end(), at,
                             [](Micros t, const std::pair<Micros, kv::Revision>& r) { return t < r.first; });
  if (it == revisions_.begin()) return 0;
  return std::prev(it)->second;
}

std::size_t KvReference::first_event_from(kv::Revision revision) const {
  auto it = std::lower_bound(events_.begin(), events_.end(), revision,
                             [](const kv::Event& e, kv::Revision r) { return e.revision < r; });
  return static_cast<std::size_t>(it - events_.begin());
}

const KvReference::Execution* KvReference::execution(kv::SessionId session, std::uint64_t sequence) const {
  auto it = executions_.find({session, sequence});
  return it == executions_.end() ? nullptr : &it->second;
}

}  // namespace coord::sim
