// coord-bench's target for a coord cluster: each client thread has one TCP connection to the
// client port and pipelines framed requests on it (net/frame.h, net/client_codec.h), matching
// responses to requests by id.
//
// Writes go to the leader (found once, before the run, by asking every member's status), with
// the connection's own session and increasing sequence numbers, as real clients send them.
// Reads are spread over all members, since every member serves linearizable reads (ReadIndex)
// and serializable ones.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench.h"
#include "bench/fanout.h"

namespace coord::bench {

struct CoordCluster {
  std::string leader;                // client address of the leader
  std::vector<std::string> members;  // client addresses of every member that answered
};

// Asks each endpoint for its status; throws std::runtime_error when no member says it leads.
CoordCluster discover_coord(const std::vector<std::string>& endpoints);

// Writes every key the workload touches (Options::keys values of Options::value_size bytes
// under Options::prefix), so reads and compare-and-sets find them.
void preload_coord(const CoordCluster& cluster, const Options& options);

std::unique_ptr<Connection> connect_coord(const CoordCluster& cluster, const Options& options, int client);

// Watcher connection number `connection`, to the members in turn (bench/fanout.h).
std::unique_ptr<WatchConnection> connect_coord_watch(const CoordCluster& cluster, int connection);

}  // namespace coord::bench
