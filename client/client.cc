#include "client/client.h"

#include <pthread.h>
#include <signal.h>
#include <uv.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>

#include "kv/codec.h"
#include "net/client_codec.h"
#include "net/client_messages.h"
#include "net/client_retry.h"
#include "net/connection.h"
#include "net/uv_util.h"

namespace coord {

namespace {

using net::ClientRequest;
using net::ClientResponse;
using net::ErrorCode;

Millis steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Requests held for a connection that is still being dialled, per member.
constexpr std::size_t link_waiting_frames_max = 10'000;
// Bytes queued on one connection before sends to it fail (and it is closed).
constexpr std::size_t link_send_queue_bytes_max = std::size_t{64} << 20;

// Error codes below 100 are the state machine's (kv::Error, same numbers): the service decided.
bool decided(ErrorCode code) { return static_cast<std::uint16_t>(code) < 100; }

kv::Status status_of(const ClientResponse& r) {
  kv::Status s;
  s.error = static_cast<kv::Error>(static_cast<std::uint16_t>(r.error));
  s.message = r.message;
  s.compact_revision = r.compact_revision;
  return s;
}

WriteOutcome write_outcome(ClientResponse r) {
  if (r.result) return WriteOutcome{std::move(r.result), {}};
  if (decided(r.error) && r.error != ErrorCode::Ok) {
    // Refused before it reached the log (an invalid request): not applied.
    kv::Result result;
    result.status = status_of(r);
    return WriteOutcome{std::move(result), {}};
  }
  return WriteOutcome{std::nullopt, fmt::format("{}: {}", net::to_string(r.error), r.message)};
}

template <typename T>
ReadOutcome<T> read_outcome(const ClientResponse& r, T value) {
  ReadOutcome<T> out;
  if (!decided(r.error)) return out;  // no member answered in time
  out.reached = true;
  out.read.status = status_of(r);
  out.read.revision = r.revision;
  if (r.ok()) out.read.value = std::move(value);
  return out;
}

std::string ms_text(std::chrono::milliseconds d) { return fmt::format("{} ms", d.count()); }

}  // namespace

struct Client::Impl final : net::Connection::Handler {
  explicit Impl(ClientOptions o);
  ~Impl() override;

  // --- Any thread.
  void post_task(std::function<void()> task);
  Millis timeout_of(const CallOptions& call) const {
    return (call.timeout.count() > 0 ? call.timeout : options.call_timeout).count();
  }
  // A call's deadline: `timeout_ms` from now, rounded up (now_ms() truncates), so that no call
  // gives up before its timeout has passed.
  static Millis deadline_after(Millis timeout_ms) { return steady_ms() + timeout_ms + 1; }
  void start();
  void stop();

  ClientOptions options;
  std::thread thread;
  std::thread::id loop_thread;
  std::atomic<WatchHandle> next_watch{1};
  struct Counters {
    std::atomic<std::uint64_t> calls{0}, attempts{0}, redirects{0}, gave_up{0}, connects{0}, watch_resumes{0};
  } counters;
  std::vector<kv::SessionId> session_ids;  // fixed at construction

  std::mutex mutex;  // guards inbox and stopping
  std::vector<std::function<void()>> inbox;
  bool stopping = false;

  // --- The loop thread only, from here on.
  uv_loop_t loop{};
  uv_async_t wake{};
  uv_timer_t timer{};
  bool stopped = false;

  // Timers, by due time (ms, steady clock); one uv timer is armed for the earliest.
  std::multimap<Millis, std::function<void()>> timers;
  Millis armed_at = std::numeric_limits<Millis>::max();
  void schedule(Millis at, std::function<void()> action);
  void arm();
  void on_timer();
  void on_wake();

  // One connection (a "link") per member, shared by every call and watch sent there. A link
  // that fails or is given up is replaced by a new one (a new id) on the next send, while
  // whatever waited on the old one fails over.
  struct Link {
    std::string endpoint;
    net::Connection* connection = nullptr;  // null while resolving
    bool connected = false;
    std::vector<std::string> frames;  // encoded requests waiting for the connect
  };
  std::map<std::uint64_t, Link> links;  // by link id
  std::map<std::string, std::uint64_t> link_by_endpoint;  // the current link of each member
  std::map<net::Connection*, std::uint64_t> link_of;
  std::uint64_t next_link = 1;
  struct Resolve {
    uv_getaddrinfo_t req{};
    Impl* impl = nullptr;
    std::uint64_t link = 0;
  };
  std::set<Resolve*> resolves;
  // nullopt when sent (or queued for the connect), with the link in `*link`; else why not.
  std::optional<std::string> send(const std::string& endpoint, const ClientRequest& request, std::uint64_t* link);
  std::optional<std::string> dial(std::uint64_t id);
  std::optional<std::string> connect_to(std::uint64_t id, const sockaddr* address);
  void on_resolved(Resolve* r, int status, addrinfo* found);
  // Gives up a link: it stops taking requests now, and what waits on it fails over.
  void close_link(std::uint64_t id, const std::string& why);
  void fail_link(std::uint64_t id, const std::string& why);
  void on_frame(net::Connection& connection, net::Frame frame) override;
  void on_frame_error(net::Connection& connection, net::FrameError error, const std::string& message) override;
  void on_connected(net::Connection& connection, int status) override;
  void on_closed(net::Connection& connection, const std::string& reason) override;

  // Requests in flight, by their wire id: a call's current attempt, or a watch's stream.
  struct Waiter {
    bool watch = false;
    std::uint64_t id = 0;  // call id or watch handle
    std::uint64_t link = 0;
  };
  std::map<std::uint64_t, Waiter> waiters;
  std::uint64_t next_wire = 1;
  // The member that last gave a final answer: where the next call starts.
  std::string preferred;

  // A call: one request retried across members until its deadline.
  struct Call {
    ClientRequest request;
    Millis deadline = 0;
    Millis timeout_ms = 0;
    std::optional<net::MemberRoute> route;
    std::uint64_t attempt = 0;  // attempts made: timers of earlier ones see another number
    std::uint64_t wire_id = 0;  // the attempt in flight (0: none)
    std::string target;         // the member it went to
    std::uint64_t link = 0;     // and the link
    ClientResponse last;        // the latest failure
    std::function<void(ClientResponse)> done;
  };
  std::map<std::uint64_t, Call> calls;
  std::uint64_t next_call = 1;
  void start_call(ClientRequest request, Millis deadline, Millis timeout_ms, std::function<void(ClientResponse)> done);
  void start_attempt(std::uint64_t id);
  void on_attempt_deadline(std::uint64_t id, std::uint64_t attempt);
  void attempt_failed(std::uint64_t id, ClientResponse failure);
  void on_call_answer(std::uint64_t id, ClientResponse response);
  void retry_later(std::uint64_t id);
  void finish(std::uint64_t id, ClientResponse response);

  // Writes: each lane is a session with one write in flight; the rest wait in order.
  struct Lane {
    kv::SessionId session = 0;
    std::uint64_t next_sequence = 1;
    bool busy = false;
  };
  std::vector<Lane> lanes;
  struct QueuedWrite {
    kv::Body body;
    Millis deadline = 0;
    Millis timeout_ms = 0;
    std::function<void(const WriteOutcome&)> done;
  };
  std::deque<QueuedWrite> write_queue;
  void enqueue_write(QueuedWrite write);
  void dispatch_writes();

  // Watches, each on the connection of the member serving it.
  struct Watch {
    kv::WatchRequest request;
    WatchCallbacks callbacks;
    net::WatchCursor cursor{0};
    std::size_t next_endpoint = 0;
    std::string target;         // the member serving it ("" while not open)
    std::uint64_t link = 0;     // and the link
    std::uint64_t wire_id = 0;  // its Watch request on `link` (0: none)
    kv::WatchId watch_id = 0;   // 0 until the member answered
    Millis last_frame = 0;
    std::uint64_t generation = 0;  // of opens and drops: timers of an earlier one are stale
    std::chrono::milliseconds pause = net::retry_pause_min;
    bool opened_once = false;
  };
  std::map<WatchHandle, Watch> watches;
  void add_watch(WatchHandle handle, kv::WatchRequest request, WatchCallbacks callbacks);
  void open_watch(WatchHandle handle);
  void on_watch_frame(WatchHandle handle, ClientResponse response);
  void drop_watch(Watch& w, bool cancel_on_member);
  void reopen_later(WatchHandle handle);
  void arm_idle_check(WatchHandle handle);
  void on_watch_deadline(WatchHandle handle, std::uint64_t generation, bool idle_check);
  void end_watch(WatchHandle handle, const kv::Status& why);
  void cancel_watch(WatchHandle handle);

  void shut_down();
};

// ---------------------------------------------------------------------------------------------
// Start, stop, the inbox and timers

Client::Impl::Impl(ClientOptions o) : options(std::move(o)) {
  if (options.endpoints.empty()) throw std::invalid_argument("coord::Client: no endpoints");
  options.write_lanes = std::max<std::size_t>(1, options.write_lanes);
  std::random_device rd;
  for (std::size_t i = 0; i < options.write_lanes; ++i) {
    kv::SessionId id = i == 0 ? options.session_id : 0;
    while (id == 0 || std::find(session_ids.begin(), session_ids.end(), id) != session_ids.end()) {
      id = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    }
    session_ids.push_back(id);
    lanes.push_back(Lane{id, 1, false});
  }
  if (const int rc = uv_loop_init(&loop); rc < 0) {
    throw std::runtime_error(fmt::format("coord::Client: uv_loop_init: {}", net::uv_error_text(rc)));
  }
  wake.data = this;
  timer.data = this;
  // Neither fails on a freshly initialized loop (they only register the handle).
  int rc = uv_async_init(&loop, &wake, [](uv_async_t* a) { static_cast<Impl*>(a->data)->on_wake(); });
  if (rc == 0) rc = uv_timer_init(&loop, &timer);
  if (rc < 0) {
    (void)uv_loop_close(&loop);
    throw std::runtime_error(fmt::format("coord::Client: {}", net::uv_error_text(rc)));
  }
}

Client::Impl::~Impl() {
  // The thread ran the loop until every handle was closed.
  (void)uv_loop_close(&loop);
}

void Client::Impl::start() {
  // The loop thread takes no signals: they belong to the application's threads. In particular a
  // write to a member that went away returns EPIPE there instead of raising SIGPIPE.
  sigset_t all;
  sigset_t old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  thread = std::thread([this] { (void)uv_run(&loop, UV_RUN_DEFAULT); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  loop_thread = thread.get_id();
}

void Client::Impl::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    stopping = true;
    uv_async_send(&wake);  // under the lock: the handle is closed only after `stopping` is seen
  }
  if (thread.joinable()) thread.join();
}

void Client::Impl::post_task(std::function<void()> task) {
  std::lock_guard<std::mutex> lock(mutex);
  if (stopping) return;  // dropped: the client is going away
  inbox.push_back(std::move(task));
  if (inbox.size() == 1) uv_async_send(&wake);
}

void Client::Impl::on_wake() {
  if (stopped) return;
  std::vector<std::function<void()>> tasks;
  bool stop_now = false;
  {
    std::lock_guard<std::mutex> lock(mutex);
    tasks.swap(inbox);
    stop_now = stopping;
  }
  if (stop_now) {
    tasks.clear();
    shut_down();
    return;
  }
  for (auto& task : tasks) {
    if (stopped) break;
    task();
  }
}

void Client::Impl::schedule(Millis at, std::function<void()> action) {
  if (stopped) return;
  timers.emplace(at, std::move(action));
  arm();
}

void Client::Impl::arm() {
  if (stopped) return;
  if (timers.empty()) {
    (void)uv_timer_stop(&timer);
    armed_at = std::numeric_limits<Millis>::max();
    return;
  }
  const Millis earliest = timers.begin()->first;
  if (earliest == armed_at) return;
  armed_at = earliest;
  uv_update_time(&loop);
  const Millis delay = std::max<Millis>(0, earliest - steady_ms());
  // uv_timer_start on an initialized timer only fails for a null callback.
  (void)uv_timer_start(
      &timer, [](uv_timer_t* t) { static_cast<Impl*>(t->data)->on_timer(); }, static_cast<std::uint64_t>(delay), 0);
}

void Client::Impl::on_timer() {
  armed_at = std::numeric_limits<Millis>::max();
  const Millis now = steady_ms();
  std::vector<std::function<void()>> due;
  while (!timers.empty() && timers.begin()->first <= now) {
    auto node = timers.extract(timers.begin());
    due.push_back(std::move(node.mapped()));
  }
  for (auto& action : due) {
    if (stopped) return;
    action();
  }
  arm();
}

void Client::Impl::shut_down() {
  stopped = true;
  // Calls end now, on this thread: writes with an unknown outcome, reads unreached.
  std::map<std::uint64_t, Call> ending;
  ending.swap(calls);
  waiters.clear();
  for (auto& [id, call] : ending) {
    counters.gave_up.fetch_add(1);
    if (call.done) call.done(net::error_response(0, ErrorCode::Unavailable, "the client is closing"));
  }
  std::deque<QueuedWrite> queued;
  queued.swap(write_queue);
  for (QueuedWrite& w : queued) {
    if (w.done) w.done(WriteOutcome{std::nullopt, "the client is closing (never sent)"});
  }
  // Dropped silently: whatever they hold (recipe objects) goes now, on this thread.
  watches.clear();
  timers.clear();
  for (auto& [connection, link] : link_of) connection->close_detached("the client is closing");
  link_of.clear();
  links.clear();
  link_by_endpoint.clear();
  for (Resolve* r : resolves) (void)uv_cancel(reinterpret_cast<uv_req_t*>(&r->req));
  (void)uv_timer_stop(&timer);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&wake), nullptr);
  // uv_run returns once the connections and resolutions have finished closing.
}

// ---------------------------------------------------------------------------------------------
// Connections

std::optional<std::string> Client::Impl::send(const std::string& endpoint, const ClientRequest& request,
                                              std::uint64_t* link_id) {
  std::uint64_t id = 0;
  if (const auto current = link_by_endpoint.find(endpoint); current != link_by_endpoint.end()) {
    id = current->second;
  } else {
    id = next_link++;
    links[id].endpoint = endpoint;
    link_by_endpoint[endpoint] = id;
    if (auto error = dial(id)) {
      links.erase(id);
      link_by_endpoint.erase(endpoint);
      return error;
    }
  }
  Link& link = links.at(id);
  std::string payload = net::encode_request(request);
  if (link.connected) {
    if (!link.connection->send_frame(net::FrameKind::ClientRequest, payload)) {
      close_link(id, "send queue full");
      return std::string("send queue full");
    }
  } else {
    if (link.frames.size() >= link_waiting_frames_max) return std::string("too many requests waiting for the connect");
    link.frames.push_back(std::move(payload));
  }
  *link_id = id;
  return std::nullopt;
}

std::optional<std::string> Client::Impl::dial(std::uint64_t id) {
  counters.connects.fetch_add(1);
  const std::string endpoint = links.at(id).endpoint;
  std::string error;
  if (const auto address = net::parse_socket_address(endpoint, &error)) {
    return connect_to(id, reinterpret_cast<const sockaddr*>(&*address));
  }
  // Not numeric: resolve on libuv's thread pool.
  const std::size_t colon = endpoint.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == endpoint.size()) return std::string("not host:port");
  std::string host = endpoint.substr(0, colon);
  const std::string port = endpoint.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  auto* r = new Resolve;
  r->impl = this;
  r->link = id;
  r->req.data = r;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  const int rc = uv_getaddrinfo(
      &loop, &r->req,
      [](uv_getaddrinfo_t* req, int status, addrinfo* found) {
        auto* resolve = static_cast<Resolve*>(req->data);
        resolve->impl->on_resolved(resolve, status, found);
      },
      host.c_str(), port.c_str(), &hints);
  if (rc < 0) {
    delete r;
    return fmt::format("resolve: {}", net::uv_error_text(rc));
  }
  resolves.insert(r);
  return std::nullopt;
}

void Client::Impl::on_resolved(Resolve* r, int status, addrinfo* found) {
  resolves.erase(r);
  const std::uint64_t id = r->link;
  delete r;
  std::optional<std::string> error;
  if (stopped || links.count(id) == 0) {
    // Closing, or the link was given up meanwhile.
  } else if (status < 0 || found == nullptr) {
    error = fmt::format("resolve: {}", net::uv_error_text(status < 0 ? status : UV_EAI_NONAME));
  } else {
    error = connect_to(id, found->ai_addr);
  }
  if (found != nullptr) uv_freeaddrinfo(found);
  if (error) fail_link(id, *error);
}

std::optional<std::string> Client::Impl::connect_to(std::uint64_t id, const sockaddr* address) {
  net::ConnectionOptions connection_options;
  connection_options.frame_payload_bytes_max = net::client_response_bytes_max;
  connection_options.send_queue_bytes_max = link_send_queue_bytes_max;
  net::Connection* c = nullptr;
  try {
    c = net::Connection::create(&loop, *this, connection_options);
  } catch (const net::UvError& e) {
    return std::string(e.what());
  }
  links.at(id).connection = c;
  link_of[c] = id;
  // A connect that cannot start closes the connection: on_closed fails what waits for it.
  (void)c->connect(address);
  return std::nullopt;
}

void Client::Impl::close_link(std::uint64_t id, const std::string& why) {
  auto it = links.find(id);
  if (it == links.end()) return;
  // New requests for the member get a new link at once.
  auto current = link_by_endpoint.find(it->second.endpoint);
  if (current != link_by_endpoint.end() && current->second == id) link_by_endpoint.erase(current);
  if (it->second.connection != nullptr) {
    it->second.connection->close(why);  // on_closed (later) fails what still waits on it
  } else {
    fail_link(id, why);  // still resolving: on_resolved will find it gone
  }
}

void Client::Impl::fail_link(std::uint64_t id, const std::string& why) {
  auto it = links.find(id);
  if (it == links.end()) return;
  const std::string endpoint = it->second.endpoint;
  auto current = link_by_endpoint.find(endpoint);
  if (current != link_by_endpoint.end() && current->second == id) link_by_endpoint.erase(current);
  links.erase(it);
  std::vector<Waiter> lost;
  for (auto w = waiters.begin(); w != waiters.end();) {
    if (w->second.link == id) {
      lost.push_back(w->second);
      w = waiters.erase(w);
    } else {
      ++w;
    }
  }
  for (const Waiter& w : lost) {
    if (w.watch) {
      auto found = watches.find(w.id);
      if (found == watches.end()) continue;
      drop_watch(found->second, false);
      reopen_later(w.id);
    } else {
      attempt_failed(w.id, net::error_response(0, ErrorCode::Unavailable, fmt::format("{}: {}", endpoint, why)));
    }
  }
}

void Client::Impl::on_connected(net::Connection& connection, int status) {
  if (status < 0) return;  // on_closed follows
  const auto it = link_of.find(&connection);
  if (it == link_of.end()) return;
  auto link = links.find(it->second);
  if (link == links.end()) return;
  link->second.connected = true;
  std::vector<std::string> frames;
  frames.swap(link->second.frames);
  for (const std::string& payload : frames) {
    if (!connection.send_frame(net::FrameKind::ClientRequest, payload)) {
      connection.close("send queue full");
      return;
    }
  }
}

void Client::Impl::on_frame(net::Connection& connection, net::Frame frame) {
  if (frame.kind != net::FrameKind::ClientResponse) return;  // a kind from a newer server: not ours
  const auto link = link_of.find(&connection);
  if (link == link_of.end()) return;
  std::string error;
  auto response = net::decode_response(frame.payload, &error);
  if (!response) {
    connection.close(fmt::format("undecodable response: {}", error));
    return;
  }
  const auto w = waiters.find(response->id);
  // Unknown ids: late answers to attempts given up, frames of dropped watches, answers to
  // WatchCancel. (Id 0, a request the server could not read, is never ours to match: such an
  // attempt times out.)
  if (w == waiters.end() || w->second.link != link->second) return;
  if (w->second.watch) {
    on_watch_frame(w->second.id, std::move(*response));
    return;
  }
  const std::uint64_t call = w->second.id;
  waiters.erase(w);
  on_call_answer(call, std::move(*response));
}

void Client::Impl::on_frame_error(net::Connection&, net::FrameError, const std::string&) {
  // The connection is closing; on_closed follows.
}

void Client::Impl::on_closed(net::Connection& connection, const std::string& reason) {
  const auto it = link_of.find(&connection);
  if (it == link_of.end()) return;
  const std::uint64_t id = it->second;
  link_of.erase(it);
  fail_link(id, reason);
}

// ---------------------------------------------------------------------------------------------
// Calls

void Client::Impl::start_call(ClientRequest request, Millis deadline, Millis timeout_ms,
                              std::function<void(ClientResponse)> done) {
  counters.calls.fetch_add(1);
  const std::uint64_t id = next_call++;
  Call& c = calls[id];
  c.request = std::move(request);
  c.deadline = deadline;
  c.timeout_ms = timeout_ms;
  c.route.emplace(options.endpoints, preferred);
  c.last = net::error_response(0, ErrorCode::Unavailable, "no member answered");
  c.done = std::move(done);
  start_attempt(id);
}

void Client::Impl::start_attempt(std::uint64_t id) {
  auto it = calls.find(id);
  if (it == calls.end()) return;
  Call& c = it->second;
  const Millis now = steady_ms();
  if (now >= c.deadline) {
    counters.gave_up.fetch_add(1);
    ClientResponse last = c.last;
    last.message = fmt::format("gave up after {} ms: {}", c.timeout_ms, last.message);
    finish(id, std::move(last));
    return;
  }
  ++c.attempt;
  counters.attempts.fetch_add(1);
  c.wire_id = next_wire++;
  c.request.id = c.wire_id;
  c.target = c.route->target();
  if (auto error = send(c.target, c.request, &c.link)) {
    c.wire_id = 0;
    attempt_failed(id, net::error_response(0, ErrorCode::Unavailable, fmt::format("{}: {}", c.target, *error)));
    return;
  }
  waiters[c.wire_id] = Waiter{false, id, c.link};
  const Millis attempt_deadline = std::min(c.deadline, now + options.attempt_timeout.count());
  schedule(attempt_deadline, [this, id, attempt = c.attempt] { on_attempt_deadline(id, attempt); });
}

void Client::Impl::on_attempt_deadline(std::uint64_t id, std::uint64_t attempt) {
  auto it = calls.find(id);
  if (it == calls.end() || it->second.attempt != attempt || it->second.wire_id == 0) return;
  Call& c = it->second;
  waiters.erase(c.wire_id);
  c.wire_id = 0;
  if (steady_ms() >= c.deadline) {
    // The call's own time ran out, not the member's: nothing says the member is dead.
    c.last = net::error_response(0, ErrorCode::Timeout, fmt::format("{}: no answer yet", c.target));
    start_attempt(id);  // gives up
    return;
  }
  const std::uint64_t link = c.link;
  attempt_failed(id, net::error_response(0, ErrorCode::Unavailable, fmt::format("{}: no answer within {}", c.target,
                                                                                ms_text(options.attempt_timeout))));
  // A member that accepted the request and stays silent (paused, cut off) is taken for dead:
  // whatever else waits on it moves on too.
  close_link(link, "silent past the attempt timeout");
}

void Client::Impl::attempt_failed(std::uint64_t id, ClientResponse failure) {
  auto it = calls.find(id);
  if (it == calls.end()) return;
  Call& c = it->second;
  c.wire_id = 0;
  c.last = std::move(failure);
  c.route->next();
  retry_later(id);
}

void Client::Impl::retry_later(std::uint64_t id) {
  Call& c = calls.at(id);
  const Millis at = std::min(c.deadline, steady_ms() + c.route->take_pause().count());
  schedule(at, [this, id, attempt = c.attempt] {
    auto it = calls.find(id);
    if (it != calls.end() && it->second.attempt == attempt && it->second.wire_id == 0) start_attempt(id);
  });
}

void Client::Impl::on_call_answer(std::uint64_t id, ClientResponse response) {
  auto it = calls.find(id);
  if (it == calls.end()) return;
  Call& c = it->second;
  c.wire_id = 0;
  switch (net::classify(response)) {
    case net::Answer::Redirect:
      counters.redirects.fetch_add(1);
      c.last = response;
      if (c.route->follow(response)) {
        start_attempt(id);
      } else {
        retry_later(id);
      }
      return;
    case net::Answer::Retry:
      c.last = response;
      c.last.message = fmt::format("{}: {}", c.target, response.message);
      c.route->next();
      retry_later(id);
      return;
    case net::Answer::Final:
      preferred = c.target;
      finish(id, std::move(response));
      return;
  }
}

void Client::Impl::finish(std::uint64_t id, ClientResponse response) {
  auto node = calls.extract(id);
  if (node.empty()) return;
  if (node.mapped().done) node.mapped().done(std::move(response));
}

// ---------------------------------------------------------------------------------------------
// Writes

void Client::Impl::enqueue_write(QueuedWrite write) {
  if (write_queue.size() >= options.queued_writes_max) {
    if (write.done) write.done(WriteOutcome{std::nullopt, "too many writes queued (never sent)"});
    return;
  }
  write_queue.push_back(std::move(write));
  dispatch_writes();
}

void Client::Impl::dispatch_writes() {
  while (!stopped && !write_queue.empty()) {
    const auto lane = std::find_if(lanes.begin(), lanes.end(), [](const Lane& l) { return !l.busy; });
    if (lane == lanes.end()) return;
    QueuedWrite w = std::move(write_queue.front());
    write_queue.pop_front();
    if (steady_ms() >= w.deadline) {
      counters.gave_up.fetch_add(1);
      if (w.done) w.done(WriteOutcome{std::nullopt, "timed out waiting for a free session (never sent)"});
      continue;
    }
    lane->busy = true;
    kv::Command command;
    command.session_id = lane->session;
    command.sequence = lane->next_sequence++;
    command.body = std::move(w.body);
    ClientRequest request;
    request.kind = net::RequestKind::Write;
    request.command = kv::encode_command(command);
    const std::size_t index = static_cast<std::size_t>(lane - lanes.begin());
    start_call(std::move(request), w.deadline, w.timeout_ms,
               [this, index, done = std::move(w.done)](ClientResponse r) {
                 lanes[index].busy = false;
                 if (done) done(write_outcome(std::move(r)));
                 dispatch_writes();
               });
  }
}

// ---------------------------------------------------------------------------------------------
// Watches

void Client::Impl::add_watch(WatchHandle handle, kv::WatchRequest request, WatchCallbacks callbacks) {
  Watch& w = watches[handle];
  w.cursor = net::WatchCursor(request.start_revision);
  w.request = std::move(request);
  w.callbacks = std::move(callbacks);
  const auto found = std::find(options.endpoints.begin(), options.endpoints.end(), preferred);
  if (found != options.endpoints.end()) w.next_endpoint = static_cast<std::size_t>(found - options.endpoints.begin());
  open_watch(handle);
}

void Client::Impl::open_watch(WatchHandle handle) {
  auto it = watches.find(handle);
  if (it == watches.end()) return;
  Watch& w = it->second;
  ++w.generation;
  const std::string target = options.endpoints[w.next_endpoint % options.endpoints.size()];
  w.next_endpoint = (w.next_endpoint + 1) % options.endpoints.size();
  ClientRequest request;
  request.id = next_wire++;
  request.kind = net::RequestKind::Watch;
  request.path = w.request.filter.path;
  request.watch_kind = w.request.filter.kind;
  request.revision = w.cursor.resume_revision();
  request.prev = w.request.prev_value;
  std::uint64_t link = 0;
  if (send(target, request, &link)) {
    reopen_later(handle);
    return;
  }
  w.target = target;
  w.link = link;
  w.wire_id = request.id;
  w.watch_id = 0;
  waiters[request.id] = Waiter{true, handle, link};
  schedule(steady_ms() + options.attempt_timeout.count(),
           [this, handle, generation = w.generation] { on_watch_deadline(handle, generation, false); });
}

void Client::Impl::on_watch_frame(WatchHandle handle, ClientResponse response) {
  auto it = watches.find(handle);
  if (it == watches.end()) return;
  Watch& w = it->second;
  w.last_frame = steady_ms();
  if (w.watch_id == 0) {
    // The answer to the Watch request.
    if (!response.ok()) {
      if (net::retryable(response.error) || response.error == ErrorCode::TooManyWatchers) {
        drop_watch(w, false);
        reopen_later(handle);
        return;
      }
      end_watch(handle, status_of(response));
      return;
    }
    if (response.watch_id == 0) {
      end_watch(handle, kv::make_status(kv::Error::InvalidRequest, w.target + ": watch answered without a watch id"));
      return;
    }
    w.watch_id = response.watch_id;
    w.pause = net::retry_pause_min;
    if (w.opened_once) counters.watch_resumes.fetch_add(1);
    w.opened_once = true;
    w.cursor.opened(response.revision);
    arm_idle_check(handle);
  }
  if (response.watch_id != w.watch_id) return;
  if (response.canceled) {
    const bool resumable = net::retryable(response.error) || response.error == ErrorCode::WatchOverflow ||
                           response.error == ErrorCode::StaleState;
    if (resumable) {
      drop_watch(w, false);
      reopen_later(handle);
      return;
    }
    end_watch(handle, status_of(response));
    return;
  }
  std::vector<kv::Event> fresh;
  if (w.cursor.take(response.events, response.progress_revision, fresh) && !fresh.empty() && w.callbacks.on_events) {
    // Callbacks cannot change the client's state from here (every call goes through the
    // inbox), so `w` stays valid; a copy keeps the callback alive while it runs regardless.
    const auto on_events = w.callbacks.on_events;
    on_events(fresh);
  }
}

void Client::Impl::drop_watch(Watch& w, bool cancel_on_member) {
  if (w.wire_id != 0) waiters.erase(w.wire_id);
  if (cancel_on_member && w.watch_id != 0) {
    ClientRequest cancel;
    cancel.id = next_wire++;
    cancel.kind = net::RequestKind::WatchCancel;
    cancel.watch_id = w.watch_id;
    std::uint64_t link = 0;
    if (link_by_endpoint.count(w.target) != 0 && link_by_endpoint[w.target] == w.link) {
      (void)send(w.target, cancel, &link);  // best effort: closing the connection drops it too
    }
  }
  w.target.clear();
  w.link = 0;
  w.wire_id = 0;
  w.watch_id = 0;
  ++w.generation;
}

void Client::Impl::reopen_later(WatchHandle handle) {
  auto it = watches.find(handle);
  if (it == watches.end()) return;
  Watch& w = it->second;
  const auto pause = w.pause;
  w.pause = std::min(w.pause * 2, net::retry_pause_max);
  schedule(steady_ms() + pause.count(), [this, handle, generation = w.generation] {
    auto found = watches.find(handle);
    if (found != watches.end() && found->second.generation == generation && found->second.wire_id == 0) {
      open_watch(handle);
    }
  });
}

void Client::Impl::arm_idle_check(WatchHandle handle) {
  if (options.watch_idle_timeout.count() <= 0) return;
  const Watch& w = watches.at(handle);
  schedule(w.last_frame + options.watch_idle_timeout.count(),
           [this, handle, generation = w.generation] { on_watch_deadline(handle, generation, true); });
}

void Client::Impl::on_watch_deadline(WatchHandle handle, std::uint64_t generation, bool idle_check) {
  auto it = watches.find(handle);
  if (it == watches.end() || it->second.generation != generation || it->second.wire_id == 0) return;
  Watch& w = it->second;
  if (idle_check) {
    if (steady_ms() < w.last_frame + options.watch_idle_timeout.count()) {
      arm_idle_check(handle);
      return;
    }
  } else if (w.watch_id != 0) {
    return;  // opened in time
  }
  // Silent: the member is taken for dead, and everything else on its connection moves on too.
  const std::uint64_t link = w.link;
  drop_watch(w, false);
  reopen_later(handle);
  close_link(link, idle_check ? "a watch was silent past the idle timeout" : "no answer to a watch");
}

void Client::Impl::end_watch(WatchHandle handle, const kv::Status& why) {
  auto it = watches.find(handle);
  if (it == watches.end()) return;
  drop_watch(it->second, false);
  auto on_end = std::move(it->second.callbacks.on_end);
  watches.erase(it);
  if (on_end) on_end(why);
}

void Client::Impl::cancel_watch(WatchHandle handle) {
  auto it = watches.find(handle);
  if (it == watches.end()) return;
  drop_watch(it->second, true);
  watches.erase(it);
}

// ---------------------------------------------------------------------------------------------
// The public face: everything goes through the inbox to the loop thread.

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) { impl_->start(); }

Client::~Client() { impl_->stop(); }

void Client::write(kv::Body body, std::function<void(const WriteOutcome&)> done) {
  write(std::move(body), CallOptions{}, std::move(done));
}

void Client::write(kv::Body body, CallOptions call, std::function<void(const WriteOutcome&)> done) {
  const Millis timeout = impl_->timeout_of(call);
  Impl::QueuedWrite w{std::move(body), Impl::deadline_after(timeout), timeout, std::move(done)};
  impl_->post_task([impl = impl_.get(), w = std::move(w)]() mutable { impl->enqueue_write(std::move(w)); });
}

void Client::get(std::string path, std::function<void(const ReadOutcome<kv::Node>&)> done) {
  get(std::move(path), CallOptions{}, std::move(done));
}

void Client::get(std::string path, CallOptions call, std::function<void(const ReadOutcome<kv::Node>&)> done) {
  ClientRequest request;
  request.kind = net::RequestKind::Get;
  request.path = std::move(path);
  request.serializable = call.serializable;
  const Millis timeout = impl_->timeout_of(call);
  const Millis deadline = Impl::deadline_after(timeout);
  impl_->post_task([impl = impl_.get(), request = std::move(request), deadline, timeout, done = std::move(done)] {
    impl->start_call(request, deadline, timeout, [done](ClientResponse r) {
      kv::Node node = r.node.value_or(kv::Node{});
      if (done) done(read_outcome(r, std::move(node)));
    });
  });
}

void Client::list(std::string path, kv::ListOptions options,
                  std::function<void(const ReadOutcome<kv::ListPage>&)> done) {
  list(std::move(path), std::move(options), CallOptions{}, std::move(done));
}

void Client::list(std::string path, kv::ListOptions options, CallOptions call,
                  std::function<void(const ReadOutcome<kv::ListPage>&)> done) {
  ClientRequest request;
  request.kind = net::RequestKind::List;
  request.path = std::move(path);
  request.revision = options.revision;
  request.start_after = std::move(options.start_after);
  request.limit = static_cast<std::uint32_t>(std::min<std::size_t>(options.limit, 0xffff'ffffU));
  request.serializable = call.serializable;
  const Millis timeout = impl_->timeout_of(call);
  const Millis deadline = Impl::deadline_after(timeout);
  impl_->post_task([impl = impl_.get(), request = std::move(request), deadline, timeout, done = std::move(done)] {
    impl->start_call(request, deadline, timeout, [done](ClientResponse r) {
      kv::ListPage page;
      page.names = std::move(r.names);
      page.more = r.more;
      if (done) done(read_outcome(r, std::move(page)));
    });
  });
}

WatchHandle Client::watch(kv::WatchRequest request, WatchCallbacks callbacks) {
  const WatchHandle handle = impl_->next_watch.fetch_add(1);
  impl_->post_task([impl = impl_.get(), handle, request = std::move(request), callbacks = std::move(callbacks)] {
    impl->add_watch(handle, request, callbacks);
  });
  return handle;
}

void Client::cancel_watch(WatchHandle handle) {
  impl_->post_task([impl = impl_.get(), handle] { impl->cancel_watch(handle); });
}

Millis Client::now_ms() const { return steady_ms(); }

void Client::after(Millis delay_ms, std::function<void()> action) {
  const Millis at = now_ms() + std::max<Millis>(0, delay_ms);
  impl_->post_task([impl = impl_.get(), at, action = std::move(action)] { impl->schedule(at, action); });
}

std::future<WriteOutcome> Client::write(kv::Body body, CallOptions call) {
  auto promise = std::make_shared<std::promise<WriteOutcome>>();
  auto result = promise->get_future();
  write(std::move(body), call, [promise](const WriteOutcome& outcome) { promise->set_value(outcome); });
  return result;
}

std::future<ReadOutcome<kv::Node>> Client::get(std::string path, CallOptions call) {
  auto promise = std::make_shared<std::promise<ReadOutcome<kv::Node>>>();
  auto result = promise->get_future();
  get(std::move(path), call, [promise](const ReadOutcome<kv::Node>& outcome) { promise->set_value(outcome); });
  return result;
}

std::future<ReadOutcome<kv::ListPage>> Client::list(std::string path, kv::ListOptions options, CallOptions call) {
  auto promise = std::make_shared<std::promise<ReadOutcome<kv::ListPage>>>();
  auto result = promise->get_future();
  list(std::move(path), std::move(options), call,
       [promise](const ReadOutcome<kv::ListPage>& outcome) { promise->set_value(outcome); });
  return result;
}

bool Client::on_client_thread() const { return std::this_thread::get_id() == impl_->loop_thread; }

void Client::check_not_client_thread() const {
  if (on_client_thread()) {
    throw std::logic_error("coord::Client: a blocking call on the client's own thread would wait forever");
  }
}

const ClientOptions& Client::options() const { return impl_->options; }

ClientStats Client::stats() const {
  const Impl::Counters& c = impl_->counters;
  ClientStats s;
  s.calls = c.calls.load();
  s.attempts = c.attempts.load();
  s.redirects = c.redirects.load();
  s.gave_up = c.gave_up.load();
  s.connects = c.connects.load();
  s.watch_resumes = c.watch_resumes.load();
  return s;
}

std::vector<kv::SessionId> Client::sessions() const { return impl_->session_ids; }

}  // namespace coord
