// How full the file system under a store is, and whether a failed LMDB commit was for lack of
// room. Shared by the Raft log store and the host (net/disk_full.h), which holds a write (or an
// apply) that failed this way and retries it instead of stopping.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace coord::storage {

// Free space for unprivileged writers on the file system holding `path`; nullopt if unknown.
std::optional<std::uint64_t> free_disk_bytes(const std::string& path);

// Whether an LMDB commit in `directory` that failed with `rc` failed because the file system has
// no room: ENOSPC or EDQUOT, or EIO (LMDB's "short write, filesystem full?", which is what a
// write cut short by the space running out looks like) while the file system is nearly full.
// LMDB writes a transaction's pages before its meta page, so such a commit changed nothing that
// a reader or a later open could see, and the environment stays usable: retry it later.
bool failed_for_lack_of_space(int rc, const std::string& directory);

}  // namespace coord::storage
