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
  const kv::DecodedCommand decoded = normal ? kv::decode_command(entry.data) : kv::DecodedCommand{};
  // The lease this entry may end, and its keys before it.
  kv::LeaseId ending = 0;
  if (normal && decoded.status.ok()) {
    if (const auto* r = std::get_if<kv::LeaseRevoke>(&decoded.command.body)) ending = r->id;
    if (const auto* e = std::get_if<kv::LeaseExpire>(&decoded.command.body)) ending = e->id;
  }
  std::set<std::string> keys_before;
  if (ending != 0) {
    if (auto it = lease_keys_.find(ending); it != lease_keys_.end()) keys_before = it->second;
  }
  const std::vector<kv::Result> results =
      sm_->apply_batch({kv::AppliedEntry{entry.index, normal ? entry.data : std::string()}});
  const kv::Result& result = results.front();

  kv::WatchResponse polled = sm_->poll_watch(all_, kPollEventsMax);
  if (polled.canceled) {
    return Violation{invariant::kSimulatorLimit,
                     fmt::format("the reference watcher ended: {}", polled.cancel_status.message)};
  }
  for (kv::Event& e : polled.events) {
    follow_lease_keys(e);
    events_.push_back(std::move(e));
  }
  if (sm_->revision() != revisions_.back().second) revisions_.emplace_back(at, sm_->revision());

  if (!normal) return std::nullopt;
  if (!decoded.status.ok()) return std::nullopt;  // refused alike by every replica
  if (ending != 0 && result.ok()) {
    if (Verdict v = check_lease_ended(ending, keys_before, entry.index)) return v;
  }
  if (std::holds_alternative<kv::Compact>(decoded.command.body) && result.ok()) {
    compactions_.insert(std::get<kv::Compact>(decoded.command.body).revision);
  }
  if (decoded.command.session_id == 0) return std::nullopt;
  return check_session(decoded.command, result, entry.index, at);
}

void KvReference::follow_lease_keys(const kv::Event& e) {
  const kv::LeaseId before = e.prev ? e.prev->lease : 0;
  const kv::LeaseId after = e.node ? e.node->lease : 0;
  if (before == after) return;
  if (before != 0) {
    auto it = lease_keys_.find(before);
    if (it != lease_keys_.end()) {
      it->second.erase(e.path);
      if (it->second.empty()) lease_keys_.erase(it);
    }
  }
  if (after != 0) lease_keys_[after].insert(e.path);
}

Verdict KvReference::check_lease_ended(kv::LeaseId lease, const std::set<std::string>& keys_before,
                                       raft::Index index) {
  ++lease_ends_checked_;
  lease_keys_checked_ += keys_before.size();
  if (auto it = lease_keys_.find(lease); it != lease_keys_.end()) {
    return Violation{invariant::kEphemeralCleanup,
                     fmt::format("lease {} ended at index {} but no deletion of its key {} was committed", lease,
                                 index, *it->second.begin())};
  }
  for (const std::string& path : keys_before) {
    const kv::ReadResult<kv::Node> got = sm_->get(path);
    if (got.ok() && got.value.lease == lease) {
      return Violation{invariant::kEphemeralCleanup,
                       fmt::format("lease {} ended at index {} but its key {} still exists (revision {})", lease,
                                   index, path, got.value.create_revision)};
    }
  }
  return std::nullopt;
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
