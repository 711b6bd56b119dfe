// What a recipe call (session, lock, election) ended with. Recipes sit above the state machine,
// so besides its errors they report what only a client sees: an outcome it could not learn, a
// session that ended under it, a wait that timed out.
#pragma once

#include <cstdint>
#include <string>

#include "kv/error.h"

namespace coord::fencing {

enum class Code : std::uint8_t {
  Ok = 0,
  TimedOut = 1,     // try_lock: not acquired in time (its key was deleted again)
  SessionLost = 2,  // the session ended (deadline passed, lease gone, closed) first
  Canceled = 3,     // the caller gave up (unlock while waiting)
  NotHeld = 4,      // the lock or leadership is not (or no longer) held
  Busy = 5,         // a call of the same kind is still running on this object
  Unknown = 6,      // the client gave up on a write: whether it was applied is not known
  Failed = 7,       // the state machine refused a request (`kv_error` says why)
};

const char* to_string(Code code);

struct Status {
  Code code = Code::Ok;
  kv::Error kv_error = kv::Error::Ok;  // with Failed
  std::string message;

  bool ok() const { return code == Code::Ok; }
  bool operator==(const Status&) const = default;
};

Status make_status(Code code, std::string message);
Status kv_failure(const kv::Status& status);

}  // namespace coord::fencing
