#include "bench/fanout.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>

namespace coord::bench {

namespace {

using Clock = std::chrono::steady_clock;

// Rounds per run at most: a bound on the per-round bookkeeping.
constexpr int rounds_max = 10'000;
// How long a watcher thread sleeps in wait() at most, so it notices the end of the run.
constexpr auto wait_slice = std::chrono::milliseconds(20);

struct Arrival {
  int round = 0;
  Clock::time_point at;
};

struct Shared {
  std::atomic<int> opened{0};  // connections whose watches are all open (or that failed)
  std::atomic<bool> stop{false};
  std::vector<std::atomic<std::uint64_t>> received = std::vector<std::atomic<std::uint64_t>>(rounds_max);
  std::mutex mutex;
  std::vector<std::string> errors;  // guarded by mutex

  void fail(std::string message) {
    std::lock_guard<std::mutex> lock(mutex);
    errors.push_back(std::move(message));
  }
};

// The round number of a writer key "<dir>/k00000042" (key_path() under dir), or -1.
int round_of(std::string_view key, std::string_view key_prefix) {
  if (key.size() <= key_prefix.size() || key.substr(0, key_prefix.size()) != key_prefix) return -1;
  const std::string_view digits = key.substr(key_prefix.size());
  int round = -1;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), round);
  if (ec != std::errc() || end != digits.data() + digits.size() || round < 0 || round >= rounds_max) return -1;
  return round;
}

void watcher(const FanoutOptions& options, int index, const WatchConnectionFactory& connect, Shared& shared,
             std::vector<Arrival>& arrivals) {
  const int count = options.watchers / options.connections + (index < options.watchers % options.connections ? 1 : 0);
  const std::string key_prefix = options.dir + "/k";
  bool counted_open = false;
  try {
    const std::unique_ptr<WatchConnection> conn = connect(index);
    conn->open(options.dir, count, Clock::now() + options.open_timeout);
    ++shared.opened;
    counted_open = true;
    std::vector<std::string> keys;
    while (!shared.stop.load()) {
      keys.clear();
      conn->wait(Clock::now() + wait_slice, keys);
      const Clock::time_point now = Clock::now();
      for (const std::string& key : keys) {
        const int round = round_of(key, key_prefix);
        if (round < 0) continue;
        arrivals.push_back(Arrival{round, now});
        ++shared.received[static_cast<std::size_t>(round)];
      }
    }
  } catch (const std::exception& e) {
    shared.fail(e.what());
    if (!counted_open) ++shared.opened;
  }
}

}  // namespace

FanoutReport run_fanout(const FanoutOptions& options, const WatchConnectionFactory& watch,
                        const std::function<std::unique_ptr<Connection>()>& writer) {
  if (options.watchers < 1 || options.connections < 1) throw std::invalid_argument("watchers and connections must be at least 1");
  FanoutReport report;
  report.watchers = options.watchers;
  report.connections = std::min(options.connections, options.watchers);
  FanoutOptions o = options;
  o.connections = report.connections;

  Shared shared;
  std::vector<std::vector<Arrival>> arrivals(static_cast<std::size_t>(o.connections));
  std::vector<std::thread> threads;
  const Clock::time_point open_start = Clock::now();
  for (int i = 0; i < o.connections; ++i) {
    threads.emplace_back(watcher, std::cref(o), i, std::cref(watch), std::ref(shared),
                         std::ref(arrivals[static_cast<std::size_t>(i)]));
  }
  const auto finish = [&] {
    shared.stop = true;
    for (std::thread& t : threads) t.join();
    std::lock_guard<std::mutex> lock(shared.mutex);
    report.errors += shared.errors.size();
    report.error_messages.insert(report.error_messages.end(), shared.errors.begin(), shared.errors.end());
  };
  while (shared.opened.load() < o.connections && Clock::now() < open_start + o.open_timeout) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  report.open_s = std::chrono::duration<double>(Clock::now() - open_start).count();
  bool failed = false;
  {
    std::lock_guard<std::mutex> lock(shared.mutex);
    failed = !shared.errors.empty() || shared.opened.load() < o.connections;
  }
  if (failed) {
    finish();
    if (report.errors == 0) {
      report.errors = 1;
      report.error_messages.push_back("watches not open in time");
    }
    return report;
  }

  // The rounds: one write each, the next once every watcher has it (or the round timed out).
  std::vector<Clock::time_point> sent;
  try {
    const std::unique_ptr<Connection> w = writer();
    const Clock::time_point end =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration_s));
    std::vector<Completion> done;
    for (int round = 0; round < rounds_max && (round == 0 || Clock::now() < end); ++round) {
      const Clock::time_point start = Clock::now();
      const Clock::time_point deadline = start + o.round_timeout;
      sent.push_back(start);
      const auto tag = static_cast<std::uint64_t>(round) + 1;
      w->issue(tag, Op::Put, static_cast<std::size_t>(round));
      bool written = false;
      while (!written && Clock::now() < deadline) {
        done.clear();
        w->wait(std::min(deadline, Clock::now() + std::chrono::milliseconds(20)), done);
        for (const Completion& c : done) {
          if (c.tag != tag) continue;
          written = true;
          if (!c.ok) {
            ++report.errors;
            report.error_messages.push_back("write: " + c.error);
          }
        }
      }
      if (!written) {
        ++report.errors;
        report.error_messages.push_back("write: no answer in time");
      }
      const auto& received = shared.received[static_cast<std::size_t>(round)];
      while (received.load() < static_cast<std::uint64_t>(o.watchers) && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      report.rounds = round + 1;
      std::this_thread::sleep_for(o.pause);
    }
  } catch (const std::exception& e) {
    ++report.errors;
    report.error_messages.push_back(std::string("writer: ") + e.what());
  }
  finish();

  // Per round: each watcher's delivery, and the last one's.
  std::vector<Clock::time_point> last(sent.size(), Clock::time_point::min());
  std::vector<std::uint64_t> per_round(sent.size(), 0);
  for (const auto& list : arrivals) {
    for (const Arrival& a : list) {
      const auto round = static_cast<std::size_t>(a.round);
      if (round >= sent.size()) continue;
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(a.at - sent[round]).count();
      report.delivery.record(static_cast<std::uint64_t>(std::max<std::int64_t>(ns, 0)));
      last[round] = std::max(last[round], a.at);
      ++per_round[round];
      ++report.delivered;
    }
  }
  for (std::size_t round = 0; round < sent.size(); ++round) {
    const auto want = static_cast<std::uint64_t>(o.watchers);
    if (per_round[round] < want) report.missed += want - per_round[round];
    if (per_round[round] == 0) continue;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(last[round] - sent[round]).count();
    report.all.record(static_cast<std::uint64_t>(std::max<std::int64_t>(ns, 0)));
  }
  return report;
}

}  // namespace coord::bench
