// The byte layout of WalLogStore's segment files (storage/wal_log_store.h), as pure functions.
// A segment is a run of records, then zeros (it is preallocated):
//
//   record:  u32 payload length | u32 crc | u8 type | payload
//   crc:     CRC-32C of (u64 segment seq | u64 the record's offset in the file | type | payload)
//   type:    the record's type (1..5), | 0x80 when the next record belongs to the same write,
//            | 0x40 on the first record of a write (of one pwrite); any other bit: a bad record
//
// One write (a Ready: snapshot, entries, hard state) is several records in one pwrite; a torn
// write may leave its first records whole and lose the rest. The continuation bit groups them,
// and a replay applies a group only when its last record is there: a Ready is all or nothing,
// on a power loss too (a new term's entries without the hard state naming that term would
// break the storage rules, and the log would not open).
//
// The checksum covers where the record was written as well as what it holds, so a valid record
// copied to another place (a stale one a torn write exposes, a block the disk misdirected) is
// as invalid as a flipped bit. The write-start bit lets a replay tell a torn write (always the
// last write: each one is fdatasynced before the next begins) from damage with acknowledged
// writes after it (storage/wal_replay.h); segments written before it existed have no such bit
// and only lose that check. A length of 0 where a record would start is the end of the data:
// no record has an empty payload. Payloads (integers little-endian):
//
//   Entries:          u64 first index | u32 count | count x (u64 term | u8 type | u32 n | n bytes)
//                     (indexes are consecutive from `first`)
//   HardState:        encode_hard_state (storage/log_records.h)
//   Snapshot*:        encode_snapshot_record (storage/log_records.h), in three roles below
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "raft/types.h"

namespace coord::storage {

enum class WalRecordType : std::uint8_t {
  Entries = 1,
  HardState = 2,
  SnapshotReplace = 3,  // a Ready's snapshot: the log restarts after it
  SnapshotSave = 4,     // save_snapshot: the log is kept
  SnapshotHead = 5,     // the snapshot as it stood when a segment began: a no-op unless the
                        // replay starts at this segment (the ones before it were dropped)
};

inline constexpr std::size_t wal_header_bytes = 4 + 4 + 1;
inline constexpr std::size_t wal_entries_fixed_bytes = 8 + 4;
inline constexpr std::size_t wal_entry_fixed_bytes = 8 + 1 + 4;

// The framed size of a record of `payload_bytes`, and of an Entries record of `entries`.
inline std::size_t wal_record_bytes(std::size_t payload_bytes) { return wal_header_bytes + payload_bytes; }
std::size_t wal_entries_record_bytes(const std::vector<raft::Entry>& entries);

// How a record sits in its write: `continued`, the next record belongs to the same write (the
// replay applies them together); `write_start`, it is the first record of a pwrite.
struct WalRecordFlags {
  bool continued = false;
  bool write_start = false;
};

// Appends a framed record to `out`, to be written at `offset` of segment `seq`.
void append_wal_record(std::string& out, std::uint64_t seq, std::uint64_t offset, WalRecordType type,
                       std::string_view payload, WalRecordFlags flags = {});
// The same for an Entries record, encoded straight into `out` (no payload copy).
void append_wal_entries(std::string& out, std::uint64_t seq, std::uint64_t offset,
                        const std::vector<raft::Entry>& entries, WalRecordFlags flags = {});

struct WalFrame {
  enum class Status : std::uint8_t { Ok, End, Bad };
  Status status = Status::End;
  WalRecordType type = WalRecordType::Entries;
  bool continued = false;    // the next record belongs to the same write
  bool write_start = false;  // the first record of a write
  std::string_view payload;
  // Bytes the record claims from its offset (header + length), clipped to what `rest` holds:
  // the extent a torn-write check looks at when it is Bad.
  std::size_t extent = 0;
  std::string problem;  // when Bad
};

// The record at `offset` of segment `seq`; `rest` holds the file's bytes from `offset` to its end.
WalFrame parse_wal_record(std::string_view rest, std::uint64_t seq, std::uint64_t offset);

// The first offset in (after, until) of segment `seq` holding a valid record that starts a
// write, all its bytes before `until`: a write made after whatever lies at `after`. Every byte
// offset is a candidate (a bad record's length says nothing of where the next one is); those
// whose type byte, length or room rule them out cost no checksum.
std::optional<std::uint64_t> find_wal_write_start(std::string_view segment, std::uint64_t seq, std::uint64_t after,
                                                  std::uint64_t until);

// An Entries payload's entries; with `with_data` false their data is left empty (a replay needs
// only indexes and terms). nullopt with the reason when it is malformed.
std::optional<std::vector<raft::Entry>> decode_wal_entries(std::string_view payload, bool with_data,
                                                           std::string* error);
// The first index and the count of an Entries payload, and the bytes of entry data it holds;
// nullopt when it is shorter than its fixed part.
struct WalEntriesSummary {
  raft::Index first = 0;
  std::uint32_t count = 0;
  std::uint64_t data_bytes = 0;
};
std::optional<WalEntriesSummary> summarize_wal_entries(std::string_view payload);

}  // namespace coord::storage
