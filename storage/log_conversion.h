// Converts a Raft log directory written by LmdbLogStore (data.mdb) into a WalLogStore in place,
// once, when a member written by an older build starts. The WAL is written into DIR.convert,
// read back and compared with what LMDB holds, and then the two directories are exchanged in one
// atomic rename (renameat2 RENAME_EXCHANGE) and the old one removed. A crash at any point leaves
// DIR either the untouched LMDB log (DIR.convert, if any, is removed and the conversion runs
// again) or the complete WAL (the leftover LMDB directory is removed).
#pragma once

#include <string>

#include "storage/wal_log_store.h"

namespace coord::storage {

// True when `directory` held an LMDB log that is now a WAL; false when there was nothing to
// convert (no data.mdb: a WAL, or a new member). Throws LogStoreError (Corrupt from the LMDB
// store's load(), or a WAL that does not read back as the LMDB log did: the LMDB log is left as
// it was in both cases).
bool convert_lmdb_log_to_wal(const std::string& directory, const WalLogStoreOptions& options = {});

}  // namespace coord::storage
