// A blocking client of the client port, for coordctl and as the base of the C++ client library.
// One TCP connection at a time, frames as in net/frame.h, deadlines with poll(2).
//
// call() finds a member that can answer: it starts with the last member that did, follows
// NotLeader hints to the leader's client address, and moves on to the next endpoint when a
// member is unreachable, says Unavailable or times out, with a short growing pause between
// rounds, until the overall timeout. A write keeps its session id and sequence across every
// retry, so the state machine applies it at most once however many attempts reach the log.
//
// watch() opens a WatchStream on a connection of its own: events in (revision, path) order,
// each exactly once, resumed on another member (from the first revision not yet fully
// delivered) when the member serving it fails, goes silent or ends the watch for a reason that
// another attempt can fix.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kv/command.h"
#include "net/client_messages.h"

namespace coord::net {

struct ClientOptions {
  std::vector<std::string> endpoints;  // host:port of client ports; hostnames are resolved
  // Overall bound on one call, retries included.
  std::chrono::milliseconds timeout{5000};
  // Bound on one attempt on one member, so that a member that accepted the connection but went
  // silent (paused, partitioned) does not use up the whole timeout.
  std::chrono::milliseconds attempt_timeout{2000};
  // 0: pick a random session for this client.
  kv::SessionId session_id = 0;
  // Polled while waiting (at least every 100 ms): once it returns true, calls and watch waits
  // give up at once with "interrupted" (coordctl sets it from SIGINT).
  std::function<bool()> interrupted;
};

class ClientSocket;

struct WatchOptions {
  kv::WatchKind kind = kv::WatchKind::Key;
  std::string path;
  kv::Revision start_revision = 0;  // 0: from the revision after the serving member's current one
  bool prev = false;                // events carry the node as it was before
  // A member that sends nothing (no events, no progress) for this long is taken for dead and
  // the stream resumes on another; members send progress every --watch-progress-ms. 0: never.
  std::chrono::milliseconds idle_timeout{10'000};
  // Resume (rather than end) when the member cancels the watch because this client fell behind
  // (WatchOverflow) or its state was replaced under the watch (StaleState).
  bool resume_after_overflow = true;
};

// What one wait on a watch stream brought.
struct WatchUpdate {
  std::vector<kv::Event> events;       // new ones only, in (revision, path) order
  kv::Revision progress_revision = 0;  // every event at or below it has been delivered
  bool ended = false;                  // the stream is over; `error` says why
  ErrorCode error = ErrorCode::Ok;
  std::string message;
  kv::Revision compact_revision = 0;  // with Compacted: where history starts now
};

class WatchStream {
 public:
  WatchStream(WatchStream&&) noexcept;
  WatchStream& operator=(WatchStream&&) noexcept;
  ~WatchStream();  // closes the connection; the member drops the watch

  // Waits up to `timeout` for events, progress or the end; nullopt when none came in time, or
  // when interrupted. After an ended update, every call returns that update again.
  std::optional<WatchUpdate> next(std::chrono::milliseconds timeout);
  // Where a resumed stream starts: the first revision whose events were not all delivered
  // (0 before the first member answered a watch started "from now").
  kv::Revision resume_revision() const;
  // The member serving the stream ("" while disconnected), and how often it resumed elsewhere.
  const std::string& endpoint() const;
  std::uint64_t resumes() const;

 private:
  friend class Client;
  struct Impl;
  explicit WatchStream(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends `request` (its id is assigned here) and returns the first answer that is not a
  // redirection or a retryable failure; when the timeout runs out first, the last failure
  // (Unavailable, Timeout, or NotLeader) with what went wrong in its message.
  ClientResponse call(ClientRequest request);

  // A write with this client's session and its next sequence.
  ClientResponse write(kv::Body body);
  // The lease's TTL, keep-alive count, keys and the leader's time left (LeaseTtl).
  ClientResponse lease_ttl(kv::LeaseId id);
  // A watch stream on its own connection (nothing is sent before the first next()).
  WatchStream watch(WatchOptions options);
  // Streams one member's state snapshot (kv/snapshot.h format) into `out`: the first endpoint
  // that starts sending. Each chunk must arrive within attempt_timeout; there is no overall
  // bound. On success the answer has total_bytes, revision and index (and no chunk); a stream
  // that breaks midway is not resumed (`out` then holds a prefix: discard it).
  ClientResponse save_snapshot(std::ostream& out);

  kv::SessionId session_id() const { return session_id_; }
  // The endpoint that answered last ("" before the first answer).
  const std::string& endpoint() const { return current_endpoint_; }

  // One call to one endpoint, no redirects or retries (coordctl status asks each member).
  ClientResponse call_endpoint(const std::string& endpoint, ClientRequest request);

 private:
  std::optional<ClientResponse> attempt(const std::string& endpoint, const ClientRequest& request,
                                        std::chrono::steady_clock::time_point deadline, std::string* error);

  ClientOptions options_;
  kv::SessionId session_id_;
  std::uint64_t next_sequence_ = 1;
  std::uint64_t next_request_id_ = 1;
  std::string current_endpoint_;
  std::unique_ptr<ClientSocket> socket_;  // connected to current_endpoint_, when set
};

// "host:port,host:port" to a list; empty items are skipped.
std::vector<std::string> split_endpoints(const std::string& text);

}  // namespace coord::net
