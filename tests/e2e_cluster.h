// End-to-end test harness: real coordd processes on 127.0.0.1, in a temporary directory that is
// removed afterwards. Every wait is a bounded poll; every process is one this harness started,
// stopped by its pid (SIGTERM, then SIGKILL if it does not exit) when the harness goes away.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "net/client.h"
#include "net/client_messages.h"

namespace coord::e2e {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

#ifndef COORDD_PATH
#error "COORDD_PATH must name the coordd binary under test"
#endif

// A port the kernel just handed out for 127.0.0.1 and released. Another process could take it
// before coordd binds it; Cluster::start_all retries with fresh ports when a member fails.
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t length = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
    ::close(fd);
    throw std::runtime_error("bind/getsockname failed");
  }
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

// Polls `done` every 20 ms until it holds or `timeout` passes.
inline bool eventually(std::chrono::milliseconds timeout, const std::function<bool()>& done) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

class Process {
 public:
  Process(const std::vector<std::string>& argv, const std::string& log_path) {
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) {
        ::dup2(fd, STDOUT_FILENO);
        ::dup2(fd, STDERR_FILENO);
      }
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~Process() { stop(); }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running() {
    if (exited_) return false;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      status_ = status;
      return false;
    }
    return true;
  }
  void signal(int sig) {
    if (running()) ::kill(pid_, sig);
  }
  // Waits for the exit; nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    if (!eventually(timeout, [&] { return !running(); })) return std::nullopt;
    return status_;
  }
  // SIGTERM, then SIGKILL after 10 s: the harness never leaves a process behind.
  void stop() {
    if (!running()) return;
    signal(SIGTERM);
    if (!wait(10s)) {
      signal(SIGKILL);
      (void)wait(10s);
    }
  }
  void kill9() {
    signal(SIGKILL);
    (void)wait(10s);
  }
  int status() const { return status_; }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = 0;
};

struct MemberPorts {
  int peer = 0;
  int client = 0;
};

class Cluster {
 public:
  explicit Cluster(int size, std::vector<std::string> extra_args = {}) : extra_args_(std::move(extra_args)) {
    char tmpl[] = "/tmp/coord-e2e-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    for (int i = 0; i < size; ++i) ports_.push_back(MemberPorts{free_port(), free_port()});
    processes_.resize(static_cast<std::size_t>(size));
  }
  ~Cluster() {
    for (auto& p : processes_) p.reset();  // SIGTERM each, by pid
    std::error_code ec;
    if (std::getenv("COORD_E2E_KEEP") == nullptr) std::filesystem::remove_all(dir_, ec);
  }

  int size() const { return static_cast<int>(ports_.size()); }
  std::string name(int i) const { return fmt::format("n{}", i + 1); }
  std::string client_address(int i) const { return fmt::format("127.0.0.1:{}", ports_[static_cast<std::size_t>(i)].client); }
  std::string peer_address(int i) const { return fmt::format("127.0.0.1:{}", ports_[static_cast<std::size_t>(i)].peer); }
  std::string data_dir(int i) const { return fmt::format("{}/{}", dir_, name(i)); }
  std::string log_path(int i) const { return fmt::format("{}/{}.log", dir_, name(i)); }
  const std::string& dir() const { return dir_; }
  std::string initial_cluster() const {
    std::string out;
    for (int i = 0; i < size(); ++i) out += fmt::format("{}{}={}", i == 0 ? "" : ",", name(i), peer_address(i));
    return out;
  }
  std::vector<std::string> endpoints() const {
    std::vector<std::string> out;
    for (int i = 0; i < size(); ++i) out.push_back(client_address(i));
    return out;
  }

  void start(int i) {
    std::vector<std::string> argv{COORDD_PATH,
                                  "--name", name(i),
                                  "--data-dir", data_dir(i),
                                  "--listen-peer", peer_address(i),
                                  "--listen-client", client_address(i),
                                  "--initial-cluster", initial_cluster()};
    argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
    processes_[static_cast<std::size_t>(i)] = std::make_unique<Process>(argv, log_path(i));
  }
  // Starts every member and waits until each serves. A member that exits first (most likely a
  // port taken between free_port() and its bind) makes the whole cluster start over with fresh
  // ports and empty data directories, a few times at most.
  bool start_all() {
    for (int attempt = 0; attempt < 3; ++attempt) {
      for (int i = 0; i < size(); ++i) start(i);
      bool all_serving = eventually(10s, [&] {
        for (int i = 0; i < size(); ++i) {
          if (!running(i) || log_tail(i, 1000).find("serving member=") == std::string::npos) return false;
        }
        return true;
      });
      if (all_serving) return true;
      for (auto& p : processes_) p.reset();
      std::error_code ec;
      for (int i = 0; i < size(); ++i) std::filesystem::remove_all(data_dir(i), ec);
      for (auto& ports : ports_) ports = MemberPorts{free_port(), free_port()};
    }
    return false;
  }
  Process& process(int i) { return *processes_[static_cast<std::size_t>(i)]; }
  bool running(int i) {
    auto& p = processes_[static_cast<std::size_t>(i)];
    return p && p->running();
  }
  void kill9(int i) { processes_[static_cast<std::size_t>(i)]->kill9(); }
  void stop(int i) { processes_[static_cast<std::size_t>(i)]->stop(); }

  // A client of one member only (no redirects possible beyond it), or of all of them.
  net::Client client_of(int i, std::chrono::milliseconds timeout = 5s) const {
    net::ClientOptions options;
    options.endpoints = {client_address(i)};
    options.timeout = timeout;
    options.attempt_timeout = std::min<std::chrono::milliseconds>(timeout, 2s);
    return net::Client(options);
  }
  net::ClientOptions options(std::chrono::milliseconds timeout = 10s) const {
    net::ClientOptions o;
    o.endpoints = endpoints();
    o.timeout = timeout;
    return o;
  }

  std::optional<net::StatusInfo> status(int i) const {
    net::ClientOptions o;
    o.endpoints = {client_address(i)};
    o.timeout = 1s;
    o.attempt_timeout = 1s;
    net::Client c(o);
    net::ClientRequest request;
    request.kind = net::RequestKind::Status;
    const net::ClientResponse r = c.call_endpoint(client_address(i), request);
    if (!r.ok() || !r.status) return std::nullopt;
    return r.status;
  }

  // The member that every running member agrees leads, once they do.
  std::optional<int> agreed_leader(const std::vector<int>& members) const {
    std::optional<std::uint64_t> leader;
    for (int i : members) {
      const auto s = status(i);
      if (!s || s->leader == 0) return std::nullopt;
      if (leader && *leader != s->leader) return std::nullopt;
      leader = s->leader;
    }
    if (!leader) return std::nullopt;
    for (int i : members) {
      if (static_cast<std::uint64_t>(i + 1) == *leader) return i;  // ids are sorted-name positions
    }
    return std::nullopt;
  }

  std::string log_tail(int i, std::size_t lines = 30) const {
    std::ifstream in(log_path(i));
    std::vector<std::string> all;
    for (std::string line; std::getline(in, line);) all.push_back(line);
    std::ostringstream out;
    for (std::size_t k = all.size() > lines ? all.size() - lines : 0; k < all.size(); ++k) out << all[k] << "\n";
    return out.str();
  }
  std::string all_logs() const {
    std::string out;
    for (int i = 0; i < size(); ++i) out += fmt::format("---- {} ----\n{}", name(i), log_tail(i));
    return out;
  }

 private:
  std::string dir_;
  std::vector<MemberPorts> ports_;
  std::vector<std::string> extra_args_;
  std::vector<std::unique_ptr<Process>> processes_;
};

}  // namespace coord::e2e
