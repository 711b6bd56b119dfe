// The simulation's agenda: actions at virtual times. Ties at the same time run in the order they
// were scheduled (an insertion sequence number breaks them), which is what makes a run a pure
// function of its seed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "sim/time.h"

namespace coord::sim {

class EventQueue {
 public:
  using Action = std::function<void()>;

  void push(Micros at, Action action);
  bool empty() const { return heap_.empty(); }
  std::size_t size() const { return heap_.size(); }
  Micros next_time() const;  // !empty()
  // Removes and returns the earliest event; `at` receives its time.
  Action pop(Micros& at);

 private:
  struct Item {
    Micros at;
    std::uint64_t seq;
    Action action;
  };
  // std::*_heap keeps the greatest on top, so "greater" means "runs later".
  static bool runs_later(const Item& a, const Item& b) {
    return a.at != b.at ? a.at > b.at : a.seq > b.seq;
  }

  std::vector<Item> heap_;
  std::uint64_t next_seq_ = 0;
};

}  // namespace coord::sim
