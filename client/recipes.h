// Sessions, locks and elections for applications: the recipes of fencing/ (the very code the
// simulator checks) running on a coord::Client, behind blocking calls.
//
//   coord::Client client({.endpoints = {"127.0.0.1:7101", "127.0.0.1:7102"}});
//   coord::Session session(client, {.ttl_ms = 10'000});
//   if (!session.open().ok()) ...;
//   coord::Lock lock(session, "jobs");             // the lock at /locks/jobs
//   const coord::LockResult got = lock.lock();     // got.token: the fencing token
//   storage.write(data, got.token);                // the resource checks it (fencing::Guard)
//   lock.write_fenced({kv::Op::put("/jobs/state", "done")});  // refused once the lock is lost
//   lock.unlock();
//
// A Session is a lease kept alive in the background (a keep-alive every third of the TTL);
// the client trusts it until TTL minus a drift margin after the last acknowledged keep-alive
// was sent (fencing/session.h), and on_lost callbacks hear when it ends by itself. A lock or
// leadership lasts as long as its session. A process can still be paused past that point
// without noticing, which is why every acquisition carries a fencing token: check it at the
// resource (fencing::Guard) or write through write_fenced().
//
// The recipe objects live on the client's thread; these wrappers post to it and wait, so they
// may be used from any application thread, but not from the client's own thread (callbacks):
// there, use recipe() directly. Callbacks (on_lost, observers) run on the client's thread.
// Destroy a Lock or Election before its Session, and a Session before its Client.
#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/client.h"
#include "fencing/election.h"
#include "fencing/fenced_txn.h"
#include "fencing/mutex.h"
#include "fencing/session.h"
#include "fencing/status.h"
#include "kv/command.h"

namespace coord {

using fencing::Leader;
using fencing::LockResult;
using fencing::SessionEnd;
using fencing::SessionOptions;
using fencing::Status;
using fencing::Token;

// Where a named lock or election lives: "/locks/<name>" and "/elections/<name>"; a name that
// starts with '/' is taken as the path itself.
std::string lock_path(std::string_view name);
std::string election_path(std::string_view name);

class Session {
 public:
  explicit Session(Client& client, SessionOptions options = {});
  // Closes the session if it is open (revoking its lease, so its locks go at once), waiting at
  // most the client's call timeout.
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Grants the lease and starts keeping it alive. Once only.
  Status open();
  // Ends it and revokes the lease (every lock and candidacy on it goes in one revision).
  Status close();
  // Heard once, on the client's thread, when the session ends by itself: its deadline passed
  // with no acknowledged keep-alive, or the service says the lease is gone. Not after close().
  void on_lost(std::function<void(SessionEnd why)> callback);

  bool alive() const;
  kv::LeaseId lease_id() const;
  // Time left before the client stops trusting the lease (0 when not alive).
  Millis remaining_ms() const;
  Client& client() const { return client_; }
  // The recipe object: use it on the client's thread only.
  const std::shared_ptr<fencing::Session>& recipe() const { return session_; }

 private:
  Client& client_;
  std::shared_ptr<fencing::Session> session_;
};

class Lock {
 public:
  // `name`: see lock_path(). `value` is stored in our key, for whoever looks at the line.
  Lock(Session& session, std::string_view name, std::string value = {});
  // Releases a held lock (or gives up waiting), waiting at most the client's call timeout.
  ~Lock();
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  // Waits until the lock is ours (Ok, with the token and our key), the session ends
  // (SessionLost) or unlock() is called meanwhile from another thread (Canceled).
  LockResult lock();
  std::future<LockResult> lock_async();
  // Gives up after `timeout` (TimedOut); 0 tries once without waiting.
  LockResult try_lock(std::chrono::milliseconds timeout);
  // Releases the lock (NotHeld if it had been lost), or gives up a waiting lock().
  Status unlock();
  // Heard on the client's thread when a held lock is lost with its session (not after unlock()).
  void on_lost(std::function<void(const Status& why)> callback);

  // Acquired, not released, and the session trusted now.
  bool held() const;
  // The fencing token and key of the current (or last) acquisition; 0 and "" before one.
  Token token() const;
  std::string key() const;
  const std::string& path() const { return path_; }
  // Writes `ops` in one transaction only while this acquisition still holds the lock (its key
  // exists with the token as create revision), else CompareFailed and nothing changes
  // (fencing/fenced_txn.h).
  WriteOutcome write_fenced(std::vector<kv::Op> ops, CallOptions call = {});

  const std::shared_ptr<fencing::Mutex>& recipe() const { return mutex_; }

 private:
  Client& client_;
  std::string path_;
  std::shared_ptr<fencing::Mutex> mutex_;
};

class Election {
 public:
  // `name`: see election_path().
  Election(Session& session, std::string_view name);
  // Resigns (or gives up campaigning), waiting at most the client's call timeout.
  ~Election();
  Election(const Election&) = delete;
  Election& operator=(const Election&) = delete;

  // Waits until elected (Ok, with the token), the session ends, or resign() is called meanwhile.
  LockResult campaign(std::string value);
  std::future<LockResult> campaign_async(std::string value);
  // Leader only: announces a new value, fenced by our token (NotHeld once deposed).
  Status proclaim(std::string value);
  // Steps down (the next candidate leads), or gives up the campaign.
  Status resign();
  // Heard on the client's thread when leadership is lost with the session (not after resign()).
  void on_lost(std::function<void(const Status& why)> callback);

  bool leading() const;
  Token token() const;
  std::string key() const;
  const std::string& path() const { return path_; }
  // Writes `ops` only while we still lead with this token (like Lock::write_fenced).
  WriteOutcome write_fenced(std::vector<kv::Op> ops, CallOptions call = {});

  const std::shared_ptr<fencing::Election>& recipe() const { return election_; }

 private:
  Client& client_;
  std::string path_;
  std::shared_ptr<fencing::Election> election_;
};

// Follows who leads an election (no session needed): `on_change` runs on the client's thread
// with the leader (nullopt: none) once at the start and at every change of leader or value.
class LeaderObserver {
 public:
  using Callback = std::function<void(const std::optional<Leader>&)>;

  LeaderObserver(Client& client, std::string_view name, Callback on_change);
  ~LeaderObserver();  // stops it
  LeaderObserver(const LeaderObserver&) = delete;
  LeaderObserver& operator=(const LeaderObserver&) = delete;

  // The leader as last reported (nullopt before the first report, or when there is none).
  std::optional<Leader> leader() const;
  bool reported() const;

 private:
  Client& client_;
  std::shared_ptr<fencing::LeaderObserver> observer_;
};

}  // namespace coord
