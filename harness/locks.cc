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

#include "harness/line_channel.h"
#include "harness/spawn.h"
#include "harness/workload.h"

namespace coord::harness {
namespace {

using namespace std::chrono_literals;

constexpr const char* kResource = "resource";
constexpr std::size_t kViolationsMax = 20;

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
  std::string endpoints;
  for (const std::string& e : options_.endpoints) endpoints += (endpoints.empty() ? "" : ",") + e;
  std::vector<std::string> argv_s{options_.locker,
                                  "--endpoints", endpoints,
                                  "--lock", "/locks/coord-faults",
                                  "--seed", std::to_string(options_.seed * 1000 + locker.index),
                                  "--ttl-ms", std::to_string(options_.ttl_ms),
                                  "--pause-percent", std::to_string(options_.pause_percent)};
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    throw std::runtime_error(std::string("socketpair: ") + std::strerror(errno));
  }
  pid_t pid = -1;
  try {
    pid = spawn_child(SpawnSpec{std::move(argv_s), std::nullopt,
                                fmt::format("{}/locker{}.log", options_.work_dir, locker.index), "", pair[1]});
  } catch (...) {
    ::close(pair[0]);
    ::close(pair[1]);
    throw;
  }
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
  // No bound: on a loaded machine the stop may come late, and a SIGCONT sent before it would
  // leave the locker stopped for good.
  bool stopped = false;
  while (!stopped && !stopping_) {
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
      (void)send_line(locker.channel, accepted ? "A" : fmt::format("R {}", highest));  // gone: its reader ends next
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
