#include "harness/history.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include <fmt/format.h>

#include "sim/linearizability.h"

namespace coord::harness {

namespace {

using Op = sim::Operation<Model>;

std::string show(const Op& op) {
  const std::string ret = op.ret == sim::kNeverReturned ? "open" : fmt::format("{:.3f}s", op.ret / 1e6);
  std::string out = fmt::format("client {} [{:.3f}s .. {}] ", op.client, op.call / 1e6, ret);
  return out + (op.output ? Model::describe(op.input, *op.output) : Model::describe(op.input) + " -> unknown");
}

}  // namespace

void History::add(Record record) {
  std::lock_guard lock(mutex_);
  records_.push_back(std::move(record));
}

std::vector<Record> History::records() const {
  std::lock_guard lock(mutex_);
  return records_;
}

void History::write(const std::string& path) const {
  std::vector<Record> all = records();
  std::stable_sort(all.begin(), all.end(), [](const Record& a, const Record& b) { return a.call_us < b.call_us; });
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return;
  for (const Record& r : all) {
    Op op;
    op.client = r.client;
    op.call = r.call_us;
    op.ret = r.output ? r.ret_us : sim::kNeverReturned;
    op.input = r.input;
    op.output = r.output;
    fmt::print(f, "{} {}\n", Model::group_path(r.group), show(op));
  }
  std::fclose(f);
}

Counts History::counts() const {
  Counts c;
  for (const Record& r : records()) {
    if (r.output) {
      ++c.ok;
    } else if (r.write) {
      ++c.unknown;
    } else {
      ++c.failed;
    }
  }
  return c;
}

Judgement History::judge(std::size_t steps_max) const {
  std::vector<Record> all = records();
  std::stable_sort(all.begin(), all.end(), [](const Record& a, const Record& b) { return a.call_us < b.call_us; });
  // Per worker, its writes in order, to bound unknown writes by the next answered one.
  std::map<int, std::vector<const Record*>> writes_of;
  for (const Record& r : all) {
    if (r.write && r.client != 0) writes_of[r.client].push_back(&r);
  }
  std::map<const Record*, std::uint64_t> bound;
  for (const auto& [client, writes] : writes_of) {
    std::optional<std::uint64_t> next_known;
    for (auto it = writes.rbegin(); it != writes.rend(); ++it) {
      if ((*it)->output) {
        next_known = (*it)->ret_us;
      } else if (next_known) {
        bound[*it] = *next_known;
      }
    }
  }
  std::map<int, std::vector<Op>> groups;
  for (const Record& r : all) {
    if (!r.write && !r.output) continue;  // an unanswered read says nothing
    Op op;
    op.client = r.client;
    op.call = r.call_us;
    op.input = r.input;
    if (r.output) {
      op.ret = r.ret_us;
      op.output = r.output;
    } else if (auto b = bound.find(&r); b != bound.end()) {
      // Bounded, so it cannot be "placed last" to say it never applied: say so explicitly.
      op.ret = b->second;
      op.may_skip = true;
    }
    groups[r.group].push_back(std::move(op));
  }
  Judgement j;
  for (const auto& [group, ops] : groups) {
    const sim::LinearizabilityResult result = sim::check_linearizable(ops, steps_max);
    j.notes.push_back(fmt::format("group {}: {} operations, linearizable={}, {} search steps", Model::group_path(group),
                                  ops.size(), result.exhausted ? "no verdict" : (result.linearizable ? "yes" : "NO"),
                                  result.steps));
    if (result.exhausted) {
      j.violations.push_back(fmt::format("group {}: the linearizability search ran out of {} steps (no verdict)",
                                         Model::group_path(group), steps_max));
      continue;
    }
    if (result.linearizable) continue;
    std::string message = fmt::format("kv-linearizable: group {}: {} operations have no linearization (at most {} fit)",
                                      Model::group_path(group), ops.size(), result.longest_prefix);
    if (result.first_unplaced) {
      const Op& stuck = ops[*result.first_unplaced];
      message += "\n    cannot place: " + show(stuck);
      int shown = 0;
      for (const Op& op : ops) {
        if (&op != &stuck && op.call <= stuck.ret && op.ret >= stuck.call && shown++ < 6) {
          message += "\n    concurrent:   " + show(op);
        }
      }
      std::vector<const Op*> before;
      for (const Op& op : ops) {
        if (op.ret < stuck.call) before.push_back(&op);
      }
      std::sort(before.begin(), before.end(), [](const Op* a, const Op* b) { return a->ret < b->ret; });
      for (std::size_t i = before.size() > 4 ? before.size() - 4 : 0; i < before.size(); ++i) {
        message += "\n    before:       " + show(*before[i]);
      }
    }
    j.violations.push_back(std::move(message));
  }
  return j;
}

}  // namespace coord::harness
