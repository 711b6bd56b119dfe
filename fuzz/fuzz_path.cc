// Path parsing and the helpers built on it (kv/path.h), and the storage keys that embed paths
// (kv/layout.h).
//
// The input is two candidate paths (split at a position the first byte picks). Checked:
//   - check_path agrees with an independent reading of the rules in kv/path.h (its own UTF-8
//     decoder, its own segment walk): no valid path is refused, no invalid one accepted;
//   - a valid path holds neither "\0" nor "\x01" (the layout ends paths with them);
//   - for a valid non-root path: its parent is valid, its name is one non-empty segment, and
//     join_path(parent, name) gives the path back; it is a child of its parent and in its
//     subtree;
//   - history, change and lease-key keys of a valid path parse back to the same path and
//     numbers;
//   - for two valid paths: in_subtree and is_child_of agree with their definitions, and the
//     history keys of the two sort as the paths do, with every version of the first before any
//     of the second when the first sorts before it (what the ordered scans rely on).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_util.h"
#include "kv/layout.h"
#include "kv/limits.h"
#include "kv/path.h"

namespace {

using namespace coord;

// RFC 3629, decoded the long way: the code point is assembled, then range-checked.
bool reference_utf8(std::string_view s, std::size_t& i) {
  const auto b0 = static_cast<std::uint8_t>(s[i]);
  std::size_t len = 0;
  std::uint32_t cp = 0;
  if ((b0 & 0x80) == 0) {
    ++i;
    return true;
  } else if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    cp = b0 & 0x07;
  } else {
    return false;
  }
  if (s.size() - i < len) return false;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<std::uint8_t>(s[i + k]);
    if ((b & 0xC0) != 0x80) return false;
    cp = cp << 6 | (b & 0x3F);
  }
  const std::uint32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
  i += len;
  return true;
}

bool reference_valid(std::string_view p) {
  if (p.empty() || p.size() > kv::path_bytes_max || p[0] != '/') return false;
  if (p == "/") return true;
  // Split on every '/', after the leading one.
  std::size_t start = 1;
  while (true) {
    const std::size_t slash = p.find('/', start);
    const std::string_view seg = p.substr(start, slash == std::string_view::npos ? p.npos : slash - start);
    if (seg.empty() || seg.size() > kv::segment_bytes_max || seg == "." || seg == "..") return false;
    for (std::size_t i = 0; i < seg.size();) {
      const auto b = static_cast<std::uint8_t>(seg[i]);
      if (b < 0x20 || b == 0x7F) return false;
      if (!reference_utf8(seg, i)) return false;
    }
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

void check_one(std::string_view p, std::uint64_t number) {
  const bool valid = kv::valid_path(p);
  FUZZ_CHECK(valid == reference_valid(p), "check_path says %d for a path of %zu bytes", valid, p.size());
  FUZZ_CHECK(valid == kv::check_path(p).ok(), "valid_path and check_path disagree");
  if (!valid) {
    FUZZ_CHECK(kv::check_path(p).error == kv::Error::InvalidPath, "refused without InvalidPath");
    return;
  }
  FUZZ_CHECK(p.find('\0') == std::string_view::npos && p.find('\x01') == std::string_view::npos,
             "a valid path holds a byte the layout uses as a terminator");
  FUZZ_CHECK(kv::in_subtree(p, p) && kv::in_subtree("/", p), "a path outside its own subtree");

  // The parsed keys are views into the keys: keep them alive.
  const std::string history = kv::history_key(p, number);
  const auto hk = kv::parse_history_key(history);
  FUZZ_CHECK(hk && hk->path == p && hk->revision == number, "history key does not parse back");
  const std::string change = kv::change_key(number, p);
  const auto ck = kv::parse_change_key(change);
  FUZZ_CHECK(ck && ck->path == p && ck->revision == number, "change key does not parse back");
  const std::string lease = kv::lease_keys_key(number, p);
  const auto lk = kv::parse_lease_keys_key(lease);
  FUZZ_CHECK(lk && lk->path == p && lk->lease == number, "lease key does not parse back");
  FUZZ_CHECK(kv::history_key(p, number) < kv::history_key_end(p), "history key past its end key");

  if (kv::is_root(p)) {
    FUZZ_CHECK(kv::child_prefix(p) == "/", "the root's child prefix");
    return;
  }
  const std::string_view parent = kv::parent_of(p);
  const std::string_view name = kv::name_of(p);
  FUZZ_CHECK(kv::valid_path(parent), "the parent of a valid path is invalid");
  FUZZ_CHECK(!name.empty() && name.find('/') == std::string_view::npos, "name is not one segment");
  FUZZ_CHECK(kv::join_path(parent, name) == p, "join_path(parent, name) is not the path");
  FUZZ_CHECK(kv::is_child_of(parent, p), "not a child of its parent");
  FUZZ_CHECK(kv::in_subtree(parent, p), "not in its parent's subtree");
  FUZZ_CHECK(!kv::in_subtree(p, parent), "its parent is in its subtree");
  FUZZ_CHECK(p.starts_with(kv::child_prefix(parent)), "does not start with its parent's child prefix");
  if (p.size() + 1 + name.size() <= kv::path_bytes_max) {
    FUZZ_CHECK(kv::valid_path(kv::join_path(p, name)), "a valid name under a valid path, within the length, is invalid");
  }
}

void check_pair(std::string_view a, std::string_view b, std::uint64_t ra, std::uint64_t rb) {
  if (!kv::valid_path(a) || !kv::valid_path(b)) return;
  const bool sub = a == "/" || a == b || b.starts_with(std::string(a) + "/");
  FUZZ_CHECK(kv::in_subtree(a, b) == sub, "in_subtree disagrees with its definition");
  const bool child = b != "/" && kv::parent_of(b) == a;
  FUZZ_CHECK(kv::is_child_of(a, b) == child, "is_child_of disagrees with its definition");
  if (a < b) {
    FUZZ_CHECK(kv::history_key(a, ra) < kv::history_key(b, rb), "history keys sort unlike their paths");
    FUZZ_CHECK(kv::history_key_end(a) <= kv::history_key(b, rb), "a path's history end key passes the next path");
  }
  if (a == b && ra < rb) {
    FUZZ_CHECK(kv::history_key(a, ra) < kv::history_key(b, rb), "a path's versions sort unlike their revisions");
  }
  if (ra < rb) {
    FUZZ_CHECK(kv::change_key(ra, a) < kv::change_key(rb, b), "change keys sort unlike their revisions");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  coord::fuzz::Bytes in(data, size);
  const std::uint64_t ra = in.u8();
  const std::uint64_t rb = in.u64();
  const std::size_t split = in.u16();
  const std::string rest = in.rest();
  const std::string a = rest.substr(0, split);
  const std::string b = split < rest.size() ? rest.substr(split) : std::string();
  check_one(a, ra);
  check_one(b, rb);
  check_pair(a, b, ra, rb);
  check_pair(b, a, rb, ra);
  return 0;
}
