// The record of every client operation (invocation and completion times on the harness's
// steady clock, outcome) and its judgement by the simulator's own checker: each key group's
// operations must be linearizable against sim's KvGroupModel (sim/linearizability.h,
// sim/kv_model.h), final read-backs included, so an acknowledged write that was lost shows as a
// read no linearization explains.
//
// Unknown outcomes: a read nobody answered is dropped (it had no effect). A write that ran out of
// time may still apply, but only before the next write of its session applies (a session's
// older sequence is refused once a newer one is applied; client/README.md), and each worker
// writes through one session, one write at a time: so its effect, if any, is placed no later
// than the return of the worker's next write that came back with a result, or it never happened
// (Operation::may_skip: without it, a bounded unknown write had to apply, and a history in which
// it never did was reported as a violation). Without a later answered write it stays open to
// the end.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sim/kv_model.h"

namespace coord::harness {

using Model = sim::KvGroupModel;

struct Record {
  int client = 0;  // worker; 0: the final read-back
  int group = 0;
  std::uint64_t call_us = 0;
  std::uint64_t ret_us = 0;
  bool write = false;
  Model::Input input;
  std::optional<Model::Output> output;  // none: unknown (write) or unanswered (read)
};

struct Counts {
  std::uint64_t ok = 0, failed = 0, unknown = 0;
};

struct Judgement {
  std::vector<std::string> violations;  // empty: the history is linearizable
  std::vector<std::string> notes;       // per group: operations and search steps
};

class History {
 public:
  // Thread-safe: the workers add their records as they complete.
  void add(Record record);
  std::vector<Record> records() const;
  // ok: answered; failed: a read nobody answered (known to have had no effect); unknown: a
  // write without a result.
  Counts counts() const;
  Judgement judge(std::size_t steps_max = 50'000'000) const;
  // Every operation, one line each in invocation order (client, times, input, outcome): written
  // next to the coordd logs when a run fails, so a violation can be read against them.
  void write(const std::string& path) const;

 private:
  mutable std::mutex mutex_;
  std::vector<Record> records_;
};

}  // namespace coord::harness
