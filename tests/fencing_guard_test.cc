// fencing::Guard (stale tokens refused, the highest remembered durably, also across a restart of
// its store), the file store's format and errors, the fenced transaction recipe, and the classic
// scenario: a holder whose session lapses is refused by the resource once the next holder wrote.
#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "fencing/fenced_txn.h"
#include "fencing/file_guard_store.h"
#include "fencing/guard.h"
#include "fencing/mutex.h"
#include "fencing/session.h"
#include "fencing_test_client.h"

using namespace coord::fencing;
using namespace fencingtest;

namespace {

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "coord-fencing-XXXXXX").string();
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

kv::Result apply(TestCluster& cluster, kv::Body body) {
  return cluster.apply(0, 0, std::move(body));
}

}  // namespace

TEST_CASE("fencing guard: accepts tokens at or above the highest, refuses stale ones") {
  MemoryGuardStore store;
  Guard guard(store);
  CHECK(guard.highest("r").highest == 0);
  CHECK(guard.check("r", 5).accepted());
  CHECK(store.saves() == 1);
  CHECK(guard.check("r", 5).accepted());  // one holder, many operations
  CHECK(store.saves() == 1);              // nothing new to remember
  const GuardDecision stale = guard.check("r", 4);
  CHECK(stale.verdict == Verdict::Stale);
  CHECK(stale.highest == 5);
  CHECK_FALSE(stale.error.empty());
  CHECK(guard.check("r", 9).accepted());
  CHECK(guard.check("r", 5).verdict == Verdict::Stale);
  // Resources are independent.
  CHECK(guard.check("other", 1).accepted());
  CHECK(guard.check("r", 8).verdict == Verdict::Stale);
  // Token 0 and bad names are refused.
  CHECK(guard.check("r", 0).verdict == Verdict::Invalid);
  CHECK(guard.check("", 10).verdict == Verdict::Invalid);
  CHECK(guard.check(std::string(guard_resource_bytes_max + 1, 'x'), 10).verdict ==
        Verdict::Invalid);
  CHECK(guard.check(std::string(guard_resource_bytes_max, 'x'), 10).accepted());

  // A new Guard over the same store (the resource's process restarted) remembers.
  Guard restarted(store);
  CHECK(restarted.check("r", 8).verdict == Verdict::Stale);
  CHECK(restarted.check("r", 9).accepted());
}

TEST_CASE("fencing guard: a token that could not be remembered is not accepted") {
  MemoryGuardStore store;
  Guard guard(store);
  REQUIRE(guard.check("r", 3).accepted());
  store.fail_next_save("disk full");
  const GuardDecision failed = guard.check("r", 7);
  CHECK(failed.verdict == Verdict::StoreFailed);
  CHECK(failed.error.find("disk full") != std::string::npos);
  CHECK(guard.check("r", 3).accepted());  // the old holder is still fine
  CHECK(guard.check("r", 7).accepted());  // and the new one, once the store works
  CHECK(guard.check("r", 3).verdict == Verdict::Stale);
}

TEST_CASE("fencing guard: the file store remembers across a restart of the store") {
  TempDir dir;
  {
    FileGuardStore store(dir.path());
    Guard guard(store);
    CHECK(guard.check("db/orders", 10).accepted());
    CHECK(guard.check("db/orders", 12).accepted());
    CHECK(guard.check("db/users", 4).accepted());
  }
  // No temporary file is left behind; one file per resource.
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    files.push_back(entry.path().filename().string());
  }
  CHECK(files.size() == 2);
  for (const std::string& f : files) CHECK(f.find(".tmp") == std::string::npos);
  {
    FileGuardStore store(dir.path());
    Guard guard(store);
    CHECK(guard.highest("db/orders").highest == 12);
    CHECK(guard.check("db/orders", 11).verdict == Verdict::Stale);
    CHECK(guard.check("db/orders", 12).accepted());
    CHECK(guard.check("db/users", 3).verdict == Verdict::Stale);
    CHECK(guard.check("db/new", 1).accepted());
  }
}

TEST_CASE("fencing guard: a damaged file refuses everything rather than forget a token") {
  TempDir dir;
  FileGuardStore store(dir.path());
  {
    Guard guard(store);
    REQUIRE(guard.check("r", 41).accepted());
  }
  const std::string file = store.path_of("r");
  CHECK(file == dir.path() + "/guard-72");
  std::string bytes;
  {
    std::ifstream in(file);
    std::getline(in, bytes);
    bytes += '\n';
  }
  CHECK(bytes == encode_guard_file("r", 41));
  Token t = 0;
  CHECK(decode_guard_file(bytes, "r", t));
  CHECK(t == 41);
  CHECK_FALSE(decode_guard_file(bytes, "s", t));  // another resource's file
  for (const std::string& damaged :
       {std::string(""), bytes.substr(0, bytes.size() - 1), bytes.substr(0, 10),
        std::string("coord-guard 1 42 ") + bytes.substr(bytes.size() - 17),
        std::string("coord-guard 2 41 ") + bytes.substr(bytes.size() - 17)}) {
    CAPTURE(damaged);
    CHECK_FALSE(decode_guard_file(damaged, "r", t));
    {
      std::ofstream out(file, std::ios::trunc);
      out << damaged;
    }
    Guard guard(store);
    CHECK(guard.check("r", 1'000).verdict == Verdict::StoreFailed);
  }

  // A missing directory: nothing can be remembered, so nothing new is accepted.
  FileGuardStore nowhere(dir.path() + "/missing");
  Guard guard(nowhere);
  CHECK(guard.highest("r").highest == 0);  // nothing saved there
  const GuardDecision d = guard.check("r", 1);
  CHECK(d.verdict == Verdict::StoreFailed);
  CHECK(d.error.find("missing") != std::string::npos);
}

TEST_CASE("fencing fenced txn: writes while the lock key holds the token, refused once it is gone") {
  TestCluster cluster;
  const kv::LeaseId lease = apply(cluster, kv::LeaseGrant{0, 5'000}).lease.lease.id;
  kv::Op create = kv::Op::create("/locks/a/holder", "me", lease);
  create.parents = true;
  const kv::Result created = apply(cluster, kv::single(create));
  REQUIRE(created.ok());
  const Token token = created.revision;

  const kv::Txn txn = fenced_txn("/locks/a/holder", token, {kv::Op::put("/data", "v1")});
  REQUIRE(txn.compares.size() == 2);
  CHECK(txn.compares[0] == kv::Compare::exists("/locks/a/holder"));
  CHECK(txn.compares[1] ==
        kv::Compare::create_revision("/locks/a/holder", kv::CompareOp::Equal, token));
  CHECK(txn.failure.empty());
  REQUIRE(apply(cluster, txn).ok());
  CHECK(cluster.sm().get("/data").value.value == "v1");

  // A wrong token is refused.
  const kv::Result wrong =
      apply(cluster, fenced_txn("/locks/a/holder", token + 1, {kv::Op::put("/data", "x")}));
  CHECK(wrong.status.error == kv::Error::CompareFailed);
  CHECK(wrong.failed_compare == 1);

  // The lease ends (the leader expired it): the key is gone, and so is the right to write.
  REQUIRE(cluster.expire(lease).ok());
  const kv::Result gone =
      apply(cluster, fenced_txn("/locks/a/holder", token, {kv::Op::put("/data", "v2")}));
  CHECK(gone.status.error == kv::Error::CompareFailed);
  CHECK(gone.failed_compare == 0);
  CHECK(std::string(fenced_txn_failure(gone.failed_compare)).find("gone") != std::string::npos);
  CHECK(cluster.sm().get("/data").value.value == "v1");

  // The same name created again by someone else has another create revision.
  REQUIRE(apply(cluster, kv::single(kv::Op::create("/locks/a/holder", "other"))).ok());
  const kv::Result other =
      apply(cluster, fenced_txn("/locks/a/holder", token, {kv::Op::put("/data", "v3")}));
  CHECK(other.status.error == kv::Error::CompareFailed);
  CHECK(other.failed_compare == 1);
  CHECK(cluster.sm().get("/data").value.value == "v1");
}

// DDIA's figure 8-5, at the unit level. Holder 1 gets the lock and token t1, then pauses (here:
// its client cannot reach the cluster). Its lease runs out; the test plays the leader and applies
// LeaseExpire. Holder 2 gets t2 > t1 and writes through the Guard. Holder 1 wakes up and writes
// with t1: the Guard refuses it, and so does the fenced transaction inside coord.
TEST_CASE("fencing scenario: a paused holder's stale token is refused after the next holder wrote") {
  TestCluster cluster;
  cluster.auto_expire = false;
  SessionOptions options;
  options.ttl_ms = 3'000;
  TestClient client1(cluster, 1), client2(cluster, 2);
  auto session1 = Session::make(client1, options);
  auto session2 = Session::make(client2, options);
  Slot<Status> open1, open2;
  session1->open(open1.callback());
  session2->open(open2.callback());
  REQUIRE(cluster.run_until([&] { return open1.ready() && open2.ready(); }));
  auto mutex1 = Mutex::make(session1, "/locks/storage");
  auto mutex2 = Mutex::make(session2, "/locks/storage");
  MemoryGuardStore store;
  Guard storage(store);  // the protected resource's side

  Slot<LockResult> got1, got2;
  mutex1->lock(got1.callback());
  REQUIRE(cluster.run_until([&] { return got1.ready(); }));
  REQUIRE(got1.value().status.ok());
  const Token t1 = got1.value().token;
  const std::string key1 = got1.value().key;
  CHECK(storage.check("file", t1).accepted());
  mutex2->lock(got2.callback());
  cluster.run_for(100);
  CHECK_FALSE(got2.ready());

  // Holder 1 pauses. Its client notices the lapse at its own deadline...
  bool lost1 = false;
  mutex1->on_lost([&](const Status&) { lost1 = true; });
  client1.set_reachable(false);
  REQUIRE(cluster.run_until([&] { return lost1; }, 10'000));
  // ... and the leader's countdown runs out later; the test plays the leader.
  const kv::LeaseId lease1 = session1->lease_id();
  REQUIRE(cluster.run_until(
      [&] { return cluster.lease_clock().remaining(lease1, cluster.now()) == 0u; }, 10'000));
  const kv::Result expired = cluster.expire(lease1);
  REQUIRE(expired.ok());
  CHECK(expired.lease.deleted == std::vector<std::string>{key1});

  // Holder 2 gets the lock, with a greater token, and writes.
  REQUIRE(cluster.run_until([&] { return got2.ready(); }));
  REQUIRE(got2.value().status.ok());
  const Token t2 = got2.value().token;
  CHECK(t2 > t1);
  CHECK(storage.check("file", t2).accepted());
  Slot<WriteOutcome> write2;
  client2.write(fenced_txn(got2.value().key, t2, {kv::Op::put("/file", "from 2")}),
                write2.callback());
  REQUIRE(cluster.run_until([&] { return write2.ready(); }));
  REQUIRE(write2.value().result.has_value());
  CHECK(write2.value().result->ok());

  // Holder 1 resumes and, whatever it believes, writes with t1: refused on both paths.
  client1.set_reachable(true);
  const GuardDecision refused = storage.check("file", t1);
  CHECK(refused.verdict == Verdict::Stale);
  CHECK(refused.highest == t2);
  Slot<WriteOutcome> write1;
  client1.write(fenced_txn(key1, t1, {kv::Op::put("/file", "from 1")}), write1.callback());
  REQUIRE(cluster.run_until([&] { return write1.ready(); }));
  REQUIRE(write1.value().result.has_value());
  CHECK(write1.value().result->status.error == kv::Error::CompareFailed);
  CHECK(write1.value().result->failed_compare == 0);
  CHECK(cluster.sm().get("/file").value.value == "from 2");
  // Its unlock reports that the lock had already been lost.
  Slot<Status> unlocked1;
  mutex1->unlock(unlocked1.callback());
  REQUIRE(cluster.run_until([&] { return unlocked1.ready(); }));
  CHECK(unlocked1.value().code == Code::NotHeld);
  CHECK(mutex2->held());
}
