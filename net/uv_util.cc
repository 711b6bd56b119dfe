#include "net/uv_util.h"

#include <fmt/format.h>

#include <charconv>
#include <cstring>

namespace coord::net {

std::string uv_error_text(int code) { return fmt::format("{}: {}", uv_err_name(code), uv_strerror(code)); }

void uv_check(int code, std::string_view what) {
  if (code < 0) throw UvError(code, fmt::format("{}: {}", what, uv_error_text(code)));
}

std::optional<sockaddr_storage> parse_socket_address(std::string_view text, std::string* error) {
  auto fail = [&](std::string reason) -> std::optional<sockaddr_storage> {
    if (error != nullptr) *error = fmt::format("bad address '{}': {}", text, reason);
    return std::nullopt;
  };
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return fail("expected host:port");
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
    return fail("the port is not a number from 0 to 65535");
  }
  sockaddr_storage storage{};
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    const std::string h(host.substr(1, host.size() - 2));
    if (uv_ip6_addr(h.c_str(), static_cast<int>(port), reinterpret_cast<sockaddr_in6*>(&storage)) != 0) {
      return fail("not a numeric IPv6 address");
    }
    return storage;
  }
  const std::string h(host);
  if (uv_ip4_addr(h.c_str(), static_cast<int>(port), reinterpret_cast<sockaddr_in*>(&storage)) != 0) {
    return fail("not a numeric IPv4 address (use [addr] for IPv6)");
  }
  return storage;
}

namespace {

std::string format_address(const sockaddr_storage& storage) {
  char host[INET6_ADDRSTRLEN] = {};
  if (storage.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&storage);
    if (uv_ip4_name(in, host, sizeof host) != 0) return {};
    return fmt::format("{}:{}", host, ntohs(in->sin_port));
  }
  if (storage.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    if (uv_ip6_name(in6, host, sizeof host) != 0) return {};
    return fmt::format("[{}]:{}", host, ntohs(in6->sin6_port));
  }
  return {};
}

}  // namespace

uv_timer_t* new_timer(uv_loop_t* loop, void* data) {
  auto* timer = new uv_timer_t{};
  const int rc = uv_timer_init(loop, timer);
  if (rc < 0) {
    delete timer;  // never registered with the loop
    uv_check(rc, "uv_timer_init");
  }
  timer->data = data;
  return timer;
}

std::string local_address(const uv_tcp_t* tcp) {
  sockaddr_storage storage{};
  int length = sizeof storage;
  if (uv_tcp_getsockname(tcp, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return {};
  return format_address(storage);
}

std::string peer_address(const uv_tcp_t* tcp) {
  sockaddr_storage storage{};
  int length = sizeof storage;
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return {};
  return format_address(storage);
}

}  // namespace coord::net
