// Commands and results to and from bytes (flatbuffers, schema kv/command.fbs). Decoding never
// trusts its input: the bytes are verified before they are read and every enum is range-checked,
// so malformed bytes come back as InvalidRequest, never as a crash.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "kv/command.h"

namespace coord::kv {

std::string encode_command(const Command& command);

struct DecodedCommand {
  Status status;  // InvalidRequest when the bytes are not a well-formed command
  Command command;
};
DecodedCommand decode_command(std::string_view bytes);

// Results are encoded deterministically: equal results give equal bytes.
std::string encode_result(const Result& result);
std::optional<Result> decode_result(std::string_view bytes);

}  // namespace coord::kv
