// Reads every row of every table once. On LmdbStorage a cursor checks each row's checksum as it
// moves (kv/record_checksum.h), so this finds damage at rest anywhere in the store: the first
// damaged row throws StorageError naming the file, the table and the key. Used at open
// (LmdbOptions::verify) and by the server's check after a restart (net/state_check.h).
#pragma once

#include <functional>

#include "kv/storage.h"

namespace coord::kv {

// `keep_going`, when given, is asked every 4,096 rows: false stops the walk early, and the call
// returns false. True: every row was read.
bool check_every_row(const ReadTxn& txn, const std::function<bool()>& keep_going = {});

}  // namespace coord::kv
