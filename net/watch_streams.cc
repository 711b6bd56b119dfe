#include "net/watch_streams.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>
#include <vector>

namespace coord::net {

namespace {

// Wire bytes of an event, roughly: what decides how many go in one frame.
std::size_t event_bytes(const kv::Event& e) {
  return 96 + e.path.size() + (e.node ? 64 + e.node->value.size() : 0) + (e.prev ? 64 + e.prev->value.size() : 0);
}

ClientResponse stream_frame(std::uint64_t request_id, kv::WatchId id) {
  ClientResponse r;
  r.id = request_id;
  r.watch_id = id;
  return r;
}

}  // namespace

ClientResponse WatchStreams::open(ConnectionId connection, const ClientRequest& request, kv::StateMachine& sm) {
  auto& mine = by_connection_[connection];
  if (mine.size() >= options_.watches_per_connection_max) {
    if (mine.empty()) by_connection_.erase(connection);
    return error_response(request.id, ErrorCode::TooManyWatchers,
                          fmt::format("a connection may hold at most {} watches", options_.watches_per_connection_max));
  }
  kv::WatchRequest w;
  w.filter.kind = request.watch_kind;
  w.filter.path = request.path;
  w.start_revision = request.revision;
  w.prev_value = request.prev;
  const kv::WatchCreated created = sm.watch(w);
  if (!created.status.ok()) {
    if (mine.empty()) by_connection_.erase(connection);
    ClientResponse r = error_response(request.id, from_kv(created.status.error), created.status.message);
    r.compact_revision = created.status.compact_revision;
    return r;
  }
  mine.insert(created.id);
  streams_[created.id] = Stream{connection, request.id, tick_, 0};
  ClientResponse r = stream_frame(request.id, created.id);
  r.revision = created.start_revision;
  return r;
}

ClientResponse WatchStreams::cancel(ConnectionId connection, const ClientRequest& request, kv::StateMachine& sm) {
  const auto it = streams_.find(request.watch_id);
  if (it == streams_.end() || it->second.connection != connection) {
    return error_response(request.id, ErrorCode::UnknownWatch,
                          fmt::format("no watch {} on this connection", request.watch_id));
  }
  (void)sm.cancel_watch(request.watch_id);
  forget(request.watch_id);
  ClientResponse r;
  r.id = request.id;
  r.watch_id = request.watch_id;
  return r;
}

void WatchStreams::connection_closed(ConnectionId connection, kv::StateMachine& sm) {
  const auto it = by_connection_.find(connection);
  if (it == by_connection_.end()) return;
  for (kv::WatchId id : it->second) {
    (void)sm.cancel_watch(id);
    streams_.erase(id);
  }
  by_connection_.erase(it);
}

void WatchStreams::forget(kv::WatchId id) {
  const auto it = streams_.find(id);
  if (it == streams_.end()) return;
  const auto mine = by_connection_.find(it->second.connection);
  if (mine != by_connection_.end()) {
    mine->second.erase(id);
    if (mine->second.empty()) by_connection_.erase(mine);
  }
  streams_.erase(it);
}

void WatchStreams::send_poll(kv::WatchId id, Stream& stream, kv::WatchResponse polled, const Send& send) {
  stream.last_frame_tick = tick_;
  if (polled.canceled) {
    ClientResponse r = stream_frame(stream.request_id, id);
    r.canceled = true;
    r.error = from_kv(polled.cancel_status.error);
    r.message = polled.cancel_status.message;
    r.compact_revision = polled.cancel_status.compact_revision;
    r.progress_revision = polled.progress_revision;
    const ConnectionId connection = stream.connection;
    forget(id);  // `stream` is gone from here on
    send(connection, r);
    return;
  }
  if (polled.events.empty() && polled.progress_revision <= stream.progress_sent) return;
  ClientResponse frame = stream_frame(stream.request_id, id);
  std::size_t frame_bytes = 0;
  for (kv::Event& e : polled.events) {
    const std::size_t bytes = event_bytes(e);
    if (!frame.events.empty() &&
        (frame.events.size() >= options_.frame_events_max || frame_bytes + bytes > options_.frame_bytes_max)) {
      send(stream.connection, frame);
      frame.events.clear();
      frame_bytes = 0;
    }
    frame_bytes += bytes;
    frame.events.push_back(std::move(e));
  }
  frame.progress_revision = polled.progress_revision;
  stream.progress_sent = std::max(stream.progress_sent, polled.progress_revision);
  send(stream.connection, frame);
}

void WatchStreams::deliver(kv::StateMachine& sm, const QueuedBytes& queued, const Send& send) {
  if (streams_.empty()) return;
  for (kv::WatchId id : sm.pending_watches()) {
    const auto it = streams_.find(id);
    if (it == streams_.end()) {
      // Not ours (cannot happen: every watcher is opened here); do not let it pile up.
      (void)sm.cancel_watch(id);
      continue;
    }
    if (queued(it->second.connection) >= options_.send_queue_bytes_max) {
      // No room: leave the events in the hub, which cancels this watcher once it holds too many.
      // A poll for progress only still reports that cancellation.
      kv::WatchResponse polled = sm.poll_watch(id, 0);
      if (polled.canceled) send_poll(id, it->second, std::move(polled), send);
      continue;
    }
    send_poll(id, it->second, sm.poll_watch(id, options_.frame_events_max), send);
  }
}

void WatchStreams::heartbeat(kv::StateMachine& sm, std::uint64_t tick, const QueuedBytes& queued, const Send& send) {
  tick_ = tick;
  if (streams_.empty() || options_.progress_interval_ticks == 0) return;
  const std::vector<kv::WatchId> pending = sm.pending_watches();
  std::vector<kv::WatchId> due;
  for (const auto& [id, stream] : streams_) {
    if (tick_ < stream.last_frame_tick + options_.progress_interval_ticks) continue;
    if (std::binary_search(pending.begin(), pending.end(), id)) continue;  // deliver() has it
    if (queued(stream.connection) >= options_.send_queue_bytes_max) continue;
    due.push_back(id);
  }
  for (kv::WatchId id : due) {
    const auto it = streams_.find(id);
    if (it == streams_.end()) continue;
    kv::WatchResponse polled = sm.poll_watch(id, 0);
    if (polled.canceled) {
      send_poll(id, it->second, std::move(polled), send);
      continue;
    }
    ClientResponse r = stream_frame(it->second.request_id, id);
    r.progress_revision = polled.progress_revision;
    it->second.progress_sent = std::max(it->second.progress_sent, polled.progress_revision);
    it->second.last_frame_tick = tick_;
    send(it->second.connection, r);
  }
}

void WatchStreams::end_all(ErrorCode error, const std::string& message, kv::StateMachine& sm, const Send& send) {
  for (const auto& [id, stream] : streams_) {
    (void)sm.cancel_watch(id);
    ClientResponse r = stream_frame(stream.request_id, id);
    r.canceled = true;
    r.error = error;
    r.message = message;
    send(stream.connection, r);
  }
  streams_.clear();
  by_connection_.clear();
}

}  // namespace coord::net
