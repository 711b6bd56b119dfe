#include "harness/watch_judge.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <utility>

namespace coord::harness {

kv::Revision last_delivered(const WatchRecord& record, const std::vector<WatchRecord::Segment>& watcher) {
  for (auto s = watcher.rbegin(); s != watcher.rend(); ++s) {
    if (!s->events.empty()) return s->events.back().revision;
  }
  return record.marker_revision;
}

std::vector<std::string> judge_watches(const WatchRecord& record, std::size_t max) {
  std::vector<std::string> out;
  auto report = [&](std::string what) {
    if (out.size() < max) out.push_back("watch-delivery: " + std::move(what));
  };
  // Every event some watcher saw, by revision (and the first watcher that saw it).
  std::map<kv::Revision, std::pair<WatchRecord::Seen, std::size_t>> seen_by_any;
  for (std::size_t i = 0; i < record.watchers.size(); ++i) {
    for (const WatchRecord::Segment& s : record.watchers[i]) {
      for (const WatchRecord::Seen& e : s.events) {
        auto [it, fresh] = seen_by_any.emplace(e.revision, std::make_pair(e, i));
        if (!fresh && !(it->second.first == e)) {
          report(fmt::format("watchers {} and {} saw different events at revision {}: {} \"{}\" and {} \"{}\"",
                             it->second.second + 1, i + 1, e.revision, it->second.first.path, it->second.first.value,
                             e.path, e.value));
        }
      }
    }
  }
  std::set<std::string> unknown_puts, unknown_delete_paths;
  for (const WatchRecord::Write& w : record.unknown) (w.deleted ? unknown_delete_paths : unknown_puts).insert(w.deleted ? w.path : w.value);
  const kv::Revision acknowledged_last = record.acknowledged.empty() ? record.marker_revision : record.acknowledged.rbegin()->first;
  for (std::size_t i = 0; i < record.watchers.size(); ++i) {
    const std::vector<WatchRecord::Segment>& w = record.watchers[i];
    kv::Revision previous = 0;
    for (std::size_t si = 0; si < w.size(); ++si) {
      const WatchRecord::Segment& s = w[si];
      std::set<kv::Revision> delivered;
      for (const WatchRecord::Seen& e : s.events) {
        if (e.revision <= previous || e.revision < s.start) {
          report(fmt::format("watcher {} delivered revision {} after revision {} (stream from {})", i + 1, e.revision,
                             previous, s.start));
        }
        previous = std::max(previous, e.revision);
        delivered.insert(e.revision);
        if (auto a = record.acknowledged.find(e.revision); a != record.acknowledged.end()) {
          const WatchRecord::Write& x = a->second;
          if (x.path != e.path || x.deleted != e.deleted || x.value != e.value) {
            report(fmt::format("watcher {} delivered {} {} \"{}\" at revision {}, where the acknowledged write was "
                               "{} {} \"{}\"", i + 1, e.deleted ? "delete" : "put", e.path, e.value, e.revision,
                               x.deleted ? "delete" : "put", x.path, x.value));
          }
        } else if (!(e.deleted ? unknown_delete_paths.count(e.path) : unknown_puts.count(e.value))) {
          report(fmt::format("watcher {} delivered {} {} \"{}\" at revision {}, which no write explains", i + 1,
                             e.deleted ? "delete" : "put", e.path, e.value, e.revision));
        }
      }
      // What the stream covered: from its start to its last event, or, for the stream still open
      // at the end, to the last acknowledged write (finish() waited for it).
      const bool last_segment = si + 1 == w.size();
      kv::Revision end = s.events.empty() ? s.start - 1 : s.events.back().revision;
      if (last_segment && !s.ended) {
        if (end < acknowledged_last) {
          report(fmt::format("watcher {} never caught up: it delivered up to revision {}, acknowledged writes reach {}",
                             i + 1, end, acknowledged_last));
        }
        end = std::max(end, acknowledged_last);
      }
      for (auto a = record.acknowledged.lower_bound(s.start); a != record.acknowledged.end() && a->first <= end; ++a) {
        if (!delivered.count(a->first)) {
          report(fmt::format("watcher {} missed the acknowledged write at revision {} ({} {}) in its stream from {}",
                             i + 1, a->first, a->second.deleted ? "delete" : "put", a->second.path, s.start));
        }
      }
      for (auto e = seen_by_any.lower_bound(s.start); e != seen_by_any.end() && e->first <= end; ++e) {
        if (!delivered.count(e->first)) {
          report(fmt::format("watcher {} missed revision {} ({}) that watcher {} saw, in its stream from {}", i + 1,
                             e->first, e->second.first.path, e->second.second + 1, s.start));
        }
      }
      if (s.ended && s.end.error == kv::Error::Compacted) {
        const kv::Revision next = std::max(end + 1, s.start);
        // compact_revision is the first revision still kept: a stream whose next revision is
        // at or above it could have gone on.
        if (s.end.compact_revision <= next) {
          report(fmt::format("watcher {}'s stream ended as compacted at {} while its next revision {} was still kept", i + 1,
                             s.end.compact_revision, next));
        }
      }
    }
  }
  return out;
}

}  // namespace coord::harness
