#include "storage/log_records.h"

#include <fmt/format.h>

#include <utility>

#include "storage/crc32c.h"

namespace coord::storage {

namespace {

constexpr std::size_t crc_bytes = 4;

void put_u8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Reads fixed-width fields off the front of a value; once a read runs past the end every later
// read fails too, so decoders check ok() once at the end.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  std::uint64_t u64() { return read(8); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(read(4)); }
  std::uint8_t u8() { return static_cast<std::uint8_t>(read(1)); }
  std::size_t remaining() const { return ok_ ? bytes_.size() - offset_ : 0; }
  bool ok() const { return ok_; }
  bool at_end() const { return ok_ && offset_ == bytes_.size(); }
  std::string_view take(std::size_t n) {
    if (!ok_ || bytes_.size() - offset_ < n) {
      ok_ = false;
      return {};
    }
    const std::string_view out = bytes_.substr(offset_, n);
    offset_ += n;
    return out;
  }

 private:
  std::uint64_t read(std::size_t n) {
    if (!ok_ || bytes_.size() - offset_ < n) {
      ok_ = false;
      return 0;
    }
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) {
      v |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes_[offset_ + i])) << (8 * i);
    }
    offset_ += n;
    return v;
  }

  std::string_view bytes_;
  std::size_t offset_ = 0;
  bool ok_ = true;
};

bool fail(std::string* error, std::string reason) {
  if (error != nullptr) *error = std::move(reason);
  return false;
}

// Writes the checksum of out[crc_bytes..] (plus `salt` in front) into the placeholder.
void seal(std::string& out, std::string_view salt = {}) {
  const std::uint32_t crc = crc32c(std::string_view(out).substr(crc_bytes), crc32c(salt));
  for (std::size_t i = 0; i < crc_bytes; ++i) out[i] = static_cast<char>((crc >> (8 * i)) & 0xff);
}

// Checks a sealed value; on success `body` is what follows the checksum.
bool unseal(std::string_view value, std::string_view what, std::string_view& body, std::string* error,
            std::string_view salt = {}) {
  Reader r(value);
  const std::uint32_t stored = r.u32();
  if (!r.ok()) return fail(error, fmt::format("{}: {} bytes, shorter than its checksum", what, value.size()));
  body = value.substr(crc_bytes);
  const std::uint32_t computed = crc32c(body, crc32c(salt));
  if (stored != computed) {
    return fail(error, fmt::format("{}: checksum mismatch (stored {:#010x}, computed {:#010x})", what,
                                   stored, computed));
  }
  return true;
}

std::string_view key_view(const EntryKey& key) { return std::string_view(key.data(), key.size()); }

}  // namespace

EntryKey entry_key(raft::Index index) {
  EntryKey key;
  for (std::size_t i = 0; i < entry_key_bytes; ++i) {
    key[i] = static_cast<char>((index >> (8 * (entry_key_bytes - 1 - i))) & 0xff);
  }
  return key;
}

std::optional<raft::Index> parse_entry_key(std::string_view key) {
  if (key.size() != entry_key_bytes) return std::nullopt;
  raft::Index index = 0;
  for (char c : key) index = index << 8 | static_cast<unsigned char>(c);
  return index;
}

void encode_entry(const raft::Entry& entry, std::string& out) {
  out.clear();
  out.reserve(entry_header_bytes + entry.data.size());
  put_u32(out, 0);
  put_u64(out, entry.term);
  put_u8(out, static_cast<std::uint8_t>(entry.type));
  out.append(entry.data);
  seal(out, key_view(entry_key(entry.index)));
}

std::optional<raft::Entry> decode_entry(raft::Index index, std::string_view value, std::string* error) {
  const std::string what = fmt::format("entry {}", index);
  std::string_view body;
  if (!unseal(value, what, body, error, key_view(entry_key(index)))) return std::nullopt;
  Reader r(body);
  raft::Entry entry;
  entry.index = index;
  entry.term = r.u64();
  const std::uint8_t type = r.u8();
  if (!r.ok()) {
    fail(error, fmt::format("{}: {} bytes, shorter than its header", what, value.size()));
    return std::nullopt;
  }
  if (type > static_cast<std::uint8_t>(raft::EntryType::ConfChange)) {
    fail(error, fmt::format("{}: unknown type {}", what, type));
    return std::nullopt;
  }
  entry.type = static_cast<raft::EntryType>(type);
  entry.data.assign(body.substr(entry_header_bytes - crc_bytes));
  return entry;
}

std::string encode_layout_version(std::uint32_t version) {
  std::string out;
  put_u32(out, 0);
  put_u32(out, version);
  seal(out);
  return out;
}

std::optional<std::uint32_t> decode_layout_version(std::string_view value, std::string* error) {
  std::string_view body;
  if (!unseal(value, "layout version", body, error)) return std::nullopt;
  Reader r(body);
  const std::uint32_t version = r.u32();
  if (!r.at_end()) {
    fail(error, fmt::format("layout version: {} bytes, expected 8", value.size()));
    return std::nullopt;
  }
  return version;
}

std::string encode_hard_state(const raft::HardState& hs) {
  std::string out;
  put_u32(out, 0);
  put_u64(out, hs.term);
  put_u64(out, hs.vote);
  put_u64(out, hs.commit);
  seal(out);
  return out;
}

std::optional<raft::HardState> decode_hard_state(std::string_view value, std::string* error) {
  std::string_view body;
  if (!unseal(value, "hard state", body, error)) return std::nullopt;
  Reader r(body);
  raft::HardState hs;
  hs.term = r.u64();
  hs.vote = r.u64();
  hs.commit = r.u64();
  if (!r.at_end()) {
    fail(error, fmt::format("hard state: {} bytes, expected 28", value.size()));
    return std::nullopt;
  }
  return hs;
}

SnapshotRecord make_snapshot_record(const raft::SnapshotMeta& meta, const raft::SnapshotData* data) {
  SnapshotRecord record;
  record.meta = meta;
  if (data != nullptr) {
    record.has_data = true;
    record.data_bytes = data->size();
    record.data_crc = crc32c(data->bytes());
  }
  return record;
}

std::string encode_snapshot_record(const SnapshotRecord& record) {
  std::string out;
  put_u32(out, 0);
  put_u64(out, record.meta.index);
  put_u64(out, record.meta.term);
  for (const auto* ids : {&record.meta.conf.voters, &record.meta.conf.learners}) {
    put_u32(out, static_cast<std::uint32_t>(ids->size()));
    for (raft::NodeId id : *ids) put_u64(out, id);
  }
  put_u8(out, record.has_data ? 1 : 0);
  put_u64(out, record.data_bytes);
  put_u32(out, record.data_crc);
  if (!record.file.empty()) {
    put_u32(out, static_cast<std::uint32_t>(record.file.size()));
    out += record.file;
  }
  seal(out);
  return out;
}

std::optional<SnapshotRecord> decode_snapshot_record(std::string_view value, std::string* error) {
  std::string_view body;
  if (!unseal(value, "snapshot meta", body, error)) return std::nullopt;
  Reader r(body);
  SnapshotRecord record;
  record.meta.index = r.u64();
  record.meta.term = r.u64();
  for (auto* ids : {&record.meta.conf.voters, &record.meta.conf.learners}) {
    const std::uint32_t count = r.u32();
    // A count the value cannot hold is damage, not a reason to allocate.
    if (count > r.remaining() / 8) {
      fail(error, fmt::format("snapshot meta: {} node ids do not fit in {} bytes", count, value.size()));
      return std::nullopt;
    }
    ids->reserve(count);
    for (std::uint32_t i = 0; i < count; ++i) ids->push_back(r.u64());
  }
  const std::uint8_t has_data = r.u8();
  record.data_bytes = r.u64();
  record.data_crc = r.u32();
  bool bad_file = false;
  if (r.ok() && !r.at_end()) {
    // The bytes are in a file of their own (a record without a name: in the snapshot_data row).
    const std::uint32_t length = r.u32();
    record.file = std::string(r.take(length));
    bad_file = record.file.empty() || has_data != 1;
  }
  if (!r.at_end() || has_data > 1 || bad_file) {
    fail(error, fmt::format("snapshot meta: malformed ({} bytes)", value.size()));
    return std::nullopt;
  }
  record.has_data = has_data == 1;
  return record;
}

}  // namespace coord::storage
