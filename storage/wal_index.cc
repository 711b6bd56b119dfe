#include "storage/wal_index.h"

#include <algorithm>

namespace coord::storage {

void WalIndex::append(WalChunk chunk, const std::vector<raft::Entry>& entries) {
  const raft::Index from = entries.front().index;
  while (!chunks_.empty() && chunks_.back().first >= from) chunks_.pop_back();
  if (!chunks_.empty() && chunks_.back().last >= from) {
    chunks_.back().last = from - 1;
    chunks_.back().data_bytes = 0;  // only part of the record is the log's now
  }
  while (!terms_.empty() && terms_.back().start >= from) terms_.pop_back();
  for (const raft::Entry& e : entries) {
    if (terms_.empty() || terms_.back().term != e.term) terms_.push_back({e.index, e.term});
  }
  chunk.record_first = chunk.first = from;
  chunk.last = entries.back().index;
  chunks_.push_back(chunk);
}

void WalIndex::clear() {
  chunks_.clear();
  terms_.clear();
}

void WalIndex::drop_through(raft::Index through) {
  while (!chunks_.empty() && chunks_.front().last <= through) chunks_.pop_front();
  if (chunks_.empty()) {
    terms_.clear();
    return;
  }
  if (chunks_.front().first <= through) {
    chunks_.front().first = through + 1;
    chunks_.front().data_bytes = 0;
  }
  const raft::Index first = chunks_.front().first;
  while (terms_.size() >= 2 && terms_[1].start <= first) terms_.pop_front();
}

std::optional<raft::Term> WalIndex::term(raft::Index index) const {
  if (chunks_.empty() || index < chunks_.front().first || index > chunks_.back().last) return std::nullopt;
  auto it = std::upper_bound(terms_.begin(), terms_.end(), index,
                             [](raft::Index i, const TermRun& run) { return i < run.start; });
  if (it == terms_.begin()) return std::nullopt;
  return std::prev(it)->term;
}

std::vector<WalChunk> WalIndex::chunks_for(raft::Index lo, raft::Index hi, std::size_t max_bytes) const {
  std::vector<WalChunk> out;
  if (lo >= hi || chunks_.empty() || lo < chunks_.front().first || lo > chunks_.back().last) return out;
  auto it = std::upper_bound(chunks_.begin(), chunks_.end(), lo,
                             [](raft::Index i, const WalChunk& c) { return i < c.first; });
  --it;  // the chunk holding lo: the last one starting at or before it
  std::uint64_t known = 0;
  for (; it != chunks_.end() && it->first < hi; ++it) {
    out.push_back(*it);
    if (it->first >= lo) known += it->data_bytes;  // the first chunk may be read from its middle
    // Past the limit for sure (each chunk's data counted only when it is read whole): the
    // read stops inside the chunks collected.
    if (known > max_bytes) break;
  }
  return out;
}

std::optional<std::uint64_t> WalIndex::first_seq() const {
  if (chunks_.empty()) return std::nullopt;
  return chunks_.front().seq;
}

}  // namespace coord::storage
