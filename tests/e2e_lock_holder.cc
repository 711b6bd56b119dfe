// A lock holder for tests/e2e_fencing_test.cc, in a process of its own so that the test can
// pause it with SIGSTOP:
//
//   coord_e2e_lock_holder ENDPOINTS LOCK TTL_MS GUARD_DIR GO_FILE
//
// Takes LOCK on a session with a TTL of TTL_MS and prints "locked token=T key=K". Then it
// waits for GO_FILE to exist and does what a holder that decided to write just before a pause
// does: no new check of the lock, straight to the protected resource with its token. It prints
// "guard verdict=V highest=H" (fencing::Guard over a FileGuardStore in GUARD_DIR, resource
// "resource"), then writes /fenced/data = "first holder" through the fenced transaction and
// prints "fenced ok", "fenced refused failed_compare=N (REASON)" or "fenced unknown (ERROR)",
// and finally "held=0|1" (what the lock says now). Exit 0 once everything is printed, 1 when the
// lock could not be taken, 2 on bad arguments.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>

#include "client/client.h"
#include "client/recipes.h"
#include "fencing/fenced_txn.h"
#include "fencing/file_guard_store.h"
#include "fencing/guard.h"
#include "net/client.h"

int main(int argc, char** argv) {
  if (argc != 6) {
    std::cerr << "usage: coord_e2e_lock_holder ENDPOINTS LOCK TTL_MS GUARD_DIR GO_FILE\n";
    return 2;
  }
  coord::ClientOptions options;
  options.endpoints = coord::net::split_endpoints(argv[1]);
  options.call_timeout = std::chrono::seconds(5);
  options.attempt_timeout = std::chrono::seconds(1);
  const std::string lock_name = argv[2];
  coord::SessionOptions session_options;
  session_options.ttl_ms = std::stoll(argv[3]);
  const std::string guard_dir = argv[4];
  const std::filesystem::path go_file = argv[5];

  coord::Client client(options);
  coord::Session session(client, session_options);
  if (const coord::Status opened = session.open(); !opened.ok()) {
    std::cout << "session failed: " << opened.message << std::endl;
    return 1;
  }
  coord::Lock lock(session, lock_name, "first holder");
  const coord::LockResult got = lock.lock();
  if (!got.status.ok()) {
    std::cout << "lock failed: " << got.status.message << std::endl;
    return 1;
  }
  std::cout << fmt::format("locked token={} key={}", got.token, got.key) << std::endl;

  // Bounded: the test creates GO_FILE well within this.
  for (int i = 0; i < 6'000 && !std::filesystem::exists(go_file); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  coord::fencing::FileGuardStore store(guard_dir);
  coord::fencing::Guard guard(store);
  const coord::fencing::GuardDecision decision = guard.check("resource", got.token);
  std::cout << fmt::format("guard verdict={} highest={}", coord::fencing::to_string(decision.verdict),
                           decision.highest)
            << std::endl;

  coord::kv::Op put = coord::kv::Op::put("/fenced/data", "first holder");
  put.parents = true;
  const coord::WriteOutcome outcome = client.write(coord::fencing::fenced_txn(got.key, got.token, {put})).get();
  if (!outcome.result) {
    std::cout << "fenced unknown (" << outcome.error << ")" << std::endl;
  } else if (outcome.result->ok()) {
    std::cout << "fenced ok" << std::endl;
  } else {
    std::cout << fmt::format("fenced refused failed_compare={} ({})", outcome.result->failed_compare,
                             coord::fencing::fenced_txn_failure(outcome.result->failed_compare))
              << std::endl;
  }
  std::cout << "held=" << (lock.held() ? 1 : 0) << std::endl;
  return 0;
}
