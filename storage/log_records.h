// The byte layout of the LMDB log store's records (layout version 1), as pure functions so that
// it is tested without LMDB and read in one place. Integers are little-endian except entry keys,
// which are big-endian so that LMDB's byte-wise key order is log order. Every value starts with
// a CRC-32C of the rest of it (for entries, of the key too: a value under the wrong key is as
// corrupt as a flipped bit).
//
//   entries DBI  key: u64 index (BE)
//                value: u32 crc | u64 term | u8 type | data
//   meta DBI     "layout_version": u32 crc | u32 version
//                "hard_state":     u32 crc | u64 term | u64 vote | u64 commit
//                "snapshot_meta":  u32 crc | u64 index | u64 term | u32 n | n x u64 voter
//                                  | u32 m | m x u64 learner | u8 has_data | u64 data_bytes
//                                  | u32 data_crc [| u32 n | n bytes: file name]
//                "snapshot_data":  the snapshot's bytes, in stores written before snapshot files
//                                  (absent when it has none, or when the record names a file)
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "raft/types.h"

namespace coord::storage {

// Bumped when a record's layout changes; a store with another version is refused, not guessed.
inline constexpr std::uint32_t log_layout_version = 1;

inline constexpr std::size_t entry_key_bytes = 8;
inline constexpr std::size_t entry_header_bytes = 4 + 8 + 1;  // crc, term, type

inline constexpr std::string_view meta_key_layout_version = "layout_version";
inline constexpr std::string_view meta_key_hard_state = "hard_state";
inline constexpr std::string_view meta_key_snapshot_meta = "snapshot_meta";
inline constexpr std::string_view meta_key_snapshot_data = "snapshot_data";

using EntryKey = std::array<char, entry_key_bytes>;

EntryKey entry_key(raft::Index index);
std::optional<raft::Index> parse_entry_key(std::string_view key);

// Replaces `out` with the value of `entry` (a reused buffer: one allocation per batch).
void encode_entry(const raft::Entry& entry, std::string& out);
// The entry stored under `index`; nullopt with the reason when the value is damaged.
std::optional<raft::Entry> decode_entry(raft::Index index, std::string_view value, std::string* error);

std::string encode_layout_version(std::uint32_t version);
std::optional<std::uint32_t> decode_layout_version(std::string_view value, std::string* error);

std::string encode_hard_state(const raft::HardState& hard_state);
std::optional<raft::HardState> decode_hard_state(std::string_view value, std::string* error);

// Snapshot metadata plus what is needed to check the data stored beside it.
struct SnapshotRecord {
  raft::SnapshotMeta meta;
  bool has_data = false;  // the Snapshot's data pointer was set (bytes may still be empty)
  std::uint64_t data_bytes = 0;
  std::uint32_t data_crc = 0;
  // The file in the log's directory holding the bytes (storage/snapshot_file.h); empty when they
  // are the "snapshot_data" row (stores written before snapshot files) or there are none.
  std::string file;

  bool operator==(const SnapshotRecord&) const = default;
};

// The record of in-memory bytes (checksummed here), to be stored in the snapshot_data row.
SnapshotRecord make_snapshot_record(const raft::SnapshotMeta& meta, const raft::SnapshotData* data);
std::string encode_snapshot_record(const SnapshotRecord& record);
std::optional<SnapshotRecord> decode_snapshot_record(std::string_view value, std::string* error);

}  // namespace coord::storage
