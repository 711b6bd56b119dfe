#include "net/heap_trim.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace coord::net {

bool heap_trim_due(const HeapStats& heap, std::size_t resident_anon, const HeapTrimOptions& options) {
  if (heap.in_use == 0) return false;
  return resident_anon > heap.in_use + options.resident_free_min;
}

std::size_t resident_anon_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0, shared = 0;
  const int got = std::fscanf(f, "%lu %lu %lu", &size, &resident, &shared);
  std::fclose(f);
  if (got != 3 || shared > resident) return 0;
  const long page = sysconf(_SC_PAGESIZE);
  return static_cast<std::size_t>(resident - shared) * static_cast<std::size_t>(page > 0 ? page : 4096);
}

bool heap_trim() {
#if defined(__GLIBC__)
  return malloc_trim(0) == 1;
#else
  return false;
#endif
}

void HeapTrimmer::tick(std::uint64_t now_ms, bool sample) {
  if (looked_ && now_ms - looked_ms_ < options_.interval_ms) return;
  looked_ms_ = now_ms;
  looked_ = true;
  if (sample) sample_ = heap_stats();
  const std::size_t anon = resident_anon_bytes();
  if (anon < baseline_ + options_.resident_free_min) {
    baseline_ = std::min(baseline_, anon);
    return;
  }
  if (!sample) sample_ = heap_stats();
  baseline_ = anon;
  if (!heap_trim_due(sample_, anon, options_)) return;
  heap_trim();
  ++trims_;
  baseline_ = resident_anon_bytes();
  sample_ = heap_stats();
}

}  // namespace coord::net
