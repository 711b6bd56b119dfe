// Scenario tests of the state machine's operations, each run on both backends.
#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kv_test_util.h"

using namespace kvtest;

namespace {

const Backend backends[] = {Backend::Memory, Backend::Lmdb};

}  // namespace

TEST_CASE("kv sm: create, get, put, delete and their metadata") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Replica r(backend);
    CHECK(r->revision() == 0);
    const auto root = r->get("/");
    REQUIRE(root.ok());
    CHECK(root.value.num_children == 0);

    Result res = r.op(Op::create("/app", "v1"));
    REQUIRE(res.ok());
    CHECK(res.revision == 1);
    REQUIRE(res.ops.size() == 1);
    CHECK(res.ops[0].path == "/app");

    auto app = r->get("/app");
    REQUIRE(app.ok());
    CHECK(app.revision == 1);
    CHECK(app.value == Node{"v1", 1, 1, 0, 0, 0, 0});
    CHECK(r->get("/").value.num_children == 1);
    CHECK(r->get("/").value.children_version == 1);

    CHECK(r.op(Op::create("/app", "again")).status.error == Error::AlreadyExists);
    CHECK(r->revision() == 1);  // a failed request does not move the revision

    REQUIRE(r.grant(1000, 7).ok());  // a lease must exist to be attached
    res = r.op(Op::put("/app", "v2", 7));
    REQUIRE(res.ok());
    CHECK_FALSE(res.ops[0].created);
    app = r->get("/app");
    CHECK(app.value == Node{"v2", 1, 2, 1, 0, 0, 7});

    // ZooKeeper semantics: the parent must exist, unless parents is set.
    res = r.op(Op::put("/x/y", "v"));
    CHECK(res.status.error == Error::NotFound);
    CHECK(res.failed_op == 0);
    Op put_parents = Op::put("/x/y", "v");
    put_parents.parents = true;
    res = r.op(put_parents);
    REQUIRE(res.ok());
    CHECK(res.ops[0].created);
    CHECK(r->get("/x").value == Node{"", 3, 3, 0, 1, 1, 0});
    CHECK(r->exists("/x/y").value);
    CHECK_FALSE(r->exists("/x/z").value);

    CHECK(r.op(Op::remove("/x")).status.error == Error::NotEmpty);
    CHECK(r.op(Op::remove("/nope")).status.error == Error::NotFound);
    res = r.op(Op::remove("/x", /*recursive=*/true));
    REQUIRE(res.ok());
    CHECK(res.ops[0].deleted == 2);
    CHECK(r->get("/x").status.error == Error::NotFound);
    CHECK(r->get("/").value.num_children == 1);
    CHECK(r->get("/").value.children_version == 3);
    CHECK(r->revision() == 4);

    // Reads at the past still see what was there.
    CHECK(r->get("/x/y", 3).value.value == "v");
    CHECK(r->get("/app", 1).value.value == "v1");
    CHECK(r->get("/app", 2).value.value == "v2");
    CHECK(r->get("/", 3).value.num_children == 2);
    CHECK(r->get("/app", 9).status.error == Error::FutureRevision);
  }
}

TEST_CASE("kv sm: sequential creates count per parent and never reuse a number") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Replica r(backend);
    REQUIRE(r.op(Op::create("/locks", "")).ok());
    REQUIRE(r.op(Op::create("/other", "")).ok());
    std::vector<std::string> names;
    for (int i = 0; i < 3; ++i) {
      const Result res = r.op(Op::create_sequential("/locks/lock-", "me"));
      REQUIRE(res.ok());
      names.push_back(res.ops[0].path);
    }
    CHECK(names == std::vector<std::string>{"/locks/lock-0000000000", "/locks/lock-0000000001",
                                            "/locks/lock-0000000002"});
    REQUIRE(r.op(Op::remove(names[2])).ok());
    CHECK(r.op(Op::create_sequential("/locks/lock-", "")).ops[0].path == "/locks/lock-0000000003");
    CHECK(r.op(Op::create_sequential("/locks/", "")).ops[0].path == "/locks/0000000004");
    CHECK(r.op(Op::create_sequential("/other/n", "")).ops[0].path == "/other/n0000000000");
    CHECK(r.op(Op::create_sequential("/missing/n", "")).status.error == Error::NotFound);
    Op with_parents = Op::create_sequential("/missing/n", "");
    with_parents.parents = true;
    CHECK(r.op(with_parents).ops[0].path == "/missing/n0000000000");
    // A node already holding the next name makes the create fail, without using the number.
    REQUIRE(r.op(Op::create("/other/n0000000001", "")).ok());
    CHECK(r.op(Op::create_sequential("/other/n", "")).status.error == Error::AlreadyExists);
    REQUIRE(r.op(Op::remove("/other/n0000000001")).ok());
    CHECK(r.op(Op::create_sequential("/other/n", "")).ops[0].path == "/other/n0000000001");
  }
}

TEST_CASE("kv sm: compare-and-set and transactions") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Replica r(backend);
    REQUIRE(r.op(Op::create("/k", "a")).ok());

    Result res = r.txn(compare_and_set_version("/k", 5, "b"));
    CHECK(res.status.error == Error::CompareFailed);
    CHECK(res.failed_compare == 0);
    CHECK_FALSE(res.succeeded);
    CHECK(r->revision() == 1);
    res = r.txn(compare_and_set_version("/k", 0, "b"));
    REQUIRE(res.ok());
    CHECK(res.revision == 2);
    CHECK(r.txn(compare_and_set_mod_revision("/k", 1, "c")).status.error == Error::CompareFailed);
    CHECK(r.txn(compare_and_set_mod_revision("/k", 2, "c")).ok());
    CHECK(r.txn(compare_and_set_value("/k", "b", "d")).status.error == Error::CompareFailed);
    CHECK(r.txn(compare_and_set_value("/k", "c", "d")).ok());
    CHECK(r->get("/k").value.value == "d");
    CHECK(r->get("/k").value.version == 3);

    // Comparisons on a missing node are false, except Exists.
    CHECK(r.txn(compare_and_set_version("/missing", 0, "x")).status.error == Error::CompareFailed);

    // Else branch: the request succeeds with succeeded = false.
    Txn t;
    t.compares.push_back(Compare::missing("/k"));
    t.success.push_back(Op::create("/k", "new"));
    t.failure.push_back(Op::get("/k"));
    t.failure.push_back(Op::get("/nothing"));
    res = r.txn(t);
    REQUIRE(res.ok());
    CHECK_FALSE(res.succeeded);
    CHECK(res.failed_compare == 0);
    REQUIRE(res.ops.size() == 2);
    REQUIRE(res.ops[0].node.has_value());
    CHECK(res.ops[0].node->value == "d");
    CHECK_FALSE(res.ops[1].node.has_value());
    CHECK(res.revision == 4);  // reads only: no new revision

    // All or nothing: the second create fails, so the first one never happened.
    Txn batch;
    batch.success.push_back(Op::create("/t1", "1"));
    batch.success.push_back(Op::create("/t1/child", "2"));
    batch.success.push_back(Op::create("/k", "exists"));
    res = r.txn(batch);
    CHECK(res.status.error == Error::AlreadyExists);
    CHECK(res.failed_op == 2);
    CHECK(res.ops.empty());
    CHECK_FALSE(r->exists("/t1").value);
    CHECK(r->revision() == 4);

    // Without the failing op the transaction is one revision for all of its writes.
    batch.success.pop_back();
    batch.success.push_back(Op::put("/k", "e"));
    res = r.txn(batch);
    REQUIRE(res.ok());
    CHECK(res.revision == 5);
    CHECK(r->get("/t1").value.create_revision == 5);
    CHECK(r->get("/t1/child").value.create_revision == 5);
    CHECK(r->get("/t1").value.num_children == 1);
    CHECK(r->get("/k").value.mod_revision == 5);

    // One branch may change a node's value once.
    Txn twice;
    twice.success.push_back(Op::put("/k", "1"));
    twice.success.push_back(Op::put("/k", "2"));
    CHECK(r.txn(twice).status.error == Error::InvalidRequest);
    Txn create_then_delete;
    create_then_delete.success.push_back(Op::create("/t2", ""));
    create_then_delete.success.push_back(Op::remove("/t2"));
    CHECK(r.txn(create_then_delete).status.error == Error::InvalidRequest);
    // ... but children of a node may change along with it.
    Txn siblings;
    siblings.success.push_back(Op::create("/t1/a", ""));
    siblings.success.push_back(Op::create("/t1/b", ""));
    siblings.success.push_back(Op::put("/t1", "parent"));
    siblings.success.push_back(Op::remove("/t1/child"));
    REQUIRE(r.txn(siblings).ok());
    CHECK(r->get("/t1").value == Node{"parent", 5, 6, 1, 2, 4, 0});
  }
}

TEST_CASE("kv sm: list and range pages") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Limits limits;
    limits.list_page_max = 3;
    limits.range_page_max = 4;
    limits.range_page_bytes_max = 10;
    limits.value_bytes_max = 8;
    limits.txn_read_bytes_max = 8;
    Replica r(backend, limits);
    for (const char* p : {"/a", "/a/b", "/a/b-x", "/a/b/c", "/a/b0", "/a/c", "/ab", "/a/b/c/d"}) {
      REQUIRE(r.op(Op::create(p, "12345")).ok());
    }
    auto page = r->list("/a");
    REQUIRE(page.ok());
    CHECK(page.value.names == std::vector<std::string>{"b", "b-x", "b0"});
    CHECK(page.value.more);
    ListOptions next;
    next.start_after = "b0";
    page = r->list("/a", next);
    CHECK(page.value.names == std::vector<std::string>{"c"});
    CHECK_FALSE(page.value.more);
    CHECK(r->list("/").value.names == std::vector<std::string>{"a", "ab"});
    CHECK(r->list("/nope").status.error == Error::NotFound);

    // Bytes limit: two 5-byte values per page.
    auto range = r->range("/a");
    REQUIRE(range.ok());
    REQUIRE(range.value.nodes.size() == 2);
    CHECK(range.value.nodes[0].path == "/a");
    CHECK(range.value.nodes[1].path == "/a/b");
    CHECK(range.value.more);
    RangeOptions keys;
    keys.keys_only = true;
    range = r->range("/a", keys);
    std::vector<std::string> paths;
    for (const auto& kv : range.value.nodes) paths.push_back(kv.path);
    CHECK(paths == std::vector<std::string>{"/a", "/a/b", "/a/b-x", "/a/b/c"});
    CHECK(range.value.nodes[0].node.value.empty());
    keys.start_after = "/a/b/c";
    range = r->range("/a", keys);
    paths.clear();
    for (const auto& kv : range.value.nodes) paths.push_back(kv.path);
    CHECK(paths == std::vector<std::string>{"/a/b/c/d", "/a/b0", "/a/c"});
    CHECK_FALSE(range.value.more);

    // The same pages at a past revision, from the history.
    const Revision before = r->revision();
    REQUIRE(r.op(Op::remove("/a/b", true)).ok());
    REQUIRE(r.op(Op::create("/a/bb", "")).ok());
    ListOptions past;
    past.revision = before;
    page = r->list("/a", past);
    CHECK(page.value.names == std::vector<std::string>{"b", "b-x", "b0"});
    CHECK(page.revision == before);
    CHECK(r->list("/a").value.names == std::vector<std::string>{"b-x", "b0", "bb"});
    RangeOptions past_keys;
    past_keys.revision = before;
    past_keys.keys_only = true;
    paths.clear();
    for (const auto& kv : r->range("/a", past_keys).value.nodes) paths.push_back(kv.path);
    CHECK(paths == std::vector<std::string>{"/a", "/a/b", "/a/b-x", "/a/b/c"});
  }
}

TEST_CASE("kv sm: compaction bounds past reads") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Replica r(backend);
    REQUIRE(r.op(Op::create("/k", "1")).ok());   // 1
    REQUIRE(r.op(Op::put("/k", "2")).ok());      // 2
    REQUIRE(r.op(Op::create("/d", "x")).ok());   // 3
    REQUIRE(r.op(Op::remove("/d")).ok());        // 4
    REQUIRE(r.op(Op::create("/k/c", "")).ok());  // 5: /k's children change only
    REQUIRE(r.op(Op::put("/k", "3")).ok());      // 6

    CHECK(r.compact(0).status.error == Error::InvalidRequest);
    CHECK(r.compact(7).status.error == Error::FutureRevision);
    Result res = r.compact(5);
    REQUIRE(res.ok());
    CHECK(r->compact_revision() == 5);
    CHECK(r->revision() == 6);  // compaction is not a write to the tree
    res = r.compact(3);
    CHECK(res.status.error == Error::Compacted);
    CHECK(res.status.compact_revision == 5);

    const auto old = r->get("/k", 4);
    CHECK(old.status.error == Error::Compacted);
    CHECK(old.status.compact_revision == 5);
    const auto at5 = r->get("/k", 5);
    REQUIRE(at5.ok());
    CHECK(at5.value == Node{"2", 1, 2, 1, 1, 1, 0});
    CHECK(r->get("/d", 5).status.error == Error::NotFound);
    CHECK(r->get("/k").value.value == "3");
    CHECK(r->list("/", ListOptions{5, "", 0}).value.names == std::vector<std::string>{"k"});
    REQUIRE(r.compact(6).ok());
    CHECK(r->get("/k", 6).value.value == "3");
    CHECK(r->get("/k/c", 6).ok());
  }
}

TEST_CASE("kv sm: sessions apply each request once") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Limits limits;
    limits.sessions_max = 2;
    Replica r(backend, limits);
    const Result first = r.txn(single(Op::create_sequential("/n", "")), 10, 1);
    REQUIRE(first.ok());
    // A retry gets the first result and changes nothing.
    const Result retry = r.txn(single(Op::create_sequential("/n", "")), 10, 1);
    CHECK(retry == first);
    CHECK(r->revision() == 1);
    CHECK(r->list("/").value.names.size() == 1);
    // Errors are remembered too.
    const Result bad = r.txn(single(Op::create("/n0000000000", "")), 10, 2);
    CHECK(bad.status.error == Error::AlreadyExists);
    REQUIRE(r.op(Op::remove("/n0000000000")).ok());
    CHECK(r.txn(single(Op::create("/n0000000000", "")), 10, 2) == bad);
    // An older sequence is refused without being applied.
    const Result stale = r.txn(single(Op::create("/stale", "")), 10, 1);
    CHECK(stale.status.error == Error::StaleSequence);
    CHECK_FALSE(r->exists("/stale").value);

    // Least recently used (by applied index) goes first: 10 was used last at the stale request,
    // so after 11 and 12, session 10 is forgotten.
    CHECK(r.txn(single(Op::create("/s11", "")), 11, 1).ok());
    CHECK(r->session_count() == 2);
    CHECK(r.txn(single(Op::create("/s12", "")), 12, 1).ok());
    CHECK(r->session_count() == 2);
    // Session 10 forgotten: sequence 2 runs again (and fails differently now).
    const Result again = r.txn(single(Op::create("/n0000000000", "")), 10, 2);
    CHECK(again.ok());
    // Session 11 was evicted by 10's return; 12 is still remembered.
    CHECK(r.txn(single(Op::create("/s12", "")), 12, 1).ok());
  }
}

TEST_CASE("kv sm: no-op entries and batches") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Replica r(backend);
    Command c;
    c.body = single(Op::create("/a", ""));
    const auto results = r.apply_data({"", encode_command(c), "", encode_command(c)});
    REQUIRE(results.size() == 4);
    CHECK(results[0].ok());
    CHECK(results[1].ok());
    CHECK(results[3].status.error == Error::AlreadyExists);
    CHECK(r->applied_index() == 4);
    CHECK(r->revision() == 1);
  }
}

TEST_CASE("kv sm: state survives reopening the LMDB environment") {
  TempDir dir;
  const LmdbOptions options = test_lmdb_options(dir.path() + "/db");
  {
    LmdbStorage storage(options);
    StateMachine sm(storage);
    Command c;
    c.body = single(Op::create("/persist", "yes"));
    sm.apply_batch({AppliedEntry{1, encode_command(c)}, AppliedEntry{2, ""}});
  }
  LmdbStorage storage(options);
  StateMachine sm(storage);
  CHECK(sm.applied_index() == 2);
  CHECK(sm.revision() == 1);
  CHECK(sm.get("/persist").value.value == "yes");
}

TEST_CASE("kv sm: a storage failure aborts the whole batch") {
  TempDir dir;
  LmdbOptions options = test_lmdb_options(dir.path() + "/db");
  options.map_bytes = 1 << 20;
  LmdbStorage storage(options);
  Limits limits;
  limits.value_bytes_max = 256 << 10;
  StateMachine sm(storage, limits);
  Command c;
  c.body = single(Op::create("/small", "x"));
  sm.apply_batch({AppliedEntry{1, encode_command(c)}});
  const std::string before = sm.snapshot();

  std::vector<AppliedEntry> big;
  for (int i = 0; i < 8; ++i) {
    Command put;
    put.body = single(Op::put("/big" + std::to_string(i), std::string(200 << 10, 'x')));
    big.push_back(AppliedEntry{2 + static_cast<Index>(i), encode_command(put)});
  }
  bool threw = false;
  try {
    sm.apply_batch(big);
  } catch (const StorageError& e) {
    threw = true;
    CHECK(std::string(e.what()).find("MDB_MAP_FULL") != std::string::npos);
  }
  CHECK(threw);
  CHECK(sm.applied_index() == 1);
  CHECK(sm.revision() == 1);
  CHECK(sm.snapshot() == before);
  // The replica goes on with smaller batches.
  big.resize(1);
  CHECK(sm.apply_batch(big).at(0).ok());
  CHECK(sm.applied_index() == 2);
}

namespace {

// MemoryStorage whose next commit fails, as LMDB's does on a full disk (the transaction is
// then aborted and nothing changed).
class CommitFailsOnce final : public Storage {
 public:
  bool fail_next = false;

  std::unique_ptr<ReadTxn> read() override { return inner_.read(); }
  std::unique_ptr<ReadTxn> pin() override { return inner_.pin(); }
  std::unique_ptr<WriteTxn> write() override { return std::make_unique<Txn>(inner_.write(), fail_next); }
  std::size_t key_bytes_max() const override { return inner_.key_bytes_max(); }

 private:
  class Txn final : public WriteTxn {
   public:
    Txn(std::unique_ptr<WriteTxn> inner, bool& fail) : inner_(std::move(inner)), fail_(fail) {}
    std::optional<std::string> get(Table t, std::string_view k) const override { return inner_->get(t, k); }
    std::unique_ptr<Cursor> cursor(Table t) const override { return inner_->cursor(t); }
    std::uint64_t rows(Table t) const override { return inner_->rows(t); }
    void put(Table t, std::string_view k, std::string_view v) override { inner_->put(t, k, v); }
    void erase(Table t, std::string_view k) override { inner_->erase(t, k); }
    void clear(Table t) override { inner_->clear(t); }
    void commit() override {
      if (std::exchange(fail_, false)) throw StorageError(28, "no space (test)");
      inner_->commit();
    }

   private:
    std::unique_ptr<WriteTxn> inner_;
    bool& fail_;
  };
  MemoryStorage inner_;
};

}  // namespace

TEST_CASE("kv sm: apply_batch decides the results before its commit, and after a failed commit the retry decides the same") {
  CommitFailsOnce storage;
  StateMachine sm(storage);
  Op put = Op::put("/app/x", "v1");
  put.parents = true;
  Command first;
  first.body = single(put);
  Command cas;
  cas.body = single(Op::put("/app/x", "v2"));
  const std::vector<AppliedEntry> entries{{1, encode_command(first)}, {2, encode_command(cas)}};

  storage.fail_next = true;
  std::vector<Result> decided;
  CHECK_THROWS_AS(sm.apply_batch(entries, [&](const std::vector<Result>& r) { decided = r; }), StorageError);
  REQUIRE(decided.size() == 2);
  CHECK(decided[0].ok());
  CHECK(decided[1].revision == 2);
  CHECK(sm.applied_index() == 0);  // the commit failed: nothing changed
  CHECK(sm.get("/app/x").status.error == Error::NotFound);

  std::vector<Result> again;
  const std::vector<Result> results = sm.apply_batch(entries, [&](const std::vector<Result>& r) {
    again = r;
    CHECK(sm.applied_index() == 0);  // decided before the commit
  });
  CHECK(again == decided);
  CHECK(results == decided);
  CHECK(sm.applied_index() == 2);
  CHECK(sm.get("/app/x").value.value == "v2");
}
