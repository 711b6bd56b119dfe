// Acceptance: fencing with real processes. A lock holder (tests/e2e_lock_holder.cc, a process of
// its own) takes a lock on a short lease and is paused with SIGSTOP past it; another client then
// gets the lock with a higher token and uses it, through a Guard-protected resource (a
// FileGuardStore in the test's directory) and a fenced transaction. When the holder wakes up
// and writes with its old token, both refuse it.
#include <fmt/format.h>
#include <doctest/doctest.h>

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "client/client.h"
#include "client/recipes.h"
#include "e2e_cluster.h"
#include "fencing/file_guard_store.h"
#include "fencing/guard.h"
#include "kv/command.h"

#ifndef COORD_LOCK_HOLDER_PATH
#error "COORD_LOCK_HOLDER_PATH must name the lock holder helper"
#endif

namespace {

using namespace coord;
using namespace std::chrono_literals;
using e2e::Cluster;
using e2e::eventually;

const std::vector<std::string> kFastArgs{"--tick-ms", "50", "--election-ticks", "10", "--watch-progress-ms", "500"};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The holder's "locked token=T key=K" line, once printed. (No std::regex: GCC 12 with the
// sanitizers warns inside it.)
std::optional<std::pair<fencing::Token, std::string>> locked_line(const std::string& text) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("locked token=")) continue;
    std::istringstream fields(line.substr(std::string("locked token=").size()));
    fencing::Token token = 0;
    std::string key;
    if (fields >> token >> key && key.starts_with("key=")) return std::make_pair(token, key.substr(4));
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("acceptance 4: a holder paused past its lease is fenced off after another client takes the lock") {
  Cluster cluster(3, kFastArgs);
  REQUIRE_MESSAGE(cluster.start_all(), cluster.all_logs());
  REQUIRE_MESSAGE(eventually(15s, [&] { return cluster.agreed_leader({0, 1, 2}).has_value(); }), cluster.all_logs());
  const std::string guard_dir = cluster.dir() + "/guard";
  std::filesystem::create_directories(guard_dir);
  const std::string go_file = cluster.dir() + "/go";
  const std::string holder_log = cluster.dir() + "/holder.log";
  std::string endpoints;
  for (const std::string& e : cluster.endpoints()) endpoints += (endpoints.empty() ? "" : ",") + e;

  constexpr int holder_ttl_ms = 1'500;
  e2e::Process holder({COORD_LOCK_HOLDER_PATH, endpoints, "acceptance", std::to_string(holder_ttl_ms), guard_dir, go_file},
                      holder_log);
  REQUIRE_MESSAGE(eventually(20s, [&] { return locked_line(read_file(holder_log)).has_value(); }),
                  read_file(holder_log));
  const auto [first_token, first_key] = *locked_line(read_file(holder_log));

  // The holder stops between deciding to write and writing (it waits for GO_FILE before its
  // write, without looking at the lock again).
  holder.signal(SIGSTOP);
  const auto paused_at = e2e::Clock::now();

  ClientOptions options;
  options.endpoints = cluster.endpoints();
  options.call_timeout = 10s;
  options.attempt_timeout = 1s;
  Client client(options);
  Session session(client, SessionOptions{5'000});
  REQUIRE(session.open().ok());
  Lock lock(session, "acceptance", "second holder");
  const LockResult got = lock.try_lock(30s);
  REQUIRE_MESSAGE(got.status.ok(), got.status.message);
  // The holder's key went with its lease, which lived at least its TTL after its last
  // keep-alive (sent at most a third of the TTL before the pause).
  CHECK(e2e::Clock::now() - paused_at >= std::chrono::milliseconds(holder_ttl_ms * 2 / 3));
  CHECK(got.token > first_token);
  CHECK(got.key != first_key);

  // The new holder uses the resource and coord, with its token.
  {
    fencing::FileGuardStore store(guard_dir);
    fencing::Guard guard(store);
    const fencing::GuardDecision decision = guard.check("resource", got.token);
    CHECK(decision.accepted());
    CHECK(decision.highest == got.token);
  }
  kv::Op put = kv::Op::put("/fenced/data", "second holder");
  put.parents = true;
  const WriteOutcome second_write = lock.write_fenced({put});
  REQUIRE(second_write.result);
  REQUIRE(second_write.result->ok());

  // The first holder wakes up and writes with its old token: refused by both.
  { std::ofstream(go_file) << "go\n"; }
  holder.signal(SIGCONT);
  const auto status = holder.wait(30s);
  REQUIRE_MESSAGE(status.has_value(), read_file(holder_log));
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  const std::string out = read_file(holder_log);
  INFO(out);
  CHECK(out.find(fmt::format("guard verdict=stale highest={}", got.token)) != std::string::npos);
  CHECK(out.find("fenced refused failed_compare=0") != std::string::npos);
  CHECK(out.find("held=0") != std::string::npos);

  const ReadOutcome<kv::Node> data = client.get("/fenced/data").get();
  REQUIRE(data.read.ok());
  CHECK(data.read.value.value == "second holder");
  CHECK(data.read.value.mod_revision == second_write.result->revision);
  CHECK(lock.held());
  REQUIRE(lock.unlock().ok());
}
