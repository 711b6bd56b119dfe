// Small helpers around libuv: error text, address parsing and handle lifetimes. Every libuv
// call that can fail is checked by its caller; these only make the checks short.
#pragma once

#include <uv.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace coord::net {

// A libuv call failed where the caller cannot continue (binding a port, starting a timer).
class UvError : public std::runtime_error {
 public:
  UvError(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

// "ECONNREFUSED: connection refused".
std::string uv_error_text(int code);
// Throws UvError("<what>: <error text>") when code < 0.
void uv_check(int code, std::string_view what);

// "127.0.0.1:7001" or "[::1]:7001" (numeric hosts only: no resolver on the event loop).
std::optional<sockaddr_storage> parse_socket_address(std::string_view text, std::string* error);
// The address a bound or connected TCP handle has locally ("127.0.0.1:40123"), so that a port
// chosen by the kernel (port 0) can be reported; empty on error.
std::string local_address(const uv_tcp_t* tcp);
std::string peer_address(const uv_tcp_t* tcp);

// Closes a heap-allocated handle and frees it once libuv is done with it. The owner may forget
// the pointer right away; no callback of the handle runs after this call.
template <typename Handle>
void close_and_delete(Handle* handle) {
  if (handle == nullptr) return;
  auto* h = reinterpret_cast<uv_handle_t*>(handle);
  h->data = nullptr;
  if (uv_is_closing(h)) return;
  uv_close(h, [](uv_handle_t* closed) { delete reinterpret_cast<Handle*>(closed); });
}

// A timer on the heap, initialized; throws UvError. Close it with close_and_delete.
uv_timer_t* new_timer(uv_loop_t* loop, void* data);

}  // namespace coord::net
