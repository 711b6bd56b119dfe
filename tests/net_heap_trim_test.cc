// The heap trimmer: free heap memory left resident after a burst goes back to the OS.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "net/heap_trim.h"
#include "tests/asan_detect.h"

namespace {

using namespace coord::net;

constexpr std::size_t mib = std::size_t{1} << 20;

TEST_CASE("a trim is due only when resident memory exceeds the live heap by the margin") {
  HeapTrimOptions options;
  options.resident_free_min = 32 * mib;
  HeapStats heap;
  heap.in_use = 100 * mib;
  CHECK_FALSE(heap_trim_due(heap, 100 * mib, options));
  CHECK_FALSE(heap_trim_due(heap, 132 * mib, options));
  CHECK(heap_trim_due(heap, 133 * mib, options));
  heap.in_use = 0;  // no figures from the C library: never
  CHECK_FALSE(heap_trim_due(heap, 500 * mib, options));
}

TEST_CASE("the trimmer samples at most once per interval") {
  HeapTrimOptions options;
  options.resident_free_min = std::size_t{1} << 40;  // never trims
  options.interval_ms = 1000;
  HeapTrimmer trimmer(options);
  trimmer.tick(5000, true);
  const HeapStats first = trimmer.last_sample();
  // Allocated between two ticks of one interval: not seen until the next interval.
  auto held = std::make_unique<std::vector<std::string>>();
  for (int i = 0; i < 4096; ++i) held->emplace_back(1024, 'x');
  trimmer.tick(5999, true);
  CHECK(trimmer.last_sample().in_use == first.in_use);
  trimmer.tick(6000, true);
  if (!COORD_TEST_ASAN && first.in_use > 0) CHECK(trimmer.last_sample().in_use > first.in_use + 4 * mib);
  CHECK(trimmer.trims() == 0);
}

#if !COORD_TEST_ASAN
TEST_CASE("free chunks left resident after a burst are given back") {
  // 96 MiB in small chunks, then all but every 64th freed: the free memory lies between live
  // chunks, so malloc cannot shrink its heap's top and keeps it resident.
  std::vector<char*> chunks;
  chunks.reserve(96 * 2048);
  for (std::size_t i = 0; i < 96 * 2048; ++i) {
    char* p = new char[480];
    for (std::size_t j = 0; j < 480; j += 64) p[j] = static_cast<char>(i + j);  // make it resident
    chunks.push_back(p);
  }
  std::vector<char*> kept;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    if (i % 64 == 0) {
      kept.push_back(chunks[i]);
    } else {
      delete[] chunks[i];
    }
  }
  chunks.clear();
  chunks.shrink_to_fit();
  const std::size_t before = resident_anon_bytes();
  REQUIRE(before > 0);
  HeapTrimOptions options;
  options.resident_free_min = 32 * mib;
  HeapTrimmer trimmer(options);
  trimmer.tick(0, false);
  const std::size_t after = resident_anon_bytes();
  CHECK(trimmer.trims() == 1);
  MESSAGE("resident anonymous memory: " << before / mib << " MiB before the trim, " << after / mib << " after");
  CHECK(after + 64 * mib < before);
  // Done: the next sample finds nothing worth a trim.
  trimmer.tick(options.interval_ms, false);
  CHECK(trimmer.trims() == 1);
  for (char* p : kept) delete[] p;
}

TEST_CASE("free memory that cannot be given back is not tried again every second") {
  // Every other 48-byte block freed: the free memory lies in chunks smaller than a page between
  // live ones, so a trim gives almost nothing back and resident memory stays above the live heap
  // by more than the margin. Trimming again each interval would walk the arenas each time.
  constexpr std::size_t blocks = 1'500'000;
  std::vector<char*> chunks(blocks);
  for (std::size_t i = 0; i < blocks; ++i) {
    chunks[i] = new char[48];
    chunks[i][0] = static_cast<char>(i);
  }
  for (std::size_t i = 0; i < blocks; i += 2) delete[] chunks[i];
  HeapTrimOptions options;
  options.resident_free_min = 32 * mib;
  HeapTrimmer trimmer(options);
  trimmer.tick(0, false);
  REQUIRE(trimmer.trims() == 1);
  const std::size_t resident = resident_anon_bytes();
  REQUIRE(heap_trim_due(trimmer.last_sample(), resident, options));  // still "due" by the margin alone
  for (std::uint64_t t = 1; t <= 5; ++t) trimmer.tick(t * options.interval_ms, false);
  CHECK(trimmer.trims() == 1);
  for (std::size_t i = 1; i < blocks; i += 2) delete[] chunks[i];
}
#endif

}  // namespace
