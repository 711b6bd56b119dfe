// End-to-end damage on disk: a byte flipped in a real coordd's Raft log (a raft/wal-*.log
// segment), in the middle of the log, or in its state machine's store (kv/data.mdb) makes the
// member refuse to start, with a message naming the file and the record's offset (or the table
// and key), and it never
// serves anything from the damaged directory. Real coordd processes on 127.0.0.1.
#include <fmt/format.h>
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "e2e_cluster.h"
#include "kv/command.h"

namespace {

using namespace coord;
using namespace std::chrono_literals;
using e2e::Cluster;
using e2e::eventually;

const std::vector<std::string> kArgs{"--tick-ms", "50", "--election-ticks", "10"};

std::string marker(int k) { return fmt::format("<value-{:04}-marker>", k); }

// Flips a byte in every copy of `needle` (LMDB's copy-on-write may leave stale copies of a page
// in free space; the live one is among them).
int flip_everywhere(const std::string& path, const std::string& needle) {
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  int flipped = 0;
  for (std::size_t at = bytes.find(needle); at != std::string::npos; at = bytes.find(needle, at + 1)) {
    bytes[at + needle.size() / 2] ^= 0x04;
    ++flipped;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return flipped;
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

TEST_CASE("e2e disk corruption: a byte flipped in the state machine's store stops coordd, naming the file, table and key") {
  Cluster cluster(1, kArgs);
  write_and_stop(cluster);
  const std::string file = cluster.data_dir(0) + "/kv/data.mdb";
  REQUIRE(flip_everywhere(file, marker(5)) >= 1);
  expect_refusal(cluster, file + ": corrupt: table ");
  const std::string log = cluster.log_tail(0, 20);
  CHECK_MESSAGE(log.find("/c/5") != std::string::npos, log);
  CHECK_MESSAGE(log.find("checksum mismatch") != std::string::npos, log);
}
