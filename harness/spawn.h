// Starting the harness's child processes (coordd members, lock clients): fork and exec, with
// only async-signal-safe calls in between, stdout and stderr appended to a log file, optionally
// inside a network namespace and with a channel as file descriptor 3.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace coord::harness {

// Where a child finds the channel it was given.
inline constexpr int kChildChannelFd = 3;

struct SpawnSpec {
  std::vector<std::string> argv;                 // argv[0]: the binary's path
  std::optional<std::vector<std::string>> env;  // nullopt: this process's environment
  std::string log_path;                          // stdout and stderr are appended here
  std::string netns_path;                        // "": stay in this network namespace
  int channel_fd = -1;                           // >= 0: the child's fd 3
};

// The child dies with the thread that spawned it (PR_SET_PDEATHSIG), even one killed by SIGKILL,
// so spawn from the main thread. Throws std::runtime_error when it cannot start.
pid_t spawn_child(const SpawnSpec& spec);

}  // namespace coord::harness
