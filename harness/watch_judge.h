// The judgement of coord-faults' watch workload (harness/watches.h), on plain data so that a test
// can feed it broken histories. A real cluster gives no committed log to compare with (sim's
// watch-delivery checker has one), so it judges by what is known for sure: each acknowledged
// write's revision, path and value, each unknown write, and what the other streams delivered.
// Violations (`watch-delivery`, sim's rules):
// - an event repeated or out of revision order;
// - an event no write explains (a phantom), one that differs from the acknowledged write at its
//   revision, or from another stream's event at that revision;
// - a gap: an acknowledged write, or an event another stream delivered, at a revision this
//   stream covered (from its start to its last event; for a stream still open at the end, to the
//   last acknowledged write) but did not deliver;
// - a stream that ended as compacted while its next revision was still kept (at or above the
//   compaction revision, the first one the history keeps);
// - a stream still open at the end that never caught up with the last acknowledged write.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kv/error.h"
#include "kv/types.h"

namespace coord::harness {

struct WatchRecord {
  struct Write {
    std::string path;
    bool deleted = false;
    std::string value;  // unique per put
  };
  struct Seen {
    kv::Revision revision = 0;
    std::string path;
    bool deleted = false;
    std::string value;
    bool operator==(const Seen&) const = default;
  };
  // One stream of a watcher: from `start` on, what it delivered, and how it ended (if it did).
  struct Segment {
    kv::Revision start = 0;
    std::vector<Seen> events;
    bool ended = false;
    kv::Status end;
  };

  kv::Revision marker_revision = 0;  // streams start after it
  std::map<kv::Revision, Write> acknowledged;
  std::vector<Write> unknown;
  std::vector<std::vector<Segment>> watchers;  // each watcher's streams, in order
};

// At most `max` violations, each "watch-delivery: ...".
std::vector<std::string> judge_watches(const WatchRecord& record, std::size_t max = 20);

// The revision of a watcher's last delivered event (the marker's when none).
kv::Revision last_delivered(const WatchRecord& record, const std::vector<WatchRecord::Segment>& watcher);

}  // namespace coord::harness
