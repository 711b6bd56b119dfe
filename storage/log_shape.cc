#include "storage/log_shape.h"

#include <fmt/format.h>

#include <algorithm>

namespace coord::storage {

namespace {

using raft::Index;
using raft::Term;

std::optional<Term> term_at(const LogShape& shape, Index index, const StoredTermLookup& stored_term) {
  if (shape.last != 0 && index == shape.last) return shape.last_term;
  if (shape.last != 0 && index >= shape.first && index < shape.last) return stored_term(index);
  if (index == shape.snapshot.meta.index) return shape.snapshot.meta.term;
  return std::nullopt;
}

}  // namespace

std::optional<std::string> apply_entries(LogShape& shape, const std::vector<raft::Entry>& entries,
                                         const StoredTermLookup& stored_term) {
  if (entries.empty()) return std::nullopt;
  const Index first = entries.front().index;
  for (std::size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].index != entries[i - 1].index + 1) {
      return fmt::format("entries to write are not contiguous: {} follows {}", entries[i].index,
                         entries[i - 1].index);
    }
    if (entries[i].term < entries[i - 1].term) {
      return fmt::format("entry {} has term {}, below the term {} of the entry before it",
                         entries[i].index, entries[i].term, entries[i - 1].term);
    }
  }
  if (first <= shape.snapshot.meta.index) {
    return fmt::format("write at {} overwrites the snapshot at {}", first, shape.snapshot.meta.index);
  }
  if (first > shape.last_index() + 1) {
    return fmt::format("write at {} leaves a gap after the last index {}", first, shape.last_index());
  }
  const std::optional<Term> prev_term = term_at(shape, first - 1, stored_term);
  if (!prev_term) return fmt::format("no stored term for entry {}, before the write at {}", first - 1, first);
  if (entries.front().term < *prev_term) {
    return fmt::format("entry {} has term {}, below the term {} of entry {}", first,
                       entries.front().term, *prev_term, first - 1);
  }
  // Stored entries from `first` on are replaced; those before it stay.
  if (shape.last == 0 || first <= shape.first) shape.first = first;
  shape.last = entries.back().index;
  shape.last_term = entries.back().term;
  return std::nullopt;
}

std::optional<std::string> apply_hard_state(LogShape& shape, const raft::HardState& hs) {
  const raft::HardState& old = shape.hard_state;
  if (hs.term < old.term) return fmt::format("term goes back from {} to {}", old.term, hs.term);
  if (hs.term == old.term && old.vote != raft::kNoNode && hs.vote != old.vote) {
    return fmt::format("vote changes from {} to {} within term {}", old.vote, hs.vote, hs.term);
  }
  if (hs.commit < old.commit) return fmt::format("commit goes back from {} to {}", old.commit, hs.commit);
  shape.hard_state = hs;
  return std::nullopt;
}

std::optional<std::string> apply_ready(LogShape& shape, const raft::Ready& ready,
                                       const StoredTermLookup& stored_term, const SnapshotRecord* snapshot) {
  if (ready.snapshot) {
    const raft::SnapshotMeta& meta = ready.snapshot->meta;
    if (meta.index < shape.snapshot.meta.index) {
      return fmt::format("snapshot at {} is older than the stored one at {}", meta.index,
                         shape.snapshot.meta.index);
    }
    shape.snapshot = snapshot != nullptr ? *snapshot : make_snapshot_record(meta, ready.snapshot->data.get());
    shape.first = shape.last = 0;
    shape.last_term = 0;
  }
  if (auto problem = apply_entries(shape, ready.entries, stored_term)) return problem;
  if (ready.hard_state) {
    if (auto problem = apply_hard_state(shape, *ready.hard_state)) return problem;
  }
  return check_shape(shape);
}

std::optional<std::string> apply_save_snapshot(LogShape& shape, const SnapshotRecord& snapshot,
                                               const StoredTermLookup& stored_term) {
  const raft::SnapshotMeta& meta = snapshot.meta;
  if (meta.index > 0 && meta == shape.snapshot.meta && snapshot.has_data) {
    // The stored snapshot again, with bytes of its own: they replace a damaged file.
    shape.snapshot = snapshot;
    return check_shape(shape);
  }
  if (meta.index <= shape.snapshot.meta.index) {
    return fmt::format("snapshot at {} is not after the stored one at {}", meta.index,
                       shape.snapshot.meta.index);
  }
  const std::optional<Term> term = term_at(shape, meta.index, stored_term);
  if (!term || *term != meta.term) {
    return fmt::format("snapshot at {} with term {} does not match the stored log (term {})", meta.index,
                       meta.term, term ? fmt::to_string(*term) : std::string("none"));
  }
  shape.snapshot = snapshot;
  return check_shape(shape);
}

std::optional<std::string> apply_drop_prefix(LogShape& shape, Index through) {
  if (through > shape.snapshot.meta.index) {
    return fmt::format("dropping the log through {}, but the snapshot only covers {}", through,
                       shape.snapshot.meta.index);
  }
  if (shape.last != 0 && through >= shape.first) {
    if (through >= shape.last) {
      shape.first = shape.last = 0;
      shape.last_term = 0;
    } else {
      shape.first = through + 1;
    }
  }
  return check_shape(shape);
}

std::optional<std::string> check_shape(const LogShape& shape) {
  const Index snapshot_index = shape.snapshot.meta.index;
  if (shape.last != 0) {
    if (shape.first == 0 || shape.first > shape.last) {
      return fmt::format("stored entries [{}, {}] are not a range", shape.first, shape.last);
    }
    // The log continues the snapshot: no gap after it, and nothing between it and the entries.
    if (shape.first > snapshot_index + 1 || shape.last < snapshot_index) {
      return fmt::format("stored entries [{}, {}] do not continue the snapshot at {}", shape.first,
                         shape.last, snapshot_index);
    }
    if (shape.last_term < shape.snapshot.meta.term) {
      return fmt::format("last entry {} has term {}, below the snapshot's term {}", shape.last,
                         shape.last_term, shape.snapshot.meta.term);
    }
  }
  const raft::HardState& hs = shape.hard_state;
  if (hs.commit > shape.last_index()) {
    return fmt::format("commit {} is beyond the last index {}", hs.commit, shape.last_index());
  }
  if (shape.last_term > hs.term || shape.snapshot.meta.term > hs.term) {
    return fmt::format("the log holds term {} but the hard state's term is {}",
                       std::max(shape.last_term, shape.snapshot.meta.term), hs.term);
  }
  return std::nullopt;
}

}  // namespace coord::storage
