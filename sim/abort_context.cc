#include "sim/abort_context.h"

#include <unistd.h>

#include <string>
#include <string_view>

#include "sim/trace.h"

namespace coord::sim {

namespace {

void write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n <= 0) return;  // nothing better to do while dying
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

AbortContext& abort_context() {
  thread_local AbortContext context;
  return context;
}

void write_abort_report(int fd) {
  const AbortContext& c = abort_context();
  if (!c.active) return;
  write_all(fd, "VIOLATION seed=" + std::to_string(c.seed) + " invariant=core-assert\n");
  write_all(fd, "  the process aborted (see the assertion message on stderr)\n");
  if (!c.trace) return;
  const auto lines = c.trace->recent();
  write_all(fd, "  last " + std::to_string(lines.size()) + " events:\n");
  for (const std::string& line : lines) write_all(fd, "    " + line + "\n");
}

void write_abort_trace(int fd) {
  const AbortContext& c = abort_context();
  if (!c.active || !c.trace_text) return;
  write_all(fd, c.trace_text->view());
}

}  // namespace coord::sim
