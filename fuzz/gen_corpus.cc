// Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/), so that they can be
// reproduced and regenerated when a format changes:
//   coord_fuzz_gen_corpus <output directory>      (fuzz/corpus is the checked-in one)
// Each seed is a small valid input: a few requests, messages, paths, transactions or snapshots.
// The raft_step seeds are programs of pseudo-random bytes (any bytes are a program there).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fuzz/kv_state.h"
#include "kv/codec.h"
#include "kv/layout_v3.h"
#include "kv/memory_storage.h"
#include "kv/state_machine.h"
#include "net/client_codec.h"
#include "net/frame.h"
#include "net/peer_codec.h"
#include "net/raft_codec.h"

namespace {

using namespace coord;
namespace fs = std::filesystem;

fs::path out_dir;
int written = 0;

void write(const std::string& target, const std::string& name, const std::string& bytes) {
  const fs::path dir = out_dir / target;
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
  ++written;
}

std::string u8(std::uint8_t v) { return std::string(1, static_cast<char>(v)); }
std::string le(std::uint64_t v, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  return out;
}

void paths() {
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"/", "/a"},
      {"/app/cfg", "/app/cfg/a"},
      {"/app", "/apple"},
      {"/caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80", "/caf\xc3\xa9"},
      {"/a/" + std::string(255, 'x'), "/a/" + std::string(256, 'x')},
      {"/" + std::string(239, 'p') + "/" + std::string(239, 'q'), "/a/./b"},
      {"relative/path", "/trailing/"},
      {"/a//b", "/ctl\x01"},
      {"/\xed\xa0\x80", "/\xc0\xaf"},
  };
  int n = 0;
  for (const auto& [a, b] : pairs) {
    write("fuzz_path", "seed-" + std::to_string(n++), u8(7) + le(0x0102030405060708ull, 8) + le(a.size(), 2) + a + b);
  }
}

void txn_texts() {
  const std::vector<std::string> texts = {
      "compare exists /app/lock\nthen\nput /app/lock me\n",
      "# a compare-and-set\ncompare version /app/cfg/a = 1\nthen\nput /app/cfg/a new value\nelse\nget /app/cfg/a\n",
      "compare mod_revision /app/cfg < 40\ncompare create_revision /app/cfg > 2\ncompare value /app/cfg/b != bee\n"
      "then\ncreate --parents --sequential /app/jobs/job- payload\ndelete --recursive /tmp\n",
      "compare missing /app/new\r\nthen\r\ncreate /app/new  two  spaces\r\nelse\r\nget /app/new\r\n",
      "put --parents /a/b/c\n\n   \ndelete /a/b/c\n",
      "compare value /x = with = signs\nthen\nget /x\n",
  };
  int n = 0;
  for (const std::string& t : texts) write("fuzz_txn_text", "seed-" + std::to_string(n++), t);
}

std::string client_frame(const net::ClientRequest& r) {
  return net::encode_frame(net::FrameKind::ClientRequest, net::encode_request(r));
}

void client_frames() {
  auto write_cmd = [](std::uint64_t id, kv::Body body, kv::SessionId session = 0, std::uint64_t sequence = 0) {
    kv::Command c;
    c.session_id = session;
    c.sequence = sequence;
    c.body = std::move(body);
    net::ClientRequest r;
    r.id = id;
    r.kind = net::RequestKind::Write;
    r.command = kv::encode_command(c);
    return r;
  };
  auto read = [](std::uint64_t id, net::RequestKind kind, std::string path) {
    net::ClientRequest r;
    r.id = id;
    r.kind = kind;
    r.path = std::move(path);
    return r;
  };
  kv::Op put = kv::Op::put("/app/new/x", "value");
  put.parents = true;
  kv::Txn txn;
  txn.compares.push_back(kv::Compare::value_is("/app/cfg/b", kv::CompareOp::Equal, "bee"));
  txn.success.push_back(kv::Op::remove("/app/cfg", true));
  txn.failure.push_back(kv::Op::get("/app/cfg/a"));
  net::ClientRequest list = read(5, net::RequestKind::List, "/app");
  list.limit = 2;
  list.start_after = "cfg";
  net::ClientRequest range = read(6, net::RequestKind::Range, "/");
  range.keys_only = true;
  range.revision = 5;
  net::ClientRequest old = read(7, net::RequestKind::Get, "/app/cfg/a");
  old.revision = 4;
  net::ClientRequest lin = read(8, net::RequestKind::Exists, "/app/lock");
  lin.serializable = true;

  const std::vector<std::vector<net::ClientRequest>> sessions = {
      {write_cmd(1, kv::single(put), 3, 1), read(2, net::RequestKind::Get, "/app/new/x")},
      {write_cmd(3, txn, 3, 2), range},
      {write_cmd(4, kv::LeaseGrant{0, 1000}), write_cmd(9, kv::single(kv::Op::create("/app/eph", "e", 41)))},
      {write_cmd(10, kv::LeaseRevoke{1}), write_cmd(11, kv::LeaseKeepAlive{40}), write_cmd(12, kv::Compact{6})},
      {list, old, lin},
      {read(13, net::RequestKind::Status, ""), read(14, net::RequestKind::MemberList, "")},
      {write_cmd(15, kv::LeaseExpire{40, 0})},
  };
  int n = 0;
  for (const auto& requests : sessions) {
    std::string stream;
    for (const auto& r : requests) stream += client_frame(r);
    write("fuzz_frame_client", "seed-" + std::to_string(n), u8(static_cast<std::uint8_t>(n * 37)) + stream);
    ++n;
  }
  // A frame of another kind, then one of another protocol version.
  std::string odd = net::encode_frame(net::FrameKind::RaftMessage, "xx") + client_frame(read(16, net::RequestKind::Get, "/"));
  std::string bad_version = net::encode_frame(net::FrameKind::ClientRequest, "abc");
  bad_version[4] = 9;
  write("fuzz_frame_client", "seed-" + std::to_string(n++), u8(1) + odd + bad_version);
}

std::string raft_frame(const raft::Message& m) {
  return net::encode_frame(net::FrameKind::RaftMessage, net::encode(m));
}

void peer_frames() {
  const std::string hello2 = net::encode_frame(
      net::FrameKind::PeerHello, net::encode_hello(net::PeerHello{"fuzz-cluster", 2, 1, "n2", "127.0.0.1:7002"}));
  const std::string hello3 = net::encode_frame(
      net::FrameKind::PeerHello, net::encode_hello(net::PeerHello{"fuzz-cluster", 3, 1, "n3", "127.0.0.1:7003"}));
  auto msg = [](raft::MessageType type, raft::NodeId from, raft::Term term) {
    raft::Message m;
    m.type = type;
    m.from = from;
    m.to = 1;
    m.term = term;
    return m;
  };
  raft::Message append = msg(raft::MessageType::Append, 2, 4);
  append.index = 5;
  append.log_term = 3;
  append.entries = {raft::Entry{4, 6, raft::EntryType::Normal, "six"}, raft::Entry{4, 7, raft::EntryType::Normal, "7"}};
  append.commit = 6;
  raft::Message conflict = msg(raft::MessageType::Append, 2, 4);
  conflict.index = 3;
  conflict.log_term = 2;
  conflict.entries = {raft::Entry{4, 4, raft::EntryType::Normal, "four"}};
  conflict.commit = 3;
  raft::Message heartbeat = msg(raft::MessageType::Heartbeat, 2, 4);
  heartbeat.commit = 7;
  heartbeat.context = 3;
  raft::Message vote = msg(raft::MessageType::Vote, 3, 4);
  vote.index = 9;
  vote.log_term = 3;
  raft::Message prevote = msg(raft::MessageType::PreVote, 3, 4);
  prevote.index = 5;
  prevote.log_term = 3;
  raft::Message chunk = msg(raft::MessageType::Snapshot, 2, 5);
  chunk.snapshot = raft::SnapshotMeta{20, 5, raft::ConfState{{1, 2, 3}, {}}};
  chunk.snapshot_chunk = "snapshot bytes";
  raft::Message last = chunk;
  last.snapshot_offset = chunk.snapshot_chunk.size();
  last.snapshot_chunk = "the end";
  last.snapshot_done = true;
  raft::Message timeout = msg(raft::MessageType::TimeoutNow, 2, 3);
  raft::Message read_resp = msg(raft::MessageType::ReadIndexResp, 2, 3);
  read_resp.index = 3;
  read_resp.context = 8;
  raft::Message vote_resp = msg(raft::MessageType::VoteResp, 3, 4);
  raft::Message append_resp = msg(raft::MessageType::AppendResp, 2, 4);
  append_resp.index = 6;

  const std::vector<std::string> streams = {
      hello2 + raft_frame(append) + raft_frame(heartbeat) + raft_frame(conflict),
      hello3 + raft_frame(vote) + raft_frame(prevote),
      hello2 + raft_frame(chunk) + raft_frame(last) + raft_frame(heartbeat),
      hello2 + raft_frame(timeout) + raft_frame(read_resp),
      hello3 + raft_frame(vote_resp) + raft_frame(msg(raft::MessageType::PreVoteResp, 3, 4)),
      hello2 + raft_frame(append_resp) + raft_frame(msg(raft::MessageType::HeartbeatResp, 2, 3)),
      raft_frame(append),  // no hello
      net::encode_frame(net::FrameKind::PeerHello,
                        net::encode_hello(net::PeerHello{"other-cluster", 2, 1, "n2", ""})) + raft_frame(append),
  };
  int n = 0;
  for (const std::string& s : streams) {
    write("fuzz_frame_peer", "seed-" + std::to_string(n), u8(static_cast<std::uint8_t>(n * 41)) + s);
    ++n;
  }
}

void raft_programs() {
  std::uint64_t state = 0x2545F4914F6CDD1Dull;
  for (int n = 0; n < 12; ++n) {
    std::string program;
    const std::size_t length = 64 + static_cast<std::size_t>(n) * 32;
    for (std::size_t i = 0; i < length; ++i) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      program.push_back(static_cast<char>(state));
    }
    write("fuzz_raft_step", "seed-" + std::to_string(n), program);
  }
}

void snapshots() {
  const std::string& base = fuzz::base_snapshot();
  kv::MemoryStorage empty_storage;
  kv::StateMachine empty(empty_storage);
  // A bigger state: more nodes, a deeper tree and more history than the base.
  kv::MemoryStorage big_storage;
  kv::StateMachine big(big_storage);
  fuzz::apply_commands(big, fuzz::base_commands());
  std::vector<kv::Command> more;
  for (int i = 0; i < 20; ++i) {
    kv::Command c;
    c.session_id = 20 + i % 3;
    c.sequence = 100 + static_cast<std::uint64_t>(i);
    kv::Op op = kv::Op::put("/big/d" + std::to_string(i % 4) + "/k" + std::to_string(i), std::string(i, 'v'));
    op.parents = true;
    c.body = kv::single(op);
    more.push_back(c);
  }
  fuzz::apply_commands(big, more);
  write("fuzz_snapshot_restore", "seed-0", u8(0) + base);
  write("fuzz_snapshot_restore", "seed-1", u8(1) + base);
  write("fuzz_snapshot_restore", "seed-2", u8(1) + empty.snapshot());
  write("fuzz_snapshot_restore", "seed-3", u8(1) + big.snapshot());
  write("fuzz_snapshot_restore", "seed-4", u8(0) + big.snapshot());
  // The previous layout format, which restore converts (kv/layout_v3.h).
  write("fuzz_snapshot_restore", "seed-5", u8(1) + kv::snapshot_as_v3(base).value());
  write("fuzz_snapshot_restore", "seed-6", u8(0) + kv::snapshot_as_v3(big.snapshot()).value());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output directory>\n", argv[0]);
    return 2;
  }
  out_dir = argv[1];
  paths();
  txn_texts();
  client_frames();
  peer_frames();
  raft_programs();
  snapshots();
  std::printf("wrote %d seeds under %s\n", written, out_dir.c_str());
  return 0;
}
