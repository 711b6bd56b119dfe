// The state store's check after a restart (net/state_check.h): every row read once from a pinned
// view, on a thread of its own; damage anywhere is reported naming the file, table and key; a
// check being destroyed stops early.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

#include "flip_bytes.h"
#include "kv/check_rows.h"
#include "kv/lmdb_storage.h"
#include "net/state_check.h"

using namespace coord;

namespace {

class Store {
 public:
  Store() {
    char pattern[] = "/tmp/coord-state-check-XXXXXX";
    REQUIRE(::mkdtemp(pattern) != nullptr);
    path_ = pattern;
  }
  ~Store() {
    storage_.reset();
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  std::string file() const { return path_ + "/data.mdb"; }
  // Opens the store as the server does: without the check at open.
  kv::LmdbStorage& open() {
    kv::LmdbOptions o;
    o.directory = path_;
    o.map_bytes = std::size_t{64} << 20;
    o.sync = false;
    o.verify = false;
    storage_ = std::make_unique<kv::LmdbStorage>(o);
    return *storage_;
  }
  void close() { storage_.reset(); }
  void fill(int rows) {
    auto txn = open().write();
    for (int k = 0; k < rows; ++k) txn->put(kv::Table::Nodes, fmt::format("/k/{:05}", k), value(k));
    txn->commit();
    close();
  }
  static std::string value(int k) { return fmt::format("<state-value-{:05}>", k) + std::string(40, 'v'); }

 private:
  std::string path_;
  std::unique_ptr<kv::LmdbStorage> storage_;
};

std::string wait_for(const net::StateFileCheck& check) {
  for (int i = 0; i < 2000; ++i) {
    if (auto r = check.result()) return *r;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  FAIL("the check did not finish in 10 s");
  return {};
}

}  // namespace

TEST_CASE("state check: an intact store passes, inline and on its thread") {
  Store store;
  store.fill(100);
  kv::LmdbStorage& storage = store.open();
  CHECK(net::StateFileCheck(storage.pin(), /*background=*/false).result() == std::optional<std::string>(""));
  net::StateFileCheck background(storage.pin(), /*background=*/true);
  CHECK(wait_for(background).empty());
}

TEST_CASE("state check: a byte flipped in a row nobody read is found, naming the file, table and key") {
  Store store;
  store.fill(100);
  REQUIRE(coordtest::flip_everywhere(store.file(), Store::value(77), 3, 0x01) >= 1);
  kv::LmdbStorage& storage = store.open();  // opens: the check at open is off
  for (const bool background : {false, true}) {
    CAPTURE(background);
    net::StateFileCheck check(storage.pin(), background);
    const std::string error = wait_for(check);
    CHECK(error.find(store.file()) != std::string::npos);
    CHECK(error.find("corrupt: table nodes") != std::string::npos);
    CHECK(error.find("/k/00077") != std::string::npos);
  }
}

TEST_CASE("state check: the walk stops when asked, and reads every row otherwise") {
  Store store;
  store.fill(10000);
  kv::LmdbStorage& storage = store.open();
  int asked = 0;
  CHECK_FALSE(kv::check_every_row(*storage.read(), [&] { return ++asked < 2; }));
  CHECK(asked == 2);
  asked = 0;
  CHECK(kv::check_every_row(*storage.read(), [&] { return ++asked > 0; }));
  CHECK(asked == 10000 / 4096);
  // Destroying a check on its thread stops it and joins: no result, no crash.
  { net::StateFileCheck check(storage.pin(), /*background=*/true); }
}
