#include "kv/error.h"

#include <fmt/format.h>

#include <utility>


namespace coord::kv {

const char* to_string(Error error) {
  switch (error) {
    case Error::Ok: return "ok";
    case Error::InvalidPath: return "invalid-path";
    case Error::NotFound: return "not-found";
    case Error::AlreadyExists: return "already-exists";
    case Error::NotEmpty: return "not-empty";
    case Error::CompareFailed: return "compare-failed";
    case Error::TooLarge: return "too-large";
    case Error::Compacted: return "compacted";
    case Error::InvalidRequest: return "invalid-request";
    case Error::StaleSequence: return "stale-sequence";
    case Error::FutureRevision: return "future-revision";
    case Error::WatchOverflow: return "watch-overflow";
    case Error::TooManyWatchers: return "too-many-watchers";
    case Error::UnknownWatch: return "unknown-watch";
    case Error::StaleState: return "stale-state";
    case Error::LeaseNotFound: return "lease-not-found";
    case Error::LeaseExists: return "lease-exists";
    case Error::NoChildrenForEphemerals: return "no-children-for-ephemerals";
    case Error::TooManyLeases: return "too-many-leases";
    case Error::LeaseRenewed: return "lease-renewed";
  }
  return "?";
}

Status make_status(Error error, std::string message) {
  Status status;
  status.error = error;
  status.message = std::move(message);
  return status;
}

Status compacted_status(Revision asked, Revision compact_revision) {
  Status status = make_status(
      Error::Compacted,
      fmt::format("revision {} is compacted; history starts at {}", asked, compact_revision));
  status.compact_revision = compact_revision;
  return status;
}

}  // namespace coord::kv
