// Acceptance 2: a process applying batches to LMDB is SIGKILLed at random moments. Every restart
// must find the state of exactly some batch boundary (state, history, sessions and applied index
// change in one transaction), equal to a replica that applied the same prefix without crashing;
// catching up by re-applying the entries after the applied index must end in the same state as
// a replica that never crashed.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "kv_test_util.h"

using namespace kvtest;

namespace {

std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

// A fixed workload: creates, puts, deletes, transactions and sequential creates over a few
// hundred keys, with sessions, in batches of 1..8 entries.
struct Workload {
  std::vector<std::vector<AppliedEntry>> batches;
  Index last_index = 0;
};

Workload make_workload(std::uint64_t seed, int entries) {
  Workload w;
  Index index = 0;
  std::uint64_t r = seed;
  const auto next = [&] { return r = mix(r + 0x9e3779b97f4a7c15ull); };
  std::vector<AppliedEntry> batch;
  for (int i = 0; i < entries; ++i) {
    Command c;
    if (next() % 2) {
      c.session_id = 1 + next() % 20;
      c.sequence = static_cast<std::uint64_t>(i) + 1;
    }
    const std::string dir = "/d" + std::to_string(next() % 8);
    const std::string key = dir + "/k" + std::to_string(next() % 40);
    const std::string value(100 + next() % 200, static_cast<char>('a' + next() % 26));
    Op put = Op::put(key, value);
    put.parents = true;
    switch (next() % 6) {
      case 0: c.body = single(Op::remove(key)); break;
      case 1: c.body = single(Op::create_sequential(dir + "/seq-", value)); break;
      case 2: {
        Txn t;
        t.compares.push_back(Compare::exists(dir));
        t.success.push_back(put);
        t.success.push_back(Op::put(dir + "/last", key));
        t.failure.push_back(Op::create(dir, ""));
        c.body = t;
        break;
      }
      case 3:
        if (next() % 10 == 0) {
          c.body = Compact{static_cast<Revision>(i / 2)};
          break;
        }
        [[fallthrough]];
      default: c.body = single(put); break;
    }
    batch.push_back(AppliedEntry{++index, next() % 15 == 0 ? std::string() : encode_command(c)});
    if (batch.size() >= 1 + next() % 8) {
      w.batches.push_back(std::move(batch));
      batch.clear();
    }
  }
  if (!batch.empty()) w.batches.push_back(std::move(batch));
  w.last_index = index;
  return w;
}

std::size_t digest(const std::string& snapshot) { return std::hash<std::string>()(snapshot); }

// Applies every batch after the stored applied index. Requires that index to be a boundary.
void catch_up(StateMachine& sm, const Workload& w) {
  for (const auto& batch : w.batches) {
    if (batch.back().index <= sm.applied_index()) continue;
    REQUIRE(batch.front().index == sm.applied_index() + 1);
    sm.apply_batch(batch);
  }
}

void sleep_micros(std::uint64_t micros) {
  timespec ts;
  ts.tv_sec = static_cast<time_t>(micros / 1000000);
  ts.tv_nsec = static_cast<long>((micros % 1000000) * 1000);
  nanosleep(&ts, nullptr);
}

}  // namespace

TEST_CASE("kv crash: SIGKILL while applying leaves a consistent applied index") {
  const Workload w = make_workload(42, 2500);

  // The replica that never crashes, and its state digest at every batch boundary.
  std::map<Index, std::size_t> digests;
  std::string final_snapshot;
  {
    MemoryStorage storage;
    StateMachine sm(storage);
    digests[0] = digest(sm.snapshot());
    for (const auto& batch : w.batches) {
      sm.apply_batch(batch);
      digests[sm.applied_index()] = digest(sm.snapshot());
    }
    final_snapshot = sm.snapshot();
  }

  TempDir dir;
  LmdbOptions options = test_lmdb_options(dir.path() + "/db");
  std::uint64_t r = 7;
  int killed_mid_way = 0;  // rounds whose child died by SIGKILL rather than finishing
  Index last_seen = 0;
  constexpr int rounds = 24;
  for (int round = 0; round < rounds; ++round) {
    options.sync = (round / 2) % 2 == 0;  // with and without fsync per commit
    // Even rounds: the parent kills the child after a random delay, mostly inside a batch.
    // Odd rounds: the child kills itself between two batches, after a random number of them.
    r = mix(r + 1);
    const bool self_kill = round % 2 == 1;
    // Short: with MDB_WRITEMAP a child applies the whole workload within a few milliseconds,
    // and once one has, every later child finishes at once and none is killed mid-way.
    const std::uint64_t delay_micros = r % 1500;
    const std::uint64_t batches_before_kill = 1 + r % 40;
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // Child: open, catch up from wherever the last one died, until killed. No doctest
      // macros here: failures are reported through the exit status.
      try {
        LmdbStorage storage(options);
        StateMachine sm(storage);
        std::uint64_t applied_batches = 0;
        for (const auto& batch : w.batches) {
          if (batch.back().index <= sm.applied_index()) continue;
          if (batch.front().index != sm.applied_index() + 1) ::_exit(3);
          sm.apply_batch(batch);
          if (self_kill && ++applied_batches == batches_before_kill) ::raise(SIGKILL);
        }
      } catch (...) {
        ::_exit(4);
      }
      ::_exit(0);
    }
    if (!self_kill) {
      sleep_micros(delay_micros);
      ::kill(pid, SIGKILL);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    if (WIFSIGNALED(status)) {
      CHECK(WTERMSIG(status) == SIGKILL);
      ++killed_mid_way;
    } else {
      REQUIRE(WIFEXITED(status));
      REQUIRE(WEXITSTATUS(status) == 0);
    }

    // Parent: the state is exactly that of some batch boundary, and never goes back.
    LmdbStorage storage(options);
    StateMachine sm(storage);
    const Index applied = sm.applied_index();
    CAPTURE(round);
    CAPTURE(applied);
    REQUIRE(digests.count(applied) == 1);
    CHECK(digest(sm.snapshot()) == digests.at(applied));
    CHECK(applied >= last_seen);
    last_seen = applied;
  }
  CHECK(killed_mid_way >= rounds / 2);
  MESSAGE("killed mid-way in " << killed_mid_way << " of " << rounds << " rounds; reached index "
                               << last_seen << " of " << w.last_index);

  // Restart once more and catch up: the same state as the replica that never crashed.
  LmdbStorage storage(options);
  StateMachine sm(storage);
  catch_up(sm, w);
  CHECK(sm.applied_index() == w.last_index);
  CHECK(sm.snapshot() == final_snapshot);
}
