// The on-disk backend: one LMDB environment (a directory holding data.mdb and lock.mdb) with one
// named database per table. LMDB gives what the state machine needs: write transactions that
// commit atomically (so after a crash the state is that of some applied index), and read
// transactions that see a fixed version while the writer continues (snapshots without
// stopping writes).
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <string>

#include "kv/storage.h"

struct MDB_env;

namespace coord::kv {

struct LmdbOptions {
  std::string directory;  // created if missing
  // Upper bound on the database size (address space reserved; the file grows as needed).
  std::size_t map_bytes = std::size_t{1} << 30;
  // fsync on every commit. Off, a process crash still loses nothing (the page cache survives);
  // a machine crash may lose the latest commits but never tears one.
  bool sync = true;
  // Concurrent read transactions (reads plus snapshots in progress).
  unsigned readers_max = 126;
};

class LmdbStorage final : public Storage {
 public:
  // Throws StorageError when the environment cannot be opened.
  explicit LmdbStorage(const LmdbOptions& options);
  ~LmdbStorage() override;
  LmdbStorage(const LmdbStorage&) = delete;
  LmdbStorage& operator=(const LmdbStorage&) = delete;

  std::unique_ptr<ReadTxn> read() override;
  std::unique_ptr<ReadTxn> pin() override;  // an LMDB read transaction; the env is MDB_NOTLS
  std::unique_ptr<WriteTxn> write() override;

  // Flushes every commit to disk (mdb_env_sync); with `sync` off, the owner calls it before it
  // relies on the file's durability. Throws StorageError.
  void sync();

  // Key bytes LMDB accepts (511 unless LMDB was built otherwise).
  std::size_t key_bytes_max() const override;

 private:
  MDB_env* env_ = nullptr;
  std::array<unsigned, table_count> dbis_{};
};

}  // namespace coord::kv
