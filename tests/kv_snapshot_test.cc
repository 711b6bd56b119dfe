// Acceptance 3: a snapshot taken while writes go on restores to exactly the state at its index,
// on either backend, and restoring is atomic and all-or-nothing.
#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

#include "kv/snapshot.h"
#include "kv_test_util.h"

using namespace kvtest;

namespace {

// Entries first..first+count-1: puts, creates and deletes over a small tree, with sessions.
std::vector<AppliedEntry> entries(Index first, int count) {
  std::vector<AppliedEntry> out;
  for (int i = 0; i < count; ++i) {
    const Index index = first + static_cast<Index>(i);
    Command c;
    c.session_id = 1 + index % 5;
    c.sequence = index;
    const std::string key = "/s/" + std::to_string(index % 17);
    Op put = Op::put(key, "value-" + std::to_string(index));
    put.parents = true;
    if (index % 7 == 0) {
      c.body = single(Op::remove(key));
    } else if (index % 11 == 0) {
      c.body = single(Op::create_sequential("/s/q-", "x"));
    } else {
      c.body = single(put);
    }
    out.push_back(AppliedEntry{index, encode_command(c)});
  }
  return out;
}

void apply_in_batches(StateMachine& sm, const std::vector<AppliedEntry>& all, std::size_t size) {
  for (std::size_t i = 0; i < all.size(); i += size) {
    std::vector<AppliedEntry> batch(
        all.begin() + static_cast<std::ptrdiff_t>(i),
        all.begin() + static_cast<std::ptrdiff_t>(std::min(i + size, all.size())));
    sm.apply_batch(batch);
  }
}

// The state after applying entries 1..index, computed on a replica of its own.
std::string reference_snapshot(Index index) {
  MemoryStorage storage;
  StateMachine sm(storage);
  apply_in_batches(sm, entries(1, static_cast<int>(index)), 7);
  return sm.snapshot();
}

}  // namespace

TEST_CASE("kv snapshot: taken under concurrent writes, restores to its index") {
  for (Backend backend : {Backend::Lmdb, Backend::Memory}) {
    CAPTURE(std::string(to_string(backend)));
    Replica source(backend);
    apply_in_batches(source.sm(), entries(1, 300), 10);
    const SnapshotSource pinned = source->begin_snapshot();
    CHECK(pinned.index() == 300);

    // Serialize the pinned view on another thread while this one keeps applying.
    std::string bytes;
    std::thread serializer([&] { bytes = pinned.bytes(); });
    apply_in_batches(source.sm(), entries(301, 300), 3);
    serializer.join();
    CHECK(source->applied_index() == 600);

    CHECK(bytes == reference_snapshot(300));
    for (Backend target : {Backend::Memory, Backend::Lmdb}) {
      CAPTURE(std::string(to_string(target)));
      Replica restored(target);
      // Restore replaces whatever was there.
      REQUIRE(restored.op(Op::create("/old", "gone")).ok());
      REQUIRE(restored->restore(bytes).ok());
      CHECK(restored->applied_index() == 300);
      CHECK_FALSE(restored->exists("/old").value);
      CHECK(restored->snapshot() == bytes);
      // It then follows the log like any replica, to the same state as the source.
      apply_in_batches(restored.sm(), entries(301, 300), 5);
      CHECK(restored->snapshot() == source->snapshot());
      // Its history came along: past reads and retries behave the same.
      CHECK(restored->get("/s/3", 250).value == source->get("/s/3", 250).value);
    }
  }
}

TEST_CASE("kv snapshot: bytes are deterministic and identical across backends") {
  Replica a(Backend::Memory), b(Backend::Lmdb);
  apply_in_batches(a.sm(), entries(1, 200), 9);
  apply_in_batches(b.sm(), entries(1, 200), 4);  // batching does not show in the state
  REQUIRE(a->snapshot() == b->snapshot());
  const ParsedSnapshot parsed = parse_snapshot(a->snapshot());
  REQUIRE(parsed.status.ok());
  CHECK(parsed.header.applied_index == 200);
  CHECK(parsed.header.revision == a->revision());
}

TEST_CASE("kv snapshot: malformed snapshots are refused and change nothing") {
  for (Backend backend : {Backend::Memory, Backend::Lmdb}) {
    CAPTURE(std::string(to_string(backend)));
    Replica r(backend);
    apply_in_batches(r.sm(), entries(1, 50), 5);
    const std::string before = r->snapshot();
    const std::string good = reference_snapshot(20);

    std::vector<std::string> bad = {"", "COORDKV", good.substr(0, good.size() / 2),
                                    good + "x"};
    std::string flipped = good;
    flipped[flipped.size() / 2] ^= 0x40;
    bad.push_back(flipped);
    std::string magic = good;
    magic[0] = 'X';
    bad.push_back(magic);
    for (const std::string& bytes : bad) {
      const Status s = r->restore(bytes);
      CHECK(s.error == Error::InvalidRequest);
      CHECK(r->snapshot() == before);
      CHECK(r->applied_index() == 50);
    }
    REQUIRE(r->restore(good).ok());
    CHECK(r->applied_index() == 20);
  }
}

TEST_CASE("kv snapshot: streamed in bounded pieces, with the same bytes, from a view that writes do not move") {
  MemoryStorage storage;
  StateMachine sm(storage);
  // About 3 MiB of values: several pieces.
  std::vector<AppliedEntry> big;
  for (Index i = 1; i <= 48; ++i) {
    Command c;
    c.session_id = 1;
    c.sequence = i;
    Op put = Op::put("/big/" + std::to_string(i), std::string(64 * 1024, static_cast<char>('a' + i % 26)));
    put.parents = true;
    c.body = single(put);
    big.push_back(AppliedEntry{i, encode_command(c)});
  }
  apply_in_batches(sm, big, 5);
  const std::string whole = sm.snapshot();
  const SnapshotSource source = sm.begin_snapshot();
  // Writes after the view is pinned change nothing in what it streams.
  apply_in_batches(sm, entries(49, 20), 3);
  std::string streamed;
  std::size_t pieces = 0, largest = 0;
  source.write_to([&](std::string_view piece) {
    ++pieces;
    largest = std::max(largest, piece.size());
    streamed.append(piece);
  });
  CHECK(streamed == whole);
  CHECK(pieces >= 3);
  // A piece is flushed once it reaches the size: at most one row (64 KiB and its framing) over.
  CHECK(largest <= snapshot_piece_bytes + 64 * 1024 + 1024);
  CHECK(parse_snapshot(streamed).status.ok());
}

TEST_CASE("kv snapshot: checked as it arrives, in pieces of any size, damage, truncation and another index are refused") {
  const std::string good = reference_snapshot(60);
  auto check_in_pieces = [](const std::string& bytes, std::size_t piece, Index expected) {
    SnapshotStreamCheck check(expected);
    for (std::size_t at = 0; at < bytes.size(); at += piece) check.update(std::string_view(bytes).substr(at, piece));
    return check.finish();
  };
  // Pieces smaller than the trailer, straddling it, and the whole at once.
  for (std::size_t piece : {std::size_t{1}, std::size_t{3}, std::size_t{7}, std::size_t{8}, std::size_t{9},
                            std::size_t{100}, good.size() - 4, good.size()}) {
    CAPTURE(piece);
    const Status ok = check_in_pieces(good, piece, 60);
    CHECK_MESSAGE(ok.ok(), ok.message);
    for (std::size_t at : {std::size_t{0}, std::size_t{9}, std::size_t{20}, good.size() / 2, good.size() - 9,
                           good.size() - 1}) {
      CAPTURE(at);
      std::string damaged = good;
      damaged[at] = static_cast<char>(damaged[at] ^ 0x10);
      const Status bad = check_in_pieces(damaged, piece, 60);
      CHECK(bad.error == Error::InvalidRequest);
      CHECK_FALSE(parse_snapshot(damaged).status.ok());  // what restore would have found later
    }
    CHECK(check_in_pieces(good.substr(0, good.size() - 1), piece, 60).error == Error::InvalidRequest);
    CHECK(check_in_pieces(good + "x", piece, 60).error == Error::InvalidRequest);
  }
  const Status other = check_in_pieces(good, 64, 59);
  CHECK(other.error == Error::InvalidRequest);
  CHECK_MESSAGE(other.message.find("applied index 60") != std::string::npos, other.message);
  CHECK(SnapshotStreamCheck(0).finish().error == Error::InvalidRequest);  // nothing at all
}
