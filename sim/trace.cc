#include "sim/trace.h"

#include <fmt/format.h>

#include <iterator>

namespace coord::sim {

Trace::Trace(std::ostream* sink, std::size_t recent_lines_max)
    : sink_(sink), ring_(recent_lines_max) {}

void Trace::event(Micros at, raft::NodeId node, std::string_view what) {
  line_.clear();
  fmt::format_to(std::back_inserter(line_), "{:>4}.{:06} n{} {}", at / kMicrosPerSecond,
                 at % kMicrosPerSecond, node, what);
  if (sink_) {
    sink_->write(line_.data(), static_cast<std::streamsize>(line_.size()));
    sink_->put('\n');
  }
  ++lines_;
  if (ring_.empty()) return;
  ring_[ring_next_].assign(line_);
  ring_next_ = (ring_next_ + 1) % ring_.size();
}

std::vector<std::string> Trace::recent() const {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < ring_.size(); ++i) {
    const std::string& line = ring_[(ring_next_ + i) % ring_.size()];
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

}  // namespace coord::sim
