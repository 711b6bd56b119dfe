// The state machine's LMDB environment commits without fsync (MDB_NOSYNC): the Raft log is the
// durable record, and after a crash the state machine replays it from its own applied index.
// That is safe as long as the kv file is intact:
// - a process crash (kill -9) loses nothing: LMDB's writes are in the page cache, which survives,
//   and a commit torn by the kill leaves the previous meta page in force;
// - a machine crash (power loss, kernel panic) may drop any unsynced page in any order, so the
//   file may be torn: it must be thrown away and rebuilt from the log (its snapshot and entries).
// This marker tells the two apart. Before the first unsynced commit the host writes, and fsyncs,
// a file in the kv directory holding the machine's boot id; after a clean stop (mdb_env_sync
// done) it removes it. At start a marker with another boot id means the machine restarted with
// unsynced state: the kv files are discarded.
#pragma once

#include <string>

namespace coord::net {

inline constexpr const char* boot_id_path_default = "/proc/sys/kernel/random/boot_id";

enum class MarkerState {
  Absent,     // clean stop (or never run unsynced): the kv file is as durable as it is
  SameBoot,   // the process died, the machine did not: the page cache kept every commit
  OtherBoot,  // the machine restarted while commits were unsynced: the kv file may be torn
};

// The boot id read from `path` (trimmed). Throws std::runtime_error when it cannot be read.
std::string read_boot_id(const std::string& path);

// What the marker in `state_dir` says about the current boot.
MarkerState check_sync_marker(const std::string& state_dir, const std::string& boot_id);

// Writes the marker (creating `state_dir` if needed) and makes it durable (file and directory
// fsync) before returning. Throws std::runtime_error on any I/O error.
void arm_sync_marker(const std::string& state_dir, const std::string& boot_id);

// Removes the marker durably. Call only once the state is synced. Throws std::runtime_error.
void disarm_sync_marker(const std::string& state_dir);

// Removes the LMDB files of the state machine (data.mdb, lock.mdb) so it restarts empty and is
// rebuilt from the Raft log. Throws std::runtime_error.
void discard_state_files(const std::string& state_dir);

}  // namespace coord::net
