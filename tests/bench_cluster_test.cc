// The benchmark's regression guard: a short run of every coord-bench operation against a real
// 3-process coordd cluster on free 127.0.0.1 ports, through the same engine and connections the
// program uses. It checks that each run completes requests and none fails; nothing is timed
// against a threshold; a short watch fan-out too. With an etcd target in the build and an etcd binary on the machine, the
// same runs go against a 3-member etcd cluster too (skipped otherwise).
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench/bench.h"
#include "bench/coord_target.h"
#include "bench/fanout.h"
#include "tests/e2e_cluster.h"
#ifdef COORD_BENCH_HAVE_ETCD
#include "bench/etcd_target.h"
#endif

namespace {

using namespace std::chrono_literals;
using coord::bench::Op;

constexpr Op all_ops[] = {Op::Put, Op::Get, Op::GetSerializable, Op::Cas, Op::Txn};

coord::bench::Options short_run(const std::vector<std::string>& endpoints, Op op) {
  coord::bench::Options options;
  options.endpoints = endpoints;
  options.op = op;
  options.clients = 2;
  options.inflight = 8;
  options.duration_s = 1;
  options.value_size = 64;
  options.keys = 100;
  return options;
}

void check_report(const coord::bench::Report& report) {
  std::string kinds;
  for (const auto& [kind, n] : report.error_kinds) kinds += fmt::format(" {}={}", kind, n);
  CAPTURE(kinds);
  CHECK(report.errors == 0);
  CHECK(report.completed > 0);
  CHECK(report.latency.count() == report.completed);
  CHECK(report.throughput() > 0);
}

// A short watch fan-out: every watcher gets every round's write.
void check_fanout(const coord::bench::WatchConnectionFactory& watch,
                  const std::function<std::unique_ptr<coord::bench::Connection>()>& writer, const std::string& dir) {
  coord::bench::FanoutOptions options;
  options.watchers = 200;
  options.connections = 3;
  options.duration_s = 0.5;
  options.dir = dir;
  const coord::bench::FanoutReport report = coord::bench::run_fanout(options, watch, writer);
  std::string messages;
  for (const std::string& m : report.error_messages) messages += " " + m;
  CAPTURE(messages);
  CHECK(report.errors == 0);
  CHECK(report.missed == 0);
  CHECK(report.rounds > 0);
  CHECK(report.delivered == static_cast<std::uint64_t>(report.rounds) * 200);
  CHECK(report.all.count() == static_cast<std::uint64_t>(report.rounds));
}

}  // namespace

TEST_CASE("every coord-bench operation runs against a coord cluster without errors") {
  coord::e2e::Cluster cluster(3);
  REQUIRE(cluster.start_all());
  REQUIRE(coord::e2e::eventually(10s, [&] { return cluster.agreed_leader({0, 1, 2}).has_value(); }));
  const coord::bench::CoordCluster found = coord::bench::discover_coord(cluster.endpoints());
  CHECK(found.members.size() == 3);

  for (Op op : all_ops) {
    CAPTURE(coord::bench::to_string(op));
    const coord::bench::Options options = short_run(cluster.endpoints(), op);
    coord::bench::preload_coord(found, options);
    coord::bench::Progress progress;
    const coord::bench::Report report = coord::bench::run(
        options, [&](int client) { return coord::bench::connect_coord(found, options, client); }, progress);
    check_report(report);
    CHECK(progress.completed.load() == report.completed);
  }

  // --op watch: the writer puts keys under the watched directory.
  coord::bench::Options writer = short_run(cluster.endpoints(), Op::Put);
  writer.prefix = "/bench/w";
  writer.keys = 0;
  coord::bench::preload_coord(found, writer);
  check_fanout([&](int connection) { return coord::bench::connect_coord_watch(found, connection); },
               [&] { return coord::bench::connect_coord(found, writer, 0); }, writer.prefix);
}

#ifdef COORD_BENCH_HAVE_ETCD
TEST_CASE("every coord-bench operation runs against an etcd cluster without errors (when etcd is installed)") {
  const std::string etcd = "/usr/bin/etcd";
  if (!std::filesystem::exists(etcd)) {
    MESSAGE("no " << etcd << ": skipped (scripts/compare.sh installs it)");
    return;
  }
  // Ports, a temporary folder and process handling from the coord harness; etcd's own flags.
  coord::e2e::Cluster dir(3);
  std::vector<coord::e2e::MemberPorts> ports;
  std::string initial;
  for (int i = 0; i < 3; ++i) {
    ports.push_back({coord::e2e::free_port(), coord::e2e::free_port()});
    initial += fmt::format("{}e{}=http://127.0.0.1:{}", i == 0 ? "" : ",", i + 1, ports.back().peer);
  }
  std::vector<std::string> endpoints;
  std::vector<std::unique_ptr<coord::e2e::Process>> members;
  for (int i = 0; i < 3; ++i) {
    const std::string peer = fmt::format("http://127.0.0.1:{}", ports[static_cast<std::size_t>(i)].peer);
    const std::string client = fmt::format("127.0.0.1:{}", ports[static_cast<std::size_t>(i)].client);
    endpoints.push_back(client);
    members.push_back(std::make_unique<coord::e2e::Process>(
        std::vector<std::string>{etcd, "--name", fmt::format("e{}", i + 1), "--data-dir",
                                 fmt::format("{}/e{}", dir.dir(), i + 1), "--listen-peer-urls", peer,
                                 "--initial-advertise-peer-urls", peer, "--listen-client-urls", "http://" + client,
                                 "--advertise-client-urls", "http://" + client, "--initial-cluster", initial,
                                 "--initial-cluster-state", "new", "--logger", "zap", "--log-level", "warn"},
        fmt::format("{}/e{}.log", dir.dir(), i + 1)));
  }
  std::optional<coord::bench::EtcdCluster> found;
  REQUIRE(coord::e2e::eventually(30s, [&] {
    try {
      found = coord::bench::discover_etcd(endpoints);
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }));

  for (Op op : all_ops) {
    CAPTURE(coord::bench::to_string(op));
    const coord::bench::Options options = short_run(endpoints, op);
    coord::bench::preload_etcd(*found, options);
    coord::bench::Progress progress;
    const coord::bench::Report report = coord::bench::run(
        options, [&](int client) { return coord::bench::connect_etcd(*found, options, client); }, progress);
    check_report(report);
  }

  coord::bench::Options writer = short_run(endpoints, Op::Put);
  writer.prefix = "/bench/w";
  check_fanout([&](int connection) { return coord::bench::connect_etcd_watch(*found, connection); },
               [&] { return coord::bench::connect_etcd(*found, writer, 0); }, writer.prefix);
}
#endif
