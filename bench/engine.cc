#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "bench/bench.h"

namespace coord::bench {

namespace {

using Clock = std::chrono::steady_clock;

// An open-loop client never keeps more than this many requests outstanding: beyond it the
// server is hopelessly behind and the run would only eat memory; sends due meanwhile are
// skipped but still counted as errors, so the overload shows in the report.
constexpr std::size_t open_loop_outstanding_max = 100'000;
// How long a client sleeps in wait() at most, so it notices the end of the run.
constexpr auto wait_slice = std::chrono::milliseconds(20);

struct ClientResult {
  Histogram latency;
  std::uint64_t completed = 0;
  std::uint64_t errors = 0;
  std::map<std::string, std::uint64_t> error_kinds;
};

void count_error(ClientResult& r, Progress& progress, const std::string& kind, std::uint64_t n = 1) {
  r.errors += n;
  r.completed += n;
  r.error_kinds[kind] += n;
  progress.errors += n;
  progress.completed += n;
}

void run_client(const Options& options, int index, const ConnectionFactory& connect, Clock::time_point start,
                Clock::time_point end, Progress& progress, ClientResult& result) {
  std::mt19937_64 rng(0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(index + 1));
  std::uniform_int_distribution<std::size_t> pick_key(0, options.keys == 0 ? 0 : options.keys - 1);
  std::unique_ptr<Connection> conn;
  try {
    conn = connect(index);
  } catch (const std::exception& e) {
    count_error(result, progress, "connect");
    return;
  }

  // Outstanding requests: tag -> the time its latency counts from.
  std::unordered_map<std::uint64_t, Clock::time_point> outstanding;
  std::uint64_t next_tag = 1;
  const bool open_loop = options.rate > 0;
  // Each open-loop client sends at rate / clients, its schedule offset so the clients interleave.
  const auto interval = open_loop ? std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                                        static_cast<double>(options.clients) / options.rate))
                                  : Clock::duration::zero();
  Clock::time_point next_send = start + (open_loop ? interval * index / options.clients : Clock::duration::zero());
  std::vector<Completion> done;

  try {
    for (;;) {
      const Clock::time_point now = Clock::now();
      const bool sending = now < end;
      if (sending && !open_loop) {
        while (outstanding.size() < static_cast<std::size_t>(options.inflight)) {
          const std::uint64_t tag = next_tag++;
          outstanding.emplace(tag, Clock::now());
          conn->issue(tag, options.op, pick_key(rng));
        }
      } else if (sending) {
        while (next_send <= now && next_send < end) {
          if (outstanding.size() >= open_loop_outstanding_max) {
            count_error(result, progress, "overload");
          } else {
            const std::uint64_t tag = next_tag++;
            outstanding.emplace(tag, next_send);
            conn->issue(tag, options.op, pick_key(rng));
          }
          next_send += interval;
        }
      }
      if (!sending && outstanding.empty()) break;
      if (!sending && now >= end + options.drain) {
        count_error(result, progress, "timeout", outstanding.size());
        break;
      }
      Clock::time_point until = now + wait_slice;
      if (sending && open_loop) until = std::min(until, next_send);
      if (sending) until = std::min(until, end);
      done.clear();
      conn->wait(until, done);
      const Clock::time_point completed_at = Clock::now();
      for (const Completion& c : done) {
        const auto it = outstanding.find(c.tag);
        if (it == outstanding.end()) continue;  // not ours (cannot happen with a sane target)
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(completed_at - it->second).count();
        result.latency.record(static_cast<std::uint64_t>(std::max<std::int64_t>(ns, 0)));
        outstanding.erase(it);
        if (c.ok) {
          ++result.completed;
          ++progress.completed;
        } else {
          count_error(result, progress, c.error.empty() ? "error" : c.error);
        }
      }
    }
  } catch (const std::exception& e) {
    count_error(result, progress, "connection-lost", std::max<std::size_t>(outstanding.size(), 1));
  }
}

}  // namespace

void load_keys(Connection& conn, const Options& options, int inflight) {
  std::unordered_map<std::uint64_t, std::size_t> outstanding;  // tag -> key
  std::vector<std::size_t> again;                              // keys whose put failed
  std::size_t next = 0;
  std::size_t written = 0;
  std::uint64_t tag = 0;
  std::uint64_t failures = 0;
  std::string last_error;
  std::vector<Completion> done;
  // A minute, plus a millisecond a key: far beyond any healthy load.
  const auto deadline = Clock::now() + std::chrono::seconds(60) + std::chrono::milliseconds(options.keys);
  auto last_success = Clock::now();
  auto resume_at = Clock::now();  // no sends before this, after a failure
  const auto failed = [&](const std::string& what) {
    return std::runtime_error(fmt::format("load: {} after {} of {} keys ({} failed puts{}{})", what, written,
                                          options.keys, failures, failures > 0 ? ", the last with " : "", last_error));
  };
  while (written < options.keys) {
    while ((next < options.keys || !again.empty()) && outstanding.size() < static_cast<std::size_t>(inflight) &&
           Clock::now() >= resume_at) {
      std::size_t key = next;
      if (!again.empty()) {
        key = again.back();
        again.pop_back();
      } else {
        ++next;
      }
      outstanding.emplace(++tag, key);
      conn.issue(tag, Op::Put, key);
    }
    done.clear();
    conn.wait(std::max(resume_at, Clock::now() + std::chrono::milliseconds(10)), done);
    const auto now = Clock::now();
    for (const Completion& c : done) {
      const auto it = outstanding.find(c.tag);
      if (it == outstanding.end()) continue;
      if (c.ok) {
        ++written;
        last_success = now;
      } else {
        again.push_back(it->second);
        last_error = c.error;
        ++failures;
        resume_at = now + load_retry_pause;
      }
      outstanding.erase(it);
    }
    if (now > last_success + load_stall_max) throw failed(fmt::format("no progress for {} s", load_stall_max.count()));
    if (now > deadline) throw failed("timed out");
  }
}

std::string key_path(const Options& options, std::size_t key) { return fmt::format("{}/k{:08}", options.prefix, key); }

const char* to_string(Op op) {
  switch (op) {
    case Op::Put: return "put";
    case Op::Get: return "get";
    case Op::GetSerializable: return "get-serializable";
    case Op::Cas: return "cas";
    case Op::Txn: return "txn";
  }
  return "?";
}

std::optional<Op> parse_op(std::string_view text) {
  for (Op op : {Op::Put, Op::Get, Op::GetSerializable, Op::Cas, Op::Txn}) {
    if (text == to_string(op)) return op;
  }
  return std::nullopt;
}

Report run(const Options& options, const ConnectionFactory& connect, Progress& progress) {
  if (options.clients < 1 || options.inflight < 1) throw std::invalid_argument("clients and inflight must be at least 1");
  std::vector<ClientResult> results(static_cast<std::size_t>(options.clients));
  const Clock::time_point start = Clock::now();
  const Clock::time_point end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.duration_s));
  std::vector<std::thread> threads;
  threads.reserve(results.size());
  for (int i = 0; i < options.clients; ++i) {
    threads.emplace_back(run_client, std::cref(options), i, std::cref(connect), start, end, std::ref(progress),
                         std::ref(results[static_cast<std::size_t>(i)]));
  }
  for (std::thread& t : threads) t.join();
  const Clock::time_point finished = Clock::now();

  Report report;
  report.op = options.op;
  report.clients = options.clients;
  report.inflight = options.inflight;
  report.rate = options.rate;
  // Throughput counts over the sending window plus the drain actually used.
  report.elapsed_s = std::chrono::duration<double>(std::min(finished, end + options.drain) - start).count();
  for (const ClientResult& r : results) {
    report.latency.merge(r.latency);
    report.completed += r.completed;
    report.errors += r.errors;
    for (const auto& [kind, n] : r.error_kinds) report.error_kinds[kind] += n;
  }
  return report;
}

}  // namespace coord::bench
