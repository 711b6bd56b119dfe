#include "bench/etcd_target.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <stdexcept>
#include <unordered_map>

#include "bench/etcd/etcd.grpc.pb.h"
#include "bench/etcd/etcd.pb.h"

namespace coord::bench {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds connect_timeout{3000};
constexpr std::chrono::milliseconds status_timeout{3000};
// Keys loaded per round trip while preloading (as for coord).
constexpr int preload_inflight = 256;
// etcd answers values of up to --max-request-bytes (1.5 MiB by default); responses carry at most
// one value here, so this bound leaves room.
constexpr int receive_bytes_max = 4 << 20;

std::chrono::system_clock::time_point system_deadline(Clock::time_point until) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(until - Clock::now());
}

// A short stable name for a failed call, like coord's error names ("unavailable", ...).
std::string status_name(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::OK: return "ok";
    case grpc::StatusCode::CANCELLED: return "cancelled";
    case grpc::StatusCode::UNKNOWN: return "unknown";
    case grpc::StatusCode::INVALID_ARGUMENT: return "invalid-argument";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "deadline-exceeded";
    case grpc::StatusCode::NOT_FOUND: return "not-found";
    case grpc::StatusCode::ALREADY_EXISTS: return "already-exists";
    case grpc::StatusCode::PERMISSION_DENIED: return "permission-denied";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "resource-exhausted";
    case grpc::StatusCode::FAILED_PRECONDITION: return "failed-precondition";
    case grpc::StatusCode::ABORTED: return "aborted";
    case grpc::StatusCode::OUT_OF_RANGE: return "out-of-range";
    case grpc::StatusCode::UNIMPLEMENTED: return "unimplemented";
    case grpc::StatusCode::INTERNAL: return "internal";
    case grpc::StatusCode::UNAVAILABLE: return "unavailable";
    case grpc::StatusCode::DATA_LOSS: return "data-loss";
    case grpc::StatusCode::UNAUTHENTICATED: return "unauthenticated";
    default: return fmt::format("grpc-{}", static_cast<int>(status.error_code()));
  }
}

// One channel, one TCP connection: without a local subchannel pool, gRPC would share a single
// connection among all channels to the same address, and the clients would not be independent.
std::shared_ptr<grpc::Channel> open_channel(const std::string& endpoint) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(receive_bytes_max);
  auto channel = grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + connect_timeout)) {
    throw std::runtime_error("connect " + endpoint + ": no gRPC connection within " +
                             std::to_string(connect_timeout.count()) + " ms");
  }
  return channel;
}

void put_op(etcdserverpb::RequestOp* op, const std::string& key, const std::string& value) {
  etcdserverpb::PutRequest* put = op->mutable_request_put();
  put->set_key(key);
  put->set_value(value);
}

class EtcdConnection final : public Connection {
 public:
  EtcdConnection(const Options& options, const std::string& endpoint)
      : options_(options), channel_(open_channel(endpoint)), kv_(etcdserverpb::KV::NewStub(channel_)),
        value_(options.value_size, 'v') {}

  ~EtcdConnection() override {
    // Every call must come back through the queue before the queue (and the call) may go.
    for (auto& [raw, call] : calls_) call->context.TryCancel();
    cq_.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) {
    }
  }

  void issue(std::uint64_t tag, Op op, std::size_t key) override {
    auto call = std::make_unique<Call>();
    call->tag = tag;
    call->key = key;
    const std::string path = key_path(options_, key);
    switch (op) {
      case Op::Put: {
        etcdserverpb::PutRequest request;
        request.set_key(path);
        request.set_value(value_);
        call->put_reader = kv_->AsyncPut(&call->context, request, &cq_);
        call->put_reader->Finish(&call->put, &call->status, call.get());
        break;
      }
      case Op::Get:
      case Op::GetSerializable: {
        etcdserverpb::RangeRequest request;
        request.set_key(path);
        request.set_serializable(op == Op::GetSerializable);
        call->range_reader = kv_->AsyncRange(&call->context, request, &cq_);
        call->range_reader->Finish(&call->range, &call->status, call.get());
        break;
      }
      case Op::Cas: {
        // As coord's: put if the version is the last one this client saw, else read the key.
        etcdserverpb::TxnRequest request;
        etcdserverpb::Compare* compare = request.add_compare();
        compare->set_result(etcdserverpb::Compare::EQUAL);
        compare->set_target(etcdserverpb::Compare::VERSION);
        compare->set_key(path);
        compare->set_version(versions_[key]);
        put_op(request.add_success(), path, value_);
        request.add_failure()->mutable_request_range()->set_key(path);
        call->cas = true;
        start_txn(*call, request);
        break;
      }
      case Op::Txn: {
        // Two keys written together if the first exists ("exists" in etcd: created at a
        // revision above 0).
        const std::string other = key_path(options_, (key + 1) % std::max<std::size_t>(options_.keys, 1));
        etcdserverpb::TxnRequest request;
        etcdserverpb::Compare* compare = request.add_compare();
        compare->set_result(etcdserverpb::Compare::GREATER);
        compare->set_target(etcdserverpb::Compare::CREATE);
        compare->set_key(path);
        compare->set_create_revision(0);
        put_op(request.add_success(), path, value_);
        if (other != path) put_op(request.add_success(), other, value_);  // etcd refuses a key twice
        put_op(request.add_failure(), path, value_);
        start_txn(*call, request);
        break;
      }
    }
    Call* raw = call.get();
    calls_.emplace(raw, std::move(call));
  }

  void wait(Clock::time_point until, std::vector<Completion>& out) override {
    void* tag = nullptr;
    bool ok = false;
    grpc::CompletionQueue::NextStatus next = cq_.AsyncNext(&tag, &ok, system_deadline(until));
    // Whatever else is ready comes along, without waiting again.
    while (next == grpc::CompletionQueue::GOT_EVENT) {
      out.push_back(complete(static_cast<Call*>(tag), ok));
      next = cq_.AsyncNext(&tag, &ok, gpr_time_0(GPR_CLOCK_MONOTONIC));
    }
    if (next == grpc::CompletionQueue::SHUTDOWN) throw std::runtime_error("completion queue shut down");
  }

 private:
  struct Call {
    std::uint64_t tag = 0;
    std::size_t key = 0;
    bool cas = false;
    grpc::ClientContext context;
    grpc::Status status;
    etcdserverpb::PutResponse put;
    etcdserverpb::RangeResponse range;
    etcdserverpb::TxnResponse txn;
    std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::PutResponse>> put_reader;
    std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::RangeResponse>> range_reader;
    std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::TxnResponse>> txn_reader;
  };

  void start_txn(Call& call, const etcdserverpb::TxnRequest& request) {
    call.txn_reader = kv_->AsyncTxn(&call.context, request, &cq_);
    call.txn_reader->Finish(&call.txn, &call.status, &call);
  }

  Completion complete(Call* raw, bool ok) {
    const auto it = calls_.find(raw);
    if (it == calls_.end()) throw std::runtime_error("completion for an unknown call");
    const std::unique_ptr<Call> call = std::move(it->second);
    calls_.erase(it);
    Completion c;
    c.tag = call->tag;
    c.ok = ok && call->status.ok();
    if (!ok) {
      c.error = "call-failed";
    } else if (!call->status.ok()) {
      c.error = status_name(call->status);
    }
    if (c.ok && call->cas) {
      if (call->txn.succeeded()) {
        ++versions_[call->key];
      } else if (call->txn.responses_size() > 0 && call->txn.responses(0).has_response_range() &&
                 call->txn.responses(0).response_range().kvs_size() > 0) {
        versions_[call->key] = call->txn.responses(0).response_range().kvs(0).version();
      }
    }
    return c;
  }

  const Options& options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_;
  grpc::CompletionQueue cq_;
  std::string value_;
  std::unordered_map<Call*, std::unique_ptr<Call>> calls_;   // outstanding, by their queue tag
  std::unordered_map<std::size_t, std::int64_t> versions_;  // Cas: key -> last seen version
};

// Many watches on one gRPC Watch stream, as etcd's own client multiplexes them, driven through
// the connection's completion queue: one write at a time while opening, one read always pending.
class EtcdWatchConnection final : public WatchConnection {
 public:
  explicit EtcdWatchConnection(const std::string& endpoint)
      : channel_(open_channel(endpoint)), stub_(etcdserverpb::Watch::NewStub(channel_)) {}

  ~EtcdWatchConnection() override {
    if (stream_) {
      context_.TryCancel();
      void* tag = nullptr;
      bool ok = false;
      while (read_pending_ && cq_.Next(&tag, &ok)) {
        if (tag == read_tag()) read_pending_ = false;
      }
      grpc::Status status;
      stream_->Finish(&status, finish_tag());
      while (cq_.Next(&tag, &ok) && tag != finish_tag()) {
      }
    }
    cq_.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) {
    }
  }

  void open(const std::string& dir, int count, Clock::time_point deadline) override {
    stream_ = stub_->AsyncWatch(&context_, &cq_, start_tag());
    expect(start_tag(), deadline, "start");
    // Every key under dir: the range [dir + "/", dir + "0"), '0' being the byte after '/'.
    etcdserverpb::WatchRequest request;
    etcdserverpb::WatchCreateRequest* create = request.mutable_create_request();
    create->set_key(dir + "/");
    create->set_range_end(dir + "0");
    for (int i = 0; i < count; ++i) {
      stream_->Write(request, write_tag());
      expect(write_tag(), deadline, "create");
    }
    read();
    int open = 0;
    while (open < count) {
      if (Clock::now() > deadline) throw std::runtime_error(fmt::format("watch: {} of {} opened in time", open, count));
      void* tag = nullptr;
      bool ok = false;
      if (cq_.AsyncNext(&tag, &ok, system_deadline(Clock::now() + std::chrono::milliseconds(100))) !=
          grpc::CompletionQueue::GOT_EVENT) {
        continue;
      }
      if (tag != read_tag() || !ok) throw std::runtime_error("watch: stream ended while opening");
      read_pending_ = false;
      if (response_.canceled()) throw std::runtime_error("watch: canceled: " + response_.cancel_reason());
      if (response_.created()) ++open;
      read();
    }
  }

  void wait(Clock::time_point until, std::vector<std::string>& keys) override {
    void* tag = nullptr;
    bool ok = false;
    grpc::CompletionQueue::NextStatus next = cq_.AsyncNext(&tag, &ok, system_deadline(until));
    while (next == grpc::CompletionQueue::GOT_EVENT) {
      if (tag != read_tag() || !ok) throw std::runtime_error("watch: stream ended");
      read_pending_ = false;
      if (response_.canceled()) throw std::runtime_error("watch: canceled: " + response_.cancel_reason());
      for (const etcdserverpb::Event& event : response_.events()) keys.push_back(event.kv().key());
      read();
      next = cq_.AsyncNext(&tag, &ok, gpr_time_0(GPR_CLOCK_MONOTONIC));
    }
    if (next == grpc::CompletionQueue::SHUTDOWN) throw std::runtime_error("completion queue shut down");
  }

 private:
  static void* start_tag() { return reinterpret_cast<void*>(std::uintptr_t{1}); }
  static void* write_tag() { return reinterpret_cast<void*>(std::uintptr_t{2}); }
  static void* read_tag() { return reinterpret_cast<void*>(std::uintptr_t{3}); }
  static void* finish_tag() { return reinterpret_cast<void*>(std::uintptr_t{4}); }

  void read() {
    response_.Clear();
    stream_->Read(&response_, read_tag());
    read_pending_ = true;
  }

  // Waits for `want` (the only operation outstanding); throws when it fails or takes too long.
  void expect(void* want, Clock::time_point deadline, const char* what) {
    void* tag = nullptr;
    bool ok = false;
    if (cq_.AsyncNext(&tag, &ok, system_deadline(deadline)) != grpc::CompletionQueue::GOT_EVENT || tag != want || !ok) {
      throw std::runtime_error(std::string("watch: ") + what + " failed");
    }
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<etcdserverpb::Watch::Stub> stub_;
  grpc::CompletionQueue cq_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>> stream_;
  etcdserverpb::WatchResponse response_;
  bool read_pending_ = false;
};

}  // namespace

EtcdCluster discover_etcd(const std::vector<std::string>& endpoints) {
  EtcdCluster cluster;
  for (const std::string& endpoint : endpoints) {
    const auto channel = grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials());
    const auto stub = etcdserverpb::Maintenance::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + status_timeout);
    context.set_wait_for_ready(true);  // a member still starting up is waited for, within the deadline
    etcdserverpb::StatusResponse response;
    if (!stub->Status(&context, etcdserverpb::StatusRequest{}, &response).ok()) continue;
    cluster.members.push_back(endpoint);
    if (response.leader() != 0 && response.leader() == response.header().member_id()) cluster.leader = endpoint;
  }
  if (cluster.leader.empty()) {
    throw std::runtime_error("no etcd member of " + fmt::format("{}", fmt::join(endpoints, ",")) + " says it leads");
  }
  return cluster;
}

void preload_etcd(const EtcdCluster& cluster, const Options& options) {
  EtcdConnection conn(options, cluster.leader);
  load_keys(conn, options, preload_inflight);
}

std::unique_ptr<Connection> connect_etcd(const EtcdCluster& cluster, const Options& options, int client) {
  const bool write = options.op == Op::Put || options.op == Op::Cas || options.op == Op::Txn;
  const std::string& endpoint =
      write || cluster.members.empty() ? cluster.leader
                                       : cluster.members[static_cast<std::size_t>(client) % cluster.members.size()];
  return std::make_unique<EtcdConnection>(options, endpoint);
}

std::unique_ptr<WatchConnection> connect_etcd_watch(const EtcdCluster& cluster, int connection) {
  const std::string& endpoint =
      cluster.members.empty() ? cluster.leader
                              : cluster.members[static_cast<std::size_t>(connection) % cluster.members.size()];
  return std::make_unique<EtcdWatchConnection>(endpoint);
}

}  // namespace coord::bench
