// The replica host without sockets: a one-member cluster driven tick by tick with the log write
// run inline, through writes, reads, snapshots and a restart from the data directory.
#include <fmt/format.h>
#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "kv/codec.h"
#include "kv/memory_storage.h"
#include "kv/snapshot.h"
#include "net/cluster_config.h"
#include "net/member_table.h"
#include "net/os_random.h"
#include "net/replica_host.h"
#include "storage/snapshot_file.h"
#include "tmpfs_mount.h"

namespace {

using namespace coord;

class Recorder final : public net::HostOutput {
 public:
  void send(const raft::Message& message) override { sent.push_back(message); }
  void respond(net::ConnectionId connection, const net::ClientResponse& response) override {
    responses.emplace(response.id, response);  // the answer; later frames of a watch keep its id
    frames.emplace_back(connection, response);
  }
  void fatal(const std::string& reason) override { fatal_reason = reason; }
  std::size_t queued_bytes(net::ConnectionId connection) const override {
    auto it = queued.find(connection);
    return it == queued.end() ? 0 : it->second;
  }

  std::vector<raft::Message> sent;
  std::map<std::uint64_t, net::ClientResponse> responses;
  std::vector<std::pair<net::ConnectionId, net::ClientResponse>> frames;  // every response, in order
  std::map<net::ConnectionId, std::size_t> queued;  // pretend output is waiting there
  std::string fatal_reason;
};

struct Fixture {
  Fixture() {
    spdlog::set_level(spdlog::level::warn);  // the host logs every role change at info
    char tmpl[] = "/tmp/coord-host-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    std::string error;
    cluster = *net::parse_initial_cluster("n1=127.0.0.1:1", "", &error);
    options.snapshot_every_entries = 5;
    options.snapshot_log_ratio = 0;         // every 5 entries, whatever the snapshot's size
    options.snapshot_in_background = false;  // serialized inline: deterministic
    options.clock_ms = [this] { return now_ms; };
    options.boot_id_path = dir + "/boot_id";
    set_boot_id("boot-1");
  }
  void set_boot_id(const std::string& id) { std::ofstream(options.boot_id_path) << id << "\n"; }
  ~Fixture() { std::filesystem::remove_all(dir); }

  std::unique_ptr<net::ReplicaHost> open() { return open_at(dir); }
  std::unique_ptr<net::ReplicaHost> open_at(const std::string& data_dir) {
    return std::make_unique<net::ReplicaHost>(options, cluster, cluster.members[0], "127.0.0.1:2", data_dir, random,
                                              output, disk);
  }
  void elect(net::ReplicaHost& host) {
    for (int t = 0; t < 100 && host.node().role() != raft::Role::Leader; ++t) {
      host.tick();
      host.pump();
    }
    REQUIRE(host.node().role() == raft::Role::Leader);
    host.pump();
  }
  net::ClientResponse call(net::ReplicaHost& host, net::ClientRequest request, net::ConnectionId connection = 1) {
    request.id = next_id++;
    host.request(connection, request);
    host.pump();
    REQUIRE(output.responses.count(request.id) == 1);
    return output.responses[request.id];
  }
  net::ClientResponse put(net::ReplicaHost& host, const std::string& path, const std::string& value) {
    kv::Command command;
    command.session_id = 9;
    command.sequence = next_sequence++;
    command.body = kv::single(kv::Op::put(path, value));
    net::ClientRequest r;
    r.kind = net::RequestKind::Write;
    r.command = kv::encode_command(command);
    return call(host, r);
  }
  net::ClientResponse get(net::ReplicaHost& host, const std::string& path, bool serializable = false) {
    net::ClientRequest r;
    r.kind = net::RequestKind::Get;
    r.path = path;
    r.serializable = serializable;
    return call(host, r);
  }

  std::string dir;
  net::ClusterConfig cluster;
  net::HostOptions options;
  net::OsRandom random;
  Recorder output;
  net::InlineExecutor disk;
  net::ClientResponse write(net::ReplicaHost& host, kv::Body body) {
    kv::Command command;
    command.session_id = 9;
    command.sequence = next_sequence++;
    command.body = std::move(body);
    net::ClientRequest r;
    r.kind = net::RequestKind::Write;
    r.command = kv::encode_command(command);
    return call(host, r);
  }
  // Advances the fake clock by `ms` in ticks of 100 ms.
  void run_for(net::ReplicaHost& host, std::uint64_t ms) {
    for (std::uint64_t t = 0; t < ms; t += 100) {
      now_ms += 100;
      host.tick();
      host.pump();
    }
  }
  // Stream frames of one watch (not its opening answer) sent so far.
  std::vector<net::ClientResponse> stream(std::uint64_t request_id, kv::WatchId watch_id) const {
    std::vector<net::ClientResponse> out;
    bool opened = false;
    for (const auto& [connection, r] : output.frames) {
      if (r.id != request_id || r.watch_id != watch_id) continue;
      if (!opened) {
        opened = true;  // the answer to the Watch request itself
        continue;
      }
      out.push_back(r);
    }
    return out;
  }

  std::uint64_t next_id = 1;
  std::uint64_t next_sequence = 1;
  std::uint64_t now_ms = 1'000'000;
};

}  // namespace

TEST_CASE("a one-member host answers writes and reads, snapshots, and restarts from its data dir") {
  Fixture f;
  {
    auto host = f.open();
    f.elect(*host);
    for (int k = 0; k < 12; ++k) {
      const net::ClientResponse r = f.put(*host, fmt::format("/k{}", k), fmt::format("v{}", k));
      REQUIRE_MESSAGE(r.ok(), r.message);
      REQUIRE(r.result.has_value());
      CHECK(r.result->revision == static_cast<kv::Revision>(k + 1));
    }
    const net::ClientResponse got = f.get(*host, "/k3");
    REQUIRE(got.ok());
    CHECK(got.node->value == "v3");
    CHECK(f.get(*host, "/nope").error == net::ErrorCode::NotFound);
    // Every 5 applied entries the log is compacted behind a snapshot of the state.
    CHECK(host->node().snapshot_meta().index >= 10);
    CHECK(f.output.fatal_reason.empty());
  }
  auto host = f.open();
  // Before any election the state is already there for serializable reads.
  const net::ClientResponse early = f.get(*host, "/k11", /*serializable=*/true);
  REQUIRE(early.ok());
  CHECK(early.node->value == "v11");
  f.elect(*host);
  const net::ClientResponse r = f.put(*host, "/after", "restart");
  REQUIRE(r.ok());
  CHECK(r.result->revision == 13);
}

TEST_CASE("a retried write with the same session and sequence is applied once") {
  Fixture f;
  auto host = f.open();
  f.elect(*host);
  kv::Command command;
  command.session_id = 77;
  command.sequence = 1;
  command.body = kv::single(kv::Op::create_sequential("/q-", "x"));
  net::ClientRequest r;
  r.kind = net::RequestKind::Write;
  r.command = kv::encode_command(command);
  const net::ClientResponse first = f.call(*host, r);
  const net::ClientResponse again = f.call(*host, r);
  REQUIRE(first.ok());
  REQUIRE(again.ok());
  CHECK(first.result->ops[0].path == "/q-0000000000");
  CHECK(again.result->ops[0].path == "/q-0000000000");  // the remembered result, not a new node
  CHECK(again.result->revision == first.result->revision);
}

TEST_CASE("malformed and forbidden writes never reach the log") {
  Fixture f;
  auto host = f.open();
  f.elect(*host);
  const raft::Index before = host->node().log().last_index();
  net::ClientRequest garbage;
  garbage.kind = net::RequestKind::Write;
  garbage.command = "not a command";
  CHECK(f.call(*host, garbage).error == net::ErrorCode::InvalidRequest);
  kv::Command expire;
  expire.body = kv::LeaseExpire{1, 0};
  net::ClientRequest forged;
  forged.kind = net::RequestKind::Write;
  forged.command = kv::encode_command(expire);
  CHECK(f.call(*host, forged).error == net::ErrorCode::InvalidRequest);
  CHECK(host->node().log().last_index() == before);
}

TEST_CASE("a follower that knows no leader answers Unavailable, and status still works") {
  Fixture f;
  std::string error;
  f.cluster = *net::parse_initial_cluster("n1=127.0.0.1:1,n2=127.0.0.1:2,n3=127.0.0.1:3", "", &error);
  auto host = f.open();
  kv::Command command;
  command.body = kv::single(kv::Op::put("/a", "b"));
  net::ClientRequest w;
  w.kind = net::RequestKind::Write;
  w.command = kv::encode_command(command);
  CHECK(f.call(*host, w).error == net::ErrorCode::Unavailable);
  net::ClientRequest status;
  status.kind = net::RequestKind::Status;
  const net::ClientResponse s = f.call(*host, status);
  REQUIRE(s.status.has_value());
  CHECK(s.status->role == "follower");
  CHECK(s.status->id == 1);
}

TEST_CASE("leases: the leader's clock expires them through the log, keep-alives renew them, LeaseTtl reports them") {
  Fixture f;
  auto host = f.open();
  f.elect(*host);
  const net::ClientResponse granted = f.write(*host, kv::LeaseGrant{0, 1'000});
  REQUIRE(granted.ok());
  const kv::LeaseId id = granted.result->lease.lease.id;
  REQUIRE(id != 0);
  REQUIRE(f.write(*host, kv::single(kv::Op::create("/e1", "a", id))).ok());
  REQUIRE(f.write(*host, kv::single(kv::Op::create("/e2", "b", id))).ok());

  net::ClientRequest ttl;
  ttl.kind = net::RequestKind::LeaseTtl;
  ttl.lease = id;
  net::ClientResponse t = f.call(*host, ttl);
  REQUIRE_MESSAGE(t.ok(), t.message);
  REQUIRE(t.lease.has_value());
  CHECK(t.lease->ttl_ms == 1'000);
  CHECK(t.lease->remaining_ms == 1'000);
  CHECK(t.lease->keys == std::vector<std::string>{"/e1", "/e2"});

  // Renewed every 600 ms for 3 s: still there.
  for (int k = 0; k < 5; ++k) {
    f.run_for(*host, 600);
    const net::ClientResponse kept = f.write(*host, kv::LeaseKeepAlive{id});
    REQUIRE_MESSAGE(kept.ok(), kept.message);
    CHECK(kept.result->lease.lease.keepalives == static_cast<std::uint64_t>(k + 1));
  }
  CHECK(f.get(*host, "/e1").ok());
  t = f.call(*host, ttl);
  REQUIRE(t.lease.has_value());
  CHECK(t.lease->remaining_ms == 1'000);
  f.run_for(*host, 400);
  t = f.call(*host, ttl);
  REQUIRE(t.lease.has_value());
  CHECK(t.lease->remaining_ms == 600);

  // Left alone, it runs out: both keys go in one revision.
  const kv::Revision before = host->state().revision();
  f.run_for(*host, 1'000);
  CHECK(f.get(*host, "/e1").error == net::ErrorCode::NotFound);
  CHECK(f.get(*host, "/e2").error == net::ErrorCode::NotFound);
  CHECK(host->state().revision() == before + 1);
  CHECK(f.call(*host, ttl).error == net::ErrorCode::LeaseNotFound);
  CHECK(f.write(*host, kv::LeaseKeepAlive{id}).error == net::ErrorCode::LeaseNotFound);
  CHECK(f.output.fatal_reason.empty());
}

TEST_CASE("leases: a restarted leader restarts every countdown, revoke deletes the keys at once") {
  Fixture f;
  kv::LeaseId id = 0;
  {
    auto host = f.open();
    f.elect(*host);
    const net::ClientResponse granted = f.write(*host, kv::LeaseGrant{0, 2'000});
    REQUIRE(granted.ok());
    id = granted.result->lease.lease.id;
    REQUIRE(f.write(*host, kv::single(kv::Op::create("/e", "x", id))).ok());
    f.run_for(*host, 1'500);
  }
  f.now_ms += 60'000;  // down for a minute: longer than the TTL
  auto host = f.open();
  f.elect(*host);
  f.run_for(*host, 1'500);  // a new leadership: the full TTL again
  CHECK(f.get(*host, "/e").ok());
  const net::ClientResponse revoked = f.write(*host, kv::LeaseRevoke{id});
  REQUIRE(revoked.ok());
  CHECK(revoked.result->lease.deleted == std::vector<std::string>{"/e"});
  CHECK(f.get(*host, "/e").error == net::ErrorCode::NotFound);
}

TEST_CASE("watches: events stream on the opening connection, resume from a revision, end with the connection") {
  Fixture f;
  auto host = f.open();
  f.elect(*host);
  REQUIRE(f.put(*host, "/w/a", "1").error == net::ErrorCode::NotFound);  // no parent yet
  REQUIRE(f.write(*host, kv::single(kv::Op::put("/w", ""))).ok());        // revision 1
  REQUIRE(f.put(*host, "/w/a", "1").ok());                                 // 2

  net::ClientRequest open;
  open.kind = net::RequestKind::Watch;
  open.path = "/w";
  open.watch_kind = kv::WatchKind::Children;
  open.revision = 1;
  open.prev = true;
  const net::ClientResponse opened = f.call(*host, open, 7);
  REQUIRE_MESSAGE(opened.ok(), opened.message);
  REQUIRE(opened.watch_id != 0);
  CHECK(opened.revision == 1);
  host->pump();  // the replay goes out on the next pass
  REQUIRE(f.put(*host, "/w/a", "2").ok());  // 3
  REQUIRE(f.put(*host, "/w/b", "3").ok());  // 4
  REQUIRE(f.put(*host, "/x", "elsewhere").ok());  // 5

  std::vector<kv::Event> events;
  kv::Revision progress = 0;
  for (const net::ClientResponse& frame : f.stream(opened.id, opened.watch_id)) {
    CHECK(frame.ok());
    CHECK_FALSE(frame.canceled);
    events.insert(events.end(), frame.events.begin(), frame.events.end());
    progress = std::max(progress, frame.progress_revision);
  }
  for (const auto& [connection, r] : f.output.frames) {
    if (r.watch_id == opened.watch_id) CHECK(connection == 7);
  }
  REQUIRE(events.size() == 3);
  CHECK(events[0].revision == 2);
  CHECK(events[0].type == kv::EventType::Created);
  CHECK(events[1].revision == 3);
  CHECK(events[1].type == kv::EventType::Updated);
  REQUIRE(events[1].prev.has_value());
  CHECK(events[1].prev->value == "1");
  CHECK(events[2].path == "/w/b");
  CHECK(progress >= 4);

  // Only the connection that opened it may cancel it.
  net::ClientRequest cancel;
  cancel.kind = net::RequestKind::WatchCancel;
  cancel.watch_id = opened.watch_id;
  CHECK(f.call(*host, cancel, 8).error == net::ErrorCode::UnknownWatch);
  CHECK(host->watch_streams() == 1);
  host->connection_closed(7);
  CHECK(host->watch_streams() == 0);
  CHECK(host->state().watch_hub().size() == 0);

  // From a compacted revision: refused with where history starts.
  REQUIRE(f.write(*host, kv::Compact{3}).ok());
  const net::ClientResponse compacted = f.call(*host, open, 7);
  CHECK(compacted.error == net::ErrorCode::Compacted);
  CHECK(compacted.compact_revision == 3);
}

TEST_CASE("watches: a client that does not read is cancelled alone, with WatchOverflow") {
  Fixture f;
  f.options.limits.watch_buffer_events_max = 8;
  auto host = f.open();
  f.elect(*host);
  net::ClientRequest open;
  open.kind = net::RequestKind::Watch;
  open.path = "/";
  open.watch_kind = kv::WatchKind::Subtree;
  const net::ClientResponse slow = f.call(*host, open, 7);
  const net::ClientResponse fast = f.call(*host, open, 8);
  REQUIRE(slow.ok());
  REQUIRE(fast.ok());
  f.output.queued[7] = std::size_t{64} << 20;  // connection 7 has not read for a while
  for (int k = 0; k < 20; ++k) REQUIRE(f.put(*host, fmt::format("/k{}", k), "v").ok());

  const std::vector<net::ClientResponse> slow_frames = f.stream(slow.id, slow.watch_id);
  REQUIRE(slow_frames.size() == 1);
  CHECK(slow_frames[0].canceled);
  CHECK(slow_frames[0].error == net::ErrorCode::WatchOverflow);
  std::size_t fast_events = 0;
  for (const net::ClientResponse& frame : f.stream(fast.id, fast.watch_id)) {
    CHECK_FALSE(frame.canceled);
    fast_events += frame.events.size();
  }
  CHECK(fast_events == 20);
  CHECK(host->watch_streams() == 1);
  // The slow connection's other requests are still answered.
  CHECK(f.get(*host, "/k3", false).ok());
}

TEST_CASE("a follower forwards writes and LeaseTtl to a known leader once, a forwarded request is not forwarded again") {
  struct Forwarding final : net::HostOutput {
    void send(const raft::Message&) override {}
    void respond(net::ConnectionId, const net::ClientResponse& response) override { responses.push_back(response); }
    void fatal(const std::string&) override {}
    bool forward(net::ConnectionId connection, const net::ClientRequest& request, const net::LeaderHint& leader) override {
      forwarded.push_back({connection, request, leader});
      return true;
    }
    struct Forwarded {
      net::ConnectionId connection;
      net::ClientRequest request;
      net::LeaderHint leader;
    };
    std::vector<net::ClientResponse> responses;
    std::vector<Forwarded> forwarded;
  };
  Fixture f;
  std::string error;
  f.cluster = *net::parse_initial_cluster("n1=127.0.0.1:1,n2=127.0.0.1:2,n3=127.0.0.1:3", "", &error);
  Forwarding out;
  net::ReplicaHost host(f.options, f.cluster, f.cluster.members[0], "127.0.0.1:11", f.dir, f.random, out, f.disk);
  host.set_client_address(2, "127.0.0.1:12");
  // Member 2 leads term 1: its heartbeat tells us.
  raft::Message heartbeat;
  heartbeat.type = raft::MessageType::Heartbeat;
  heartbeat.from = 2;
  heartbeat.to = 1;
  heartbeat.term = 1;
  host.step(heartbeat);
  host.pump();
  REQUIRE(host.node().leader() == 2);

  kv::Command command;
  command.session_id = 5;
  command.sequence = 1;
  command.body = kv::single(kv::Op::put("/a", "b"));
  net::ClientRequest w;
  w.id = 41;
  w.kind = net::RequestKind::Write;
  w.command = kv::encode_command(command);
  host.request(3, w);
  REQUIRE(out.forwarded.size() == 1);
  CHECK(out.forwarded[0].connection == 3);
  CHECK(out.forwarded[0].request == w);  // the very command bytes: same session and sequence
  CHECK(out.forwarded[0].leader.id == 2);
  CHECK(out.forwarded[0].leader.client_address == "127.0.0.1:12");

  net::ClientRequest ttl;
  ttl.id = 42;
  ttl.kind = net::RequestKind::LeaseTtl;
  ttl.lease = 1;
  host.request(3, ttl);
  CHECK(out.forwarded.size() == 2);

  net::ClientRequest again = w;
  again.id = 43;
  again.forwarded = true;
  host.request(3, again);
  CHECK(out.forwarded.size() == 2);
  REQUIRE(out.responses.size() == 1);
  CHECK(out.responses[0].error == net::ErrorCode::NotLeader);
  REQUIRE(out.responses[0].leader.has_value());
  CHECK(out.responses[0].leader->client_address == "127.0.0.1:12");
}

TEST_CASE("a snapshot request streams the state in chunks while the connection has room") {
  Fixture f;
  f.options.snapshot_chunk_bytes = 100;
  f.options.snapshot_send_queue_bytes_max = 1000;
  auto host = f.open();
  f.elect(*host);
  for (int k = 0; k < 20; ++k) REQUIRE(f.put(*host, fmt::format("/s{}", k), std::string(50, 'v')).ok());
  f.output.queued[3] = 5000;  // the connection is backed up: nothing goes out
  net::ClientRequest request;
  request.id = 900;
  request.kind = net::RequestKind::Snapshot;
  host->request(3, request);
  host->pump();
  auto chunks = [&] {
    std::vector<net::ClientResponse> out;
    for (const auto& [connection, r] : f.output.frames) {
      if (r.id == 900) out.push_back(r);
    }
    return out;
  };
  CHECK(chunks().empty());
  f.output.queued[3] = 0;
  host->pump();
  const std::vector<net::ClientResponse> got = chunks();
  REQUIRE(got.size() > 2);
  std::string bytes;
  for (std::size_t i = 0; i < got.size(); ++i) {
    REQUIRE(got[i].ok());
    CHECK(got[i].offset == bytes.size());
    CHECK(got[i].done == (i + 1 == got.size()));
    CHECK(got[i].revision == 20);
    bytes += got[i].chunk;
  }
  CHECK(bytes.size() == got.back().total_bytes);
  kv::MemoryStorage storage;
  kv::StateMachine restored(storage);
  REQUIRE(restored.restore(bytes).ok());
  CHECK(restored.revision() == 20);
  CHECK(restored.applied_index() == got.back().index);
  CHECK(restored.get("/s7").ok());
}

TEST_CASE("host: membership changes on a one-member cluster, kept in DIR/members across a restart") {
  Fixture f;
  auto host = f.open();
  f.elect(*host);
  auto change = [&](net::RequestKind kind, const std::string& name, const std::string& peer = "", bool learner = false) {
    net::ClientRequest r;
    r.kind = kind;
    r.member_name = name;
    r.peer_address = peer;
    r.learner = learner;
    return f.call(*host, r);
  };
  auto list = [&] {
    net::ClientRequest r;
    r.kind = net::RequestKind::MemberList;
    return f.call(*host, r);
  };
  const net::ClientResponse added = change(net::RequestKind::MemberAdd, "n2", "127.0.0.1:3", true);
  REQUIRE_MESSAGE(added.ok(), added.message);
  CHECK(added.cluster == f.cluster.token);
  REQUIRE(added.members.size() == 1);
  CHECK(added.members[0].id == net::member_id_for_name("n2"));
  CHECK(added.members[0].learner);
  // Every replica dials it now, and it is on disk before the change counts as applied.
  const std::vector<net::MemberConfig> peers = host->peers();
  REQUIRE(peers.size() == 1);
  CHECK(peers[0] == net::MemberConfig{net::member_id_for_name("n2"), "n2", "127.0.0.1:3"});
  const auto saved = net::load_member_table(f.dir);
  REQUIRE(saved.has_value());
  CHECK(saved->size() == 2);

  CHECK(change(net::RequestKind::MemberAdd, "n2", "127.0.0.1:4").error == net::ErrorCode::MemberExists);
  CHECK(change(net::RequestKind::MemberAdd, "n3", "127.0.0.1:3").error == net::ErrorCode::MemberExists);
  CHECK(change(net::RequestKind::MemberPromote, "n1").error == net::ErrorCode::NotLearner);
  CHECK(change(net::RequestKind::MemberPromote, "n9").error == net::ErrorCode::UnknownMember);
  CHECK(change(net::RequestKind::MemberRemove, "n1").error == net::ErrorCode::LastVoter);
  // A hello may not contradict a member: n2's id under another name, or n2's name under another id.
  CHECK_FALSE(host->peer_hello(net::PeerHello{f.cluster.token, net::member_id_for_name("n2"), 1, "n7", "", "127.0.0.1:9"}));
  CHECK_FALSE(host->peer_hello(net::PeerHello{f.cluster.token, 77, 1, "n2", "", "127.0.0.1:9"}));
  CHECK(host->peer_hello(net::PeerHello{f.cluster.token, net::member_id_for_name("n2"), 1, "n2", "127.0.0.1:5", "127.0.0.1:3"}));

  host.reset();
  host = f.open();
  f.elect(*host);
  net::ClientResponse members = list();
  REQUIRE(members.members.size() == 2);
  CHECK(members.members[1].name == "n2");
  CHECK(members.members[1].peer_address == "127.0.0.1:3");
  CHECK(members.members[1].learner);

  const net::ClientResponse removed = change(net::RequestKind::MemberRemove, "n2");
  REQUIRE_MESSAGE(removed.ok(), removed.message);
  CHECK(removed.members.at(0).name == "n2");
  CHECK_FALSE(removed.members.at(0).learner);
  CHECK(host->peers().empty());
  CHECK(net::load_member_table(f.dir)->size() == 1);
  CHECK(list().members.size() == 1);
  CHECK(f.output.fatal_reason.empty());
}

namespace {

using SmallFs = coordtest::TmpfsMount;

bool table_has(const std::string& dir, const std::string& name) {
  const auto table = net::load_member_table(dir);
  return table && std::any_of(table->begin(), table->end(), [&](const net::MemberConfig& m) { return m.name == name; });
}

}  // namespace

TEST_CASE("host: a member table that a hello could not save (no room) holds no applies, the ticks save it once there is room") {
  Fixture f;
  // The data directory on a file system of its own that the test fills; the log and the state
  // on file systems with room, so only DIR/members finds none.
  const std::string dir = f.dir + "/data";
  SmallFs root_fs(dir, std::size_t{1} << 20);
  if (!root_fs.mounted()) {
    MESSAGE("skipped: cannot mount a tmpfs (needs root)");
    return;
  }
  SmallFs raft_fs(dir + "/raft", std::size_t{64} << 20);
  SmallFs kv_fs(dir + "/kv", std::size_t{64} << 20);
  REQUIRE(raft_fs.mounted());
  REQUIRE(kv_fs.mounted());
  f.options.disk_full.reserve_bytes = 0;
  f.options.log_segment_bytes = std::uint64_t{4} << 20;
  f.options.kv_map_bytes = std::size_t{64} << 20;
  const raft::NodeId n2 = net::member_id_for_name("n2");
  const raft::NodeId n3 = net::member_id_for_name("n3");
  auto host = f.open_at(dir);
  f.elect(*host);
  auto add_learner = [&](const std::string& name, const std::string& peer) {
    net::ClientRequest r;
    r.kind = net::RequestKind::MemberAdd;
    r.member_name = name;
    r.peer_address = peer;
    r.learner = true;
    return f.call(*host, r);
  };
  REQUIRE(add_learner("n2", "127.0.0.1:3").ok());
  // Restarted without its table: the configuration (from the log) has n2, the member knows no
  // address for it until n2's hello says it.
  host.reset();
  std::filesystem::remove(dir + "/members");
  host = f.open_at(dir);
  f.elect(*host);
  REQUIRE(host->peers().empty());
  root_fs.fill();
  REQUIRE(host->peer_hello(net::PeerHello{f.cluster.token, n2, 1, "n2", "127.0.0.1:5", "127.0.0.1:3"}));
  REQUIRE(host->peers().size() == 1);  // dialled from now on, saved or not
  CHECK_FALSE(table_has(dir, "n2"));

  // Writes still apply: the unsaved table is not theirs to wait for.
  const raft::Index before = host->state().applied_index();
  for (int k = 0; k < 3; ++k) {
    const net::ClientResponse put = f.put(*host, fmt::format("/a{}", k), "v");
    CHECK_MESSAGE(put.ok(), put.message);
  }
  CHECK(host->state().applied_index() >= before + 3);
  CHECK(f.get(*host, "/a2").ok());

  // A membership change applied from the log still waits for its table: held at the apply
  // while there is no room.
  net::ClientRequest add3;
  add3.kind = net::RequestKind::MemberAdd;
  add3.member_name = "n3";
  add3.peer_address = "127.0.0.1:7";
  add3.learner = true;
  add3.id = f.next_id++;
  host->request(1, add3);
  host->pump();
  const raft::Index change_index = host->node().log().last_index();
  for (int t = 0; t < 30; ++t) {  // the held apply is retried on these ticks, in vain
    host->tick();
    host->pump();
  }
  const raft::Index held_at = host->state().applied_index();
  CHECK(held_at < change_index);
  CHECK_FALSE(table_has(dir, "n3"));
  CHECK((f.output.responses.count(add3.id) == 0 || !f.output.responses[add3.id].ok()));

  // Room again: the ticks save the table (n2 and n3), the held change applies.
  root_fs.free_space();
  for (int t = 0; t < 60 && !(table_has(dir, "n3") && host->state().applied_index() > held_at); ++t) {
    host->tick();
    host->pump();
  }
  CHECK(table_has(dir, "n2"));
  CHECK(table_has(dir, "n3"));
  CHECK(host->state().applied_index() >= change_index);
  std::vector<raft::NodeId> dialled;
  for (const net::MemberConfig& m : host->peers()) dialled.push_back(m.id);
  CHECK(dialled == std::vector<raft::NodeId>{std::min(n2, n3), std::max(n2, n3)});
  CHECK(f.put(*host, "/after", "x").ok());
  CHECK(f.output.fatal_reason.empty());
  host.reset();  // before the file systems unmount
}

// The state machine's LMDB commits without fsync (net/state_sync_marker.h). What a crash can leave
// is copied out of a live data directory (no clean stop runs for the copy) and then damaged the
// way the crash could damage it.
namespace {

std::string make_dir(const std::string& path) {
  std::filesystem::create_directories(path);
  return path;
}

void copy_dir(const std::string& from, const std::string& to) {
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
}

}  // namespace

TEST_CASE("a process crash leaving the state behind the log: the state replays the log from its applied index") {
  Fixture f;
  f.options.snapshot_every_entries = 0;  // the log keeps every entry: replay, not a snapshot
  const std::string stale = f.dir + "/stale";
  const std::string crashed = f.dir + "/crashed";
  {
    auto host = f.open_at(make_dir(f.dir + "/live"));
    f.elect(*host);
    for (int k = 0; k < 6; ++k) REQUIRE(f.put(*host, fmt::format("/k{}", k), fmt::format("v{}", k)).ok());
    copy_dir(f.dir + "/live", stale);  // the state as of 6 writes...
    for (int k = 6; k < 12; ++k) REQUIRE(f.put(*host, fmt::format("/k{}", k), fmt::format("v{}", k)).ok());
    copy_dir(f.dir + "/live", crashed);  // ...and the log as of 12
    CHECK(host->state().applied_index() > 6);
  }
  std::filesystem::remove_all(crashed + "/kv");
  std::filesystem::copy(stale + "/kv", crashed + "/kv");
  auto host = f.open_at(crashed);
  CHECK(f.output.fatal_reason.empty());
  f.elect(*host);
  for (int k = 0; k < 12; ++k) {
    const net::ClientResponse r = f.get(*host, fmt::format("/k{}", k));
    REQUIRE_MESSAGE(r.ok(), r.message);
    CHECK(r.node->value == fmt::format("v{}", k));
  }
  const net::ClientResponse r = f.put(*host, "/after", "x");
  REQUIRE(r.ok());
  CHECK(r.result->revision == 13);  // every write applied exactly once
}

TEST_CASE("a machine crash with unsynced state commits: the torn state file is discarded and rebuilt from the log") {
  Fixture f;
  const std::string crashed = f.dir + "/crashed";
  {
    auto host = f.open_at(make_dir(f.dir + "/live"));
    f.elect(*host);
    for (int k = 0; k < 12; ++k) REQUIRE(f.put(*host, fmt::format("/k{}", k), fmt::format("v{}", k)).ok());
    CHECK(host->node().snapshot_meta().index >= 10);  // rebuilt from the log's snapshot plus entries
    copy_dir(f.dir + "/live", crashed);
  }
  // The live directory stopped cleanly: synced, marker gone.
  CHECK_FALSE(std::filesystem::exists(f.dir + "/live/kv/unsynced"));
  REQUIRE(std::filesystem::exists(crashed + "/kv/unsynced"));
  // Pages the machine never wrote: the file is garbage.
  const auto size = std::filesystem::file_size(crashed + "/kv/data.mdb");
  std::ofstream(crashed + "/kv/data.mdb", std::ios::binary | std::ios::trunc) << std::string(size, '\x5a');

  SUBCASE("the same boot: the file is trusted (a process crash never tears it), so this garbage fails to open") {
    CHECK_THROWS(f.open_at(crashed));
  }
  SUBCASE("another boot: the file is discarded and the state rebuilt from the Raft log") {
    f.set_boot_id("boot-2");
    auto host = f.open_at(crashed);
    CHECK(f.output.fatal_reason.empty());
    CHECK(host->state().applied_index() >= 10);  // the log's snapshot
    host->pump();  // then its entries, up to the durable commit
    // That commit rode with the last entries written (raft/node.cc, ready()): it covers /k10;
    // /k11's commit moved alone, stayed in memory, and is learned again by the election below.
    const net::ClientResponse early = f.get(*host, "/k10", /*serializable=*/true);
    REQUIRE(early.ok());
    CHECK(early.node->value == "v10");
    f.elect(*host);
    for (int k = 0; k < 12; ++k) {
      const net::ClientResponse r = f.get(*host, fmt::format("/k{}", k));
      REQUIRE_MESSAGE(r.ok(), r.message);
      CHECK(r.node->value == fmt::format("v{}", k));
    }
    const net::ClientResponse r = f.put(*host, "/after", "x");
    REQUIRE(r.ok());
    CHECK(r.result->revision == 13);
  }
}

namespace {

std::vector<std::string> snapshot_files_of(const std::string& raft_dir) {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(raft_dir)) {
    if (e.path().filename().string().starts_with("snap-")) files.push_back(e.path().string());
  }
  return files;
}

bool holds_a_good_snapshot(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return kv::parse_snapshot(bytes).status.ok();
}

}  // namespace

TEST_CASE("snapshots are files beside the log, a restart with an intact state serves before checking it, a rebuild checks it first") {
  Fixture f;
  std::string snapshot_path;
  raft::Index snapshot_index = 0;
  {
    auto host = f.open();
    f.elect(*host);
    // Up to a snapshot of the last applied entry, so that a fresh one can be made at its index.
    for (int k = 0; k < 12 || host->node().snapshot_meta().index != host->state().applied_index(); ++k) {
      REQUIRE(k < 30);
      REQUIRE(f.put(*host, fmt::format("/k{}", k), fmt::format("v{}", k)).ok());
    }
    snapshot_index = host->node().snapshot_meta().index;
    REQUIRE(snapshot_index >= 10);
    const auto files = snapshot_files_of(f.dir + "/raft");
    REQUIRE(files.size() == 1);  // older ones removed once replaced
    snapshot_path = files[0];
  }
  // Damage inside the file, its size unchanged: only a full read can tell.
  {
    std::fstream file(snapshot_path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(20);
    file.put('\x7f');
  }
  SUBCASE("a restart on the same boot: the state is intact and serves; the file is checked off the loop, and replaced by a fresh snapshot of the state") {
    f.options.snapshot_in_background = true;
    auto host = f.open();
    CHECK(f.output.fatal_reason.empty());
    const net::ClientResponse early = f.get(*host, "/k11", /*serializable=*/true);
    REQUIRE(early.ok());
    CHECK(early.node->value == "v11");
    for (int t = 0; t < 1000 && std::filesystem::exists(snapshot_path); ++t) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      host->tick();
      host->pump();
    }
    CHECK_MESSAGE(f.output.fatal_reason.empty(), f.output.fatal_reason);
    CHECK_FALSE(host->failed());
    CHECK_FALSE(std::filesystem::exists(snapshot_path));
    const auto files = snapshot_files_of(f.dir + "/raft");
    REQUIRE(files.size() == 1);
    CHECK(holds_a_good_snapshot(files[0]));
  }
  SUBCASE("checked inline (tests): the start goes on, and the file is replaced at its own index from the intact state") {
    f.options.election_tick_advance = false;  // nothing applied before the first tick
    {
      auto host = f.open();
      host->tick();
      host->pump();
      CHECK_MESSAGE(f.output.fatal_reason.empty(), f.output.fatal_reason);
      CHECK(host->node().snapshot_meta().index == snapshot_index);
      CHECK_FALSE(std::filesystem::exists(snapshot_path));
      const auto files = snapshot_files_of(f.dir + "/raft");
      REQUIRE(files.size() == 1);
      CHECK(holds_a_good_snapshot(files[0]));
      snapshot_path = files[0];
      f.elect(*host);
      CHECK(f.get(*host, "/k3").node->value == "v3");
    }
    // The next restart finds the fresh file intact, even when it has to restore from it.
    std::ofstream(f.dir + "/kv/unsynced") << "boot-1\n";
    f.set_boot_id("boot-2");
    auto host = f.open();
    host->tick();
    host->pump();
    CHECK(f.output.fatal_reason.empty());
    CHECK(std::filesystem::exists(snapshot_path));
    CHECK(f.get(*host, "/k3", /*serializable=*/true).node->value == "v3");
  }
  SUBCASE("after a machine crash the state is rebuilt from the file: the damage is found, naming the file") {
    std::ofstream(f.dir + "/kv/unsynced") << "boot-1\n";  // as a crash would have left it
    f.set_boot_id("boot-2");
    try {
      f.open();
      FAIL("a damaged snapshot file was restored from");
    } catch (const std::exception& e) {
      CHECK_MESSAGE(std::string(e.what()).find(snapshot_path) != std::string::npos, e.what());
      CHECK_MESSAGE(std::string(e.what()).find("checksum") != std::string::npos, e.what());
      CHECK_MESSAGE(std::string(e.what()).find("does not hold the data") != std::string::npos, e.what());
    }
  }
}

TEST_CASE("automatic compaction: the leader keeps the last N revisions, compacting in bounded steps") {
  Fixture f;
  f.options.auto_compact_revisions = 10;
  f.options.auto_compact_step_revisions = 4;
  auto host = f.open();
  f.elect(*host);
  for (int k = 0; k < 30; ++k) REQUIRE(f.put(*host, fmt::format("/k{}", k % 3), fmt::format("v{}", k)).ok());
  const kv::Revision revision = host->state().revision();
  REQUIRE(revision >= 30);
  // Each tick proposes at most one step of 4, and only once the previous one applied.
  std::vector<kv::Revision> seen{host->state().compact_revision()};
  for (int t = 0; t < 20; ++t) {
    f.run_for(*host, 100);
    if (host->state().compact_revision() != seen.back()) seen.push_back(host->state().compact_revision());
  }
  CHECK(host->state().compact_revision() == revision - 10);
  for (std::size_t i = 1; i < seen.size(); ++i) CHECK(seen[i] - seen[i - 1] <= 4);
  CHECK(seen.size() >= 5);
  // Below it, history is gone; from it on, it is all there.
  net::ClientRequest old;
  old.kind = net::RequestKind::Get;
  old.path = "/k0";
  old.revision = revision - 11;
  CHECK(f.call(*host, old).error == net::ErrorCode::Compacted);
  old.revision = revision - 10;
  CHECK(f.call(*host, old).ok());
  // No more while fewer than N revisions lie above the compaction point.
  f.run_for(*host, 1000);
  CHECK(host->state().compact_revision() == revision - 10);
}

TEST_CASE("a starting member may campaign about one election timeout sooner (election tick advance)") {
  // The election timeout is randomized in [election_ticks, 2 * election_ticks) ticks.
  const int election_ticks = 10;
  auto ticks_to_lead = [&](bool advance) {
    Fixture f;
    REQUIRE(f.options.raft.election_ticks == election_ticks);
    f.options.election_tick_advance = advance;
    auto host = f.open();
    int ticks = 0;
    while (host->node().role() != raft::Role::Leader && ticks < 100) {
      host->tick();
      host->pump();
      ++ticks;
    }
    return ticks;
  };
  for (int round = 0; round < 5; ++round) {
    CHECK(ticks_to_lead(true) <= election_ticks + 1);
    CHECK(ticks_to_lead(false) >= election_ticks);
  }
}

TEST_CASE("automatic compaction off: history is kept") {
  Fixture f;
  f.options.auto_compact_revisions = 0;
  auto host = f.open();
  f.elect(*host);
  for (int k = 0; k < 30; ++k) REQUIRE(f.put(*host, "/k", fmt::format("v{}", k)).ok());
  f.run_for(*host, 2000);
  CHECK(host->state().compact_revision() == 0);
}

TEST_CASE("kv_sync: every state commit is synced and no marker is left") {
  Fixture f;
  f.options.kv_sync = true;
  auto host = f.open();
  f.elect(*host);
  REQUIRE(f.put(*host, "/a", "1").ok());
  CHECK_FALSE(std::filesystem::exists(f.dir + "/kv/unsynced"));
}

TEST_CASE("snapshots are serialized off the loop thread and spaced by the log bytes written since the last") {
  Fixture f;
  f.options.snapshot_in_background = true;
  f.options.snapshot_log_ratio = 1.0;
  auto host = f.open();
  f.elect(*host);
  // Ticks pick up what the worker finished; bounded wait.
  auto snapshot_after = [&](raft::Index index) {
    for (int t = 0; t < 500 && host->node().snapshot_meta().index <= index; ++t) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      host->tick();
      host->pump();
    }
    return host->node().snapshot_meta().index > index;
  };
  for (int k = 0; k < 6; ++k) REQUIRE(f.put(*host, fmt::format("/k{}", k), std::string(4096, 'k')).ok());
  REQUIRE(snapshot_after(0));  // the first one waits for entries only
  const raft::Index first = host->node().snapshot_meta().index;
  CHECK(f.output.fatal_reason.empty());
  // Entries enough, bytes not: these few small writes weigh far less than the snapshot.
  for (int k = 0; k < 12; ++k) REQUIRE(f.put(*host, fmt::format("/s{}", k), "v").ok());
  CHECK_FALSE(snapshot_after(first));
  // One large write tips it.
  REQUIRE(f.put(*host, "/big", std::string(64 * 1024, 'b')).ok());
  REQUIRE(f.put(*host, "/after-big", "v").ok());
  CHECK(snapshot_after(first));
  // The state read back is whole.
  const net::ClientResponse big = f.get(*host, "/big");
  REQUIRE(big.ok());
  CHECK(big.node->value.size() == 64 * 1024);
}

TEST_CASE("snapshot saves are serialized off the loop, a request made while one is being serialized gets a newer one") {
  Fixture f;
  f.options.snapshot_in_background = true;
  f.options.snapshot_transfers_max = 3;
  auto host = f.open();
  f.elect(*host);
  for (int k = 0; k < 10; ++k) REQUIRE(f.put(*host, fmt::format("/a{}", k), "v").ok());
  net::ClientRequest first;
  first.id = 901;
  first.kind = net::RequestKind::Snapshot;
  host->request(3, first);
  // Acknowledged after the first request: the second one's snapshot must hold it.
  REQUIRE(f.put(*host, "/after-first", "v").ok());
  net::ClientRequest second = first;
  second.id = 902;
  host->request(4, second);
  auto stream_of = [&](std::uint64_t id) {
    std::string bytes;
    const net::ClientResponse* last = nullptr;
    for (const auto& frame : f.output.frames) {
      if (frame.second.id != id) continue;
      bytes += frame.second.chunk;
      last = &frame.second;
    }
    return std::make_pair(bytes, last ? std::optional<net::ClientResponse>(*last) : std::nullopt);
  };
  auto finished = [&](std::uint64_t id) {
    auto s = stream_of(id);
    return s.second.has_value() && (s.second->done || !s.second->ok());
  };
  // Ticks pick up what the worker finished; bounded wait.
  for (int t = 0; t < 1000 && !(finished(901) && finished(902)); ++t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    host->tick();
    host->pump();
  }
  REQUIRE(finished(901));
  REQUIRE(finished(902));
  auto restore = [](const std::string& bytes, kv::MemoryStorage& storage) {
    auto sm = std::make_unique<kv::StateMachine>(storage);
    REQUIRE(sm->restore(bytes).ok());
    return sm;
  };
  kv::MemoryStorage s1, s2;
  const auto [bytes1, last1] = stream_of(901);
  const auto [bytes2, last2] = stream_of(902);
  REQUIRE(last1->ok());
  REQUIRE(last2->ok());
  const auto one = restore(bytes1, s1);
  const auto two = restore(bytes2, s2);
  CHECK(one->revision() >= 10);
  CHECK(one->get("/a9").ok());
  CHECK(two->get("/after-first").ok());
  CHECK(two->revision() == 11);
  CHECK(f.output.fatal_reason.empty());
}

TEST_CASE("the room a log write needs: a snapshot already written as a file of the log's directory is not counted again") {
  Fixture f;
  const std::string raft_dir = f.dir + "/raft";
  std::filesystem::create_directories(raft_dir);
  const std::string bytes(100'000, 's');
  raft::Ready ready;
  ready.entries.push_back(raft::Entry{1, 11, raft::EntryType::Normal, std::string(1000, 'e')});
  const std::uint64_t entries_only = net::log_write_bytes(ready, raft_dir);
  CHECK(entries_only >= 1000);
  CHECK(entries_only < 2000);
  // Bytes in memory (a snapshot received whole) are written by this write: counted.
  ready.snapshot = raft::Snapshot{raft::SnapshotMeta{10, 1, {{1}, {}}}, raft::snapshot_bytes(bytes)};
  CHECK(net::log_write_bytes(ready, raft_dir) == entries_only + bytes.size());
  // A follower's received file is on disk already, chunk by chunk: recording it adds a record.
  storage::SnapshotFileWriter writer(raft_dir, 10);
  writer.append(bytes);
  ready.snapshot->data = storage::SnapshotFile::open(raft_dir, writer.finish(/*sync=*/false), /*durable=*/false);
  CHECK(net::log_write_bytes(ready, raft_dir) == entries_only);
  // A file of another directory would be copied: counted.
  CHECK(net::log_write_bytes(ready, f.dir + "/elsewhere") == entries_only + bytes.size());
}
