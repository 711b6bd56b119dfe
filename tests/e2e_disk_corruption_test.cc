// End-to-end damage on disk: a byte flipped in a real coordd's Raft log (a raft/wal-*.log
// segment), in the middle of the log, or in its state machine's store (kv/data.mdb) makes the
// member refuse to start, with a message naming the file and the record's offset; damage in the
// store makes it stop soon after the start, naming the table and key, and the damaged value is
// never served. Real coordd processes on 127.0.0.1.
#include <fmt/format.h>
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "e2e_cluster.h"
#include "flip_bytes.h"
#include "kv/command.h"

namespace {

using namespace coord;
using namespace std::chrono_literals;
using e2e::Cluster;
using e2e::eventually;

const std::vector<std::string> kArgs{"--tick-ms", "50", "--election-ticks", "10"};

std::string marker(int k) { return fmt::format("<value-{:04}-marker>", k); }

int flip_everywhere(const std::string& path, const std::string& needle) {
  return coordtest::flip_everywhere(path, needle, needle.size() / 2, 0x04);
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A one-member cluster with ten values written, then stopped.
void write_and_stop(Cluster& cluster) {
  REQUIRE_MESSAGE(cluster.start_all(), cluster.all_logs());
  net::Client writer(cluster.options(15s));
  for (int k = 1; k <= 10; ++k) {
    kv::Op op = kv::Op::put(fmt::format("/c/{}", k), marker(k));
    op.parents = true;
    const net::ClientResponse r = writer.write(kv::single(std::move(op)));
    REQUIRE_MESSAGE(r.ok(), r.message);
  }
  cluster.stop(0);
}

// Restarts the member and expects it to refuse: a non-zero exit, `expected` in its log, and no
// second "serving" line.
void expect_refusal(Cluster& cluster, const std::string& expected) {
  const std::size_t served_before = count(cluster.log_tail(0, 100000), "serving member=");
  cluster.start(0);
  const auto status = cluster.process(0).wait(15s);
  REQUIRE_MESSAGE(status.has_value(), "coordd kept running on a damaged data directory\n", cluster.log_tail(0));
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) != 0);
  const std::string log = cluster.log_tail(0, 100000);
  CHECK_MESSAGE(log.find(expected) != std::string::npos, "expected: ", expected, "\n", cluster.log_tail(0, 10));
  CHECK(log.find("cannot start") != std::string::npos);
  CHECK(count(log, "serving member=") == served_before);
}

// The Raft log's segment files that hold `needle`.
std::vector<std::string> segments_holding(const std::string& raft_dir, const std::string& needle) {
  std::vector<std::string> out;
  for (const auto& f : std::filesystem::directory_iterator(raft_dir)) {
    const std::string name = f.path().filename().string();
    if (name.rfind("wal-", 0) != 0) continue;
    std::ifstream in(f.path(), std::ios::binary);
    const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (bytes.find(needle) != std::string::npos) out.push_back(f.path().string());
  }
  return out;
}

}  // namespace

TEST_CASE("e2e disk corruption: a byte flipped in the middle of the Raft log stops coordd, naming the file and the record") {
  Cluster cluster(1, kArgs);
  write_and_stop(cluster);
  // Values 6-10 were written after it: a record in the middle of the log, not a torn tail.
  const std::vector<std::string> files = segments_holding(cluster.data_dir(0) + "/raft", marker(5));
  REQUIRE(files.size() == 1);
  const std::string& file = files.front();
  REQUIRE(flip_everywhere(file, marker(5)) == 1);
  expect_refusal(cluster, file + ": corrupt: record at offset ");
  const std::string log = cluster.log_tail(0, 20);
  CHECK_MESSAGE(log.find(": checksum mismatch") != std::string::npos, log);
}

// The store is checked whole on a thread of its own after the start (net/state_check.h), not
// before serving: the member may serve what it reads intact meanwhile (every read checks its
// rows), and stops when the check reaches the damaged row.
TEST_CASE("e2e disk corruption: a byte flipped in the state machine's store stops coordd, naming the file, table and key") {
  Cluster cluster(1, kArgs);
  write_and_stop(cluster);
  const std::string file = cluster.data_dir(0) + "/kv/data.mdb";
  REQUIRE(flip_everywhere(file, marker(5)) >= 1);
  cluster.start(0);
  const auto status = cluster.process(0).wait(15s);
  REQUIRE_MESSAGE(status.has_value(), "coordd kept running on a damaged state store\n", cluster.log_tail(0));
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) != 0);
  const std::string log = cluster.log_tail(0, 20);
  CHECK_MESSAGE(log.find("replica stopping: state storage: kv store " + file + ": corrupt: table ") != std::string::npos,
                log);
  CHECK_MESSAGE(log.find("/c/5") != std::string::npos, log);
  CHECK_MESSAGE(log.find("checksum mismatch") != std::string::npos, log);
}

TEST_CASE("e2e disk corruption: the damaged value is never served while the store's check runs") {
  Cluster cluster(1, kArgs);
  write_and_stop(cluster);
  const std::string file = cluster.data_dir(0) + "/kv/data.mdb";
  REQUIRE(flip_everywhere(file, marker(5)) >= 1);
  cluster.start(0);
  // Whatever the member answers before it stops, never the damaged value: a read that reaches the
  // damaged row fails (and stops the member), intact ones may be served.
  net::Client reader(cluster.options(2s));
  int served_others = 0;
  for (int attempt = 0; attempt < 50 && !cluster.process(0).wait(0ms).has_value(); ++attempt) {
    for (const int k : {4, 5}) {
      net::ClientRequest get;
      get.kind = net::RequestKind::Get;
      get.path = fmt::format("/c/{}", k);
      get.serializable = true;
      const net::ClientResponse r = reader.call(get);
      if (!r.ok() || !r.node) continue;
      if (k == 5) FAIL_CHECK("the damaged value was served: ", r.node->value);
      if (k == 4) served_others += r.node->value == marker(4) ? 1 : 0;
    }
    std::this_thread::sleep_for(20ms);
  }
  MESSAGE("intact reads served before the member stopped: ", served_others);
  const auto status = cluster.process(0).wait(15s);
  REQUIRE_MESSAGE(status.has_value(), "coordd kept running on a damaged state store\n", cluster.log_tail(0));
  CHECK(WEXITSTATUS(*status) != 0);
}
