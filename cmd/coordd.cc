// coordd: one replica of a coord cluster.
//
//   coordd --name n1 --data-dir DIR --listen-peer 127.0.0.1:7001 --listen-client 127.0.0.1:7101
//          --initial-cluster n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003
//
// Member ids come from the initial cluster (position of the name in the sorted list, from 1);
// a member added later (coordctl member add, then coordd --initial-cluster-state existing
// --cluster-token T) takes a hash of its name. The data directory remembers its cluster and
// member and refuses another. Restarting with the same flags resumes from the data directory.
// SIGINT/SIGTERM stop it cleanly.
//
// Exit status: 0 stopped cleanly, 1 failed (startup or a storage error while running),
// 2 bad usage or configuration.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>
#include <string>

#include "kv/error.h"
#include "kv/storage.h"
#include "net/data_dir.h"
#include "net/server.h"
#include "net/uv_util.h"
#include "storage/log_store_error.h"

namespace {

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

}  // namespace

int main(int argc, char** argv) {
  using namespace coord;

  CLI::App app{"coordd: a replica of the coord coordination service"};
  app.footer(
      "Exit status: 0 stopped cleanly (SIGINT/SIGTERM), 1 failed (startup or storage error), "
      "2 bad usage or configuration.");
  net::ServerOptions options;
  std::string log_level = "info";
  std::uint64_t snapshot_every = options.host.snapshot_every_entries;
  std::uint64_t request_timeout_ms = 5000;
  std::uint64_t watch_progress_ms = 2000;
  bool no_forward = false;

  app.add_option("--name", options.name, "This member's name in --initial-cluster")->required();
  app.add_option("--data-dir", options.data_dir, "Directory for the Raft log and the state (created if missing)")
      ->required();
  app.add_option("--listen-peer", options.listen_peer, "host:port for replica-to-replica traffic")->required();
  app.add_option("--listen-client", options.listen_client, "host:port for clients (port 0: any free port)")
      ->required();
  app.add_option("--initial-cluster", options.initial_cluster,
                 "Every member as name=peer-host:port, comma-separated (the same on every member)")
      ->required();
  app.add_option("--cluster-token", options.cluster_token,
                 "Cluster identity; default: derived from --initial-cluster (required with "
                 "--initial-cluster-state existing)");
  std::string initial_state = "new";
  app.add_option("--initial-cluster-state", initial_state,
                 "new: a member of the initial cluster; existing: a member added to a running cluster "
                 "with `coordctl member add`, which prints the flags to start it with (its log starts "
                 "empty and it learns the members from the leader)")
      ->check(CLI::IsMember({"new", "existing"}))
      ->capture_default_str();
  app.add_option("--listen-metrics", options.listen_metrics,
                 "host:port to serve Prometheus metrics on (/metrics); default: none");
  app.add_option("--advertise-client", options.advertise_client,
                 "Client address other members hand out for this one (default: the bound --listen-client)");
  app.add_option("--tick-ms", options.tick_ms, "Raft tick interval in milliseconds")->capture_default_str();
  app.add_option("--election-ticks", options.host.raft.election_ticks,
                 "Ticks without a leader before a follower campaigns (randomized up to twice this)")
      ->capture_default_str();
  app.add_option("--heartbeat-ticks", options.host.raft.heartbeat_ticks, "Ticks between leader heartbeats")
      ->capture_default_str();
  app.add_option("--snapshot-every", snapshot_every,
                 "Snapshot the state and compact the log every this many applied entries (0: never)")
      ->capture_default_str();
  app.add_option("--snapshot-log-ratio", options.host.snapshot_log_ratio,
                 "...and only once the entries applied since the last snapshot hold this many times its size "
                 "(bounds the snapshot cost per byte written as the state grows; 0: entries only)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e6));
  app.add_option("--auto-compact-revisions", options.host.auto_compact_revisions,
                 "Keep this many revisions of MVCC history; the leader compacts older ones as writes go on "
                 "(as etcd's --auto-compaction-mode=revision; 0: never)")
      ->capture_default_str();
  app.add_option("--request-timeout-ms", request_timeout_ms,
                 "Answer Timeout to a request not done within this long")
      ->capture_default_str();
  app.add_option("--watch-progress-ms", watch_progress_ms,
                 "Send an idle watch a progress frame this often, so its client can tell it from a dead "
                 "connection (0: never)")
      ->capture_default_str();
  app.add_option("--watch-buffer-events", options.host.limits.watch_buffer_events_max,
                 "Events a watcher may have waiting (its client not reading) before it is cancelled with "
                 "watch-overflow (11); the client may resume it")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24));
  app.add_flag("--kv-sync", options.host.kv_sync,
               "fsync the state machine on every commit (default: only the Raft log is synced; the state replays "
               "it after a crash, and is rebuilt from it after a machine crash)");
  app.add_flag("--no-forward", no_forward,
               "Answer writes that reach this member while it follows with NotLeader (the leader's address) "
               "instead of forwarding them to the leader");
  std::uint64_t disk_reserve_mb = options.host.disk_full.reserve_bytes >> 20;
  app.add_option("--disk-reserve-mb", disk_reserve_mb,
                 "Refuse writes (no-space, 107) while less than this much is free on the data directory's file "
                 "system; serializable reads go on, and writes resume by themselves when space returns (0: only "
                 "when the file system is full)")
      ->capture_default_str();
  std::uint64_t log_segment_mb = options.host.log_segment_bytes >> 20;
  app.add_option("--log-segment-mb", log_segment_mb,
                 "Size the Raft log's segment files are preallocated to (a disk without room for one gets a "
                 "smaller one)")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 12));
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->capture_default_str();
  // Any flag above may come from a TOML file instead (`name = "n1"`, `listen-peer = "..."`); flags
  // given on the command line win. A key that is not a flag is an error, so a typo in a file
  // is not silently ignored.
  app.set_config("--config", "", "Read flags from a TOML file (key = value, keys named like the flags without "
                 "the leading --); command-line flags override it");
  app.allow_config_extras(CLI::config_extras_mode::error);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }

  auto logger = spdlog::stderr_color_mt("coordd");
  // One line per event: time, level, member, then key=value fields.
  logger->set_pattern(fmt::format("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ member={} %v", options.name));
  spdlog::set_default_logger(logger);
  const spdlog::level::level_enum level = spdlog::level::from_str(log_level);
  if (level == spdlog::level::off && log_level != "off") {
    std::cerr << "coordd: unknown --log-level " << log_level << "\n";
    return kExitUsage;
  }
  spdlog::set_level(level);
  spdlog::flush_on(spdlog::level::info);

  if (options.host.raft.heartbeat_ticks <= 0 || options.host.raft.heartbeat_ticks >= options.host.raft.election_ticks) {
    std::cerr << "coordd: --heartbeat-ticks must be positive and below --election-ticks\n";
    return kExitUsage;
  }
  options.host.snapshot_every_entries = snapshot_every;
  options.host.disk_full.reserve_bytes = disk_reserve_mb << 20;
  options.host.log_segment_bytes = log_segment_mb << 20;
  options.join_existing = initial_state == "existing";
  const std::uint64_t ticks = (request_timeout_ms + options.tick_ms - 1) / std::max<std::uint64_t>(options.tick_ms, 1);
  options.host.request_timeout_ticks = static_cast<int>(std::max<std::uint64_t>(ticks, 1));
  options.forward.timeout_ms = request_timeout_ms;
  options.host.forward_to_leader = !no_forward;
  options.host.watch.progress_interval_ticks =
      watch_progress_ms == 0 ? 0 : std::max<std::uint64_t>(1, watch_progress_ms / std::max<std::uint64_t>(options.tick_ms, 1));

  // A write to a socket the other side closed must be an error (EPIPE), not a signal that kills us.
  std::signal(SIGPIPE, SIG_IGN);

  try {
    net::Server server(options);
    return server.run();
  } catch (const net::StartupError& e) {
    spdlog::critical("cannot start: {}", e.what());
    return kExitUsage;
  } catch (const net::DataDirError& e) {
    spdlog::critical("cannot start: {}", e.what());
    return kExitFailed;
  } catch (const net::UvError& e) {
    spdlog::critical("cannot start: {}", e.what());
    return kExitFailed;
  } catch (const storage::LogStoreError& e) {
    spdlog::critical("cannot start: raft log ({}): {}", storage::to_string(e.kind()), e.what());
    return kExitFailed;
  } catch (const kv::StorageError& e) {
    spdlog::critical("cannot start: state storage: {}", e.what());
    return kExitFailed;
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return kExitFailed;
  }
}
