// The one exception type of the Raft log's storage (the LMDB store and its snapshot files).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace coord::storage {

class LogStoreError : public std::runtime_error {
 public:
  enum class Kind : std::uint8_t {
    Io,       // the OS or LMDB failed (errno or LMDB code in code())
    Full,     // the map is full (MDB_MAP_FULL), one write is too big for a transaction, or the
              // file system has no room (ENOSPC, EDQUOT, a short write): nothing was written,
              // the store stays usable, and the same call may be retried
    Corrupt,  // a checksum, record or log invariant does not hold on disk
    Invalid,  // the caller broke a storage rule (a gap, a term going backwards, ...)
    InUse,    // another process (or another store in this one) has the directory open
    Failed,   // an earlier commit failed: the store refuses everything until reopened
  };

  LogStoreError(Kind kind, int code, const std::string& message)
      : std::runtime_error(message), kind_(kind), code_(code) {}

  Kind kind() const { return kind_; }
  int code() const { return code_; }  // LMDB or errno code; 0 when there is none

 private:
  Kind kind_;
  int code_;
};

const char* to_string(LogStoreError::Kind kind);

}  // namespace coord::storage
