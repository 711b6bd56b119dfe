#include "raft/invariants.h"

#include <string>

#include "raft/conf_change.h"

namespace coord::raft {

namespace {

std::string num(std::uint64_t v) { return std::to_string(v); }

void check_log(const Node& node, std::vector<std::string>& out) {
  const RaftLog& log = node.log();
  Term prev_term = log.snapshot_term();
  for (Index i = log.first_index(); i <= log.last_index(); ++i) {
    // Entries whose data was dropped keep their terms only.
    Term t = 0;
    if (i < log.memory_first()) {
      t = *log.term(i);
    } else {
      const Entry& e = log.at(i);
      if (e.index != i) out.push_back("log entry at position " + num(i) + " has index " + num(e.index));
      t = e.term;
    }
    if (t < prev_term) out.push_back("log terms decrease at index " + num(i));
    if (t > node.term()) out.push_back("log entry " + num(i) + " has a future term");
    prev_term = t;
  }
  if (log.persisted() > log.last_index()) out.push_back("persisted index beyond the log");
  // Only durable entries already handed out to apply may lose their data.
  if (log.memory_first() > log.first_index()) {
    if (log.memory_first() - 1 > log.persisted()) out.push_back("dropped the data of entries not persisted");
    if (log.memory_first() - 1 > node.applied()) out.push_back("dropped the data of entries not handed out");
  }
  if (node.snapshot_meta().index != log.snapshot_index()) {
    out.push_back("snapshot index " + num(node.snapshot_meta().index) + " != log start " +
                  num(log.snapshot_index()));
  }
}

void check_indices(const Node& node, std::vector<std::string>& out) {
  const RaftLog& log = node.log();
  if (node.commit() > log.last_index()) {
    out.push_back("commit " + num(node.commit()) + " beyond last index " + num(log.last_index()));
  }
  if (node.applied() > node.commit()) out.push_back("applied beyond commit");
  if (log.snapshot_index() > node.applied()) out.push_back("snapshot beyond applied");
}

void check_role(const Node& node, std::vector<std::string>& out) {
  switch (node.role()) {
    case Role::Leader:
      if (node.leader() != node.id()) out.push_back("leader does not name itself leader");
      if (node.vote() != node.id()) out.push_back("leader did not vote for itself");
      if (!is_voter(node.conf(), node.id())) out.push_back("leader is not a voter");
      for (const auto& [id, pr] : node.progress()) {
        if (pr.match > node.log().last_index()) {
          out.push_back("progress of " + num(id) + " matches beyond the leader's log");
        }
        if (pr.next <= pr.match) out.push_back("progress of " + num(id) + " has next <= match");
      }
      break;
    case Role::Candidate:
      if (node.vote() != node.id()) out.push_back("candidate did not vote for itself");
      [[fallthrough]];
    case Role::PreCandidate:
    case Role::Follower:
      if (!node.progress().empty()) out.push_back("non-leader keeps replication progress");
      if (node.leader() == node.id()) out.push_back("non-leader names itself leader");
      break;
  }
}

}  // namespace

std::vector<std::string> check_invariants(const Node& node) {
  std::vector<std::string> out;
  if (!node.fault().empty()) out.push_back(node.fault());
  check_log(node, out);
  check_indices(node, out);
  check_role(node, out);
  return out;
}

}  // namespace coord::raft
