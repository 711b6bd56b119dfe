// election_lock: a small application on coord's client library.
//
//   election_lock ENDPOINTS NAME DIR
//
// 1. Runs for leader of the election "example" (coord::Election), announcing NAME, and waits
//    until it leads.
// 2. As leader, takes the lock "example-resource" (coord::Lock) and, holding it, appends a line
//    to DIR/shared.txt: a resource outside coord that checks the lock's fencing token with a
//    fencing::Guard (its highest token kept durably in DIR), so that a holder who lost the lock
//    without noticing (paused, partitioned) can never write after a newer one.
// 3. Records itself in coord with a fenced write: applied only while the lock is still held.
// 4. Releases the lock, resigns, closes its session.
//
// Run several at once: they take turns, each with a higher token than the one before.
#include <coord/client/client.h>
#include <coord/client/recipes.h>
#include <coord/fencing/file_guard_store.h>
#include <coord/fencing/guard.h>
#include <coord/kv/command.h>
#include <coord/net/client.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

namespace {

int fail(const std::string& name, const std::string& what, const coord::Status& status) {
  std::cerr << name << ": " << what << " failed: " << coord::fencing::to_string(status.code) << " "
            << status.message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: election_lock ENDPOINTS NAME DIR\n";
    return 2;
  }
  const std::string name = argv[2];
  const std::string dir = argv[3];

  coord::ClientOptions options;
  options.endpoints = coord::net::split_endpoints(argv[1]);  // "host:port,host:port,..."
  coord::Client client(options);

  // Everything this process holds hangs on one lease, kept alive in the background.
  coord::Session session(client, coord::SessionOptions{5'000});
  if (const coord::Status s = session.open(); !s.ok()) return fail(name, "session", s);
  session.on_lost([name](coord::SessionEnd why) {
    std::cerr << name << ": session lost (" << coord::fencing::to_string(why) << ")\n";
  });

  coord::Election election(session, "example");
  const coord::LockResult elected = election.campaign(name);
  if (!elected.status.ok()) return fail(name, "campaign", elected.status);
  std::cout << name << ": elected token=" << elected.token << std::endl;

  coord::Lock lock(session, "example-resource", name);
  const coord::LockResult locked = lock.lock();
  if (!locked.status.ok()) return fail(name, "lock", locked.status);
  std::cout << name << ": locked token=" << locked.token << std::endl;

  // The resource's side: refuse any token older than the newest it has accepted.
  coord::fencing::FileGuardStore store(dir);
  coord::fencing::Guard guard(store);
  const coord::fencing::GuardDecision decision = guard.check("shared.txt", locked.token);
  std::cout << name << ": guard " << coord::fencing::to_string(decision.verdict) << std::endl;
  if (!decision.accepted()) return 1;
  std::ofstream(dir + "/shared.txt", std::ios::app) << name << " token=" << locked.token << "\n";

  // coord's side: a write that only happens while this acquisition still holds the lock.
  coord::kv::Op record = coord::kv::Op::put("/example/last-writer", name);
  record.parents = true;  // creates /example the first time
  const coord::WriteOutcome written = lock.write_fenced({record});
  if (!written.result || !written.result->ok()) {
    std::cerr << name << ": fenced write refused or unknown\n";
    return 1;
  }
  std::cout << name << ": fenced write revision=" << written.result->revision << std::endl;

  if (const coord::Status s = lock.unlock(); !s.ok()) return fail(name, "unlock", s);
  if (const coord::Status s = election.resign(); !s.ok()) return fail(name, "resign", s);
  if (const coord::Status s = session.close(); !s.ok()) return fail(name, "close", s);
  std::cout << name << ": done" << std::endl;
  return 0;
}
