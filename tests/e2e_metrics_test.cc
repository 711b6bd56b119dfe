// coordd --listen-metrics: Prometheus text on /metrics (when built with prometheus-cpp), or a
// refusal at startup (when not). Without the flag nothing listens.
#include <fmt/format.h>
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <string>

#include "e2e_cluster.h"
#include "tests/asan_detect.h"
#include "kv/command.h"
#include "net/metrics.h"

namespace {

using namespace coord;
using namespace std::chrono_literals;
using e2e::Cluster;
using e2e::eventually;

// GET /metrics from 127.0.0.1:port with a 2 s timeout; the body, or "" on failure.
std::string scrape(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
      char buffer[16 << 10];
      for (int reads = 0; reads < 1000; ++reads) {
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        out.append(buffer, static_cast<std::size_t>(n));
      }
    }
  }
  ::close(fd);
  const std::size_t body = out.find("\r\n\r\n");
  return body == std::string::npos ? std::string() : out.substr(body + 4);
}


// The value of `name{member="..."}` in a scrape, or -1. (Plain string search: GCC 12 with the
// sanitizers at -O2 warns inside std::regex, which -Werror turns into a failed build.)
double metric(const std::string& text, const std::string& name, const std::string& member) {
  const std::string prefix = fmt::format("{}{{member=\"{}\"}} ", name, member);
  for (std::size_t at = text.find(prefix); at != std::string::npos; at = text.find(prefix, at + 1)) {
    if (at != 0 && text[at - 1] != '\n') continue;
    const std::size_t start = at + prefix.size();
    const std::size_t end = text.find_first_not_of("0123456789.e+", start);
    if (end == start) return -1;
    return std::stod(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
  }
  return -1;
}

// The port in the log's "metrics on http://127.0.0.1:PORT/metrics" line, or -1.
int metrics_port(const std::string& log) {
  const std::string prefix = "metrics on http://127.0.0.1:";
  const std::size_t at = log.find(prefix);
  if (at == std::string::npos) return -1;
  const std::size_t start = at + prefix.size();
  const std::size_t end = log.find("/metrics", start);
  if (end == std::string::npos || end == start) return -1;
  return std::stoi(log.substr(start, end - start));
}

}  // namespace

#ifdef COORD_HAVE_PROMETHEUS

TEST_CASE("--listen-metrics serves Prometheus text: role, indexes, revision, counters") {
  std::vector<int> ports;
  // The harness passes the same flags to every member, so each picks a free port (0) and logs it.
  Cluster with_metrics(3, {"--tick-ms", "50", "--election-ticks", "10", "--listen-metrics", "127.0.0.1:0"});
  REQUIRE_MESSAGE(with_metrics.start_all(), with_metrics.all_logs());
  std::optional<int> leader;
  REQUIRE_MESSAGE(eventually(15s, [&] { return (leader = with_metrics.agreed_leader({0, 1, 2})).has_value(); }),
                  with_metrics.all_logs());
  for (int i = 0; i < 3; ++i) {
    const std::string log = with_metrics.log_tail(i, 1000);
    const int port = metrics_port(log);
    REQUIRE_MESSAGE(port > 0, log);
    ports.push_back(port);
  }
  net::Client client(with_metrics.options(10s));
  const net::ClientResponse wrote = client.write(kv::single(kv::Op::put("/m", "x")));
  REQUIRE(wrote.ok());
  for (int i = 0; i < 3; ++i) {
    const std::string name = with_metrics.name(i);
    std::string text;
    // Metrics are refreshed every tick; wait for the write to show.
    CHECK_MESSAGE(eventually(5s, [&] {
      text = scrape(ports[static_cast<std::size_t>(i)]);
      return metric(text, "coord_kv_revision", name) == static_cast<double>(wrote.result->revision);
    }),
                  text);
    CHECK(metric(text, "coord_raft_leader", name) == (i == *leader ? 1 : 0));
    CHECK(metric(text, "coord_raft_term", name) >= 1);
    CHECK(metric(text, "coord_raft_applied_index", name) >= 2);
    CHECK(metric(text, "coord_peer_received_total", name) > 0);
    CHECK(text.find("# TYPE coord_client_requests_total counter") != std::string::npos);
    // Memory gauges: the peer connections hold buffers, and malloc has live bytes.
    CHECK(metric(text, "coord_peer_reserved_bytes", name) > 0);
#if COORD_TEST_ASAN
    // ASan's allocator stands in for malloc, and glibc's mallinfo2 then counts nothing: the
    // gauge is served, at 0.
    CHECK(metric(text, "coord_heap_in_use_bytes", name) >= 0);
#else
    CHECK(metric(text, "coord_heap_in_use_bytes", name) > 0);
#endif
    CHECK(metric(text, "coord_heap_free_held_bytes", name) >= 0);
    CHECK(metric(text, "coord_client_queued_bytes", name) >= 0);
    CHECK(metric(text, "coord_ready_message_bytes_peak", name) >= 0);
  }
}

#else

TEST_CASE("without prometheus-cpp, --listen-metrics is refused at startup") {
  CHECK_FALSE(net::MetricsExporter::available());
  Cluster cluster(1, {"--listen-metrics", "127.0.0.1:0"});
  cluster.start(0);
  const auto status = cluster.process(0).wait(10s);
  REQUIRE(status.has_value());
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 2);
  CHECK(cluster.log_tail(0).find("built without prometheus-cpp") != std::string::npos);
}

#endif
