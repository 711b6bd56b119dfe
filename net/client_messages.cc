#include "net/client_messages.h"

#include <fmt/format.h>

#include <string>
#include <utility>

namespace coord::net {

const char* to_string(RequestKind kind) {
  switch (kind) {
    case RequestKind::Write: return "write";
    case RequestKind::Get: return "get";
    case RequestKind::Exists: return "exists";
    case RequestKind::List: return "list";
    case RequestKind::Range: return "range";
    case RequestKind::Status: return "status";
    case RequestKind::MemberList: return "member-list";
    case RequestKind::LeaseTtl: return "lease-ttl";
    case RequestKind::Watch: return "watch";
    case RequestKind::WatchCancel: return "watch-cancel";
    case RequestKind::Snapshot: return "snapshot";
    case RequestKind::MemberAdd: return "member-add";
    case RequestKind::MemberRemove: return "member-remove";
    case RequestKind::MemberPromote: return "member-promote";
  }
  return "unknown";
}

std::string to_string(ErrorCode code) {
  const auto n = static_cast<std::uint16_t>(code);
  if (n <= kv::error_code_max) return kv::to_string(static_cast<kv::Error>(n));
  switch (code) {
    case ErrorCode::NotLeader: return "not-leader";
    case ErrorCode::Unavailable: return "unavailable";
    case ErrorCode::Timeout: return "timeout";
    case ErrorCode::NoSpace: return "no-space";
    case ErrorCode::UnknownMember: return "unknown-member";
    case ErrorCode::MemberExists: return "member-exists";
    case ErrorCode::NotLearner: return "not-learner";
    case ErrorCode::LastVoter: return "last-voter";
    default: break;
  }
  return fmt::format("unknown-{}", n);
}

ErrorCode from_kv(kv::Error error) {
  // Same numbers by construction (static_asserts in client_codec.cc).
  return static_cast<ErrorCode>(static_cast<std::uint16_t>(error));
}

bool retryable(ErrorCode code) {
  return code == ErrorCode::NotLeader || code == ErrorCode::Unavailable || code == ErrorCode::Timeout ||
         code == ErrorCode::NoSpace;
}

ClientResponse error_response(std::uint64_t id, ErrorCode error, std::string message) {
  ClientResponse r;
  r.id = id;
  r.error = error;
  r.message = std::move(message);
  return r;
}

}  // namespace coord::net
