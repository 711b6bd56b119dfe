// Acceptance 1: long seeded random sequences of requests (errors, retries, malformed entries and
// compactions included) give the same results, reads, watch events and final state on the state
// machine as on the reference model (tests/kv_model.h), on both backends, and the two backends
// end byte-identical. A third replica joins mid-way from a snapshot and must keep up too.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kv_model.h"
#include "kv_test_util.h"

using namespace kvtest;
using kvmodel::Model;

namespace {

// splitmix64: a tiny generator whose sequence is the same everywhere.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::uint64_t below(std::uint64_t n) { return next() % n; }
  bool chance(int percent) { return below(100) < static_cast<std::uint64_t>(percent); }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }

 private:
  std::uint64_t state_;
};

Limits model_limits() {
  Limits l;
  l.value_bytes_max = 16;
  l.command_bytes_max = 2048;
  l.txn_ops_max = 4;
  l.txn_compares_max = 3;
  l.txn_read_bytes_max = 40;
  l.delete_nodes_max = 6;
  l.list_page_max = 3;
  l.range_page_max = 4;
  l.range_page_bytes_max = 30;
  l.sessions_max = 4;
  l.watch_buffer_events_max = 24;
  l.watchers_max = 64;
  l.watch_replay_rows_max = 8;
  l.leases_max = 4;
  l.lease_keys_max = 3;
  l.lease_ttl_ms_max = 1000;
  return l;
}

Result strip(Result r) {
  r.status.message.clear();
  return r;
}

class Generator {
 public:
  explicit Generator(std::uint64_t seed) : rng_(seed) {}
  Rng& rng() { return rng_; }

  std::string path() {
    if (rng_.chance(4)) return rng_.pick(bad_paths_);
    std::string p;
    const std::uint64_t depth = 1 + rng_.below(3);
    for (std::uint64_t i = 0; i < depth; ++i) p += "/" + rng_.pick(segments_);
    return p;
  }

  std::string value(std::size_t max) {
    if (rng_.chance(3)) return std::string(max + 1, 'v');  // too large
    const std::vector<std::string> values = {"", "a", "b", "ab", "value", "0123456789"};
    return rng_.pick(values);
  }

  // Mostly a lease that exists, sometimes none or one that does not.
  LeaseId lease(const Model& model) {
    const std::vector<LeaseId> ids = model.lease_ids();
    if (!ids.empty() && rng_.chance(80)) return rng_.pick(ids);
    return rng_.below(8);
  }

  Op op(const Model& model) {
    Op op;
    const std::uint64_t kind = rng_.below(100);
    op.path = path();
    if (kind < 35) {
      op.type = OpType::Put;
      op.value = value(16);
      op.parents = rng_.chance(30);
      if (rng_.chance(40)) op.lease = lease(model);
    } else if (kind < 65) {
      op.type = OpType::Create;
      op.value = value(16);
      op.parents = rng_.chance(30);
      op.sequential = rng_.chance(20);
      if (rng_.chance(30)) op.lease = lease(model);
      if (op.sequential && rng_.chance(50)) op.path += rng_.chance(50) ? "/" : "-";
    } else if (kind < 85) {
      op.type = OpType::Delete;
      op.recursive = rng_.chance(40);
      if (rng_.chance(2)) op.path = "/";
    } else {
      op.type = OpType::Get;
    }
    if (rng_.chance(2)) op.recursive = !op.recursive;  // sometimes a flag that does not fit
    return op;
  }

  Compare compare(const Model& model) {
    Compare c;
    c.path = path();
    c.target = static_cast<CompareTarget>(rng_.below(5));
    c.op = static_cast<CompareOp>(rng_.below(4));
    const Revision rev = model.revision();
    switch (c.target) {
      case CompareTarget::Exists: c.number = rng_.below(rng_.chance(3) ? 3 : 2); break;
      case CompareTarget::Version: c.number = rng_.below(3); break;
      case CompareTarget::CreateRevision:
      case CompareTarget::ModRevision:
        c.number = rev > 3 ? rev - rng_.below(4) : rng_.below(4);
        break;
      case CompareTarget::Value: c.value = value(16); break;
    }
    if (rng_.chance(2)) c.number += 1;  // a number on a value comparison: invalid
    return c;
  }

  Body body(const Model& model) {
    const std::uint64_t kind = rng_.below(100);
    if (kind < 2) {
      // Mostly well behind the head, so past reads and replays have history to work on.
      const Revision lag = model.revision() - model.compact_revision();
      return Compact{model.compact_revision() + rng_.below(lag / 4 + 3)};
    }
    if (kind < 14) {
      switch (rng_.below(5)) {
        case 0:
        case 1: {
          LeaseGrant g;
          if (rng_.chance(30)) {
            g.id = rng_.chance(50) ? model.lease_free() + rng_.below(2) : 1 + rng_.below(6);
          }
          g.ttl_ms = rng_.chance(5) ? 0 : (rng_.chance(5) ? 1001 : 1 + rng_.below(1000));
          return g;
        }
        case 2: return LeaseRevoke{lease(model)};
        case 3: return LeaseKeepAlive{lease(model)};
        default: {
          // As the leader's clock would propose it, or stale (a keep-alive came in between).
          const LeaseId id = lease(model);
          const std::uint64_t seen = model.keepalives(id);
          return LeaseExpire{id, rng_.chance(75) ? seen : rng_.below(seen + 2)};
        }
      }
    }
    Txn t;
    if (kind < 55) {
      t.success.push_back(op(model));
    } else if (kind < 70) {
      const std::vector<std::string> keys = {"/a", "/b", "/a/b", "/c"};
      const std::string key = rng_.pick(keys);
      const auto node = model.tree(model.revision()).find(key);
      const bool known = node != model.tree(model.revision()).end() && rng_.chance(60);
      switch (rng_.below(3)) {
        case 0:
          t = compare_and_set_version(key, known ? node->second.version : 1, value(16));
          break;
        case 1:
          t = compare_and_set_mod_revision(key, known ? node->second.mod : 1, value(16));
          break;
        default: t = compare_and_set_value(key, known ? node->second.value : "b", value(16)); break;
      }
    } else {
      const std::uint64_t compares = rng_.below(rng_.chance(5) ? 5 : 3);
      for (std::uint64_t i = 0; i < compares; ++i) t.compares.push_back(compare(model));
      const std::uint64_t success = rng_.below(rng_.chance(5) ? 6 : 4);
      for (std::uint64_t i = 0; i < success; ++i) t.success.push_back(op(model));
      const std::uint64_t failure = rng_.below(3);
      for (std::uint64_t i = 0; i < failure; ++i) t.failure.push_back(op(model));
    }
    return t;
  }

 private:
  Rng rng_;
  const std::vector<std::string> segments_ = {"a", "b", "c", "\xc3\xa9", "a-b"};
  const std::vector<std::string> bad_paths_ = {
      "", "a", "/a/", "//a", "/a//b", "/a/../b", "/a/.", "/a\x01", "/\xff", "/\xc3",
      "/" + std::string(256, 'x'), "/" + std::string(200, 'x') + "/" + std::string(200, 'y') +
                                       "/" + std::string(79, 'z')};
};

// One entry as the generator made it: what the replicas get and what the model gets.
struct Planned {
  std::string bytes;
  enum class Kind { NoOp, Command, Garbage, Oversized } kind = Kind::Command;
  Command command;
};

struct Session {
  std::uint64_t sequence = 0;
  Command last;
};

Planned plan(Generator& gen, const Model& model, std::map<SessionId, Session>& sessions) {
  Rng& rng = gen.rng();
  Planned p;
  const std::uint64_t kind = rng.below(100);
  if (kind < 4) {
    p.kind = Planned::Kind::NoOp;
    return p;
  }
  if (kind < 7) {
    p.kind = Planned::Kind::Garbage;
    Command c;
    c.body = single(Op::get("/a"));
    std::string valid = encode_command(c);
    switch (rng.below(2)) {
      case 0: p.bytes = std::string(1 + rng.below(3), static_cast<char>(rng.below(256))); break;
      default:  // a root offset far outside the buffer
        valid[0] = valid[1] = valid[2] = '\xff';
        valid[3] = '\x7f';
        p.bytes = valid;
        break;
    }
    return p;
  }
  if (kind < 8) {
    p.kind = Planned::Kind::Oversized;
    p.bytes = std::string(2049, '\0');
    return p;
  }
  Command& c = p.command;
  if (rng.chance(50)) {
    c.session_id = 1 + rng.below(6);
    Session& s = sessions[c.session_id];
    const std::uint64_t mode = rng.below(100);
    if (mode < 10 && s.sequence > 0) {
      c = s.last;  // a retry
    } else if (mode < 18 && s.sequence > 1) {
      c.sequence = s.sequence - 1 - rng.below(s.sequence - 1);  // stale
      c.body = gen.body(model);
    } else {
      c.sequence = ++s.sequence;
      c.body = gen.body(model);
      s.last = c;
    }
  } else {
    c.body = gen.body(model);
  }
  p.bytes = encode_command(c);
  return p;
}

Result model_apply(Model& model, Index index, const Planned& p) {
  switch (p.kind) {
    case Planned::Kind::NoOp: return model.noop(index);
    case Planned::Kind::Garbage: return model.refuse(index, Error::InvalidRequest);
    case Planned::Kind::Oversized: return model.refuse(index, Error::TooLarge);
    case Planned::Kind::Command: return model.apply(index, p.command);
  }
  return {};
}

template <typename T>
void check_read(const ReadResult<T>& got, const ReadResult<T>& want) {
  CHECK(got.status.error == want.status.error);
  CHECK(got.status.compact_revision == want.status.compact_revision);
  if (got.ok() && want.ok()) {
    CHECK(got.revision == want.revision);
    CHECK(got.value == want.value);
  }
}

void compare_reads(Generator& gen, const Model& model, StateMachine& sm) {
  Rng& rng = gen.rng();
  if (rng.chance(20)) {
    const LeaseId id = rng.below(8);
    CAPTURE(id);
    check_read(sm.lease_ttl(id), model.lease_ttl(id));
    check_read(sm.leases(), model.leases());
    CHECK(sm.lease_count() == model.lease_ids().size());
  }
  for (int i = 0; i < 3; ++i) {
    const std::string path = gen.path();
    Revision rev = 0;
    switch (rng.below(3)) {
      case 0: rev = 0; break;
      case 1: rev = model.revision() + (rng.chance(10) ? 1 : 0); break;
      default: rev = rng.below(model.revision() + 1); break;
    }
    CAPTURE(path);
    CAPTURE(rev);
    switch (rng.below(4)) {
      case 0: check_read(sm.get(path, rev), model.get(path, rev)); break;
      case 1: check_read(sm.exists(path, rev), model.exists(path, rev)); break;
      case 2: {
        ListOptions o;
        o.revision = rev;
        o.limit = rng.below(5);
        const std::vector<std::string> names = {"a", "b", "a-b", "\xc3\xa9", "0"};
        if (rng.chance(40)) o.start_after = rng.pick(names);
        check_read(sm.list(path, o), model.list(path, o));
        break;
      }
      default: {
        RangeOptions o;
        o.revision = rev;
        o.limit = rng.below(6);
        o.keys_only = rng.chance(30);
        if (rng.chance(40)) o.start_after = gen.path();
        check_read(sm.range(path, o), model.range(path, o));
        break;
      }
    }
  }
}

// A watcher, replayed identically on several replicas, and what each one received.
struct TestWatch {
  WatchRequest request;
  std::vector<WatchId> ids;              // per replica
  std::vector<std::vector<Event>> got;   // per replica
  std::vector<Revision> progress;        // per replica
  std::vector<bool> done;                // per replica: compacted away
};

void poll_watch(StateMachine& sm, TestWatch& w, std::size_t r, std::size_t events_max) {
  if (w.done[r]) return;
  WatchResponse resp = sm.poll_watch(w.ids[r], events_max);
  for (Event& e : resp.events) {
    CHECK(e.revision > w.progress[r]);
    w.got[r].push_back(std::move(e));
  }
  if (!resp.canceled) {
    CHECK(resp.progress_revision >= w.progress[r]);
    w.progress[r] = resp.progress_revision;
    return;
  }
  if (resp.cancel_status.error == Error::WatchOverflow) {
    // Resume where it stopped, as a client would.
    WatchRequest again = w.request;
    again.start_revision = w.progress[r] + 1;
    const WatchCreated created = sm.watch(again);
    if (created.status.ok()) {
      w.ids[r] = created.id;
      return;
    }
    CHECK(created.status.error == Error::Compacted);
  } else {
    CHECK(resp.cancel_status.error == Error::Compacted);
  }
  w.done[r] = true;
}

std::size_t check_watch(const Model& model, const TestWatch& w, std::size_t r) {
  std::vector<Event> want;
  for (Revision rev = w.request.start_revision; rev <= w.progress[r]; ++rev) {
    for (Event e : model.events(rev)) {
      if (!kvmodel::matches(w.request.filter, e.path)) continue;
      if (!w.request.prev_value) e.prev.reset();
      want.push_back(e);
    }
  }
  REQUIRE(w.got[r].size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    CAPTURE(i);
    CHECK(w.got[r][i] == want[i]);
  }
  return want.size();
}

void run_model_test(std::uint64_t seed, int entries_total) {
  CAPTURE(seed);
  const Limits limits = model_limits();
  Generator gen(seed);
  Rng& rng = gen.rng();
  Model model(limits);
  std::vector<std::unique_ptr<Replica>> replicas;
  replicas.push_back(std::make_unique<Replica>(Backend::Memory, limits));
  replicas.push_back(std::make_unique<Replica>(Backend::Lmdb, limits));
  std::unique_ptr<Replica> joined;  // restored from a snapshot half-way
  std::map<SessionId, Session> sessions;
  std::vector<TestWatch> watches;
  std::map<std::string, int> outcomes;  // result kinds seen, to show what the run covered

  int applied = 0;
  while (applied < entries_total) {
    // A batch of entries, applied to everyone.
    const std::size_t batch_size = 1 + rng.below(5);
    std::vector<Planned> batch;
    std::vector<std::string> bytes;
    std::vector<Result> want;
    for (std::size_t i = 0; i < batch_size; ++i) {
      batch.push_back(plan(gen, model, sessions));
      bytes.push_back(batch.back().bytes);
      want.push_back(strip(model_apply(model, model.applied() + 1, batch.back())));
      outcomes[to_string(want.back().status.error)] += 1;
      if (want.back().ok() && !want.back().succeeded) outcomes["else-branch"] += 1;
      if (want.back().ok() && !want.back().lease.deleted.empty()) {
        outcomes["lease-keys-deleted"] += 1;
      }
    }
    applied += static_cast<int>(batch_size);
    std::vector<Replica*> all;
    for (auto& r : replicas) all.push_back(r.get());
    if (joined) all.push_back(joined.get());
    for (Replica* r : all) {
      CAPTURE(std::string(to_string(r->backend())));
      const std::vector<Result> got = r->apply_data(bytes);
      REQUIRE(got.size() == want.size());
      for (std::size_t i = 0; i < got.size(); ++i) {
        CAPTURE(i);
        CAPTURE(applied);
        CHECK(strip(got[i]) == want[i]);
      }
      REQUIRE((*r)->applied_index() == model.applied());
      REQUIRE((*r)->revision() == model.revision());
      REQUIRE((*r)->compact_revision() == model.compact_revision());
      REQUIRE((*r)->session_count() == model.sessions());
    }
    for (auto& r : replicas) compare_reads(gen, model, r->sm());
    if (joined) compare_reads(gen, model, joined->sm());

    // Watchers: new ones from random retained revisions, random polls.
    if (rng.chance(6) && watches.size() < 12) {
      TestWatch w;
      w.request.filter.kind = static_cast<WatchKind>(rng.below(3));
      w.request.filter.path = rng.chance(20) ? "/" : gen.path();
      if (!kvmodel::valid_path(w.request.filter.path)) w.request.filter.path = "/a";
      w.request.prev_value = rng.chance(50);
      const Revision lo = std::max<Revision>(model.compact_revision(), 1);
      w.request.start_revision = lo + rng.below(model.revision() + 2 - lo);
      for (auto& r : replicas) {
        const WatchCreated created = r->sm().watch(w.request);
        REQUIRE(created.status.ok());
        w.ids.push_back(created.id);
        w.got.emplace_back();
        w.progress.push_back(w.request.start_revision - 1);
        w.done.push_back(false);
      }
      watches.push_back(std::move(w));
    }
    for (TestWatch& w : watches) {
      if (!rng.chance(30)) continue;
      const std::size_t events_max = 1 + rng.below(10);
      for (std::size_t r = 0; r < replicas.size(); ++r) {
        poll_watch(replicas[r]->sm(), w, r, events_max);
      }
    }

    if (!joined && applied >= entries_total / 2) {
      joined = std::make_unique<Replica>(Backend::Lmdb, limits);
      REQUIRE((*joined)->restore(replicas[0]->sm().snapshot()).ok());
      REQUIRE((*joined)->applied_index() == model.applied());
    }
  }

  // Final state: everything, at the head and at every retained revision, and byte-identical
  // snapshots across backends.
  for (auto* r : {replicas[0].get(), replicas[1].get(), joined.get()}) {
    for (Revision rev = std::max<Revision>(model.compact_revision(), 1); rev <= model.revision();
         rev += 1 + rev / 50) {
      CAPTURE(rev);
      std::vector<KeyValue> want;
      const auto& t = model.tree(rev);
      for (const auto& [k, v] : t) want.push_back(KeyValue{k, kvmodel::to_node(t, k)});
      CHECK(all_nodes(r->sm(), rev) == want);
    }
  }
  for (auto* r : {replicas[0].get(), replicas[1].get(), joined.get()}) {
    check_read(r->sm().leases(), model.leases());
    for (const LeaseId id : model.lease_ids()) {
      check_read(r->sm().lease_ttl(id), model.lease_ttl(id));
    }
  }
  const std::string snapshot = replicas[0]->sm().snapshot();
  CHECK(replicas[1]->sm().snapshot() == snapshot);
  CHECK(joined->sm().snapshot() == snapshot);

  std::string summary;
  for (const auto& [name, count] : outcomes) summary += " " + name + "=" + std::to_string(count);
  MESSAGE("seed " << seed << ": revision " << model.revision() << ", compacted to "
                  << model.compact_revision() << ", " << watches.size() << " watchers;"
                  << summary);

  // Drain every watcher and compare with the model's events.
  std::size_t events_checked = 0, watchers_compacted = 0;
  for (TestWatch& w : watches) {
    for (std::size_t r = 0; r < replicas.size(); ++r) {
      for (int i = 0; i < 100000 && !w.done[r] && w.progress[r] < model.revision(); ++i) {
        poll_watch(replicas[r]->sm(), w, r, 8);
      }
      CAPTURE(r);
      events_checked += check_watch(model, w, r);
      watchers_compacted += w.done[r] ? 1 : 0;
      CHECK(w.got[r] == w.got[0]);
    }
  }
  MESSAGE("seed " << seed << ": " << events_checked << " watch events checked, "
                  << watchers_compacted << " watchers compacted away");
}

}  // namespace

TEST_CASE("kv model: random sequences match the reference model (seed 1)") {
  run_model_test(1, 3000);
}

TEST_CASE("kv model: random sequences match the reference model (seed 2)") {
  run_model_test(2, 3000);
}

TEST_CASE("kv model: random sequences match the reference model (seeds 3..8, short)") {
  for (std::uint64_t seed = 3; seed <= 8; ++seed) run_model_test(seed, 600);
}
