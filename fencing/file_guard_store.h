// A durable GuardStore: one small file per resource in a directory, replaced atomically.
//
// This file does I/O (POSIX open/write/fsync/rename), so it is not part of the deterministic
// core: it is for applications guarding a real resource, and for tests. The simulator and the
// recipes never use it.
//
// save(): write "<dir>/guard-<hex of resource>.tmp", fsync it, rename it over
// "<dir>/guard-<hex of resource>", fsync the directory. A crash at any point leaves either the
// old file or the new one, never a torn one, and once save() returns the new token survives a
// power loss. load(): a missing file is token 0; a file that does not parse, names another
// resource or fails its checksum is an error (the Guard then refuses everything for that
// resource rather than forget a token).
//
// The directory must exist. One process at a time per directory.
#pragma once

#include <string>
#include <string_view>

#include "fencing/guard.h"

namespace coord::fencing {

class FileGuardStore final : public GuardStore {
 public:
  explicit FileGuardStore(std::string directory) : directory_(std::move(directory)) {}

  StoreStatus load(std::string_view resource, Token& highest) override;
  StoreStatus save(std::string_view resource, Token highest) override;

  // The file holding `resource`'s token.
  std::string path_of(std::string_view resource) const;

 private:
  std::string directory_;
};

// The file's one line, "coord-guard 1 <token> <checksum>\n", and its parser (nullopt-like
// failure as false). Exposed for tests of corrupt files.
std::string encode_guard_file(std::string_view resource, Token highest);
bool decode_guard_file(std::string_view bytes, std::string_view resource, Token& highest);

}  // namespace coord::fencing
