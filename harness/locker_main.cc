// coord-faults-locker: one lock client of coord-faults' locks workload (harness/locks.h), in a
// process of its own so that a pause freezes all of it (its keep-alives too), as a GC pause or
// a SIGSTOP would. Started by coord-faults, never by hand:
//
//   coord-faults-locker --endpoints H:P,... --lock PATH --seed N --ttl-ms MS --pause-percent P
//
// It talks to coord-faults over file descriptor 3, a line at a time:
//   "L <token>"         it acquired the lock with this fencing token;
//   "W <token> <n>"     its n-th write to the protected resource, answered "A" (accepted) or
//                       "R <highest>" (refused: a greater token was accepted);
//   "P <ms>"            it is about to stop itself (SIGSTOP) and asks to be woken after ms.
// A critical section is a few writes, each sent after checking that the lock is still held.
// Before a write other than the first, it sometimes pauses, right after that check, for longer
// than its lease: DDIA's scenario (ch. 8). Meanwhile the lease expires, the next waiter takes the
// lock with a greater token and writes; this holder wakes and sends its write with the old token.
// The resource must refuse it (fencing::Guard), or, with fencing off, the two holders' writes
// interleave, which coord-faults reports.
//
// Exits when coord-faults closes its end or kills it; dies with coord-faults (PR_SET_PDEATHSIG,
// set by coord-faults before the exec).
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>
#include <thread>

#include "client/client.h"
#include "client/recipes.h"
#include "harness/line_channel.h"
#include "net/client.h"

namespace {

using coord::harness::read_line;

constexpr int kChannelFd = 3;

bool send_line(const std::string& line) { return coord::harness::send_line(kChannelFd, line); }

struct Options {
  std::string endpoints;
  std::string lock;
  std::uint64_t seed = 1;
  long ttl_ms = 2000;
  int pause_percent = 25;
  int writes = 3;
};

// Holds the lock for one critical section. Returns false once coord-faults is gone.
bool critical_section(coord::Lock& lock, coord::Token token, const Options& o, std::mt19937_64& rng) {
  if (!send_line(fmt::format("L {}", token))) return false;
  std::uniform_int_distribution<int> percent(0, 99);
  // A pause outlives the lease by at least its TTL again, so the next holder has time to write.
  std::uniform_int_distribution<long> pause_ms(2 * o.ttl_ms, 4 * o.ttl_ms);
  std::uniform_int_distribution<int> gap_ms(10, 60);
  for (int n = 1; n <= o.writes; ++n) {
    if (!lock.held()) return true;
    if (n > 1 && percent(rng) < o.pause_percent) {
      if (!send_line(fmt::format("P {}", pause_ms(rng)))) return false;
      ::raise(SIGSTOP);  // coord-faults sends SIGCONT after the pause
    }
    if (!send_line(fmt::format("W {} {}", token, n))) return false;
    const std::string answer = read_line(kChannelFd);
    if (answer.empty()) return false;
    if (answer[0] != 'A') return true;  // refused: somebody newer holds the lock
    std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms(rng)));
  }
  return true;
}

int run(const Options& o) {
  coord::ClientOptions client_options;
  client_options.endpoints = coord::net::split_endpoints(o.endpoints);
  client_options.call_timeout = std::chrono::seconds(4);
  client_options.attempt_timeout = std::chrono::seconds(1);
  coord::Client client(client_options);
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<int> think_ms(0, 100);
  while (true) {
    coord::SessionOptions session_options;
    session_options.ttl_ms = o.ttl_ms;
    coord::Session session(client, session_options);
    if (!session.open().ok()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    coord::Lock lock(session, o.lock);
    while (session.alive()) {
      const coord::LockResult got = lock.try_lock(std::chrono::seconds(10));
      if (!got.status.ok()) continue;
      if (!critical_section(lock, got.token, o, rng)) return 0;
      (void)lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(think_ms(rng)));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"coord-faults-locker: a lock client of coord-faults (started by it, not by hand)"};
  Options o;
  app.add_option("--endpoints", o.endpoints, "Client addresses, comma-separated")->required();
  app.add_option("--lock", o.lock, "The lock's path")->required();
  app.add_option("--seed", o.seed, "Seed of this client's pauses and gaps");
  app.add_option("--ttl-ms", o.ttl_ms, "Session TTL")->check(CLI::Range(500L, 60'000L));
  app.add_option("--pause-percent", o.pause_percent, "Chance of a pause before each later write")
      ->check(CLI::Range(0, 100));
  app.add_option("--writes", o.writes, "Writes per critical section")->check(CLI::Range(1, 100));
  CLI11_PARSE(app, argc, argv);
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::cerr << "coord-faults-locker: " << e.what() << "\n";
    return 1;
  }
}
