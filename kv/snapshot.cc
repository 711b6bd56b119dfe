#include "kv/snapshot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "kv/layout.h"
#include "kv/layout_v3.h"
#include "kv/path.h"
#include "raft/assert.h"

namespace coord::kv {

namespace {

constexpr std::string_view magic{"COORDKV\0", 8};
constexpr std::size_t header_bytes = 8 + 5 * 8;
constexpr std::size_t checksum_bytes = 8;

void append_u32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

std::uint64_t meta_u64(const ReadTxn& view, std::string_view key) {
  const auto row = view.get(Table::Meta, key);
  COORD_ASSERT(row.has_value(), "meta row missing");
  const auto v = decode_u64(*row);
  COORD_ASSERT(v.has_value(), "corrupt meta row");
  return *v;
}

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  bool u8(std::uint8_t& v) {
    if (left() < 1) return false;
    v = static_cast<std::uint8_t>(bytes_[at_++]);
    return true;
  }
  bool u32(std::uint32_t& v) { return number(v, 4); }
  bool u64(std::uint64_t& v) { return number(v, 8); }
  bool take(std::size_t n, std::string_view& out) {
    if (left() < n) return false;
    out = bytes_.substr(at_, n);
    at_ += n;
    return true;
  }
  std::size_t left() const { return bytes_.size() - at_; }

 private:
  template <typename T>
  bool number(T& v, std::size_t n) {
    if (left() < n) return false;
    v = 0;
    for (std::size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<std::uint8_t>(bytes_[at_ + i]);
    at_ += n;
    return true;
  }

  std::string_view bytes_;
  std::size_t at_ = 0;
};

// Every row must decode as what its table holds, so that a restored state never trips the
// read-back assertions.
bool valid_row(const SnapshotRow& row) {
  switch (row.table) {
    case Table::Meta: {
      // Only the rows the state machine writes: an unknown key could be longer than a backend
      // takes (LMDB: 511 bytes), and restore would fail in the storage instead of here.
      const std::string_view known[] = {meta_key::applied_index, meta_key::revision,
                                        meta_key::compact_revision, meta_key::format,
                                        meta_key::session_count, meta_key::lease_next,
                                        meta_key::lease_count};
      return std::find(std::begin(known), std::end(known), row.key) != std::end(known) &&
             decode_u64(row.value).has_value();
    }
    case Table::Nodes: {
      // A version index row (path \0 revision -> kind), or a live node.
      if (const auto key = parse_history_key(row.key)) {
        return valid_path(key->path) && decode_kind(row.value).has_value();
      }
      const auto record = decode_record(row.value);
      return valid_path(row.key) && record && record->kind == RecordKind::Metadata;
    }
    case Table::Changes: {
      const auto key = parse_change_key(row.key);
      return key && valid_path(key->path) && decode_record(row.value).has_value();
    }
    case Table::Sessions: return row.key.size() == 8 && decode_session(row.value).has_value();
    case Table::SessionLru: return parse_session_lru_key(row.key).has_value() && row.value.empty();
    case Table::Leases: {
      const auto id = parse_lease_key(row.key);
      return id && *id != 0 && decode_lease(row.value).has_value();
    }
    case Table::LeaseKeys: {
      const auto key = parse_lease_keys_key(row.key);
      return key && key->lease != 0 && valid_path(key->path) && row.value.empty();
    }
  }
  return false;
}

// A row of a format 3 snapshot, in place: a NodeRecord re-encoded in the current format, the
// format meta row (which must say 3) set to the current format, anything else unchanged (the
// other tables did not change). False for a record or format row that is not format 3's.
bool upgrade_row_v3(SnapshotRow& row, std::deque<std::string>& converted) {
  const bool record = row.table == Table::Changes ||
                      (row.table == Table::Nodes && !parse_history_key(row.key));
  if (record) {
    auto upgraded = upgrade_record_v3(row.value);
    if (!upgraded) return false;
    row.value = converted.emplace_back(std::move(*upgraded));
  } else if (row.table == Table::Meta && row.key == meta_key::format) {
    if (decode_u64(row.value) != layout_format_v3) return false;
    row.value = converted.emplace_back(encode_u64(layout_format));
  }
  return true;
}

ParsedSnapshot invalid(std::string why) {
  ParsedSnapshot out;
  out.status = make_status(Error::InvalidRequest, fmt::format("invalid snapshot: {}", why));
  return out;
}

// The lease tables must agree with the nodes: the index holds exactly the (lease, path) of every
// node with a lease, each of those leases exists and counts its keys, and no ephemeral node has
// children. Returns why not, or "" when they agree.
std::string lease_mismatch(const std::vector<SnapshotRow>& rows, std::uint64_t lease_count) {
  std::set<std::pair<LeaseId, std::string_view>> from_nodes, from_index;
  std::map<LeaseId, std::uint64_t> counted;  // the key count of each lease record
  for (const SnapshotRow& row : rows) {
    switch (row.table) {
      case Table::Nodes: {
        if (parse_history_key(row.key)) break;  // a version index row
        const auto record = decode_record(row.value);  // checked by valid_row
        if (record->node.lease == 0) break;
        if (record->node.num_children != 0) return "an ephemeral node with children";
        from_nodes.emplace(record->node.lease, row.key);
        break;
      }
      case Table::Leases:
        counted.emplace(*parse_lease_key(row.key), decode_lease(row.value)->keys);
        break;
      case Table::LeaseKeys: {
        const auto key = parse_lease_keys_key(row.key);
        from_index.emplace(key->lease, key->path);
        break;
      }
      default: break;
    }
  }
  if (from_nodes != from_index) return "the lease index disagrees with the nodes";
  if (counted.size() != lease_count) return "lease count disagrees with the lease rows";
  std::map<LeaseId, std::uint64_t> keys;
  for (const auto& [lease, path] : from_index) keys[lease] += 1;
  for (const auto& [lease, count] : keys) {
    const auto it = counted.find(lease);
    if (it == counted.end()) return "a key attached to a missing lease";
    if (it->second != count) return "a lease's key count disagrees with its keys";
  }
  for (const auto& [lease, count] : counted) {
    if (count != 0 && !keys.contains(lease)) return "a lease's key count disagrees with its keys";
  }
  return "";
}

// The versions must agree with their index and with the nodes, so that no read or replay of
// the restored state meets a missing row: the version index (in Nodes) lists exactly the rows
// of Changes with their kinds; each node's versions follow one another as writes can (a
// creation first or after a deletion; an update, a metadata change or a deletion of a node that
// exists; compaction to R may leave a node's first version below R an update, never a
// tombstone); every Metadata version and every node finds its value in the Value version at its
// mod_revision; the live nodes are exactly the paths whose newest version is not a tombstone;
// no version is beyond the revision. Returns why not, or "".
std::string version_mismatch(const std::vector<SnapshotRow>& rows, Revision revision,
                             Revision compact_revision) {
  struct Version {
    std::string_view path;
    Revision revision = 0;
    RecordKind kind = RecordKind::Value;
    Revision create_revision = 0;
    Revision mod_revision = 0;
    bool operator<(const Version& o) const {
      return path != o.path ? path < o.path : revision < o.revision;
    }
  };
  std::vector<Version> stored;                                // Changes
  std::vector<std::pair<std::string_view, Revision>> nodes;  // path, mod_revision
  for (const SnapshotRow& row : rows) {
    if (row.table == Table::Changes) {
      const auto key = parse_change_key(row.key);  // checked by valid_row
      const auto record = decode_record(row.value);
      stored.push_back(Version{key->path, key->revision, record->kind,
                               record->node.create_revision, record->node.mod_revision});
    } else if (row.table == Table::Nodes && !parse_history_key(row.key)) {
      nodes.emplace_back(row.key, decode_record(row.value)->node.mod_revision);
    }
  }
  std::sort(stored.begin(), stored.end());  // the index's order: by path, then revision
  // The index rows come in key order, which is that order too.
  std::size_t indexed = 0;
  for (const SnapshotRow& row : rows) {
    if (row.table != Table::Nodes) continue;
    const auto key = parse_history_key(row.key);
    if (!key) continue;  // a live node
    if (indexed == stored.size() || key->path != stored[indexed].path ||
        key->revision != stored[indexed].revision ||
        *decode_kind(row.value) != stored[indexed].kind) {
      return "the history index disagrees with the changes";
    }
    ++indexed;
  }
  if (indexed != stored.size()) return "the history index disagrees with the changes";
  const auto holds_value = [&](std::string_view path, Revision revision) {
    const auto it = std::lower_bound(stored.begin(), stored.end(), Version{path, revision});
    return it != stored.end() && it->path == path && it->revision == revision &&
           it->kind == RecordKind::Value;
  };
  std::vector<std::string_view> live;  // paths whose newest version is not a tombstone
  for (std::size_t i = 0; i < stored.size(); ++i) {
    const Version& v = stored[i];
    const bool first = i == 0 || stored[i - 1].path != v.path;
    const bool existed = !first && stored[i - 1].kind != RecordKind::Tombstone;
    const bool creation = v.kind == RecordKind::Value && v.create_revision == v.revision;
    if (v.revision > revision) return "a version beyond the revision";
    if (v.kind == RecordKind::Value && v.mod_revision != v.revision) {
      return "a value version at a foreign revision";
    }
    const bool follows = creation                          ? !existed
                         : first && v.revision < compact_revision ? v.kind == RecordKind::Value
                                                                  : existed;
    if (!follows) return "a node's versions do not follow one another";
    if (v.kind == RecordKind::Metadata &&
        (v.mod_revision >= v.revision || !holds_value(v.path, v.mod_revision))) {
      return "a metadata version without its value";
    }
    const bool newest = i + 1 == stored.size() || stored[i + 1].path != v.path;
    if (newest && v.kind != RecordKind::Tombstone) live.push_back(v.path);
  }
  if (live.size() != nodes.size()) return "the nodes disagree with their versions";
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (live[i] != nodes[i].first) return "the nodes disagree with their versions";
    if (!holds_value(nodes[i].first, nodes[i].second)) return "a node without its value";
  }
  return "";
}

}  // namespace

namespace {

// FNV-1a over everything that passes through, handed on in pieces.
class HashingWriter {
 public:
  explicit HashingWriter(const SnapshotSink& sink) : sink_(sink) { buffer_.reserve(snapshot_piece_bytes + 4096); }
  void append(std::string_view bytes) {
    for (char c : bytes) {
      hash_ ^= static_cast<std::uint8_t>(c);
      hash_ *= 1099511628211ull;
    }
    buffer_.append(bytes);
    if (buffer_.size() >= snapshot_piece_bytes) flush();
  }
  void flush() {
    if (!buffer_.empty()) sink_(buffer_);
    buffer_.clear();
  }
  std::uint64_t hash() const { return hash_; }

 private:
  const SnapshotSink& sink_;
  std::string buffer_;
  std::uint64_t hash_ = 14695981039346656037ull;
};

}  // namespace

void dump_snapshot(const ReadTxn& view, const SnapshotSink& sink) {
  std::uint64_t rows = 0;
  for (std::size_t t = 0; t < table_count; ++t) rows += view.rows(static_cast<Table>(t));
  HashingWriter out(sink);
  out.append(magic);
  out.append(encode_u64(layout_format));
  out.append(encode_u64(meta_u64(view, meta_key::applied_index)));
  out.append(encode_u64(meta_u64(view, meta_key::revision)));
  out.append(encode_u64(meta_u64(view, meta_key::compact_revision)));
  out.append(encode_u64(rows));
  std::string framing;
  std::uint64_t written = 0;
  for (std::size_t t = 0; t < table_count; ++t) {
    const auto cursor = view.cursor(static_cast<Table>(t));
    for (bool found = cursor->seek(""); found; found = cursor->next()) {
      const std::string_view key = cursor->key();
      const std::string_view value = cursor->value();
      COORD_ASSERT(key.size() <= std::numeric_limits<std::uint32_t>::max() &&
                       value.size() <= std::numeric_limits<std::uint32_t>::max(),
                   "row too large for the snapshot format");
      framing.clear();
      framing.push_back(static_cast<char>(t));
      append_u32(framing, static_cast<std::uint32_t>(key.size()));
      out.append(framing);
      out.append(key);
      framing.clear();
      append_u32(framing, static_cast<std::uint32_t>(value.size()));
      out.append(framing);
      out.append(value);
      ++written;
    }
  }
  // The view is fixed, so the walk sees as many rows as the tables counted.
  COORD_ASSERT(written == rows, "snapshot view changed between its two walks");
  const std::string trailer = encode_u64(out.hash());
  out.flush();
  sink(trailer);
}

std::string dump_snapshot(const ReadTxn& view) {
  std::string out;
  dump_snapshot(view, [&out](std::string_view piece) { out.append(piece); });
  return out;
}

void SnapshotStreamCheck::hash(std::string_view bytes) {
  for (char c : bytes) {
    hash_ ^= static_cast<std::uint8_t>(c);
    hash_ *= 1099511628211ull;
  }
}

void SnapshotStreamCheck::update(std::string_view piece) {
  size_ += piece.size();
  if (head_.size() < header_bytes) head_.append(piece.substr(0, header_bytes - head_.size()));
  // Everything but the last checksum_bytes seen so far is covered by the trailer: hash it.
  if (piece.size() >= checksum_bytes) {
    hash(tail_);
    hash(piece.substr(0, piece.size() - checksum_bytes));
    tail_.assign(piece.substr(piece.size() - checksum_bytes));
    return;
  }
  tail_.append(piece);
  if (tail_.size() > checksum_bytes) {
    const std::size_t excess = tail_.size() - checksum_bytes;
    hash(std::string_view(tail_).substr(0, excess));
    tail_.erase(0, excess);
  }
}

Status SnapshotStreamCheck::finish() const {
  auto bad = [&](const std::string& why) {
    return make_status(Error::InvalidRequest, fmt::format("invalid snapshot ({} bytes): {}", size_, why));
  };
  if (size_ < header_bytes + checksum_bytes) return bad("truncated");
  if (std::string_view(head_).substr(0, magic.size()) != magic) return bad("not a coord kv snapshot");
  const std::uint64_t format = decode_u64(std::string_view(head_).substr(magic.size(), 8)).value_or(0);
  if (format != layout_format && format != layout_format_v3) return bad(fmt::format("format {}", format));
  const std::uint64_t trailer = decode_u64(tail_).value_or(0);
  if (trailer != hash_) return bad(fmt::format("checksum {:#018x}, the trailer says {:#018x}", hash_, trailer));
  const std::uint64_t applied = decode_u64(std::string_view(head_).substr(magic.size() + 8, 8)).value_or(0);
  if (applied != expected_applied_) {
    return bad(fmt::format("it is of applied index {}, expected {}", applied, expected_applied_));
  }
  return Status{};
}

ParsedSnapshot parse_snapshot(std::string_view bytes) {
  if (bytes.size() < header_bytes + checksum_bytes) return invalid("truncated");
  const std::string_view covered = bytes.substr(0, bytes.size() - checksum_bytes);
  if (decode_u64(bytes.substr(covered.size())) != snapshot_checksum(covered)) return invalid("bad checksum");
  Reader in(covered);
  std::string_view head;
  in.take(magic.size(), head);
  if (head != magic) return invalid("not a coord kv snapshot");
  std::uint64_t format = 0, row_count = 0;
  ParsedSnapshot out;
  in.u64(format);
  in.u64(out.header.applied_index);
  in.u64(out.header.revision);
  in.u64(out.header.compact_revision);
  in.u64(row_count);
  if (format != layout_format && format != layout_format_v3) {
    return invalid(fmt::format("layout format {}; this build reads formats {} and {} only", format,
                               layout_format_v3, layout_format));
  }
  out.format = format;
  // Each row takes at least 9 bytes; refuse counts the bytes cannot hold before reserving.
  if (row_count > in.left() / 9) return invalid("row count beyond its bytes");
  out.rows.reserve(row_count);
  for (std::uint64_t i = 0; i < row_count; ++i) {
    std::uint8_t table = 0;
    std::uint32_t key_size = 0, value_size = 0;
    SnapshotRow row;
    if (!in.u8(table) || !in.u32(key_size) || !in.take(key_size, row.key) ||
        !in.u32(value_size) || !in.take(value_size, row.value)) {
      return invalid("truncated row");
    }
    if (table >= table_count) return invalid("unknown table");
    row.table = static_cast<Table>(table);
    if (row.key.empty()) return invalid("empty key");
    if (!out.rows.empty()) {
      const SnapshotRow& last = out.rows.back();
      if (last.table > row.table || (last.table == row.table && last.key >= row.key)) {
        return invalid("rows out of order");
      }
    }
    if (format == layout_format_v3 && !upgrade_row_v3(row, out.converted)) {
      return invalid(fmt::format("malformed row in {}", table_name(row.table)));
    }
    if (!valid_row(row)) return invalid(fmt::format("malformed row in {}", table_name(row.table)));
    out.rows.push_back(row);
  }
  if (in.left() != 0) return invalid("trailing bytes");

  // The header must agree with the Meta rows it summarizes, and the root must exist.
  std::optional<std::uint64_t> meta_applied, meta_revision, meta_compact, meta_format,
      meta_sessions, meta_lease_next, meta_lease_count;
  bool root = false;
  std::uint64_t sessions = 0, session_order = 0;
  for (const SnapshotRow& row : out.rows) {
    if (row.table == Table::Nodes && row.key == "/") root = true;
    if (row.table == Table::Sessions) ++sessions;
    if (row.table == Table::SessionLru) ++session_order;
    if (row.table != Table::Meta) continue;
    if (row.key == meta_key::session_count) meta_sessions = decode_u64(row.value);
    if (row.key == meta_key::applied_index) meta_applied = decode_u64(row.value);
    if (row.key == meta_key::revision) meta_revision = decode_u64(row.value);
    if (row.key == meta_key::compact_revision) meta_compact = decode_u64(row.value);
    if (row.key == meta_key::format) meta_format = decode_u64(row.value);
    if (row.key == meta_key::lease_next) meta_lease_next = decode_u64(row.value);
    if (row.key == meta_key::lease_count) meta_lease_count = decode_u64(row.value);
  }
  // (A format 3 snapshot's format row was converted with its records, once checked to be 3.)
  if (meta_applied != out.header.applied_index || meta_revision != out.header.revision ||
      meta_compact != out.header.compact_revision || meta_format != layout_format) {
    return invalid("header disagrees with the meta rows");
  }
  // The state machine asserts this when it loads the meta rows, after restore has committed.
  if (out.header.compact_revision > out.header.revision) {
    return invalid("compact revision beyond the revision");
  }
  if (!root) return invalid("no root node");
  if (meta_sessions != sessions || session_order != sessions) {
    return invalid("session count disagrees with the session rows");
  }
  if (!meta_lease_next || !meta_lease_count) return invalid("lease meta rows missing");
  if (const std::string why = lease_mismatch(out.rows, *meta_lease_count); !why.empty()) {
    return invalid(why);
  }
  if (const std::string why =
          version_mismatch(out.rows, out.header.revision, out.header.compact_revision);
      !why.empty()) {
    return invalid(why);
  }
  return out;
}

std::uint64_t snapshot_checksum(std::string_view bytes) {
  std::uint64_t hash = 14695981039346656037ull;  // FNV-1a, 64 bits
  for (char c : bytes) {
    hash ^= static_cast<std::uint8_t>(c);
    hash *= 1099511628211ull;
  }
  return hash;
}

}  // namespace coord::kv
