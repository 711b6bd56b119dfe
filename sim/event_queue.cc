#include "sim/event_queue.h"

#include <algorithm>
#include <utility>

namespace coord::sim {

void EventQueue::push(Micros at, Action action) {
  heap_.push_back(Item{at, next_seq_++, std::move(action)});
  std::push_heap(heap_.begin(), heap_.end(), runs_later);
}

Micros EventQueue::next_time() const { return heap_.front().at; }

EventQueue::Action EventQueue::pop(Micros& at) {
  std::pop_heap(heap_.begin(), heap_.end(), runs_later);
  Item item = std::move(heap_.back());
  heap_.pop_back();
  at = item.at;
  return std::move(item.action);
}

}  // namespace coord::sim
