// Helpers shared by the kv tests: temporary directories, a replica on either backend, and
// one-line ways to apply commands.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "kv/codec.h"
#include "kv/lmdb_storage.h"
#include "kv/memory_storage.h"
#include "kv/state_machine.h"

namespace kvtest {

using namespace coord::kv;

// A fresh directory under $TMPDIR, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "coord-kv-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

enum class Backend { Memory, Lmdb };

inline const char* to_string(Backend b) { return b == Backend::Memory ? "memory" : "lmdb"; }

inline LmdbOptions test_lmdb_options(const std::string& dir) {
  LmdbOptions options;
  options.directory = dir;
  options.map_bytes = std::size_t{256} << 20;
  options.sync = false;  // tests survive process crashes, not power loss
  return options;
}

// A state machine on its own storage, with a log index counter.
class Replica {
 public:
  explicit Replica(Backend backend, const Limits& limits = {}) : backend_(backend) {
    if (backend == Backend::Memory) {
      storage_ = std::make_unique<MemoryStorage>();
    } else {
      dir_ = std::make_unique<TempDir>();
      storage_ = std::make_unique<LmdbStorage>(test_lmdb_options(dir_->path() + "/db"));
    }
    sm_ = std::make_unique<StateMachine>(*storage_, limits);
  }

  StateMachine& sm() { return *sm_; }
  StateMachine* operator->() { return sm_.get(); }
  Backend backend() const { return backend_; }

  std::vector<Result> apply_data(const std::vector<std::string>& datas) {
    std::vector<AppliedEntry> entries;
    for (const std::string& data : datas) {
      entries.push_back(AppliedEntry{sm_->applied_index() + 1 + entries.size(), data});
    }
    return sm_->apply_batch(entries);
  }
  Result apply(const Command& command) { return apply_data({encode_command(command)}).at(0); }
  Result txn(Txn txn, SessionId session = 0, std::uint64_t sequence = 0) {
    Command c;
    c.session_id = session;
    c.sequence = sequence;
    c.body = std::move(txn);
    return apply(c);
  }
  Result op(Op op) { return txn(single(std::move(op))); }
  Result compact(Revision revision) {
    Command c;
    c.body = Compact{revision};
    return apply(c);
  }
  Result body(Body body) {
    Command c;
    c.body = std::move(body);
    return apply(c);
  }
  Result grant(std::uint64_t ttl_ms, LeaseId id = 0) { return body(LeaseGrant{id, ttl_ms}); }
  Result revoke(LeaseId id) { return body(LeaseRevoke{id}); }
  Result keepalive(LeaseId id) { return body(LeaseKeepAlive{id}); }
  Result expire(LeaseId id, std::uint64_t keepalives) {
    return body(LeaseExpire{id, keepalives});
  }

 private:
  Backend backend_;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<Storage> storage_;
  std::unique_ptr<StateMachine> sm_;
};

// Every node of the current tree, root first, in path order.
inline std::vector<KeyValue> all_nodes(const StateMachine& sm, Revision revision = 0) {
  std::vector<KeyValue> out;
  RangeOptions options;
  options.revision = revision;
  for (;;) {
    const auto page = sm.range("/", options);
    REQUIRE(page.ok());
    out.insert(out.end(), page.value.nodes.begin(), page.value.nodes.end());
    if (!page.value.more) return out;
    options.start_after = out.back().path;
  }
}

}  // namespace kvtest
