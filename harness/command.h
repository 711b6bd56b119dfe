// Running the system tools the harness drives (ip, tc, iptables, mount): argv only, never a
// shell, output captured so a failure can say what the tool said.
#pragma once

#include <string>
#include <vector>

namespace coord::harness {

struct CommandResult {
  int status = -1;     // exit status, or -1 when it could not run or was killed
  std::string output;  // stdout and stderr together
};

// Runs argv[0] (looked up in PATH) and waits for it.
CommandResult run_command(const std::vector<std::string>& argv);
// Runs it and throws std::runtime_error naming the command and its output when it fails.
void must_run(const std::vector<std::string>& argv);
// The same inside network namespace `ns` (ip netns exec).
CommandResult run_in(const std::string& ns, std::vector<std::string> argv);
void must_run_in(const std::string& ns, std::vector<std::string> argv);

}  // namespace coord::harness
