// coordctl: the command-line client of a coord cluster.
//
//   coordctl [--endpoints host:port,...] [--json] [--timeout D] COMMAND [ARGS]
//
// Endpoints come from --endpoints, else $COORD_ENDPOINTS, else the local cluster that
// scripts/run.sh starts. Each invocation is one client session: a write that is retried (after
// a leader change, say) carries the same session and sequence, so it is applied at most once.
// The retry logic (and a watch's resumption on another member) lives in net/client.h; this file
// parses arguments and prints. `watch` and `lease keepalive` run until SIGINT/SIGTERM.
//
// `lock` and `elect` use the client library instead (client/client.h, client/recipes.h): the
// fencing recipes (a kept-alive session, the mutex, the election) on coord::Client's own
// thread, while this one runs and watches the command.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstring>
#include <deque>
#include <mutex>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "client/recipes.h"
#include "kv/command.h"
#include "kv/event.h"
#include "net/client.h"
#include "net/client_messages.h"
#include "net/txn_text.h"

namespace {

using coord::net::ClientRequest;
using coord::net::ClientResponse;
using coord::net::ErrorCode;
using coord::net::RequestKind;
using nlohmann::json;

constexpr int kExitOk = 0;
constexpr int kExitRefused = 1;      // the service answered with an error (not found, compare failed, ...)
constexpr int kExitUsage = 2;        // bad arguments
constexpr int kExitUnavailable = 3;  // no answer: no leader, unreachable, timed out (outcome unknown)
constexpr int kExitLost = 4;         // lock/elect: the lock or leadership was lost while held

constexpr const char* kDefaultEndpoints = "127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103";

// Set (to the signal's number) by SIGINT/SIGTERM during the commands that run until
// interrupted (watch, lease keepalive, lock, elect).
volatile std::sig_atomic_t g_interrupted = 0;

void on_interrupt(int sig) { g_interrupted = sig; }

// Without SA_RESTART, so that a blocked poll(2) returns and the client notices at once.
void catch_interrupts() {
  struct sigaction action {};
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;
  (void)sigaction(SIGINT, &action, nullptr);
  (void)sigaction(SIGTERM, &action, nullptr);
}

struct Globals {
  std::string endpoints;
  bool json = false;
  std::string timeout = "10s";
};

// "500ms", "5s", "2m", "1.5s" or a bare number of seconds.
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text) {
  std::size_t unit_at = text.find_first_not_of("0123456789.");
  const std::string number = text.substr(0, unit_at);
  const std::string unit = unit_at == std::string::npos ? "s" : text.substr(unit_at);
  if (number.empty()) return std::nullopt;
  double value = 0;
  try {
    std::size_t used = 0;
    value = std::stod(number, &used);
    if (used != number.size()) return std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt;
  }
  double ms = 0;
  if (unit == "ms") {
    ms = value;
  } else if (unit == "s") {
    ms = value * 1000;
  } else if (unit == "m") {
    ms = value * 60'000;
  } else {
    return std::nullopt;
  }
  if (ms < 1 || ms > 24 * 3600 * 1000.0) return std::nullopt;
  return std::chrono::milliseconds(static_cast<long long>(ms));
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json node_json(const std::string& path, const coord::kv::Node& n, bool with_value) {
  json j{{"path", path},
         {"create_revision", n.create_revision},
         {"mod_revision", n.mod_revision},
         {"version", n.version},
         {"num_children", n.num_children},
         {"children_version", n.children_version},
         {"lease", n.lease},
         {"value_bytes", n.value.size()}};
  if (with_value) j["value"] = n.value;
  return j;
}

class Ctl {
 public:
  Ctl(const Globals& globals, coord::net::ClientOptions options) : globals_(globals), client_(std::move(options)) {}

  coord::net::Client& client() { return client_; }
  bool json_output() const { return globals_.json; }

  // Prints the error of a failed response on stderr and returns the exit status for it.
  int fail(const ClientResponse& r) const {
    const auto code = static_cast<unsigned>(r.error);
    if (globals_.json) {
      json j{{"error", coord::net::to_string(r.error)}, {"code", code}, {"message", r.message}};
      if (r.leader) j["leader"] = {{"id", r.leader->id}, {"name", r.leader->name}, {"client_address", r.leader->client_address}};
      if (r.compact_revision != 0) j["compact_revision"] = r.compact_revision;
      std::cerr << dump(j) << "\n";
    } else {
      std::cerr << fmt::format("coordctl: {} ({}): {}\n", coord::net::to_string(r.error), code, r.message);
    }
    return coord::net::retryable(r.error) ? kExitUnavailable : kExitRefused;
  }

  void print(const json& j) const { std::cout << dump(j) << "\n"; }
  // For streams: every line reaches a pipe as soon as it is printed.
  void print_line(const std::string& line) const { std::cout << line << "\n" << std::flush; }

 private:
  const Globals& globals_;
  coord::net::Client client_;
};

ClientRequest read_request(RequestKind kind, const std::string& path, std::uint64_t revision, bool serializable) {
  ClientRequest r;
  r.kind = kind;
  r.path = path;
  r.revision = revision;
  r.serializable = serializable;
  return r;
}

int cmd_get(Ctl& ctl, const std::string& path, std::uint64_t revision, bool serializable, bool stat_only) {
  const ClientResponse r = ctl.client().call(read_request(RequestKind::Get, path, revision, serializable));
  if (!r.ok()) return ctl.fail(r);
  if (!r.node) return ctl.fail(coord::net::error_response(r.id, ErrorCode::NotFound, path));
  if (ctl.json_output()) {
    json j = node_json(path, *r.node, !stat_only);
    j["revision"] = r.revision;
    ctl.print(j);
  } else if (stat_only) {
    const coord::kv::Node& n = *r.node;
    std::cout << fmt::format(
        "path: {}\ncreate_revision: {}\nmod_revision: {}\nversion: {}\nnum_children: {}\n"
        "children_version: {}\nlease: {}\nvalue_bytes: {}\nrevision: {}\n",
        path, n.create_revision, n.mod_revision, n.version, n.num_children, n.children_version, n.lease,
        n.value.size(), r.revision);
  } else {
    std::cout << r.node->value << "\n";
  }
  return kExitOk;
}

int cmd_ls(Ctl& ctl, const std::string& path, std::uint64_t revision, bool serializable) {
  std::vector<std::string> names;
  std::uint64_t served_at = revision;
  std::string start_after;
  // Pages are read at one revision (the first page's), so the listing is one consistent view.
  for (;;) {
    ClientRequest request = read_request(RequestKind::List, path, served_at, serializable);
    request.start_after = start_after;
    const ClientResponse r = ctl.client().call(request);
    if (!r.ok()) return ctl.fail(r);
    served_at = r.revision;
    names.insert(names.end(), r.names.begin(), r.names.end());
    if (!r.more || r.names.empty()) break;
    start_after = r.names.back();
  }
  if (ctl.json_output()) {
    ctl.print(json{{"path", path}, {"children", names}, {"revision", served_at}});
  } else {
    for (const std::string& name : names) std::cout << name << "\n";
  }
  return kExitOk;
}

int cmd_range(Ctl& ctl, const std::string& path, std::uint64_t revision, bool serializable, bool keys_only) {
  std::uint64_t served_at = revision;
  std::string start_after;
  json nodes = json::array();
  for (;;) {
    ClientRequest request = read_request(RequestKind::Range, path, served_at, serializable);
    request.start_after = start_after;
    request.keys_only = keys_only;
    const ClientResponse r = ctl.client().call(request);
    if (!r.ok()) return ctl.fail(r);
    served_at = r.revision;
    for (const coord::kv::KeyValue& kv : r.nodes) {
      if (ctl.json_output()) {
        nodes.push_back(node_json(kv.path, kv.node, !keys_only));
      } else if (keys_only) {
        std::cout << kv.path << "\n";
      } else {
        std::cout << kv.path << " = " << kv.node.value << "\n";
      }
    }
    if (!r.more || r.nodes.empty()) break;
    start_after = r.nodes.back().path;
  }
  if (ctl.json_output()) ctl.print(json{{"path", path}, {"nodes", nodes}, {"revision", served_at}});
  return kExitOk;
}

json op_result_json(const coord::kv::OpResult& op) {
  json j{{"type", coord::kv::to_string(op.type)}, {"path", op.path}};
  if (op.node) j["node"] = node_json(op.path, *op.node, true);
  if (op.type == coord::kv::OpType::Put) j["created"] = op.created;
  if (op.type == coord::kv::OpType::Delete) j["deleted"] = op.deleted;
  return j;
}

// Put, create, delete, cas: a transaction with one operation (or a compare-and-set).
int cmd_write(Ctl& ctl, coord::kv::Txn txn) {
  const ClientResponse r = ctl.client().write(std::move(txn));
  if (!r.ok()) return ctl.fail(r);
  const coord::kv::Result& result = *r.result;
  if (ctl.json_output()) {
    json j{{"revision", result.revision}};
    if (!result.ops.empty()) {
      const coord::kv::OpResult& op = result.ops.front();
      j["path"] = op.path;
      if (op.type == coord::kv::OpType::Put) j["created"] = op.created;
      if (op.type == coord::kv::OpType::Delete) j["deleted"] = op.deleted;
    }
    ctl.print(j);
    return kExitOk;
  }
  if (result.ops.empty()) {
    std::cout << fmt::format("OK revision={}\n", result.revision);
    return kExitOk;
  }
  const coord::kv::OpResult& op = result.ops.front();
  switch (op.type) {
    case coord::kv::OpType::Create:
      std::cout << fmt::format("{} revision={}\n", op.path, result.revision);
      break;
    case coord::kv::OpType::Delete:
      std::cout << fmt::format("deleted {} node(s) revision={}\n", op.deleted, result.revision);
      break;
    default:
      std::cout << fmt::format("OK revision={}\n", result.revision);
      break;
  }
  return kExitOk;
}

int cmd_txn(Ctl& ctl) {
  const std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  std::string error;
  auto txn = coord::net::parse_txn_text(text, &error);
  if (!txn) {
    std::cerr << "coordctl: txn: " << error << "\n";
    return kExitUsage;
  }
  const ClientResponse r = ctl.client().write(std::move(*txn));
  if (!r.ok()) return ctl.fail(r);
  const coord::kv::Result& result = *r.result;
  if (ctl.json_output()) {
    json ops = json::array();
    for (const auto& op : result.ops) ops.push_back(op_result_json(op));
    ctl.print(json{{"succeeded", result.succeeded}, {"revision", result.revision}, {"ops", ops}});
    return kExitOk;
  }
  std::cout << fmt::format("{} revision={}\n", result.succeeded ? "then" : "else", result.revision);
  for (const auto& op : result.ops) {
    switch (op.type) {
      case coord::kv::OpType::Get:
        std::cout << fmt::format("get {} {}\n", op.path, op.node ? fmt::format("= {}", op.node->value) : "(missing)");
        break;
      case coord::kv::OpType::Put:
        std::cout << fmt::format("put {}{}\n", op.path, op.created ? " (created)" : "");
        break;
      case coord::kv::OpType::Create:
        std::cout << fmt::format("create {}\n", op.path);
        break;
      case coord::kv::OpType::Delete:
        std::cout << fmt::format("delete {} ({} node(s))\n", op.path, op.deleted);
        break;
    }
  }
  return kExitOk;
}

// Asks every endpoint for its own view, so a member that is down shows up as such.
int cmd_status(Ctl& ctl, const std::vector<std::string>& endpoints) {
  json all = json::array();
  int status = kExitOk;
  if (!ctl.json_output()) {
    std::cout << fmt::format("{:<22} {:<8} {:>3} {:<13} {:>6} {:>6} {:>8} {:>8} {:>8}\n", "ENDPOINT", "NAME", "ID",
                             "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "REVISION");
  }
  for (const std::string& endpoint : endpoints) {
    ClientRequest request;
    request.kind = RequestKind::Status;
    const ClientResponse r = ctl.client().call_endpoint(endpoint, request);
    if (!r.ok() || !r.status) {
      status = kExitUnavailable;
      if (ctl.json_output()) {
        all.push_back(json{{"endpoint", endpoint}, {"error", coord::net::to_string(r.error)}, {"message", r.message}});
      } else {
        std::cout << fmt::format("{:<22} {}: {}\n", endpoint, coord::net::to_string(r.error), r.message);
      }
      continue;
    }
    const coord::net::StatusInfo& s = *r.status;
    if (ctl.json_output()) {
      all.push_back(json{{"endpoint", endpoint}, {"id", s.id}, {"name", s.name}, {"cluster", s.cluster},
                         {"role", s.role}, {"leader", s.leader}, {"term", s.term}, {"commit", s.commit},
                         {"applied", s.applied}, {"log_first", s.log_first}, {"log_last", s.log_last},
                         {"snapshot_index", s.snapshot_index}, {"revision", s.revision},
                         {"compact_revision", s.compact_revision}});
    } else {
      std::cout << fmt::format("{:<22} {:<8} {:>3} {:<13} {:>6} {:>6} {:>8} {:>8} {:>8}\n", endpoint, s.name, s.id,
                               s.role, s.term, s.leader, s.commit, s.applied, s.revision);
    }
  }
  if (ctl.json_output()) ctl.print(all);
  return status;
}

json member_json(const coord::net::MemberInfo& m) {
  return json{{"id", m.id},         {"name", m.name},       {"peer_address", m.peer_address},
              {"client_address", m.client_address}, {"voter", m.voter}, {"learner", m.learner},
              {"leader", m.leader}};
}

const char* member_role(const coord::net::MemberInfo& m) { return m.voter ? "voter" : (m.learner ? "learner" : "-"); }

int cmd_member_list(Ctl& ctl) {
  ClientRequest request;
  request.kind = RequestKind::MemberList;
  const ClientResponse r = ctl.client().call(request);
  if (!r.ok()) return ctl.fail(r);
  if (ctl.json_output()) {
    json all = json::array();
    for (const auto& m : r.members) all.push_back(member_json(m));
    ctl.print(all);
    return kExitOk;
  }
  // Ids of members added at runtime are 64-bit hashes: the column takes the widest.
  std::size_t id_width = 3;
  for (const auto& m : r.members) id_width = std::max(id_width, std::to_string(m.id).size());
  std::cout << fmt::format("{:>{}} {:<10} {:<22} {:<22} {:<8} {}\n", "ID", id_width, "NAME", "PEER", "CLIENT", "ROLE",
                           "LEADER");
  for (const auto& m : r.members) {
    std::cout << fmt::format("{:>{}} {:<10} {:<22} {:<22} {:<8} {}\n", m.id, id_width, m.name, m.peer_address,
                             m.client_address.empty() ? "?" : m.client_address, member_role(m), m.leader ? "*" : "");
  }
  return kExitOk;
}

// add, remove, promote: one membership change, answered once it applied on the leader.
ClientResponse member_change(Ctl& ctl, RequestKind kind, const std::string& name, const std::string& peer_url,
                             bool learner) {
  ClientRequest request;
  request.kind = kind;
  request.member_name = name;
  request.peer_address = peer_url;
  request.learner = learner;
  return ctl.client().call(request);
}

int cmd_member_add(Ctl& ctl, const std::string& name, const std::string& peer_url, bool learner) {
  const ClientResponse r = member_change(ctl, RequestKind::MemberAdd, name, peer_url, learner);
  if (!r.ok()) return ctl.fail(r);
  if (r.members.empty()) {
    std::cerr << "coordctl: member add: the answer names no member\n";
    return kExitUnavailable;
  }
  const coord::net::MemberInfo& added = r.members.front();
  // The new member's --initial-cluster: every member now, by name (the one just added included).
  ClientRequest list;
  list.kind = RequestKind::MemberList;
  ClientResponse members = ctl.client().call(list);
  std::vector<std::pair<std::string, std::string>> peers;
  if (members.ok()) {
    for (const auto& m : members.members) {
      if (!m.name.empty()) peers.emplace_back(m.name, m.peer_address);
    }
  }
  if (std::none_of(peers.begin(), peers.end(), [&](const auto& p) { return p.first == added.name; })) {
    peers.emplace_back(added.name, added.peer_address);
  }
  std::sort(peers.begin(), peers.end());
  std::string initial;
  for (const auto& [n, address] : peers) initial += fmt::format("{}{}={}", initial.empty() ? "" : ",", n, address);
  const std::string flags =
      fmt::format("--name {} --listen-peer {} --initial-cluster-state existing --cluster-token {} --initial-cluster {}",
                  added.name, added.peer_address, r.cluster, initial);
  if (ctl.json_output()) {
    json j = member_json(added);
    j["cluster"] = r.cluster;
    j["initial_cluster"] = initial;
    j["coordd_flags"] = flags;
    ctl.print(j);
    return kExitOk;
  }
  std::cout << fmt::format("added member {} id={} as {} to cluster {}\n", added.name, added.id, member_role(added),
                           r.cluster);
  std::cout << fmt::format("start it with: coordd {} --data-dir DIR --listen-client HOST:PORT\n", flags);
  return kExitOk;
}

int cmd_member_remove_or_promote(Ctl& ctl, RequestKind kind, const std::string& name) {
  const ClientResponse r = member_change(ctl, kind, name, "", false);
  if (!r.ok()) return ctl.fail(r);
  if (r.members.empty()) {
    std::cerr << "coordctl: member: the answer names no member\n";
    return kExitUnavailable;
  }
  const coord::net::MemberInfo& m = r.members.front();
  if (ctl.json_output()) {
    json j = member_json(m);
    j["cluster"] = r.cluster;
    j[kind == RequestKind::MemberRemove ? "removed" : "promoted"] = true;
    ctl.print(j);
    return kExitOk;
  }
  std::cout << fmt::format("{} member {} id={}\n", kind == RequestKind::MemberRemove ? "removed" : "promoted", m.name,
                           m.id);
  return kExitOk;
}

int cmd_compact(Ctl& ctl, std::uint64_t revision) {
  const ClientResponse r = ctl.client().write(coord::kv::Compact{revision});
  if (!r.ok()) return ctl.fail(r);
  if (ctl.json_output()) {
    ctl.print(json{{"compact_revision", revision}, {"revision", r.result->revision}});
  } else {
    std::cout << fmt::format("compacted to {} revision={}\n", revision, r.result->revision);
  }
  return kExitOk;
}

// Saves one member's state to `path` (written to path.part, renamed when complete).
int cmd_snapshot_save(Ctl& ctl, const std::string& path) {
  const std::string partial = path + ".part";
  ClientResponse r;
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    if (!out) {
      std::cerr << "coordctl: snapshot save: cannot write " << partial << "\n";
      return kExitUsage;
    }
    r = ctl.client().save_snapshot(out);
    out.flush();
    if (r.ok() && !out) r = coord::net::error_response(r.id, ErrorCode::Unavailable, "writing " + partial + " failed");
  }
  if (!r.ok()) {
    (void)std::remove(partial.c_str());
    return ctl.fail(r);
  }
  if (std::rename(partial.c_str(), path.c_str()) != 0) {
    std::cerr << "coordctl: snapshot save: cannot rename " << partial << " to " << path << "\n";
    return kExitUsage;
  }
  if (ctl.json_output()) {
    ctl.print(json{{"path", path}, {"bytes", r.total_bytes}, {"revision", r.revision}, {"index", r.index},
                   {"endpoint", ctl.client().endpoint()}});
  } else {
    std::cout << fmt::format("snapshot saved {} bytes={} revision={} index={}\n", path, r.total_bytes, r.revision,
                             r.index);
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------
// Leases

int cmd_lease_grant(Ctl& ctl, std::chrono::milliseconds ttl, std::uint64_t id) {
  const ClientResponse r =
      ctl.client().write(coord::kv::LeaseGrant{id, static_cast<std::uint64_t>(ttl.count())});
  if (!r.ok()) return ctl.fail(r);
  const coord::kv::Lease& lease = r.result->lease.lease;
  if (ctl.json_output()) {
    ctl.print(json{{"id", lease.id}, {"ttl_ms", lease.ttl_ms}});
  } else {
    std::cout << fmt::format("lease {} granted ttl_ms={}\n", lease.id, lease.ttl_ms);
  }
  return kExitOk;
}

int cmd_lease_revoke(Ctl& ctl, std::uint64_t id) {
  const ClientResponse r = ctl.client().write(coord::kv::LeaseRevoke{id});
  if (!r.ok()) return ctl.fail(r);
  const coord::kv::Result& result = *r.result;
  if (ctl.json_output()) {
    ctl.print(json{{"id", id}, {"deleted", result.lease.deleted}, {"revision", result.revision}});
  } else {
    std::cout << fmt::format("lease {} revoked, deleted {} key(s) revision={}\n", id, result.lease.deleted.size(),
                             result.revision);
  }
  return kExitOk;
}

int cmd_lease_ttl(Ctl& ctl, std::uint64_t id) {
  const ClientResponse r = ctl.client().lease_ttl(id);
  if (!r.ok()) return ctl.fail(r);
  if (!r.lease) return ctl.fail(coord::net::error_response(r.id, ErrorCode::InvalidRequest, "answer without a lease"));
  const coord::net::LeaseTtlInfo& lease = *r.lease;
  if (ctl.json_output()) {
    ctl.print(json{{"id", lease.id}, {"ttl_ms", lease.ttl_ms}, {"remaining_ms", lease.remaining_ms},
                   {"keepalives", lease.keepalives}, {"keys", lease.keys}});
    return kExitOk;
  }
  std::cout << fmt::format("lease {} ttl_ms={} remaining_ms={} keepalives={} keys={}\n", lease.id, lease.ttl_ms,
                           lease.remaining_ms, lease.keepalives, lease.keys.size());
  for (const std::string& key : lease.keys) std::cout << key << "\n";
  return kExitOk;
}

// Renews the lease every third of its TTL until interrupted (or once), printing each renewal.
// A renewal that gets no answer is retried; the lease is lost only when the service says so.
int cmd_lease_keepalive(Ctl& ctl, std::uint64_t id, bool once) {
  using namespace std::chrono;
  for (bool first = true; g_interrupted == 0; first = false) {
    const ClientResponse r = ctl.client().write(coord::kv::LeaseKeepAlive{id});
    if (g_interrupted != 0) break;
    milliseconds pause{500};
    if (r.ok()) {
      const coord::kv::Lease& lease = r.result->lease.lease;
      if (ctl.json_output()) {
        ctl.print_line(dump(json{{"id", lease.id}, {"ttl_ms", lease.ttl_ms}, {"keepalives", lease.keepalives}}));
      } else {
        ctl.print_line(fmt::format("lease {} kept alive ttl_ms={} keepalives={}", lease.id, lease.ttl_ms,
                                   lease.keepalives));
      }
      if (once) return kExitOk;
      pause = std::max(milliseconds(lease.ttl_ms / 3), milliseconds(50));
    } else if (first || once || !coord::net::retryable(r.error)) {
      return ctl.fail(r);  // LeaseNotFound: revoked or expired
    } else {
      std::cerr << fmt::format("coordctl: keep-alive of lease {} got no answer ({}); retrying\n", id, r.message);
    }
    const auto until = steady_clock::now() + pause;
    while (g_interrupted == 0 && steady_clock::now() < until) std::this_thread::sleep_for(milliseconds(20));
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------
// Watch

json event_json(const coord::kv::Event& e) {
  json j{{"type", coord::kv::to_string(e.type)}, {"path", e.path}, {"revision", e.revision}};
  if (e.node) j["node"] = node_json(e.path, *e.node, true);
  if (e.prev) j["prev"] = node_json(e.path, *e.prev, true);
  return j;
}

std::string event_line(const coord::kv::Event& e) {
  std::string line = fmt::format("{} {} revision={}", coord::kv::to_string(e.type), e.path, e.revision);
  if (e.node) line += fmt::format(" value={}", e.node->value);
  if (e.prev) line += fmt::format(" prev={}", e.prev->value);
  return line;
}

// Streams until interrupted, until max_events events (0: no bound), or until the service ends
// the watch (exit 1, with the reason on stderr).
int cmd_watch(Ctl& ctl, coord::net::WatchOptions options, bool progress, std::uint64_t max_events) {
  coord::net::WatchStream stream = ctl.client().watch(std::move(options));
  std::uint64_t printed = 0;
  while (g_interrupted == 0) {
    const auto update = stream.next(std::chrono::milliseconds(1000));
    if (!update) continue;
    if (update->ended) {
      ClientResponse r = coord::net::error_response(0, update->error, update->message);
      r.compact_revision = update->compact_revision;
      return ctl.fail(r);
    }
    for (const coord::kv::Event& e : update->events) {
      ctl.print_line(ctl.json_output() ? dump(event_json(e)) : event_line(e));
      if (max_events != 0 && ++printed >= max_events) return kExitOk;
    }
    if (progress && update->events.empty()) {
      ctl.print_line(ctl.json_output() ? dump(json{{"progress_revision", update->progress_revision}})
                                       : fmt::format("progress revision={}", update->progress_revision));
    }
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------
// Locks and elections (coord::Client and the fencing recipes)

constexpr auto kPollInterval = std::chrono::milliseconds(20);

coord::ClientOptions library_options(const coord::net::ClientOptions& options) {
  coord::ClientOptions o;
  o.endpoints = options.endpoints;
  o.call_timeout = options.timeout;
  o.attempt_timeout = options.attempt_timeout;
  return o;
}

// A recipe call that did not succeed: the reason on stderr, and the exit status for it.
int recipe_failure(const std::string& what, const coord::Status& status) {
  std::cerr << fmt::format("coordctl: {}: {}{}{}\n", what, coord::fencing::to_string(status.code),
                           status.message.empty() ? "" : ": ", status.message);
  switch (status.code) {
    case coord::fencing::Code::Unknown: return kExitUnavailable;
    case coord::fencing::Code::SessionLost: return kExitLost;
    default: return kExitRefused;
  }
}

// Opens the session every lock and candidacy of this process hangs on.
std::optional<int> open_session(coord::Session& session) {
  const coord::Status opened = session.open();
  if (opened.ok()) return std::nullopt;
  return recipe_failure("session", opened);
}

// Waits for `pending` while polling for SIGINT/SIGTERM; false when interrupted first.
template <typename T>
bool wait_interruptibly(std::future<T>& pending) {
  while (pending.wait_for(kPollInterval) != std::future_status::ready) {
    if (g_interrupted != 0) return false;
  }
  return true;
}

std::string default_holder_value() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return fmt::format("coordctl pid={} host={}", ::getpid(), host);
}

// The environment of the command: ours, with the lock's token and key set.
std::vector<std::string> command_environment(coord::Token token, const std::string& key, const std::string& path) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    if (entry.starts_with("COORD_FENCING_TOKEN=") || entry.starts_with("COORD_LOCK_KEY=") ||
        entry.starts_with("COORD_LOCK_PATH=")) {
      continue;
    }
    env.emplace_back(entry);
  }
  env.push_back(fmt::format("COORD_FENCING_TOKEN={}", token));
  env.push_back(fmt::format("COORD_LOCK_KEY={}", key));
  env.push_back(fmt::format("COORD_LOCK_PATH={}", path));
  return env;
}

// fork + exec; -1 (with the reason on stderr) when the fork fails. Everything the child needs is
// prepared before the fork: this process has another thread (the client's), so the child may
// only make async-signal-safe calls until exec.
pid_t spawn(const std::vector<std::string>& command, const std::vector<std::string>& env) {
  std::vector<char*> argv;
  for (const std::string& a : command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const std::string exec_failed = fmt::format("coordctl: lock: cannot run {}: ", command.front());
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::cerr << "coordctl: lock: fork: " << std::strerror(errno) << "\n";
    return -1;
  }
  if (pid == 0) {
    ::execvpe(argv[0], argv.data(), envp.data());
    const char* reason = std::strerror(errno);
    (void)!::write(STDERR_FILENO, exec_failed.data(), exec_failed.size());
    (void)!::write(STDERR_FILENO, reason, std::strlen(reason));
    (void)!::write(STDERR_FILENO, "\n", 1);
    ::_exit(127);
  }
  return pid;
}

// The shell's convention: the exit status, or 128 + the signal that ended it.
int exit_status_of(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return kExitRefused;
}

// Runs `command` while holding the lock `name`: the command gets the fencing token in
// COORD_FENCING_TOKEN, is stopped (SIGTERM, SIGKILL after `kill_after`) when the lock is lost,
// and the lock is released when it exits. Exit: the command's status; 4 when the lock was lost.
int cmd_lock(const coord::net::ClientOptions& net_options, const std::string& name, std::chrono::milliseconds ttl,
             std::chrono::milliseconds kill_after, std::string value, const std::vector<std::string>& command) {
  coord::SessionOptions session_options;
  session_options.ttl_ms = ttl.count();
  if (!coord::fencing::valid(session_options)) {
    std::cerr << "coordctl: lock: --ttl is too short to keep a session alive (at least 500ms)\n";
    return kExitUsage;
  }
  coord::Client client(library_options(net_options));
  coord::Session session(client, session_options);
  if (auto failed = open_session(session)) return *failed;
  coord::Lock lock(session, name, value.empty() ? default_holder_value() : std::move(value));
  std::atomic<bool> lost{false};
  lock.on_lost([&lost](const coord::Status&) { lost = true; });

  auto pending = lock.lock_async();
  if (!wait_interruptibly(pending)) {
    (void)lock.unlock();  // gives up the wait (or releases a lock acquired just now)
    return 128 + g_interrupted;
  }
  const coord::LockResult got = pending.get();
  if (!got.status.ok()) return recipe_failure(fmt::format("lock {}", lock.path()), got.status);
  // A key deleted by anyone but us (an operator, a revoked lease) also ends the lock: watch it.
  coord::kv::WatchRequest watch;
  watch.filter = {coord::kv::WatchKind::Key, got.key};
  watch.start_revision = got.token + 1;
  const coord::WatchHandle watch_handle = client.watch(watch, coord::WatchCallbacks{
      [&lost](const std::vector<coord::kv::Event>& events) {
        for (const coord::kv::Event& e : events) {
          if (e.type == coord::kv::EventType::Deleted) lost = true;
        }
      },
      [](const coord::kv::Status&) {}});
  std::cerr << fmt::format("coordctl: holding {} token={}\n", lock.path(), got.token);

  const pid_t child = spawn(command, command_environment(got.token, got.key, lock.path()));
  if (child < 0) {
    client.cancel_watch(watch_handle);
    (void)lock.unlock();
    return kExitRefused;
  }
  int wait_status = 0;
  bool lost_lock = false;
  int forwarded = 0;  // the signal passed on to the command (0: none yet)
  std::optional<std::chrono::steady_clock::time_point> kill_at;
  for (;;) {
    const pid_t r = ::waitpid(child, &wait_status, WNOHANG);
    if (r == child) break;
    if (r < 0 && errno != EINTR) {
      std::cerr << "coordctl: lock: waitpid: " << std::strerror(errno) << "\n";
      wait_status = 0;
      break;
    }
    if (lost && !lost_lock) {
      lost_lock = true;
      std::cerr << fmt::format("coordctl: lost the lock {}; stopping the command (pid {})\n", lock.path(), child);
      (void)::kill(child, SIGTERM);
      kill_at = std::chrono::steady_clock::now() + kill_after;
    }
    if (g_interrupted != 0 && forwarded == 0) {
      forwarded = g_interrupted;
      (void)::kill(child, forwarded);
      if (!kill_at) kill_at = std::chrono::steady_clock::now() + kill_after;
    }
    if (kill_at && std::chrono::steady_clock::now() >= *kill_at) {
      (void)::kill(child, SIGKILL);
      kill_at.reset();
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  client.cancel_watch(watch_handle);
  if (lost_lock || lost) {
    if (!lost_lock) std::cerr << fmt::format("coordctl: lost the lock {} while the command ran\n", lock.path());
    return kExitLost;
  }
  const coord::Status released = lock.unlock();
  if (!released.ok()) {
    // NotHeld: lost at the very end; Unknown: the key goes with the session, closed next.
    std::cerr << fmt::format("coordctl: unlock {}: {}\n", lock.path(), coord::fencing::to_string(released.code));
    if (released.code == coord::fencing::Code::NotHeld) return kExitLost;
  }
  return exit_status_of(wait_status);
}

std::string leader_line(const std::string& path, const std::optional<coord::Leader>& leader) {
  if (!leader) return fmt::format("no leader {}", path);
  return fmt::format("leader {} value={} token={} key={}", path, leader->value, leader->token, leader->key);
}

json leader_json(const std::string& path, const std::optional<coord::Leader>& leader) {
  json j{{"election", path}, {"leader", leader.has_value()}};
  if (leader) {
    j["value"] = leader->value;
    j["token"] = leader->token;
    j["key"] = leader->key;
    j["lease"] = leader->lease;
    j["mod_revision"] = leader->mod_revision;
  }
  return j;
}

// Campaigns with `value`, prints when elected, leads until interrupted, then resigns.
int cmd_elect(const Ctl& ctl, const coord::net::ClientOptions& net_options, const std::string& name,
              const std::string& value, std::chrono::milliseconds ttl) {
  coord::SessionOptions session_options;
  session_options.ttl_ms = ttl.count();
  if (!coord::fencing::valid(session_options)) {
    std::cerr << "coordctl: elect: --ttl is too short to keep a session alive (at least 500ms)\n";
    return kExitUsage;
  }
  coord::Client client(library_options(net_options));
  coord::Session session(client, session_options);
  if (auto failed = open_session(session)) return *failed;
  coord::Election election(session, name);
  std::atomic<bool> lost{false};
  election.on_lost([&lost](const coord::Status&) { lost = true; });
  auto pending = election.campaign_async(value);
  if (!wait_interruptibly(pending)) {
    (void)election.resign();
    return kExitOk;
  }
  const coord::LockResult got = pending.get();
  if (!got.status.ok()) return recipe_failure(fmt::format("elect {}", election.path()), got.status);
  if (ctl.json_output()) {
    ctl.print_line(dump(json{{"elected", true}, {"election", election.path()}, {"value", value},
                             {"token", got.token}, {"key", got.key}}));
  } else {
    ctl.print_line(fmt::format("elected {} value={} token={} key={}", election.path(), value, got.token, got.key));
  }
  while (g_interrupted == 0 && !lost) std::this_thread::sleep_for(kPollInterval);
  if (lost) {
    std::cerr << fmt::format("coordctl: lost the leadership of {} (the session ended)\n", election.path());
    return kExitLost;
  }
  const coord::Status resigned = election.resign();
  if (!resigned.ok()) return recipe_failure(fmt::format("resign {}", election.path()), resigned);
  if (ctl.json_output()) {
    ctl.print_line(dump(json{{"resigned", true}, {"election", election.path()}}));
  } else {
    ctl.print_line(fmt::format("resigned {}", election.path()));
  }
  return kExitOk;
}

// Prints the leader (or its absence) at the start and at every change, until interrupted or
// `max_events` lines (0: no bound).
int cmd_observe(const Ctl& ctl, const coord::net::ClientOptions& net_options, const std::string& name,
                std::uint64_t max_events) {
  coord::Client client(library_options(net_options));
  std::mutex mutex;
  std::deque<std::optional<coord::Leader>> reports;
  coord::LeaderObserver observer(client, name, [&](const std::optional<coord::Leader>& leader) {
    std::lock_guard<std::mutex> lock(mutex);
    reports.push_back(leader);
  });
  const std::string path = coord::election_path(name);
  std::uint64_t printed = 0;
  while (g_interrupted == 0) {
    std::deque<std::optional<coord::Leader>> batch;
    {
      std::lock_guard<std::mutex> lock(mutex);
      batch.swap(reports);
    }
    for (const auto& leader : batch) {
      ctl.print_line(ctl.json_output() ? dump(leader_json(path, leader)) : leader_line(path, leader));
      if (max_events != 0 && ++printed >= max_events) return kExitOk;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"coordctl: command-line client of the coord coordination service"};
  app.footer(fmt::format(
      "Endpoints: --endpoints, else $COORD_ENDPOINTS, else {}.\n"
      "Exit status: 0 ok; 1 the service refused the request (its error code is printed on stderr,\n"
      "e.g. not-found (2), already-exists (3), compare-failed (5)); 2 bad usage; 3 no answer\n"
      "(no leader, unreachable, timed out: a write's outcome is then unknown).\n"
      "watch and lease keepalive run until interrupted (SIGINT/SIGTERM: exit 0).\n"
      "lock exits with its COMMAND's status (128+N when a signal N ended it), 4 when the lock was\n"
      "lost (COMMAND was stopped); elect exits 0 once interrupted and resigned, 4 when leadership\n"
      "was lost.\n"
      "Membership: member list|add|promote|remove (coordctl member --help; error codes 103-106).",
      kDefaultEndpoints));
  app.require_subcommand(1);
  // Global flags may also follow the command: `coordctl get /a --json`.
  app.fallthrough();
  Globals globals;
  app.add_option("--endpoints", globals.endpoints, "Client addresses, host:port[,host:port...]");
  app.add_flag("--json", globals.json, "Print JSON (errors too, on stderr)");
  app.add_option("--timeout", globals.timeout, "Give up after this long, retries included (500ms, 5s, 1m)")
      ->capture_default_str();

  std::string path;
  std::string value;
  std::uint64_t revision = 0;
  bool serializable = false;
  bool parents = false;
  bool sequential = false;
  bool recursive = false;
  bool keys_only = false;
  std::optional<std::uint64_t> expect_version;
  std::optional<std::string> expect_value;
  std::uint64_t lease = 0;
  std::uint64_t lease_id = 0;
  std::string ttl_text;
  bool once = false;
  bool subtree = false;
  bool children = false;
  bool prev = false;
  bool progress = false;
  std::uint64_t max_events = 0;
  std::uint64_t compact_revision = 0;
  std::string snapshot_path;

  auto add_read_flags = [&](CLI::App* c) {
    c->add_option("--rev", revision, "Read at this past revision (default: the current one)");
    c->add_flag("--serializable", serializable,
                "Serve from the contacted member's state without confirming with the leader (may be stale)");
  };

  CLI::App* get = app.add_subcommand("get", "Print a node's value");
  get->add_option("key", path, "Path, e.g. /app/config")->required();
  add_read_flags(get);

  CLI::App* stat = app.add_subcommand("stat", "Print a node's metadata");
  stat->add_option("key", path)->required();
  add_read_flags(stat);

  CLI::App* ls = app.add_subcommand("ls", "List a node's children");
  ls->add_option("key", path)->required();
  add_read_flags(ls);

  CLI::App* range = app.add_subcommand("range", "Print a subtree (the node and its descendants)");
  range->add_option("key", path)->required();
  add_read_flags(range);
  range->add_flag("--keys-only", keys_only, "Paths only");

  CLI::App* put = app.add_subcommand("put", "Create or replace a node's value");
  put->add_option("key", path)->required();
  put->add_option("value", value)->required();
  put->add_flag("--parents", parents, "Create missing ancestors (empty values)");
  put->add_option("--lease", lease, "Attach the node to this lease: it is deleted when the lease ends");

  CLI::App* create = app.add_subcommand("create", "Create a node that must not exist");
  create->add_option("key", path, "Path; with --sequential a prefix the name is appended to")->required();
  create->add_option("value", value);
  create->add_flag("--sequential", sequential, "Append the parent's next 10-digit counter to the name");
  create->add_flag("--parents", parents, "Create missing ancestors (empty values)");
  create->add_option("--lease", lease, "An ephemeral node: deleted when this lease is revoked or expires");

  CLI::App* del = app.add_subcommand("delete", "Delete a node");
  del->add_option("key", path)->required();
  del->add_flag("--recursive", recursive, "Delete its descendants too");

  CLI::App* cas = app.add_subcommand("cas", "Compare-and-set: write only if the node is as expected");
  cas->add_option("key", path)->required();
  cas->add_option("value", value)->required();
  auto* ev = cas->add_option("--expect-version", expect_version, "Write only if the node's version is N");
  auto* evl = cas->add_option("--expect-value", expect_value, "Write only if the node's value is V");
  ev->excludes(evl);
  evl->excludes(ev);

  CLI::App* txn = app.add_subcommand(
      "txn",
      "Run a transaction read from stdin, one statement a line:\n"
      "  compare exists|missing PATH\n"
      "  compare version|create_revision|mod_revision PATH =|!=|<|> N\n"
      "  compare value PATH =|!=|<|> TEXT...\n"
      "  then\n"
      "  put [--parents] PATH TEXT...\n"
      "  create [--parents] [--sequential] PATH TEXT...\n"
      "  delete [--recursive] PATH\n"
      "  get PATH\n"
      "  else\n"
      "  (operations as above)\n"
      "'#' starts a comment line. TEXT is the rest of the line, literally.");

  CLI::App* compact = app.add_subcommand("compact", "Drop the history below a revision (reads and watches from "
                                                     "below it then fail with compacted (7))");
  compact->add_option("revision", compact_revision, "The first revision to keep")->required();

  CLI::App* watch = app.add_subcommand(
      "watch",
      "Print changes to a node (or a subtree, or a node's children) as they happen, one line each:\n"
      "  created|updated|deleted PATH revision=R [value=V] [prev=V]\n"
      "until interrupted. The stream resumes on another member when the one serving it fails,\n"
      "without missing or repeating an event.");
  watch->add_option("key", path)->required();
  auto* sub = watch->add_flag("--subtree", subtree, "The node and everything below it");
  auto* kids = watch->add_flag("--children", children, "The node's direct children");
  sub->excludes(kids);
  kids->excludes(sub);
  watch->add_option("--rev", revision, "Start at this revision (replaying history); default: from now");
  watch->add_flag("--prev", prev, "Also print each node's previous value");
  watch->add_flag("--progress", progress, "Also print progress lines (progress revision=R)");
  watch->add_option("--max-events", max_events, "Exit after this many events");

  CLI::App* lease_cmd = app.add_subcommand("lease", "Leases: keys attached to one are deleted when it ends");
  lease_cmd->require_subcommand(1);
  CLI::App* lease_grant = lease_cmd->add_subcommand("grant", "Grant a lease; prints its id");
  lease_grant->add_option("ttl", ttl_text, "Time to live: 500ms, 10s, 1m, or seconds")->required();
  lease_grant->add_option("--id", lease_id, "Ask for this id (default: the next free one)");
  CLI::App* lease_keepalive = lease_cmd->add_subcommand(
      "keepalive", "Renew a lease every third of its TTL until interrupted, printing each renewal");
  lease_keepalive->add_option("id", lease_id)->required();
  lease_keepalive->add_flag("--once", once, "Renew once and exit");
  CLI::App* lease_revoke = lease_cmd->add_subcommand("revoke", "End a lease now, deleting its keys in one revision");
  lease_revoke->add_option("id", lease_id)->required();
  CLI::App* lease_ttl = lease_cmd->add_subcommand(
      "ttl", "Show a lease's TTL, the leader's time left on it, its keep-alives and keys");
  lease_ttl->add_option("id", lease_id)->required();

  CLI::App* snapshot = app.add_subcommand("snapshot", "State snapshots");
  snapshot->require_subcommand(1);
  CLI::App* snapshot_save = snapshot->add_subcommand(
      "save", "Save the first answering member's whole state to FILE (written to FILE.part, then renamed)");
  snapshot_save->add_option("file", snapshot_path)->required();

  std::string lock_name;
  std::string ttl_option = "10s";
  std::string kill_after_text = "5s";
  std::string holder_value;
  std::vector<std::string> command_args;
  CLI::App* lock_cmd = app.add_subcommand(
      "lock",
      "Run COMMAND while holding the lock NAME (at /locks/NAME; a NAME starting with / is the path):\n"
      "  coordctl lock NAME [--ttl D] [--kill-after D] -- COMMAND [ARGS...]\n"
      "waits for the lock, then runs COMMAND with COORD_FENCING_TOKEN (the lock's fencing token),\n"
      "COORD_LOCK_KEY and COORD_LOCK_PATH in its environment. If the lock is lost (the session's\n"
      "lease could not be kept alive for its TTL, or the key was deleted), COMMAND gets SIGTERM,\n"
      "then SIGKILL after --kill-after. SIGINT/SIGTERM are passed on to COMMAND. The lock is\n"
      "released when COMMAND exits; coordctl exits with COMMAND's status (4: the lock was lost).\n"
      "A COMMAND that writes elsewhere should pass the token along, for the resource to refuse\n"
      "stale holders (fencing/README.md).");
  lock_cmd->add_option("name", lock_name, "Lock name or path")->required();
  lock_cmd->add_option("--ttl", ttl_option, "The session's lease TTL (500ms, 10s, 1m)")->capture_default_str();
  lock_cmd->add_option("--kill-after", kill_after_text, "After a lost lock's SIGTERM, SIGKILL this much later")
      ->capture_default_str();
  lock_cmd->add_option("--value", holder_value, "Stored in the lock's key (default: coordctl pid=N host=H)");
  lock_cmd->add_option("command", command_args, "COMMAND [ARGS...], after --")->required();

  std::string elect_name;
  std::string elect_value;
  bool observe = false;
  CLI::App* elect_cmd = app.add_subcommand(
      "elect",
      "Leader election (at /elections/NAME; a NAME starting with / is the path):\n"
      "  coordctl elect NAME VALUE [--ttl D]: campaign with VALUE; prints\n"
      "    elected PATH value=VALUE token=T key=K\n"
      "  once leading, leads until interrupted (SIGINT/SIGTERM), then resigns and prints\n"
      "    resigned PATH\n"
      "  coordctl elect --observe NAME [--max-events N]: prints the leader at the start and at\n"
      "  every change, until interrupted:\n"
      "    leader PATH value=V token=T key=K    or    no leader PATH");
  elect_cmd->add_option("name", elect_name, "Election name or path")->required();
  elect_cmd->add_option("value", elect_value, "The value to announce while leading");
  elect_cmd->add_flag("--observe", observe, "Follow the leader instead of campaigning");
  elect_cmd->add_option("--ttl", ttl_option, "The session's lease TTL (500ms, 10s, 1m)")->capture_default_str();
  elect_cmd->add_option("--max-events", max_events, "With --observe: exit after this many lines");

  CLI::App* status = app.add_subcommand("status", "Show every endpoint's role, term, commit and applied index");

  CLI::App* member = app.add_subcommand("member", "Cluster membership: list, add, promote, remove");
  member->require_subcommand(1);
  member->footer(
      "Changes go through the leader one at a time and are answered once applied; a follower's\n"
      "answer sends coordctl on to the leader. Error codes (exit 1): unknown-member (103),\n"
      "member-exists (104), not-learner (105), last-voter (106), invalid-request (8);\n"
      "exit 3 when a change is still in flight or no leader answered (check member list).\n"
      "Typical: member add n4 --peer-url H:P --learner; start coordd with the printed flags;\n"
      "once it caught up (status), member promote n4. member remove of the leader hands\n"
      "leadership to another voter first.");
  CLI::App* member_list = member->add_subcommand(
      "list", "List the members: id, name, peer and client address, voter or learner, leader (*)");
  std::string member_name;
  std::string peer_url;
  bool as_learner = false;
  CLI::App* member_add = member->add_subcommand(
      "add", "Add a member (it gets an id derived from NAME) and print the coordd flags to start it with");
  member_add->add_option("name", member_name, "The new member's name (1-63 of A-Z a-z 0-9 _ - .)")->required();
  member_add->add_option("--peer-url", peer_url, "host:port the other members dial the new member on")->required();
  member_add->add_flag("--learner", as_learner,
                       "Join as a learner: it receives the log but neither votes nor counts for commitment "
                       "until promoted");
  CLI::App* member_promote =
      member->add_subcommand("promote", "Make a learner a voter (refused with not-learner for a voter)");
  member_promote->add_option("name", member_name, "The learner's name")->required();
  CLI::App* member_remove = member->add_subcommand(
      "remove", "Remove a member (the leader first hands leadership over); refused for the last voter");
  member_remove->add_option("name", member_name, "The member's name")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  if (*cas && !expect_version && !expect_value) {
    std::cerr << "coordctl: cas needs --expect-version N or --expect-value V\n";
    return kExitUsage;
  }

  std::string endpoints_text = globals.endpoints;
  if (endpoints_text.empty()) {
    const char* env = std::getenv("COORD_ENDPOINTS");
    endpoints_text = env != nullptr && *env != '\0' ? env : kDefaultEndpoints;
  }
  coord::net::ClientOptions options;
  options.endpoints = coord::net::split_endpoints(endpoints_text);
  if (options.endpoints.empty()) {
    std::cerr << "coordctl: no endpoints\n";
    return kExitUsage;
  }
  const auto timeout = parse_duration(globals.timeout);
  if (!timeout) {
    std::cerr << "coordctl: --timeout " << globals.timeout << " is not a duration (500ms, 5s, 1m)\n";
    return kExitUsage;
  }
  options.timeout = *timeout;
  options.attempt_timeout = std::min(options.attempt_timeout, *timeout);
  if (*elect_cmd && observe != elect_value.empty()) {
    std::cerr << "coordctl: elect needs NAME VALUE, or --observe NAME\n";
    return kExitUsage;
  }
  if (*watch || *lease_keepalive || *lock_cmd || *elect_cmd) {
    catch_interrupts();
    options.interrupted = [] { return g_interrupted != 0; };
  }
  Ctl ctl(globals, options);

  using coord::kv::Op;
  if (*get) return cmd_get(ctl, path, revision, serializable, false);
  if (*stat) return cmd_get(ctl, path, revision, serializable, true);
  if (*ls) return cmd_ls(ctl, path, revision, serializable);
  if (*range) return cmd_range(ctl, path, revision, serializable, keys_only);
  if (*put) {
    Op op = Op::put(path, value, lease);
    op.parents = parents;
    return cmd_write(ctl, coord::kv::single(std::move(op)));
  }
  if (*create) {
    Op op = sequential ? Op::create_sequential(path, value, lease) : Op::create(path, value, lease);
    op.parents = parents;
    return cmd_write(ctl, coord::kv::single(std::move(op)));
  }
  if (*del) return cmd_write(ctl, coord::kv::single(Op::remove(path, recursive)));
  if (*cas) {
    return cmd_write(ctl, expect_version ? coord::kv::compare_and_set_version(path, *expect_version, value)
                                         : coord::kv::compare_and_set_value(path, *expect_value, value));
  }
  if (*txn) return cmd_txn(ctl);
  if (*compact) return cmd_compact(ctl, compact_revision);
  if (*snapshot_save) return cmd_snapshot_save(ctl, snapshot_path);
  if (*watch) {
    coord::net::WatchOptions w;
    w.kind = subtree ? coord::kv::WatchKind::Subtree : (children ? coord::kv::WatchKind::Children : coord::kv::WatchKind::Key);
    w.path = path;
    w.start_revision = revision;
    w.prev = prev;
    return cmd_watch(ctl, std::move(w), progress, max_events);
  }
  if (*lease_grant) {
    const auto ttl = parse_duration(ttl_text);
    if (!ttl) {
      std::cerr << "coordctl: lease grant: " << ttl_text << " is not a duration (500ms, 10s, 1m)\n";
      return kExitUsage;
    }
    return cmd_lease_grant(ctl, *ttl, lease_id);
  }
  if (*lease_keepalive) return cmd_lease_keepalive(ctl, lease_id, once);
  if (*lease_revoke) return cmd_lease_revoke(ctl, lease_id);
  if (*lease_ttl) return cmd_lease_ttl(ctl, lease_id);
  if (*lock_cmd || *elect_cmd) {
    const auto ttl = parse_duration(ttl_option);
    const auto kill_after = parse_duration(kill_after_text);
    if (!ttl || !kill_after) {
      std::cerr << "coordctl: --ttl and --kill-after take durations (500ms, 10s, 1m)\n";
      return kExitUsage;
    }
    try {
      if (*lock_cmd) return cmd_lock(options, lock_name, *ttl, *kill_after, holder_value, command_args);
      if (observe) return cmd_observe(ctl, options, elect_name, max_events);
      return cmd_elect(ctl, options, elect_name, elect_value, *ttl);
    } catch (const std::exception& e) {
      std::cerr << "coordctl: " << e.what() << "\n";
      return kExitUnavailable;
    }
  }
  if (*status) return cmd_status(ctl, options.endpoints);
  if (*member_list) return cmd_member_list(ctl);
  if (*member_add) return cmd_member_add(ctl, member_name, peer_url, as_learner);
  if (*member_promote) return cmd_member_remove_or_promote(ctl, RequestKind::MemberPromote, member_name);
  if (*member_remove) return cmd_member_remove_or_promote(ctl, RequestKind::MemberRemove, member_name);
  std::cerr << "coordctl: no command\n";
  return kExitUsage;
}
