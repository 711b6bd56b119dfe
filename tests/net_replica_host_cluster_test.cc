// Three replica hosts in one process, without sockets: the test routes their Raft messages
// itself, over "connections" it opens and cuts, with the log writes run inline. It covers what
// one host alone cannot show: snapshot files travelling from a leader to a lagging follower
// (damaged ones refused by the follower, held back by a leader that has not checked its file,
// replaced by a fresh snapshot of an intact state), and the initial election tick advance
// waiting for the connections that carry a running leader's heartbeats.
#include <fmt/format.h>
#include <doctest/doctest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "kv/codec.h"
#include "kv/snapshot.h"
#include "net/cluster_config.h"
#include "net/replica_host.h"
#include "storage/snapshot_file.h"

namespace {

using namespace coord;

// A deterministic source for the core's randomized election timeouts.
class SeededRandom final : public raft::Random {
 public:
  explicit SeededRandom(std::uint64_t seed) : state_(seed * 2 + 1) {}
  std::uint64_t below(std::uint64_t bound) override {
    state_ = state_ * 6364136223846793005ull + 1442695040888963407ull;
    return (state_ >> 33) % bound;
  }

 private:
  std::uint64_t state_;
};

class Outbox final : public net::HostOutput {
 public:
  void send(const raft::Message& message) override { sent.push_back(message); }
  void respond(net::ConnectionId, const net::ClientResponse& response) override {
    responses[response.id] = response;
  }
  void fatal(const std::string& reason) override { fatal_reason = reason; }

  std::vector<raft::Message> sent;
  std::map<std::uint64_t, net::ClientResponse> responses;
  std::string fatal_reason;
};

std::vector<std::string> snapshot_files(const std::string& raft_dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(raft_dir)) {
    const std::string name = e.path().filename().string();
    if (storage::is_snapshot_file_name(name)) out.push_back(name);
  }
  return out;
}

// Flips one byte in the middle of a file, its size unchanged: only a full read can tell. A
// host that has the file mapped sees the damage too (a shared mapping of the page cache).
void damage(const std::string& path) {
  const auto size = std::filesystem::file_size(path);
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(static_cast<std::streamoff>(size / 2));
  const char c = static_cast<char>(file.get());
  file.seekp(static_cast<std::streamoff>(size / 2));
  file.put(static_cast<char>(c ^ 0x5a));
}

struct Cluster {
  explicit Cluster(std::uint64_t seed = 1, const std::string& spec = "n1=127.0.0.1:1,n2=127.0.0.1:3,n3=127.0.0.1:5")
      : random(seed) {
    spdlog::set_level(spdlog::level::off);  // role changes and refused snapshots are expected here
    char tmpl[] = "/tmp/coord-hosts-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    root = tmpl;
    std::string error;
    cluster = *net::parse_initial_cluster(spec, "", &error);
    options.snapshot_every_entries = 5;
    options.snapshot_log_ratio = 0;
    options.snapshot_in_background = false;
    options.election_tick_advance = false;
    options.auto_compact_revisions = 0;
    options.raft.snapshot_chunk_bytes_max = 256;  // a snapshot travels in several chunks
    options.boot_id_path = root + "/boot_id";
    std::ofstream(options.boot_id_path) << "boot-1\n";
    members.resize(cluster.members.size());
    for (std::size_t i = 0; i < members.size(); ++i) {
      members[i].dir = fmt::format("{}/{}", root, cluster.members[i].name);
      std::filesystem::create_directories(members[i].dir);
    }
  }
  ~Cluster() {
    for (auto& m : members) m.host.reset();
    std::filesystem::remove_all(root);
  }

  struct Member {
    std::string dir;
    Outbox out;
    std::unique_ptr<net::ReplicaHost> host;
  };

  raft::NodeId id(std::size_t i) const { return cluster.members[i].id; }
  std::size_t index_of(raft::NodeId id) const {
    for (std::size_t i = 0; i < cluster.members.size(); ++i) {
      if (cluster.members[i].id == id) return i;
    }
    FAIL("unknown member id");
    return 0;
  }
  net::ReplicaHost& host(std::size_t i) { return *members[i].host; }

  void open(std::size_t i) {
    members[i].out = Outbox{};
    members[i].host = std::make_unique<net::ReplicaHost>(options, cluster, cluster.members[i], "127.0.0.1:9",
                                                         members[i].dir, random, members[i].out, disk);
  }
  void close(std::size_t i) {
    members[i].host.reset();
    for (std::size_t j = 0; j < members.size(); ++j) {
      links.erase({i, j});
      links.erase({j, i});
    }
  }
  // `from` dialed `to` and said hello: its messages reach `to` from now on.
  void connect(std::size_t from, std::size_t to) {
    if (links.count({from, to}) != 0 || !members[from].host || !members[to].host) return;
    links.insert({from, to});
    net::PeerHello hello;
    hello.cluster = cluster.token;
    hello.from = id(from);
    hello.to = id(to);
    hello.name = cluster.members[from].name;
    hello.client_address = "127.0.0.1:9";
    hello.peer_address = cluster.members[from].peer_address;
    REQUIRE(host(to).peer_hello(hello));
  }
  void connect_all() {
    for (std::size_t a = 0; a < members.size(); ++a) {
      for (std::size_t b = 0; b < members.size(); ++b) {
        if (a != b) connect(a, b);
      }
    }
  }
  void cut(std::size_t i) {
    for (std::size_t j = 0; j < members.size(); ++j) {
      links.erase({i, j});
      links.erase({j, i});
    }
  }

  // Delivers what the hosts sent over the links that are up, until nothing moves; what has no
  // link is lost, as on a broken connection.
  void deliver() {
    for (int round = 0; round < 1000; ++round) {
      bool moved = false;
      for (std::size_t i = 0; i < members.size(); ++i) {
        if (!members[i].host) continue;
        std::vector<raft::Message> sent = std::move(members[i].out.sent);
        members[i].out.sent.clear();
        for (raft::Message& m : sent) {
          if (on_send) on_send(i, m);
          const std::size_t to = index_of(m.to);
          if (links.count({i, to}) == 0 || !members[to].host) continue;
          if (in_transit) in_transit(i, m);
          members[to].host->step(m);
          members[to].host->pump();
          moved = true;
        }
      }
      if (!moved) return;
    }
    FAIL("messages kept flowing");
  }
  void tick(int ticks = 1) {
    for (int t = 0; t < ticks; ++t) {
      ++tick_count;
      for (auto& m : members) {
        if (!m.host) continue;
        m.host->tick();
        m.host->pump();
      }
      deliver();
    }
  }
  std::optional<std::size_t> leader() {
    for (std::size_t i = 0; i < members.size(); ++i) {
      if (members[i].host && host(i).node().role() == raft::Role::Leader) return i;
    }
    return std::nullopt;
  }
  std::size_t elect() {
    for (int t = 0; t < 200 && !leader(); ++t) tick();
    REQUIRE(leader());
    tick(3);  // its first entry commits everywhere it can
    return *leader();
  }
  net::ClientResponse put(std::size_t at, const std::string& path, const std::string& value) {
    kv::Command command;
    command.session_id = 7;
    command.sequence = next_sequence++;
    command.body = kv::single(kv::Op::put(path, value));
    net::ClientRequest r;
    r.kind = net::RequestKind::Write;
    r.id = next_id++;
    r.command = kv::encode_command(command);
    host(at).request(1, r);
    host(at).pump();
    for (int t = 0; t < 50 && members[at].out.responses.count(r.id) == 0; ++t) {
      deliver();
      if (members[at].out.responses.count(r.id) == 0) tick();
    }
    REQUIRE(members[at].out.responses.count(r.id) == 1);
    return members[at].out.responses[r.id];
  }
  std::string snapshot_path(std::size_t i) {
    const auto files = snapshot_files(members[i].dir + "/raft");
    REQUIRE(files.size() == 1);
    return members[i].dir + "/raft/" + files[0];
  }

  std::string root;
  net::ClusterConfig cluster;
  net::HostOptions options;
  SeededRandom random;
  net::InlineExecutor disk;
  std::vector<Member> members;
  std::set<std::pair<std::size_t, std::size_t>> links;
  std::function<void(std::size_t from, const raft::Message&)> on_send;
  // Changes a message on its way (after on_send saw it as sent).
  std::function<void(std::size_t from, raft::Message&)> in_transit;
  std::uint64_t next_id = 1;
  std::uint64_t next_sequence = 1;
  int tick_count = 0;
};

// A running cluster whose leader compacted its log behind a snapshot while `lagging` was cut
// off: `lagging` can only catch up from that snapshot.
struct Lagging {
  explicit Lagging(Cluster& c) {
    for (std::size_t i = 0; i < 3; ++i) c.open(i);
    c.connect_all();
    leader = c.elect();
    lagging = (leader + 1) % 3;
    c.cut(lagging);
    for (int k = 0; k < 12; ++k) REQUIRE(c.put(leader, fmt::format("/k{}", k), fmt::format("v{}", k)).ok());
    REQUIRE(c.host(leader).node().snapshot_meta().index > c.host(lagging).node().log().last_index());
    lagging_snapshot_index = c.host(lagging).node().snapshot_meta().index;
  }
  std::size_t leader = 0;
  std::size_t lagging = 0;
  raft::Index lagging_snapshot_index = 0;
};

// The member's one snapshot file holds a well-formed kv snapshot (format, order, checksum).
void check_snapshot_file_intact(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const kv::ParsedSnapshot parsed = kv::parse_snapshot(bytes);
  CHECK_MESSAGE(parsed.status.ok(), path, ": ", parsed.status.message);
}

std::size_t other_than(std::size_t a, std::size_t b) {
  for (std::size_t i = 0; i < 3; ++i) {
    if (i != a && i != b) return i;
  }
  return 0;
}

}  // namespace

TEST_CASE("a damaged snapshot from the leader is refused whole: the follower keeps its log, and the leader, told, replaces its file") {
  Cluster c;
  Lagging lag(c);
  // Damaged at rest after the leader wrote (and checksummed) it: the leader does not know.
  const std::string damaged = c.snapshot_path(lag.leader);
  damage(damaged);
  std::uint64_t chunks = 0, refusals = 0;
  std::string follower_failure;
  c.on_send = [&](std::size_t from, const raft::Message& m) {
    if (from == lag.leader && m.type == raft::MessageType::Snapshot) ++chunks;
    if (from == lag.lagging && m.type == raft::MessageType::SnapshotResp && m.reject && m.snapshot_offset == 0) {
      ++refusals;  // it holds nothing of what it was sent
      // Until the leader repaired its file, the follower's log is as it was.
      if (c.host(lag.lagging).node().snapshot_meta().index != lag.lagging_snapshot_index) {
        follower_failure = "the follower recorded a snapshot it then disowned";
      }
    }
  };
  c.connect_all();
  c.tick(100);
  CHECK(chunks > 0);
  CHECK(refusals > 0);
  CHECK_MESSAGE(follower_failure.empty(), follower_failure);
  // The follower refused the damaged bytes before recording anything: it never failed (a
  // restore from them would have), and no refused file lingers.
  CHECK_MESSAGE(c.members[lag.lagging].out.fatal_reason.empty(), c.members[lag.lagging].out.fatal_reason);
  CHECK_FALSE(c.host(lag.lagging).failed());
  // Told so, the leader checked its file again, found the damage and wrote a fresh snapshot of
  // its intact state; the follower caught up from that one.
  CHECK_FALSE(c.host(lag.leader).failed());
  CHECK_FALSE(std::filesystem::exists(damaged));
  check_snapshot_file_intact(c.snapshot_path(lag.leader));
  CHECK(c.host(lag.lagging).state().applied_index() == c.host(lag.leader).state().applied_index());
  CHECK(c.host(lag.lagging).state().revision() == c.host(lag.leader).state().revision());
  check_snapshot_file_intact(c.snapshot_path(lag.lagging));  // its one file: the recorded one
  CHECK(c.put(lag.leader, "/after", "x").ok());
}

TEST_CASE("a restarted leader sends no chunk of its snapshot file before its check passed, a damaged one is replaced from the intact state") {
  Cluster c;
  Lagging lag(c);
  const std::size_t other = other_than(lag.leader, lag.lagging);
  for (std::size_t i = 0; i < 3; ++i) c.close(i);
  // Both members that can lead have a damaged file and an intact state.
  const std::string damaged_leader = c.snapshot_path(lag.leader);
  const std::string damaged_other = c.snapshot_path(other);
  damage(damaged_leader);
  damage(damaged_other);
  c.options.snapshot_check_after_ticks = 80;  // the checks are slow to finish
  const int opened_at = c.tick_count;
  c.open(lag.leader);
  c.open(other);
  c.connect_all();
  const std::size_t leader = c.elect();
  c.open(lag.lagging);
  c.connect_all();
  std::uint64_t chunks = 0;
  c.on_send = [&](std::size_t, const raft::Message& m) {
    if (m.type == raft::MessageType::Snapshot) ++chunks;
  };
  // Until the checks ran, the lagging member gets nothing from the unchecked file.
  while (c.tick_count - opened_at < 75) c.tick();
  CHECK(chunks == 0);
  CHECK(c.host(lag.lagging).node().snapshot_meta().index == lag.lagging_snapshot_index);
  // The checks find the damage; the states are intact, so each member writes a fresh snapshot
  // instead of stopping, and the lagging member catches up from the leader's.
  c.tick(80);
  for (std::size_t i = 0; i < 3; ++i) {
    CAPTURE(i);
    CHECK_MESSAGE(c.members[i].out.fatal_reason.empty(), c.members[i].out.fatal_reason);
    CHECK_FALSE(c.host(i).failed());
  }
  CHECK(chunks > 0);
  CHECK_FALSE(std::filesystem::exists(damaged_leader));
  CHECK_FALSE(std::filesystem::exists(damaged_other));
  check_snapshot_file_intact(c.snapshot_path(lag.leader));
  check_snapshot_file_intact(c.snapshot_path(other));
  CHECK(c.host(lag.lagging).state().applied_index() == c.host(leader).state().applied_index());
  CHECK(c.host(lag.lagging).state().revision() == c.host(leader).state().revision());
  CHECK(c.put(leader, "/after", "x").ok());
}

TEST_CASE("two followers restarting together do not depose a running leader (initial election tick advance)") {
  // Longer election timeouts, for room between the ticks: [20, 40) ticks.
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    CAPTURE(seed);
    Cluster c(seed);
    c.options.raft.election_ticks = 20;
    for (std::size_t i = 0; i < 3; ++i) c.open(i);
    c.connect_all();
    const std::size_t leader = c.elect();
    const raft::Term term = c.host(leader).node().term();
    const std::size_t f1 = (leader + 1) % 3, f2 = (leader + 2) % 3;
    c.close(f1);
    c.close(f2);
    c.options.election_tick_advance = true;
    c.open(f1);
    c.open(f2);
    // The followers dial each other and the leader at once; the leader's own dials (which carry
    // its heartbeats to them) come back only after its reconnect backoff: 14 ticks, well within
    // its check-quorum period, so it has no reason to step down.
    c.connect(f1, f2);
    c.connect(f2, f1);
    c.connect(f1, leader);
    c.connect(f2, leader);
    c.tick(14);
    c.connect(leader, f1);
    c.connect(leader, f2);
    c.tick(60);
    CHECK(c.leader() == leader);
    CHECK(c.host(leader).node().term() == term);
    CHECK(c.host(f1).node().term() == term);
    CHECK(c.host(f2).node().term() == term);
    CHECK(c.put(leader, "/still", "leading").ok());
  }
}

TEST_CASE("a cluster restarted as a whole still elects about one election timeout sooner, not with one peer of two connected") {
  // [20, 40) ticks without the advance.
  auto ticks_to_leader = [](std::uint64_t seed, bool all) {
    Cluster c(seed);
    c.options.raft.election_ticks = 20;
    for (std::size_t i = 0; i < 3; ++i) c.open(i);
    c.connect_all();
    c.elect();
    for (std::size_t i = 0; i < 3; ++i) c.close(i);
    c.options.election_tick_advance = true;
    c.open(0);
    c.open(1);
    if (all) c.open(2);
    c.connect_all();  // with n3 down, n1 and n2 hear from one peer each: a quorum, but not two peers
    int ticks = 0;
    while (!c.leader() && ticks < 200) {
      c.tick();
      ++ticks;
    }
    return ticks;
  };
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    CAPTURE(seed);
    CHECK(ticks_to_leader(seed, true) < 20);
    CHECK(ticks_to_leader(seed, false) >= 20);
  }
}

namespace {

// Damages the last chunk of every snapshot transfer from `from` to `to` on its way (its
// trailer): the follower's check refuses the whole file, as one that cannot read the leader's
// format would, while the leader's file stays intact.
void refuse_snapshots(Cluster& c, std::size_t from, std::size_t to, const bool* refusing) {
  c.in_transit = [&c, from, to, refusing](std::size_t sender, raft::Message& m) {
    if (*refusing && sender == from && m.to == c.id(to) && m.type == raft::MessageType::Snapshot &&
        m.snapshot_done && !m.snapshot_chunk.empty()) {
      m.snapshot_chunk.back() = static_cast<char>(m.snapshot_chunk.back() ^ 0x5a);
    }
  };
}

void connect_member(Cluster& c, std::size_t i) {
  for (std::size_t j = 0; j < c.members.size(); ++j) {
    if (j == i) continue;
    c.connect(i, j);
    c.connect(j, i);
  }
}

std::string ticks_text(const std::vector<int>& ticks) {
  std::string out;
  for (int t : ticks) out += fmt::format("{} ", t);
  return out;
}

bool caught_up(Cluster& c, std::size_t follower, std::size_t leader) {
  return c.host(follower).state().applied_index() == c.host(leader).state().applied_index();
}

}  // namespace

TEST_CASE("a follower that keeps refusing an intact snapshot gets it less and less often, and at once again after it took one") {
  Cluster c;
  Lagging lag(c);
  const int election = c.options.raft.election_ticks;
  const std::string leader_file = c.snapshot_path(lag.leader);
  bool refusing = true;
  refuse_snapshots(c, lag.leader, lag.lagging, &refusing);
  std::vector<int> starts;  // ticks at which a whole transfer to the lagging member began
  c.on_send = [&](std::size_t from, const raft::Message& m) {
    if (from == lag.leader && m.to == c.id(lag.lagging) && m.type == raft::MessageType::Snapshot &&
        m.snapshot_offset == 0) {
      starts.push_back(c.tick_count);
    }
  };
  c.connect_all();
  c.tick(60 * election);
  // Without a backoff the whole file goes out about once per election timeout (about 60 times
  // here); with it the interval doubles: 1, 2, 4, 8, 16, 32 election timeouts.
  INFO("transfers began at ticks ", ticks_text(starts));
  REQUIRE(starts.size() >= 4);
  CHECK(starts.size() <= 7);
  for (std::size_t k = 2; k < starts.size(); ++k) {
    CAPTURE(k);
    CHECK(starts[k] - starts[k - 1] >= starts[k - 1] - starts[k - 2]);
  }
  CHECK(starts.back() - starts[starts.size() - 2] >= 8 * election);
  // The follower recorded nothing; the leader's file, checked again, was intact and kept.
  CHECK(c.host(lag.lagging).node().snapshot_meta().index == lag.lagging_snapshot_index);
  CHECK(c.snapshot_path(lag.leader) == leader_file);
  CHECK_FALSE(c.host(lag.leader).failed());
  CHECK_FALSE(c.host(lag.lagging).failed());

  // Once it can take the file, it does at the end of its current wait (at most the cap).
  refusing = false;
  for (int t = 0; t < 40 * election && !caught_up(c, lag.lagging, lag.leader); ++t) c.tick();
  REQUIRE(caught_up(c, lag.lagging, lag.leader));

  // It took a snapshot: its backoff starts over. Lagging again and refusing again, it gets the
  // whole file again at once after its first refusal, not after the long wait it had reached.
  c.cut(lag.lagging);
  for (int k = 0; k < 12; ++k) REQUIRE(c.put(lag.leader, fmt::format("/again{}", k), "v").ok());
  REQUIRE(c.host(lag.leader).node().snapshot_meta().index > c.host(lag.lagging).node().log().last_index());
  refusing = true;
  starts.clear();
  c.connect_all();
  c.tick(6 * election);
  INFO("transfers began again at ticks ", ticks_text(starts));
  // At 0, 2 and 4 election timeouts: the first refusal waits only for the re-check of the
  // leader's file it starts (one tick here; then the core's idle timeout), the second one more.
  REQUIRE(starts.size() >= 3);
  CHECK(starts[1] - starts[0] <= 2 * election + 2);
}

TEST_CASE("one follower refusing snapshots delays no other: the re-check of the leader's file holds back only its chunks") {
  Cluster c(1, "n1=127.0.0.1:1,n2=127.0.0.1:3,n3=127.0.0.1:5,n4=127.0.0.1:7,n5=127.0.0.1:9");
  c.options.snapshot_recheck_result_after_ticks = 1000;  // the re-check of the leader's file is slow
  for (std::size_t i = 0; i < c.members.size(); ++i) c.open(i);
  c.connect_all();
  const std::size_t leader = c.elect();
  const std::size_t refuser = (leader + 1) % 5;
  const std::size_t other = (leader + 2) % 5;
  c.cut(refuser);
  c.cut(other);
  for (int k = 0; k < 12; ++k) REQUIRE(c.put(leader, fmt::format("/k{}", k), "v").ok());
  REQUIRE(c.host(leader).node().snapshot_meta().index > c.host(refuser).node().log().last_index());
  REQUIRE(c.host(leader).node().snapshot_meta().index > c.host(other).node().log().last_index());
  bool refusing = true;
  refuse_snapshots(c, leader, refuser, &refusing);
  std::optional<int> refused_at;
  int chunks_to_refuser_after = 0;
  c.on_send = [&](std::size_t from, const raft::Message& m) {
    if (from == refuser && m.type == raft::MessageType::SnapshotResp && m.reject && m.snapshot_offset == 0 &&
        !refused_at) {
      refused_at = c.tick_count;
    }
    if (from == leader && m.to == c.id(refuser) && m.type == raft::MessageType::Snapshot && refused_at &&
        c.tick_count > *refused_at) {
      ++chunks_to_refuser_after;
    }
  };
  connect_member(c, refuser);
  for (int t = 0; t < 5 * c.options.raft.election_ticks && !refused_at; ++t) c.tick();
  REQUIRE(refused_at);  // and the leader began checking its file again
  // The other lagging member needs the same snapshot now: it gets it while the check runs.
  connect_member(c, other);
  const int connected_at = c.tick_count;
  for (int t = 0; t < 100 && !caught_up(c, other, leader); ++t) c.tick();
  CHECK(caught_up(c, other, leader));
  CHECK(c.tick_count - connected_at <= 3 * c.options.raft.election_ticks);
  // The refusing member got nothing meanwhile: it waits for the check.
  CHECK(chunks_to_refuser_after == 0);
  CHECK(c.host(refuser).node().snapshot_meta().index < c.host(leader).node().snapshot_meta().index);
}

TEST_CASE("a follower that keeps refusing a snapshot sent in one chunk gets it less and less often too") {
  // A refused single chunk gets no answer at all (there is no later chunk to answer "I hold
  // nothing" to): the core's resend after its idle timeout is the refusal.
  Cluster c;
  c.options.raft.snapshot_chunk_bytes_max = std::size_t{1} << 20;
  Lagging lag(c);
  const int election = c.options.raft.election_ticks;
  bool refusing = true;
  refuse_snapshots(c, lag.leader, lag.lagging, &refusing);
  std::vector<int> sends;
  c.on_send = [&](std::size_t from, const raft::Message& m) {
    if (from == lag.leader && m.to == c.id(lag.lagging) && m.type == raft::MessageType::Snapshot) {
      CHECK((m.snapshot_offset == 0 && m.snapshot_done));  // the whole snapshot in one chunk
      sends.push_back(c.tick_count);
    }
  };
  c.connect_all();
  c.tick(60 * election);
  INFO("the chunk went out at ticks ", ticks_text(sends));
  REQUIRE(sends.size() >= 4);
  CHECK(sends.size() <= 7);  // without the backoff: about 60
  for (std::size_t k = 2; k < sends.size(); ++k) {
    CAPTURE(k);
    CHECK(sends[k] - sends[k - 1] >= sends[k - 1] - sends[k - 2]);
  }
  CHECK(sends.back() - sends[sends.size() - 2] >= 8 * election);
  CHECK(c.host(lag.lagging).node().snapshot_meta().index == lag.lagging_snapshot_index);
  refusing = false;
  for (int t = 0; t < 40 * election && !caught_up(c, lag.lagging, lag.leader); ++t) c.tick();
  CHECK(caught_up(c, lag.lagging, lag.leader));
}
