#include "harness/spawn.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace coord::harness {

pid_t spawn_child(const SpawnSpec& spec) {
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<std::string> argv_s = spec.argv, env_s;
  std::vector<char*> argv, envp;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (spec.env) {
    env_s = *spec.env;
    for (std::string& e : env_s) envp.push_back(e.data());
    envp.push_back(nullptr);
  }
  char** const environment = spec.env ? envp.data() : environ;
  int ns_fd = -1;
  if (!spec.netns_path.empty()) {
    ns_fd = ::open(spec.netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns_fd < 0) throw std::runtime_error("open " + spec.netns_path + ": " + std::strerror(errno));
  }
  const int log_fd = ::open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    const int err = errno;
    if (ns_fd >= 0) ::close(ns_fd);
    throw std::runtime_error("open " + spec.log_path + ": " + std::strerror(err));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    if (ns_fd >= 0) ::close(ns_fd);
    ::close(log_fd);
    throw std::runtime_error("fork failed");
  }
  if (pid == 0) {
    // Signals the harness blocks on its threads must not stay blocked in the child.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) ::_exit(125);
    if (ns_fd >= 0 && ::setns(ns_fd, CLONE_NEWNET) != 0) ::_exit(126);
    // The log first: it may itself be fd 3, which the channel then replaces.
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    if (spec.channel_fd == kChildChannelFd) {
      ::fcntl(kChildChannelFd, F_SETFD, 0);  // dup2 onto itself would keep FD_CLOEXEC
    } else if (spec.channel_fd >= 0) {
      ::dup2(spec.channel_fd, kChildChannelFd);  // the copy has no FD_CLOEXEC
    }
    ::execve(argv[0], argv.data(), environment);
    ::_exit(127);
  }
  if (ns_fd >= 0) ::close(ns_fd);
  ::close(log_fd);
  return pid;
}

}  // namespace coord::harness
