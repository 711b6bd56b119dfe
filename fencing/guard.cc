#include "fencing/guard.h"

#include <utility>

#include <fmt/format.h>

#include "raft/assert.h"

namespace coord::fencing {

StoreStatus MemoryGuardStore::load(std::string_view resource, Token& highest) {
  const auto it = highest_.find(resource);
  highest = it == highest_.end() ? 0 : it->second;
  return {};
}

StoreStatus MemoryGuardStore::save(std::string_view resource, Token highest) {
  if (!fail_next_save_.empty()) {
    StoreStatus failed{false, std::move(fail_next_save_)};
    fail_next_save_.clear();
    return failed;
  }
  ++saves_;
  highest_.insert_or_assign(std::string(resource), highest);
  return {};
}

const char* to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::Accepted: return "accepted";
    case Verdict::Stale: return "stale";
    case Verdict::Invalid: return "invalid";
    case Verdict::StoreFailed: return "store-failed";
  }
  return "?";
}

GuardDecision Guard::highest(std::string_view resource) {
  GuardDecision out;
  if (resource.empty() || resource.size() > guard_resource_bytes_max) {
    out.verdict = Verdict::Invalid;
    out.error = fmt::format("resource names are 1 to {} bytes", guard_resource_bytes_max);
    return out;
  }
  if (const auto it = cache_.find(resource); it != cache_.end()) {
    out.highest = it->second;
    return out;
  }
  Token stored = 0;
  const StoreStatus loaded = store_.load(resource, stored);
  if (!loaded.ok) {
    out.verdict = Verdict::StoreFailed;
    out.error = "guard store: " + loaded.error;
    return out;
  }
  if (cache_.size() >= guard_cached_resources_max) cache_.clear();
  cache_.emplace(std::string(resource), stored);
  out.highest = stored;
  return out;
}

GuardDecision Guard::check(std::string_view resource, Token token) {
  GuardDecision out = highest(resource);
  if (!out.accepted()) return out;
  if (token == 0) {
    out.verdict = Verdict::Invalid;
    out.error = "token 0 is never issued";
    return out;
  }
  if (token < out.highest) {
    out.verdict = Verdict::Stale;
    out.error = fmt::format("token {} is below {}, already accepted for {}", token, out.highest,
                            resource);
    return out;
  }
  if (token == out.highest) return out;
  // Remember before accepting: once accepted, a crash must not let an older token back in.
  const StoreStatus saved = store_.save(resource, token);
  if (!saved.ok) {
    // What the store holds is now unknown (the write may have landed): read it again next time.
    if (const auto it = cache_.find(resource); it != cache_.end()) cache_.erase(it);
    out.verdict = Verdict::StoreFailed;
    out.error = "guard store: " + saved.error;
    return out;
  }
  const auto it = cache_.find(resource);
  COORD_ASSERT(it != cache_.end(), "highest() cached the resource");
  it->second = token;
  out.highest = token;
  return out;
}

}  // namespace coord::fencing
