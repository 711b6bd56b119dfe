#include "sim/workload_raft.h"

#include <fmt/format.h>

namespace coord::sim {

RaftWorkload::RaftWorkload(int nodes, const WorkloadParams& params, std::uint64_t root_seed, Env& env,
                           ClientTransport& transport)
    : nodes_(nodes), params_(params), env_(env), transport_(transport) {
  const int count = params_.clients + (params_.transfer_every_us_max > 0 ? 1 : 0);
  for (int i = 1; i <= count; ++i) {
    const auto id = static_cast<std::uint64_t>(i);
    Rng rng = Rng::stream(root_seed, "client", id);
    const raft::NodeId target = 1 + rng.below(static_cast<std::uint64_t>(nodes_));
    clients_.push_back(Client{id, rng, target});
  }
  if (count > params_.clients) operator_id_ = static_cast<std::uint64_t>(count);
}

void RaftWorkload::start(Micros stop_at) {
  stop_at_ = stop_at;
  for (Client& c : clients_) {
    issue_after(c, is_operator(c) ? c.rng.between(params_.transfer_every_us_min, params_.transfer_every_us_max)
                                  : c.rng.between(0, params_.think_us_max));
  }
}

void RaftWorkload::issue_after(Client& c, Micros delay_us) {
  const std::uint64_t id = c.id;
  env_.schedule(env_.now() + delay_us, [this, id] { issue(clients_[id - 1]); });
}

void RaftWorkload::issue(Client& c) {
  if (env_.now() >= stop_at_ || c.waiting) return;
  ClientRequest r;
  r.client = c.id;
  r.op = ++c.op;
  r.issued_at = env_.now();
  if (is_operator(c)) {
    r.kind = ClientRequest::Kind::Transfer;
    r.transfer_to = other_node(c, c.target);
  } else if (c.rng.chance_ppm(params_.read_ppm)) {
    r.kind = ClientRequest::Kind::Read;
    ++stats_.reads;
  } else {
    r.kind = ClientRequest::Kind::Propose;
    // Every attempt is a new command: a retry after an unknown outcome must not be mistaken
    // for the original if both end up applied.
    r.command = fmt::format("c{}-{}", c.id, ++c.seq);
    ++stats_.proposals;
  }
  c.waiting = true;
  std::string what = "propose '" + r.command + "'";
  if (r.kind == ClientRequest::Kind::Read) what = "read";
  if (r.kind == ClientRequest::Kind::Transfer) what = fmt::format("transfer leadership to n{}", r.transfer_to);
  env_.trace(0, fmt::format("client {} op {} {} -> n{}", c.id, r.op, what, c.target));
  const std::uint64_t op = r.op;
  const std::uint64_t id = c.id;
  transport_.submit(c.target, std::move(r));
  env_.schedule(env_.now() + params_.request_timeout_us, [this, id, op] { timed_out(clients_[id - 1], op); });
}

void RaftWorkload::timed_out(Client& c, std::uint64_t op) {
  if (c.op != op || !c.waiting) return;
  c.waiting = false;
  ++stats_.timeouts;
  c.target = other_node(c, c.target);
  env_.trace(0, fmt::format("client {} op {} timed out, next n{}", c.id, op, c.target));
  issue_after(c, c.rng.between(0, params_.retry_backoff_us_max));
}

void RaftWorkload::on_reply(const ClientReply& reply) {
  if (reply.client == 0 || reply.client > clients_.size()) return;
  Client& c = clients_[reply.client - 1];
  if (reply.op != c.op || !c.waiting) return;  // late: the client already moved on
  c.waiting = false;
  switch (reply.status) {
    case ClientReply::Status::Acked:
      ++stats_.acked;
      issue_after(c, c.rng.between(0, params_.think_us_max));
      return;
    case ClientReply::Status::ReadDone:
      ++stats_.reads_done;
      issue_after(c, c.rng.between(0, params_.think_us_max));
      return;
    case ClientReply::Status::Started:
      ++stats_.transfers;
      issue_after(c, c.rng.between(params_.transfer_every_us_min, params_.transfer_every_us_max));
      return;
    case ClientReply::Status::NotLeader:
      ++stats_.redirected;
      c.target = reply.leader_hint != raft::kNoNode && reply.leader_hint != reply.node
                     ? reply.leader_hint
                     : other_node(c, reply.node);
      issue_after(c, c.rng.between(1, params_.retry_backoff_us_max));
      return;
    case ClientReply::Status::Failed:
      ++stats_.failed;
      issue_after(c, c.rng.between(1, params_.retry_backoff_us_max));
      return;
    case ClientReply::Status::Watch:
      return;  // this workload opens no watches
  }
}

raft::NodeId RaftWorkload::other_node(Client& c, raft::NodeId avoid) {
  if (nodes_ <= 1) return 1;
  raft::NodeId pick = 1 + c.rng.below(static_cast<std::uint64_t>(nodes_ - 1));
  if (pick >= avoid) ++pick;
  return pick;
}

}  // namespace coord::sim
