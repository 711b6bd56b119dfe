#include "fencing/contenders.h"

#include <charconv>
#include <memory>
#include <utility>

#include <fmt/format.h>

#include "kv/limits.h"

namespace coord::fencing {

namespace {

// A decimal number without sign or leading zeros (except "0" itself), as fmt writes it.
std::optional<std::uint64_t> parse_decimal(std::string_view digits) {
  if (digits.empty() || (digits.size() > 1 && digits[0] == '0')) return std::nullopt;
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

// Splits off the text before the next '_'.
std::optional<std::string_view> take_field(std::string_view& rest) {
  const std::size_t cut = rest.find('_');
  if (cut == std::string_view::npos) return std::nullopt;
  const std::string_view field = rest.substr(0, cut);
  rest.remove_prefix(cut + 1);
  return field;
}

struct ListState {
  KvClient* client = nullptr;
  std::string path;
  std::function<void(const ChildList&)> done;
  ChildList out;
};

void list_page(const std::shared_ptr<ListState>& state) {
  kv::ListOptions options;
  options.revision = state->out.revision;  // 0 for the first page: the current one
  if (!state->out.names.empty()) options.start_after = state->out.names.back();
  state->client->list(state->path, options, [state](const ReadOutcome<kv::ListPage>& got) {
    ChildList& out = state->out;
    if (!got.reached) {
      state->done(ChildList{});
      return;
    }
    if (got.read.status.error == kv::Error::NotFound) {
      // No such path yet (a lock never taken): no children. Only a first page can say so; a
      // later page is read at the first page's revision, where the path did exist.
      out.reached = true;
      out.revision = got.read.revision;
      out.names.clear();
      state->done(out);
      return;
    }
    if (!got.read.ok()) {
      out.reached = true;
      out.status = got.read.status;
      state->done(out);
      return;
    }
    if (out.revision == 0) out.revision = got.read.revision;
    out.names.insert(out.names.end(), got.read.value.names.begin(), got.read.value.names.end());
    if (out.names.size() > contenders_max) {
      out.reached = true;
      out.status = kv::make_status(
          kv::Error::TooLarge, fmt::format("more than contenders_max ({}) children under {}",
                                           contenders_max, state->path));
      state->done(out);
      return;
    }
    if (got.read.value.more && !got.read.value.names.empty()) {
      list_page(state);
      return;
    }
    out.reached = true;
    state->done(out);
  });
}

}  // namespace

std::string contender_prefix(kv::LeaseId lease, std::uint64_t owner, std::uint64_t attempt) {
  return fmt::format("{}_{}_{}_", lease, owner, attempt);
}

std::optional<ContenderName> parse_contender_name(std::string_view name) {
  ContenderName out;
  std::string_view rest = name;
  const auto lease = take_field(rest);
  const auto owner = take_field(rest);
  const auto attempt = take_field(rest);
  if (!lease || !owner || !attempt || rest.size() != kv::sequence_digits) return std::nullopt;
  const auto lease_id = parse_decimal(*lease);
  const auto owner_id = parse_decimal(*owner);
  const auto attempt_no = parse_decimal(*attempt);
  if (!lease_id || !owner_id || !attempt_no || *lease_id == 0) return std::nullopt;
  // The sequence is zero-padded: all ten characters must be digits.
  std::uint64_t sequence = 0;
  for (const char c : rest) {
    if (c < '0' || c > '9') return std::nullopt;
    sequence = sequence * 10 + static_cast<std::uint64_t>(c - '0');
  }
  out.lease = *lease_id;
  out.owner = *owner_id;
  out.attempt = *attempt_no;
  out.sequence = sequence;
  return out;
}

std::string child_path(const std::string& parent, std::string_view name) {
  std::string out = parent;
  if (out != "/") out += '/';
  out += name;
  return out;
}

void list_children(KvClient& client, std::string path,
                   std::function<void(const ChildList&)> done) {
  auto state = std::make_shared<ListState>();
  state->client = &client;
  state->path = std::move(path);
  state->done = std::move(done);
  list_page(state);
}

std::optional<Contender> first_contender(const std::vector<std::string>& names) {
  std::optional<Contender> first;
  for (const std::string& name : names) {
    const auto parsed = parse_contender_name(name);
    if (!parsed) continue;
    if (!first || parsed->sequence < first->parsed.sequence) first = Contender{name, *parsed};
  }
  return first;
}

}  // namespace coord::fencing
