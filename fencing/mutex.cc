#include "fencing/mutex.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "raft/assert.h"

namespace coord::fencing {

namespace {

void remove_quietly(KvClient& client, const std::string& key) {
  client.write(kv::single(kv::Op::remove(key)), [](const WriteOutcome&) {});
}

}  // namespace

std::shared_ptr<Mutex> Mutex::make(std::shared_ptr<Session> session, std::string path,
                                   std::string value) {
  COORD_ASSERT(session != nullptr, "a mutex needs a session");
  auto mutex = std::shared_ptr<Mutex>(new Mutex(std::move(session), std::move(path),
                                                std::move(value)));
  mutex->listener_ =
      mutex->session_->on_end([weak = std::weak_ptr<Mutex>(mutex)](SessionEnd why) {
        if (auto self = weak.lock()) self->on_session_end(why);
      });
  return mutex;
}

Mutex::Mutex(std::shared_ptr<Session> session, std::string path, std::string value)
    : client_(session->client()),
      session_(std::move(session)),
      path_(std::move(path)),
      value_(std::move(value)),
      owner_(session_->next_unique()) {}

Mutex::~Mutex() {
  session_->remove_listener(listener_);
  if (watch_) client_.cancel_watch(*watch_);
}

void Mutex::lock(std::function<void(const LockResult&)> done) {
  start(std::nullopt, std::move(done));
}

void Mutex::try_lock(Millis timeout_ms, std::function<void(const LockResult&)> done) {
  start(std::max<Millis>(0, timeout_ms), std::move(done));
}

bool Mutex::held() const { return phase_ == Phase::Held && session_->alive(); }

void Mutex::start(std::optional<Millis> timeout_ms,
                  std::function<void(const LockResult&)> done) {
  if (phase_ != Phase::Idle) {
    client_.after(0, [done] {
      done(LockResult{make_status(Code::Busy, "this mutex is already locking or held"), 0, {}});
    });
    return;
  }
  if (!session_->alive()) {
    client_.after(0, [done] {
      done(LockResult{make_status(Code::SessionLost, "the session is not alive"), 0, {}});
    });
    return;
  }
  ++epoch_;
  done_ = std::move(done);
  unknown_creates_ = 0;
  wait_deadline_.reset();
  if (timeout_ms) {
    wait_deadline_ = client_.now_ms() + *timeout_ms;
    // A timeout of 0 arms no timer: the attempt then never waits (decide() gives up instead),
    // but still gets the answer of its create and listing: try once.
    if (*timeout_ms > 0) {
      client_.after(*timeout_ms, [weak = weak_from_this(), epoch = epoch_] {
        if (auto self = weak.lock()) self->on_timeout(epoch);
      });
    }
  }
  create();
}

void Mutex::create() {
  phase_ = Phase::Creating;
  ++attempt_;
  key_.clear();
  token_ = 0;
  predecessor_.clear();
  ++stats_.creates;
  const kv::LeaseId lease = session_->lease_id();
  kv::Op op = kv::Op::create_sequential(
      child_path(path_, contender_prefix(lease, owner_, attempt_)), value_, lease);
  op.parents = true;
  client_.write(kv::single(std::move(op)),
                [weak = weak_from_this(), epoch = epoch_,
                 client = &client_](const WriteOutcome& outcome) {
                  if (auto self = weak.lock()) {
                    self->on_created(epoch, outcome);
                  } else if (outcome.result && outcome.result->ok() &&
                             !outcome.result->ops.empty()) {
                    // The mutex was dropped with its create in flight (say, right after its
                    // try_lock timed out): nobody is left to wait, unlock or clean up, and the
                    // key would block the line for as long as the session lives. The client
                    // is alive: it is the one answering.
                    remove_quietly(*client, outcome.result->ops.front().path);
                  }
                });
}

void Mutex::on_created(std::uint64_t epoch, const WriteOutcome& outcome) {
  if (epoch != epoch_ || phase_ != Phase::Creating) {
    // The attempt was given up meanwhile: a key it made must not stay in the line.
    if (outcome.result && outcome.result->ok() && !outcome.result->ops.empty()) {
      remove_quietly(client_, outcome.result->ops.front().path);
    }
    return;
  }
  if (!outcome.result) {
    // Applied or not: the listing tells, by our key's name.
    ++unknown_creates_;
    check();
    return;
  }
  const kv::Result& result = *outcome.result;
  if (!result.ok()) {
    if (result.status.error == kv::Error::LeaseNotFound) {
      finish(LockResult{make_status(Code::SessionLost, "the session's lease is gone"), 0, {}},
             false);
    } else {
      finish(LockResult{kv_failure(result.status), 0, {}}, false);
    }
    return;
  }
  COORD_ASSERT(result.ops.size() == 1 && result.ops[0].type == kv::OpType::Create,
               "a create answered with something else");
  key_ = result.ops[0].path;
  // The create's revision is our key's create_revision: the fencing token.
  token_ = result.revision;
  COORD_ASSERT(token_ > 0, "a create always takes a revision");
  check();
}

void Mutex::check() {
  phase_ = Phase::Checking;
  ++stats_.lists;
  list_children(client_, path_, [weak = weak_from_this(), epoch = epoch_](const ChildList& list) {
    if (auto self = weak.lock()) self->on_listed(epoch, list);
  });
}

void Mutex::retry_check_later() {
  client_.after(read_retry_delay_ms, [weak = weak_from_this(), epoch = epoch_] {
    if (auto self = weak.lock(); self && self->epoch_ == epoch && self->phase_ == Phase::Checking) {
      self->check();
    }
  });
}

void Mutex::on_listed(std::uint64_t epoch, const ChildList& list) {
  if (epoch != epoch_ || phase_ != Phase::Checking) return;
  if (!list.reached || list.status.error == kv::Error::Compacted) {
    retry_check_later();
    return;
  }
  if (!list.status.ok()) {
    finish(LockResult{kv_failure(list.status), 0, {}}, false);
    return;
  }
  const kv::LeaseId lease = session_->lease_id();
  std::optional<ContenderName> own;
  std::string own_name;
  for (const std::string& name : list.names) {
    const auto parsed = parse_contender_name(name);
    if (!parsed || parsed->lease != lease || parsed->owner != owner_) continue;
    if (parsed->attempt == attempt_) {
      own = parsed;
      own_name = name;
    } else {
      // Ours from an earlier attempt (an unknown create that was applied after all): waiting
      // behind it would wait for ourselves.
      remove_quietly(client_, child_path(path_, name));
    }
  }
  if (!own) {
    if (key_.empty()) {
      // The create whose outcome was unknown did not happen (as of this listing): again.
      if (unknown_creates_ >= create_unknown_max) {
        finish(LockResult{make_status(Code::Unknown,
                                      fmt::format("{} creates under {} had unknown outcomes",
                                                  unknown_creates_, path_)),
                          0, {}},
               false);
      } else {
        create();
      }
      return;
    }
    if (!session_->alive()) {
      finish(LockResult{make_status(Code::SessionLost, "the session ended"), 0, {}}, false);
    } else {
      finish(LockResult{make_status(Code::NotHeld, "our key " + key_ + " was deleted"), 0, {}},
             false);
    }
    return;
  }
  const std::string own_key = child_path(path_, own_name);
  COORD_ASSERT(key_.empty() || key_ == own_key, "the listing shows another key of this attempt");
  key_ = own_key;

  // The immediate predecessor: the highest sequence below ours. Nobody else is watched.
  std::optional<ContenderName> predecessor;
  std::string predecessor_name;
  for (const std::string& name : list.names) {
    const auto parsed = parse_contender_name(name);
    if (!parsed || (parsed->lease == lease && parsed->owner == owner_)) continue;
    if (parsed->sequence < own->sequence &&
        (!predecessor || parsed->sequence > predecessor->sequence)) {
      predecessor = parsed;
      predecessor_name = name;
    }
  }
  predecessor_ = predecessor ? child_path(path_, predecessor_name) : std::string();
  listed_at_ = list.revision;
  if (token_ == 0) {
    // Found after an unknown outcome: read its create_revision.
    client_.get(key_, [weak = weak_from_this(), epoch = epoch_](const ReadOutcome<kv::Node>& got) {
      if (auto self = weak.lock()) self->on_token(epoch, got);
    });
    return;
  }
  decide();
}

void Mutex::on_token(std::uint64_t epoch, const ReadOutcome<kv::Node>& got) {
  if (epoch != epoch_ || phase_ != Phase::Checking) return;
  if (!got.reached) {
    retry_check_later();
    return;
  }
  if (got.read.status.error == kv::Error::NotFound) {
    check();  // gone since the listing: the next one says so
    return;
  }
  if (!got.read.ok()) {
    finish(LockResult{kv_failure(got.read.status), 0, {}}, false);
    return;
  }
  token_ = got.read.value.create_revision;
  COORD_ASSERT(token_ > 0, "a created node has a create revision");
  decide();
}

void Mutex::decide() {
  if (predecessor_.empty()) {
    if (!session_->alive()) {
      finish(LockResult{make_status(Code::SessionLost, "the session ended"), 0, {}}, false);
      return;
    }
    finish(LockResult{Status{}, token_, key_}, false);
    return;
  }
  if (wait_deadline_ && client_.now_ms() >= *wait_deadline_) {
    abandon(make_status(Code::TimedOut, "the lock is held by " + predecessor_), false);
    return;
  }
  wait_for(predecessor_, listed_at_ + 1);
}

void Mutex::wait_for(std::string predecessor, kv::Revision from) {
  phase_ = Phase::Waiting;
  ++stats_.watches;
  const std::uint64_t wait = ++wait_;
  kv::WatchRequest request;
  request.filter = kv::WatchFilter{kv::WatchKind::Key, std::move(predecessor)};
  // From right after the listing: a deletion between the listing and the watch is not missed.
  request.start_revision = from;
  WatchCallbacks callbacks;
  callbacks.on_events = [weak = weak_from_this(), wait](const std::vector<kv::Event>& events) {
    if (auto self = weak.lock()) self->on_predecessor_events(wait, events);
  };
  callbacks.on_end = [weak = weak_from_this(), wait](const kv::Status&) {
    if (auto self = weak.lock()) self->on_predecessor_watch_end(wait);
  };
  watch_ = client_.watch(std::move(request), std::move(callbacks));
}

void Mutex::on_predecessor_events(std::uint64_t wait, const std::vector<kv::Event>& events) {
  if (wait != wait_ || phase_ != Phase::Waiting) return;
  const bool deleted = std::any_of(events.begin(), events.end(), [](const kv::Event& e) {
    return e.type == kv::EventType::Deleted;
  });
  if (!deleted) return;
  ++stats_.wakeups;
  stop_watch();
  check();
}

void Mutex::on_predecessor_watch_end(std::uint64_t wait) {
  if (wait != wait_ || phase_ != Phase::Waiting) return;
  watch_.reset();
  ++wait_;
  check();
}

void Mutex::stop_watch() {
  ++wait_;  // first: whatever the cancelled watch still reports is ignored
  const std::optional<WatchHandle> watch = std::exchange(watch_, std::nullopt);
  if (watch) client_.cancel_watch(*watch);
}

void Mutex::on_timeout(std::uint64_t epoch) {
  if (epoch != epoch_ || phase_ == Phase::Idle || phase_ == Phase::Held) return;
  abandon(make_status(Code::TimedOut, "try_lock timed out"), false);
}

void Mutex::on_session_end(SessionEnd why) {
  const Status status =
      make_status(Code::SessionLost, std::string("session ended: ") + to_string(why));
  if (phase_ == Phase::Held) {
    // The key goes with the lease; the token stays readable, for logs.
    phase_ = Phase::Idle;
    ++epoch_;
    if (lost_) lost_(status);
    return;
  }
  if (phase_ != Phase::Idle) abandon(status, false);
}

void Mutex::finish(LockResult result, bool deferred) {
  if (result.status.ok()) {
    phase_ = Phase::Held;
  } else {
    stop_watch();
    // While Creating the key is not known yet: the create's reply deletes it (other epoch).
    if (!key_.empty()) remove_quietly(client_, key_);
    key_.clear();
    token_ = 0;
    phase_ = Phase::Idle;
  }
  if (unknown_creates_ > 0 && result.status.ok()) leftovers_possible_ = true;
  ++epoch_;
  auto done = std::move(done_);
  done_ = nullptr;
  if (!done) return;
  if (deferred) {
    client_.after(0, [done = std::move(done), result = std::move(result)] { done(result); });
  } else {
    done(result);
  }
}

void Mutex::abandon(Status why, bool deferred) {
  finish(LockResult{std::move(why), 0, {}}, deferred);
}

void Mutex::unlock(std::function<void(const Status&)> done) {
  if (phase_ == Phase::Idle) {
    client_.after(0, [done] { done(make_status(Code::NotHeld, "the lock is not held")); });
    return;
  }
  if (phase_ != Phase::Held) {
    abandon(make_status(Code::Canceled, "unlock() while waiting"), true);
    client_.after(0, [done] { done(Status{}); });
    return;
  }
  phase_ = Phase::Idle;
  ++epoch_;
  client_.write(fenced_txn(key_, token_, {kv::Op::remove(key_)}),
                [done](const WriteOutcome& outcome) {
                  if (!outcome.result) {
                    done(make_status(Code::Unknown, "unlock: " + outcome.error));
                  } else if (outcome.result->status.error == kv::Error::CompareFailed) {
                    done(make_status(Code::NotHeld, "the lock had already been lost: " +
                                                        std::string(fenced_txn_failure(
                                                            outcome.result->failed_compare))));
                  } else if (!outcome.result->ok()) {
                    done(kv_failure(outcome.result->status));
                  } else {
                    done(Status{});
                  }
                });
  if (leftovers_possible_) {
    // A create whose outcome was unknown may have been applied after we stopped looking for
    // it; such a key of ours would hold the line after we leave. Sweep them.
    leftovers_possible_ = false;
    list_children(client_, path_,
                  [client = &client_, path = path_, lease = session_->lease_id(),
                   owner = owner_, attempt = attempt_](const ChildList& list) {
                    // Up to the released attempt only: a later lock() may already be in line.
                    for (const std::string& name : list.names) {
                      const auto parsed = parse_contender_name(name);
                      if (parsed && parsed->lease == lease && parsed->owner == owner &&
                          parsed->attempt <= attempt) {
                        remove_quietly(*client, child_path(path, name));
                      }
                    }
                  });
  }
}

}  // namespace coord::fencing
