// A distributed mutex with fencing tokens, ZooKeeper's lock recipe on coord's keys.
//
// lock(): create a sequential ephemeral child under the lock's path, on the session's lease
// (fencing/contenders.h names it); list the children; if ours has the lowest sequence, the lock
// is ours, and the fencing token is the revision at which our key was created. Otherwise watch
// only the immediate predecessor for its deletion, and list again when it goes. Releasing (or
// losing) the lock therefore wakes exactly one waiter, never the whole line (no herd effect),
// and a waiter whose predecessor gave up or died re-checks and watches the next one ahead.
//
// try_lock(timeout): the same, but a waiter that is still not first when the timeout passes
// deletes its key and reports TimedOut (a timeout of 0 tries once).
//
// unlock(): deletes our key (a fenced delete: only if it is still the key we created), which
// wakes the next waiter. Called while waiting, it gives up the wait.
//
// Lost locks: a lock lives as long as its key, which lives as long as the session's lease. When
// the session ends (its deadline passed, its lease is gone, it was closed) the holder hears it
// through on_lost(), and a waiter's lock() reports SessionLost. Between the lease expiring on
// the server and the client noticing, a paused holder may still believe it holds the lock: the
// token is what makes that harmless (fencing/guard.h, fencing/fenced_txn.h).
//
// Failure handling: a create whose outcome is unknown is looked for by listing (our names are
// recognizable); not found, it is created again (up to create_unknown_max times); found later as
// a leftover of an earlier attempt, it is deleted. Reads no member answers are retried after
// read_retry_delay_ms while the session lives. A watch the server ends (compaction, overflow)
// just leads to listing again.
//
// Single-threaded and asynchronous, like KvClient; made by make() and held by shared_ptr (replies
// and timers hold weak references). Dropping a Mutex does not delete its key: the key stays
// until unlock() or the session's end. Callbacks never run inside the call that was given them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fencing/contenders.h"
#include "fencing/fenced_txn.h"
#include "fencing/kv_client.h"
#include "fencing/session.h"
#include "fencing/status.h"

namespace coord::fencing {

// Creates whose outcome stayed unknown and whose key could not be found, per lock() call,
// before lock() gives up with Unknown.
inline constexpr std::uint32_t create_unknown_max = 5;

struct LockResult {
  Status status;
  Token token = 0;  // Ok: the fencing token
  std::string key;  // Ok: our key under the lock's path (for fenced_txn)
};

class Mutex : public std::enable_shared_from_this<Mutex> {
 public:
  using LostCallback = std::function<void(const Status& why)>;

  // `path`: the lock's node (created with its ancestors if missing; it must not be ephemeral).
  // `value`: stored in our key, for whoever looks at the line (e.g. who holds the lock).
  static std::shared_ptr<Mutex> make(std::shared_ptr<Session> session, std::string path,
                                     std::string value = {});
  ~Mutex();
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  // One lock attempt at a time (Busy otherwise), on an alive session (SessionLost otherwise).
  void lock(std::function<void(const LockResult&)> done);
  void try_lock(Millis timeout_ms, std::function<void(const LockResult&)> done);
  // Held: deletes our key (NotHeld if it was already gone: the lock had been lost). Waiting:
  // gives up (lock() reports Canceled). Otherwise NotHeld.
  void unlock(std::function<void(const Status&)> done);
  // Heard when a held lock is lost because the session ended (not after unlock()).
  void on_lost(LostCallback lost) { lost_ = std::move(lost); }
  // The value the next lock() stores in its key (the election's candidate value).
  void set_value(std::string value) { value_ = std::move(value); }

  // Acquired, not released, and the session trusted *now*.
  bool held() const;
  // Locking or held (a new lock() would be refused with Busy).
  bool busy() const { return phase_ != Phase::Idle; }
  // The token and key of the current (or last) acquisition; 0 and "" when none.
  Token token() const { return token_; }
  const std::string& key() const { return key_; }
  const std::string& path() const { return path_; }
  const std::shared_ptr<Session>& session() const { return session_; }

  // What this mutex did, for tests and metrics.
  struct Stats {
    std::uint64_t creates = 0;  // create requests sent
    std::uint64_t lists = 0;    // full listings of the line (the first and every re-check)
    std::uint64_t watches = 0;  // predecessor watches started
    std::uint64_t wakeups = 0;  // predecessor deletions heard
  };
  const Stats& stats() const { return stats_; }

 private:
  enum class Phase : std::uint8_t {
    Idle,      // no key of ours (or one being deleted)
    Creating,  // our create is in flight
    Checking,  // listing the line (or reading our key's token)
    Waiting,   // watching our predecessor
    Held,
  };

  Mutex(std::shared_ptr<Session> session, std::string path, std::string value);

  void start(std::optional<Millis> timeout_ms, std::function<void(const LockResult&)> done);
  void create();
  void on_created(std::uint64_t epoch, const WriteOutcome& outcome);
  void check();
  void on_listed(std::uint64_t epoch, const ChildList& list);
  void on_token(std::uint64_t epoch, const ReadOutcome<kv::Node>& got);
  // With our key and token known: acquire, or wait for the predecessor (if any).
  void decide();
  void wait_for(std::string predecessor, kv::Revision from);
  void on_predecessor_events(std::uint64_t wait, const std::vector<kv::Event>& events);
  void on_predecessor_watch_end(std::uint64_t wait);
  void on_timeout(std::uint64_t epoch);
  void on_session_end(SessionEnd why);
  void retry_check_later();
  void stop_watch();
  // Ends the lock attempt: gives up the key unless acquired, and reports.
  void finish(LockResult result, bool deferred);
  void abandon(Status why, bool deferred);

  KvClient& client_;
  std::shared_ptr<Session> session_;
  Session::ListenerId listener_ = 0;
  std::string path_;
  std::string value_;
  std::uint64_t owner_ = 0;  // this object among the session's recipe objects

  Phase phase_ = Phase::Idle;
  // Incremented whenever an attempt starts or ends: replies and timers of an older attempt see
  // a different epoch and are ignored (KvClient has no way to cancel them).
  std::uint64_t epoch_ = 0;
  std::uint64_t attempt_ = 0;  // of our key names; never reused by this object
  std::uint32_t unknown_creates_ = 0;
  // An acquisition after an unknown create: a key of ours may still appear behind us, so
  // unlock() sweeps our leftovers.
  bool leftovers_possible_ = false;
  std::optional<Millis> wait_deadline_;
  std::function<void(const LockResult&)> done_;
  // Our key ("" while unknown) and its creation revision (0 while unknown).
  std::string key_;
  Token token_ = 0;
  // From the latest listing: who we wait for, and from which revision to watch.
  std::string predecessor_;
  kv::Revision listed_at_ = 0;
  std::optional<WatchHandle> watch_;
  std::uint64_t wait_ = 0;  // which predecessor watch is current
  LostCallback lost_;
  Stats stats_;
};

}  // namespace coord::fencing
