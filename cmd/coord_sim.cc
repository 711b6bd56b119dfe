// coord-sim: runs the deterministic simulator for one seed or a range of seeds.
//
//   coord-sim [--seed N | --seeds A..B] [--nodes 3|5] [--faults none|all|network,clock,...]
//             [--workload raft|kv|watch|locks] [--time SECONDS] [--trace FILE] [--jobs J]
//             [--no-fencing] [--timeline FILE.html]
//
// --timeline (one seed only) writes a self-contained HTML page of the run: a lane per replica
// (role, term, down, paused), the faults where they act, the clients' operations (for locks:
// holdings and guarded writes with their tokens) and the violation, if any (sim/timeline_html.h).
//
// One line per seed; a failed seed adds "VIOLATION seed=N invariant=NAME" and the events before
// it. The last line is always "N passed, M failed". Exit status: 0 all passed, 1 some failed,
// 2 bad usage.
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "sim/abort_context.h"
#include "sim/faults.h"
#include "sim/runner.h"
#include "sim/simulation.h"
#include "sim/timeline.h"
#include "sim/timeline_html.h"

namespace {

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

int usage_error(const std::string& message) {
  std::cerr << "coord-sim: " << message << "\n";
  return kExitUsage;
}

// Seen by the SIGABRT handler: a failed assertion in the core must still end the output with
// the seed, its last events and the totals line.
std::atomic<std::uint64_t> g_passed{0};
std::atomic<std::uint64_t> g_failed{0};
std::FILE* g_trace_file = nullptr;

extern "C" void on_abort(int) {
  std::fflush(stdout);
  coord::sim::write_abort_report(STDOUT_FILENO);
  if (g_trace_file) {
    std::fflush(g_trace_file);
    coord::sim::write_abort_trace(fileno(g_trace_file));
  }
  const std::string totals = coord::sim::totals_line(g_passed.load(), g_failed.load() + 1) + "\n";
  (void)!::write(STDOUT_FILENO, totals.data(), totals.size());
  ::_exit(kExitFailed);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace coord::sim;

  CLI::App app{"coord-sim: deterministic simulation of a coord cluster under faults"};
  std::uint64_t seed = 1;
  std::string seeds;
  int nodes = 3;
  std::string faults = "all";
  std::string workload = "raft";
  double time_s = Options{}.time_s;
  std::string trace_path;
  int jobs = 1;
  bool no_fencing = false;
  std::string timeline_path;

  auto* seed_opt = app.add_option("--seed", seed, "Run this one seed (default 1)");
  auto* seeds_opt = app.add_option("--seeds", seeds, "Run a range of seeds, A..B inclusive");
  seed_opt->excludes(seeds_opt);
  app.add_option("--nodes", nodes, "Cluster size: 3 or 5 (default 3)");
  app.add_option("--faults", faults,
                 "none, all, or a comma list of network,clock,pause,crash,disk (default all)");
  app.add_option("--workload", workload,
                 "Workload: raft (Raft-level checks), kv (linearizability of kv clients), watch (watch "
                 "delivery) or locks (lock holders writing to a fenced storage service) (default raft)");
  app.add_option("--time", time_s,
                 "Virtual seconds with faults injected (default " + std::to_string(static_cast<int>(time_s)) +
                     "); a quiet period of " + std::to_string(kQuietUs / kMicrosPerSecond) +
                     " s follows to judge liveness");
  app.add_option("--trace", trace_path, "Write every event of every seed to FILE, in seed order");
  app.add_flag("--no-fencing", no_fencing,
               "locks only: the storage accepts every write, token or not (must break mutual exclusion "
               "on some seed)");
  app.add_option("--timeline", timeline_path,
                 "Write a picture of the run to FILE.html (one seed only): a lane per replica with its role "
                 "and term, faults where they act, client operations (locks: holdings and guarded writes "
                 "with tokens) and the violation; self-contained, opens from disk")
      ->type_name("FILE.html");
  app.add_option("--jobs", jobs, "Run seeds on J threads (output stays in seed order; default 1)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help, or the error
    return code == 0 ? 0 : kExitUsage;
  }

  if (nodes != 3 && nodes != 5) return usage_error("--nodes must be 3 or 5, not " + std::to_string(nodes));
  std::string error;
  std::optional<FaultFamilies> families = parse_fault_families(faults, &error);
  if (!families) return usage_error("--faults: " + error);
  std::optional<Workload> wl = parse_workload(workload);
  if (!wl) return usage_error("--workload: unknown workload '" + workload + "' (available: raft, kv, watch, locks)");
  if (no_fencing && *wl != Workload::Locks) {
    return usage_error("--no-fencing only applies to --workload locks (it turns off the storage's Guard)");
  }
  if (jobs < 1 || jobs > kJobsMax) {
    return usage_error("--jobs must be between 1 and " + std::to_string(kJobsMax));
  }
  SeedRange range{seed, seed};
  if (!seeds.empty()) {
    std::optional<SeedRange> r = parse_seed_range(seeds, &error);
    if (!r) return usage_error(error);
    range = *r;
  }
  if (!timeline_path.empty() && range.first != range.last) {
    return usage_error("--timeline draws one run: use it with --seed N (or a one-seed --seeds N..N)");
  }

  Options base;
  base.nodes = nodes;
  base.faults = *families;
  base.workload = *wl;
  base.time_s = time_s;
  base.fencing = !no_fencing;
  if (auto problem = validate(base)) return usage_error(*problem);
  Timeline timeline;
  std::ofstream timeline_file;
  if (!timeline_path.empty()) {
    // Opened before the run, so a bad path is a usage error and not an hour's run lost.
    timeline_file.open(timeline_path, std::ios::binary | std::ios::trunc);
    if (!timeline_file) return usage_error("cannot open timeline file '" + timeline_path + "'");
    base.timeline = &timeline;
  }

  if (!trace_path.empty()) {
    g_trace_file = std::fopen(trace_path.c_str(), "wb");
    if (!g_trace_file) return usage_error("cannot open trace file '" + trace_path + "'");
  }
  std::signal(SIGABRT, on_abort);

  bool trace_write_failed = false;
  run_seeds(base, range, jobs, g_trace_file != nullptr, [&](const Result& result, const std::string& trace) {
    if (g_trace_file) {
      // Flushed per seed, so an abort later appends after complete seeds.
      if (std::fwrite(trace.data(), 1, trace.size(), g_trace_file) != trace.size() ||
          std::fflush(g_trace_file) != 0) {
        trace_write_failed = true;
      }
    }
    std::cout << summary_line(result) << "\n";
    if (result.passed) {
      ++g_passed;
    } else {
      ++g_failed;
      for (const std::string& line : violation_lines(result)) std::cout << line << "\n";
    }
    std::cout.flush();
  });
  if (g_trace_file) {
    std::FILE* file = g_trace_file;
    g_trace_file = nullptr;
    if (std::fclose(file) != 0) trace_write_failed = true;
  }
  bool timeline_write_failed = false;
  if (!timeline_path.empty()) {
    timeline_file << timeline_html(timeline);
    timeline_file.close();
    timeline_write_failed = !timeline_file;
    if (timeline_write_failed) std::cerr << "coord-sim: writing the timeline file '" << timeline_path << "' failed\n";
  }
  if (trace_write_failed) std::cerr << "coord-sim: writing the trace file '" << trace_path << "' failed\n";
  std::cout << totals_line(g_passed.load(), g_failed.load()) << std::endl;
  return g_failed.load() == 0 && !trace_write_failed && !timeline_write_failed ? 0 : kExitFailed;
}
