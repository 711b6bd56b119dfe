// The per-follower backoff of snapshot transfers a follower refused (net/snapshot_refusals.h):
// its intervals, its cap, its reset, and that followers do not share it.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>

#include "net/snapshot_refusals.h"

using coord::net::SnapshotRefusalBackoff;

TEST_CASE("snapshot refusal backoff: the first refusal waits nothing more, later ones double the interval up to the cap") {
  SnapshotRefusalBackoff b(10, 80);  // intervals 10, 20, 40, 80, 80: holds 0, 10, 30, 70, 70
  CHECK_FALSE(b.holding(2, 0));
  b.refused(2, 5, 100);
  CHECK(b.refusals(2) == 1);
  CHECK(b.hold_ticks(2) == 0);
  CHECK_FALSE(b.holding(2, 100));
  b.refused(2, 5, 200);
  CHECK(b.hold_ticks(2) == 10);
  CHECK(b.holding(2, 209));
  CHECK_FALSE(b.holding(2, 210));
  b.refused(2, 5, 300);
  CHECK(b.hold_ticks(2) == 30);
  b.refused(2, 5, 400);
  CHECK(b.hold_ticks(2) == 70);
  b.refused(2, 5, 500);
  CHECK(b.hold_ticks(2) == 70);  // capped
  CHECK(b.holding(2, 569));
  CHECK_FALSE(b.holding(2, 570));
  // Another follower has a backoff of its own.
  CHECK_FALSE(b.holding(3, 501));
  CHECK_FALSE(b.refusing(3));
}

TEST_CASE("snapshot refusal backoff: a follower whose match index grew starts over") {
  SnapshotRefusalBackoff b(10, 1000);
  for (int k = 0; k < 4; ++k) b.refused(2, 5, 100);
  CHECK(b.hold_ticks(2) == 70);
  b.progressed(2, 5);  // no progress
  CHECK(b.refusing(2));
  b.progressed(2, 9);
  CHECK_FALSE(b.refusing(2));
  CHECK_FALSE(b.holding(2, 101));
  // Progress seen only at the next refusal counts as well.
  for (int k = 0; k < 3; ++k) b.refused(4, 5, 100);
  b.refused(4, 6, 200);
  CHECK(b.refusals(4) == 1);
  CHECK(b.hold_ticks(4) == 0);
}

TEST_CASE("snapshot refusal backoff: many refusals neither overflow nor pass the cap") {
  const std::uint64_t huge = std::numeric_limits<std::uint64_t>::max() / 4;
  SnapshotRefusalBackoff b(huge, std::numeric_limits<std::uint64_t>::max());
  for (int k = 0; k < 200; ++k) b.refused(7, 1, 0);
  CHECK(b.hold_ticks(7) >= huge);
  CHECK(b.holding(7, huge));
  SnapshotRefusalBackoff small(1, 3);
  for (int k = 0; k < 200; ++k) small.refused(7, 1, 0);
  CHECK(small.hold_ticks(7) == 2);
}
