// Gives free heap memory back to the OS after a burst. glibc's malloc keeps freed chunks in its
// arenas, resident: after a 1,000,000-key load a member held 150 MB of free heap beside 110 MB
// in use, for good (the log's entries freed at a compaction, a snapshot transfer's buffers).
// malloc_trim(0) madvises the free pages of every arena away and shrinks the top of the heap.
//
// When: malloc's own count of free bytes does not drop after a trim (the chunks stay free, only
// their pages go), so it cannot say whether a trim is due. The process's resident anonymous
// memory against the bytes in live allocations can: their difference is mostly free chunks
// still resident (plus thread stacks and the like, a few MiB), and a trim brings it down.
#pragma once

#include <cstddef>
#include <cstdint>

#include "net/heap_stats.h"

namespace coord::net {

struct HeapTrimOptions {
  // Trim when resident anonymous memory exceeds the live allocations by more than this.
  std::size_t resident_free_min = std::size_t{32} << 20;
  std::uint64_t interval_ms = 1000;  // sample (and maybe trim) at most this often
};

// The policy alone: is a trim due? False when the C library gave no heap figures (in_use 0,
// e.g. under AddressSanitizer, whose allocator malloc_trim does not reach).
bool heap_trim_due(const HeapStats& heap, std::size_t resident_anon, const HeapTrimOptions& options);

// The process's resident anonymous memory in bytes (/proc/self/statm: resident - shared); 0 when
// it cannot be read.
std::size_t resident_anon_bytes();

// malloc_trim(0) where the C library has it; true when it gave memory back.
bool heap_trim();

class HeapTrimmer {
 public:
  explicit HeapTrimmer(HeapTrimOptions options = {}) : options_(options) {}

  // Called on every tick with the loop's clock: samples the heap once per interval, and trims
  // when that sample says so (the sample kept is then the one taken after the trim).
  void tick(std::uint64_t now_ms);

  const HeapStats& last_sample() const { return sample_; }
  std::uint64_t trims() const { return trims_; }

 private:
  HeapTrimOptions options_;
  HeapStats sample_;
  std::uint64_t sampled_ms_ = 0;
  bool sampled_ = false;
  std::uint64_t trims_ = 0;
};

}  // namespace coord::net
