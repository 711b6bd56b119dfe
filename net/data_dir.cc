#include "net/data_dir.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace coord::net {

namespace {

constexpr const char* identity_file = "member";
constexpr int identity_format = 1;

std::string errno_text(int err) { return fmt::format("{} ({})", std::strerror(err), err); }

std::string encode_identity(const MemberIdentity& id) {
  // `joined` only when set, so identity files of initial members read the same as before.
  return fmt::format("format={}\ncluster={}\nid={}\nname={}\ninitial_cluster={}\n{}", identity_format,
                     id.cluster, id.id, id.name, id.initial_cluster, id.joined ? "joined=1\n" : "");
}

MemberIdentity decode_identity(const std::string& text, const std::string& path) {
  std::map<std::string, std::string> fields;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const std::size_t eq = line.find('=');
    if (eq == std::string::npos) throw DataDirError(fmt::format("{}: malformed line '{}'", path, line));
    fields[line.substr(0, eq)] = line.substr(eq + 1);
  }
  if (fields["format"] != std::to_string(identity_format)) {
    throw DataDirError(fmt::format("{}: unknown format '{}'", path, fields["format"]));
  }
  MemberIdentity id;
  id.cluster = fields["cluster"];
  id.name = fields["name"];
  id.initial_cluster = fields["initial_cluster"];
  id.joined = fields["joined"] == "1";
  const std::string& id_text = fields["id"];
  const auto [end, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), id.id);
  if (ec != std::errc() || end != id_text.data() + id_text.size() || id.id == 0 || id.cluster.empty() ||
      id.name.empty()) {
    throw DataDirError(fmt::format("{}: missing or malformed fields", path));
  }
  return id;
}

void fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) throw DataDirError(fmt::format("open {}: {}", path, errno_text(errno)));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw DataDirError(fmt::format("fsync {}: {}", path, errno_text(err)));
}

}  // namespace

// Write to a temporary name, fsync, rename, fsync the directory: a crash leaves the old file
// or the new one, never a torn one. No room on the way (a full disk) leaves the old file and
// throws DataDirNoSpace, so that the caller can try again once there is room.
void write_file_atomically(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string tmp = fmt::format("{}/{}.tmp", dir, name);
  const std::string path = fmt::format("{}/{}", dir, name);
  const auto failed = [&](const char* what, const std::string& target, int err) {
    ::unlink(tmp.c_str());
    const std::string message = fmt::format("{} {}: {}", what, target, errno_text(err));
    if (err == ENOSPC || err == EDQUOT) throw DataDirNoSpace(message);
    throw DataDirError(message);
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) failed("create", tmp, errno);
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : ENOSPC;  // a write of 0 bytes to a regular file: no room
      ::close(fd);
      failed("write", tmp, err);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    failed("fsync", tmp, err);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) failed("rename", tmp + " -> " + path, errno);
  fsync_path(dir, O_RDONLY | O_DIRECTORY);
}

std::string raft_dir(const std::string& data_dir) { return fmt::format("{}/raft", data_dir); }
std::string kv_dir(const std::string& data_dir) { return fmt::format("{}/kv", data_dir); }

bool claim_data_dir(const std::string& data_dir, const MemberIdentity& identity) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(data_dir, ec);
  if (ec) throw DataDirError(fmt::format("create {}: {}", data_dir, ec.message()));
  const std::string path = fmt::format("{}/{}", data_dir, identity_file);
  if (!fs::exists(path, ec)) {
    if (fs::exists(raft_dir(data_dir), ec) || fs::exists(kv_dir(data_dir), ec)) {
      throw DataDirError(fmt::format(
          "{} holds a Raft log or state but no '{}' file: it is damaged or was not made by coordd; "
          "refusing to start on it",
          data_dir, identity_file));
    }
    write_file_atomically(data_dir, identity_file, encode_identity(identity));
    return true;
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) throw DataDirError(fmt::format("read {}: failed", path));
  const MemberIdentity stored = decode_identity(text.str(), path);
  if (stored.cluster != identity.cluster) {
    throw DataDirError(fmt::format(
        "{} belongs to cluster {} (initial cluster {}), not to {} (initial cluster {}); refusing to "
        "start. Use the original --initial-cluster/--cluster-token, or another --data-dir",
        data_dir, stored.cluster, stored.initial_cluster, identity.cluster, identity.initial_cluster));
  }
  if (stored.id != identity.id || stored.name != identity.name) {
    throw DataDirError(fmt::format(
        "{} belongs to member {} (id {}), not to {} (id {}); refusing to start. Use --name {}, or "
        "another --data-dir",
        data_dir, stored.name, stored.id, identity.name, identity.id, stored.name));
  }
  if (stored.joined != identity.joined) {
    throw DataDirError(fmt::format(
        "{} was created with --initial-cluster-state {}; restart member {} with the same flags it first "
        "started with",
        data_dir, stored.joined ? "existing" : "new", stored.name));
  }
  return false;
}

}  // namespace coord::net
