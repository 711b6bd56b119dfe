#include "net/server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <functional>
#include <memory>

#include "net/client_codec.h"
#include "net/member_table.h"
#include "net/uv_util.h"

namespace coord::net {

namespace {

// Request frames carry one command plus a few fields (paths are at most 480 bytes each).
constexpr std::size_t request_overhead_bytes_max = 16 << 10;

template <typename Handle>
Handle* new_handle() {
  return new Handle{};
}

}  // namespace

Server::Loop::Loop() { uv_check(uv_loop_init(&loop), "uv_loop_init"); }

Server::Loop::~Loop() {
  // Let the closes started by the other members finish, then release the loop.
  (void)uv_run(&loop, UV_RUN_DEFAULT);
  const int rc = uv_loop_close(&loop);
  if (rc < 0) spdlog::error("uv_loop_close: {}", uv_error_text(rc));
}

Server::Server(const ServerOptions& options) : options_(options) {
  std::string error;
  auto cluster = parse_initial_cluster(options_.initial_cluster, options_.cluster_token, &error);
  if (!cluster) throw StartupError(error);
  cluster_ = std::move(*cluster);
  const MemberConfig* self = cluster_.find(options_.name);
  if (self == nullptr) {
    throw StartupError(fmt::format("--name {} is not in --initial-cluster ({})", options_.name, cluster_.spec()));
  }
  self_ = *self;
  const std::string spec = cluster_.spec();
  if (options_.join_existing) {
    // The other members' ids are not positions in this list (members added at runtime have
    // hashed ids): this member learns them from the leader, and knows only itself to start.
    if (options_.cluster_token.empty()) {
      throw StartupError("--initial-cluster-state existing needs --cluster-token (coordctl member add prints it)");
    }
    self_.id = member_id_for_name(self_.name);
    cluster_.members = {self_};
  }
  if (options_.tick_ms == 0) throw StartupError("--tick-ms must be positive");
  options_.host.join_existing = options_.join_existing;
  const bool created =
      claim_data_dir(options_.data_dir, MemberIdentity{cluster_.token, self_.id, self_.name, spec, options_.join_existing});
  spdlog::info("{} data dir {} member={} id={} cluster={}", created ? "created" : "opened", options_.data_dir,
               self_.name, self_.id, cluster_.token);

  ClientServerOptions client_options = options_.client;
  client_options.request_bytes_max = options_.host.limits.command_bytes_max + request_overhead_bytes_max;
  const kv::Limits& limits = options_.host.limits;
  client_options.send_queue_bytes_max =
      std::max(client_options.send_queue_bytes_max,
               2 * std::max({limits.value_bytes_max, limits.txn_read_bytes_max, limits.range_page_bytes_max}));
  // One entry as large as a command may be must always fit a peer's queue.
  options_.peer.send_queue_bytes_max =
      std::max(options_.peer.send_queue_bytes_max, 2 * (limits.command_bytes_max + request_overhead_bytes_max));
  ClientServer::Sink& client_sink = *this;  // private bases convert only in here
  client_ = std::make_unique<ClientServer>(&loop_.loop, client_sink, client_options);
  client_->start(options_.listen_client);
  const std::string advertise = options_.advertise_client.empty() ? client_->listen_address() : options_.advertise_client;

  HostOutput& host_output = *this;
  host_ = std::make_unique<ReplicaHost>(options_.host, cluster_, self_, advertise, options_.data_dir, random_,
                                        host_output, disk_);

  forwarder_ = std::make_unique<Forwarder>(
      &loop_.loop, [this](ConnectionId c, const ClientResponse& r) { respond(c, r); }, options_.forward);

  try {
    PeerTransport::Sink& peer_sink = *this;
    peer_ = std::make_unique<PeerTransport>(&loop_.loop, cluster_.token, self_, advertise, peer_sink, options_.peer);
    peer_->set_peers(host_->peers());
    peer_->start(options_.listen_peer);
    if (!options_.listen_metrics.empty()) {
      try {
        metrics_ = MetricsExporter::start(options_.listen_metrics, self_.name);
      } catch (const std::runtime_error& e) {
        throw StartupError(e.what());
      }
      spdlog::info("metrics on http://{}/metrics", metrics_->address());
    }
    start_handles();
  } catch (...) {
    // The destructor will not run: close what was started so the loop can drain.
    stop("startup failed");
    close_and_delete(sigint_);
    close_and_delete(sigterm_);
    sigint_ = nullptr;
    sigterm_ = nullptr;
    throw;
  }
  spdlog::info("serving member={} id={} peer={} client={} tick_ms={} election_ticks={} heartbeat_ticks={}",
               self_.name, self_.id, peer_->listen_address(), client_->listen_address(), options_.tick_ms,
               options_.host.raft.election_ticks, options_.host.raft.heartbeat_ticks);
}

void Server::start_handles() {
  tick_timer_ = new_timer(&loop_.loop, this);
  uv_check(uv_timer_start(
               tick_timer_,
               [](uv_timer_t* t) {
                 if (t->data == nullptr) return;
                 auto* self = static_cast<Server*>(t->data);
                 self->host_->tick();
                 self->forwarder_->expire(uv_now(t->loop));
                 self->heap_.tick(uv_now(t->loop), self->metrics_ != nullptr);
                 if (self->metrics_) self->metrics_->update(self->metrics_sample());
               },
               options_.tick_ms, options_.tick_ms),
           "uv_timer_start");

  pump_check_ = new_handle<uv_check_t>();
  if (const int rc = uv_check_init(&loop_.loop, pump_check_); rc < 0) {
    delete pump_check_;
    pump_check_ = nullptr;
    uv_check(rc, "uv_check_init");
  }
  pump_check_->data = this;
  uv_check(uv_check_start(pump_check_,
                          [](uv_check_t* c) {
                            if (c->data == nullptr) return;
                            auto* self = static_cast<Server*>(c->data);
                            self->host_->pump();
                          }),
           "uv_check_start");

  auto make_signal = [this](uv_signal_t*& handle, int signum) {
    handle = new_handle<uv_signal_t>();
    if (const int rc = uv_signal_init(&loop_.loop, handle); rc < 0) {
      delete handle;
      handle = nullptr;
      uv_check(rc, "uv_signal_init");
    }
    handle->data = this;
    uv_check(uv_signal_start(
                 handle,
                 [](uv_signal_t* s, int sig) {
                   if (s->data != nullptr) static_cast<Server*>(s->data)->stop(fmt::format("signal {}", strsignal(sig)));
                 },
                 signum),
             "uv_signal_start");
  };
  make_signal(sigint_, SIGINT);
  make_signal(sigterm_, SIGTERM);
}

void Server::UvDiskExecutor::run(std::function<void()> work, std::function<void()> done) {
  struct Job {
    uv_work_t req{};
    std::function<void()> work;
    std::function<void()> done;
  };
  auto* job = new Job{{}, std::move(work), std::move(done)};
  job->req.data = job;
  const int rc = uv_queue_work(
      loop_, &job->req, [](uv_work_t* req) { static_cast<Job*>(req->data)->work(); },
      [](uv_work_t* req, int status) {
        // status is UV_ECANCELED only after uv_cancel, which we never call: the work ran.
        (void)status;
        std::unique_ptr<Job> job(static_cast<Job*>(req->data));
        job->done();
      });
  if (rc < 0) {
    // Only possible with a null callback; run it here rather than lose the write.
    spdlog::error("uv_queue_work: {}; writing on the loop thread", uv_error_text(rc));
    std::unique_ptr<Job> owned(job);
    owned->work();
    owned->done();
  }
}

Server::~Server() {
  stop("server destroyed");
  close_and_delete(sigint_);
  close_and_delete(sigterm_);
  sigint_ = nullptr;
  sigterm_ = nullptr;
  // Loop::~Loop drains the closes after the transports have detached what is left.
}

int Server::run() {
  const int rc = uv_run(&loop_.loop, UV_RUN_DEFAULT);
  (void)rc;  // returns non-zero only when stopped with handles still active (uv_stop); we never call it
  spdlog::info("stopped member={} exit_code={}", self_.name, exit_code_);
  return exit_code_;
}

void Server::stop(const std::string& reason) {
  if (stopping_) {
    spdlog::debug("already stopping; ignoring: {}", reason);
    return;
  }
  stopping_ = true;
  spdlog::info("stopping: {}", reason);
  // A log write in flight completes (the loop runs until it has); nothing new starts.
  if (host_) host_->stop();
  close_and_delete(tick_timer_);
  close_and_delete(pump_check_);
  tick_timer_ = nullptr;
  pump_check_ = nullptr;
  // The signal handles stay open (unreferenced, so the loop may end without them) until the
  // destructor: closing one restores the signal's default action, and a second SIGTERM (a
  // supervisor repeating itself) would then kill us halfway through the clean stop.
  if (sigint_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(sigint_));
  if (sigterm_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(sigterm_));
  if (peer_) peer_->close();
  if (forwarder_) forwarder_->close();
  if (client_) client_->close();
}

// ---------------------------------------------------------------------------------------------

void Server::send(const raft::Message& message) {
  if (!stopping_) peer_->send(message);
}

void Server::respond(ConnectionId connection, const ClientResponse& response) {
  if (client_) client_->respond(connection, response);
}

void Server::fatal(const std::string& reason) {
  exit_code_ = 1;
  stop(fmt::format("fatal: {}", reason));
}

MetricsSample Server::metrics_sample() {
  MetricsSample s;
  const raft::Node& node = host_->node();
  s.leader = node.role() == raft::Role::Leader;
  s.term = node.term();
  s.commit_index = node.commit();
  s.applied_index = host_->state().applied_index();
  s.log_last_index = node.log().last_index();
  s.snapshot_index = node.snapshot_meta().index;
  s.revision = host_->state().revision();
  s.compact_revision = host_->state().compact_revision();
  s.leases = host_->state().lease_count();
  s.watchers = host_->watch_streams();
  s.forwards_in_flight = forwarder_->in_flight();
  s.client_connections = client_->connections();
  const ConnectionBytes client_bytes = client_->connection_bytes();
  s.client_queued_bytes = client_bytes.queued;
  s.client_reserved_bytes = client_bytes.reserved;
  const ConnectionBytes peer_bytes = peer_->connection_bytes();
  s.peer_queued_bytes = peer_bytes.queued;
  s.peer_reserved_bytes = peer_bytes.reserved;
  const ConnectionBytes forward_bytes = forwarder_->connection_bytes();
  s.forward_queued_bytes = forward_bytes.queued;
  s.forward_reserved_bytes = forward_bytes.reserved;
  s.inbox_bytes = host_->inbox_bytes();
  const std::uint64_t now_ms = uv_now(&loop_.loop);
  if (!ready_peak_taken_ || now_ms - ready_peak_ms_ >= 1000) {
    ready_peak_ = host_->take_ready_peak();
    ready_peak_ms_ = now_ms;
    ready_peak_taken_ = true;
  }
  s.heap_in_use_bytes = heap_.last_sample().in_use;
  s.heap_free_held_bytes = heap_.last_sample().free_held;
  s.heap_trims = heap_.trims();
  s.ready_messages_peak = ready_peak_.messages;
  s.ready_message_bytes_peak = ready_peak_.bytes;
  const ClientServerStats& c = client_->stats();
  s.client_requests = c.requests;
  s.client_malformed = c.malformed;
  s.client_refused_connections = c.refused_connections;
  s.client_slow_closed = c.slow_clients_closed;
  const PeerTransportStats& p = peer_->stats();
  s.peer_sent = p.sent;
  s.peer_received = p.received;
  s.peer_dropped = p.dropped_disconnected + p.dropped_queue_full;
  s.inbox_drops = host_->inbox_drops();
  const ForwarderStats& f = forwarder_->stats();
  s.forwarded = f.forwarded;
  s.forward_failures = f.timed_out + f.lost;
  return s;
}

std::size_t Server::queued_bytes(ConnectionId connection) const {
  return client_ ? client_->queued_bytes(connection) : 0;
}

bool Server::forward(ConnectionId connection, const ClientRequest& request, const LeaderHint& leader) {
  if (stopping_ || !forwarder_) return false;
  return forwarder_->forward(connection, request, leader.client_address);
}

void Server::on_connection_closed(ConnectionId connection) {
  if (host_) host_->connection_closed(connection);
}

void Server::on_message(const raft::Message& message) {
  if (!stopping_) host_->step(message);
}

bool Server::on_peer_hello(const PeerHello& hello) { return host_->peer_hello(hello); }

void Server::members_changed() {
  if (peer_ && !stopping_) peer_->set_peers(host_->peers());
}

void Server::on_request(ConnectionId connection, const ClientRequest& request) {
  if (stopping_ || !host_) {
    client_->respond(connection, error_response(request.id, ErrorCode::Unavailable, "replica stopping"));
    return;
  }
  host_->request(connection, request);
}

}  // namespace coord::net
