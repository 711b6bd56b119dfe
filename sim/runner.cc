#include "sim/runner.h"

#include <atomic>
#include <charconv>
#include <condition_variable>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "sim/abort_context.h"

namespace coord::sim {

namespace {

std::optional<std::uint64_t> parse_u64(std::string_view text) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

// Workers may run this many seeds ahead of the one being reported, bounding buffered traces.
inline constexpr std::uint64_t kSeedsAheadPerJob = 4;

struct Done {
  Result result;
  std::string trace;
};

Done run_one(const Options& base, std::uint64_t seed, bool with_trace) {
  Options options = base;
  options.seed = seed;
  std::ostringstream trace;
  options.trace = with_trace ? &trace : nullptr;
  AbortContext& abort = abort_context();
  abort.seed = seed;
  abort.trace_text = with_trace ? &trace : nullptr;
  Done done{run(options), {}};
  abort.trace_text = nullptr;
  if (with_trace) done.trace = std::move(trace).str();
  return done;
}

}  // namespace

std::optional<SeedRange> parse_seed_range(std::string_view text, std::string* error) {
  const std::size_t dots = text.find("..");
  std::optional<std::uint64_t> first, last;
  if (dots != std::string_view::npos) {
    first = parse_u64(text.substr(0, dots));
    last = parse_u64(text.substr(dots + 2));
  }
  if (!first || !last || *first > *last) {
    if (error) *error = fmt::format("--seeds wants A..B with A <= B (e.g. 1..100), not '{}'", text);
    return std::nullopt;
  }
  return SeedRange{*first, *last};
}

void run_seeds(const Options& base, SeedRange range, int jobs, bool with_trace,
               const std::function<void(const Result&, const std::string& trace)>& report) {
  const std::uint64_t count = range.last - range.first + 1;
  if (jobs <= 1 || count == 1) {
    for (std::uint64_t i = 0; i < count; ++i) {
      Done d = run_one(base, range.first + i, with_trace);
      report(d.result, d.trace);
    }
    return;
  }
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::uint64_t, Done> done;  // finished but not yet reported, by position
  std::uint64_t next_to_start = 0;
  std::uint64_t next_to_report = 0;
  const std::uint64_t ahead_max = kSeedsAheadPerJob * static_cast<std::uint64_t>(jobs);

  auto worker = [&] {
    for (;;) {
      std::uint64_t i;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return next_to_start >= count || next_to_start < next_to_report + ahead_max; });
        if (next_to_start >= count) return;
        i = next_to_start++;
      }
      Done d = run_one(base, range.first + i, with_trace);
      {
        std::lock_guard lock(mu);
        done.emplace(i, std::move(d));
      }
      cv.notify_all();
    }
  };
  std::vector<std::thread> threads;
  const auto thread_count = static_cast<std::uint64_t>(std::min(jobs, kJobsMax));
  for (std::uint64_t t = 0; t < std::min(thread_count, count); ++t) threads.emplace_back(worker);
  while (next_to_report < count) {
    Done d;
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return done.count(next_to_report) > 0; });
      auto it = done.find(next_to_report);
      d = std::move(it->second);
      done.erase(it);
    }
    report(d.result, d.trace);
    {
      std::lock_guard lock(mu);
      ++next_to_report;
    }
    cv.notify_all();
  }
  for (auto& t : threads) t.join();
}

std::string summary_line(const Result& r) {
  const Stats& s = r.stats;
  return fmt::format("seed={} {} leaders={} acked={} reads={} applied={} faults={} crashes={} "
                     "snapshots={} msgs={} early={} virtual={}s",
                     r.seed, r.passed ? "passed" : "FAILED invariant=" + r.invariant, s.leaders_elected,
                     s.acked, s.reads, s.applied_max, s.faults_injected, s.crashes,
                     s.snapshots_installed, s.messages_sent, s.early_messages, s.virtual_us / kMicrosPerSecond);
}

std::vector<std::string> violation_lines(const Result& r) {
  std::vector<std::string> out;
  out.push_back(fmt::format("VIOLATION seed={} invariant={}", r.seed, r.invariant));
  out.push_back("  " + r.message);
  if (!r.recent_events.empty()) {
    out.push_back(fmt::format("  last {} events:", r.recent_events.size()));
    for (const std::string& line : r.recent_events) out.push_back("    " + line);
  }
  return out;
}

std::string totals_line(std::uint64_t passed, std::uint64_t failed) {
  return fmt::format("{} passed, {} failed", passed, failed);
}

}  // namespace coord::sim
