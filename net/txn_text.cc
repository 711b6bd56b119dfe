#include "net/txn_text.h"

#include <fmt/format.h>

#include <charconv>
#include <utility>
#include <vector>

namespace coord::net {

namespace {

struct Line {
  std::string_view rest;

  // The next space-separated word, or "" at the end.
  std::string_view word() {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    const std::size_t end = rest.find(' ');
    std::string_view w = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
    return w;
  }
  // What follows the last word and one space, literally.
  std::string value() const {
    std::string_view v = rest;
    if (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    return std::string(v);
  }
};

std::optional<kv::CompareOp> parse_op(std::string_view s) {
  if (s == "=" || s == "==") return kv::CompareOp::Equal;
  if (s == "!=") return kv::CompareOp::NotEqual;
  if (s == "<") return kv::CompareOp::Less;
  if (s == ">") return kv::CompareOp::Greater;
  return std::nullopt;
}

std::optional<std::uint64_t> parse_number(std::string_view s) {
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return n;
}

// One `compare ...` statement; the keyword is consumed.
std::optional<kv::Compare> parse_compare(Line& line, std::string* reason) {
  const std::string_view target = line.word();
  const std::string path(line.word());
  if (path.empty()) {
    *reason = "compare needs a target and a path";
    return std::nullopt;
  }
  if (target == "exists") return kv::Compare::exists(path);
  if (target == "missing") return kv::Compare::missing(path);
  const std::string_view op_text = line.word();
  const auto op = parse_op(op_text);
  if (!op) {
    *reason = fmt::format("'{}' is not a comparison (=, !=, <, >)", op_text);
    return std::nullopt;
  }
  if (target == "value") return kv::Compare::value_is(path, *op, line.value());
  const std::string_view number_text = line.word();
  const auto number = parse_number(number_text);
  if (!number) {
    *reason = fmt::format("'{}' is not a number", number_text);
    return std::nullopt;
  }
  if (target == "version") return kv::Compare::version(path, *op, *number);
  if (target == "create_revision") return kv::Compare::create_revision(path, *op, *number);
  if (target == "mod_revision") return kv::Compare::mod_revision(path, *op, *number);
  *reason = fmt::format("'{}' is not a compare target (exists, missing, version, create_revision, "
                        "mod_revision, value)",
                        target);
  return std::nullopt;
}

// One operation statement whose keyword is `verb`.
std::optional<kv::Op> parse_op_statement(std::string_view verb, Line& line, std::string* reason) {
  bool parents = false;
  bool sequential = false;
  bool recursive = false;
  std::string_view w = line.word();
  while (w.size() > 2 && w.substr(0, 2) == "--") {
    if (w == "--parents" && (verb == "put" || verb == "create")) {
      parents = true;
    } else if (w == "--sequential" && verb == "create") {
      sequential = true;
    } else if (w == "--recursive" && verb == "delete") {
      recursive = true;
    } else {
      *reason = fmt::format("{} does not take {}", verb, w);
      return std::nullopt;
    }
    w = line.word();
  }
  const std::string path(w);
  if (path.empty()) {
    *reason = fmt::format("{} needs a path", verb);
    return std::nullopt;
  }
  kv::Op op;
  if (verb == "get") {
    op = kv::Op::get(path);
  } else if (verb == "put") {
    op = kv::Op::put(path, line.value());
  } else if (verb == "create") {
    op = sequential ? kv::Op::create_sequential(path, line.value()) : kv::Op::create(path, line.value());
  } else {
    op = kv::Op::remove(path, recursive);
  }
  op.parents = parents;
  if ((verb == "get" || verb == "delete") && !line.value().empty()) {
    *reason = fmt::format("unexpected text after the path of {}", verb);
    return std::nullopt;
  }
  return op;
}

}  // namespace

std::optional<kv::Txn> parse_txn_text(std::string_view text, std::string* error) {
  kv::Txn txn;
  enum class Section { Compares, Success, Failure } section = Section::Compares;
  std::size_t number = 0;
  bool seen_then = false;
  bool seen_else = false;
  while (!text.empty()) {
    ++number;
    const std::size_t end = text.find('\n');
    std::string_view raw = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
    Line line{raw};
    const std::string_view verb = line.word();
    if (verb.empty() || verb.front() == '#') continue;
    std::string reason;
    auto fail = [&](const std::string& why) -> std::optional<kv::Txn> {
      if (error != nullptr) *error = fmt::format("line {}: {}", number, why);
      return std::nullopt;
    };
    if (verb == "compare") {
      if (section != Section::Compares) return fail("comparisons come before then/else and the operations");
      auto compare = parse_compare(line, &reason);
      if (!compare) return fail(reason);
      txn.compares.push_back(std::move(*compare));
    } else if (verb == "then") {
      if (seen_then || seen_else) return fail("then must come once, before else");
      seen_then = true;
      section = Section::Success;
    } else if (verb == "else") {
      if (seen_else) return fail("else must come once");
      seen_else = true;
      section = Section::Failure;
    } else if (verb == "put" || verb == "create" || verb == "delete" || verb == "get") {
      auto op = parse_op_statement(verb, line, &reason);
      if (!op) return fail(reason);
      if (section == Section::Compares) section = Section::Success;
      (section == Section::Failure ? txn.failure : txn.success).push_back(std::move(*op));
    } else {
      return fail(fmt::format("unknown statement '{}' (compare, then, else, put, create, delete, get)", verb));
    }
  }
  if (txn.compares.empty() && txn.success.empty() && txn.failure.empty()) {
    if (error != nullptr) *error = "empty transaction";
    return std::nullopt;
  }
  return txn;
}

}  // namespace coord::net
