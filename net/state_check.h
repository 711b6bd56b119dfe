// Checks the state machine's store (kv/data.mdb) whole, every row's checksum, on a thread of its
// own after a restart, from a pinned view. Reading all of it at open took about a third of a
// member's start at 1,000,000 keys (0.25 of 0.7 CPU-s), before it could serve; every read checks
// the rows it touches anyway, so nothing damaged is served meanwhile, and this still finds damage
// at rest soon after the start. The host stops the member when it fails (finish_state_check in
// net/replica_host.cc), naming the file, the table and the key, as the snapshot file's check
// (net/snapshot_check.h) does for the Raft log's snapshot. Destroying a check that is still
// reading stops it within 4,096 rows, so that a member stops promptly.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "kv/storage.h"

namespace coord::net {

class StateFileCheck {
 public:
  // `view`: a pinned read transaction (kv::Storage::pin), handed to the thread. `background`
  // false: checks at once, on the calling thread (tests).
  StateFileCheck(std::unique_ptr<kv::ReadTxn> view, bool background);
  ~StateFileCheck();
  StateFileCheck(const StateFileCheck&) = delete;
  StateFileCheck& operator=(const StateFileCheck&) = delete;

  // Once the check finished: "" when every row is intact, else the error naming the first
  // damaged one.
  std::optional<std::string> result() const;

 private:
  // nullopt: stopped before the end.
  std::optional<std::string> check();

  std::unique_ptr<kv::ReadTxn> view_;
  std::string error_;  // written by the thread before finished_
  std::atomic<bool> finished_{false};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace coord::net
