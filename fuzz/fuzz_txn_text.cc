// The transaction text form `coordctl txn` reads (net/txn_text.h).
//
// Input: the text. Checked:
//   - parsing never crashes; a refusal says which line ("line N: ...");
//   - a parsed transaction printed back as text (by the printer below, the inverse the format
//     describes) parses to the same transaction, and prints the same again;
//   - it survives the command codec unchanged, and applying it to a small state neither
//     crashes nor trips an assertion.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz/fuzz_util.h"
#include "fuzz/kv_state.h"
#include "kv/codec.h"
#include "kv/command.h"
#include "kv/memory_storage.h"
#include "kv/state_machine.h"
#include "net/txn_text.h"

namespace {

using namespace coord;

const char* op_text(kv::CompareOp op) {
  switch (op) {
    case kv::CompareOp::Equal: return "=";
    case kv::CompareOp::NotEqual: return "!=";
    case kv::CompareOp::Less: return "<";
    case kv::CompareOp::Greater: return ">";
  }
  return "?";
}

// The parser takes one trailing '\r' off every line (CRLF input), so a line whose last word or
// value itself ends in '\r' needs one more.
std::string line_end(std::string_view value) { return value.ends_with('\r') ? "\r\n" : "\n"; }

// Text for what the parser can produce; nullopt for what the format cannot express.
std::optional<std::string> print_compare(const kv::Compare& c) {
  switch (c.target) {
    case kv::CompareTarget::Exists:
      if (c.op != kv::CompareOp::Equal || c.number > 1) return std::nullopt;
      return std::string("compare ") + (c.number == 1 ? "exists " : "missing ") + c.path + line_end(c.path);
    case kv::CompareTarget::Version:
      return "compare version " + c.path + " " + op_text(c.op) + " " + std::to_string(c.number) + "\n";
    case kv::CompareTarget::CreateRevision:
      return "compare create_revision " + c.path + " " + op_text(c.op) + " " + std::to_string(c.number) + "\n";
    case kv::CompareTarget::ModRevision:
      return "compare mod_revision " + c.path + " " + op_text(c.op) + " " + std::to_string(c.number) + "\n";
    case kv::CompareTarget::Value:
      return "compare value " + c.path + " " + op_text(c.op) + " " + c.value + line_end(c.value);
  }
  return std::nullopt;
}

std::optional<std::string> print_op(const kv::Op& op) {
  switch (op.type) {
    case kv::OpType::Get: return "get " + op.path + line_end(op.path);
    case kv::OpType::Delete:
      return std::string("delete ") + (op.recursive ? "--recursive " : "") + op.path + line_end(op.path);
    case kv::OpType::Put:
      return std::string("put ") + (op.parents ? "--parents " : "") + op.path + " " + op.value + line_end(op.value);
    case kv::OpType::Create:
      return std::string("create ") + (op.parents ? "--parents " : "") + (op.sequential ? "--sequential " : "") +
             op.path + " " + op.value + line_end(op.value);
  }
  return std::nullopt;
}

std::string print_txn(const kv::Txn& txn) {
  std::string out;
  for (const kv::Compare& c : txn.compares) {
    const auto line = print_compare(c);
    FUZZ_CHECK(line.has_value(), "the parser made a comparison the format cannot express");
    out += *line;
  }
  out += "then\n";
  for (const kv::Op& op : txn.success) {
    const auto line = print_op(op);
    FUZZ_CHECK(line.has_value(), "the parser made an operation the format cannot express");
    out += *line;
  }
  if (!txn.failure.empty()) {
    out += "else\n";
    for (const kv::Op& op : txn.failure) out += *print_op(op);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string error;
  const auto txn = net::parse_txn_text(text, &error);
  if (!txn) {
    FUZZ_CHECK(error.starts_with("line ") || error == "empty transaction", "a refusal without its line: %s",
               error.c_str());
    return 0;
  }
  for (const kv::Op& op : txn->success) FUZZ_CHECK(op.lease == 0, "the text form set a lease");
  for (const kv::Op& op : txn->failure) FUZZ_CHECK(op.lease == 0, "the text form set a lease");

  const std::string printed = print_txn(*txn);
  const auto again = net::parse_txn_text(printed, &error);
  FUZZ_CHECK(again.has_value(), "printed text does not parse: %s", error.c_str());
  FUZZ_CHECK(*again == *txn, "printed text parses to another transaction");
  FUZZ_CHECK(print_txn(*again) == printed, "printing is not stable");

  kv::Command command;
  command.body = *txn;
  const kv::DecodedCommand decoded = kv::decode_command(kv::encode_command(command));
  FUZZ_CHECK(decoded.status.ok() && decoded.command == command, "the transaction changed through the codec");

  kv::MemoryStorage storage;
  kv::StateMachine sm(storage);
  FUZZ_CHECK(sm.restore(fuzz::base_snapshot()).ok(), "the base state does not restore");
  fuzz::apply_commands(sm, {command});
  return 0;
}
