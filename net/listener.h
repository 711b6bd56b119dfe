// A listening TCP socket on the event loop. Each incoming connection is announced to the owner,
// which either accepts it into a Connection (with its own handler and limits) or refuses it.
#pragma once

#include <uv.h>

#include <functional>
#include <string>

#include "net/connection.h"

namespace coord::net {

class Listener {
 public:
  // Called once per pending connection; the owner calls accept() or refuse() before returning.
  using OnIncoming = std::function<void(Listener&)>;

  Listener(uv_loop_t* loop, OnIncoming on_incoming);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Binds and listens; throws UvError (address in use, bad address, ...). Port 0 picks a free
  // port: address() then tells which.
  void listen(const std::string& address);
  // The bound address ("127.0.0.1:7001").
  const std::string& address() const { return address_; }

  // Accepts the pending connection into a new Connection that is already reading; nullptr when
  // libuv fails (the failure is returned in *error).
  Connection* accept(Connection::Handler& handler, const ConnectionOptions& options, std::string* error);
  // Accepts and closes at once: the only way to take a connection off libuv's queue.
  void refuse(const std::string& reason);

  void close();

 private:
  uv_loop_t* loop_;
  OnIncoming on_incoming_;
  uv_tcp_t* server_ = nullptr;  // heap: it outlives us until libuv has closed it
  std::string address_;
};

}  // namespace coord::net
