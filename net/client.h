// A blocking client of the client port, for coordctl and as the base of the C++ client library.
// One TCP connection at a time, frames as in net/frame.h, deadlines with poll(2).
//
// call() finds a member that can answer: it starts with the last member that did, follows
// NotLeader hints to the leader's client address, and moves on to the next endpoint when a
// member is unreachable, says Unavailable or times out, with a short growing pause between
// rounds, until the overall timeout. A write keeps its session id and sequence across every
// retry, so the state machine applies it at most once however many attempts reach the log.
#pragma once

#include <chrono>
#include <cstdint>
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

  kv::SessionId session_id() const { return session_id_; }
  // The endpoint that answered last ("" before the first answer).
  const std::string& endpoint() const { return current_endpoint_; }

  // One call to one endpoint, no redirects or retries (coordctl status asks each member).
  ClientResponse call_endpoint(const std::string& endpoint, ClientRequest request);

 private:
  class Socket;

  std::optional<ClientResponse> attempt(const std::string& endpoint, const ClientRequest& request,
                                        std::chrono::steady_clock::time_point deadline, std::string* error);

  ClientOptions options_;
  kv::SessionId session_id_;
  std::uint64_t next_sequence_ = 1;
  std::uint64_t next_request_id_ = 1;
  std::string current_endpoint_;
  std::unique_ptr<Socket> socket_;  // connected to current_endpoint_, when set
};

// "host:port,host:port" to a list; empty items are skipped.
std::vector<std::string> split_endpoints(const std::string& text);

}  // namespace coord::net
