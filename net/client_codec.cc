#include "net/client_codec.h"

#include <fmt/format.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "kv/codec.h"
#include "net/aligned.h"
#include "net/client_protocol_generated.h"

namespace coord::net {

namespace {

namespace fb = coord::client;

// The wire enum mirrors the C++ one value for value, and the first error codes are kv::Error's,
// so conversion is a cast; these keep them from drifting apart silently.
#define COORD_SAME_VALUE(A, B, name)                                                     \
  static_assert(static_cast<unsigned>(A::name) == static_cast<unsigned>(B::name),        \
                "net/client_protocol.fbs and net/client_messages.h disagree on " #name)
COORD_SAME_VALUE(fb::RequestKind, RequestKind, Write);
COORD_SAME_VALUE(fb::RequestKind, RequestKind, Get);
COORD_SAME_VALUE(fb::RequestKind, RequestKind, Exists);
COORD_SAME_VALUE(fb::RequestKind, RequestKind, List);
COORD_SAME_VALUE(fb::RequestKind, RequestKind, Range);
COORD_SAME_VALUE(fb::RequestKind, RequestKind, Status);
COORD_SAME_VALUE(fb::RequestKind, RequestKind, MemberList);
COORD_SAME_VALUE(fb::RequestKind, RequestKind, LeaseTtl);
COORD_SAME_VALUE(fb::RequestKind, RequestKind, Watch);
COORD_SAME_VALUE(fb::RequestKind, RequestKind, WatchCancel);
COORD_SAME_VALUE(fb::RequestKind, RequestKind, Snapshot);
COORD_SAME_VALUE(fb::RequestKind, RequestKind, MemberAdd);
COORD_SAME_VALUE(fb::RequestKind, RequestKind, MemberRemove);
COORD_SAME_VALUE(fb::RequestKind, RequestKind, MemberPromote);
COORD_SAME_VALUE(fb::WatchKind, kv::WatchKind, Key);
COORD_SAME_VALUE(fb::WatchKind, kv::WatchKind, Subtree);
COORD_SAME_VALUE(fb::WatchKind, kv::WatchKind, Children);
COORD_SAME_VALUE(fb::EventType, kv::EventType, Created);
COORD_SAME_VALUE(fb::EventType, kv::EventType, Updated);
COORD_SAME_VALUE(fb::EventType, kv::EventType, Deleted);
COORD_SAME_VALUE(kv::Error, ErrorCode, LeaseRenewed);
COORD_SAME_VALUE(kv::Error, ErrorCode, StaleState);
COORD_SAME_VALUE(kv::Error, ErrorCode, InvalidRequest);
#undef COORD_SAME_VALUE
static_assert(static_cast<std::uint8_t>(fb::RequestKind::MAX) == request_kind_max);
constexpr std::uint8_t watch_kind_max = static_cast<std::uint8_t>(fb::WatchKind::MAX);
constexpr std::uint8_t event_type_max = static_cast<std::uint8_t>(fb::EventType::MAX);
static_assert(kv::error_code_max < static_cast<std::uint16_t>(ErrorCode::NotLeader),
              "kv error codes must stay below the service's own (100 and up)");

constexpr char identifier[] = "CCLI";
// Request > (nothing nested); Response > Member/KeyValue > Node > vector: anything deeper is
// hostile.
constexpr flatbuffers::uoffset_t verify_depth_max = 8;
// Every table takes at least 4 bytes; a range page holds at most a few thousand.
constexpr flatbuffers::uoffset_t verify_tables_max = 1u << 20;

bool fail(std::string* error, std::string reason) {
  if (error != nullptr) *error = std::move(reason);
  return false;
}

std::string to_string(const flatbuffers::Vector<std::uint8_t>* bytes) {
  if (bytes == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(bytes->data()), bytes->size());
}

std::string to_string(const flatbuffers::String* s) {
  if (s == nullptr) return {};
  return s->str();
}

flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> bytes_vector(
    flatbuffers::FlatBufferBuilder& fbb, const std::string& bytes) {
  return fbb.CreateVector(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
}

// Checks size, identifier and structure; returns the aligned root or nullptr with a reason.
template <typename Root>
const Root* verified_root(std::string_view bytes, std::size_t bytes_max, const char* what,
                          std::vector<std::uint64_t>& storage, std::string* error) {
  if (bytes.size() > bytes_max) {
    fail(error, fmt::format("{} of {} bytes exceeds the limit of {} bytes", what, bytes.size(), bytes_max));
    return nullptr;
  }
  constexpr std::size_t header_bytes = sizeof(flatbuffers::uoffset_t) + flatbuffers::kFileIdentifierLength;
  if (bytes.size() < header_bytes) {
    fail(error, fmt::format("{} of {} bytes is shorter than a flatbuffers header", what, bytes.size()));
    return nullptr;
  }
  const std::uint8_t* data = aligned_bytes(bytes, storage);
  if (!flatbuffers::BufferHasIdentifier(data, identifier)) {
    fail(error, fmt::format("not a client {} (file identifier mismatch)", what));
    return nullptr;
  }
  flatbuffers::Verifier::Options options;
  options.max_depth = verify_depth_max;
  options.max_tables = verify_tables_max;
  flatbuffers::Verifier verifier(data, bytes.size(), options);
  if (!verifier.VerifyBuffer<Root>(identifier)) {
    fail(error, fmt::format("malformed client {} (flatbuffers verification failed)", what));
    return nullptr;
  }
  return flatbuffers::GetRoot<Root>(data);
}

flatbuffers::Offset<fb::Node> build_node(flatbuffers::FlatBufferBuilder& fbb, const kv::Node& n) {
  auto value = bytes_vector(fbb, n.value);
  fb::NodeBuilder b(fbb);
  b.add_value(value);
  b.add_create_revision(n.create_revision);
  b.add_mod_revision(n.mod_revision);
  b.add_version(n.version);
  b.add_num_children(n.num_children);
  b.add_children_version(n.children_version);
  b.add_lease(n.lease);
  return b.Finish();
}

kv::Node read_node(const fb::Node& n) {
  kv::Node out;
  out.value = to_string(n.value());
  out.create_revision = n.create_revision();
  out.mod_revision = n.mod_revision();
  out.version = n.version();
  out.num_children = n.num_children();
  out.children_version = n.children_version();
  out.lease = n.lease();
  return out;
}

flatbuffers::Offset<fb::Status> build_status(flatbuffers::FlatBufferBuilder& fbb, const StatusInfo& s) {
  auto name = fbb.CreateString(s.name);
  auto cluster = fbb.CreateString(s.cluster);
  auto role = fbb.CreateString(s.role);
  fb::StatusBuilder b(fbb);
  b.add_id(s.id);
  b.add_name(name);
  b.add_cluster(cluster);
  b.add_role(role);
  b.add_leader(s.leader);
  b.add_term(s.term);
  b.add_commit(s.commit);
  b.add_applied(s.applied);
  b.add_log_first(s.log_first);
  b.add_log_last(s.log_last);
  b.add_snapshot_index(s.snapshot_index);
  b.add_revision(s.revision);
  b.add_compact_revision(s.compact_revision);
  return b.Finish();
}

StatusInfo read_status(const fb::Status& s) {
  StatusInfo out;
  out.id = s.id();
  out.name = to_string(s.name());
  out.cluster = to_string(s.cluster());
  out.role = to_string(s.role());
  out.leader = s.leader();
  out.term = s.term();
  out.commit = s.commit();
  out.applied = s.applied();
  out.log_first = s.log_first();
  out.log_last = s.log_last();
  out.snapshot_index = s.snapshot_index();
  out.revision = s.revision();
  out.compact_revision = s.compact_revision();
  return out;
}

flatbuffers::Offset<fb::Event> build_event(flatbuffers::FlatBufferBuilder& fbb, const kv::Event& e) {
  auto path = fbb.CreateString(e.path);
  flatbuffers::Offset<fb::Node> node;
  if (e.node) node = build_node(fbb, *e.node);
  flatbuffers::Offset<fb::Node> prev;
  if (e.prev) prev = build_node(fbb, *e.prev);
  fb::EventBuilder b(fbb);
  b.add_type(static_cast<fb::EventType>(e.type));
  b.add_path(path);
  b.add_revision(e.revision);
  if (!node.IsNull()) b.add_node(node);
  if (!prev.IsNull()) b.add_prev(prev);
  return b.Finish();
}

std::string build_response(const ClientResponse& r) {
  std::size_t payload_bytes = 256 + r.message.size();
  if (r.node) payload_bytes += r.node->value.size();
  for (const kv::KeyValue& kv : r.nodes) payload_bytes += kv.path.size() + kv.node.value.size() + 96;
  payload_bytes += r.chunk.size();
  for (const kv::Event& e : r.events) {
    payload_bytes += e.path.size() + 160 + (e.node ? e.node->value.size() : 0) + (e.prev ? e.prev->value.size() : 0);
  }
  flatbuffers::FlatBufferBuilder fbb(payload_bytes);

  auto message = fbb.CreateString(r.message);
  flatbuffers::Offset<fb::LeaderHint> leader;
  if (r.leader) {
    auto name = fbb.CreateString(r.leader->name);
    auto address = fbb.CreateString(r.leader->client_address);
    leader = fb::CreateLeaderHint(fbb, r.leader->id, name, address);
  }
  flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> result;
  if (r.result) result = bytes_vector(fbb, kv::encode_result(*r.result));
  flatbuffers::Offset<fb::Node> node;
  if (r.node) node = build_node(fbb, *r.node);
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>> names;
  if (!r.names.empty()) names = fbb.CreateVectorOfStrings(r.names);
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::KeyValue>>> nodes;
  if (!r.nodes.empty()) {
    std::vector<flatbuffers::Offset<fb::KeyValue>> offsets;
    offsets.reserve(r.nodes.size());
    for (const kv::KeyValue& kv : r.nodes) {
      auto path = fbb.CreateString(kv.path);
      auto n = build_node(fbb, kv.node);
      offsets.push_back(fb::CreateKeyValue(fbb, path, n));
    }
    nodes = fbb.CreateVector(offsets);
  }
  flatbuffers::Offset<fb::Status> status;
  if (r.status) status = build_status(fbb, *r.status);
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::Member>>> members;
  if (!r.members.empty()) {
    std::vector<flatbuffers::Offset<fb::Member>> offsets;
    for (const MemberInfo& m : r.members) {
      auto name = fbb.CreateString(m.name);
      auto peer = fbb.CreateString(m.peer_address);
      auto client = fbb.CreateString(m.client_address);
      offsets.push_back(fb::CreateMember(fbb, m.id, name, peer, client, m.voter, m.learner, m.leader));
    }
    members = fbb.CreateVector(offsets);
  }

  flatbuffers::Offset<fb::LeaseInfo> lease;
  if (r.lease) {
    auto keys = fbb.CreateVectorOfStrings(r.lease->keys);
    lease = fb::CreateLeaseInfo(fbb, r.lease->id, r.lease->ttl_ms, r.lease->keepalives, r.lease->remaining_ms, keys);
  }
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::Event>>> events;
  if (!r.events.empty()) {
    std::vector<flatbuffers::Offset<fb::Event>> offsets;
    offsets.reserve(r.events.size());
    for (const kv::Event& e : r.events) offsets.push_back(build_event(fbb, e));
    events = fbb.CreateVector(offsets);
  }

  flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> chunk;
  if (!r.chunk.empty()) chunk = bytes_vector(fbb, r.chunk);
  flatbuffers::Offset<flatbuffers::String> cluster;
  if (!r.cluster.empty()) cluster = fbb.CreateString(r.cluster);

  fb::ResponseBuilder b(fbb);
  b.add_id(r.id);
  b.add_error(static_cast<std::uint16_t>(r.error));
  b.add_message(message);
  b.add_compact_revision(r.compact_revision);
  if (!leader.IsNull()) b.add_leader(leader);
  if (!result.IsNull()) b.add_result(result);
  b.add_revision(r.revision);
  if (!node.IsNull()) b.add_node(node);
  b.add_exists(r.exists);
  if (!names.IsNull()) b.add_names(names);
  if (!nodes.IsNull()) b.add_nodes(nodes);
  b.add_more(r.more);
  if (!status.IsNull()) b.add_status(status);
  if (!members.IsNull()) b.add_members(members);
  if (!lease.IsNull()) b.add_lease(lease);
  b.add_watch_id(r.watch_id);
  if (!events.IsNull()) b.add_events(events);
  b.add_progress_revision(r.progress_revision);
  b.add_canceled(r.canceled);
  if (!chunk.IsNull()) b.add_chunk(chunk);
  b.add_offset(r.offset);
  b.add_total_bytes(r.total_bytes);
  b.add_done(r.done);
  b.add_index(r.index);
  if (!cluster.IsNull()) b.add_cluster(cluster);
  fbb.Finish(b.Finish(), identifier);
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

}  // namespace

std::string encode_request(const ClientRequest& r) {
  flatbuffers::FlatBufferBuilder fbb(r.command.size() + r.path.size() + r.start_after.size() + 128);
  flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> command;
  if (!r.command.empty()) command = bytes_vector(fbb, r.command);
  flatbuffers::Offset<flatbuffers::String> path;
  if (!r.path.empty()) path = fbb.CreateString(r.path);
  flatbuffers::Offset<flatbuffers::String> start_after;
  if (!r.start_after.empty()) start_after = fbb.CreateString(r.start_after);
  flatbuffers::Offset<flatbuffers::String> member_name;
  if (!r.member_name.empty()) member_name = fbb.CreateString(r.member_name);
  flatbuffers::Offset<flatbuffers::String> peer_address;
  if (!r.peer_address.empty()) peer_address = fbb.CreateString(r.peer_address);
  fb::RequestBuilder b(fbb);
  b.add_id(r.id);
  b.add_kind(static_cast<fb::RequestKind>(r.kind));
  if (!command.IsNull()) b.add_command(command);
  if (!path.IsNull()) b.add_path(path);
  b.add_revision(r.revision);
  b.add_serializable(r.serializable);
  if (!start_after.IsNull()) b.add_start_after(start_after);
  b.add_limit(r.limit);
  b.add_keys_only(r.keys_only);
  b.add_lease(r.lease);
  b.add_watch_kind(static_cast<fb::WatchKind>(r.watch_kind));
  b.add_prev(r.prev);
  b.add_watch_id(r.watch_id);
  b.add_forwarded(r.forwarded);
  if (!member_name.IsNull()) b.add_member_name(member_name);
  if (!peer_address.IsNull()) b.add_peer_address(peer_address);
  b.add_learner(r.learner);
  fbb.Finish(b.Finish(), identifier);
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

std::optional<ClientRequest> decode_request(std::string_view bytes, std::string* error,
                                            std::uint64_t* id) {
  std::vector<std::uint64_t> storage;
  const fb::Request* in = verified_root<fb::Request>(bytes, client_request_bytes_max, "request", storage, error);
  if (in == nullptr) return std::nullopt;
  if (id != nullptr) *id = in->id();
  const auto kind = static_cast<std::uint8_t>(in->kind());
  if (kind == 0 || kind > request_kind_max) {
    fail(error, fmt::format("unknown request kind {}", kind));
    return std::nullopt;
  }
  const auto watch_kind = static_cast<std::uint8_t>(in->watch_kind());
  if (watch_kind > watch_kind_max) {
    fail(error, fmt::format("unknown watch kind {}", watch_kind));
    return std::nullopt;
  }
  ClientRequest out;
  out.id = in->id();
  out.kind = static_cast<RequestKind>(kind);
  out.command = to_string(in->command());
  out.path = to_string(in->path());
  out.revision = in->revision();
  out.serializable = in->serializable();
  out.start_after = to_string(in->start_after());
  out.limit = in->limit();
  out.keys_only = in->keys_only();
  out.lease = in->lease();
  out.watch_kind = static_cast<kv::WatchKind>(watch_kind);
  out.prev = in->prev();
  out.watch_id = in->watch_id();
  out.forwarded = in->forwarded();
  out.member_name = to_string(in->member_name());
  out.peer_address = to_string(in->peer_address());
  out.learner = in->learner();
  return out;
}

std::optional<ClientRequest> decode_request(std::string_view bytes, std::string* error) {
  return decode_request(bytes, error, nullptr);
}

std::string encode_response(const ClientResponse& response) {
  std::string bytes = build_response(response);
  if (bytes.size() <= client_response_bytes_max) return bytes;
  return build_response(error_response(
      response.id, ErrorCode::TooLarge,
      fmt::format("response of {} bytes exceeds the limit of {} bytes", bytes.size(), client_response_bytes_max)));
}

std::optional<ClientResponse> decode_response(std::string_view bytes, std::string* error) {
  std::vector<std::uint64_t> storage;
  const fb::Response* in = verified_root<fb::Response>(bytes, client_response_bytes_max, "response", storage, error);
  if (in == nullptr) return std::nullopt;
  ClientResponse out;
  out.id = in->id();
  // Unknown codes (from a newer replica) are kept as they are: the caller sees a failure.
  out.error = static_cast<ErrorCode>(in->error());
  out.message = to_string(in->message());
  out.compact_revision = in->compact_revision();
  if (const fb::LeaderHint* l = in->leader()) {
    out.leader = LeaderHint{l->id(), to_string(l->name()), to_string(l->client_address())};
  }
  if (const auto* result = in->result()) {
    out.result = kv::decode_result(to_string(result));
    if (!out.result) {
      fail(error, "malformed write result in response");
      return std::nullopt;
    }
  }
  out.revision = in->revision();
  if (const fb::Node* n = in->node()) out.node = read_node(*n);
  out.exists = in->exists();
  if (const auto* names = in->names()) {
    out.names.reserve(names->size());
    for (const flatbuffers::String* s : *names) out.names.push_back(to_string(s));
  }
  if (const auto* nodes = in->nodes()) {
    out.nodes.reserve(nodes->size());
    for (const fb::KeyValue* kv : *nodes) {
      kv::KeyValue item;
      item.path = to_string(kv->path());
      if (kv->node() != nullptr) item.node = read_node(*kv->node());
      out.nodes.push_back(std::move(item));
    }
  }
  out.more = in->more();
  if (const fb::Status* s = in->status()) out.status = read_status(*s);
  if (const auto* members = in->members()) {
    for (const fb::Member* m : *members) {
      out.members.push_back(MemberInfo{m->id(), to_string(m->name()), to_string(m->peer_address()),
                                       to_string(m->client_address()), m->voter(), m->learner(),
                                       m->leader()});
    }
  }
  if (const fb::LeaseInfo* l = in->lease()) {
    LeaseTtlInfo lease{l->id(), l->ttl_ms(), l->keepalives(), l->remaining_ms(), {}};
    if (const auto* keys = l->keys()) {
      lease.keys.reserve(keys->size());
      for (const flatbuffers::String* k : *keys) lease.keys.push_back(to_string(k));
    }
    out.lease = std::move(lease);
  }
  out.watch_id = in->watch_id();
  if (const auto* events = in->events()) {
    out.events.reserve(events->size());
    for (const fb::Event* e : *events) {
      const auto type = static_cast<std::uint8_t>(e->type());
      if (type > event_type_max) {
        fail(error, fmt::format("unknown event type {} in response", type));
        return std::nullopt;
      }
      kv::Event event;
      event.type = static_cast<kv::EventType>(type);
      event.path = to_string(e->path());
      event.revision = e->revision();
      if (e->node() != nullptr) event.node = read_node(*e->node());
      if (e->prev() != nullptr) event.prev = read_node(*e->prev());
      out.events.push_back(std::move(event));
    }
  }
  out.progress_revision = in->progress_revision();
  out.canceled = in->canceled();
  out.chunk = to_string(in->chunk());
  out.offset = in->offset();
  out.total_bytes = in->total_bytes();
  out.done = in->done();
  out.index = in->index();
  out.cluster = to_string(in->cluster());
  return out;
}

}  // namespace coord::net
