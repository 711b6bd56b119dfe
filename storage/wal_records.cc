#include "storage/wal_records.h"

#include <fmt/format.h>

#include <algorithm>

#include "storage/crc32c.h"

namespace coord::storage {

namespace {

void put_u32_at(std::string& out, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t get(std::string_view bytes, std::size_t at, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[at + i])) << (8 * i);
  }
  return v;
}

// CRC of the place (seq, offset), the type byte (with its flag bits) and the payload.
std::uint32_t record_crc(std::uint64_t seq, std::uint64_t offset, std::uint8_t type, std::string_view payload) {
  std::string salt;
  put_u64(salt, seq);
  put_u64(salt, offset);
  salt.push_back(static_cast<char>(type));
  return crc32c(payload, crc32c(salt));
}

constexpr std::uint8_t continued_bit = 0x80;
constexpr std::uint8_t write_start_bit = 0x40;
constexpr std::uint8_t flag_bits = continued_bit | write_start_bit;

bool known_type(std::uint8_t type) {
  return type >= static_cast<std::uint8_t>(WalRecordType::Entries) &&
         type <= static_cast<std::uint8_t>(WalRecordType::SnapshotHead);
}

std::uint8_t type_byte(WalRecordType type, WalRecordFlags flags) {
  return static_cast<std::uint8_t>(static_cast<std::uint8_t>(type) | (flags.continued ? continued_bit : 0) |
                                   (flags.write_start ? write_start_bit : 0));
}

// Starts a record: the header with a placeholder length and crc.
std::size_t begin_record(std::string& out, std::uint8_t type) {
  const std::size_t at = out.size();
  put_u32(out, 0);
  put_u32(out, 0);
  out.push_back(static_cast<char>(type));
  return at;
}

void seal_record(std::string& out, std::size_t at, std::uint64_t seq, std::uint64_t offset, std::uint8_t type) {
  const std::string_view payload = std::string_view(out).substr(at + wal_header_bytes);
  put_u32_at(out, at, static_cast<std::uint32_t>(payload.size()));
  put_u32_at(out, at + 4, record_crc(seq, offset, type, payload));
}

}  // namespace

std::size_t wal_entries_record_bytes(const std::vector<raft::Entry>& entries) {
  std::size_t bytes = wal_header_bytes + wal_entries_fixed_bytes;
  for (const raft::Entry& e : entries) bytes += wal_entry_fixed_bytes + e.data.size();
  return bytes;
}

void append_wal_record(std::string& out, std::uint64_t seq, std::uint64_t offset, WalRecordType type,
                       std::string_view payload, WalRecordFlags flags) {
  const std::uint8_t byte = type_byte(type, flags);
  const std::size_t at = begin_record(out, byte);
  out.append(payload);
  seal_record(out, at, seq, offset, byte);
}

void append_wal_entries(std::string& out, std::uint64_t seq, std::uint64_t offset,
                        const std::vector<raft::Entry>& entries, WalRecordFlags flags) {
  const std::uint8_t byte = type_byte(WalRecordType::Entries, flags);
  const std::size_t at = begin_record(out, byte);
  put_u64(out, entries.empty() ? 0 : entries.front().index);
  put_u32(out, static_cast<std::uint32_t>(entries.size()));
  for (const raft::Entry& e : entries) {
    put_u64(out, e.term);
    out.push_back(static_cast<char>(e.type));
    put_u32(out, static_cast<std::uint32_t>(e.data.size()));
    out.append(e.data);
  }
  seal_record(out, at, seq, offset, byte);
}

WalFrame parse_wal_record(std::string_view rest, std::uint64_t seq, std::uint64_t offset) {
  WalFrame frame;
  if (rest.size() < 4 || get(rest, 0, 4) == 0) {
    frame.status = WalFrame::Status::End;  // the preallocated zeros (or the file's very end)
    return frame;
  }
  frame.status = WalFrame::Status::Bad;
  const std::uint64_t length = get(rest, 0, 4);
  frame.extent = static_cast<std::size_t>(std::min<std::uint64_t>(rest.size(), wal_header_bytes + length));
  if (rest.size() < wal_header_bytes || length > rest.size() - wal_header_bytes) {
    frame.problem = fmt::format("a record of {} bytes runs past the end of the file", length);
    return frame;
  }
  const std::uint32_t stored = static_cast<std::uint32_t>(get(rest, 4, 4));
  const auto type = static_cast<std::uint8_t>(rest[8]);
  const std::string_view payload = rest.substr(wal_header_bytes, length);
  const std::uint32_t computed = record_crc(seq, offset, type, payload);
  if (stored != computed) {
    frame.problem = fmt::format("checksum mismatch (stored {:#010x}, computed {:#010x})", stored, computed);
    return frame;
  }
  const auto base = static_cast<std::uint8_t>(type & ~flag_bits);
  if (!known_type(base)) {
    frame.problem = fmt::format("unknown record type {}", type);
    return frame;
  }
  frame.status = WalFrame::Status::Ok;
  frame.type = static_cast<WalRecordType>(base);
  frame.continued = (type & continued_bit) != 0;
  frame.write_start = (type & write_start_bit) != 0;
  frame.payload = payload;
  return frame;
}

std::optional<std::uint64_t> find_wal_write_start(std::string_view segment, std::uint64_t seq, std::uint64_t after,
                                                  std::uint64_t until) {
  until = std::min<std::uint64_t>(until, segment.size());
  for (std::uint64_t at = after + 1; at + wal_header_bytes <= until; ++at) {
    const auto type = static_cast<std::uint8_t>(segment[at + 8]);
    if ((type & write_start_bit) == 0 || !known_type(static_cast<std::uint8_t>(type & ~flag_bits))) continue;
    const std::uint64_t length = get(segment, at, 4);
    if (length == 0 || length > until - at - wal_header_bytes) continue;
    const std::string_view payload = segment.substr(at + wal_header_bytes, length);
    if (static_cast<std::uint32_t>(get(segment, at + 4, 4)) == record_crc(seq, at, type, payload)) return at;
  }
  return std::nullopt;
}

std::optional<WalEntriesSummary> summarize_wal_entries(std::string_view payload) {
  if (payload.size() < wal_entries_fixed_bytes) return std::nullopt;
  WalEntriesSummary summary;
  summary.first = get(payload, 0, 8);
  summary.count = static_cast<std::uint32_t>(get(payload, 8, 4));
  const std::uint64_t overhead = wal_entries_fixed_bytes + std::uint64_t{summary.count} * wal_entry_fixed_bytes;
  if (payload.size() < overhead) return std::nullopt;
  summary.data_bytes = payload.size() - overhead;
  return summary;
}

std::optional<std::vector<raft::Entry>> decode_wal_entries(std::string_view payload, bool with_data,
                                                           std::string* error) {
  const auto summary = summarize_wal_entries(payload);
  auto fail = [&](std::string reason) -> std::optional<std::vector<raft::Entry>> {
    if (error != nullptr) *error = std::move(reason);
    return std::nullopt;
  };
  if (!summary || summary->count == 0 || summary->first == 0) {
    return fail(fmt::format("an entries record of {} bytes is malformed", payload.size()));
  }
  std::vector<raft::Entry> entries(summary->count);
  std::size_t at = wal_entries_fixed_bytes;
  for (std::uint32_t i = 0; i < summary->count; ++i) {
    if (payload.size() - at < wal_entry_fixed_bytes) return fail(fmt::format("entry {} is cut short", summary->first + i));
    raft::Entry& e = entries[i];
    e.index = summary->first + i;
    e.term = get(payload, at, 8);
    const auto type = static_cast<std::uint8_t>(payload[at + 8]);
    const std::uint64_t n = get(payload, at + 9, 4);
    at += wal_entry_fixed_bytes;
    if (type > static_cast<std::uint8_t>(raft::EntryType::ConfChange)) {
      return fail(fmt::format("entry {}: unknown type {}", e.index, type));
    }
    if (payload.size() - at < n) return fail(fmt::format("entry {}: data runs past its record", e.index));
    e.type = static_cast<raft::EntryType>(type);
    if (with_data) e.data.assign(payload.substr(at, n));
    at += n;
  }
  if (at != payload.size()) return fail(fmt::format("{} bytes after the last entry of its record", payload.size() - at));
  return entries;
}

}  // namespace coord::storage
