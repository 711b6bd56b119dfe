#include "kv/check_rows.h"

#include <cstddef>
#include <cstdint>

namespace coord::kv {

bool check_every_row(const ReadTxn& txn, const std::function<bool()>& keep_going) {
  constexpr std::uint64_t rows_between_asks = 4096;
  std::uint64_t rows = 0;
  for (std::size_t t = 0; t < table_count; ++t) {
    auto cursor = txn.cursor(static_cast<Table>(t));
    for (bool more = cursor->seek(""); more; more = cursor->next()) {
      if (++rows % rows_between_asks == 0 && keep_going && !keep_going()) return false;
    }
  }
  return true;
}

}  // namespace coord::kv
