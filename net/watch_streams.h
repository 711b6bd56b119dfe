// The client port's watch streams on one replica: which connection and request each of the
// state machine's watchers (kv::WatchHub) belongs to, and the frames that carry their events.
//
// A client opens a watch with a Watch request and gets one answer (the watch id and resolved
// start revision, or why not); then the replica sends further responses with that request's id
// and the watch id whenever the hub has something for it: events, progress, or one last
// cancellation. deliver() runs after every applied batch (and on every loop iteration, so that
// a connection that drained its queue gets the rest); a watcher whose connection already holds
// send_queue_bytes_max of output is not polled, so its events pile up in the hub, which cancels
// that watcher alone (WatchOverflow) once it holds watch_buffer_events_max of them: nothing
// else waits for a slow client, and its other requests on the connection are unaffected.
//
// Events go out in frames of at most frame_events_max events / frame_bytes_max bytes (at least
// one event each). One revision may span several frames; the last frame of a poll carries the
// progress revision (everything at or below it was sent), the frames before it carry 0. An idle
// watcher gets a progress-only frame every progress_interval_ticks, so a client can tell a
// quiet watch from a dead connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <set>

#include "kv/state_machine.h"
#include "net/client_messages.h"
#include "net/connection.h"

namespace coord::net {

struct WatchStreamOptions {
  std::size_t frame_events_max = 1'000;
  std::size_t frame_bytes_max = std::size_t{1} << 20;
  // Output queued on the connection beyond which its watchers are not polled.
  std::size_t send_queue_bytes_max = std::size_t{4} << 20;
  std::size_t watches_per_connection_max = 1'000;
  std::uint64_t progress_interval_ticks = 20;
};

class WatchStreams {
 public:
  using Send = std::function<void(ConnectionId, const ClientResponse&)>;
  using QueuedBytes = std::function<std::size_t(ConnectionId)>;

  explicit WatchStreams(const WatchStreamOptions& options) : options_(options) {}

  // A Watch request: registers the watcher and returns the answer to send (before any frame
  // of the stream).
  ClientResponse open(ConnectionId connection, const ClientRequest& request, kv::StateMachine& sm);
  // A WatchCancel request: only the connection that opened a watch may cancel it.
  ClientResponse cancel(ConnectionId connection, const ClientRequest& request, kv::StateMachine& sm);
  // The connection is gone: its watchers with it.
  void connection_closed(ConnectionId connection, kv::StateMachine& sm);

  // Polls every watcher the hub has something for whose connection has room, and sends.
  void deliver(kv::StateMachine& sm, const QueuedBytes& queued, const Send& send);
  // Once per tick: progress frames for watchers that sent nothing for a while.
  void heartbeat(kv::StateMachine& sm, std::uint64_t tick, const QueuedBytes& queued, const Send& send);
  // The replica stops serving: every stream ends with `error`.
  void end_all(ErrorCode error, const std::string& message, kv::StateMachine& sm, const Send& send);

  std::size_t size() const { return streams_.size(); }

 private:
  struct Stream {
    ConnectionId connection = 0;
    std::uint64_t request_id = 0;
    std::uint64_t last_frame_tick = 0;
    kv::Revision progress_sent = 0;
  };

  // Sends one poll's answer as frames; forgets the stream when it was cancelled.
  void send_poll(kv::WatchId id, Stream& stream, kv::WatchResponse polled, const Send& send);
  void forget(kv::WatchId id);

  WatchStreamOptions options_;
  std::map<kv::WatchId, Stream> streams_;
  std::map<ConnectionId, std::set<kv::WatchId>> by_connection_;
  std::uint64_t tick_ = 0;
};

}  // namespace coord::net
