#include "net/state_check.h"

#include <exception>
#include <utility>

#include "kv/check_rows.h"

namespace coord::net {

StateFileCheck::StateFileCheck(std::unique_ptr<kv::ReadTxn> view, bool background) : view_(std::move(view)) {
  if (!background) {
    error_ = check().value_or("");
    finished_ = true;
    return;
  }
  thread_ = std::thread([this] {
    const std::optional<std::string> error = check();
    if (!error) return;  // stopped: no result
    error_ = *error;
    finished_.store(true, std::memory_order_release);
  });
}

StateFileCheck::~StateFileCheck() {
  stop_.store(true, std::memory_order_relaxed);
  if (thread_.joinable()) thread_.join();
}

std::optional<std::string> StateFileCheck::check() {
  std::optional<std::string> outcome;
  try {
    const bool finished =
        kv::check_every_row(*view_, [this] { return !stop_.load(std::memory_order_relaxed); });
    if (finished) outcome = "";
  } catch (const std::exception& e) {
    outcome = e.what();
  }
  view_.reset();  // the pinned pages are free for reuse as soon as the walk ends
  return outcome;
}

std::optional<std::string> StateFileCheck::result() const {
  if (!finished_.load(std::memory_order_acquire)) return std::nullopt;
  return error_;
}

}  // namespace coord::net
