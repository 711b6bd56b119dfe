// The storage seam under the state machine: a few ordered byte tables with transactions. Two
// implementations run the very same StateMachine code: MemoryStorage (std::map, for the
// simulator and fast tests) and LmdbStorage (on disk). The state machine owns the layout of keys
// and values (kv/layout.h); a backend only stores bytes in key order.
//
// Threading: a Storage and its transactions are used by one thread at a time, except pin():
// a pinned view may be read on another thread while the owner keeps writing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace coord::kv {

enum class Table : std::uint8_t {
  Meta = 0,        // applied index, revision, compaction point, format, session count
  Nodes = 1,       // path -> node record without its value (the current tree), and
                   // path \0 revision -> version kind (the index of each node's versions)
  Changes = 2,     // revision path -> version record, values included (MVCC history, in order)
  Sessions = 3,    // session id -> last sequence, last applied index, encoded result
  SessionLru = 4,  // last applied index, session id -> "" (eviction order)
  Leases = 5,      // lease id -> lease record (TTL, keep-alive count, key count)
  LeaseKeys = 6,   // lease id path -> "" (the keys attached to each lease)
};
inline constexpr std::size_t table_count = 7;

const char* table_name(Table table);

// A backend failure (for LMDB: an mdb_* return code). Writes that throw leave the storage as it
// was before the transaction: the transaction is aborted when it is destroyed.
// The code of a StorageError for a store written in another layout format (kv/layout.h); the
// value is LMDB's MDB_INCOMPATIBLE, so that one code means it for either backend.
inline constexpr int storage_error_format = -30784;

class StorageError : public std::runtime_error {
 public:
  StorageError(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

class Cursor {
 public:
  virtual ~Cursor() = default;
  // Moves to the first row whose key is >= `key`; false when there is none.
  virtual bool seek(std::string_view key) = 0;
  // Moves to the last row whose key is < `key`; false when there is none.
  virtual bool seek_before(std::string_view key) = 0;
  // Moves to the next row; false at the end.
  virtual bool next() = 0;
  // The current row. Valid until the cursor moves, or its transaction writes or ends.
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
};

class ReadTxn {
 public:
  virtual ~ReadTxn() = default;
  virtual std::optional<std::string> get(Table table, std::string_view key) const = 0;
  // A cursor must not outlive its transaction, nor be used across a write to the same table.
  virtual std::unique_ptr<Cursor> cursor(Table table) const = 0;
  // The number of rows in `table`, without reading them (a snapshot's header needs it before
  // its rows are written).
  virtual std::uint64_t rows(Table table) const = 0;
};

// Sees its own writes. Destroying it without commit() undoes everything it wrote.
class WriteTxn : public ReadTxn {
 public:
  virtual void put(Table table, std::string_view key, std::string_view value) = 0;
  virtual void erase(Table table, std::string_view key) = 0;  // absent keys are fine
  virtual void clear(Table table) = 0;
  virtual void commit() = 0;
};

class Storage {
 public:
  virtual ~Storage() = default;
  // The latest committed state, for reads on the owner's thread between writes.
  virtual std::unique_ptr<ReadTxn> read() = 0;
  // A view fixed at the latest committed state: it stays consistent while later writes commit,
  // and may be handed to another thread (one at a time). Used for snapshots.
  virtual std::unique_ptr<ReadTxn> pin() = 0;
  // One write transaction at a time.
  virtual std::unique_ptr<WriteTxn> write() = 0;
  // The longest key the backend stores.
  virtual std::size_t key_bytes_max() const = 0;
};

}  // namespace coord::kv
