// The small text form of a transaction that `coordctl txn` reads from stdin, one statement per
// line ('#' starts a comment line, blank lines are ignored):
//
//   compare exists /app/lock              the node exists
//   compare missing /app/lock             the node does not exist
//   compare version /app/cfg = 3          version | create_revision | mod_revision,
//   compare mod_revision /app/cfg < 40      with =, !=, < or > and a number
//   compare value /app/cfg = some text    value, with = != < >, then the rest of the line
//   then                                  the operations run when every comparison holds
//   put [--parents] /app/cfg new value    put | create, then the rest of the line is the value
//   create [--parents] [--sequential] /app/jobs/job-
//   delete [--recursive] /app/old
//   get /app/cfg
//   else                                  the operations run otherwise
//   ...
//
// Operations before any `then` belong to the success branch. A value is the rest of the line
// after the path and one space, taken literally (no quoting or escapes); a value of a line's
// trailing spaces is not expressible.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "kv/command.h"

namespace coord::net {

// nullopt with "line N: reason" in *error when the text is not a transaction.
std::optional<kv::Txn> parse_txn_text(std::string_view text, std::string* error);

}  // namespace coord::net
