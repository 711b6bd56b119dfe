#include "fencing/status.h"

#include <utility>

namespace coord::fencing {

const char* to_string(Code code) {
  switch (code) {
    case Code::Ok: return "ok";
    case Code::TimedOut: return "timed-out";
    case Code::SessionLost: return "session-lost";
    case Code::Canceled: return "canceled";
    case Code::NotHeld: return "not-held";
    case Code::Busy: return "busy";
    case Code::Unknown: return "unknown";
    case Code::Failed: return "failed";
  }
  return "?";
}

Status make_status(Code code, std::string message) {
  Status s;
  s.code = code;
  s.message = std::move(message);
  return s;
}

Status kv_failure(const kv::Status& status) {
  Status s;
  s.code = Code::Failed;
  s.kv_error = status.error;
  s.message = status.message;
  return s;
}

}  // namespace coord::fencing
