// What to report if the process dies in the middle of a run: the core stops itself with abort()
// when one of its assertions fails (raft/assert.h), and that must still name the seed that
// replays it. Each thread records the run it is executing; a SIGABRT handler (cmd/coord-sim)
// writes the report from the aborting thread. Best effort: it runs inside a signal handler of a
// process that is about to die.
#pragma once

#include <cstdint>
#include <sstream>

namespace coord::sim {

class Trace;

struct AbortContext {
  bool active = false;
  std::uint64_t seed = 0;
  const Trace* trace = nullptr;                 // for the last events
  const std::ostringstream* trace_text = nullptr;  // the run's trace so far, when one is kept
};

// This thread's context.
AbortContext& abort_context();

// "VIOLATION seed=N invariant=core-assert" and the last events, to `fd`. Nothing when no run is
// active on this thread.
void write_abort_report(int fd);
// The active run's trace text so far, to `fd`.
void write_abort_trace(int fd);

}  // namespace coord::sim
