#include "fencing/election.h"

#include <utility>

#include "raft/assert.h"

namespace coord::fencing {

namespace {

std::string_view base_name(std::string_view path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace

// --- Election

std::shared_ptr<Election> Election::make(std::shared_ptr<Session> session, std::string path) {
  COORD_ASSERT(session != nullptr, "an election needs a session");
  return std::shared_ptr<Election>(new Election(std::move(session), std::move(path)));
}

Election::Election(std::shared_ptr<Session> session, std::string path)
    : session_(std::move(session)), mutex_(Mutex::make(session_, std::move(path))) {}

void Election::campaign(std::string value, std::function<void(const LockResult&)> done) {
  if (mutex_->busy()) {
    session_->client().after(0, [done] {
      done(LockResult{make_status(Code::Busy, "already campaigning or leading"), 0, {}});
    });
    return;
  }
  value_ = value;
  mutex_->set_value(std::move(value));
  mutex_->lock(std::move(done));
}

void Election::proclaim(std::string value, std::function<void(const Status&)> done) {
  KvClient& client = session_->client();
  if (!leading()) {
    client.after(0, [done] { done(make_status(Code::NotHeld, "not the leader")); });
    return;
  }
  const std::string& key = mutex_->key();
  // Put replaces the lease too: keep ours, or the key would stop being ephemeral.
  kv::Txn txn = fenced_txn(key, mutex_->token(), {kv::Op::put(key, value, session_->lease_id())});
  client.write(std::move(txn), [weak = weak_from_this(), value = std::move(value),
                                done](const WriteOutcome& outcome) {
    if (!outcome.result) {
      done(make_status(Code::Unknown, "proclaim: " + outcome.error));
    } else if (outcome.result->status.error == kv::Error::CompareFailed) {
      done(make_status(Code::NotHeld, std::string("no longer the leader: ") +
                                          fenced_txn_failure(outcome.result->failed_compare)));
    } else if (!outcome.result->ok()) {
      done(kv_failure(outcome.result->status));
    } else {
      if (auto self = weak.lock()) self->value_ = value;
      done(Status{});
    }
  });
}

void Election::resign(std::function<void(const Status&)> done) { mutex_->unlock(std::move(done)); }

// --- LeaderObserver

std::shared_ptr<LeaderObserver> LeaderObserver::make(KvClient& client, std::string path,
                                                     Callback on_change) {
  auto observer = std::shared_ptr<LeaderObserver>(
      new LeaderObserver(client, std::move(path), std::move(on_change)));
  observer->refresh();
  return observer;
}

LeaderObserver::LeaderObserver(KvClient& client, std::string path, Callback on_change)
    : client_(client), path_(std::move(path)), on_change_(std::move(on_change)) {}

LeaderObserver::~LeaderObserver() {
  if (watch_) client_.cancel_watch(*watch_);
}

void LeaderObserver::stop() {
  stopped_ = true;
  if (watch_) client_.cancel_watch(*watch_);
  watch_.reset();
}

void LeaderObserver::refresh() {
  if (stopped_) return;
  if (refreshing_) {
    dirty_ = true;
    return;
  }
  refreshing_ = true;
  dirty_ = false;
  const std::uint64_t generation = ++generation_;
  list_children(client_, path_, [weak = weak_from_this(), generation](const ChildList& list) {
    if (auto self = weak.lock()) self->on_listed(generation, list);
  });
}

void LeaderObserver::retry_later() {
  refreshing_ = false;
  client_.after(read_retry_delay_ms, [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->refresh();
  });
}

void LeaderObserver::on_listed(std::uint64_t generation, const ChildList& list) {
  if (stopped_ || generation != generation_) return;
  if (!list.reached || !list.status.ok()) {
    retry_later();
    return;
  }
  // Watching from right after the listing: no change between the two is missed.
  if (!watch_) start_watch(list.revision + 1);
  const std::optional<Contender> first = first_contender(list.names);
  if (!first) {
    refreshed(std::nullopt);
    return;
  }
  std::string key = child_path(path_, first->name);
  client_.get(key, [weak = weak_from_this(), generation,
                    key](const ReadOutcome<kv::Node>& got) {
    if (auto self = weak.lock()) self->on_leader_read(generation, key, got);
  });
}

void LeaderObserver::on_leader_read(std::uint64_t generation, const std::string& key,
                                    const ReadOutcome<kv::Node>& got) {
  if (stopped_ || generation != generation_) return;
  if (!got.reached) {
    retry_later();
    return;
  }
  if (got.read.status.error == kv::Error::NotFound) {
    // Gone since the listing: look again.
    refreshing_ = false;
    refresh();
    return;
  }
  if (!got.read.ok()) {
    retry_later();
    return;
  }
  const kv::Node& node = got.read.value;
  refreshed(Leader{key, node.value, node.create_revision, node.mod_revision, node.lease});
}

void LeaderObserver::refreshed(std::optional<Leader> leader) {
  refreshing_ = false;
  // A read answered late may be older than a value a watch event already reported.
  if (leader && leader_ && leader->key == leader_->key &&
      leader->mod_revision < leader_->mod_revision) {
    leader = leader_;
  }
  report(std::move(leader));
  if (dirty_) refresh();
}

void LeaderObserver::start_watch(kv::Revision from) {
  const std::uint64_t watch_generation = ++watch_generation_;
  kv::WatchRequest request;
  request.filter = kv::WatchFilter{kv::WatchKind::Children, path_};
  request.start_revision = from;
  WatchCallbacks callbacks;
  callbacks.on_events = [weak = weak_from_this(),
                         watch_generation](const std::vector<kv::Event>& events) {
    if (auto self = weak.lock()) self->on_events(watch_generation, events);
  };
  callbacks.on_end = [weak = weak_from_this(), watch_generation](const kv::Status&) {
    if (auto self = weak.lock()) self->on_watch_end(watch_generation);
  };
  watch_ = client_.watch(std::move(request), std::move(callbacks));
}

void LeaderObserver::on_events(std::uint64_t watch_generation,
                               const std::vector<kv::Event>& events) {
  if (stopped_ || watch_generation != watch_generation_) return;
  bool again = false;
  for (const kv::Event& e : events) {
    if (!parse_contender_name(base_name(e.path))) continue;
    if (refreshing_) {
      // The refresh in flight may have read before this change: read again after it.
      dirty_ = true;
      continue;
    }
    if (leader_ && e.path == leader_->key) {
      if (e.type == kv::EventType::Deleted) {
        again = true;  // the next in line (if any) leads now
      } else if (e.node && e.node->mod_revision > leader_->mod_revision) {
        Leader updated = *leader_;
        updated.value = e.node->value;
        updated.mod_revision = e.node->mod_revision;
        report(std::move(updated));
      }
    } else if (!leader_ && e.type == kv::EventType::Created) {
      again = true;  // the line was empty: this one leads
    }
  }
  if (again) refresh();
}

void LeaderObserver::on_watch_end(std::uint64_t watch_generation) {
  if (stopped_ || watch_generation != watch_generation_) return;
  // Refused by the server (compaction, overflow): list again and watch from there.
  watch_.reset();
  ++watch_generation_;
  refresh();
}

void LeaderObserver::report(std::optional<Leader> leader) {
  if (reported_ && leader == leader_) return;
  leader_ = std::move(leader);
  reported_ = true;
  if (on_change_) on_change_(leader_);
}

}  // namespace coord::fencing
