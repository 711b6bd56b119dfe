// Gives free heap memory back to the OS after a burst. glibc's malloc keeps freed chunks in its
// arenas, resident: after a 1,000,000-key load a member held 150 MB of free heap beside 110 MB
// in use, for good (the log's entries freed at a compaction, a snapshot transfer's buffers).
// malloc_trim(0) madvises the free pages of every arena away and shrinks the top of the heap.
//
// When: malloc's own count of free bytes does not drop after a trim (the chunks stay free, only
// their pages go), so it cannot say whether a trim is due. The process's resident anonymous
// memory against the bytes in live allocations can: their difference is mostly free chunks
// still resident (plus thread stacks and the like, a few MiB).
//
// How often: a trim (and mallinfo2) walks every arena under its lock, tens of ms on a heap of
// millions of chunks, stalling the loop and any thread that allocates meanwhile. A heap whose
// free memory lies in small chunks between live ones cannot give it back at all, and a check on
// the difference alone would trim it every second for good (found in review). So a trim also
// needs the resident memory to have grown by the margin since the last check that looked
// (after its trim, if any): memory that was given back, or could not be, is not tried again.
#pragma once

#include <cstddef>
#include <cstdint>

#include "net/heap_stats.h"

namespace coord::net {

struct HeapTrimOptions {
  // Trim when resident anonymous memory exceeds the live allocations by more than this, and has
  // grown by more than this since the last look.
  std::size_t resident_free_min = std::size_t{32} << 20;
  std::uint64_t interval_ms = 1000;  // look at most this often
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

  // Called on every tick with the loop's clock, once per interval: reads the resident memory
  // (cheap), samples the heap when `sample` (the metrics want it) or when the resident memory
  // grew by the margin, and trims when heap_trim_due says so.
  void tick(std::uint64_t now_ms, bool sample);

  // The latest heap sample (after the trim, when there was one); zeros before the first.
  const HeapStats& last_sample() const { return sample_; }
  std::uint64_t trims() const { return trims_; }

 private:
  HeapTrimOptions options_;
  HeapStats sample_;
  std::uint64_t looked_ms_ = 0;
  bool looked_ = false;
  // Resident anonymous memory at the last look that sampled the heap for a trim (after the
  // trim), or lower since: growth is counted from here.
  std::size_t baseline_ = 0;
  std::uint64_t trims_ = 0;
};

}  // namespace coord::net
