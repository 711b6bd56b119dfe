#include "fencing/fenced_txn.h"

#include <utility>

namespace coord::fencing {

kv::Txn fenced_txn(std::string lock_key, Token token, std::vector<kv::Op> ops) {
  kv::Txn txn;
  txn.compares.push_back(kv::Compare::exists(lock_key));
  txn.compares.push_back(
      kv::Compare::create_revision(std::move(lock_key), kv::CompareOp::Equal, token));
  txn.success = std::move(ops);
  return txn;
}

const char* fenced_txn_failure(int failed_compare) {
  switch (failed_compare) {
    case 0: return "the lock key is gone: the lock is no longer held";
    case 1: return "the lock key was created again by another holder";
    default: return "the fenced transaction's comparisons did not hold";
  }
}

}  // namespace coord::fencing
