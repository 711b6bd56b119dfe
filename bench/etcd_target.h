// coord-bench's target for an etcd v3 cluster, for comparing coord with etcd under the very same
// workload, client threads and in-flight model (bench/bench.h). Built only when gRPC, protobuf
// and grpc_cpp_plugin are found (COORD_BENCH_ETCD, bench/CMakeLists.txt); the build then defines
// COORD_BENCH_HAVE_ETCD.
//
// Each client thread owns one gRPC channel (its own TCP connection: channels do not share
// subchannels here) and one completion queue, and keeps its requests in flight as asynchronous
// unary calls on it. Requests are shaped as coord-bench's coord target sends them (see
// bench/coord_target.cc): the same key strings, the CAS as a Txn comparing the key's version with
// the last one seen and reading the key on failure, the two-key transaction guarded by the first
// key's existence. Writes go to the leader (found by asking each member's status) and reads are
// spread over all members, as for coord, so neither side pays a forwarding hop the other does not.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench.h"
#include "bench/fanout.h"

namespace coord::bench {

struct EtcdCluster {
  std::string leader;                // client URL host:port of the leader
  std::vector<std::string> members;  // every endpoint that answered
};

// Asks each endpoint for its status; throws std::runtime_error when none says it leads.
EtcdCluster discover_etcd(const std::vector<std::string>& endpoints);

// Writes every key the workload touches (Options::keys values of Options::value_size bytes).
void preload_etcd(const EtcdCluster& cluster, const Options& options);

std::unique_ptr<Connection> connect_etcd(const EtcdCluster& cluster, const Options& options, int client);

// Watcher connection number `connection`, to the members in turn: one Watch stream carrying
// its watches on the range of keys under the directory (bench/fanout.h).
std::unique_ptr<WatchConnection> connect_etcd_watch(const EtcdCluster& cluster, int connection);

}  // namespace coord::bench
