// End-to-end full disk: one member's data directory is a small tmpfs that the test fills with a
// filler file. A leader with the full disk answers writes with no-space (107) at once, keeps
// serving serializable reads, and the others elect a leader and go on taking writes; a follower
// with the full disk falls behind while the cluster goes on. When the filler is removed the
// member recovers by itself (same process, no restart) and catches up; every acknowledged write
// is still there. Real coordd processes on 127.0.0.1; mounting needs root.
#include <fmt/format.h>
#include <doctest/doctest.h>
#include <sys/mount.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "e2e_cluster.h"
#include "kv/codec.h"
#include "kv/command.h"
#include "net/disk_full.h"
#include "net/member_table.h"
#include "tmpfs_mount.h"

namespace {

using namespace coord;
using namespace std::chrono_literals;
using e2e::Cluster;
using e2e::eventually;

constexpr std::uint64_t kReserveMb = 8;
const std::vector<std::string> kArgs{"--tick-ms", "50", "--election-ticks", "10", "--log-level", "debug",
                                     "--disk-reserve-mb", std::to_string(kReserveMb),
                                     // Segments small enough to be moved onto the tests' small file systems.
                                     "--log-segment-mb", "4"};

using SmallDataDir = coordtest::TmpfsMount;  // a member's data directory on a tmpfs of its own

kv::Body put_body(const std::string& path, const std::string& value) {
  kv::Op op = kv::Op::put(path, value);
  op.parents = true;
  return kv::single(std::move(op));
}

// One write to one member, no retries: its own answer.
net::ClientResponse write_at(const Cluster& cluster, int member, const std::string& path, const std::string& value) {
  kv::Command command;
  command.body = put_body(path, value);
  net::ClientRequest request;
  request.kind = net::RequestKind::Write;
  request.command = kv::encode_command(command);
  net::Client c = cluster.client_of(member, 3s);
  return c.call_endpoint(cluster.client_address(member), request);
}

net::ClientResponse read_at(const Cluster& cluster, int member, const std::string& path, bool serializable) {
  net::ClientRequest request;
  request.kind = net::RequestKind::Get;
  request.path = path;
  request.serializable = serializable;
  net::Client c = cluster.client_of(member, 3s);
  return c.call_endpoint(cluster.client_address(member), request);
}

std::vector<int> all_but(const Cluster& cluster, int excluded) {
  std::vector<int> out;
  for (int i = 0; i < cluster.size(); ++i) {
    if (i != excluded) out.push_back(i);
  }
  return out;
}

net::ClientOptions options_of(const Cluster& cluster, const std::vector<int>& members) {
  net::ClientOptions o;
  for (int i : members) o.endpoints.push_back(cluster.client_address(i));
  o.timeout = 15s;
  return o;
}

bool holds(const Cluster& cluster, int member, const std::string& path, const std::string& value, bool serializable) {
  const net::ClientResponse r = read_at(cluster, member, path, serializable);
  return r.ok() && r.node && r.node->value == value;
}

// Moves a stopped member's directory `dir` onto a small tmpfs of its own, contents included.
std::unique_ptr<SmallDataDir> move_onto_own_fs(const std::string& dir, std::size_t bytes) {
  const std::string aside = dir + ".aside";
  std::filesystem::rename(dir, aside);
  auto fs = std::make_unique<SmallDataDir>(dir, bytes);
  REQUIRE_MESSAGE(fs->mounted(), fs->error());
  for (const auto& entry : std::filesystem::directory_iterator(aside)) {
    std::filesystem::copy(entry.path(), dir + "/" + entry.path().filename().string(),
                          std::filesystem::copy_options::recursive);
  }
  std::filesystem::remove_all(aside);
  return fs;
}

struct Setup {
  Cluster cluster{3, kArgs};
  std::vector<std::unique_ptr<SmallDataDir>> dirs;
  bool mounted = true;
  std::string error;

  Setup() {
    for (int i = 0; i < cluster.size(); ++i) {
      dirs.push_back(std::make_unique<SmallDataDir>(cluster.data_dir(i), std::size_t{96} << 20));
      if (!dirs.back()->mounted()) {
        mounted = false;
        error = dirs.back()->error();
      }
    }
  }
  // Starts the members and waits for a leader they agree on; nullopt (and a message) when the
  // tmpfs could not be mounted, so the case is skipped.
  std::optional<int> start_or_skip() {
    if (!mounted) {
      MESSAGE("SKIPPED: cannot mount a tmpfs (needs root): ", error);
      return std::nullopt;
    }
    return start();
  }
  std::optional<int> start() {
    REQUIRE_MESSAGE(cluster.start_all(), cluster.all_logs());
    std::optional<int> leader;
    REQUIRE_MESSAGE(eventually(15s, [&] { return (leader = cluster.agreed_leader({0, 1, 2})).has_value(); }),
                    cluster.all_logs());
    return leader;
  }
  ~Setup() {
    for (int i = 0; i < cluster.size(); ++i) {
      if (cluster.running(i)) cluster.stop(i);
    }
  }
};

}  // namespace

TEST_CASE("e2e disk full: a leader with a full disk refuses writes with no-space, reads go on, and it recovers by itself") {
  Setup s;
  const std::optional<int> leader = s.start_or_skip();
  if (!leader) return;
  Cluster& cluster = s.cluster;
  const int full = *leader;
  const pid_t full_pid = cluster.process(full).pid();
  std::map<std::string, std::string> acknowledged;
  {
    net::Client writer(cluster.options(15s));
    for (int k = 0; k < 20; ++k) {
      const std::string path = fmt::format("/before/{}", k), value = fmt::format("v{}", k);
      const net::ClientResponse r = writer.write(put_body(path, value));
      REQUIRE_MESSAGE(r.ok(), r.message);
      acknowledged[path] = value;
    }
  }
  REQUIRE(eventually(5s, [&] { return holds(cluster, full, "/before/19", "v19", true); }));

  s.dirs[static_cast<std::size_t>(full)]->fill((kReserveMb << 20) / 2);

  // Writes to the full leader: a clear, stable error, at once, and the process keeps running.
  const auto started = e2e::Clock::now();
  const net::ClientResponse refused = write_at(cluster, full, "/during/refused", "x");
  CHECK(e2e::Clock::now() - started < 3s);
  CHECK_MESSAGE(refused.error == net::ErrorCode::NoSpace, net::to_string(refused.error), ": ", refused.message);
  CHECK_MESSAGE(refused.message.find("disk full") != std::string::npos, refused.message);
  const net::ClientResponse refused_again = write_at(cluster, full, "/during/refused", "y");
  CHECK_MESSAGE(refused_again.error == net::ErrorCode::NoSpace, net::to_string(refused_again.error), ": ",
                refused_again.message);
  CHECK(refused_again.message.find("refuses writes") != std::string::npos);
  CHECK(cluster.running(full));
  CHECK(cluster.log_tail(full, 200).find("disk full: refusing writes") != std::string::npos);

  // Serializable reads at the full member go on, from what it had applied.
  CHECK(holds(cluster, full, "/before/7", "v7", true));

  // The others elect a leader (the full one sends no heartbeats while its write is held) and
  // take writes and linearizable reads.
  const std::vector<int> others = all_but(cluster, full);
  std::optional<int> successor;
  REQUIRE_MESSAGE(eventually(15s, [&] { return (successor = cluster.agreed_leader(others)).has_value(); }),
                  cluster.all_logs());
  {
    net::Client writer(options_of(cluster, others));
    for (int k = 0; k < 20; ++k) {
      const std::string path = fmt::format("/during/{}", k), value = fmt::format("d{}", k);
      const net::ClientResponse r = writer.write(put_body(path, value));
      REQUIRE_MESSAGE(r.ok(), r.message);
      acknowledged[path] = value;
    }
  }
  for (int i : others) CHECK(holds(cluster, i, "/during/19", "d19", false));
  CHECK(holds(cluster, full, "/before/19", "v19", true));
  CHECK_FALSE(holds(cluster, full, "/during/19", "d19", true));  // it cannot apply what it cannot log

  // Space returns: the same process recovers, follows the new leader, catches up, and its
  // writes (forwarded) succeed again.
  s.dirs[static_cast<std::size_t>(full)]->free_space();
  REQUIRE_MESSAGE(eventually(15s, [&] { return holds(cluster, full, "/during/19", "d19", true); }),
                  cluster.log_tail(full, 60));
  CHECK(cluster.running(full));
  CHECK(cluster.process(full).pid() == full_pid);
  CHECK(cluster.log_tail(full, 400).find("disk space is back") != std::string::npos);
  bool wrote_again = false;
  REQUIRE(eventually(10s, [&] {
    const net::ClientResponse r = write_at(cluster, full, "/after/x", "a");
    wrote_again = r.ok();
    return wrote_again;
  }));
  acknowledged["/after/x"] = "a";

  // Nothing acknowledged was lost: linearizable reads through the cluster, and serializable
  // reads at the member that was full.
  net::Client reader(cluster.options(15s));
  for (const auto& row : acknowledged) {
    // Named copies, not structured bindings: lambdas (and doctest's macros) capture them.
    const std::string path = row.first, value = row.second;
    net::ClientRequest request;
    request.kind = net::RequestKind::Get;
    request.path = path;
    const net::ClientResponse r = reader.call(request);
    REQUIRE_MESSAGE(r.ok(), path, ": ", r.message);
    CHECK_MESSAGE(r.node->value == value, path);
    CHECK(eventually(5s, [&] { return holds(cluster, full, path, value, true); }));
  }
}

TEST_CASE("e2e disk full: a follower with a full disk falls behind while the cluster goes on, then catches up by itself") {
  Setup s;
  const std::optional<int> leader = s.start_or_skip();
  if (!leader) return;
  Cluster& cluster = s.cluster;
  const int full = (*leader + 1) % cluster.size();
  const pid_t full_pid = cluster.process(full).pid();
  net::Client writer(options_of(cluster, {*leader}));
  std::map<std::string, std::string> acknowledged;
  REQUIRE(writer.write(put_body("/f/0", "before")).ok());
  acknowledged["/f/0"] = "before";
  REQUIRE(eventually(5s, [&] { return holds(cluster, full, "/f/0", "before", true); }));

  s.dirs[static_cast<std::size_t>(full)]->fill((kReserveMb << 20) / 2);
  for (int k = 1; k <= 30; ++k) {
    const std::string path = fmt::format("/f/{}", k), value = fmt::format("w{}", k);
    const net::ClientResponse r = writer.write(put_body(path, value));
    REQUIRE_MESSAGE(r.ok(), r.message);  // the leader and the other follower are a quorum
    acknowledged[path] = value;
  }
  CHECK(eventually(5s, [&] { return cluster.log_tail(full, 200).find("disk full: refusing writes") != std::string::npos; }));
  CHECK(cluster.agreed_leader(all_but(cluster, full)) == leader);
  CHECK(holds(cluster, full, "/f/0", "before", true));
  CHECK_FALSE(holds(cluster, full, "/f/30", "w30", true));
  // A write sent to it is refused, not forwarded into a hang.
  const net::ClientResponse refused = write_at(cluster, full, "/f/refused", "x");
  CHECK_MESSAGE(refused.error == net::ErrorCode::NoSpace, net::to_string(refused.error), ": ", refused.message);

  s.dirs[static_cast<std::size_t>(full)]->free_space();
  REQUIRE_MESSAGE(eventually(15s, [&] { return holds(cluster, full, "/f/30", "w30", true); }), cluster.log_tail(full, 60));
  CHECK(cluster.process(full).pid() == full_pid);
  CHECK(cluster.running(full));
  for (const auto& row : acknowledged) {
    const std::string path = row.first, value = row.second;
    CHECK_MESSAGE(holds(cluster, full, path, value, true), path);
    CHECK_MESSAGE(holds(cluster, *leader, path, value, false), path);
  }
}

TEST_CASE("e2e disk full: a follower whose state machine's disk is full (its log's is not) holds the entries and applies them when space returns") {
  Setup s;
  const std::optional<int> leader = s.start_or_skip();
  if (!leader) return;
  Cluster& cluster = s.cluster;
  const int full = (*leader + 1) % cluster.size();
  net::Client writer(options_of(cluster, {*leader}));
  std::map<std::string, std::string> acknowledged;
  REQUIRE(writer.write(put_body("/s/0", "before")).ok());
  acknowledged["/s/0"] = "before";
  REQUIRE(eventually(5s, [&] { return holds(cluster, full, "/s/0", "before", true); }));

  // The state machine's directory moves onto a small file system of its own: the log keeps
  // room, so entries are logged (and acknowledged) but cannot be applied.
  cluster.stop(full);
  const std::unique_ptr<SmallDataDir> kv_fs_owner = move_onto_own_fs(cluster.data_dir(full) + "/kv", std::size_t{16} << 20);
  SmallDataDir& kv_fs = *kv_fs_owner;
  cluster.start(full);
  REQUIRE(eventually(10s, [&] { return holds(cluster, full, "/s/0", "before", true); }));
  const pid_t full_pid = cluster.process(full).pid();

  kv_fs.fill(32 << 10);
  // 6.4 MiB: more than the room the state file keeps allocated ahead (kv/lmdb_page_room.h).
  const std::string big(64 << 10, 'v');
  for (int k = 1; k <= 100; ++k) {
    const std::string path = fmt::format("/s/{}", k), value = fmt::format("{}{}", k, big);
    const net::ClientResponse r = writer.write(put_body(path, value));
    REQUIRE_MESSAGE(r.ok(), r.message);  // the leader and the other follower are a quorum
    acknowledged[path] = value;
  }
  REQUIRE_MESSAGE(eventually(10s, [&] { return cluster.log_tail(full, 200).find("disk full: refusing writes") != std::string::npos; }),
                  cluster.log_tail(full, 60));
  CHECK(cluster.log_tail(full, 200).find("applying entries") != std::string::npos);
  CHECK(cluster.running(full));
  CHECK(holds(cluster, full, "/s/0", "before", true));
  CHECK_FALSE(holds(cluster, full, "/s/100", acknowledged["/s/100"], true));
  const net::ClientResponse refused = write_at(cluster, full, "/s/refused", "x");
  CHECK_MESSAGE(refused.error == net::ErrorCode::NoSpace, net::to_string(refused.error), ": ", refused.message);

  kv_fs.free_space();
  REQUIRE_MESSAGE(eventually(15s, [&] { return holds(cluster, full, "/s/100", acknowledged["/s/100"], true); }),
                  cluster.log_tail(full, 60));
  CHECK(cluster.process(full).pid() == full_pid);
  CHECK(cluster.log_tail(full, 400).find("the held entries applied") != std::string::npos);
  for (const auto& row : acknowledged) {
    const std::string path = row.first, value = row.second;
    CHECK_MESSAGE(holds(cluster, full, path, value, true), path);
    CHECK_MESSAGE(holds(cluster, *leader, path, value, false), path);
  }
  cluster.stop(full);  // before kv_fs unmounts
}

TEST_CASE("e2e disk full: a follower that cannot save its member table holds the membership change and saves it when space returns") {
  Setup s;
  const std::optional<int> leader = s.start_or_skip();
  if (!leader) return;
  Cluster& cluster = s.cluster;
  const int full = (*leader + 1) % cluster.size();
  net::Client admin(options_of(cluster, {*leader}));
  REQUIRE(admin.write(put_body("/m/0", "before")).ok());
  REQUIRE(eventually(5s, [&] { return holds(cluster, full, "/m/0", "before", true); }));

  // Log and state keep room on file systems of their own; only the directory holding the
  // member table fills up.
  cluster.stop(full);
  const std::string dir = cluster.data_dir(full);
  const auto raft_fs = move_onto_own_fs(dir + "/raft", std::size_t{32} << 20);
  const auto kv_fs = move_onto_own_fs(dir + "/kv", std::size_t{32} << 20);
  cluster.start(full);
  REQUIRE(eventually(10s, [&] { return holds(cluster, full, "/m/0", "before", true); }));
  const pid_t full_pid = cluster.process(full).pid();
  s.dirs[static_cast<std::size_t>(full)]->fill(0);

  net::ClientRequest add;
  add.kind = net::RequestKind::MemberAdd;
  add.member_name = "n9";
  add.peer_address = "127.0.0.1:9";  // never runs: a learner does not count for the quorum
  add.learner = true;
  const net::ClientResponse added = admin.call(add);
  REQUIRE_MESSAGE(added.ok(), added.message);
  REQUIRE_MESSAGE(eventually(10s, [&] { return cluster.log_tail(full, 200).find("disk full: refusing writes") != std::string::npos; }),
                  cluster.log_tail(full, 60));
  CHECK(cluster.log_tail(full, 200).find("saving the member table") != std::string::npos);
  CHECK(cluster.running(full));
  // No table yet (the initial members come from the flags), or one without the learner.
  const auto unsaved = net::load_member_table(dir);
  CHECK((!unsaved || std::none_of(unsaved->begin(), unsaved->end(), [](const net::MemberConfig& m) { return m.name == "n9"; })));

  s.dirs[static_cast<std::size_t>(full)]->free_space();
  REQUIRE_MESSAGE(eventually(15s, [&] { return cluster.log_tail(full, 400).find("the held entries applied") != std::string::npos; }),
                  cluster.log_tail(full, 60));
  CHECK(cluster.process(full).pid() == full_pid);
  const auto saved = net::load_member_table(dir);
  REQUIRE(saved.has_value());
  CHECK(std::any_of(saved->begin(), saved->end(), [](const net::MemberConfig& m) { return m.name == "n9"; }));
  REQUIRE(admin.write(put_body("/m/1", "after")).ok());
  CHECK(eventually(10s, [&] { return holds(cluster, full, "/m/1", "after", true); }));
  cluster.stop(full);  // before its file systems unmount
}
