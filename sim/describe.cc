#include "sim/describe.h"

#include <iterator>
#include <string_view>

#include <fmt/format.h>

namespace coord::sim {

std::string describe(const raft::HardState& hs) {
  return fmt::format("term={} vote={} commit={}", hs.term, hs.vote, hs.commit);
}

std::string describe(const raft::Message& m) {
  std::string out = fmt::format("{} {}->{} t={}", raft::to_string(m.type), m.from, m.to, m.term);
  auto it = std::back_inserter(out);
  switch (m.type) {
    case raft::MessageType::Append:
      fmt::format_to(it, " prev={}/{} n={}", m.index, m.log_term, m.entries.size());
      if (!m.entries.empty()) {
        fmt::format_to(it, " [{}..{}]", m.entries.front().index, m.entries.back().index);
      }
      fmt::format_to(it, " commit={}", m.commit);
      break;
    case raft::MessageType::AppendResp:
      fmt::format_to(it, " index={}", m.index);
      if (m.reject) fmt::format_to(it, " reject hint={}/{}", m.reject_hint, m.reject_term);
      break;
    case raft::MessageType::PreVote:
    case raft::MessageType::Vote:
      fmt::format_to(it, " last={}/{}{}", m.index, m.log_term, m.transfer ? " transfer" : "");
      break;
    case raft::MessageType::PreVoteResp:
    case raft::MessageType::VoteResp:
      out += m.reject ? " reject" : " grant";
      break;
    case raft::MessageType::Heartbeat:
      fmt::format_to(it, " commit={} ctx={}", m.commit, m.context);
      break;
    case raft::MessageType::HeartbeatResp:
      fmt::format_to(it, " ctx={}", m.context);
      break;
    case raft::MessageType::Snapshot:
      fmt::format_to(it, " snap={}/{} off={} bytes={}{}", m.snapshot.index, m.snapshot.term,
                     m.snapshot_offset, m.snapshot_chunk.size(), m.snapshot_done ? " done" : "");
      break;
    case raft::MessageType::SnapshotResp:
      fmt::format_to(it, " index={}{}", m.index, m.reject ? " reject" : "");
      break;
    case raft::MessageType::ReadIndex:
      fmt::format_to(it, " ctx={}", m.context);
      break;
    case raft::MessageType::ReadIndexResp:
      fmt::format_to(it, " ctx={} index={}{}", m.context, m.index, m.reject ? " reject" : "");
      break;
    case raft::MessageType::TimeoutNow:
      break;
  }
  return out;
}

std::string describe(const raft::Ready& rd) {
  std::string out = "ready";
  auto it = std::back_inserter(out);
  if (rd.snapshot) fmt::format_to(it, " snapshot={}/{}", rd.snapshot->meta.index, rd.snapshot->meta.term);
  if (!rd.entries.empty()) {
    fmt::format_to(it, " entries={}..{}/t{}", rd.entries.front().index, rd.entries.back().index,
                   rd.entries.back().term);
  }
  if (rd.hard_state) fmt::format_to(it, " hs=[{}]", describe(*rd.hard_state));
  if (!rd.messages.empty()) fmt::format_to(it, " msgs={}", rd.messages.size());
  if (!rd.early_messages.empty()) fmt::format_to(it, " early={}", rd.early_messages.size());
  if (!rd.committed.empty()) {
    fmt::format_to(it, " committed={}..{}", rd.committed.front().index, rd.committed.back().index);
  }
  if (!rd.reads.empty()) fmt::format_to(it, " reads={}", rd.reads.size());
  return out;
}

namespace {

constexpr std::size_t kRequestTextMax = 48;

std::string printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kRequestTextMax)) out.push_back(c >= 0x20 && c < 0x7f ? c : '.');
  if (text.size() > kRequestTextMax) out += "...";
  return out;
}

}  // namespace

std::string describe(const ClientRequest& request) {
  switch (request.kind) {
    case ClientRequest::Kind::Propose:
      return "propose " + printable(request.label.empty() ? request.command : request.label);
    case ClientRequest::Kind::Read:
      if (!request.kv_read) return "read (ReadIndex)";
      return (request.kv_read->what == KvRead::What::Get ? "get " : "list ") + printable(request.kv_read->path);
    case ClientRequest::Kind::Transfer:
      return fmt::format("transfer leadership to n{}", request.transfer_to);
    case ClientRequest::Kind::Watch:
      if (!request.watch) return "watch";
      switch (request.watch->what) {
        case WatchCall::What::Open: return "watch open";
        case WatchCall::What::Poll: return "watch poll";
        case WatchCall::What::Close: return "watch close";
      }
      return "watch";
  }
  return "?";
}

}  // namespace coord::sim
