// Leader election on coord's keys, etcd's election recipe over the same waiting line as the
// mutex (fencing/contenders.h).
//
// campaign(value): join the line under the election's path with `value` in our key, and wait,
// watching only our predecessor, until our key is first: then we lead, and the token (our key's
// create revision) fences what we do as leader.
// proclaim(value): change the value our key announces, with a fenced transaction: it is written
// only while our key still exists with the create revision we were elected with, so a deposed
// leader can never overwrite its successor's announcement.
// resign(): delete our key; the next candidate in line becomes leader.
// LeaderObserver: anyone (candidate or not) follows who leads and with which value, from a
// listing and a watch on the election's children.
//
// As with the mutex, a leader whose session ends hears it (on_lost), and a paused leader may
// still believe it leads until its client notices: fence its writes with the token.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fencing/fenced_txn.h"
#include "fencing/kv_client.h"
#include "fencing/mutex.h"
#include "fencing/session.h"
#include "fencing/status.h"

namespace coord::fencing {

class Election : public std::enable_shared_from_this<Election> {
 public:
  static std::shared_ptr<Election> make(std::shared_ptr<Session> session, std::string path);
  Election(const Election&) = delete;
  Election& operator=(const Election&) = delete;

  // Completes once elected (Ok, with the token and our key), or when the session ends, the
  // campaign is resigned, or a request fails. One campaign at a time (Busy).
  void campaign(std::string value, std::function<void(const LockResult&)> done);
  // Leader only (NotHeld otherwise, or when the fenced write finds our key gone).
  void proclaim(std::string value, std::function<void(const Status&)> done);
  // Leading: steps down. Campaigning: gives up the campaign. Otherwise NotHeld.
  void resign(std::function<void(const Status&)> done);
  // Heard when leadership is lost because the session ended (not after resign()).
  void on_lost(Mutex::LostCallback lost) { mutex_->on_lost(std::move(lost)); }

  bool leading() const { return mutex_->held(); }
  Token token() const { return mutex_->token(); }
  const std::string& key() const { return mutex_->key(); }
  // The value we announce (the campaign's, then the latest proclaimed).
  const std::string& value() const { return value_; }
  const std::string& path() const { return mutex_->path(); }

 private:
  Election(std::shared_ptr<Session> session, std::string path);

  std::shared_ptr<Session> session_;
  std::shared_ptr<Mutex> mutex_;
  std::string value_;
};

// The leader of an election as observers see it.
struct Leader {
  std::string key;
  std::string value;
  Token token = 0;                // the leader's key's create revision
  kv::Revision mod_revision = 0;  // of its value (grows with each proclaim)
  kv::LeaseId lease = 0;

  bool operator==(const Leader&) const = default;
};

// Follows the leader of the election at `path`: reports the leader (nullopt: none) once at the
// start and then at every change of leader or of its value, in order. Made by make(), held by
// shared_ptr; stop() (or dropping it) ends it.
class LeaderObserver : public std::enable_shared_from_this<LeaderObserver> {
 public:
  using Callback = std::function<void(const std::optional<Leader>&)>;

  static std::shared_ptr<LeaderObserver> make(KvClient& client, std::string path,
                                              Callback on_change);
  ~LeaderObserver();
  LeaderObserver(const LeaderObserver&) = delete;
  LeaderObserver& operator=(const LeaderObserver&) = delete;

  void stop();
  // The leader as last reported (nullopt before the first report or when there is none).
  const std::optional<Leader>& leader() const { return leader_; }
  bool reported() const { return reported_; }

 private:
  LeaderObserver(KvClient& client, std::string path, Callback on_change);

  // Lists the line and reads its first key; starts the watch the first time (and after the
  // server ended one).
  void refresh();
  void on_listed(std::uint64_t generation, const ChildList& list);
  void on_leader_read(std::uint64_t generation, const std::string& key,
                      const ReadOutcome<kv::Node>& got);
  void refreshed(std::optional<Leader> leader);
  void start_watch(kv::Revision from);
  void on_events(std::uint64_t watch_generation, const std::vector<kv::Event>& events);
  void on_watch_end(std::uint64_t watch_generation);
  void retry_later();
  void report(std::optional<Leader> leader);

  KvClient& client_;
  std::string path_;
  Callback on_change_;
  bool stopped_ = false;
  bool reported_ = false;
  std::optional<Leader> leader_;
  // One refresh at a time; events that need another while one runs set `dirty_`.
  bool refreshing_ = false;
  bool dirty_ = false;
  std::uint64_t generation_ = 0;  // of refreshes
  std::optional<WatchHandle> watch_;
  std::uint64_t watch_generation_ = 0;
};

}  // namespace coord::fencing
