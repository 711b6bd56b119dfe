#include "net/heap_stats.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace coord::net {

HeapStats heap_stats() {
  HeapStats s;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  const struct mallinfo2 m = mallinfo2();
  s.in_use = m.uordblks + m.hblkhd;
  s.free_held = m.fordblks;
  s.mmapped = m.hblkhd;
#endif
  return s;
}

}  // namespace coord::net
