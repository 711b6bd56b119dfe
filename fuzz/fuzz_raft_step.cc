// Raft message handling: arbitrary messages, ticks and host actions to one node of a 3-voter
// cluster never crash it nor break a node-local invariant (fuzz/raft_host.h lists what is
// checked, and why cross-node properties are not).
//
// Input: a header (rng seed, config, initial durable state), then a program of one-byte
// opcodes with their operands. Messages are built field by field, mostly relative to the node's
// own state (its term, last index, commit), so that the fuzzer reaches past the term and log
// checks; a few take raw values, and one opcode decodes raw wire bytes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "fuzz/raft_host.h"
#include "net/raft_codec.h"
#include "raft/conf_change.h"

namespace {

using namespace coord;
using fuzz::Bytes;

constexpr raft::NodeId self = 1;
constexpr int program_steps_max = 512;

raft::Config make_config(Bytes& in) {
  raft::Config c;
  c.id = self;
  const std::uint8_t flags = in.u8();
  c.pre_vote = (flags & 1) != 0;
  c.check_quorum = (flags & 2) != 0;
  c.election_ticks = 3 + in.u8() % 10;
  c.heartbeat_ticks = 1 + in.u8() % (c.election_ticks - 1);
  // Small limits, so that batching, pipelining and chunking happen with small inputs.
  c.append_bytes_max = 1 + in.u8();
  c.inflight_msgs_max = 1 + in.u8() % 8;
  c.snapshot_chunk_bytes_max = 1 + in.u8() % 32;
  c.committed_bytes_max = 1 + in.u8();
  return c;
}

// A durable state the node could have stopped in: a log prefix of non-decreasing terms, a
// snapshot, a hard state at or above the last term, a commit and an applied index within it.
fuzz::Durable make_durable(Bytes& in) {
  fuzz::Durable d;
  const std::uint8_t shape = in.u8();
  switch (shape % 8) {
    case 1: d.snapshot.conf.voters = {1}; break;
    case 2: d.snapshot.conf = raft::ConfState{{2, 3}, {1}}; break;  // a learner
    case 3: d.snapshot.conf.voters = {1, 2, 3, 4, 5}; break;
    case 4: break;  // a member added later: it learns the configuration from the leader
    default: d.snapshot.conf.voters = {1, 2, 3}; break;
  }
  const std::size_t length = in.u8() % 9;
  raft::Term term = 0;
  std::vector<raft::Entry> log;
  for (std::size_t i = 1; i <= length; ++i) {
    term += in.u8() % 2;
    if (term == 0) term = 1;
    log.push_back(raft::Entry{term, i, raft::EntryType::Normal, "e" + std::to_string(i)});
  }
  const raft::Index commit = length == 0 ? 0 : in.u8() % (length + 1);
  const raft::Index applied = commit == 0 ? 0 : in.u8() % (commit + 1);
  const raft::Index snapshot = applied == 0 ? 0 : in.u8() % (applied + 1);
  if (snapshot > 0) {
    d.snapshot.index = snapshot;
    d.snapshot.term = log[snapshot - 1].term;
    d.snapshot_data = raft::snapshot_bytes("state@" + std::to_string(snapshot));
  }
  d.entries.assign(log.begin() + static_cast<std::ptrdiff_t>(snapshot), log.end());
  d.hard_state.term = (log.empty() ? 0 : log.back().term) + in.u8() % 3;
  const std::uint8_t vote = in.u8() % 4;
  d.hard_state.vote = d.hard_state.term == 0 ? raft::kNoNode : vote;
  d.hard_state.commit = commit;
  d.applied = applied;
  return d;
}

raft::NodeId pick_node(Bytes& in) {
  const std::uint8_t b = in.u8();
  switch (b % 16) {
    case 14: return self;
    case 15: return b >> 4;  // 0..15: nobody, self, members, strangers
    default: return b % 2 == 0 ? 2 : 3;
  }
}

// A term near `base`, or a raw one.
raft::Term pick_term(Bytes& in, raft::Term base) {
  const std::uint8_t b = in.u8();
  switch (b % 8) {
    case 0: return base == 0 ? 0 : base - 1;
    case 1: case 2: case 3: return base;
    case 4: case 5: return base + 1;
    case 6: return base + 2 + (b >> 3);
    default: return in.u64();
  }
}

// An index near `base`, or a raw one.
raft::Index pick_index(Bytes& in, raft::Index base) {
  const std::uint8_t b = in.u8();
  if (b % 16 == 15) return in.u64();
  const int delta = static_cast<int>(b % 8) - 4;
  return delta < 0 && base < static_cast<raft::Index>(-delta) ? 0 : base + static_cast<raft::Index>(delta);
}

raft::ConfState pick_conf(Bytes& in) {
  raft::ConfState conf;
  const std::uint8_t b = in.u8();
  for (raft::NodeId id = 1; id <= 4; ++id) {
    if ((b >> (id - 1)) & 1) conf.voters.push_back(id);
    else if ((b >> (id + 3)) & 1) conf.learners.push_back(id);
  }
  return conf;
}

raft::Message make_message(Bytes& in, const raft::Node& node) {
  raft::Message m;
  m.type = static_cast<raft::MessageType>(in.u8() % 13);
  m.from = pick_node(in);
  m.to = in.u8() % 16 == 0 ? pick_node(in) : self;
  m.term = pick_term(in, node.term());
  const raft::RaftLog& log = node.log();
  m.index = pick_index(in, log.last_index());
  m.log_term = in.flag() ? log.term(m.index).value_or(0) : pick_term(in, m.term);
  const std::size_t entries = in.u8() % 5;
  raft::Index next = in.u8() % 16 == 0 ? pick_index(in, m.index) : m.index + 1;
  raft::Term term = std::max(m.log_term, log.term(next).value_or(m.log_term));
  for (std::size_t k = 0; k < entries; ++k) {
    const std::uint8_t b = in.u8();
    term += (b & 3) == 3 ? 1 : 0;
    raft::Entry e{term, next++, raft::EntryType::Normal, in.str(8)};
    if ((b & 4) != 0) {
      e.type = raft::EntryType::ConfChange;
      e.data = raft::encode_conf_change(
          raft::ConfChange{static_cast<raft::ConfChangeType>((b >> 3) % 3), 1 + static_cast<raft::NodeId>((b >> 5) % 5)});
    }
    if ((b & 0xC0) == 0xC0) e.term = in.u64();  // anything at all
    m.entries.push_back(std::move(e));
  }
  m.commit = pick_index(in, node.commit());
  const std::uint8_t flags = in.u8();
  m.reject = (flags & 1) != 0;
  m.transfer = (flags & 2) != 0;
  m.snapshot_done = (flags & 4) != 0;
  if ((flags & 8) != 0) {
    m.reject_hint = pick_index(in, log.last_index());
    m.reject_term = pick_term(in, node.term());
  }
  m.context = in.u8();
  if ((flags & 16) != 0) {
    m.snapshot.index = pick_index(in, node.commit() + 2);
    m.snapshot.term = pick_term(in, m.term);
    m.snapshot.conf = pick_conf(in);
    m.snapshot_offset = in.u8() % 8 == 0 ? in.u64() : in.u8() % 24;
    m.snapshot_chunk = in.str(16);
  } else if ((flags & 32) != 0 && m.index == log.snapshot_index()) {
    m.snapshot = raft::SnapshotMeta{log.snapshot_index(), log.snapshot_term(), pick_conf(in)};
  }
  return m;
}

void step(fuzz::RaftHost& host, const raft::Message& m) {
  if (fuzz::tracing()) std::fprintf(stderr, "step %s\n", fuzz::describe(m).c_str());
  fuzz::check_codec_round_trip(m);
  host.node().step(m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Bytes in(data, size);
  const std::uint64_t seed = in.u64();
  const raft::Config config = make_config(in);
  fuzz::RaftHost host(config, seed, make_durable(in));
  for (int steps = 0; steps < program_steps_max && !in.empty() && !host.stopped(); ++steps) {
    const std::uint8_t op = in.u8();
    raft::Node& node = host.node();
    if (fuzz::tracing()) {
      std::fprintf(stderr, "op %d%s: %s term=%llu vote=%llu commit=%llu last=%llu\n", op % 16,
                   (op & 0x80) != 0 ? " (no pump)" : "", raft::to_string(node.role()),
                   static_cast<unsigned long long>(node.term()), static_cast<unsigned long long>(node.vote()),
                   static_cast<unsigned long long>(node.commit()),
                   static_cast<unsigned long long>(node.log().last_index()));
    }
    switch (op % 16) {
      case 0: case 1: {
        const int ticks = 1 + in.u8() % 12;
        for (int t = 0; t < ticks && !host.stopped(); ++t) {
          node.tick();
          host.check();
        }
        break;
      }
      case 2: case 3: case 4: case 5: case 6:
        step(host, make_message(in, node));
        break;
      case 7:
        node.propose(in.str(16));
        break;
      case 8:
        node.read_index(in.u8());
        break;
      case 9:
        node.transfer_leadership(pick_node(in));
        break;
      case 10:
        node.campaign();
        break;
      case 11: {
        const std::uint8_t b = in.u8();
        node.propose_conf_change(raft::ConfChange{static_cast<raft::ConfChangeType>(b % 3), pick_node(in)});
        break;
      }
      case 12:
        host.pump();
        host.compact(node.applied() - std::min<raft::Index>(node.applied(), in.u8() % 4));
        break;
      case 13: {
        // A reply from a peer to one of the node's own messages, so the leader side is reached
        // with answers that fit what it sent.
        auto& outbox = host.outbox();
        if (outbox.empty()) break;
        const raft::Message sent = outbox[in.u8() % outbox.size()];
        raft::Message reply;
        reply.from = sent.to;
        reply.to = self;
        reply.term = sent.term;
        reply.context = sent.context;
        switch (sent.type) {
          case raft::MessageType::PreVote: reply.type = raft::MessageType::PreVoteResp; break;
          case raft::MessageType::Vote: reply.type = raft::MessageType::VoteResp; break;
          case raft::MessageType::Append:
            reply.type = raft::MessageType::AppendResp;
            reply.index = sent.index + sent.entries.size();
            break;
          case raft::MessageType::Heartbeat: reply.type = raft::MessageType::HeartbeatResp; break;
          case raft::MessageType::Snapshot:
            reply.type = raft::MessageType::SnapshotResp;
            reply.index = sent.snapshot.index;
            reply.snapshot_offset = sent.snapshot_offset + sent.snapshot_chunk.size();
            break;
          default: reply.type = raft::MessageType::AppendResp; break;
        }
        const std::uint8_t b = in.u8();
        reply.reject = (b & 1) != 0;
        if (reply.reject && reply.type == raft::MessageType::AppendResp) {
          reply.index = sent.index;
          reply.reject_hint = sent.index - std::min<raft::Index>(sent.index, (b >> 1) % 4);
          reply.reject_term = (b & 0x20) != 0 ? sent.log_term : 0;
        }
        step(host, reply);
        break;
      }
      case 14: {
        // A restart, after the pending Ready was handled or before (a crash loses it).
        const std::uint8_t b = in.u8();
        if ((b & 1) != 0) host.pump();
        host.start((b & 2) != 0);
        break;
      }
      case 15: {
        // Raw wire bytes: whatever decodes is stepped.
        const std::string bytes = in.str(512);
        if (auto m = net::decode(bytes, nullptr)) step(host, *m);
        break;
      }
    }
    host.check();
    if ((op & 0x80) == 0) host.pump();  // else the input waits, as during a slow fsync
  }
  host.pump();
  return 0;
}
