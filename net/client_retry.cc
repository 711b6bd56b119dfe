#include "net/client_retry.h"

#include <algorithm>
#include <utility>

namespace coord::net {

MemberRoute::MemberRoute(const std::vector<std::string>& endpoints, const std::string& preferred)
    : endpoints_(&endpoints) {
  const auto found = std::find(endpoints.begin(), endpoints.end(), preferred);
  if (found != endpoints.end()) index_ = static_cast<std::size_t>(found - endpoints.begin());
  // A preferred member outside the list (a leader found through a hint) is still asked first.
  target_ = preferred.empty() ? endpoints.at(0) : preferred;
}

bool MemberRoute::follow(const ClientResponse& not_leader) {
  const LeaderHint* hint = not_leader.leader ? &*not_leader.leader : nullptr;
  if (hint != nullptr && !hint->client_address.empty() && hint->client_address != target_ &&
      hops_ < leader_hops_max) {
    ++hops_;
    target_ = hint->client_address;
    return true;
  }
  next();
  return false;
}

void MemberRoute::next() {
  index_ = (index_ + 1) % endpoints_->size();
  target_ = (*endpoints_)[index_];
}

std::chrono::milliseconds MemberRoute::take_pause() {
  const auto pause = pause_;
  pause_ = std::min(pause_ * 2, retry_pause_max);
  return pause;
}

Answer classify(const ClientResponse& response) {
  if (response.error == ErrorCode::NotLeader) return Answer::Redirect;
  if (response.error == ErrorCode::Unavailable || response.error == ErrorCode::Timeout ||
      response.error == ErrorCode::NoSpace) {
    return Answer::Retry;  // NoSpace: this member's disk is full; another may lead soon
  }
  return Answer::Final;
}

WatchCursor::WatchCursor(kv::Revision start_revision) : start_revision_(start_revision) {
  if (start_revision > 0) complete_ = start_revision - 1;
}

kv::Revision WatchCursor::resume_revision() const { return complete_ ? *complete_ + 1 : start_revision_; }

void WatchCursor::opened(kv::Revision resolved_start) {
  if (!complete_ && resolved_start > 0) complete_ = resolved_start - 1;
}

bool WatchCursor::take(std::vector<kv::Event>& events, kv::Revision progress_revision,
                       std::vector<kv::Event>& fresh) {
  const std::size_t fresh_before = fresh.size();
  for (kv::Event& e : events) {
    if (complete_ && e.revision <= *complete_) continue;
    if (e.revision == last_revision_ && e.path <= last_path_) continue;
    if (e.revision < last_revision_) continue;
    // Events of revision r mean every revision below r is complete.
    if (!complete_ || e.revision - 1 > *complete_) complete_ = e.revision - 1;
    last_revision_ = e.revision;
    last_path_ = e.path;
    fresh.push_back(std::move(e));
  }
  const kv::Revision before = complete_.value_or(0);
  if (progress_revision > 0 && (!complete_ || progress_revision > *complete_)) complete_ = progress_revision;
  return fresh.size() != fresh_before || complete_.value_or(0) != before;
}

}  // namespace coord::net
