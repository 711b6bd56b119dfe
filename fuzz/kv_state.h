// A small but varied key-value state for the fuzz targets to start from: nested nodes, values
// rewritten (history), a deletion, a sequential node, sessions, leases with ephemeral keys, and a
// compaction, so that every snapshot table has rows.
#pragma once

#include <string>
#include <vector>

#include "kv/codec.h"
#include "kv/memory_storage.h"
#include "kv/state_machine.h"

namespace coord::fuzz {

inline std::vector<kv::Command> base_commands() {
  using kv::Op;
  std::vector<kv::Command> out;
  auto add = [&](kv::Body body, kv::SessionId session = 0) {
    kv::Command c;
    c.session_id = session;
    c.sequence = session == 0 ? 0 : out.size() + 1;
    c.body = std::move(body);
    out.push_back(std::move(c));
  };
  Op put = Op::put("/app/cfg/a", "one");
  put.parents = true;
  add(kv::single(put), 7);
  add(kv::single(Op::put("/app/cfg/a", "two")), 7);
  add(kv::single(Op::put("/app/cfg/b", "bee")), 8);
  add(kv::single(Op::create("/app/jobs", "")));
  add(kv::single(Op::create_sequential("/app/jobs/job-", "payload")));
  add(kv::single(Op::put("/tmp", "x")));
  add(kv::single(Op::remove("/tmp")));
  add(kv::LeaseGrant{0, 5000}, 9);
  add(kv::LeaseGrant{40, 60000});
  add(kv::single(Op::create("/app/lock", "holder", 1)));
  add(kv::single(Op::put("/app/member", "m", 40)));
  add(kv::Compact{3});
  kv::Txn txn;
  txn.compares.push_back(kv::Compare::version("/app/cfg/a", kv::CompareOp::Equal, 1));
  txn.success.push_back(Op::put("/app/cfg/a", "three"));
  txn.success.push_back(Op::get("/app/cfg/b"));
  txn.failure.push_back(Op::get("/app/cfg/a"));
  add(txn, 7);
  add(kv::LeaseKeepAlive{1}, 9);
  return out;
}

// Applies `commands` after the state's applied index, one entry each.
inline void apply_commands(kv::StateMachine& sm, const std::vector<kv::Command>& commands) {
  std::vector<kv::AppliedEntry> entries;
  for (const kv::Command& c : commands) {
    entries.push_back(kv::AppliedEntry{sm.applied_index() + 1 + entries.size(), kv::encode_command(c)});
  }
  sm.apply_batch(entries);
}

// The snapshot of the base state (computed once).
inline const std::string& base_snapshot() {
  static const std::string bytes = [] {
    kv::MemoryStorage storage;
    kv::StateMachine sm(storage);
    apply_commands(sm, base_commands());
    return sm.snapshot();
  }();
  return bytes;
}

// The paths of the base state, and a few that are not there.
inline const std::vector<std::string>& base_paths() {
  static const std::vector<std::string> paths = {
      "/", "/app", "/app/cfg", "/app/cfg/a", "/app/cfg/b", "/app/jobs", "/app/jobs/job-0000000000",
      "/app/lock", "/app/member", "/tmp", "/nothing", "/app/cfg/a/deeper"};
  return paths;
}

}  // namespace coord::fuzz
