// coord-faults: real coordd processes, each in a network namespace of its own, under a seeded
// schedule of faults (harness/faults.h), with clients recording every operation; the history is
// judged by the simulator's linearizability checker (harness/history.h).
//
//   coord-faults --members 3 --seed 1 --duration 60s
//   coord-faults --members 5 --duration 30m --soak
//
// Exit status: 0 no violation, 1 violations, 2 bad usage or a setup failure, 77 skipped (this
// machine cannot create network namespaces: not root).
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>

#include "client/client.h"
#include "harness/command.h"
#include "harness/faults.h"
#include "harness/history.h"
#include "harness/locks.h"
#include "harness/member.h"
#include "harness/metrics_scrape.h"
#include "harness/network.h"
#include "harness/watches.h"
#include "harness/workload.h"

namespace {

namespace fs = std::filesystem;
using namespace coord::harness;
using namespace std::chrono_literals;

constexpr int kExitViolations = 1;
constexpr int kExitSetup = 2;
constexpr int kExitSkip = 77;
constexpr int kPeerPort = 7001;
constexpr int kClientPort = 7101;
constexpr int kMetricsPort = 7201;  // --soak only: what holds each member's memory

std::atomic<bool> interrupted{false};

// The member that says it leads (coord_raft_leader), 0 when none answers so.
int find_leader(const Network& network, int members) {
  for (int i = 1; i <= members; ++i) {
    const auto m = scrape_metrics(network.address(i), kMetricsPort, 1000ms);
    auto it = m.find("coord_raft_leader");
    if (it != m.end() && it->second == 1.0) return i;
  }
  return 0;
}

// The focused memory scenario (--slow-leader-rounds): what made a soak member's RSS jump was
// a slowed link on a member that was probably leading while restarted followers caught up.
// Each round recreates that and prints the leader's memory gauges every second.
void run_slow_leader_rounds(int rounds, Network& network, std::vector<std::unique_ptr<Member>>& members,
                            FaultSchedule& faults) {
  const int n = static_cast<int>(members.size());
  auto sample = [&](int round, int leader, const char* phase, int second) {
    MemoryPeaks one;
    const auto m = scrape_metrics(network.address(leader), kMetricsPort, 1000ms);
    one.add(m, members[static_cast<std::size_t>(leader - 1)]->rss_kib());
    auto at = [&](const char* name) {
      auto it = m.find(name);
      return it == m.end() ? 0.0 : it->second;
    };
    fmt::print("[round {} {} {:2}s] m{}: {}; peer sent {:.0f} dropped {:.0f}; largest Ready {:.0f} messages {:.1f} MiB\n",
               round, phase, second, leader, one.line(), at("coord_peer_sent_total"), at("coord_peer_dropped_total"),
               at("coord_ready_messages_peak"), at("coord_ready_message_bytes_peak") / (1024.0 * 1024.0));
    std::fflush(stdout);
  };
  for (int round = 1; round <= rounds && !interrupted; ++round) {
    faults.supervise_for(3000ms);
    int leader = find_leader(network, n);
    if (leader == 0) {
      fmt::print("[round {}] no leader; next round\n", round);
      continue;
    }
    // A follower's disk full for 5 s: it holds its log write (and the messages it receives),
    // then answers them all at once.
    const int held = leader % n + 1;
    sample(round, leader, "before", 0);
    members[static_cast<std::size_t>(held - 1)]->fill_disk();
    fmt::print("[round {}] m{} leads; m{} disk full\n", round, leader, held);
    for (int second = 1; second <= 5 && !interrupted; ++second) {
      faults.supervise_for(1000ms);
      sample(round, leader, "held", second);
    }
    members[static_cast<std::size_t>(held - 1)]->free_disk();
    if (!members[static_cast<std::size_t>(held - 1)]->running()) members[static_cast<std::size_t>(held - 1)]->start();
    for (int second = 1; second <= 6 && !interrupted; ++second) {
      faults.supervise_for(1000ms);
      sample(round, leader, "freed", second);
    }
    leader = find_leader(network, n);
    if (leader == 0) continue;
    // Two followers down and back, so the leader has catching up to send.
    std::vector<int> followers;
    for (int i = 1; i <= n && followers.size() < 2; ++i) {
      if (i != leader) followers.push_back(i);
    }
    for (int f : followers) members[static_cast<std::size_t>(f - 1)]->kill9();
    faults.supervise_for(1500ms);
    for (int f : followers) members[static_cast<std::size_t>(f - 1)]->start();
    Network::LinkFault slow;
    slow.delay_ms = 150;
    slow.jitter_ms = 75;
    slow.loss_pct = 15;
    network.degrade(leader, slow);
    fmt::print("[round {}] m{} leads; m{} m{} restarted; m{} link delay 150ms loss 15%\n", round, leader, followers[0],
               followers[1], leader);
    for (int second = 1; second <= 8 && !interrupted; ++second) {
      faults.supervise_for(1000ms);
      sample(round, leader, "slow", second);
    }
    network.restore(leader);
    for (int second = 2; second <= 20 && !interrupted; second += 2) {
      faults.supervise_for(2000ms);
      sample(round, leader, "after", second);
    }
  }
}

void on_signal(int) { interrupted = true; }

// "90", "90s", "30m", "1h" -> seconds.
std::chrono::seconds parse_duration(const std::string& text) {
  std::size_t used = 0;
  const long value = std::stol(text, &used);
  const std::string unit = text.substr(used);
  if (unit.empty() || unit == "s") return std::chrono::seconds(value);
  if (unit == "m") return std::chrono::minutes(value);
  if (unit == "h") return std::chrono::hours(value);
  throw std::invalid_argument("duration: a number with s, m or h");
}

std::string default_faketime_library() {
  for (const char* p : {"/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1"}) {
    if (fs::exists(p)) return p;
  }
  return {};
}

// Whether this process may make network namespaces (root, with the tools installed).
bool can_make_namespaces(const std::string& prefix, std::string* why) {
  if (::geteuid() != 0) {
    *why = "not root";
    return false;
  }
  const std::string probe = prefix + "-probe";
  const CommandResult r = run_command({"ip", "netns", "add", probe});
  if (r.status != 0) {
    *why = "`ip netns add` failed: " + r.output;
    return false;
  }
  (void)run_command({"ip", "netns", "del", probe});
  return true;
}

// Waits until a linearizable read is answered: the cluster has a leader that can serve.
bool wait_ready(const std::vector<std::string>& endpoints, std::chrono::seconds timeout) {
  coord::Client client({.endpoints = endpoints});
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline && !interrupted) {
    if (client.get("/").get().reached) return true;
  }
  return false;
}

struct Options {
  int members = 3;
  std::uint64_t seed = 1;
  std::string duration = "60s";
  bool soak = false;
  int slow_leader_rounds = 0;  // > 0: the focused memory scenario instead of the schedule
  bool stale_reads = false;
  bool pin_workers = false;
  int workers = 4;
  int lockers = 3;
  int watchers = 2;
  bool no_fencing = false;
  std::string locker;
  int think_ms = -1;  // -1: 2 ms, 20 ms with --soak
  std::string coordd;
  std::string prefix = "cfh";
  std::string work_dir;
  std::string faketime_library = default_faketime_library();
  bool no_clock = false;
  bool keep_logs = false;
};

int run(const Options& o) {
  const std::chrono::seconds duration = parse_duration(o.duration);
  const std::string work_dir = o.work_dir.empty() ? "/tmp/coord-faults-" + o.prefix : o.work_dir;
  // Whatever a killed run with this prefix left behind goes first. A work dir is only ever
  // emptied when it carries the harness's marker (or is empty).
  const std::string marker = work_dir + "/.coord-faults";
  if (fs::exists(work_dir) && !fs::is_empty(work_dir) && !fs::exists(marker)) {
    throw std::runtime_error(work_dir + " exists and is not a coord-faults work dir");
  }
  remove_member_leftovers(work_dir);
  Network::remove_leftovers(o.prefix);
  fs::remove_all(work_dir);
  fs::create_directories(work_dir);
  std::ofstream(marker) << "coord-faults\n";
  // Removes the work dir on success only (after the members below unmounted their data dirs);
  // after a failure the logs stay for a look.
  struct WorkDir {
    std::string path;
    bool keep = true;
    ~WorkDir() {
      std::error_code ignored;
      if (!keep) fs::remove_all(path, ignored);
    }
  } work{work_dir};
  bool& keep_logs = work.keep;

  Network network(o.prefix, o.members);
  const bool clock_faults = !o.no_clock && !o.faketime_library.empty();
  std::string cluster;
  std::vector<std::string> endpoints;
  for (int i = 1; i <= o.members; ++i) {
    cluster += fmt::format("{}m{}={}:{}", i > 1 ? "," : "", i, network.address(i), kPeerPort);
    endpoints.push_back(fmt::format("{}:{}", network.address(i), kClientPort));
  }
  std::vector<std::unique_ptr<Member>> members;
  for (int i = 1; i <= o.members; ++i) {
    MemberConfig c;
    c.index = i;
    c.name = fmt::format("m{}", i);
    c.ns = network.ns(i);
    c.dir = fmt::format("{}/m{}", work_dir, i);
    c.coordd = o.coordd;
    c.faketime_library = clock_faults ? o.faketime_library : "";
    c.args = {"--name", c.name, "--data-dir", c.dir + "/data",
              "--listen-peer", fmt::format("{}:{}", network.address(i), kPeerPort),
              "--listen-client", fmt::format("{}:{}", network.address(i), kClientPort),
              "--initial-cluster", cluster, "--log-level", "info"};
    if (o.soak || o.slow_leader_rounds > 0) {
      c.args.insert(c.args.end(), {"--listen-metrics", fmt::format("{}:{}", network.address(i), kMetricsPort)});
    }
    members.push_back(std::make_unique<Member>(std::move(c)));
  }
  for (auto& m : members) m->start();
  fmt::print("coord-faults: members={} seed={} duration={}s workers={} lockers={} fencing={} netem={} clock-faults={} "
             "stale-reads={}\n",
             o.members, o.seed, duration.count(), o.workers, o.lockers, o.no_fencing ? "off (broken on purpose)" : "on",
             network.netem_available()  ? "yes"
             : network.tbf_available() ? "no (tbf delay, iptables loss/dup)"
                                       : "no (iptables loss/dup)",
             clock_faults ? "yes" : "no",
             o.stale_reads ? "yes (broken on purpose)" : "no");
  std::fflush(stdout);
  if (!wait_ready(endpoints, 60s)) {
    fmt::print(stderr, "coord-faults: the cluster did not serve a read within 60 s (logs in {})\n", work_dir);
    return kExitSetup;
  }
  std::vector<std::uint64_t> rss_start;
  for (auto& m : members) rss_start.push_back(m->rss_kib());

  History history;
  WorkloadOptions wo;
  wo.endpoints = endpoints;
  wo.workers = o.workers;
  wo.seed = o.seed;
  wo.stale_reads = o.stale_reads;
  wo.pin_workers = o.pin_workers;
  wo.think_ms = o.think_ms >= 0 ? o.think_ms : (o.soak ? 20 : 2);
  FaultSchedule faults(o.seed, network, members, clock_faults, interrupted);
  std::uint64_t compactions = 0;
  LocksOptions lo;
  lo.endpoints = endpoints;
  lo.locker = o.locker;
  lo.work_dir = work_dir;
  lo.lockers = o.lockers;
  lo.seed = o.seed;
  lo.fencing = !o.no_fencing;
  Locks locks(lo);
  WatchesOptions wto;
  wto.endpoints = endpoints;
  wto.watchers = o.watchers;
  wto.seed = o.seed;
  wto.think_ms = o.soak ? 20 : 5;  // as the workers: a soak's history stays checkable
  Watches watches(wto);
  if (o.watchers > 0 && !watches.start(60s)) {
    fmt::print(stderr, "coord-faults: the watch marker could not be written within 60 s (logs in {})\n", work_dir);
    return kExitSetup;
  }
  {
    Workload workload(wo, history);
    workload.start();
    if (o.lockers > 0) locks.start();
    const auto start = std::chrono::steady_clock::now();
    // The last tenth (at least 5 s) runs without faults: the cluster must serve again.
    const auto quiet = std::max<std::chrono::seconds>(5s, duration / 10);
    if (o.soak) {
      // Progress every minute: operations and memory, so a long run shows a trend.
      // Every 5 s each member's metrics are read; the minute's line shows, per member, the
      // largest value of each memory gauge seen in that minute (MiB), so a burst is not missed.
      std::thread progress([&] {
        std::vector<MemoryPeaks> peaks(members.size());
        auto next_scrape = std::chrono::steady_clock::now();
        for (int minute = 1; !interrupted && std::chrono::steady_clock::now() < start + duration - quiet; ++minute) {
          while (std::chrono::steady_clock::now() < start + std::chrono::minutes(minute) && !interrupted) {
            if (std::chrono::steady_clock::now() >= next_scrape) {
              next_scrape += 5s;
              for (std::size_t i = 0; i < members.size(); ++i) {
                if (!members[i]->running() || members[i]->paused()) continue;
                peaks[i].add(scrape_metrics(network.address(static_cast<int>(i) + 1), kMetricsPort, 1000ms),
                             members[i]->rss_kib());
              }
            }
            std::this_thread::sleep_for(200ms);
          }
          const Counts c = history.counts();
          std::string rss;
          for (auto& m : members) rss += fmt::format(" {}={}KiB", m->config().name, m->rss_kib());
          fmt::print("[{} min] ok {} failed {} unknown {}; rss{}\n", minute, c.ok, c.failed, c.unknown, rss);
          for (std::size_t i = 0; i < members.size(); ++i) {
            fmt::print("[{} min] mem {}: {}\n", minute, members[i]->config().name, peaks[i].line());
            peaks[i] = MemoryPeaks();
          }
          std::fflush(stdout);
        }
      });
      faults.run(start + duration - quiet);
      progress.join();
    } else if (o.slow_leader_rounds > 0) {
      run_slow_leader_rounds(o.slow_leader_rounds, network, members, faults);
    } else {
      faults.run(start + duration - quiet);
    }
    faults.supervise_for(std::chrono::duration_cast<std::chrono::milliseconds>(quiet));
    locks.stop();
    watches.stop_writer();
    workload.stop();
    compactions = workload.compactions();
  }
  const int unanswered = interrupted ? 0 : Workload::read_back(wo, history, 60s);
  if (o.watchers > 0) watches.finish(interrupted ? 0s : 30s);
  std::vector<std::uint64_t> rss_end;
  for (auto& m : members) rss_end.push_back(m->rss_kib());

  const Counts counts = history.counts();
  const Judgement judgement = history.judge();
  std::vector<std::string> violations = judgement.violations;
  if (o.lockers > 0) {
    for (std::string& v : locks.violations()) violations.push_back(std::move(v));
  }
  if (o.watchers > 0) {
    for (std::string& v : watches.judge()) violations.push_back(std::move(v));
  }
  if (unanswered > 0) {
    violations.push_back(fmt::format("final read-back: {} reads unanswered after the faults were healed", unanswered));
  }
  fmt::print("operations: {} (ok {}, failed {}, unknown {}); compactions {}\n",
             counts.ok + counts.failed + counts.unknown, counts.ok, counts.failed, counts.unknown, compactions);
  std::string kinds;
  int total = 0;
  for (const auto& [kind, n] : faults.injected()) {
    kinds += fmt::format(" {}={}", kind, n);
    total += n;
  }
  fmt::print("faults: {} ({})\n", total, kinds.empty() ? "none" : kinds.substr(1));
  if (o.lockers > 0) {
    const LocksStats l = locks.stats();
    fmt::print("locks: {} lockers, fencing {}; acquisitions {}, writes accepted {}, refused {}; holder pauses {}, "
               "refused right after a pause {}\n",
               o.lockers, o.no_fencing ? "off" : "on", l.acquisitions, l.accepted, l.refused, l.pauses,
               l.refused_after_pause);
  }
  if (o.watchers > 0) {
    const WatchesStats w = watches.stats();
    fmt::print("watches: {} watchers; writes ok {}, unknown {}; events delivered {}, streams reopened {}\n",
               o.watchers, w.writes_ok, w.writes_unknown, w.events, w.reopened);
  }
  fmt::print("member exits: disk-full={} unexpected={}\n", faults.disk_full_exits(), faults.unexpected_exits().size());
  for (const std::string& e : faults.unexpected_exits()) fmt::print("  unexpected exit: {}\n", e);
  for (std::size_t i = 0; i < members.size(); ++i) {
    fmt::print("rss {}: start {} KiB, end {} KiB\n", members[i]->config().name, rss_start[i], rss_end[i]);
  }
  for (const std::string& note : judgement.notes) fmt::print("history {}\n", note);
  for (const std::string& v : violations) fmt::print("VIOLATION {}\n", v);
  fmt::print("violations: {}\n", violations.size());
  if (interrupted) {
    fmt::print("coord-faults: interrupted (logs in {})\n", work_dir);
    return kExitSetup;
  }
  if (!violations.empty()) {
    history.write(work_dir + "/history.txt");
    fmt::print("coordd logs: {}, the history: {}/history.txt\n", work_dir, work_dir);
    return kExitViolations;
  }
  keep_logs = o.keep_logs;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"coord-faults: coordd processes in network namespaces under a seeded fault schedule"};
  Options o;
  app.add_option("--members", o.members, "Cluster size")->check(CLI::IsMember({3, 5}))->capture_default_str();
  app.add_option("--seed", o.seed, "Seed of the fault schedule and the workload")->capture_default_str();
  app.add_option("--duration", o.duration, "How long to run: 90s, 30m, 1h")->capture_default_str();
  app.add_flag("--soak", o.soak, "Long run: print operations and memory every minute");
  app.add_option("--slow-leader-rounds", o.slow_leader_rounds,
                 "Instead of the schedule: N rounds of two followers killed and restarted, then the "
                 "leader's link slowed (150 ms, 15% loss), printing the leader's memory every second");
  app.add_option("--workers", o.workers, "Client workers (one coord::Client each)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--lockers", o.lockers,
                 "Lock clients (coord-faults-locker processes) taking one lock in turn and writing to a "
                 "fenced resource; 0: none")
      ->check(CLI::Range(0, 16))
      ->capture_default_str();
  app.add_option("--watchers", o.watchers,
                 "Watchers of /w's children (a coord::Client each), judged against the writer's acknowledged "
                 "writes and each other; 0: none")
      ->check(CLI::Range(0, 16))
      ->capture_default_str();
  app.add_flag("--no-fencing", o.no_fencing,
               "Broken on purpose: the lockers' resource accepts every write, tokens unchecked (the "
               "mutual-exclusion checker must report a violation)");
  app.add_option("--locker", o.locker, "coord-faults-locker binary (default: beside this one)");
  app.add_flag("--pin-workers", o.pin_workers,
               "Each worker talks to one member only, never failing over (so a member serving stale "
               "reads is read from even while cut off)");
  app.add_option("--think-ms", o.think_ms, "Each worker pauses 0..this between operations (default 2, 20 with --soak)")
      ->check(CLI::Range(0, 10'000));
  app.add_option("--coordd", o.coordd, "coordd binary (default: beside this one)");
  app.add_option("--prefix", o.prefix, "Names of namespaces, links and the work dir start with this (1-8 chars)")
      ->capture_default_str();
  app.add_option("--work-dir", o.work_dir, "Members' directories and logs (default /tmp/coord-faults-PREFIX)");
  app.add_option("--faketime-lib", o.faketime_library, "libfaketime.so.1 for clock faults")->capture_default_str();
  app.add_flag("--keep-logs", o.keep_logs, "Keep the work dir (coordd logs) after a clean run too");
  app.add_flag("--no-clock-faults", o.no_clock, "Do not preload libfaketime");
  app.add_flag("--stale-reads", o.stale_reads,
               "Broken on purpose: serializable reads from one member per worker, recorded as linearizable "
               "(the checker must report a violation)");
  try {
    app.parse(argc, argv);
    parse_duration(o.duration);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitSetup;
  } catch (const std::exception& e) {
    std::cerr << "coord-faults: " << e.what() << "\n";
    return kExitSetup;
  }
  const fs::path here = fs::read_symlink("/proc/self/exe").parent_path();
  if (o.coordd.empty()) o.coordd = (here / "coordd").string();
  if (o.locker.empty()) o.locker = (here / "coord-faults-locker").string();
  for (const std::string& binary : {o.coordd, o.locker}) {
    if (binary == o.locker && o.lockers == 0) continue;
    if (::access(binary.c_str(), X_OK) != 0) {
      std::cerr << "coord-faults: " << binary << " is not an executable (--coordd, --locker)\n";
      return kExitSetup;
    }
  }
  std::string why;
  if (!can_make_namespaces(o.prefix, &why)) {
    std::cout << "coord-faults: SKIP: cannot create network namespaces (" << why << ")\n";
    return kExitSkip;
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  try {
    return run(o);  // everything it made is removed on the way out (destructors)
  } catch (const std::exception& e) {
    std::cerr << "coord-faults: " << e.what() << "\n";
    return kExitSetup;
  }
}
