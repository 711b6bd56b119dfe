#include "net/member_table.h"

#include <fmt/format.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "net/data_dir.h"
#include "net/uv_util.h"

namespace coord::net {

namespace {

constexpr const char* table_file = "members";
constexpr const char* table_format = "format=1";

// FNV-1a, 64-bit, as for the cluster token: stable across builds and platforms.
std::uint64_t fnv1a(std::string_view bytes) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

bool valid_member(const MemberConfig& m) {
  return m.id != raft::kNoNode && valid_member_name(m.name) && parse_socket_address(m.peer_address, nullptr);
}

}  // namespace

raft::NodeId member_id_for_name(std::string_view name) {
  return fnv1a(fmt::format("coord-member/{}", name)) | (raft::NodeId{1} << 63);
}

std::string encode_member_context(const MemberConfig& member) {
  return fmt::format("name={}\npeer={}\n", member.name, member.peer_address);
}

std::optional<MemberConfig> decode_member_context(raft::NodeId id, std::string_view context) {
  MemberConfig m;
  m.id = id;
  std::size_t start = 0;
  while (start < context.size()) {
    std::size_t end = context.find('\n', start);
    if (end == std::string_view::npos) return std::nullopt;  // every line ends with a newline
    const std::string_view line = context.substr(start, end - start);
    if (line.starts_with("name=")) {
      m.name = std::string(line.substr(5));
    } else if (line.starts_with("peer=")) {
      m.peer_address = std::string(line.substr(5));
    }  // other keys: written by a newer build; ignored
    start = end + 1;
  }
  if (!valid_member(m)) return std::nullopt;
  return m;
}

void save_member_table(const std::string& data_dir, const std::vector<MemberConfig>& members) {
  std::string text = fmt::format("{}\n", table_format);
  for (const MemberConfig& m : members) text += fmt::format("{} {} {}\n", m.id, m.name, m.peer_address);
  write_file_atomically(data_dir, table_file, text);
}

std::optional<std::vector<MemberConfig>> load_member_table(const std::string& data_dir) {
  const std::string path = fmt::format("{}/{}", data_dir, table_file);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) throw DataDirError(fmt::format("read {}: failed", path));
  std::istringstream lines(text.str());
  std::string line;
  if (!std::getline(lines, line) || line != table_format) {
    throw DataDirError(fmt::format("{}: unknown format '{}'", path, line));
  }
  std::map<raft::NodeId, MemberConfig> members;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    std::istringstream fields(line);
    std::string id_text;
    MemberConfig m;
    fields >> id_text >> m.name >> m.peer_address;
    const auto [end, err] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), m.id);
    if (err != std::errc() || end != id_text.data() + id_text.size() || !valid_member(m)) {
      throw DataDirError(fmt::format("{}: malformed line '{}'", path, line));
    }
    members[m.id] = m;
  }
  std::vector<MemberConfig> out;
  for (auto& [id, m] : members) out.push_back(std::move(m));
  return out;
}

}  // namespace coord::net
