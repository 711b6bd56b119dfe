#include "kv/memory_storage.h"

#include <optional>
#include <utility>
#include <variant>
#include <vector>

#include "raft/assert.h"

namespace coord::kv {

namespace {

using Rows = MemoryStorage::Rows;
using Tables = MemoryStorage::Tables;

Rows& rows_of(Tables& tables, Table table) { return tables[static_cast<std::size_t>(table)]; }
const Rows& rows_of(const Tables& tables, Table table) {
  return tables[static_cast<std::size_t>(table)];
}

class MapCursor final : public Cursor {
 public:
  explicit MapCursor(const Rows& rows) : rows_(rows), it_(rows.end()) {}

  bool seek(std::string_view key) override {
    it_ = rows_.lower_bound(key);
    return it_ != rows_.end();
  }
  bool seek_before(std::string_view key) override {
    it_ = rows_.lower_bound(key);
    if (it_ == rows_.begin()) {
      it_ = rows_.end();
      return false;
    }
    --it_;
    return true;
  }
  bool next() override {
    COORD_ASSERT(it_ != rows_.end(), "next() on an unpositioned cursor");
    ++it_;
    return it_ != rows_.end();
  }
  std::string_view key() const override {
    COORD_ASSERT(it_ != rows_.end(), "key() on an unpositioned cursor");
    return it_->first;
  }
  std::string_view value() const override {
    COORD_ASSERT(it_ != rows_.end(), "value() on an unpositioned cursor");
    return it_->second;
  }

 private:
  const Rows& rows_;
  Rows::const_iterator it_;
};

std::optional<std::string> get_row(const Tables& tables, Table table, std::string_view key) {
  const Rows& rows = rows_of(tables, table);
  const auto it = rows.find(key);
  if (it == rows.end()) return std::nullopt;
  return it->second;
}

// Reads the live tables (the owner does not write while it reads).
class LiveReadTxn final : public ReadTxn {
 public:
  explicit LiveReadTxn(const Tables& tables) : tables_(tables) {}
  std::optional<std::string> get(Table table, std::string_view key) const override {
    return get_row(tables_, table, key);
  }
  std::unique_ptr<Cursor> cursor(Table table) const override {
    return std::make_unique<MapCursor>(rows_of(tables_, table));
  }
  std::uint64_t rows(Table table) const override { return rows_of(tables_, table).size(); }

 private:
  const Tables& tables_;
};

// Owns a copy of the tables, so it stays fixed while the original changes.
class PinnedReadTxn final : public ReadTxn {
 public:
  explicit PinnedReadTxn(Tables tables) : tables_(std::move(tables)) {}
  std::optional<std::string> get(Table table, std::string_view key) const override {
    return get_row(tables_, table, key);
  }
  std::unique_ptr<Cursor> cursor(Table table) const override {
    return std::make_unique<MapCursor>(rows_of(tables_, table));
  }
  std::uint64_t rows(Table table) const override { return rows_of(tables_, table).size(); }

 private:
  Tables tables_;
};

}  // namespace

class MemoryWriteTxn final : public WriteTxn {
 public:
  explicit MemoryWriteTxn(MemoryStorage& storage) : storage_(storage) {
    COORD_ASSERT(!storage_.writing_, "one write transaction at a time");
    storage_.writing_ = true;
  }
  ~MemoryWriteTxn() override {
    if (!committed_) rollback();
    storage_.writing_ = false;
  }

  std::optional<std::string> get(Table table, std::string_view key) const override {
    return get_row(storage_.tables_, table, key);
  }
  std::unique_ptr<Cursor> cursor(Table table) const override {
    return std::make_unique<MapCursor>(rows_of(storage_.tables_, table));
  }
  std::uint64_t rows(Table table) const override { return rows_of(storage_.tables_, table).size(); }

  void put(Table table, std::string_view key, std::string_view value) override {
    COORD_ASSERT(!committed_, "write after commit");
    Rows& rows = rows_of(storage_.tables_, table);
    // Copy first: `key` or `value` may point into the row being replaced.
    std::string fresh_key(key);
    std::string fresh_value(value);
    auto it = rows.find(fresh_key);
    if (it == rows.end()) {
      undo_.push_back(RowUndo{table, fresh_key, std::nullopt});
      rows.emplace(std::move(fresh_key), std::move(fresh_value));
    } else {
      undo_.push_back(RowUndo{table, std::move(fresh_key), std::move(it->second)});
      it->second = std::move(fresh_value);
    }
  }

  void erase(Table table, std::string_view key) override {
    COORD_ASSERT(!committed_, "write after commit");
    Rows& rows = rows_of(storage_.tables_, table);
    auto it = rows.find(key);
    if (it == rows.end()) return;
    undo_.push_back(RowUndo{table, it->first, std::move(it->second)});
    rows.erase(it);
  }

  void clear(Table table) override {
    COORD_ASSERT(!committed_, "write after commit");
    undo_.push_back(TableUndo{table, std::move(rows_of(storage_.tables_, table))});
    rows_of(storage_.tables_, table) = Rows();
  }

  void commit() override {
    COORD_ASSERT(!committed_, "commit twice");
    committed_ = true;
    undo_.clear();
  }

 private:
  struct RowUndo {
    Table table;
    std::string key;
    std::optional<std::string> old;  // nullopt: the row did not exist
  };
  struct TableUndo {
    Table table;
    Rows rows;
  };

  void rollback() {
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
      if (auto* row = std::get_if<RowUndo>(&*it)) {
        Rows& rows = rows_of(storage_.tables_, row->table);
        if (row->old) {
          rows.insert_or_assign(std::move(row->key), std::move(*row->old));
        } else {
          rows.erase(row->key);
        }
      } else {
        auto& table = std::get<TableUndo>(*it);
        rows_of(storage_.tables_, table.table) = std::move(table.rows);
      }
    }
    undo_.clear();
  }

  MemoryStorage& storage_;
  std::vector<std::variant<RowUndo, TableUndo>> undo_;
  bool committed_ = false;
};

std::unique_ptr<ReadTxn> MemoryStorage::read() {
  COORD_ASSERT(!writing_, "read while a write transaction is open");
  return std::make_unique<LiveReadTxn>(tables_);
}

std::unique_ptr<ReadTxn> MemoryStorage::pin() {
  COORD_ASSERT(!writing_, "pin while a write transaction is open");
  return std::make_unique<PinnedReadTxn>(tables_);
}

std::unique_ptr<WriteTxn> MemoryStorage::write() { return std::make_unique<MemoryWriteTxn>(*this); }

}  // namespace coord::kv
