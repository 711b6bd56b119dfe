// Watches. A WatchHub keeps the watchers of one replica; the state machine feeds it the events
// of each applied batch right after the batch commits, and the host drains each watcher by
// polling. No threads and no clocks: the host decides when to poll, and everything is
// deterministic.
//
// Guarantees, per watcher: every matching event with revision >= its start revision is delivered
// exactly once, in (revision, path) order, without gaps, and the events of one revision always
// arrive together. A watcher starting in the past first replays from the retained history (a
// bounded amount per poll), then follows live events. A start below the compaction point is
// refused with Compacted (carrying the compaction revision); so is a catching-up watcher whose
// history is compacted away under it. A synced watcher that lets more than
// watch_buffer_events_max events pile up is cancelled with WatchOverflow: applying and other
// watchers never wait for it. Every poll reports progress: the revision up to which the
// watcher has received everything, which for an idle watcher is the current revision.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "kv/error.h"
#include "kv/event.h"
#include "kv/limits.h"
#include "kv/types.h"

namespace coord::kv {

enum class WatchKind : std::uint8_t {
  Key = 0,       // the node at `path`
  Subtree = 1,   // `path` and everything below it ("/a" covers "/a/x", never "/ab")
  Children = 2,  // the direct children of `path`
};

struct WatchFilter {
  WatchKind kind = WatchKind::Key;
  std::string path;

  bool matches(std::string_view event_path) const;
};

struct WatchRequest {
  WatchFilter filter;
  Revision start_revision = 0;  // 0: from the next revision on
  bool prev_value = false;      // include each event's previous node
};

struct WatchResponse {
  std::vector<Event> events;
  // Every matching event at or below this revision has now been delivered.
  Revision progress_revision = 0;
  bool canceled = false;  // the watcher is gone; cancel_status says why
  Status cancel_status;
};

// Events read back from the history, as the hub asks for them while a watcher catches up.
struct ReplayChunk {
  std::vector<Event> events;       // whole revisions, (revision, path) order, prev included
  Revision next_revision = 0;      // the first revision not scanned yet
  bool reached_head = false;       // scanned everything up to the store's revision
};

// The hub's view of the store's history (implemented by the state machine).
class EventSource {
 public:
  virtual ~EventSource() = default;
  virtual Revision head_revision() const = 0;
  virtual Revision history_start() const = 0;  // the compaction revision
  // Matching events from revision `from` on. Stops at a revision boundary once it has
  // `events_soft_max` events or has scanned `rows_max` rows.
  virtual ReplayChunk replay(const WatchFilter& filter, Revision from,
                             std::size_t events_soft_max, std::size_t rows_max) const = 0;
};

struct WatchCreated {
  Status status;
  WatchId id = 0;
  Revision start_revision = 0;  // the resolved start
};

class WatchHub {
 public:
  WatchHub(const Limits& limits, Revision head);

  WatchCreated add(const WatchRequest& request, const EventSource& source);
  // Hands out buffered events, whole revisions, at least one when any is pending and
  // events_max > 0 (events_max == 0 asks for progress only). A cancelled watcher reports why
  // once and is then forgotten.
  WatchResponse poll(WatchId id, const EventSource& source, std::size_t events_max);
  Status cancel(WatchId id);

  // The events of one committed batch (revisions in (head, new_head], in order).
  void publish(const std::vector<Event>& events, Revision new_head);
  // The state was replaced (snapshot restore): every watcher catches up from the new history.
  void reset(Revision new_head);

  // Watchers a poll would give something: events, history to catch up on, or a cancellation.
  std::vector<WatchId> pending() const;
  std::size_t size() const { return watchers_.size(); }
  Revision head() const { return head_; }

 private:
  struct Watcher {
    WatchFilter filter;
    bool prev_value = false;
    Revision next_revision = 0;  // the first revision not queued yet
    Revision delivered = 0;      // progress: everything at or below it was handed out
    bool synced = false;         // queued everything up to head_: receives live events
    std::deque<Event> buffer;    // queued, not yet handed out
    bool canceled = false;
    Status cancel_status;
  };

  void enqueue(Watcher& w, Event event);
  void overflow(Watcher& w);
  void catch_up(Watcher& w, const EventSource& source, std::size_t events_max);

  Limits limits_;
  Revision head_ = 0;
  WatchId next_id_ = 1;
  std::map<WatchId, Watcher> watchers_;
};

}  // namespace coord::kv
