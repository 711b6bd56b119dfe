// Paths: absolute, '/'-separated, UTF-8. "/" is the root; every other path is "/" followed by
// one or more segments joined by "/" (no empty segment, no trailing slash). Segments are at most
// segment_bytes_max bytes, may not be "." or "..", and contain no control characters (bytes
// below 0x20 and 0x7F). The storage layout relies on the last rule: "\0" and "\x01" never occur
// in a path, so they can end a path inside a key and sort before any of its descendants.
#pragma once

#include <string>
#include <string_view>

#include "kv/error.h"

namespace coord::kv {

// Ok, or InvalidPath saying what is wrong.
Status check_path(std::string_view path);
bool valid_path(std::string_view path);

// Helpers below take valid paths.
inline bool is_root(std::string_view path) { return path == "/"; }
// "/a/b" -> "/a", "/a" -> "/". Not for the root.
std::string_view parent_of(std::string_view path);
// "/a/b" -> "b". Not for the root.
std::string_view name_of(std::string_view path);
// The prefix every descendant starts with: "/" for the root, else path + "/".
std::string child_prefix(std::string_view path);
// parent + "/" + name, without doubling the root's slash.
std::string join_path(std::string_view parent, std::string_view name);
// `path` is `root` or below it ("/a" covers "/a" and "/a/x", never "/ab").
bool in_subtree(std::string_view root, std::string_view path);
// `path` is a direct child of `parent`.
bool is_child_of(std::string_view parent, std::string_view path);

}  // namespace coord::kv
