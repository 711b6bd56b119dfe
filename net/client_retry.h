// What the blocking client (net/client.h) and the asynchronous one (client/client.h) share:
// which member a call tries next, and how a resumed watch drops what it already delivered.
// Both are plain values with no I/O and no clock, so either host drives them its own way
// (poll(2) and sleeps, or an event loop and timers).
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "kv/event.h"
#include "kv/types.h"
#include "net/client_messages.h"

namespace coord::net {

// Redirections followed within one call before falling back to plain rotation: guards against
// two members pointing at each other during an election.
inline constexpr int leader_hops_max = 3;
// Pauses between rounds of retries double from the first to the last.
inline constexpr std::chrono::milliseconds retry_pause_min{50};
inline constexpr std::chrono::milliseconds retry_pause_max{500};

// One call's way through the members: it starts with the member that answered last (or the
// first endpoint), follows NotLeader hints to the leader's client address at most
// leader_hops_max times, and otherwise moves round the endpoint list, pausing a little longer
// after each failure. `endpoints` must not be empty and must outlive the route.
class MemberRoute {
 public:
  MemberRoute(const std::vector<std::string>& endpoints, const std::string& preferred);

  // The member to send the next attempt to.
  const std::string& target() const { return target_; }

  // A NotLeader answer: true when its hint names another member to try at once (no pause);
  // false when the route moved on to the next endpoint instead (pause before the attempt).
  bool follow(const ClientResponse& not_leader);
  // The target failed (unreachable, Unavailable, Timeout, silent): the next endpoint.
  void next();
  // How long to wait before the next attempt; grows with every call.
  std::chrono::milliseconds take_pause();

 private:
  const std::vector<std::string>* endpoints_;
  std::size_t index_ = 0;
  std::string target_;
  int hops_ = 0;
  std::chrono::milliseconds pause_ = retry_pause_min;
};

// What to do with an answer to one attempt.
enum class Answer {
  Final,     // hand it to the caller (success, or an error another member would repeat)
  Redirect,  // NotLeader: MemberRoute::follow
  Retry,     // Unavailable, Timeout: another member, after a pause, same session and sequence
};
Answer classify(const ClientResponse& response);

// A watch stream's position, kept across the members that serve it in turn. A resumed stream
// starts at resume_revision(), the first revision whose events were not all delivered; the
// member then repeats the part of that revision already handed out, which take() drops, so the
// caller sees every event exactly once, in (revision, path) order.
class WatchCursor {
 public:
  // `start_revision`: the watch's first revision; 0 means "from now", resolved by the first
  // member that opens it (opened()).
  explicit WatchCursor(kv::Revision start_revision);

  // Where the next member must start (0 while "from now" is not resolved yet).
  kv::Revision resume_revision() const;
  // A member opened the watch at `resolved_start` (the Watch answer's revision): a later resume
  // must start there, not at whatever "now" is on another member.
  void opened(kv::Revision resolved_start);
  // Moves the events of one frame that were not delivered before into `fresh` (in order), and
  // takes the frame's progress. False when the frame brought nothing new (no events, no
  // progress).
  bool take(std::vector<kv::Event>& events, kv::Revision progress_revision, std::vector<kv::Event>& fresh);
  // Every event at or below it has been delivered (0 before anything is known).
  kv::Revision progress() const { return complete_.value_or(0); }

 private:
  kv::Revision start_revision_;
  // Every event at or below `complete_` has been delivered (known once a start is resolved).
  std::optional<kv::Revision> complete_;
  // The last event delivered: within revision complete_ + 1, events up to it were delivered.
  kv::Revision last_revision_ = 0;
  std::string last_path_;
};

}  // namespace coord::net
