// coord-bench: drives one operation against a cluster for a fixed time and reports throughput
// and latency percentiles (bench/bench.h explains the closed and open loops).
//
//   coord-bench --endpoints 127.0.0.1:7101,... --op put|get|get-serializable|cas|txn
//               [--target coord|etcd] [--clients N] [--inflight K] [--duration S]
//               [--value-size B] [--keys K] [--rate R] [--json]
//   coord-bench ... --op watch [--watchers W] [--clients C]
//                                       watch fan-out (bench/fanout.h): W watchers on one subtree
//                                       over C connections, one write per round, the time until
//                                       every watcher has it
//   coord-bench ... --preload-only      write every key once, report how long it took, exit
//   coord-bench ... --wait-serving S    poll until a linearizable read succeeds (at most S
//                                       seconds), report how long that took from this
//                                       program's start, exit
//
// --target etcd runs the same workload against an etcd v3 cluster over gRPC (bench/etcd_target.h);
// it exists only in builds that found gRPC (COORD_BENCH_ETCD).
//
// Exit codes: 0 the run completed with no errors, 1 it completed with errors (or could not
// reach the cluster), 2 bad usage (including --target etcd in a build without it).
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench.h"
#include "bench/coord_target.h"
#include "net/client.h"
#ifdef COORD_BENCH_HAVE_ETCD
#include "bench/etcd_target.h"
#endif

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

using Clock = std::chrono::steady_clock;

// This process's CPU time (user + system) so far, in seconds: the client's own cost, which
// matters when the client shares the machine's cores with the servers.
double cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// A cluster of one kind, found: how to load its keys and how to connect each client.
struct Target {
  std::string name;
  std::function<void(const coord::bench::Options&)> preload;  // writes every key
  coord::bench::ConnectionFactory connect;
  coord::bench::WatchConnectionFactory watch;
};

// Finds the cluster (its leader); throws std::runtime_error when it cannot.
Target find_target(const std::string& name, const coord::bench::Options& options) {
  Target t;
  t.name = name;
  if (name == "coord") {
    auto cluster = std::make_shared<coord::bench::CoordCluster>(coord::bench::discover_coord(options.endpoints));
    t.preload = [cluster](const coord::bench::Options& o) { coord::bench::preload_coord(*cluster, o); };
    t.connect = [cluster, &options](int client) { return coord::bench::connect_coord(*cluster, options, client); };
    t.watch = [cluster](int connection) { return coord::bench::connect_coord_watch(*cluster, connection); };
    return t;
  }
#ifdef COORD_BENCH_HAVE_ETCD
  auto cluster = std::make_shared<coord::bench::EtcdCluster>(coord::bench::discover_etcd(options.endpoints));
  t.preload = [cluster](const coord::bench::Options& o) { coord::bench::preload_etcd(*cluster, o); };
  t.connect = [cluster, &options](int client) { return coord::bench::connect_etcd(*cluster, options, client); };
  t.watch = [cluster](int connection) { return coord::bench::connect_etcd_watch(*cluster, connection); };
  return t;
#else
  throw std::logic_error("no etcd target in this build");
#endif
}

// Until `timeout` after `start`: finds the cluster and reads key 0 linearizably from its first
// member; returns the seconds from `start` to the first answer (a missing key counts: the read
// was served), or nullopt.
std::optional<double> wait_serving(const std::string& target, const coord::bench::Options& options,
                                   Clock::time_point start, double timeout_s) {
  coord::bench::Options read = options;
  read.op = Op::Get;
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s));
  std::vector<coord::bench::Completion> done;
  while (Clock::now() < deadline) {
    try {
      const Target t = find_target(target, read);
      const auto conn = t.connect(0);
      conn->issue(1, Op::Get, 0);
      done.clear();
      const auto until = std::min(deadline, Clock::now() + std::chrono::seconds(1));
      while (done.empty() && Clock::now() < until) conn->wait(until, done);
      if (!done.empty() && (done.front().ok || done.front().error == "not-found")) {
        return std::chrono::duration<double>(Clock::now() - start).count();
      }
    } catch (const std::exception&) {
      // Not up yet (no leader, connection refused): try again shortly.
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return std::nullopt;
}

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

void print_text(const coord::bench::Report& r, const coord::bench::Options& o, const std::string& target,
                double client_cpu_s, const std::string& cmd) {
  fmt::print("coord-bench: {} on {}, {} client(s) x {} in flight, {}, {:.0f} s, {}-byte values, {} keys\n",
             to_string(r.op), target, r.clients, r.inflight, r.rate > 0 ? fmt::format("open loop at {:.0f}/s", r.rate) : "closed loop",
             o.duration_s, o.value_size, o.keys);
  fmt::print("  requests    {} ok, {} errors\n", r.completed - r.errors, r.errors);
  for (const auto& [kind, n] : r.error_kinds) fmt::print("    {:<12} {}\n", kind, n);
  fmt::print("  throughput  {:.0f} ops/s\n", r.throughput());
  const auto& h = r.latency;
  fmt::print("  latency     p50 {:.3f} ms  p90 {:.3f} ms  p99 {:.3f} ms  p99.9 {:.3f} ms  max {:.3f} ms\n",
             ms(h.quantile(0.5)), ms(h.quantile(0.9)), ms(h.quantile(0.99)), ms(h.quantile(0.999)), ms(h.max()));
  fmt::print("  client cpu  {:.2f} s ({:.1f} us per request)\n", client_cpu_s,
             r.completed > 0 ? client_cpu_s * 1e6 / static_cast<double>(r.completed) : 0.0);
  fmt::print("  command     {}\n", cmd);
}

void print_json(const coord::bench::Report& r, const coord::bench::Options& o, const std::string& target,
                double client_cpu_s, const std::string& cmd) {
  const auto& h = r.latency;
  nlohmann::json j = {
      {"target", target},
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
      {"client_cpu_s", client_cpu_s},
      {"command", cmd},
  };
  std::cout << j.dump() << "\n";
}

// --op watch: the fan-out run; exit status as for the other ops.
int run_watch(const Target& t, const coord::bench::Options& options, int watchers, const std::string& dir, bool json,
              const std::string& cmd) {
  coord::bench::FanoutOptions fanout;
  fanout.watchers = watchers;
  fanout.connections = options.clients;
  fanout.duration_s = options.duration_s;
  fanout.dir = dir;
  const double cpu_before = cpu_seconds();
  const coord::bench::FanoutReport r = coord::bench::run_fanout(fanout, t.watch, [&] { return t.connect(0); });
  const double client_cpu_s = cpu_seconds() - cpu_before;
  const auto& d = r.delivery;
  const auto& a = r.all;
  std::vector<std::string> messages(r.error_messages.begin(),
                                    r.error_messages.begin() + std::min<std::ptrdiff_t>(5, std::ssize(r.error_messages)));
  if (json) {
    const nlohmann::json j = {
        {"target", t.name},
        {"op", "watch"},
        {"watchers", r.watchers},
        {"connections", r.connections},
        {"rounds", r.rounds},
        {"delivered", r.delivered},
        {"missed", r.missed},
        {"errors", r.errors},
        {"error_messages", messages},
        {"open_s", r.open_s},
        {"delivery_ms", {{"p50", ms(d.quantile(0.5))}, {"p90", ms(d.quantile(0.9))}, {"p99", ms(d.quantile(0.99))}, {"max", ms(d.max())}}},
        {"all_ms", {{"p50", ms(a.quantile(0.5))}, {"p90", ms(a.quantile(0.9))}, {"max", ms(a.max())}}},
        {"client_cpu_s", client_cpu_s},
        {"command", cmd},
    };
    std::cout << j.dump() << "\n";
  } else {
    fmt::print("coord-bench: watch fan-out on {}, {} watchers of {} over {} connection(s), {} rounds\n", t.name,
               r.watchers, dir, r.connections, r.rounds);
    fmt::print("  opened      in {:.2f} s\n", r.open_s);
    fmt::print("  events      {} delivered, {} missed, {} errors\n", r.delivered, r.missed, r.errors);
    for (const std::string& m : messages) fmt::print("    {}\n", m);
    fmt::print("  all         p50 {:.3f} ms  p90 {:.3f} ms  max {:.3f} ms  (write sent -> every watcher has it)\n",
               ms(a.quantile(0.5)), ms(a.quantile(0.9)), ms(a.max()));
    fmt::print("  each        p50 {:.3f} ms  p90 {:.3f} ms  p99 {:.3f} ms  max {:.3f} ms\n", ms(d.quantile(0.5)),
               ms(d.quantile(0.9)), ms(d.quantile(0.99)), ms(d.max()));
    fmt::print("  client cpu  {:.2f} s\n", client_cpu_s);
    fmt::print("  command     {}\n", cmd);
  }
  return r.errors == 0 && r.missed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const Clock::time_point program_start = Clock::now();
  CLI::App app{"coord-bench: throughput and latency of one operation against a coord (or etcd) cluster"};
  coord::bench::Options options;
  std::string endpoints = "127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103";
  std::string target = "coord";
  std::string op = "put";
  bool json = false;
  bool preload = true;
  bool preload_only = false;
  double wait_serving_s = 0;
  int watchers = 10'000;
  app.add_option("--endpoints", endpoints, "client addresses, host:port,...")->envname("COORD_ENDPOINTS");
  app.add_option("--target", target, "coord | etcd (an etcd v3 cluster over gRPC, when this build has it)")
      ->check(CLI::IsMember({"coord", "etcd"}));
  app.add_option("--op", op, "put | get | get-serializable | cas | txn | watch")
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
  app.add_option("--watchers", watchers, "--op watch: watchers on the subtree, spread over --clients connections")
      ->check(CLI::Range(1, 1'000'000));
  app.add_flag("--json", json, "one JSON object instead of text");
  app.add_flag("!--no-preload", preload, "do not write the keys before the run");
  app.add_flag("--preload-only", preload_only, "write every key once, report how long it took, and exit");
  app.add_option("--wait-serving", wait_serving_s,
                 "poll until a linearizable read is served, at most this many seconds; report the time from "
                 "this program's start, and exit")
      ->check(CLI::Range(0.1, 3600.0));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
#ifndef COORD_BENCH_HAVE_ETCD
  if (target == "etcd") {
    std::cerr << "coord-bench: this build has no etcd support (it needs gRPC and protobuf at build time: "
                 "Debian's libgrpc++-dev, libprotobuf-dev, protobuf-compiler, protobuf-compiler-grpc; "
                 "scripts/compare.sh installs them and builds it)\n";
    return 2;
  }
#endif
  // The watch fan-out's writer puts keys under the watched directory.
  const bool watch = op == "watch";
  const std::string watch_dir = options.prefix + "/w";
  if (watch) {
    options.prefix = watch_dir;
    op = "put";
  }
  const auto parsed = coord::bench::parse_op(op);
  if (!parsed) {
    std::cerr << "coord-bench: --op " << op << " is not supported yet (put, get, get-serializable, cas, txn, watch are)\n";
    return 2;
  }
  options.op = *parsed;
  options.endpoints = coord::net::split_endpoints(endpoints);
  if (options.endpoints.empty()) {
    std::cerr << "coord-bench: --endpoints is empty\n";
    return 2;
  }
  const std::string cmd = command_line(argc, argv);

  if (wait_serving_s > 0) {
    const auto serving = wait_serving(target, options, program_start, wait_serving_s);
    if (json) {
      std::cout << nlohmann::json{{"target", target}, {"serving", serving.has_value()}, {"serving_s", serving.value_or(0)}}.dump()
                << "\n";
    } else if (serving) {
      fmt::print("coord-bench: {} served a linearizable read {:.3f} s after start\n", target, *serving);
    } else {
      fmt::print("coord-bench: {} served no read within {:.1f} s\n", target, wait_serving_s);
    }
    return serving ? 0 : 1;
  }

  try {
    const Target t = find_target(target, options);
    if (watch) {
      coord::bench::Options dir_only = options;
      dir_only.keys = 0;
      t.preload(dir_only);
      return run_watch(t, options, watchers, watch_dir, json, cmd);
    }
    if (preload_only) {
      const Clock::time_point start = Clock::now();
      t.preload(options);
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      if (json) {
        std::cout << nlohmann::json{{"target", target}, {"keys", options.keys}, {"value_size", options.value_size},
                                    {"preload_s", seconds}}.dump()
                  << "\n";
      } else {
        fmt::print("coord-bench: wrote {} keys of {} bytes to {} in {:.1f} s ({:.0f} keys/s)\n", options.keys,
                   options.value_size, target, seconds, static_cast<double>(options.keys) / std::max(seconds, 1e-9));
      }
      return 0;
    }
    if (preload && options.op != Op::Put) t.preload(options);
    if (preload && options.op == Op::Put) {
      // Only what the keys need beforehand (coord: their parent): puts create the keys themselves.
      coord::bench::Options prefix_only = options;
      prefix_only.keys = 0;
      t.preload(prefix_only);
    }
    coord::bench::Progress progress;
    coord::bench::Report report;
    const double cpu_before = cpu_seconds();
    {
      ProgressLine line(progress, options.duration_s);
      report = coord::bench::run(options, t.connect, progress);
    }
    const double client_cpu_s = cpu_seconds() - cpu_before;
    if (json) {
      print_json(report, options, target, client_cpu_s, cmd);
    } else {
      print_text(report, options, target, client_cpu_s, cmd);
    }
    return report.errors == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "coord-bench: " << e.what() << "\n";
    return 1;
  }
}
