// Always-on assertions. A broken precondition in the consensus core means the node's state can
// no longer be trusted, so we stop it loudly (also in Release) instead of replicating garbage;
// under the simulator a failed assertion is a bug found cheaply, with the seed to replay it.
#pragma once

#include <cstdio>
#include <cstdlib>

#define COORD_ASSERT(cond, msg)                                                       \
  do {                                                                                \
    if (!(cond)) [[unlikely]] {                                                       \
      std::fprintf(stderr, "%s:%d: assertion failed: %s: %s\n", __FILE__, __LINE__, \
                   #cond, (msg));                                                     \
      std::abort();                                                                   \
    }                                                                                 \
  } while (false)
