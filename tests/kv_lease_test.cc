// Leases: grant, keep-alive, revoke and expiry in the state machine (each on both backends), the
// ephemeral keys they take along in one revision, snapshots, errors, determinism; and the
// leader-side LeaseClock, whose countdowns must never end a lease early, across leader changes.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kv/lease_clock.h"
#include "kv/snapshot.h"
#include "kv_test_util.h"

using namespace kvtest;

namespace {

const Backend backends[] = {Backend::Memory, Backend::Lmdb};

std::vector<std::string> keys_of(StateMachine& sm, LeaseId id) {
  const auto info = sm.lease_ttl(id);
  REQUIRE(info.ok());
  return info.value.keys;
}

std::vector<LeaseId> lease_ids(StateMachine& sm) {
  std::vector<LeaseId> ids;
  for (const Lease& l : sm.leases().value) ids.push_back(l.id);
  return ids;
}

Op with_parents(Op op) {
  op.parents = true;
  return op;
}

}  // namespace

TEST_CASE("kv lease: error codes keep their numbers") {
  // Appended after the existing codes; part of the wire format and of remembered results.
  CHECK(static_cast<int>(Error::StaleState) == 14);
  CHECK(static_cast<int>(Error::LeaseNotFound) == 15);
  CHECK(static_cast<int>(Error::LeaseExists) == 16);
  CHECK(static_cast<int>(Error::NoChildrenForEphemerals) == 17);
  CHECK(static_cast<int>(Error::TooManyLeases) == 18);
  CHECK(static_cast<int>(Error::LeaseRenewed) == 19);
  CHECK(error_code_max == 19);
  CHECK(std::string(to_string(Error::NoChildrenForEphemerals)) == "no-children-for-ephemerals");
}

TEST_CASE("kv lease: grant, keep-alive, revoke and what the reads show") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Replica r(backend);
    REQUIRE(r.op(Op::create("/app", "")).ok());
    CHECK(r->revision() == 1);

    // Ids come from a counter when not given.
    Result g1 = r.grant(5000);
    REQUIRE(g1.ok());
    CHECK(g1.lease.lease == Lease{1, 5000, 0});
    CHECK(g1.revision == 1);  // a grant changes no node: no revision
    CHECK(r.grant(3000, 7).lease.lease == Lease{7, 3000, 0});  // the counter moves past it
    CHECK(r.grant(2000).lease.lease.id == 8);
    CHECK(r->revision() == 1);
    CHECK(r->lease_count() == 3);
    CHECK(r->leases().value == std::vector<Lease>{{1, 5000, 0}, {7, 3000, 0}, {8, 2000, 0}});

    // Keep-alives change no node either; they are counted.
    Result ka = r.keepalive(1);
    REQUIRE(ka.ok());
    CHECK(ka.lease.lease == Lease{1, 5000, 1});
    CHECK(ka.revision == 1);
    CHECK(r.keepalive(1).lease.lease.keepalives == 2);

    // Ephemeral keys.
    REQUIRE(r.op(Op::create("/app/a", "x", 1)).ok());
    REQUIRE(r.op(Op::put("/app/b", "y", 1)).ok());
    REQUIRE(r.op(Op::create("/c", "z", 7)).ok());
    const Result seq = r.op(Op::create_sequential("/app/s-", "", 1));
    REQUIRE(seq.ok());
    CHECK(r->get("/app/a").value.lease == 1);
    const auto info = r->lease_ttl(1);
    REQUIRE(info.ok());
    CHECK(info.value.lease == Lease{1, 5000, 2});
    CHECK(info.value.keys ==
          std::vector<std::string>{"/app/a", "/app/b", "/app/s-0000000000"});
    CHECK(r->lease_ttl(1, /*with_keys=*/false).value.keys.empty());
    CHECK(keys_of(r.sm(), 7) == std::vector<std::string>{"/c"});
    CHECK(keys_of(r.sm(), 8).empty());

    // Revoke: the lease and its keys go, in one revision.
    const Revision before = r->revision();
    Result rv = r.revoke(1);
    REQUIRE(rv.ok());
    CHECK(rv.revision == before + 1);
    CHECK(rv.lease.lease == Lease{1, 5000, 2});
    CHECK(rv.lease.deleted == std::vector<std::string>{"/app/a", "/app/b", "/app/s-0000000000"});
    for (const char* p : {"/app/a", "/app/b", "/app/s-0000000000"}) {
      CAPTURE(p);
      CHECK_FALSE(r->exists(p).value);
      CHECK(r->get(p, before).ok());  // still in the history
    }
    CHECK(r->exists("/c").value);
    CHECK(r->get("/app").value.num_children == 0);
    CHECK(r->lease_ttl(1).status.error == Error::LeaseNotFound);
    CHECK(lease_ids(r.sm()) == std::vector<LeaseId>{7, 8});

    // A lease without keys ends without a revision.
    Result empty = r.revoke(8);
    REQUIRE(empty.ok());
    CHECK(empty.revision == before + 1);
    CHECK(empty.lease.deleted.empty());
    CHECK(r->revision() == before + 1);

    // Ids are never reused, neither by the counter nor explicitly (a client still holding an
    // old id must not keep someone else's lease alive), nor skipped ones below the counter.
    CHECK(r.grant(1000).lease.lease.id == 9);
    CHECK(r.grant(1000, 1).status.error == Error::LeaseExists);
    CHECK(r.grant(1000, 8).status.error == Error::LeaseExists);
    CHECK(r.grant(1000, 3).status.error == Error::LeaseExists);
    CHECK(r.grant(1000, 10).ok());
  }
}

TEST_CASE("kv lease: expiry deletes every key in one revision and one watch batch") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Replica r(backend);
    const LeaseId id = r.grant(1000).lease.lease.id;
    const LeaseId other = r.grant(1000).lease.lease.id;
    REQUIRE(r.op(with_parents(Op::put("/svc/a/x", "1", id))).ok());
    REQUIRE(r.op(with_parents(Op::put("/svc/b/y", "2", id))).ok());
    REQUIRE(r.op(Op::create("/svc/z", "3", id)).ok());
    REQUIRE(r.op(Op::create("/svc/keep", "4", other)).ok());
    REQUIRE(r.op(Op::put("/plain", "5")).ok());
    const Revision before = r->revision();

    WatchRequest all;
    all.filter = WatchFilter{WatchKind::Subtree, "/"};
    all.prev_value = true;
    const WatchCreated w = r->watch(all);
    REQUIRE(w.status.ok());
    WatchRequest one;
    one.filter = WatchFilter{WatchKind::Key, "/svc/b/y"};
    const WatchCreated k = r->watch(one);
    REQUIRE(k.status.ok());

    // The leader's clock saw no keep-alive: it proposes keepalives = 0.
    const Result ex = r.expire(id, 0);
    REQUIRE(ex.ok());
    const Revision at = before + 1;
    CHECK(ex.revision == at);
    CHECK(r->revision() == at);
    CHECK(ex.lease.deleted == std::vector<std::string>{"/svc/a/x", "/svc/b/y", "/svc/z"});

    // One poll, even with room for one event: a revision's events always come together.
    const WatchResponse got = r->poll_watch(w.id, 1);
    REQUIRE(got.events.size() == 3);
    for (const Event& e : got.events) {
      CHECK(e.type == EventType::Deleted);
      CHECK(e.revision == at);
      REQUIRE(e.prev.has_value());
      CHECK(e.prev->lease == id);
    }
    CHECK(got.events[0].path == "/svc/a/x");
    CHECK(got.events[1].path == "/svc/b/y");
    CHECK(got.events[2].path == "/svc/z");
    CHECK(got.progress_revision == at);
    const WatchResponse key = r->poll_watch(k.id, 10);
    REQUIRE(key.events.size() == 1);
    CHECK(key.events[0].path == "/svc/b/y");

    // A replay from the history gives the same batch.
    WatchRequest replay = all;
    replay.start_revision = at;
    const WatchCreated late = r->watch(replay);
    REQUIRE(late.status.ok());
    CHECK(r->poll_watch(late.id, 10).events == got.events);

    // The parents stay (they were created without a lease), with their child counts updated.
    CHECK(r->get("/svc/a").value.num_children == 0);
    CHECK(r->get("/svc").value.num_children == 3);  // a, b, keep
    CHECK(r->exists("/svc/keep").value);
    CHECK(r->exists("/plain").value);

    // Expiring again is a harmless no-op: the lease is gone.
    const Result again = r.expire(id, 0);
    CHECK(again.status.error == Error::LeaseNotFound);
    CHECK(again.revision == at);
    CHECK(r->revision() == at);
  }
}

TEST_CASE("kv lease: an expiry decided before a keep-alive is refused") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Replica r(backend);
    const LeaseId id = r.grant(1000).lease.lease.id;
    REQUIRE(r.op(Op::create("/lock", "", id)).ok());
    // The leader decided at keep-alive count 0; a keep-alive was applied before its entry.
    REQUIRE(r.keepalive(id).ok());
    const Result stale = r.expire(id, 0);
    CHECK(stale.status.error == Error::LeaseRenewed);
    CHECK(r->exists("/lock").value);
    CHECK(r->lease_ttl(id).ok());
    // Once the count agrees, the expiry goes through.
    CHECK(r.expire(id, 1).ok());
    CHECK_FALSE(r->exists("/lock").value);
  }
}

TEST_CASE("kv lease: errors") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Limits limits;
    limits.leases_max = 3;
    limits.lease_keys_max = 2;
    limits.lease_ttl_ms_max = 10'000;
    Replica r(backend, limits);

    CHECK(r.grant(0).status.error == Error::InvalidRequest);
    CHECK(r.grant(10'001).status.error == Error::TooLarge);
    CHECK(r.grant(100, lease_id_max + 1).status.error == Error::InvalidRequest);
    REQUIRE(r.grant(10'000, 5).ok());
    CHECK(r.grant(100, 5).status.error == Error::LeaseExists);
    const LeaseId small = r.grant(100).lease.lease.id;
    CHECK(small == 6);
    REQUIRE(r.grant(100).ok());
    CHECK(r.grant(100).status.error == Error::TooManyLeases);
    CHECK(r->lease_count() == 3);

    CHECK(r.revoke(42).status.error == Error::LeaseNotFound);
    CHECK(r.keepalive(42).status.error == Error::LeaseNotFound);
    CHECK(r.expire(42, 0).status.error == Error::LeaseNotFound);
    CHECK(r->lease_ttl(42).status.error == Error::LeaseNotFound);

    // Keys need an existing lease.
    Result res = r.op(Op::put("/k", "", 42));
    CHECK(res.status.error == Error::LeaseNotFound);
    CHECK(res.failed_op == 0);
    CHECK(r.op(Op::create("/k", "", 42)).status.error == Error::LeaseNotFound);
    CHECK_FALSE(r->exists("/k").value);
    CHECK(r->revision() == 0);

    // The root never takes a lease.
    CHECK(r.op(Op::put("/", "", 5)).status.error == Error::InvalidRequest);
    CHECK(r.op(Op::create("/", "", 5)).status.error == Error::InvalidRequest);

    // Keys per lease are bounded (revoking deletes them all in one revision).
    REQUIRE(r.op(Op::create("/k1", "", 5)).ok());
    REQUIRE(r.op(Op::create("/k2", "", 5)).ok());
    CHECK(r.op(Op::create("/k3", "", 5)).status.error == Error::TooLarge);
    // Re-putting a key on its own lease does not count it twice.
    CHECK(r.op(Op::put("/k1", "again", 5)).ok());
    // Freeing a slot in the same transaction makes room.
    Txn swap;
    swap.success = {Op::remove("/k2"), Op::create("/k3", "", 5)};
    CHECK(r.txn(swap).ok());
    CHECK(keys_of(r.sm(), 5) == std::vector<std::string>{"/k1", "/k3"});

    // ZooKeeper's rule: ephemeral nodes have no children.
    res = r.op(Op::create("/k1/child", ""));
    CHECK(res.status.error == Error::NoChildrenForEphemerals);
    CHECK(r.op(Op::put("/k1/child", "")).status.error == Error::NoChildrenForEphemerals);
    CHECK(r.op(with_parents(Op::put("/k1/a/b", ""))).status.error ==
          Error::NoChildrenForEphemerals);
    CHECK(r.op(Op::create_sequential("/k1/s-", "")).status.error ==
          Error::NoChildrenForEphemerals);
    REQUIRE(r.op(Op::create("/dir", "")).ok());
    REQUIRE(r.op(Op::create("/dir/x", "")).ok());
    CHECK(r.op(Op::put("/dir", "", small)).status.error == Error::NoChildrenForEphemerals);
    // ... also within one transaction, in either order.
    Txn lease_then_child;
    lease_then_child.success = {Op::put("/p", "", small), Op::create("/p/c", "")};
    res = r.txn(lease_then_child);
    CHECK(res.status.error == Error::NoChildrenForEphemerals);
    CHECK(res.failed_op == 1);
    CHECK_FALSE(r->exists("/p").value);
    Txn child_then_lease;
    child_then_lease.success = {Op::create("/dir/y", ""), Op::put("/dir", "", small)};
    res = r.txn(child_then_lease);
    CHECK(res.status.error == Error::NoChildrenForEphemerals);
    CHECK(res.failed_op == 1);
    CHECK_FALSE(r->exists("/dir/y").value);
    // Dropping the lease (put with lease 0) makes it an ordinary node again.
    REQUIRE(r.op(Op::put("/k1", "", 0)).ok());
    CHECK(r.op(Op::create("/k1/child", "")).ok());
  }
}

TEST_CASE("kv lease: the id space ends at lease_id_max") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Replica r(backend);
    REQUIRE(r.grant(100, lease_id_max).ok());
    CHECK(r.grant(100).status.error == Error::TooManyLeases);  // no id left to hand out
    CHECK(r.grant(100, lease_id_max).status.error == Error::LeaseExists);
    REQUIRE(r.revoke(lease_id_max).ok());
    CHECK(r.grant(100).status.error == Error::TooManyLeases);  // still never reused
  }
}

TEST_CASE("kv lease: re-putting moves a key between leases, deleting detaches it") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Replica r(backend);
    const LeaseId a = r.grant(1000).lease.lease.id;
    const LeaseId b = r.grant(1000).lease.lease.id;
    REQUIRE(r.op(Op::put("/k", "1", a)).ok());
    REQUIRE(r.op(Op::put("/j", "1", a)).ok());
    REQUIRE(r.op(Op::put("/k", "2", b)).ok());
    CHECK(keys_of(r.sm(), a) == std::vector<std::string>{"/j"});
    CHECK(keys_of(r.sm(), b) == std::vector<std::string>{"/k"});
    REQUIRE(r.op(Op::put("/j", "2")).ok());  // lease 0: detached
    CHECK(keys_of(r.sm(), a).empty());
    CHECK(r->get("/j").value.lease == 0);
    REQUIRE(r.op(Op::remove("/k")).ok());
    CHECK(keys_of(r.sm(), b).empty());

    // A recursive delete takes ephemeral nodes out of the index too.
    REQUIRE(r.op(Op::create("/d", "")).ok());
    REQUIRE(r.op(Op::create("/d/e", "", b)).ok());
    REQUIRE(r.op(Op::remove("/d", true)).ok());
    CHECK(keys_of(r.sm(), b).empty());

    // Revoking `a` now deletes nothing: /j no longer belongs to it.
    const Revision rev = r->revision();
    const Result rv = r.revoke(a);
    REQUIRE(rv.ok());
    CHECK(rv.lease.deleted.empty());
    CHECK(r->revision() == rev);
    CHECK(r->exists("/j").value);
  }
}

TEST_CASE("kv lease: retried lease commands are applied once") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Replica r(backend);
    Command grant;
    grant.session_id = 9;
    grant.sequence = 1;
    grant.body = LeaseGrant{0, 500};
    const Result first = r.apply(grant);
    REQUIRE(first.ok());
    CHECK(r.apply(grant) == first);  // the same lease, not a second one
    CHECK(r->lease_count() == 1);

    Command keepalive;
    keepalive.session_id = 9;
    keepalive.sequence = 2;
    keepalive.body = LeaseKeepAlive{first.lease.lease.id};
    const Result ka = r.apply(keepalive);
    CHECK(ka.lease.lease.keepalives == 1);
    CHECK(r.apply(keepalive) == ka);
    CHECK(r->lease_ttl(first.lease.lease.id).value.lease.keepalives == 1);

    REQUIRE(r.op(Op::create("/e", "", first.lease.lease.id)).ok());
    Command revoke;
    revoke.session_id = 9;
    revoke.sequence = 3;
    revoke.body = LeaseRevoke{first.lease.lease.id};
    const Result rv = r.apply(revoke);
    REQUIRE(rv.ok());
    CHECK(rv.lease.deleted == std::vector<std::string>{"/e"});
    CHECK(r.apply(revoke) == rv);  // remembered, deleted keys included
  }
}

TEST_CASE("kv lease: codec round trips") {
  for (const Body& body : {Body{LeaseGrant{0, 1500}}, Body{LeaseGrant{1ull << 62, 1}},
                           Body{LeaseRevoke{3}}, Body{LeaseKeepAlive{4}},
                           Body{LeaseExpire{5, 17}}}) {
    Command c;
    c.session_id = 2;
    c.sequence = 3;
    c.body = body;
    const DecodedCommand decoded = decode_command(encode_command(c));
    REQUIRE(decoded.status.ok());
    CHECK(decoded.command == c);
  }
  Result result;
  result.revision = 12;
  result.lease.lease = Lease{3, 1000, 4};
  result.lease.deleted = {"/a", "/b/c"};
  const auto decoded = decode_result(encode_result(result));
  REQUIRE(decoded.has_value());
  CHECK(*decoded == result);
  CHECK(encode_result(*decoded) == encode_result(result));
  // A result without lease fields encodes as before: no lease table.
  Result plain;
  plain.revision = 1;
  CHECK(encode_result(plain).size() < encode_result(result).size());
  CHECK(decode_result(encode_result(plain)) == plain);
}

TEST_CASE("kv lease: snapshots carry leases, their keys and the id counter") {
  for (Backend from : backends) {
    CAPTURE(std::string(to_string(from)));
    Replica source(from);
    const LeaseId a = source.grant(1000).lease.lease.id;
    const LeaseId b = source.grant(2000, 40).lease.lease.id;
    const LeaseId c = source.grant(3000).lease.lease.id;
    CHECK(c == 41);
    REQUIRE(source.revoke(c).ok());  // the counter stays past it
    REQUIRE(source.keepalive(a).ok());
    REQUIRE(source.op(with_parents(Op::put("/x/1", "", a))).ok());
    REQUIRE(source.op(Op::put("/x/2", "", a)).ok());
    REQUIRE(source.op(Op::put("/y", "", b)).ok());
    const std::string bytes = source->snapshot();
    REQUIRE(parse_snapshot(bytes).status.ok());

    for (Backend to : backends) {
      CAPTURE(std::string(to_string(to)));
      Replica restored(to);
      REQUIRE(restored.grant(100).ok());  // replaced by the restore
      REQUIRE(restored->restore(bytes).ok());
      CHECK(restored->snapshot() == bytes);
      CHECK(restored->leases().value == source->leases().value);
      CHECK(restored->lease_count() == 2);
      CHECK(restored->lease_ttl(a).value == source->lease_ttl(a).value);
      CHECK(keys_of(restored.sm(), b) == std::vector<std::string>{"/y"});
      // Both go on identically: the same next id, the same expiry.
      CHECK(restored.grant(10).lease.lease.id == 42);
      const Result ex = restored.expire(a, 1);
      REQUIRE(ex.ok());
      CHECK(ex.lease.deleted == std::vector<std::string>{"/x/1", "/x/2"});
    }
  }
}

TEST_CASE("kv lease: a snapshot whose lease tables disagree with its nodes is refused") {
  const auto corrupt = [](const std::function<void(WriteTxn&)>& damage) {
    MemoryStorage storage;
    {
      StateMachine sm(storage);
      std::vector<AppliedEntry> entries;
      Command c;
      c.body = LeaseGrant{7, 1000};
      entries.push_back({1, encode_command(c)});
      c.body = single(Op::put("/e", "", 7));
      entries.push_back({2, encode_command(c)});
      REQUIRE(sm.apply_batch(entries).at(1).ok());
    }
    {
      const auto txn = storage.write();
      damage(*txn);
      txn->commit();
    }
    return dump_snapshot(*storage.read());
  };
  CHECK(parse_snapshot(corrupt([](WriteTxn&) {})).status.ok());
  const std::vector<std::function<void(WriteTxn&)>> damages = {
      // An index row without its node.
      [](WriteTxn& t) { t.put(Table::LeaseKeys, lease_keys_key(7, "/ghost"), ""); },
      // A node whose index row is missing.
      [](WriteTxn& t) { t.erase(Table::LeaseKeys, lease_keys_key(7, "/e")); },
      // A key count that does not match.
      [](WriteTxn& t) {
        t.put(Table::Leases, lease_key(7), encode_lease(LeaseRecord{1000, 0, 2}));
      },
      // The lease itself missing (and the count with it).
      [](WriteTxn& t) {
        t.erase(Table::Leases, lease_key(7));
        t.put(Table::Meta, meta_key::lease_count, encode_u64(0));
      },
      // The lease count off.
      [](WriteTxn& t) { t.put(Table::Meta, meta_key::lease_count, encode_u64(2)); },
      // A malformed lease record.
      [](WriteTxn& t) { t.put(Table::Leases, lease_key(7), "short"); },
  };
  for (std::size_t i = 0; i < damages.size(); ++i) {
    CAPTURE(i);
    const std::string bytes = corrupt(damages[i]);
    CHECK(parse_snapshot(bytes).status.error == Error::InvalidRequest);
    Replica r(Backend::Memory);
    CHECK(r->restore(bytes).error == Error::InvalidRequest);
    CHECK(r->applied_index() == 0);
  }
}

TEST_CASE("kv lease: the same commands give the same state on both backends") {
  // A fixed mix of lease commands and ephemeral writes, in varied batches.
  std::vector<std::string> log;
  std::uint64_t x = 12345;
  const auto next = [&] { return x = x * 6364136223846793005ull + 1442695040888963407ull; };
  for (int i = 0; i < 600; ++i) {
    Command c;
    const LeaseId id = 1 + (next() >> 40) % 60;
    const std::string key =
        "/d" + std::to_string((next() >> 40) % 4) + "/k" + std::to_string((next() >> 40) % 9);
    switch ((next() >> 40) % 8) {
      case 0: c.body = LeaseGrant{(next() >> 40) % 8 ? 0 : id, 1 + (next() >> 40) % 5000}; break;
      case 1: c.body = LeaseRevoke{id}; break;
      case 2: c.body = LeaseKeepAlive{id}; break;
      case 3: c.body = LeaseExpire{id, (next() >> 40) % 3}; break;
      case 4: c.body = single(Op::remove(key)); break;
      default: c.body = single(with_parents(Op::put(key, "v", (next() >> 40) % 2 ? id : 0))); break;
    }
    if ((next() >> 40) % 3 == 0) {
      c.session_id = 1 + (next() >> 40) % 3;
      c.sequence = static_cast<std::uint64_t>(i) + 1;
    }
    log.push_back(encode_command(c));
  }
  Replica mem(Backend::Memory), disk(Backend::Lmdb);
  std::size_t deleted = 0;
  for (std::size_t i = 0, size = 1; i < log.size(); i += size, size = 1 + i % 7) {
    const std::vector<std::string> batch(log.begin() + static_cast<std::ptrdiff_t>(i),
                                         log.begin() + static_cast<std::ptrdiff_t>(
                                                           std::min(i + size, log.size())));
    const std::vector<Result> a = mem.apply_data(batch);
    const std::vector<Result> b = disk.apply_data(batch);
    CHECK(a == b);
    for (const Result& res : a) deleted += res.lease.deleted.size();
  }
  CHECK(deleted > 0);  // the mix did delete ephemeral keys
  CHECK(mem->snapshot() == disk->snapshot());
  CHECK(mem->leases().value == disk->leases().value);
}

// --- LeaseClock: the leader's countdowns.

TEST_CASE("lease clock: expires at the TTL, not before, and reports once") {
  LeaseClock clock;
  clock.on_become_leader(0);
  clock.on_granted(Lease{1, 1000, 0}, 100);
  clock.on_granted(Lease{2, 500, 0}, 100);
  CHECK(clock.next_deadline() == 600u);
  CHECK(clock.remaining(1, 100) == 1000u);
  CHECK(clock.remaining(1, 350) == 750u);
  CHECK(clock.expired(599).empty());
  CHECK(clock.expired(600) == std::vector<LeaseExpire>{{2, 0}});
  CHECK(clock.expired(700).empty());  // reported once
  CHECK(clock.remaining(2, 700) == 0u);
  CHECK(clock.expired(1099).empty());
  CHECK(clock.expired(5000) == std::vector<LeaseExpire>{{1, 0}});
  CHECK_FALSE(clock.next_deadline().has_value());
}

TEST_CASE("lease clock: keep-alives extend, revoke forgets, dropped expiries come back") {
  LeaseClock clock;
  clock.on_become_leader(0);
  clock.on_granted(Lease{1, 1000, 0}, 0);
  clock.on_keepalive_applied(Lease{1, 1000, 1}, 800);
  CHECK(clock.expired(1000).empty());
  CHECK(clock.remaining(1, 1000) == 800u);
  // A retried keep-alive answered from its session carries an older count: the newest stays.
  clock.on_keepalive_applied(Lease{1, 1000, 0}, 1000);
  CHECK(clock.expired(1999).empty());
  CHECK(clock.expired(2000) == std::vector<LeaseExpire>{{1, 1}});
  clock.on_expire_dropped(1);
  CHECK(clock.expired(2001) == std::vector<LeaseExpire>{{1, 1}});
  // A keep-alive applied after the expiry was reported re-arms the countdown; the expiry
  // entry, if it was proposed, is refused by the state machine (LeaseRenewed).
  clock.on_keepalive_applied(Lease{1, 1000, 2}, 2100);
  CHECK(clock.expired(3099).empty());
  CHECK(clock.expired(3100) == std::vector<LeaseExpire>{{1, 2}});

  clock.on_granted(Lease{2, 100, 0}, 3100);
  clock.on_revoked(2);
  CHECK_FALSE(clock.contains(2));
  CHECK(clock.expired(10'000).empty());
  // Bounded batches, earliest deadline first, then by id.
  for (LeaseId id = 10; id > 5; --id) clock.on_granted(Lease{id, 100 + 10 * (id % 2), 0}, 20'000);
  CHECK(clock.expired(30'000, 2) == std::vector<LeaseExpire>{{6, 0}, {8, 0}});
  CHECK(clock.expired(30'000) == std::vector<LeaseExpire>{{10, 0}, {7, 0}, {9, 0}});
}

TEST_CASE("lease clock: followers count nothing, a new leader restarts every countdown") {
  LeaseClock old_leader, follower;
  old_leader.on_become_leader(0);
  for (LeaseClock* c : {&old_leader, &follower}) c->on_granted(Lease{1, 1000, 0}, 0);
  CHECK(follower.expired(1200).empty());  // past the deadline, but not leading
  CHECK_FALSE(follower.remaining(1, 1200).has_value());

  // The old leader is deposed at 900, just short of the deadline.
  CHECK(old_leader.expired(900).empty());
  old_leader.on_lose_leadership();
  CHECK(old_leader.expired(2000).empty());
  // The follower wins at 1500 (by its own clock): a full TTL from then, never less.
  follower.on_become_leader(1500);
  CHECK(follower.remaining(1, 1500) == 1000u);
  CHECK(follower.expired(2499).empty());
  CHECK(follower.expired(2500) == std::vector<LeaseExpire>{{1, 0}});

  // A replica that starts from the state machine (startup, snapshot) knows every lease.
  LeaseClock fresh;
  fresh.reset({Lease{4, 300, 2}, Lease{5, 100, 0}}, 10);
  CHECK(fresh.size() == 2);
  CHECK(fresh.expired(40).empty());
  fresh.on_become_leader(50);
  CHECK(fresh.expired(349) == std::vector<LeaseExpire>{{5, 0}});
  CHECK(fresh.expired(350) == std::vector<LeaseExpire>{{4, 2}});
}

TEST_CASE("lease clock: a clock stepping back never shortens a lease") {
  LeaseClock clock;
  clock.on_become_leader(1000);
  clock.on_granted(Lease{1, 100, 0}, 1000);
  clock.on_granted(Lease{2, 100, 0}, 500);  // an earlier `now` counts as the latest one
  CHECK(clock.remaining(2, 1000) == 100u);
  CHECK(clock.expired(1099).empty());
  CHECK(clock.expired(1100).size() == 2);
}

// A property test: leases granted, kept alive and revoked, leaders coming and going, time moving
// in random steps. Every expiry the clock reports must come at least a TTL after the latest of
// the grant, the last keep-alive and the start of the current leadership; and every lease past
// that point must have been reported (it does not live on forever either).
TEST_CASE("lease clock: never early, never forgotten (random schedules)") {
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    CAPTURE(seed);
    std::uint64_t x = seed;
    const auto rnd = [&](std::uint64_t n) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      return (x >> 33) % n;
    };
    LeaseClock clock;
    std::uint64_t now = 0, leader_since = 0;
    bool leading = false;
    struct Ref {
      std::uint64_t ttl = 0, last = 0, keepalives = 0;
      bool reported = false;
    };
    std::map<LeaseId, Ref> ref;
    LeaseId next_id = 1;
    for (int step = 0; step < 400; ++step) {
      now += rnd(300);
      switch (rnd(10)) {
        case 0:
        case 1: {
          const Lease l{next_id++, 1 + rnd(1000), 0};
          clock.on_granted(l, now);
          ref[l.id] = Ref{l.ttl_ms, now, 0, false};
          break;
        }
        case 2:
        case 3:
          if (!ref.empty()) {
            auto it = std::next(ref.begin(), static_cast<std::ptrdiff_t>(rnd(ref.size())));
            it->second.keepalives += 1;
            it->second.last = now;
            it->second.reported = false;
            clock.on_keepalive_applied(Lease{it->first, it->second.ttl, it->second.keepalives},
                                       now);
          }
          break;
        case 4:
          if (!ref.empty()) {
            auto it = std::next(ref.begin(), static_cast<std::ptrdiff_t>(rnd(ref.size())));
            clock.on_revoked(it->first);
            ref.erase(it);
          }
          break;
        case 5:
          if (leading) {
            clock.on_lose_leadership();
            leading = false;
          } else {
            clock.on_become_leader(now);
            leading = true;
            leader_since = now;
            for (auto& [id, r] : ref) r.reported = false;
          }
          break;
        default: break;
      }
      for (const LeaseExpire& e : clock.expired(now)) {
        CAPTURE(e.id);
        REQUIRE(ref.contains(e.id));
        Ref& r = ref.at(e.id);
        CHECK(leading);
        CHECK_FALSE(r.reported);
        CHECK(e.keepalives == r.keepalives);
        CHECK(now >= std::max(r.last, leader_since) + r.ttl);  // never early
        r.reported = true;
        // The host applies the expiry right away.
        clock.on_revoked(e.id);
        ref.erase(e.id);
      }
      if (leading) {
        for (const auto& entry : ref) {
          // (Not a structured binding: CAPTURE's lambda cannot name one before C++20's fix in
          // Clang 16.)
          const auto id = entry.first;
          const auto& r = entry.second;
          CAPTURE(id);
          CHECK(now < std::max(r.last, leader_since) + r.ttl);  // never forgotten
        }
      }
    }
  }
}

// The whole loop: a state machine, a leader host with a LeaseClock, time advancing; the host
// proposes what expired and feeds every applied result back.
TEST_CASE("lease clock + state machine: ephemeral keys outlive their TTL, then go at once") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Replica r(backend);
    LeaseClock clock;
    std::uint64_t now = 10'000;
    clock.reset(r->leases().value, now);
    clock.on_become_leader(now);
    const auto apply = [&](Body body) {
      const Result res = r.body(body);
      clock.on_applied(body, res, now);
      return res;
    };
    const LeaseId id = apply(LeaseGrant{0, 1000}).lease.lease.id;
    const std::uint64_t granted_at = now;
    REQUIRE(r.op(with_parents(Op::put("/svc/node-1", "addr", id))).ok());
    REQUIRE(r.op(with_parents(Op::put("/svc/node-1-meta", "m", id))).ok());

    // Keep-alives every 600 ms for a while: never expires.
    std::uint64_t last_keepalive = granted_at;
    for (int i = 0; i < 5; ++i) {
      now += 600;
      CHECK(clock.expired(now).empty());
      REQUIRE(apply(LeaseKeepAlive{id}).ok());
      last_keepalive = now;
    }
    // The client goes quiet; the host polls every 100 ms.
    Revision deleted_at = 0;
    while (deleted_at == 0) {
      now += 100;
      for (const LeaseExpire& e : clock.expired(now)) {
        CHECK(now >= last_keepalive + 1000);
        const Result res = apply(e);
        REQUIRE(res.ok());
        CHECK(res.lease.deleted == std::vector<std::string>{"/svc/node-1", "/svc/node-1-meta"});
        deleted_at = res.revision;
      }
      REQUIRE(now < last_keepalive + 10'000);
    }
    CHECK(now == last_keepalive + 1000);
    CHECK_FALSE(r->exists("/svc/node-1").value);
    CHECK_FALSE(clock.contains(id));
    // Both keys went at one revision.
    CHECK(r->get("/svc/node-1", deleted_at - 1).ok());
    CHECK(r->get("/svc/node-1-meta", deleted_at - 1).ok());
    CHECK(r->revision() == deleted_at);
  }
}
