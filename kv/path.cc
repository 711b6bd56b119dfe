#include "kv/path.h"

#include <fmt/format.h>

#include <cstdint>

#include "kv/limits.h"
#include "raft/assert.h"

namespace coord::kv {

namespace {

// Length of the UTF-8 sequence starting at s[i], or 0 when it is not well-formed (overlong
// forms, surrogates and code points above U+10FFFF are refused, as RFC 3629 requires).
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(s[k]); };
  const std::uint8_t b0 = byte(i);
  if (b0 < 0x80) return 1;
  std::size_t len = 0;
  std::uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < len; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return len;
}

Status invalid(std::string_view path, std::string_view why) {
  std::string shown(path.substr(0, 64));
  if (path.size() > 64) shown += "...";
  return make_status(Error::InvalidPath, fmt::format("invalid path \"{}\": {}", shown, why));
}

}  // namespace

Status check_path(std::string_view path) {
  if (path.empty()) return invalid(path, "empty");
  if (path.size() > path_bytes_max) {
    return invalid(path, fmt::format("longer than path_bytes_max ({})", path_bytes_max));
  }
  if (path[0] != '/') return invalid(path, "not absolute");
  if (path.size() == 1) return {};
  if (path.back() == '/') return invalid(path, "trailing slash");
  std::size_t segment_start = 1;
  for (std::size_t i = 1; i <= path.size();) {
    if (i == path.size() || path[i] == '/') {
      const std::string_view segment = path.substr(segment_start, i - segment_start);
      if (segment.empty()) return invalid(path, "empty segment");
      if (segment.size() > segment_bytes_max) {
        return invalid(path,
                       fmt::format("segment longer than segment_bytes_max ({})", segment_bytes_max));
      }
      if (segment == "." || segment == "..") return invalid(path, "\".\" or \"..\" segment");
      segment_start = i + 1;
      ++i;
      continue;
    }
    const auto b = static_cast<std::uint8_t>(path[i]);
    if (b < 0x20 || b == 0x7F) return invalid(path, "control character");
    const std::size_t len = utf8_length(path, i);
    if (len == 0) return invalid(path, "not UTF-8");
    i += len;
  }
  return {};
}

bool valid_path(std::string_view path) { return check_path(path).ok(); }

std::string_view parent_of(std::string_view path) {
  COORD_ASSERT(path.size() > 1 && path[0] == '/', "parent_of needs a non-root path");
  const std::size_t slash = path.rfind('/');
  return slash == 0 ? std::string_view("/") : path.substr(0, slash);
}

std::string_view name_of(std::string_view path) {
  COORD_ASSERT(path.size() > 1 && path[0] == '/', "name_of needs a non-root path");
  return path.substr(path.rfind('/') + 1);
}

std::string child_prefix(std::string_view path) {
  if (is_root(path)) return "/";
  std::string prefix(path);
  prefix += '/';
  return prefix;
}

std::string join_path(std::string_view parent, std::string_view name) {
  std::string path = child_prefix(parent);
  path += name;
  return path;
}

bool in_subtree(std::string_view root, std::string_view path) {
  if (is_root(root)) return true;
  if (!path.starts_with(root)) return false;
  return path.size() == root.size() || path[root.size()] == '/';
}

bool is_child_of(std::string_view parent, std::string_view path) {
  return !is_root(path) && parent_of(path) == parent;
}

}  // namespace coord::kv
