#include "harness/member.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "harness/spawn.h"

namespace coord::harness {

namespace fs = std::filesystem;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_text(const std::string& path, const std::string& text) {
  // Written beside and renamed, so libfaketime never reads half a spec.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text << "\n";
  }
  fs::rename(tmp, path);
}

void reap(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

Member::Member(MemberConfig config) : config_(std::move(config)) {
  fs::create_directories(data_dir());
  const std::string size = fmt::format("size={}m", config_.disk_mb);
  if (::mount("tmpfs", data_dir().c_str(), "tmpfs", 0, size.c_str()) != 0) {
    throw std::runtime_error(fmt::format("mount tmpfs on {}: {}", data_dir(), std::strerror(errno)));
  }
  write_text(faketime_file(), "+0");
}

Member::~Member() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    reap(pid_);
    pid_ = -1;
  }
  ::umount2(data_dir().c_str(), MNT_DETACH);
  fs::remove(config_.dir + "/pid");
}

void Member::start() {
  if (pid_ > 0) throw std::logic_error("member already running");
  std::vector<std::string> argv_s{config_.coordd};
  argv_s.insert(argv_s.end(), config_.args.begin(), config_.args.end());
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    if (entry.rfind("LD_PRELOAD=", 0) == 0 || entry.rfind("FAKETIME", 0) == 0 ||
        entry.rfind("ASAN_OPTIONS=", 0) == 0) {
      continue;
    }
    env_s.push_back(entry);
  }
  std::string asan = "verify_asan_link_order=0";
  if (const char* a = std::getenv("ASAN_OPTIONS")) asan = std::string(a) + ":" + asan;
  env_s.push_back("ASAN_OPTIONS=" + asan);
  if (!config_.faketime_library.empty()) {
    env_s.push_back("LD_PRELOAD=" + config_.faketime_library);
    env_s.push_back("FAKETIME_TIMESTAMP_FILE=" + faketime_file());
    // Re-read the file at most once a second (not on every clock read).
    env_s.push_back("FAKETIME_CACHE_DURATION=1");
  }
  const pid_t pid = spawn_child(SpawnSpec{std::move(argv_s), std::move(env_s), config_.dir + "/coordd.log",
                                          "/run/netns/" + config_.ns, -1});
  pid_ = pid;
  paused_ = false;
  write_text(config_.dir + "/pid", std::to_string(pid));
}

void Member::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  reap(pid_);
  pid_ = -1;
  paused_ = false;
}

void Member::pause() {
  if (pid_ > 0 && ::kill(pid_, SIGSTOP) == 0) paused_ = true;
}

void Member::resume() {
  if (pid_ > 0) ::kill(pid_, SIGCONT);
  paused_ = false;
}

std::optional<int> Member::exited() {
  if (pid_ <= 0) return std::nullopt;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) != pid_) return std::nullopt;
  pid_ = -1;
  paused_ = false;
  return status;
}

std::uint64_t Member::rss_kib() const {
  if (pid_ <= 0) return 0;
  std::istringstream in(read_text(fmt::format("/proc/{}/status", pid_)));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

void Member::set_clock(const std::string& spec) { write_text(faketime_file(), spec); }

void Member::fill_disk() {
  // Shrink the tmpfs to what it holds now (a page more if the kernel wants it): every write
  // that needs a new block then fails with ENOSPC, and no memory is spent filling it.
  struct statvfs st {};
  if (::statvfs(data_dir().c_str(), &st) != 0) return;
  const std::uint64_t used_kib = (st.f_blocks - st.f_bfree) * st.f_frsize / 1024;
  for (std::uint64_t slack_kib = 4; slack_kib <= 1024; slack_kib *= 2) {
    const std::string options = fmt::format("size={}k", used_kib + slack_kib);
    if (::mount("tmpfs", data_dir().c_str(), "tmpfs", MS_REMOUNT, options.c_str()) == 0) return;
  }
}

void Member::free_disk() {
  const std::string options = fmt::format("size={}m", config_.disk_mb);
  (void)::mount("tmpfs", data_dir().c_str(), "tmpfs", MS_REMOUNT, options.c_str());
}

void remove_member_leftovers(const std::string& work_dir) {
  if (!fs::exists(work_dir)) return;
  for (const auto& entry : fs::directory_iterator(work_dir)) {
    const std::string pid_file = entry.path().string() + "/pid";
    if (!fs::exists(pid_file)) continue;
    const pid_t pid = static_cast<pid_t>(std::atol(read_text(pid_file).c_str()));
    std::string cmdline = read_text(fmt::format("/proc/{}/cmdline", pid));
    for (char& c : cmdline) c = c == '\0' ? ' ' : c;
    if (pid > 0 && cmdline.find("coordd") != std::string::npos && cmdline.find(work_dir) != std::string::npos) {
      ::kill(pid, SIGKILL);
      for (int i = 0; i < 100 && fs::exists(fmt::format("/proc/{}", pid)); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }
  std::istringstream mounts(read_text("/proc/mounts"));
  for (std::string line; std::getline(mounts, line);) {
    std::istringstream fields(line);
    std::string source, target;
    fields >> source >> target;
    if (target.rfind(work_dir + "/", 0) == 0) ::umount2(target.c_str(), MNT_DETACH);
  }
}

}  // namespace coord::harness
