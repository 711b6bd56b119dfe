// The state machine's LMDB keeps a CRC-32C in front of every value: a byte flipped in data.mdb,
// or a value moved under another key, is an error naming the file, the table and the key, at
// open and on every read, never data; a store written before checksums existed gets them when
// it is opened.
#include <doctest/doctest.h>
#include <lmdb.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "kv/lmdb_storage.h"
#include "kv/record_checksum.h"

#include "flip_bytes.h"

using namespace coord::kv;

namespace {

class Dir {
 public:
  Dir() {
    char pattern[] = "/tmp/coord-kv-checksum-XXXXXX";
    REQUIRE(::mkdtemp(pattern) != nullptr);
    path_ = pattern;
  }
  ~Dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  Dir(const Dir&) = delete;
  Dir& operator=(const Dir&) = delete;
  std::string db() const { return path_ + "/db"; }
  std::string file() const { return db() + "/data.mdb"; }

 private:
  std::string path_;
};

LmdbOptions options_for(const std::string& dir, bool verify) {
  LmdbOptions o;
  o.directory = dir;
  o.map_bytes = std::size_t{64} << 20;
  o.sync = false;
  o.verify = verify;
  return o;
}

std::string value_of(int k) { return fmt::format("<kv-value-{:04}>", k) + std::string(50, 'v'); }

void fill(const std::string& dir) {
  LmdbStorage storage(options_for(dir, true));
  auto txn = storage.write();
  for (int k = 0; k < 20; ++k) txn->put(Table::Nodes, fmt::format("/k/{}", k), value_of(k));
  txn->put(Table::Meta, "applied_index", "12345678");
  txn->commit();
}

int flip_everywhere(const std::string& path, const std::string& needle) {
  return coordtest::flip_everywhere(path, needle, 3, 0x01);
}

template <typename F>
std::optional<StorageError> error_of(F&& f) {
  try {
    f();
  } catch (const StorageError& e) {
    return e;
  }
  return std::nullopt;
}

// Writes rows straight through LMDB, without checksums, as a build before them did.
void write_raw(const std::string& dir, Table table, const std::string& key, const std::string& value) {
  std::filesystem::create_directories(dir);
  MDB_env* env = nullptr;
  REQUIRE(mdb_env_create(&env) == 0);
  REQUIRE(mdb_env_set_maxdbs(env, table_count + 1) == 0);
  REQUIRE(mdb_env_set_mapsize(env, std::size_t{64} << 20) == 0);
  REQUIRE(mdb_env_open(env, dir.c_str(), 0, 0644) == 0);
  MDB_txn* txn = nullptr;
  REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
  MDB_dbi dbi;
  REQUIRE(mdb_dbi_open(txn, table_name(table), MDB_CREATE, &dbi) == 0);
  MDB_val k{key.size(), const_cast<char*>(key.data())};
  MDB_val v{value.size(), const_cast<char*>(value.data())};
  REQUIRE(mdb_put(txn, dbi, &k, &v, 0) == 0);
  REQUIRE(mdb_txn_commit(txn) == 0);
  mdb_env_close(env);
}

}  // namespace

TEST_CASE("kv lmdb checksums: a flipped byte is found at open and on reads, named by file, table and key") {
  Dir dir;
  fill(dir.db());
  REQUIRE(flip_everywhere(dir.file(), "<kv-value-0007>") >= 1);

  SUBCASE("at open") {
    const auto e = error_of([&] { LmdbStorage storage(options_for(dir.db(), true)); });
    REQUIRE(e.has_value());
    CHECK(e->code() == MDB_CORRUPTED);
    const std::string what = e->what();
    CHECK_MESSAGE(what.find(dir.file() + ": corrupt: table nodes, key \"/k/7\": checksum mismatch") != std::string::npos,
                  what);
  }
  SUBCASE("on a read, and only that row") {
    LmdbStorage storage(options_for(dir.db(), false));
    auto txn = storage.read();
    CHECK(txn->get(Table::Nodes, "/k/6") == value_of(6));
    CHECK(txn->get(Table::Meta, "applied_index") == std::string("12345678"));
    const auto e = error_of([&] { (void)txn->get(Table::Nodes, "/k/7"); });
    REQUIRE(e.has_value());
    CHECK(std::string(e->what()).find("key \"/k/7\"") != std::string::npos);
    auto cursor = txn->cursor(Table::Nodes);
    const auto scan = error_of([&] {
      for (bool more = cursor->seek("/k/"); more; more = cursor->next()) {
        CHECK(cursor->value().substr(0, 8) == "<kv-valu");
      }
    });
    REQUIRE(scan.has_value());
    CHECK(std::string(scan->what()).find("checksum mismatch") != std::string::npos);
  }
}

TEST_CASE("kv lmdb checksums: a value under another key or table does not pass") {
  Dir dir;
  fill(dir.db());
  std::string stored_under_3;
  {
    // The stored form of /k/3 (checksum included), written under /k/4 behind the store's back.
    MDB_env* env = nullptr;
    REQUIRE(mdb_env_create(&env) == 0);
    REQUIRE(mdb_env_set_maxdbs(env, table_count + 1) == 0);
    REQUIRE(mdb_env_set_mapsize(env, std::size_t{64} << 20) == 0);
    REQUIRE(mdb_env_open(env, dir.db().c_str(), 0, 0644) == 0);
    MDB_txn* txn = nullptr;
    REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
    MDB_dbi nodes, changes;
    REQUIRE(mdb_dbi_open(txn, "nodes", 0, &nodes) == 0);
    REQUIRE(mdb_dbi_open(txn, "changes", MDB_CREATE, &changes) == 0);
    std::string key3 = "/k/3", key4 = "/k/4";
    MDB_val k3{key3.size(), key3.data()}, k4{key4.size(), key4.data()}, v;
    REQUIRE(mdb_get(txn, nodes, &k3, &v) == 0);
    stored_under_3.assign(static_cast<const char*>(v.mv_data), v.mv_size);
    MDB_val copy{stored_under_3.size(), stored_under_3.data()};
    REQUIRE(mdb_put(txn, nodes, &k4, &copy, 0) == 0);
    REQUIRE(mdb_put(txn, changes, &k3, &copy, 0) == 0);
    REQUIRE(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
  }
  LmdbStorage storage(options_for(dir.db(), false));
  auto txn = storage.read();
  CHECK(txn->get(Table::Nodes, "/k/3") == value_of(3));
  CHECK(error_of([&] { (void)txn->get(Table::Nodes, "/k/4"); }).has_value());
  CHECK(error_of([&] { (void)txn->get(Table::Changes, "/k/3"); }).has_value());
}

TEST_CASE("kv lmdb checksums: a store written without checksums gets them when opened") {
  Dir dir;
  write_raw(dir.db(), Table::Nodes, "/old", "written by an older build");
  write_raw(dir.db(), Table::Meta, "revision", std::string("\0\0\0\0\0\0\0\x07", 8));
  {
    LmdbStorage storage(options_for(dir.db(), true));
    auto txn = storage.read();
    CHECK(txn->get(Table::Nodes, "/old") == std::string("written by an older build"));
    CHECK(txn->get(Table::Meta, "revision") == std::string("\0\0\0\0\0\0\0\x07", 8));
  }
  {
    // Converted once: a second open reads the same.
    LmdbStorage storage(options_for(dir.db(), true));
    CHECK(storage.read()->get(Table::Nodes, "/old") == std::string("written by an older build"));
  }
  // And the converted rows are protected like new ones.
  REQUIRE(flip_everywhere(dir.file(), "older build") >= 1);
  const auto e = error_of([&] { LmdbStorage storage(options_for(dir.db(), true)); });
  REQUIRE(e.has_value());
  CHECK_MESSAGE(std::string(e->what()).find("key \"/old\": checksum mismatch") != std::string::npos, e->what());
}
