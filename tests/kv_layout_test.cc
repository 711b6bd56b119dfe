// Layout formats 3 and 4 (kv/layout.h; 4 changed only the record encoding, tested in
// kv_record_format_test.cc): each value is stored once, in Changes; Nodes holds the live
// nodes without values and the version index beside them. Compaction keeps exactly the versions a read at the compaction point needs, from
// both tables, and snapshots of other formats are refused by name.
#include <doctest/doctest.h>

#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kv/layout.h"
#include "kv/snapshot.h"
#include "kv_test_util.h"

using namespace kvtest;

namespace {

// A state machine whose storage the test can look into.
struct Inspected {
  explicit Inspected(Backend backend) {
    if (backend == Backend::Memory) {
      storage = std::make_unique<MemoryStorage>();
    } else {
      dir = std::make_unique<TempDir>();
      storage = std::make_unique<LmdbStorage>(test_lmdb_options(dir->path() + "/db"));
    }
    sm = std::make_unique<StateMachine>(*storage);
  }
  Result op(Op op) {
    Command c;
    c.body = single(std::move(op));
    return apply(c);
  }
  Result compact(Revision revision) {
    Command c;
    c.body = Compact{revision};
    return apply(c);
  }
  Result apply(const Command& c) {
    return sm->apply_batch({AppliedEntry{sm->applied_index() + 1, encode_command(c)}}).at(0);
  }
  // Every row of one table.
  std::map<std::string, std::string> rows(Table table) {
    std::map<std::string, std::string> out;
    const auto txn = storage->read();
    const auto cursor = txn->cursor(table);
    for (bool found = cursor->seek(""); found; found = cursor->next()) {
      out.emplace(cursor->key(), cursor->value());
    }
    return out;
  }
  // The revisions `path` has versions at, per the index and per Changes (which must agree).
  std::vector<Revision> versions(const std::string& path) {
    std::vector<Revision> indexed, stored;
    for (const auto& [key, value] : rows(Table::Nodes)) {
      const auto k = parse_history_key(key);
      if (k && k->path == path) indexed.push_back(k->revision);
    }
    for (const auto& [key, value] : rows(Table::Changes)) {
      const auto k = parse_change_key(key);
      REQUIRE(k.has_value());
      if (k->path == path) stored.push_back(k->revision);
    }
    CHECK(indexed == stored);
    return stored;
  }

  std::unique_ptr<TempDir> dir;
  std::unique_ptr<Storage> storage;
  std::unique_ptr<StateMachine> sm;
};

constexpr Backend backends[] = {Backend::Memory, Backend::Lmdb};

}  // namespace

TEST_CASE("kv layout: each value is stored once, in Changes, and Nodes holds none") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Inspected s(backend);
    const std::string first(300, 'A'), second(300, 'B');
    REQUIRE(s.op(Op::create("/k", first)).ok());  // 1
    REQUIRE(s.op(Op::put("/k", second)).ok());     // 2
    REQUIRE(s.op(Op::create("/k/c", "")).ok());    // 3: /k's children only

    std::map<std::string, int> holders;  // which tables hold each value
    for (std::size_t t = 0; t < table_count; ++t) {
      for (const auto& [key, value] : s.rows(static_cast<Table>(t))) {
        if (value.find(first) != std::string::npos) holders[std::string("first in ") + table_name(static_cast<Table>(t))] += 1;
        if (value.find(second) != std::string::npos) holders[std::string("second in ") + table_name(static_cast<Table>(t))] += 1;
      }
    }
    CHECK(holders == std::map<std::string, int>{{std::string("first in ") + table_name(Table::Changes), 1},
                                                {std::string("second in ") + table_name(Table::Changes), 1}});
    std::vector<std::string> order;  // Nodes keys: each live row, then its versions
    for (const auto& [key, value] : s.rows(Table::Nodes)) {
      if (const auto version = parse_history_key(key)) {
        order.push_back(std::string(version->path) + "@" + std::to_string(version->revision));
        CHECK(value.size() == 1);
        continue;
      }
      order.push_back(key);
      const auto record = decode_record(value);
      REQUIRE(record.has_value());
      CHECK(record->kind == RecordKind::Metadata);
    }
    CHECK(order == std::vector<std::string>{"/", "/@0", "/@1", "/k", "/k@1", "/k@2",
                                            "/k@3", "/k/c", "/k/c@3"});
    const auto k = s.rows(Table::Changes);
    CHECK(decode_record(k.at(change_key(2, "/k")))->kind == RecordKind::Value);
    CHECK(decode_record(k.at(change_key(3, "/k")))->kind == RecordKind::Metadata);
    CHECK(decode_record(k.at(change_key(3, "/k")))->node.mod_revision == 2);
    // The live node's value comes from its row at mod_revision.
    CHECK(s.sm->get("/k").value.value == second);
    CHECK(s.sm->get("/k", 1).value.value == first);
    CHECK(s.sm->get("/k", 3).value.num_children == 1);
  }
}

TEST_CASE("kv layout: compaction keeps the value row under a metadata-only newest version") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Inspected s(backend);
    REQUIRE(s.op(Op::create("/p", "v0")).ok());    // 1
    REQUIRE(s.op(Op::put("/p", "v1")).ok());       // 2: the value the later versions point at
    REQUIRE(s.op(Op::create("/p/a", "")).ok());    // 3: metadata only
    REQUIRE(s.op(Op::create("/p/b", "")).ok());    // 4: metadata only
    REQUIRE(s.op(Op::create("/x", "")).ok());      // 5
    REQUIRE(s.compact(5).ok());
    // Below 5: 2 holds the value, 4 is the newest; 1 and 3 go, from both tables.
    CHECK(s.versions("/p") == std::vector<Revision>{2, 4});
    CHECK(s.sm->get("/p").value.value == "v1");
    const auto at5 = s.sm->get("/p", 5);
    REQUIRE(at5.ok());
    CHECK(at5.value == Node{"v1", 1, 2, 1, 2, 2, 0});
    CHECK(s.sm->get("/p", 4).status.error == Error::Compacted);

    // A watcher from the compaction point sees the next update with the retained value as its
    // previous node, by replay as well as live.
    REQUIRE(s.op(Op::put("/p", "v2")).ok());  // 6
    WatchRequest request;
    request.filter = WatchFilter{WatchKind::Subtree, "/p"};
    request.start_revision = 5;
    request.prev_value = true;
    const WatchCreated created = s.sm->watch(request);
    REQUIRE(created.status.ok());
    const WatchResponse got = s.sm->poll_watch(created.id, 10);
    REQUIRE(got.events.size() == 1);
    CHECK(got.events[0].type == EventType::Updated);
    REQUIRE(got.events[0].prev.has_value());
    CHECK(got.events[0].prev->value == "v1");
    CHECK(got.events[0].node->value == "v2");

    // Compacting further drops what the new value supersedes; a second compaction over paths
    // that did not change keeps their rows.
    REQUIRE(s.compact(6).ok());
    // The event at 6 still needs its previous node (4, with its value at 2).
    CHECK(s.versions("/p") == std::vector<Revision>{2, 4, 6});
    REQUIRE(s.op(Op::put("/x", "y")).ok());  // 7
    REQUIRE(s.compact(7).ok());
    CHECK(s.versions("/p") == std::vector<Revision>{6});
    CHECK(s.versions("/x") == std::vector<Revision>{5, 7});
    CHECK(s.versions("/p/a") == std::vector<Revision>{3});
    CHECK(s.sm->get("/p", 7).value.value == "v2");
    // The compacted state is a valid snapshot, restored alike on either backend.
    const std::string bytes = s.sm->snapshot();
    for (Backend target : backends) {
      Replica r(target);
      REQUIRE(r->restore(bytes).ok());
      CHECK(r->snapshot() == bytes);
      CHECK(r->get("/p", 7).value.value == "v2");
    }
  }
}

TEST_CASE("kv layout: reads at a past revision after compaction, across a delete and recreate") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Inspected s(backend);
    REQUIRE(s.op(Op::create("/a", "1")).ok());    // 1
    REQUIRE(s.op(Op::put("/a", "2")).ok());       // 2
    REQUIRE(s.op(Op::create("/b", "b")).ok());    // 3
    REQUIRE(s.op(Op::remove("/a")).ok());         // 4
    REQUIRE(s.op(Op::create("/a", "3")).ok());    // 5
    REQUIRE(s.op(Op::put("/a", "4")).ok());       // 6
    REQUIRE(s.op(Op::put("/b", "bb")).ok());      // 7
    REQUIRE(s.compact(6).ok());
    // /a's newest version below 6 is its recreation at 5; the tombstone and the first life go.
    CHECK(s.versions("/a") == std::vector<Revision>{5, 6});
    CHECK(s.versions("/b") == std::vector<Revision>{3, 7});
    for (Revision at : {Revision{6}, Revision{7}}) {
      CAPTURE(at);
      const auto a = s.sm->get("/a", at);
      REQUIRE(a.ok());
      CHECK(a.value == Node{"4", 5, 6, 1, 0, 0, 0});
      CHECK(s.sm->get("/b", at).value.value == (at == 6 ? "b" : "bb"));
      CHECK(s.sm->list("/", ListOptions{at, "", 0}).value.names ==
            std::vector<std::string>{"a", "b"});
    }
    RangeOptions past;
    past.revision = 6;
    const auto range = s.sm->range("/", past);
    REQUIRE(range.ok());
    REQUIRE(range.value.nodes.size() == 3);
    CHECK(range.value.nodes[1].node.value == "4");
    CHECK(range.value.nodes[2].node.value == "b");
    past.keys_only = true;
    CHECK(s.sm->range("/", past).value.nodes[2].node.value.empty());
    CHECK(s.sm->get("/a", 5).status.error == Error::Compacted);
    // Deleting now and compacting past the deletion leaves /a no rows at all.
    REQUIRE(s.op(Op::remove("/a")).ok());  // 8
    REQUIRE(s.op(Op::put("/b", "c")).ok());  // 9
    REQUIRE(s.compact(9).ok());
    CHECK(s.versions("/a").empty());
    CHECK(s.sm->get("/a", 9).status.error == Error::NotFound);
    CHECK(s.sm->get("/b", 9).value.value == "c");
  }
}

TEST_CASE("kv layout: restore refuses a snapshot of another layout format, by name") {
  Replica source(Backend::Memory);
  REQUIRE(source.op(Op::create("/k", "v")).ok());
  const std::string good = source->snapshot();
  REQUIRE(parse_snapshot(good).status.ok());
  // The format sits after the 8-byte magic; the trailer is FNV-1a over everything before it.
  std::string old = good.substr(0, good.size() - 8);
  old.replace(8, 8, encode_u64(2));
  old += encode_u64(snapshot_checksum(old));
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Replica r(backend);
    REQUIRE(r.op(Op::create("/mine", "x")).ok());
    const Status s = r->restore(old);
    CHECK(s.error == Error::InvalidRequest);
    CHECK(s.message.find("layout format 2") != std::string::npos);
    CHECK(s.message.find("formats 3 and 4") != std::string::npos);
    CHECK(r->get("/mine").ok());  // nothing changed
    CHECK(r->applied_index() == 1);
  }
}

TEST_CASE("kv layout: a snapshot whose versions disagree with each other or with the nodes is refused") {
  const auto damaged = [](const std::function<void(WriteTxn&)>& damage) {
    MemoryStorage storage;
    {
      StateMachine sm(storage);
      std::vector<AppliedEntry> entries;
      Command c;
      c.body = single(Op::create("/k", "v"));
      entries.push_back({1, encode_command(c)});
      c.body = single(Op::create("/k/c", ""));
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
  CHECK(parse_snapshot(damaged([](WriteTxn&) {})).status.ok());
  // Each damage, and why the snapshot is refused.
  const std::vector<std::pair<std::function<void(WriteTxn&)>, std::string>> damages = {
      // A value row lost with its index entry: a metadata version comes first.
      {[](WriteTxn& t) {
         t.erase(Table::Changes, change_key(1, "/k"));
         t.erase(Table::Nodes, history_key("/k", 1));
       },
       "a node's versions do not follow one another"},
      // The index without its row.
      {[](WriteTxn& t) { t.erase(Table::Changes, change_key(2, "/k/c")); },
       "the history index disagrees with the changes"},
      // The index naming another kind.
      {[](WriteTxn& t) {
         t.put(Table::Nodes, history_key("/k", 2), encode_kind(RecordKind::Value));
       },
       "the history index disagrees with the changes"},
      // A metadata version pointing at a revision without its value.
      {[](WriteTxn& t) {
         NodeRecord metadata;
         metadata.kind = RecordKind::Metadata;
         metadata.node.num_children = 1;
         t.put(Table::Changes, change_key(2, "/k"), encode_record(metadata));
       },
       "a metadata version without its value"},
      // A node pointing at a metadata version for its value.
      {[](WriteTxn& t) {
         NodeRecord node;
         node.kind = RecordKind::Metadata;
         node.node.create_revision = 1;
         node.node.mod_revision = 2;
         t.put(Table::Nodes, "/k", encode_record(node));
       },
       "a node without its value"},
      // A node with no versions.
      {[](WriteTxn& t) {
         NodeRecord ghost;
         ghost.kind = RecordKind::Metadata;
         t.put(Table::Nodes, "/ghost", encode_record(ghost));
       },
       "the nodes disagree with their versions"},
      // A node gone from the nodes but not from its versions.
      {[](WriteTxn& t) { t.erase(Table::Nodes, "/k/c"); },
       "the nodes disagree with their versions"},
      // A deletion of a node that never existed.
      {[](WriteTxn& t) {
         NodeRecord tombstone;
         tombstone.kind = RecordKind::Tombstone;
         t.put(Table::Changes, change_key(2, "/z"), encode_record(tombstone));
         t.put(Table::Nodes, history_key("/z", 2), encode_kind(RecordKind::Tombstone));
       },
       "a node's versions do not follow one another"},
      // A version beyond the revision (a watcher replaying it would pass the head).
      {[](WriteTxn& t) {
         NodeRecord created;
         created.node.create_revision = created.node.mod_revision = 9;
         t.put(Table::Changes, change_key(9, "/later"), encode_record(created));
         t.put(Table::Nodes, history_key("/later", 9), encode_kind(RecordKind::Value));
         created.kind = RecordKind::Metadata;
         t.put(Table::Nodes, "/later", encode_record(created));
       },
       "a version beyond the revision"},
      // A node with its value inline, as format 2 stored it.
      {[](WriteTxn& t) {
         NodeRecord inline_value;
         inline_value.node.value = "v";
         t.put(Table::Nodes, "/k", encode_record(inline_value));
       },
       "malformed row in nodes"},
  };
  for (std::size_t i = 0; i < damages.size(); ++i) {
    CAPTURE(i);
    const std::string bytes = damaged(damages[i].first);
    const ParsedSnapshot parsed = parse_snapshot(bytes);
    CHECK(parsed.status.error == Error::InvalidRequest);
    CHECK(parsed.status.message == "invalid snapshot: " + damages[i].second);
    Replica r(Backend::Memory);
    CHECK(r->restore(bytes).error == Error::InvalidRequest);
    CHECK(r->applied_index() == 0);
  }
}

TEST_CASE("kv layout: opening a store of another layout format is an error naming both formats") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Inspected s(backend);
    REQUIRE(s.op(Op::create("/k", "v")).ok());
    {
      const auto txn = s.storage->write();
      txn->put(Table::Meta, meta_key::format, encode_u64(2));
      txn->commit();
    }
    s.sm.reset();
    try {
      StateMachine reopened(*s.storage);
      FAIL("a format 2 store was opened");
    } catch (const StorageError& e) {
      CHECK(e.code() == storage_error_format);
      CHECK(std::string(e.what()).find("layout format 2") != std::string::npos);
      CHECK(std::string(e.what()).find("formats 3 and 4") != std::string::npos);
    }
  }
}

TEST_CASE("kv layout: walks over the live nodes step over the version index, of live and deleted nodes") {
  for (Backend backend : backends) {
    CAPTURE(std::string(to_string(backend)));
    Replica r(backend);
    Op parents = Op::put("/d/a", "a0");
    parents.parents = true;
    REQUIRE(r.op(parents).ok());                        // 1: /d and /d/a
    REQUIRE(r.op(Op::create("/d/b", "b")).ok());        // 2
    REQUIRE(r.op(Op::create("/d/b-x", "bx")).ok());     // 3: sorts between /d/b's rows and /d/c
    REQUIRE(r.op(Op::create("/d/c", "c")).ok());        // 4
    for (int i = 1; i <= 20; ++i) REQUIRE(r.op(Op::put("/d/a", "a" + std::to_string(i))).ok());
    REQUIRE(r.op(Op::remove("/d/b")).ok());             // 25: its versions stay, no live row
    const Revision before_delete = 24;

    CHECK(r->list("/d", {}).value.names == std::vector<std::string>{"a", "b-x", "c"});
    std::vector<std::string> paths;
    for (const auto& kv : all_nodes(r.sm())) paths.push_back(kv.path);
    CHECK(paths == std::vector<std::string>{"/", "/d", "/d/a", "/d/b-x", "/d/c"});
    CHECK(r->get("/d/a").value.value == "a20");
    // Paged: each page starts after the last path, past its versions.
    RangeOptions paged;
    paged.limit = 1;
    paged.start_after = "/d/a";
    const auto page = r->range("/d", paged);
    REQUIRE(page.ok());
    REQUIRE(page.value.nodes.size() == 1);
    CHECK(page.value.nodes[0].path == "/d/b-x");
    // In the past, the deleted node is there.
    CHECK(r->list("/d", ListOptions{before_delete, "", 0}).value.names ==
          std::vector<std::string>{"a", "b", "b-x", "c"});
    CHECK(r->get("/d/a", 10).value.value == "a6");
    CHECK(r->get("/d/b", before_delete).value.value == "b");
    // A recursive delete finds the live descendants only.
    Op remove = Op::remove("/d");
    remove.recursive = true;
    const Result removed = r.op(remove);
    REQUIRE(removed.ok());
    CHECK(removed.ops.at(0).deleted == 4);  // /d, /d/a, /d/b-x, /d/c
    CHECK(all_nodes(r.sm()).size() == 1);
  }
}
