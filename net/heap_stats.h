// The process's heap as malloc sees it, for metrics: the bytes in live allocations, and the
// bytes malloc holds from the OS without any allocation in them (freed but not returned). The
// two tell a growing live structure from memory the allocator keeps after a burst.
#pragma once

#include <cstddef>

namespace coord::net {

struct HeapStats {
  std::size_t in_use = 0;     // live allocations, in the arenas and mmapped
  std::size_t free_held = 0;  // free chunks malloc keeps in its arenas
  std::size_t mmapped = 0;    // large allocations served by mmap (part of in_use)
};

// glibc's mallinfo2 (walks every arena under its lock: call it now and then, not per request).
// Zeros where the C library has no such call.
HeapStats heap_stats();

}  // namespace coord::net
