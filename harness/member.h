// One coordd process of the harness's cluster, started inside its member's network namespace,
// with libfaketime preloaded (its clock read from a file the harness rewrites to skew or jump
// it) and its data directory on a tmpfs of its own (which the harness fills to make the disk
// full). Stopped by its pid only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace coord::harness {

struct MemberConfig {
  int index = 1;                  // 1-based
  std::string name;               // m<index>
  std::string ns;                 // network namespace
  std::string dir;                // the member's directory (log, pid file, faketime file)
  std::vector<std::string> args;  // coordd's flags (data dir, addresses, cluster)
  std::string coordd;             // the binary
  std::string faketime_library;   // empty: no clock faults
  int disk_mb = 256;              // size of the data dir's tmpfs
};

class Member {
 public:
  explicit Member(MemberConfig config);
  ~Member();  // kills the process (SIGKILL, by pid) and unmounts the data dir
  Member(const Member&) = delete;
  Member& operator=(const Member&) = delete;

  const MemberConfig& config() const { return config_; }
  std::string data_dir() const { return config_.dir + "/data"; }

  void start();
  void kill9();               // SIGKILL and reap
  void pause();               // SIGSTOP
  void resume();              // SIGCONT
  bool paused() const { return paused_; }
  // Reaps the process if it exited; returns its wait status then (once), else nothing.
  std::optional<int> exited();
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // Resident set size in KiB from /proc/<pid>/status (0 when not running).
  std::uint64_t rss_kib() const;

  // Clock: libfaketime's spec for the process, e.g. "+0", "+15s", "-8s" (read at run time).
  void set_clock(const std::string& spec);
  // Disk: shrinks the data dir's tmpfs to what it holds (full), and gives the space back.
  void fill_disk();
  void free_disk();

 private:
  std::string faketime_file() const { return config_.dir + "/faketime"; }
  MemberConfig config_;
  pid_t pid_ = -1;
  bool paused_ = false;
};

// A previous run's members under `work_dir` (killed before it cleaned up): kills the coordd
// processes named in its pid files (only when /proc says they are coordd with that directory)
// and unmounts its tmpfs mounts.
void remove_member_leftovers(const std::string& work_dir);

}  // namespace coord::harness
