// The waiting line shared by the lock and the election: under a lock's (or election's) path,
// every contender creates one sequential ephemeral child named
//
//     <lease id>_<owner>_<attempt>_<sequence>      e.g. 17_3_1_0000000042
//
// where the sequence is the parent's counter appended by the state machine (never reused), the
// lease id is the contender's session (never reused either), the owner tells apart recipe
// objects sharing one session, and the attempt tells apart the keys one object created over
// time. The line is ordered by sequence; the first is the holder (or leader).
//
// The name alone identifies its creator, so a contender whose create had an unknown outcome
// finds its key by listing, without reading every value; and a key it left behind from an
// earlier attempt (an unknown create that was applied after all) is recognized as its own and
// deleted instead of being waited for.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fencing/kv_client.h"
#include "kv/error.h"
#include "kv/types.h"

namespace coord::fencing {

struct ContenderName {
  kv::LeaseId lease = 0;
  std::uint64_t owner = 0;
  std::uint64_t attempt = 0;
  std::uint64_t sequence = 0;

  bool operator==(const ContenderName&) const = default;
};

// What a contender passes to create_sequential: "<lease>_<owner>_<attempt>_".
std::string contender_prefix(kv::LeaseId lease, std::uint64_t owner, std::uint64_t attempt);
// nullopt for a name the recipes did not make (such children are ignored, never waited for).
std::optional<ContenderName> parse_contender_name(std::string_view name);
// `parent` + "/" + `name` (no doubled slash under the root).
std::string child_path(const std::string& parent, std::string_view name);

// Children listed per line, at most: a line longer than this is refused rather than read
// page after page without end.
inline constexpr std::size_t contenders_max = 100'000;
// How long a recipe waits before asking again after a read no member answered.
inline constexpr Millis read_retry_delay_ms = 50;

// Every child name of `path`, all pages read at the revision of the first one, so the list is
// one consistent view.
struct ChildList {
  bool reached = false;  // false: no member answered (nothing is known)
  kv::Status status;     // a missing `path` is not an error: it has no children
  kv::Revision revision = 0;
  std::vector<std::string> names;
};
void list_children(KvClient& client, std::string path,
                   std::function<void(const ChildList&)> done);

// The first contender of a list (lowest sequence), if any.
struct Contender {
  std::string name;
  ContenderName parsed;
};
std::optional<Contender> first_contender(const std::vector<std::string>& names);

}  // namespace coord::fencing
