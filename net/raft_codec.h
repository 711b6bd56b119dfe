// Encodes raft::Message to the bytes of net/raft_message.fbs and back. Decoding trusts nothing:
// the input comes off a socket, so every malformed, truncated or hostile buffer is refused with
// a reason (never an abort, never an out-of-bounds read), and the message that comes out holds
// only values the core has names for.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "raft/types.h"

namespace coord::net {

// Largest encoded message either side accepts. An Append carries up to
// raft::Config::append_bytes_max of entries but always at least one entry, so this must stay
// above the largest entry the state machine admits plus that batch; snapshot chunks are far
// smaller. It bounds what one peer can make us buffer and verify.
inline constexpr std::size_t raft_message_bytes_max = std::size_t{128} << 20;

// Aborts (COORD_ASSERT) when the encoding would exceed raft_message_bytes_max: the core and the
// state machine bound what goes into a message, so an oversized one is a local bug, and sending
// it would only make every receiver refuse it.
std::string encode(const raft::Message& message);

// nullopt for anything that is not a complete, well-formed message of a known type; then
// `*error` (when given) says what was wrong.
std::optional<raft::Message> decode(std::string_view bytes, std::string* error);

}  // namespace coord::net
