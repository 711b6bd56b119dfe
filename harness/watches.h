// The watch workload of coord-faults: a writer puts and deletes the children of /w (unique
// values, every outcome recorded with the revision the service answered), while watchers, each
// with a coord::Client of its own (which resumes a watch on another member when its member fails
// or goes silent), watch the children of /w from the revision after a marker write on.
//
// The judgement: harness/watch_judge.h.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "harness/watch_judge.h"

namespace coord::harness {

struct WatchesOptions {
  std::vector<std::string> endpoints;
  int watchers = 2;
  std::uint64_t seed = 1;
  int think_ms = 5;  // the writer waits 0..think_ms between writes
  std::chrono::milliseconds call_timeout{4000};
  std::chrono::milliseconds attempt_timeout{1000};
};

struct WatchesStats {
  std::uint64_t writes_ok = 0;
  std::uint64_t writes_unknown = 0;
  std::uint64_t events = 0;   // delivered, all watchers
  std::uint64_t reopened = 0;  // streams the service ended, opened again
};

class Watches {
 public:
  explicit Watches(WatchesOptions options);
  ~Watches();  // stops the writer and the watches
  Watches(const Watches&) = delete;
  Watches& operator=(const Watches&) = delete;

  // The marker write (retried for up to `timeout`), then the watches and the writer. False when
  // the marker could not be written.
  bool start(std::chrono::seconds timeout);
  void stop_writer();
  // Waits (at most `timeout`) until every stream delivered every acknowledged write, then
  // cancels the watches.
  void finish(std::chrono::seconds timeout);

  WatchesStats stats() const;
  std::vector<std::string> judge() const;

 private:
  struct Watcher {
    std::unique_ptr<Client> client;
    fencing::WatchHandle handle = 0;  // on the client's thread
  };

  void open(std::size_t watcher, kv::Revision start);  // on the watcher's client thread
  void write_loop();

  WatchesOptions options_;
  std::unique_ptr<Client> writer_client_;
  std::thread writer_;
  std::atomic<bool> stopping_{false};   // the writer stops
  std::atomic<bool> finishing_{false};  // the watches stop: no stream is reopened
  mutable std::mutex mutex_;
  std::vector<Watcher> watchers_;
  WatchRecord record_;  // under mutex_ (but for marker_revision, set before the watches start)
  WatchesStats stats_;
};

}  // namespace coord::harness
