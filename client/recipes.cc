#include "client/recipes.h"

#include <exception>
#include <stdexcept>
#include <utility>

namespace coord {

namespace {

// Starts an asynchronous recipe call on the client's thread; the future gets what it reports.
template <typename T, typename Start>
std::future<T> start_on_client(Client& client, Start start) {
  auto promise = std::make_shared<std::promise<T>>();
  auto future = promise->get_future();
  client.post([start = std::move(start), promise]() mutable {
    start([promise](const T& value) { promise->set_value(value); });
  });
  return future;
}

template <typename T, typename Start>
T wait_on_client(Client& client, Start start) {
  client.check_not_client_thread();
  return start_on_client<T>(client, std::move(start)).get();
}

// For destructors: waits at most the client's call timeout (and a second for the recipe's own
// steps), and never throws.
template <typename Start>
void best_effort(Client& client, Start start) {
  try {
    if (client.on_client_thread()) return;
    auto done = start_on_client<Status>(client, std::move(start));
    (void)done.wait_for(client.options().call_timeout + std::chrono::seconds(1));
  } catch (const std::exception&) {
    // The client is closing: the lease expires on the service.
  }
}

// Recipe objects are dropped on the client's thread, where they live.
template <typename T>
void release_on_client(Client& client, std::shared_ptr<T>& object) {
  if (!object) return;
  client.post([object = std::move(object)]() mutable { object.reset(); });
}

std::string named_path(std::string_view prefix, std::string_view name) {
  if (!name.empty() && name.front() == '/') return std::string(name);
  return std::string(prefix) + std::string(name);
}

}  // namespace

std::string lock_path(std::string_view name) { return named_path("/locks/", name); }
std::string election_path(std::string_view name) { return named_path("/elections/", name); }

// ---------------------------------------------------------------------------------------------
// Session

Session::Session(Client& client, SessionOptions options) : client_(client) {
  if (!fencing::valid(options)) {
    throw std::invalid_argument("coord::Session: the options leave no trust window (see fencing/session.h)");
  }
  session_ = client_.run([&] { return fencing::Session::make(client_, options); });
}

Session::~Session() {
  try {
    const bool open = client_.on_client_thread() ? false : client_.run([s = session_] {
      return s->lease_id() != 0 && !s->ended();
    });
    if (open) best_effort(client_, [s = session_](auto done) { s->close(std::move(done)); });
  } catch (const std::exception&) {
    // The client is closing: the lease expires on the service.
  }
  release_on_client(client_, session_);
}

Status Session::open() {
  return wait_on_client<Status>(client_, [s = session_](auto done) { s->open(std::move(done)); });
}

Status Session::close() {
  return wait_on_client<Status>(client_, [s = session_](auto done) { s->close(std::move(done)); });
}

void Session::on_lost(std::function<void(SessionEnd)> callback) {
  client_.run([&] {
    session_->on_end([callback = std::move(callback)](SessionEnd why) {
      if (why != SessionEnd::Closed && callback) callback(why);
    });
  });
}

bool Session::alive() const { return client_.run([&] { return session_->alive(); }); }
kv::LeaseId Session::lease_id() const { return client_.run([&] { return session_->lease_id(); }); }
Millis Session::remaining_ms() const { return client_.run([&] { return session_->remaining_ms(); }); }

// ---------------------------------------------------------------------------------------------
// Lock

Lock::Lock(Session& session, std::string_view name, std::string value)
    : client_(session.client()), path_(lock_path(name)) {
  mutex_ = client_.run([&] { return fencing::Mutex::make(session.recipe(), path_, std::move(value)); });
}

Lock::~Lock() {
  try {
    const bool busy = client_.on_client_thread() ? false : client_.run([m = mutex_] { return m->busy(); });
    if (busy) best_effort(client_, [m = mutex_](auto done) { m->unlock(std::move(done)); });
  } catch (const std::exception&) {
    // The client is closing: the key goes with the session's lease.
  }
  release_on_client(client_, mutex_);
}

std::future<LockResult> Lock::lock_async() {
  return start_on_client<LockResult>(client_, [m = mutex_](auto done) { m->lock(std::move(done)); });
}

LockResult Lock::lock() {
  client_.check_not_client_thread();
  return lock_async().get();
}

LockResult Lock::try_lock(std::chrono::milliseconds timeout) {
  return wait_on_client<LockResult>(
      client_, [m = mutex_, t = timeout.count()](auto done) { m->try_lock(t, std::move(done)); });
}

Status Lock::unlock() {
  return wait_on_client<Status>(client_, [m = mutex_](auto done) { m->unlock(std::move(done)); });
}

void Lock::on_lost(std::function<void(const Status&)> callback) {
  client_.run([&] { mutex_->on_lost(std::move(callback)); });
}

bool Lock::held() const { return client_.run([&] { return mutex_->held(); }); }
Token Lock::token() const { return client_.run([&] { return mutex_->token(); }); }
std::string Lock::key() const { return client_.run([&] { return mutex_->key(); }); }

WriteOutcome Lock::write_fenced(std::vector<kv::Op> ops, CallOptions call) {
  const auto [key, token] = client_.run([&] { return std::make_pair(mutex_->key(), mutex_->token()); });
  return client_.write(fencing::fenced_txn(key, token, std::move(ops)), call).get();
}

// ---------------------------------------------------------------------------------------------
// Election

Election::Election(Session& session, std::string_view name)
    : client_(session.client()), path_(election_path(name)) {
  election_ = client_.run([&] { return fencing::Election::make(session.recipe(), path_); });
}

Election::~Election() {
  // Leading or campaigning: resign() steps down or gives up; otherwise it reports NotHeld.
  if (!client_.on_client_thread()) {
    best_effort(client_, [e = election_](auto done) { e->resign(std::move(done)); });
  }
  release_on_client(client_, election_);
}

std::future<LockResult> Election::campaign_async(std::string value) {
  return start_on_client<LockResult>(
      client_, [e = election_, value = std::move(value)](auto done) { e->campaign(value, std::move(done)); });
}

LockResult Election::campaign(std::string value) {
  client_.check_not_client_thread();
  return campaign_async(std::move(value)).get();
}

Status Election::proclaim(std::string value) {
  return wait_on_client<Status>(
      client_, [e = election_, value = std::move(value)](auto done) { e->proclaim(value, std::move(done)); });
}

Status Election::resign() {
  return wait_on_client<Status>(client_, [e = election_](auto done) { e->resign(std::move(done)); });
}

void Election::on_lost(std::function<void(const Status&)> callback) {
  client_.run([&] { election_->on_lost(std::move(callback)); });
}

bool Election::leading() const { return client_.run([&] { return election_->leading(); }); }
Token Election::token() const { return client_.run([&] { return election_->token(); }); }
std::string Election::key() const { return client_.run([&] { return election_->key(); }); }

WriteOutcome Election::write_fenced(std::vector<kv::Op> ops, CallOptions call) {
  const auto [key, token] = client_.run([&] { return std::make_pair(election_->key(), election_->token()); });
  return client_.write(fencing::fenced_txn(key, token, std::move(ops)), call).get();
}

// ---------------------------------------------------------------------------------------------
// LeaderObserver

LeaderObserver::LeaderObserver(Client& client, std::string_view name, Callback on_change) : client_(client) {
  const std::string path = election_path(name);
  observer_ = client_.run([&] { return fencing::LeaderObserver::make(client_, path, std::move(on_change)); });
}

LeaderObserver::~LeaderObserver() {
  if (observer_) {
    client_.post([o = observer_] { o->stop(); });
    release_on_client(client_, observer_);
  }
}

std::optional<Leader> LeaderObserver::leader() const { return client_.run([&] { return observer_->leader(); }); }
bool LeaderObserver::reported() const { return client_.run([&] { return observer_->reported(); }); }

}  // namespace coord
