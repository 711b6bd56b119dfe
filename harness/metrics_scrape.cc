#include "harness/metrics_scrape.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <string>
#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

namespace coord::harness {

std::map<std::string, double> parse_prometheus_text(std::string_view text) {
  std::map<std::string, double> out;
  while (!text.empty()) {
    const std::size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    if (line.empty() || line.front() == '#') continue;
    const std::size_t name_end = line.find_first_of("{ ");
    if (name_end == std::string_view::npos || name_end == 0) continue;
    const std::size_t value_at = line.rfind(' ');
    if (value_at == std::string_view::npos || value_at + 1 >= line.size()) continue;
    const std::string value(line.substr(value_at + 1));
    char* end = nullptr;
    const double v = std::strtod(value.c_str(), &end);
    if (end == value.c_str()) continue;
    out[std::string(line.substr(0, name_end))] = v;
  }
  return out;
}

std::map<std::string, double> scrape_metrics(const std::string& host, int port, std::chrono::milliseconds timeout) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) return {};
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  // Linux applies SO_SNDTIMEO to connect() as well.
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string response;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = "GET /metrics HTTP/1.0\r\nHost: " + host + "\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
      char buf[8192];
      while (std::chrono::steady_clock::now() < deadline && response.size() < (std::size_t{4} << 20)) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        response.append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  ::close(fd);
  const std::size_t body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || response.find(" 200 ") == std::string::npos || body == std::string::npos) {
    return {};
  }
  return parse_prometheus_text(std::string_view(response).substr(body + 4));
}

void MemoryPeaks::add(const std::map<std::string, double>& metrics, std::uint64_t rss_kib) {
  if (metrics.empty()) return;
  ++samples_;
  auto keep = [&](const std::string& name, double value) {
    auto [it, inserted] = max_.try_emplace(name, value);
    if (!inserted) it->second = std::max(it->second, value);
  };
  keep("rss", static_cast<double>(rss_kib) * 1024.0);
  for (const auto& [name, value] : metrics) keep(name, value);
  // Entries the Raft core holds in memory: those after its latest snapshot.
  auto at = [&](const char* name) {
    auto it = metrics.find(name);
    return it == metrics.end() ? 0.0 : it->second;
  };
  keep("log_entries", at("coord_raft_log_last_index") - at("coord_raft_snapshot_index"));
}

std::string MemoryPeaks::line() const {
  if (samples_ == 0) return "no sample";
  auto mib = [&](const char* name) {
    auto it = max_.find(name);
    return it == max_.end() ? 0.0 : it->second / (1024.0 * 1024.0);
  };
  auto count = [&](const char* name) {
    auto it = max_.find(name);
    return it == max_.end() ? 0.0 : it->second;
  };
  return fmt::format(
      "max rss {:.1f} heap {:.1f} free {:.1f} client {:.1f}/{:.1f} ({:.0f} conns) peer {:.1f}/{:.1f} fwd {:.1f}/{:.1f} "
      "inbox {:.1f} MiB, log {:.0f} entries ({} samples)",
      mib("rss"), mib("coord_heap_in_use_bytes"), mib("coord_heap_free_held_bytes"), mib("coord_client_queued_bytes"),
      mib("coord_client_reserved_bytes"), count("coord_client_connections"), mib("coord_peer_queued_bytes"),
      mib("coord_peer_reserved_bytes"), mib("coord_forward_queued_bytes"), mib("coord_forward_reserved_bytes"),
      mib("coord_inbox_bytes"), count("log_entries"), samples_);
}

}  // namespace coord::harness
