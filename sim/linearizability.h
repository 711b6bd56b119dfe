// A linearizability checker for recorded histories, in the manner of Wing & Gong with Lowe's
// memoization (as Porcupine does it): search for a total order of the operations that respects
// real time (an operation that returned before another was invoked comes first) and that a
// sequential model accepts, output by output.
//
// Operations whose outcome the client never learned (timed out, run ended) return at "infinity"
// with an unknown output: the model may apply them or, by placing them last, effectively not.
//
// The model is a type with:
//   using State = ...;   // copyable, equality-comparable, hashable via Model::hash(State)
//   using Input = ...; using Output = ...;
//   static State init();
//   // Applies `in` to `s`; false when `out` (if known) is not what the model returns.
//   static bool step(const State& s, const Input& in, const std::optional<Output>& out, State* next);
//   static std::size_t hash(const State& s);
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <unordered_set>
#include <vector>

namespace coord::sim {

inline constexpr std::uint64_t kNeverReturned = std::numeric_limits<std::uint64_t>::max();

template <typename Model>
struct Operation {
  int client = 0;
  std::uint64_t call = 0;               // invocation time
  std::uint64_t ret = kNeverReturned;   // completion time, or kNeverReturned if unknown
  typename Model::Input input;
  std::optional<typename Model::Output> output;  // nullopt when the outcome is unknown
  // An unknown outcome whose effect, if any, happened before `ret` (a finite bound the caller
  // knows, e.g. the next answered write of the same session): the search may also take it as
  // never having happened at all. (With ret = kNeverReturned, placing it last says the same.)
  bool may_skip = false;
};

struct LinearizabilityResult {
  bool linearizable = true;
  bool exhausted = false;          // search budget ran out: no verdict
  std::size_t steps = 0;           // search steps taken
  std::size_t longest_prefix = 0;  // most operations linearized at once (for reports)
  // Not linearizable: of the operations left out of the longest linearization found, the one
  // that returned first (ties: the one called first), where a report should start looking.
  std::optional<std::size_t> first_unplaced;
};

namespace detail {

// Set of linearized operations, hashed together with the model state for the memo.
class Bits {
 public:
  explicit Bits(std::size_t n) : words_((n + 63) / 64, 0) {}
  void set(std::size_t i) { words_[i / 64] |= (std::uint64_t{1} << (i % 64)); }
  void reset(std::size_t i) { words_[i / 64] &= ~(std::uint64_t{1} << (i % 64)); }
  bool test(std::size_t i) const { return (words_[i / 64] >> (i % 64)) & 1; }
  bool operator==(const Bits&) const = default;
  std::size_t hash() const {
    std::size_t h = 1469598103934665603ULL;
    for (std::uint64_t w : words_) h = (h ^ w) * 1099511628211ULL;
    return h;
  }

 private:
  std::vector<std::uint64_t> words_;
};

}  // namespace detail

// Checks one history (one partition). `steps_max` bounds the search; when it runs out the
// result says so instead of guessing.
template <typename Model>
LinearizabilityResult check_linearizable(const std::vector<Operation<Model>>& ops,
                                         std::size_t steps_max = 20'000'000) {
  using State = typename Model::State;
  LinearizabilityResult result;
  const std::size_t n = ops.size();
  if (n == 0) return result;

  // Events in time order; on equal times calls come first, so touching intervals count as
  // concurrent (the lenient reading: it never reports a false violation).
  struct Event {
    std::uint64_t time;
    bool is_call;
    std::size_t op;
  };
  std::vector<Event> events;
  events.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    events.push_back({ops[i].call, true, i});
    events.push_back({ops[i].ret, false, i});
  }
  std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    if (a.time != b.time) return a.time < b.time;
    return a.is_call && !b.is_call;
  });

  // Doubly linked list over the events, with a head sentinel at index 0.
  const std::size_t m = events.size();
  std::vector<std::size_t> next(m + 1), prev(m + 1);
  std::vector<std::size_t> call_node(n), ret_node(n);
  for (std::size_t k = 0; k <= m; ++k) {
    next[k] = k + 1;  // m + 1 means "end"
    prev[k] = k == 0 ? 0 : k - 1;
  }
  for (std::size_t k = 0; k < m; ++k) {
    (events[k].is_call ? call_node : ret_node)[events[k].op] = k + 1;
  }
  const std::size_t end = m + 1;
  auto unlink = [&](std::size_t node) {
    next[prev[node]] = next[node];
    if (next[node] != end) prev[next[node]] = prev[node];
  };
  auto relink = [&](std::size_t node) {
    next[prev[node]] = node;
    if (next[node] != end) prev[next[node]] = node;
  };

  struct Memo {
    detail::Bits bits;
    State state;
    bool operator==(const Memo& o) const { return bits == o.bits && state == o.state; }
  };
  struct MemoHash {
    std::size_t operator()(const Memo& x) const {
      return x.bits.hash() ^ (Model::hash(x.state) * 0x9e3779b97f4a7c15ULL);
    }
  };
  std::unordered_set<Memo, MemoHash> seen;

  struct Frame {
    std::size_t op;
    State state_before;
    bool skipped = false;  // linearized without effect (Operation::may_skip)
  };
  std::vector<Frame> stack;
  detail::Bits linearized(n);
  detail::Bits best(n);  // the longest linearization found so far
  auto not_linearizable = [&] {
    result.linearizable = false;
    for (std::size_t i = 0; i < n; ++i) {
      if (best.test(i)) continue;
      if (!result.first_unplaced || ops[i].ret < ops[*result.first_unplaced].ret ||
          (ops[i].ret == ops[*result.first_unplaced].ret && ops[i].call < ops[*result.first_unplaced].call)) {
        result.first_unplaced = i;
      }
    }
    return result;
  };
  State state = Model::init();
  std::size_t entry = next[0];
  // Takes `op` (whose call and return are unlinked by the caller on success) as having had no
  // effect, if allowed and not tried from this point before.
  auto try_skip = [&](std::size_t op) {
    if (!ops[op].may_skip || ops[op].output) return false;
    detail::Bits bits = linearized;
    bits.set(op);
    if (!seen.insert(Memo{bits, state}).second) return false;
    stack.push_back(Frame{op, state, true});
    linearized = std::move(bits);
    if (stack.size() > result.longest_prefix) {
      result.longest_prefix = stack.size();
      best = linearized;
    }
    return true;
  };
  // Undoes the top frame; true when it was an applied may_skip operation now taken as skipped
  // instead (the search goes on from the start of the list), false when the caller continues
  // after its call event.
  auto backtrack = [&]() {
    Frame top = std::move(stack.back());
    stack.pop_back();
    linearized.reset(top.op);
    state = std::move(top.state_before);
    if (!top.skipped && try_skip(top.op)) return true;  // call and return stay unlinked
    relink(ret_node[top.op]);
    relink(call_node[top.op]);
    entry = next[call_node[top.op]];
    return false;
  };

  while (next[0] != end) {
    if (++result.steps > steps_max) {
      result.exhausted = true;
      return result;
    }
    if (entry == end) {
      // Nothing more can go next in this branch.
      if (stack.empty()) return not_linearizable();
      if (backtrack()) entry = next[0];
      continue;
    }
    const Event& ev = events[entry - 1];
    if (ev.is_call) {
      const Operation<Model>& op = ops[ev.op];
      State after;
      if (Model::step(state, op.input, op.output, &after)) {
        detail::Bits bits = linearized;
        bits.set(ev.op);
        Memo memo{bits, after};
        if (seen.insert(memo).second) {
          stack.push_back(Frame{ev.op, std::move(state)});
          state = std::move(after);
          linearized = std::move(bits);
          if (stack.size() > result.longest_prefix) {
            result.longest_prefix = stack.size();
            best = linearized;
          }
          unlink(call_node[ev.op]);
          unlink(ret_node[ev.op]);
          entry = next[0];
          continue;
        }
      }
      if (try_skip(ev.op)) {
        unlink(call_node[ev.op]);
        unlink(ret_node[ev.op]);
        entry = next[0];
        continue;
      }
      entry = next[entry];
    } else {
      // A return whose call is not linearized yet: some earlier choice was wrong.
      if (stack.empty()) return not_linearizable();
      if (backtrack()) entry = next[0];
    }
  }
  return result;
}

}  // namespace coord::sim
