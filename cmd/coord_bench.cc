// coord-bench: drives one operation against a cluster for a fixed time and reports throughput
// and latency percentiles (bench/bench.h explains the closed and open loops).
//
//   coord-bench --endpoints 127.0.0.1:7101,... --op put|get|get-serializable|cas|txn
//               [--clients N] [--inflight K] [--duration S] [--value-size B] [--keys K]
//               [--rate R] [--json]
//
// Exit codes: 0 the run completed with no errors, 1 it completed with errors (or could not
// reach the cluster), 2 bad usage.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench.h"
#include "bench/coord_target.h"
#include "net/client.h"

namespace {

using coord::bench::Op;

std::string command_line(int argc, char** argv) {
  std::string out;
  for (int i = 0; i < argc; ++i) {
    if (i > 0) out += ' ';
    out += argv[i];
  }
  return out;
}

double ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }

// One status line a second on stderr while the run goes (rewritten in place on a terminal).
class ProgressLine {
 public:
  ProgressLine(const coord::bench::Progress& progress, double duration_s)
      : progress_(progress), duration_s_(duration_s), tty_(::isatty(STDERR_FILENO) != 0),
        thread_([this] { loop(); }) {}
  ~ProgressLine() {
    stop_ = true;
    thread_.join();
    if (tty_) std::fputs("\n", stderr);
  }

 private:
  void loop() {
    const auto start = std::chrono::steady_clock::now();
    std::uint64_t last = 0;
    int second = 0;
    while (!stop_) {
      std::this_thread::sleep_until(start + std::chrono::seconds(second + 1));
      if (stop_) break;
      ++second;
      const std::uint64_t done = progress_.completed.load();
      std::fprintf(stderr, "%s[%3d/%.0fs] %8llu ops/s, %llu done, %llu errors%s", tty_ ? "\r" : "", second, duration_s_,
                   static_cast<unsigned long long>(done - last), static_cast<unsigned long long>(done),
                   static_cast<unsigned long long>(progress_.errors.load()), tty_ ? "" : "\n");
      std::fflush(stderr);
      last = done;
    }
  }

  const coord::bench::Progress& progress_;
  double duration_s_;
  bool tty_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

void print_text(const coord::bench::Report& r, const coord::bench::Options& o, const std::string& cmd) {
  fmt::print("coord-bench: {} on coord, {} client(s) x {} in flight, {}, {:.0f} s, {}-byte values, {} keys\n",
             to_string(r.op), r.clients, r.inflight, r.rate > 0 ? fmt::format("open loop at {:.0f}/s", r.rate) : "closed loop",
             o.duration_s, o.value_size, o.keys);
  fmt::print("  requests    {} ok, {} errors\n", r.completed - r.errors, r.errors);
  for (const auto& [kind, n] : r.error_kinds) fmt::print("    {:<12} {}\n", kind, n);
  fmt::print("  throughput  {:.0f} ops/s\n", r.throughput());
  const auto& h = r.latency;
  fmt::print("  latency     p50 {:.3f} ms  p90 {:.3f} ms  p99 {:.3f} ms  p99.9 {:.3f} ms  max {:.3f} ms\n",
             ms(h.quantile(0.5)), ms(h.quantile(0.9)), ms(h.quantile(0.99)), ms(h.quantile(0.999)), ms(h.max()));
  fmt::print("  command     {}\n", cmd);
}

void print_json(const coord::bench::Report& r, const coord::bench::Options& o, const std::string& cmd) {
  const auto& h = r.latency;
  nlohmann::json j = {
      {"target", "coord"},
      {"op", to_string(r.op)},
      {"clients", r.clients},
      {"inflight", r.inflight},
      {"rate", r.rate},
      {"duration_s", o.duration_s},
      {"value_size", o.value_size},
      {"keys", o.keys},
      {"elapsed_s", r.elapsed_s},
      {"ok", r.completed - r.errors},
      {"errors", r.errors},
      {"error_kinds", r.error_kinds},
      {"throughput", r.throughput()},
      {"latency_ms",
       {{"p50", ms(h.quantile(0.5))},
        {"p90", ms(h.quantile(0.9))},
        {"p99", ms(h.quantile(0.99))},
        {"p999", ms(h.quantile(0.999))},
        {"max", ms(h.max())},
        {"mean", h.mean() / 1e6}}},
      {"command", cmd},
  };
  std::cout << j.dump() << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"coord-bench: throughput and latency of one operation against a coord cluster"};
  coord::bench::Options options;
  std::string endpoints = "127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103";
  std::string op = "put";
  bool json = false;
  bool preload = true;
  app.add_option("--endpoints", endpoints, "client addresses, host:port,...")->envname("COORD_ENDPOINTS");
  app.add_option("--op", op, "put | get | get-serializable | cas | txn")
      ->check(CLI::IsMember({"put", "get", "get-serializable", "cas", "txn", "watch", "lock"}));
  app.add_option("--clients", options.clients, "client connections, one thread each")->check(CLI::Range(1, 4096));
  app.add_option("--inflight", options.inflight, "requests each client keeps outstanding (closed loop)")
      ->check(CLI::Range(1, 65536));
  app.add_option("--duration", options.duration_s, "seconds to run")->check(CLI::Range(0.1, 86400.0));
  app.add_option("--value-size", options.value_size, "bytes per value")->check(CLI::Range(0, 1 << 20));
  app.add_option("--keys", options.keys, "distinct keys")->check(CLI::Range(1, 100'000'000));
  app.add_option("--rate", options.rate, "open loop: total requests per second (0: closed loop)")
      ->check(CLI::Range(0.0, 1e9));
  app.add_option("--prefix", options.prefix, "where the benchmark's keys live");
  app.add_flag("--json", json, "one JSON object instead of text");
  app.add_flag("!--no-preload", preload, "do not write the keys before the run");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  const auto parsed = coord::bench::parse_op(op);
  if (!parsed) {
    std::cerr << "coord-bench: --op " << op << " is not supported yet (put, get, get-serializable, cas, txn are)\n";
    return 2;
  }
  options.op = *parsed;
  options.endpoints = coord::net::split_endpoints(endpoints);
  if (options.endpoints.empty()) {
    std::cerr << "coord-bench: --endpoints is empty\n";
    return 2;
  }
  const std::string cmd = command_line(argc, argv);
  try {
    const coord::bench::CoordCluster cluster = coord::bench::discover_coord(options.endpoints);
    if (preload && options.op != Op::Put) coord::bench::preload_coord(cluster, options);
    if (preload && options.op == Op::Put) {
      // Only the prefix: puts create the keys themselves.
      coord::bench::Options prefix_only = options;
      prefix_only.keys = 0;
      coord::bench::preload_coord(cluster, prefix_only);
    }
    coord::bench::Progress progress;
    coord::bench::Report report;
    {
      ProgressLine line(progress, options.duration_s);
      report = coord::bench::run(
          options, [&](int client) { return coord::bench::connect_coord(cluster, options, client); }, progress);
    }
    if (json) {
      print_json(report, options, cmd);
    } else {
      print_text(report, options, cmd);
    }
    return report.errors == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "coord-bench: " << e.what() << "\n";
    return 1;
  }
}
