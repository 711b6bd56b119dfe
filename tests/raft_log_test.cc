#include "raft/log.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using coord::raft::Entry;
using coord::raft::Index;
using coord::raft::RaftLog;
using coord::raft::SnapshotMeta;
using coord::raft::Term;

namespace {

Entry entry(Index index, Term term, std::string data = {}) {
  Entry e;
  e.index = index;
  e.term = term;
  e.data = std::move(data);
  return e;
}

// Entries first..first+terms.size()-1 with the given terms.
std::vector<Entry> entries(Index first, std::vector<Term> terms) {
  std::vector<Entry> out;
  for (Term t : terms) out.push_back(entry(first++, t));
  return out;
}

std::vector<Index> indices(const std::vector<Entry>& es) {
  std::vector<Index> out;
  for (const Entry& e : es) out.push_back(e.index);
  return out;
}

SnapshotMeta snap(Index index, Term term) {
  SnapshotMeta m;
  m.index = index;
  m.term = term;
  return m;
}

}  // namespace

TEST_CASE("empty log") {
  RaftLog log;
  CHECK(log.first_index() == 1);
  CHECK(log.last_index() == 0);
  CHECK(log.last_term() == 0);
  CHECK(log.term(0) == Term{0});
  CHECK_FALSE(log.term(1).has_value());
  CHECK(log.match_term(0, 0));
  CHECK_FALSE(log.match_term(1, 0));
  CHECK(log.unstable_from() == 1);
  CHECK(log.persisted() == 0);
  CHECK(log.entry_count() == 0);
}

TEST_CASE("restored log is durable") {
  RaftLog log(snap(5, 2), entries(6, {2, 3, 3}));
  CHECK(log.first_index() == 6);
  CHECK(log.last_index() == 8);
  CHECK(log.last_term() == 3);
  CHECK(log.snapshot_index() == 5);
  CHECK(log.snapshot_term() == 2);
  CHECK(log.unstable_from() == 9);
  CHECK(log.persisted() == 8);
  CHECK(log.at(7).term == 3);
}

TEST_CASE("restored snapshot without entries") {
  RaftLog log(snap(5, 2), {});
  CHECK(log.last_index() == 5);
  CHECK(log.last_term() == 2);
  CHECK(log.persisted() == 5);
  CHECK(log.unstable_from() == 6);
}

TEST_CASE("term lookup around the snapshot and the end") {
  RaftLog log(snap(5, 2), entries(6, {3, 4}));
  CHECK_FALSE(log.term(0).has_value());
  CHECK_FALSE(log.term(4).has_value());
  CHECK(log.term(5) == Term{2});
  CHECK(log.term(6) == Term{3});
  CHECK(log.term(7) == Term{4});
  CHECK_FALSE(log.term(8).has_value());
  CHECK(log.match_term(5, 2));
  CHECK_FALSE(log.match_term(5, 3));
  CHECK_FALSE(log.match_term(4, 0));
}

TEST_CASE("is_up_to_date") {
  RaftLog log({}, entries(1, {1, 2, 2}));
  CHECK(log.is_up_to_date(3, 2));   // identical
  CHECK(log.is_up_to_date(4, 2));   // longer, same term
  CHECK(log.is_up_to_date(1, 3));   // shorter, higher term
  CHECK_FALSE(log.is_up_to_date(2, 2));  // shorter, same term
  CHECK_FALSE(log.is_up_to_date(9, 1));  // longer, lower term
}

TEST_CASE("append then slice") {
  RaftLog log;
  log.append(entries(1, {1, 1, 2}));
  CHECK(log.last_index() == 3);
  CHECK(log.last_term() == 2);
  CHECK(log.unstable_from() == 1);  // nothing handed out yet
  log.append({});                   // no-op
  CHECK(log.last_index() == 3);
  CHECK(indices(log.slice(1, 4, 1 << 20)) == std::vector<Index>{1, 2, 3});
  CHECK(indices(log.slice(2, 3, 1 << 20)) == std::vector<Index>{2});
  CHECK(indices(log.slice(2, 100, 1 << 20)) == std::vector<Index>{2, 3});  // hi clamped
  CHECK(log.slice(3, 3, 1 << 20).empty());
  CHECK(log.slice(4, 9, 1 << 20).empty());
}

TEST_CASE("slice respects the byte limit but returns at least one entry") {
  RaftLog log;
  log.append({entry(1, 1, std::string(10, 'a')), entry(2, 1, std::string(10, 'b')),
              entry(3, 1, std::string(10, 'c'))});
  CHECK(indices(log.slice(1, 4, 0)) == std::vector<Index>{1});
  CHECK(indices(log.slice(1, 4, 5)) == std::vector<Index>{1});
  CHECK(indices(log.slice(1, 4, 19)) == std::vector<Index>{1});
  CHECK(indices(log.slice(1, 4, 20)) == std::vector<Index>{1, 2});
  CHECK(indices(log.slice(1, 4, 29)) == std::vector<Index>{1, 2});
  CHECK(indices(log.slice(1, 4, 30)) == std::vector<Index>{1, 2, 3});
  CHECK(log.slice(2, 3, 0).front().data == std::string(10, 'b'));
}

TEST_CASE("merge") {
  RaftLog log({}, entries(1, {1, 1, 2, 2}));

  SUBCASE("entries already present return 0") {
    CHECK(log.merge(entries(2, {1, 2})) == 0);
    CHECK(log.merge({}) == 0);
    CHECK(log.last_index() == 4);
    CHECK(log.persisted() == 4);
  }
  SUBCASE("new entries after the end are appended") {
    CHECK(log.merge(entries(4, {2, 3, 3})) == 5);
    CHECK(log.last_index() == 6);
    CHECK(log.term(6) == Term{3});
    CHECK(log.unstable_from() == 5);
    CHECK(log.persisted() == 4);
  }
  SUBCASE("a conflicting suffix is truncated and replaced") {
    CHECK(log.merge(entries(2, {1, 3})) == 3);
    CHECK(log.last_index() == 3);
    CHECK(log.term(3) == Term{3});
    CHECK_FALSE(log.term(4).has_value());
    CHECK(log.unstable_from() == 3);
    CHECK(log.persisted() == 2);
  }
  SUBCASE("a conflict replaced by a longer suffix") {
    CHECK(log.merge(entries(3, {3, 3, 3, 3})) == 3);
    CHECK(log.last_index() == 6);
    CHECK(log.last_term() == 3);
  }
  SUBCASE("a shorter matching prefix truncates nothing") {
    CHECK(log.merge(entries(1, {1})) == 0);
    CHECK(log.last_index() == 4);
  }
}

TEST_CASE("merge ignores entries covered by the snapshot") {
  RaftLog log(snap(5, 3), entries(6, {3}));
  // Indices 4..5 are committed; even a different term there must not touch the snapshot.
  CHECK(log.merge(entries(4, {2, 3, 3})) == 0);
  CHECK(log.merge(entries(4, {2, 3, 3, 4})) == 7);
  CHECK(log.last_index() == 7);
  CHECK(log.snapshot_index() == 5);
}

TEST_CASE("find_conflict_by_term") {
  // index: 1 2 3 4 5 6 7
  // term:  1 1 2 2 4 4 5
  RaftLog log({}, entries(1, {1, 1, 2, 2, 4, 4, 5}));
  CHECK(log.find_conflict_by_term(7, 5) == 7);
  CHECK(log.find_conflict_by_term(7, 4) == 6);
  CHECK(log.find_conflict_by_term(7, 3) == 4);
  CHECK(log.find_conflict_by_term(6, 2) == 4);
  CHECK(log.find_conflict_by_term(3, 1) == 2);
  CHECK(log.find_conflict_by_term(7, 0) == 0);   // reaches the (empty) snapshot
  CHECK(log.find_conflict_by_term(20, 4) == 6);  // starts from last_index()
  CHECK(log.find_conflict_by_term(20, 9) == 7);

  RaftLog compacted(snap(3, 2), entries(4, {2, 4, 4, 5}));
  CHECK(compacted.find_conflict_by_term(7, 3) == 4);
  CHECK(compacted.find_conflict_by_term(7, 1) == 3);  // stops at the snapshot index
  CHECK(compacted.find_conflict_by_term(2, 1) == 2);  // below the snapshot: term unknown
}

TEST_CASE("compact") {
  RaftLog log({}, entries(1, {1, 1, 2, 2, 3}));
  log.compact(3);
  CHECK(log.snapshot_index() == 3);
  CHECK(log.snapshot_term() == 2);
  CHECK(log.first_index() == 4);
  CHECK(log.last_index() == 5);
  CHECK(log.entry_count() == 2);
  CHECK_FALSE(log.term(2).has_value());
  CHECK(log.term(3) == Term{2});
  CHECK(log.term(4) == Term{2});
  CHECK(log.at(5).term == 3);
  CHECK(indices(log.slice(4, 6, 1 << 20)) == std::vector<Index>{4, 5});

  log.compact(3);  // same point: no-op
  CHECK(log.snapshot_index() == 3);
  log.compact(5);  // everything
  CHECK(log.entry_count() == 0);
  CHECK(log.last_index() == 5);
  CHECK(log.last_term() == 3);
  CHECK_FALSE(log.term(4).has_value());
  log.append(entries(6, {3}));
  CHECK(log.last_index() == 6);
}

TEST_CASE("compact raises unstable_from past the snapshot") {
  RaftLog log({}, entries(1, {1, 1}));
  log.append(entries(3, {1, 1}));  // 3..4 not handed out
  log.mark_persisted(2, 1);
  CHECK(log.unstable_from() == 3);
  log.compact(2);
  CHECK(log.unstable_from() == 3);
  log.mark_handed_out();
  log.mark_persisted(4, 1);
  log.compact(4);
  CHECK(log.unstable_from() == 5);
}

TEST_CASE("restore replaces the log") {
  RaftLog log({}, entries(1, {1, 1, 2}));
  log.append(entries(4, {2}));
  log.restore(snap(10, 4));
  CHECK(log.entry_count() == 0);
  CHECK(log.snapshot_index() == 10);
  CHECK(log.snapshot_term() == 4);
  CHECK(log.last_index() == 10);
  CHECK(log.last_term() == 4);
  CHECK(log.unstable_from() == 11);
  CHECK(log.persisted() == 10);
  CHECK_FALSE(log.term(3).has_value());
  CHECK(log.merge(entries(11, {4})) == 11);
  CHECK(log.last_index() == 11);
}

TEST_CASE("persistence bookkeeping") {
  RaftLog log;
  log.append(entries(1, {1, 1, 1}));
  CHECK(log.unstable_from() == 1);
  log.mark_handed_out();
  CHECK(log.unstable_from() == 4);
  CHECK(log.persisted() == 0);

  SUBCASE("in order") {
    log.mark_persisted(2, 1);
    CHECK(log.persisted() == 2);
    log.mark_persisted(3, 1);
    CHECK(log.persisted() == 3);
    log.mark_persisted(1, 1);  // never goes backwards
    CHECK(log.persisted() == 3);
  }
  SUBCASE("wrong term or beyond the end is ignored") {
    log.mark_persisted(3, 2);
    CHECK(log.persisted() == 0);
    log.mark_persisted(9, 1);
    CHECK(log.persisted() == 0);
  }
  SUBCASE("stale acknowledgement after truncation is ignored") {
    log.mark_persisted(3, 1);
    // A new leader overwrites index 2..3 with term 2 before the host persisted them.
    CHECK(log.merge(entries(2, {2, 2})) == 2);
    CHECK(log.persisted() == 1);
    CHECK(log.unstable_from() == 2);
    log.mark_persisted(3, 1);  // the old term-1 write finishing late
    CHECK(log.persisted() == 1);
    log.mark_handed_out();
    log.mark_persisted(3, 2);
    CHECK(log.persisted() == 3);
  }
  SUBCASE("truncation below persisted pulls it back") {
    log.mark_persisted(3, 1);
    CHECK(log.merge(entries(3, {2})) == 3);
    CHECK(log.persisted() == 2);
    CHECK(log.persisted() <= log.last_index());
  }
  SUBCASE("the snapshot point counts as persisted") {
    RaftLog restored(snap(4, 2), {});
    restored.mark_persisted(4, 2);
    CHECK(restored.persisted() == 4);
    restored.mark_persisted(3, 2);
    CHECK(restored.persisted() == 4);
  }
}

// --- Dropped entry data (Config::read_entries): the log keeps the terms, reads the data back.

namespace {

// A reader over a fixed copy of the log's entries, by RaftLog::slice's rule; counts its calls.
RaftLog::Reader reader_over(const std::vector<Entry>& stored, int* calls) {
  return [&stored, calls](Index lo, Index hi, std::size_t max_bytes) {
    ++*calls;
    std::vector<Entry> out;
    std::size_t bytes = 0;
    for (const Entry& e : stored) {
      if (e.index < lo || e.index >= hi) continue;
      bytes += e.data.size();
      if (!out.empty() && bytes > max_bytes) break;
      out.push_back(e);
    }
    return out;
  };
}

// Every slice and term of `a` and `b` agree.
void check_same(const RaftLog& a, const RaftLog& b) {
  REQUIRE(a.first_index() == b.first_index());
  REQUIRE(a.last_index() == b.last_index());
  CHECK(a.last_term() == b.last_term());
  for (Index i = a.snapshot_index(); i <= a.last_index() + 1; ++i) CHECK(a.term(i) == b.term(i));
  for (Index lo = a.first_index(); lo <= a.last_index(); ++lo) {
    for (Index hi = lo; hi <= a.last_index() + 1; hi += 3) {
      for (std::size_t max : {std::size_t{0}, std::size_t{7}, std::size_t{40}, std::size_t{1} << 20}) {
        CHECK(a.slice(lo, hi, max) == b.slice(lo, hi, max));
      }
    }
  }
}

}  // namespace

TEST_CASE("entries whose data was dropped are read back: slices and terms as with all in memory") {
  std::vector<Entry> stored;
  for (Index i = 1; i <= 60; ++i) stored.push_back(entry(i, i <= 20 ? 1 : (i <= 45 ? 2 : 4), std::string(i % 9, 'x')));
  RaftLog all(SnapshotMeta{}, stored);
  RaftLog some(SnapshotMeta{}, stored);
  int calls = 0;
  some.set_reader(reader_over(stored, &calls));
  const std::size_t before = some.memory_bytes();
  some.drop_data(50, 30);  // keeps about 30 bytes, never beyond 50
  CHECK(some.memory_first() > 40);
  CHECK(some.memory_first() <= 51);
  CHECK(some.memory_bytes() < before);
  CHECK(some.memory_bytes() <= 30 + 8 * 10);  // what is above 50 stays whatever its size
  check_same(all, some);
  CHECK(calls > 0);

  SUBCASE("compaction inside the dropped part keeps the terms after it") {
    all.compact(30);
    some.compact(30);
    check_same(all, some);
  }
  SUBCASE("compaction beyond it leaves nothing dropped") {
    all.compact(52);
    some.compact(52);
    CHECK(some.memory_first() == 53);
    check_same(all, some);
  }
  SUBCASE("new entries append after the dropped ones") {
    std::vector<Entry> more;
    for (Index i = 61; i <= 70; ++i) more.push_back(entry(i, 5, "yy"));
    stored.insert(stored.end(), more.begin(), more.end());
    all.append(more);
    some.append(more);
    check_same(all, some);
  }
  SUBCASE("a snapshot restore starts over with everything in memory") {
    some.restore(SnapshotMeta{80, 6, {}});
    CHECK(some.memory_first() == 81);
    CHECK(some.memory_bytes() == 0);
    CHECK(some.last_index() == 80);
    CHECK(some.last_term() == 6);
  }
}

TEST_CASE("data is dropped only up to the given index and while over the budget") {
  std::vector<Entry> stored;
  for (Index i = 1; i <= 10; ++i) stored.push_back(entry(i, 1, std::string(10, 'd')));
  RaftLog log(SnapshotMeta{}, stored);
  int calls = 0;
  log.set_reader(reader_over(stored, &calls));
  log.drop_data(4, 0);
  CHECK(log.memory_first() == 5);
  CHECK(log.memory_bytes() == 60);
  log.drop_data(10, 60);  // within budget: nothing more
  CHECK(log.memory_first() == 5);
  log.drop_data(10, 35);
  CHECK(log.memory_first() == 8);
  CHECK(log.memory_bytes() == 30);
  log.drop_data(10, 0);  // all of it: the log still knows its end
  CHECK(log.memory_first() == 11);
  CHECK(log.last_index() == 10);
  CHECK(log.last_term() == 1);
  CHECK(log.slice(1, 11, 1000).size() == 10);
}
