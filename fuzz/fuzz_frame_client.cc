// The client port: a byte stream from anyone who can connect, framed (net/frame.h), verified
// and decoded as ClientServer::on_frame does (net/client_server.cc), and dispatched as the
// replica host does (net/replica_host.cc: request_write's checks before proposing, then the
// entry applied by kv::StateMachine; read_now for reads), against a small state machine on
// MemoryStorage that acts as a one-member cluster's leader (the host itself needs LMDB and a
// Raft log; what it adds on the way is queueing, not validation). Every response goes through
// the response codec as it would go out.
//
// Input: one byte picking how the stream is cut into reads, then the stream. Checked:
//   - the FrameReader gives the same frames and the same error however the stream is cut, and
//     the frames re-encode to the bytes they came from;
//   - a request that decodes survives encode + decode unchanged, and so does its command;
//   - nothing crashes or trips an assertion, whatever the request (decoding, validation,
//     applying, reading);
//   - every response, error or not, survives encode + decode unchanged;
//   - a write that applied leaves a state whose snapshot restores to the same bytes.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "fuzz/frame_stream.h"
#include "fuzz/fuzz_util.h"
#include "fuzz/kv_state.h"
#include "kv/codec.h"
#include "kv/memory_storage.h"
#include "kv/state_machine.h"
#include "net/client_codec.h"
#include "net/client_messages.h"
#include "net/frame.h"

namespace {

using namespace coord;
using net::ClientRequest;
using net::ClientResponse;
using net::ErrorCode;

// ClientServerOptions::request_bytes_max's default (the server sets it from the kv limits).
constexpr std::size_t request_bytes_max = std::size_t{4} << 20;
constexpr std::size_t frames_max = 64;

// What goes back on the connection: it must come out the other end as it went in.
void respond(const ClientResponse& response) {
  std::string error;
  const auto back = net::decode_response(net::encode_response(response), &error);
  FUZZ_CHECK(back.has_value(), "a response does not decode: %s", error.c_str());
  // (The codec replaces a response above client_response_bytes_max by a TooLarge error; none
  // gets that big here: requests are at most request_bytes_max.)
  FUZZ_CHECK(*back == response, "a response changed through the codec (error %u)",
             static_cast<unsigned>(response.error));
}

ClientResponse from_status(std::uint64_t id, const kv::Status& status) {
  ClientResponse r = net::error_response(id, net::from_kv(status.error), status.message);
  r.compact_revision = status.compact_revision;
  return r;
}

// ReplicaHost::request_write, up to the proposal; then the entry applies at once.
ClientResponse write(kv::StateMachine& sm, const ClientRequest& request) {
  const kv::Limits& limits = sm.limits();
  if (request.command.size() > limits.command_bytes_max) {
    return net::error_response(request.id, ErrorCode::TooLarge, "command too large");
  }
  const kv::DecodedCommand decoded = kv::decode_command(request.command);
  if (!decoded.status.ok()) {
    return net::error_response(request.id, ErrorCode::InvalidRequest, decoded.status.message);
  }
  const kv::DecodedCommand again = kv::decode_command(kv::encode_command(decoded.command));
  FUZZ_CHECK(again.status.ok() && again.command == decoded.command, "a command changed through its codec");
  if (std::holds_alternative<kv::LeaseExpire>(decoded.command.body)) {
    return net::error_response(request.id, ErrorCode::InvalidRequest, "lease expiry is proposed by the leader only");
  }
  const kv::Index index = sm.applied_index() + 1;
  std::vector<kv::Result> results = sm.apply_batch({kv::AppliedEntry{index, request.command}});
  FUZZ_CHECK(results.size() == 1 && sm.applied_index() == index, "an entry did not apply");
  ClientResponse r = from_status(request.id, results[0].status);
  r.revision = results[0].revision;
  r.result = std::move(results[0]);
  return r;
}

// ReplicaHost::read_now.
ClientResponse read(const kv::StateMachine& sm, const ClientRequest& request) {
  switch (request.kind) {
    case net::RequestKind::Get: {
      auto r = sm.get(request.path, request.revision);
      ClientResponse out = from_status(request.id, r.status);
      out.revision = r.revision;
      if (r.ok()) out.node = std::move(r.value);
      return out;
    }
    case net::RequestKind::Exists: {
      auto r = sm.exists(request.path, request.revision);
      ClientResponse out = from_status(request.id, r.status);
      out.revision = r.revision;
      out.exists = r.ok() && r.value;
      return out;
    }
    case net::RequestKind::List: {
      kv::ListOptions options;
      options.revision = request.revision;
      options.start_after = request.start_after;
      options.limit = request.limit;
      auto r = sm.list(request.path, options);
      ClientResponse out = from_status(request.id, r.status);
      out.revision = r.revision;
      out.names = std::move(r.value.names);
      out.more = r.value.more;
      return out;
    }
    case net::RequestKind::Range: {
      kv::RangeOptions options;
      options.revision = request.revision;
      options.start_after = request.start_after;
      options.limit = request.limit;
      options.keys_only = request.keys_only;
      auto r = sm.range(request.path, options);
      ClientResponse out = from_status(request.id, r.status);
      out.revision = r.revision;
      out.nodes = std::move(r.value.nodes);
      out.more = r.value.more;
      return out;
    }
    default:
      return net::error_response(request.id, ErrorCode::InvalidRequest, "not a read");
  }
}

ClientResponse status(const kv::StateMachine& sm, std::uint64_t id) {
  ClientResponse r;
  r.id = id;
  net::StatusInfo s;
  s.id = 1;
  s.name = "n1";
  s.cluster = "fuzz";
  s.role = "leader";
  s.leader = 1;
  s.applied = sm.applied_index();
  s.revision = sm.revision();
  s.compact_revision = sm.compact_revision();
  r.status = std::move(s);
  r.revision = sm.revision();
  return r;
}

ClientResponse dispatch(kv::StateMachine& sm, const ClientRequest& request) {
  switch (request.kind) {
    case net::RequestKind::Write: return write(sm, request);
    case net::RequestKind::Get:
    case net::RequestKind::Exists:
    case net::RequestKind::List:
    case net::RequestKind::Range: return read(sm, request);
    case net::RequestKind::Status: return status(sm, request.id);
    case net::RequestKind::MemberList: {
      ClientResponse r;
      r.id = request.id;
      r.members.push_back(net::MemberInfo{1, "n1", "127.0.0.1:1", "127.0.0.1:2", true, false, true});
      return r;
    }
    default:
      // Kinds this harness does not drive (yet) still had to decode and verify.
      return net::error_response(request.id, ErrorCode::InvalidRequest, "not driven by the fuzz harness");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t cut = data[0];
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);

  const fuzz::FrameRead whole = fuzz::read_frames_checked(stream, cut, request_bytes_max, frames_max);

  kv::MemoryStorage storage;
  kv::StateMachine sm(storage);
  FUZZ_CHECK(sm.restore(fuzz::base_snapshot()).ok(), "the base state does not restore");
  bool wrote = false;
  for (const net::Frame& frame : whole.frames) {
    if (frame.kind != net::FrameKind::ClientRequest) {
      respond(net::error_response(0, ErrorCode::InvalidRequest, "unexpected frame kind"));
      continue;
    }
    std::string error;
    std::uint64_t id = 0;
    const auto request = net::decode_request(frame.payload, &error, &id);
    if (!request) {
      respond(net::error_response(id, ErrorCode::InvalidRequest, error));
      continue;
    }
    FUZZ_CHECK(request->id == id, "decode_request reported another id");
    const auto back = net::decode_request(net::encode_request(*request), &error);
    FUZZ_CHECK(back && *back == *request, "a request changed through the codec");
    wrote |= request->kind == net::RequestKind::Write;
    respond(dispatch(sm, *request));
  }
  if (whole.error != net::FrameError::None) {
    respond(net::error_response(0, ErrorCode::InvalidRequest, std::string(net::to_string(whole.error))));
  }
  if (wrote) {
    // What the writes left is a state a snapshot carries exactly.
    const std::string snapshot = sm.snapshot();
    kv::MemoryStorage other_storage;
    kv::StateMachine other(other_storage);
    FUZZ_CHECK(other.restore(snapshot).ok(), "the state after the writes does not restore");
    FUZZ_CHECK(other.snapshot() == snapshot, "the state after the writes restores differently");
  }
  return 0;
}
