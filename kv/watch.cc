#include "kv/watch.h"

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <utility>

#include "kv/path.h"
#include "raft/assert.h"

namespace coord::kv {

bool WatchFilter::matches(std::string_view event_path) const {
  switch (kind) {
    case WatchKind::Key: return event_path == path;
    case WatchKind::Subtree: return in_subtree(path, event_path);
    case WatchKind::Children: return is_child_of(path, event_path);
  }
  return false;
}

WatchHub::WatchHub(const Limits& limits, Revision head) : limits_(limits), head_(head) {}

WatchCreated WatchHub::add(const WatchRequest& request, const EventSource& source) {
  WatchCreated out;
  COORD_ASSERT(source.head_revision() == head_, "the hub missed a published batch");
  if (Status s = check_path(request.filter.path); !s.ok()) {
    out.status = std::move(s);
    return out;
  }
  if (request.filter.kind > WatchKind::Children) {
    out.status = make_status(Error::InvalidRequest, "unknown watch kind");
    return out;
  }
  if (watchers_.size() >= limits_.watchers_max) {
    out.status = make_status(Error::TooManyWatchers,
                             fmt::format("watchers_max ({}) reached", limits_.watchers_max));
    return out;
  }
  const Revision start = request.start_revision == 0 ? head_ + 1 : request.start_revision;
  if (start < source.history_start()) {
    out.status = compacted_status(start, source.history_start());
    return out;
  }
  Watcher w;
  w.filter = request.filter;
  w.prev_value = request.prev_value;
  w.next_revision = start;
  w.delivered = std::min(start - 1, head_);
  w.synced = start > head_;
  out.id = next_id_++;
  out.start_revision = start;
  watchers_.emplace(out.id, std::move(w));
  return out;
}

void WatchHub::enqueue(Watcher& w, Event event) {
  if (!w.prev_value) event.prev.reset();
  w.buffer.push_back(std::move(event));
  if (w.buffer.size() > limits_.watch_buffer_events_max) overflow(w);
}

void WatchHub::overflow(Watcher& w) {
  w.canceled = true;
  w.buffer.clear();
  w.cancel_status = make_status(
      Error::WatchOverflow,
      fmt::format("more than watch_buffer_events_max ({}) events pending; resume from revision {}",
                  limits_.watch_buffer_events_max, w.delivered + 1));
}

void WatchHub::catch_up(Watcher& w, const EventSource& source, std::size_t events_max) {
  if (w.next_revision < source.history_start()) {
    w.canceled = true;
    w.cancel_status = compacted_status(w.next_revision, source.history_start());
    return;
  }
  if (w.next_revision > head_) {
    w.synced = true;
    return;
  }
  const std::size_t budget =
      std::clamp<std::size_t>(events_max, 1, limits_.watch_buffer_events_max);
  ReplayChunk chunk =
      source.replay(w.filter, w.next_revision, budget, limits_.watch_replay_rows_max);
  COORD_ASSERT(chunk.next_revision >= w.next_revision, "replay went backwards");
  for (Event& e : chunk.events) {
    COORD_ASSERT(e.revision >= w.next_revision && e.revision < chunk.next_revision,
                 "replayed event outside the scanned revisions");
    enqueue(w, std::move(e));
    if (w.canceled) return;
  }
  w.next_revision = chunk.next_revision;
  if (chunk.reached_head) {
    COORD_ASSERT(w.next_revision == head_ + 1, "replay reached a head the hub does not know");
    w.synced = true;
  }
}

WatchResponse WatchHub::poll(WatchId id, const EventSource& source, std::size_t events_max) {
  WatchResponse out;
  COORD_ASSERT(source.head_revision() == head_, "the hub missed a published batch");
  const auto it = watchers_.find(id);
  if (it == watchers_.end()) {
    out.canceled = true;
    out.cancel_status = make_status(Error::UnknownWatch, fmt::format("no watcher {}", id));
    return out;
  }
  Watcher& w = it->second;
  // Catch up only with an empty buffer, so one poll hands out what one replay found.
  if (!w.canceled && !w.synced && w.buffer.empty()) catch_up(w, source, events_max);
  if (w.canceled) {
    out.canceled = true;
    out.cancel_status = w.cancel_status;
    out.progress_revision = w.delivered;
    watchers_.erase(it);
    return out;
  }
  if (events_max > 0) {
    while (!w.buffer.empty() && out.events.size() < events_max) {
      const Revision revision = w.buffer.front().revision;
      while (!w.buffer.empty() && w.buffer.front().revision == revision) {
        out.events.push_back(std::move(w.buffer.front()));
        w.buffer.pop_front();
      }
      w.delivered = revision;
    }
  }
  if (w.buffer.empty()) w.delivered = std::max(w.delivered, std::min(w.next_revision - 1, head_));
  out.progress_revision = w.delivered;
  return out;
}

Status WatchHub::cancel(WatchId id) {
  if (watchers_.erase(id) == 0) {
    return make_status(Error::UnknownWatch, fmt::format("no watcher {}", id));
  }
  return {};
}

void WatchHub::publish(const std::vector<Event>& events, Revision new_head) {
  COORD_ASSERT(new_head >= head_, "the revision went backwards");
  for (std::size_t i = 0; i < events.size(); ++i) {
    COORD_ASSERT(events[i].revision > head_ && events[i].revision <= new_head,
                 "published event outside the batch's revisions");
    COORD_ASSERT(i == 0 || events[i - 1].revision < events[i].revision ||
                     (events[i - 1].revision == events[i].revision &&
                      events[i - 1].path < events[i].path),
                 "published events out of (revision, path) order");
  }
  for (auto& [id, w] : watchers_) {
    if (w.canceled || !w.synced) continue;
    for (const Event& e : events) {
      if (e.revision < w.next_revision || !w.filter.matches(e.path)) continue;
      enqueue(w, e);
      if (w.canceled) break;
    }
    w.next_revision = std::max(w.next_revision, new_head + 1);
  }
  head_ = new_head;
}

void WatchHub::reset(Revision new_head) {
  head_ = new_head;
  for (auto& [id, w] : watchers_) {
    if (w.canceled) continue;
    if (w.delivered > new_head || (!w.buffer.empty() && w.buffer.back().revision > new_head)) {
      w.canceled = true;
      w.buffer.clear();
      w.cancel_status = make_status(
          Error::StaleState,
          fmt::format("the state was replaced by an older one (revision {})", new_head));
      continue;
    }
    w.synced = false;
  }
}

std::vector<WatchId> WatchHub::pending() const {
  std::vector<WatchId> out;
  for (const auto& [id, w] : watchers_) {
    if (w.canceled || !w.synced || !w.buffer.empty()) out.push_back(id);
  }
  return out;
}

const char* to_string(EventType type) {
  switch (type) {
    case EventType::Created: return "created";
    case EventType::Updated: return "updated";
    case EventType::Deleted: return "deleted";
  }
  return "?";
}

}  // namespace coord::kv
