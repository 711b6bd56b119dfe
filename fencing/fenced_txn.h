// Fencing tokens, and the fenced write: a transaction that changes something only while the
// lock that authorizes it is still held.
//
// A token is the revision at which the holder's lock key was created (its create_revision).
// Revisions are a global counter that every committed write increments and that survives
// restarts and leader changes (it is part of the replicated state and of every snapshot), so
// a later holder, whose key was necessarily created after the previous holder's key, always has
// a strictly greater token. Nothing else is needed: no separate counter to keep in step.
#pragma once

#include <string>
#include <vector>

#include "kv/command.h"
#include "kv/types.h"

namespace coord::fencing {

using Token = kv::Revision;  // 0 is never a token: the first write has revision 1

// The fenced write recipe: `ops` run only if `lock_key` still exists and was created at
// `token`, that is, only if the holder that got `token` still holds the lock. Otherwise the
// request fails with CompareFailed and changes nothing (failed_compare 0: the key is gone;
// 1: the key was deleted and created again by someone else). Checked by the state machine in
// the same atomic step as the write, so no pause of the client between "am I still the
// holder?" and the write can let a stale holder through.
kv::Txn fenced_txn(std::string lock_key, Token token, std::vector<kv::Op> ops);

// Which comparison of a fenced_txn failed, as a sentence (for errors and logs).
const char* fenced_txn_failure(int failed_compare);

}  // namespace coord::fencing
