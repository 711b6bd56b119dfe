#include "harness/locks.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "harness/workload.h"

namespace coord::harness {
namespace {

using namespace std::chrono_literals;

constexpr int kChildChannelFd = 3;  // where coord-faults-locker expects its channel
constexpr const char* kResource = "resource";
constexpr std::size_t kViolationsMax = 20;

// One line from a locker ("" once it is gone).
std::string read_line(int fd) {
  std::string line;
  char c = 0;
  while (true) {
    const ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return {};
    if (c == '\n') return line;
    line += c;
  }
}

void send_line(int fd, const std::string& line) {
  const std::string out = line + "\n";
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::send(fd, out.data() + done, out.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the locker is gone; its reader sees the end next
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

Locks::Locks(LocksOptions options) : options_(std::move(options)), lockers_(options_.lockers) {
  for (int i = 0; i < options_.lockers; ++i) lockers_[i].index = i + 1;
}

Locks::~Locks() { stop(); }

void Locks::start() {
  for (Locker& l : lockers_) spawn(l);
  for (Locker& l : lockers_) l.reader = std::thread([this, &l] { serve(l); });
}

void Locks::spawn(Locker& locker) {
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::string endpoints;
  for (const std::string& e : options_.endpoints) endpoints += (endpoints.empty() ? "" : ",") + e;
  std::vector<std::string> argv_s{options_.locker,
                                  "--endpoints", endpoints,
                                  "--lock", "/locks/coord-faults",
                                  "--seed", std::to_string(options_.seed * 1000 + locker.index),
                                  "--ttl-ms", std::to_string(options_.ttl_ms),
                                  "--pause-percent", std::to_string(options_.pause_percent)};
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string log_path = fmt::format("{}/locker{}.log", options_.work_dir, locker.index);
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) throw std::runtime_error("open " + log_path + ": " + std::strerror(errno));
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    ::close(log_fd);
    throw std::runtime_error(std::string("socketpair: ") + std::strerror(errno));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    ::close(pair[0]);
    ::close(pair[1]);
    throw std::runtime_error("fork failed");
  }
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // Dies with coord-faults, stopped or not (lockers are forked from its main thread).
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) ::_exit(125);
    ::dup2(pair[1], kChildChannelFd);  // dup2 leaves the copy without FD_CLOEXEC
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  ::close(pair[1]);
  locker.pid = pid;
  locker.channel = pair[0];
}

bool Locks::reap(Locker& locker, int flags, bool* stopped) {
  std::lock_guard lock(mutex_);
  if (locker.reaped) return true;
  int status = 0;
  const pid_t r = ::waitpid(locker.pid, &status, flags | WNOHANG);
  if (r != locker.pid) return false;
  if (WIFSTOPPED(status)) {
    if (stopped != nullptr) *stopped = true;
    return false;
  }
  locker.reaped = true;
  return true;
}

void Locks::wake_after(Locker& locker, long ms) {
  // The locker announces its pause and then stops itself: wait for the stop first, so the
  // SIGCONT cannot come before it.
  bool stopped = false;
  for (int i = 0; i < 400 && !stopped && !stopping_; ++i) {
    if (reap(locker, WUNTRACED, &stopped)) return;
    if (!stopped) std::this_thread::sleep_for(5ms);
  }
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < until && !stopping_) std::this_thread::sleep_for(20ms);
  std::lock_guard lock(mutex_);
  if (!locker.reaped) ::kill(locker.pid, SIGCONT);
}

bool Locks::write(Locker& locker, std::uint64_t token, std::uint64_t& highest) {
  std::lock_guard lock(mutex_);
  bool accepted = true;
  if (options_.fencing) {
    const fencing::GuardDecision decision = guard_.check(kResource, token);
    accepted = decision.accepted();
    highest = decision.highest;
  }
  if (!accepted) {
    ++stats_.refused;
    if (locker.paused_last) ++stats_.refused_after_pause;
    return false;
  }
  ++stats_.accepted;
  // The checkers see what the resource accepted, independently of the Guard.
  const sim::Holder holder{static_cast<std::uint64_t>(locker.index), token};
  for (const sim::Verdict& v : {monotonic_.observe_accepted(kResource, holder),
                                exclusion_.observe_accepted(kResource, holder, static_cast<sim::Micros>(now_us()))}) {
    if (v && violations_.size() < kViolationsMax) violations_.push_back(fmt::format("{}: {}", v->invariant, v->message));
  }
  return true;
}

void Locks::serve(Locker& locker) {
  while (true) {
    const std::string line = read_line(locker.channel);
    if (line.empty()) break;
    std::uint64_t a = 0, b = 0;
    if (std::sscanf(line.c_str(), "L %lu", &a) == 1) {
      std::lock_guard lock(mutex_);
      ++stats_.acquisitions;
      locker.paused_last = false;
    } else if (std::sscanf(line.c_str(), "P %lu", &a) == 1) {
      {
        std::lock_guard lock(mutex_);
        ++stats_.pauses;
        locker.paused_last = true;
      }
      wake_after(locker, static_cast<long>(a));
    } else if (std::sscanf(line.c_str(), "W %lu %lu", &a, &b) == 2) {
      std::uint64_t highest = 0;
      const bool accepted = write(locker, a, highest);
      {
        std::lock_guard lock(mutex_);
        locker.paused_last = false;
      }
      send_line(locker.channel, accepted ? "A" : fmt::format("R {}", highest));
    }
  }
  // The channel ended: the locker exited (killed by stop(), or on its own).
  while (!reap(locker, 0, nullptr)) std::this_thread::sleep_for(10ms);
  if (!stopping_) {
    std::lock_guard lock(mutex_);
    ++stats_.unexpected_exits;
  }
}

void Locks::stop() {
  stopping_ = true;
  {
    std::lock_guard lock(mutex_);
    for (Locker& l : lockers_) {
      if (l.pid > 0 && !l.reaped) ::kill(l.pid, SIGKILL);
    }
  }
  for (Locker& l : lockers_) {
    if (l.reader.joinable()) l.reader.join();
    if (l.channel >= 0) ::close(l.channel);
    l.channel = -1;
  }
}

LocksStats Locks::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

std::vector<std::string> Locks::violations() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out = violations_;
  if (stats_.accepted == 0) {
    out.push_back("locks: no write to the resource was accepted in the whole run (the workload proved nothing)");
  }
  if (stats_.unexpected_exits > 0) {
    out.push_back(fmt::format("locks: {} lockers exited on their own (see locker*.log)", stats_.unexpected_exits));
  }
  return out;
}

}  // namespace coord::harness
