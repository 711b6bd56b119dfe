// A replica's data directory: who it belongs to and where its stores live.
//
//   DIR/member   identity: cluster token, member id and name, the initial cluster (text,
//                key=value lines; written once, atomically, before any store exists)
//   DIR/raft/    the Raft log (storage::WalLogStore; one written by LmdbLogStore is converted)
//   DIR/kv/      the state machine (kv::LmdbStorage)
//
// Starting a member on a directory of another cluster or another member would mix two
// histories, so claim_data_dir() refuses it with a message that says what the directory is.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace coord::net {

struct MemberIdentity {
  std::string cluster;  // token
  std::uint64_t id = 0;
  std::string name;
  std::string initial_cluster;  // canonical spec, for the error message
  // Started with --initial-cluster-state existing: the member joined a running cluster, so its
  // log starts empty (no initial configuration) however often it restarts.
  bool joined = false;

  bool operator==(const MemberIdentity&) const = default;
};

class DataDirError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// The file system had no room (ENOSPC, EDQUOT) for a file written atomically: nothing was
// replaced, the old file (if any) is intact, and the same write may be tried again later.
class DataDirNoSpace : public DataDirError {
 public:
  using DataDirError::DataDirError;
};

std::string raft_dir(const std::string& data_dir);
std::string kv_dir(const std::string& data_dir);

// Creates the directory and its identity file, or checks an existing one against `identity`.
// Throws DataDirError on a mismatch, on a directory holding stores but no identity, and on any
// I/O error. Returns true when the directory was new.
bool claim_data_dir(const std::string& data_dir, const MemberIdentity& identity);

// Writes DIR/name so that a crash leaves the old file or the new one (temporary file, fsync,
// rename, fsync of the directory). Throws DataDirError.
void write_file_atomically(const std::string& dir, const std::string& name, const std::string& text);

}  // namespace coord::net
