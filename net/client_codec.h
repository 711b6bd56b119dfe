// Client requests and responses to the bytes of net/client_protocol.fbs and back. Decoding
// trusts nothing (a client port is open to anyone who can connect): size first, then the file
// identifier, then the flatbuffers Verifier with tight depth and table bounds, then every enum
// against the values this build knows. Anything else is refused with a reason, never a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "net/client_messages.h"

namespace coord::net {

// A request holds at most one kv::Command (kv::Limits::command_bytes_max, 4 MiB by default,
// configurable up to the 64 MiB value limit plus framing) or a path and a few scalars.
inline constexpr std::size_t client_request_bytes_max = std::size_t{72} << 20;
// A response holds at most one page of a range (kv::Limits::range_page_bytes_max of values
// plus paths), a write result (txn_read_bytes_max of values) or one value; bigger ones are
// replaced by a TooLarge error rather than sent.
inline constexpr std::size_t client_response_bytes_max = std::size_t{80} << 20;

std::string encode_request(const ClientRequest& request);
std::optional<ClientRequest> decode_request(std::string_view bytes, std::string* error);
// As above; `*id` gets the request's id whenever the envelope verified, so that a request of a
// kind this build does not know can still be answered.
std::optional<ClientRequest> decode_request(std::string_view bytes, std::string* error,
                                            std::uint64_t* id);

// A response that would exceed client_response_bytes_max comes out as a TooLarge error with the
// same id.
std::string encode_response(const ClientResponse& response);
std::optional<ClientResponse> decode_response(std::string_view bytes, std::string* error);

}  // namespace coord::net
