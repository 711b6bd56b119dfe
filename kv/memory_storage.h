// The in-memory backend: one std::map per table. Writes go straight to the maps and keep an undo
// log, so an aborted transaction (an exception while applying) puts everything back. Nothing is
// durable: a "crash" is dropping the object.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "kv/storage.h"

namespace coord::kv {

class MemoryStorage final : public Storage {
 public:
  using Rows = std::map<std::string, std::string, std::less<>>;
  using Tables = std::array<Rows, table_count>;

  MemoryStorage() = default;
  MemoryStorage(const MemoryStorage&) = delete;
  MemoryStorage& operator=(const MemoryStorage&) = delete;

  std::unique_ptr<ReadTxn> read() override;
  // Copies the tables: O(state), but the simulator has no other thread to hand a view to.
  std::unique_ptr<ReadTxn> pin() override;
  std::unique_ptr<WriteTxn> write() override;
  std::size_t key_bytes_max() const override { return SIZE_MAX; }

 private:
  friend class MemoryWriteTxn;

  Tables tables_;
  bool writing_ = false;
};

}  // namespace coord::kv
