#include "net/raft_codec.h"

#include <fmt/format.h>

#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "net/raft_message_generated.h"
#include "raft/assert.h"

namespace coord::net {

namespace {

namespace fb = coord::wire;

// The schema mirrors the core's enums value for value, so conversion is a cast; these keep the
// two from drifting apart silently.
#define COORD_SAME_ENUM(Wire, Raft, name)                                                   \
  static_assert(static_cast<std::uint8_t>(Wire::name) == static_cast<std::uint8_t>(Raft::name), \
                "net/raft_message.fbs and raft/types.h disagree on " #name)
COORD_SAME_ENUM(fb::MessageType, raft::MessageType, PreVote);
COORD_SAME_ENUM(fb::MessageType, raft::MessageType, PreVoteResp);
COORD_SAME_ENUM(fb::MessageType, raft::MessageType, Vote);
COORD_SAME_ENUM(fb::MessageType, raft::MessageType, VoteResp);
COORD_SAME_ENUM(fb::MessageType, raft::MessageType, Append);
COORD_SAME_ENUM(fb::MessageType, raft::MessageType, AppendResp);
COORD_SAME_ENUM(fb::MessageType, raft::MessageType, Heartbeat);
COORD_SAME_ENUM(fb::MessageType, raft::MessageType, HeartbeatResp);
COORD_SAME_ENUM(fb::MessageType, raft::MessageType, Snapshot);
COORD_SAME_ENUM(fb::MessageType, raft::MessageType, SnapshotResp);
COORD_SAME_ENUM(fb::MessageType, raft::MessageType, TimeoutNow);
COORD_SAME_ENUM(fb::MessageType, raft::MessageType, ReadIndex);
COORD_SAME_ENUM(fb::MessageType, raft::MessageType, ReadIndexResp);
COORD_SAME_ENUM(fb::EntryType, raft::EntryType, Normal);
COORD_SAME_ENUM(fb::EntryType, raft::EntryType, ConfChange);
#undef COORD_SAME_ENUM

// Tables nest at most Message > SnapshotMeta > ConfState > vector; anything deeper is hostile.
constexpr flatbuffers::uoffset_t verify_depth_max = 8;
// Every table takes at least 4 bytes, so a message within the size limit holds fewer tables
// than this; the flatbuffers default (one million) would refuse a legitimate Append of many
// tiny entries.
constexpr flatbuffers::uoffset_t verify_tables_max = raft_message_bytes_max / 4;
// Flatbuffers reads scalars in place, so the buffer must be aligned for its widest one.
constexpr std::size_t buffer_alignment = alignof(std::uint64_t);

bool fail(std::string* error, std::string reason) {
  if (error != nullptr) *error = std::move(reason);
  return false;
}

flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> bytes_vector(
    flatbuffers::FlatBufferBuilder& fbb, const std::string& bytes) {
  return fbb.CreateVector(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
}

std::string to_string(const flatbuffers::Vector<std::uint8_t>* bytes) {
  if (bytes == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(bytes->data()), bytes->size());
}

// The verifier checks a vector's length field for 4-byte alignment only, so a hostile buffer can
// place 8-byte elements off their alignment; our builder never does, so such a vector is refused
// rather than read unaligned.
bool to_ids(const flatbuffers::Vector<std::uint64_t>* ids, std::vector<raft::NodeId>& out,
            std::string* error) {
  // The builder leaves an empty vector's (absent) elements unaligned; there is nothing to read.
  if (ids == nullptr || ids->size() == 0) return true;
  if (reinterpret_cast<std::uintptr_t>(ids->Data()) % alignof(std::uint64_t) != 0) {
    return fail(error, "malformed raft message (misaligned node id vector)");
  }
  out.assign(ids->begin(), ids->end());
  return true;
}

// Verified flatbuffers to the core's types; false (with a reason) on values the core has no
// name for.
bool convert(const fb::Message& in, raft::Message& out, std::string* error) {
  const auto type = static_cast<std::uint8_t>(in.type());
  if (type > static_cast<std::uint8_t>(fb::MessageType::MAX)) {
    return fail(error, fmt::format("unknown message type {}", type));
  }
  out.type = static_cast<raft::MessageType>(type);
  out.from = in.from();
  out.to = in.to();
  out.term = in.term();
  out.log_term = in.log_term();
  out.index = in.index();
  if (const auto* entries = in.entries()) {
    out.entries.reserve(entries->size());
    for (flatbuffers::uoffset_t i = 0; i < entries->size(); ++i) {
      const fb::Entry* e = entries->Get(i);
      const auto entry_type = static_cast<std::uint8_t>(e->type());
      if (entry_type > static_cast<std::uint8_t>(fb::EntryType::MAX)) {
        return fail(error, fmt::format("entry {} has unknown type {}", i, entry_type));
      }
      out.entries.push_back(raft::Entry{e->term(), e->index(),
                                        static_cast<raft::EntryType>(entry_type),
                                        to_string(e->data())});
    }
  }
  out.commit = in.commit();
  out.reject = in.reject();
  out.reject_hint = in.reject_hint();
  out.reject_term = in.reject_term();
  out.transfer = in.transfer();
  out.context = in.context();
  if (const fb::SnapshotMeta* meta = in.snapshot()) {
    out.snapshot.index = meta->index();
    out.snapshot.term = meta->term();
    if (const fb::ConfState* conf = meta->conf()) {
      if (!to_ids(conf->voters(), out.snapshot.conf.voters, error) ||
          !to_ids(conf->learners(), out.snapshot.conf.learners, error)) {
        return false;
      }
    }
  }
  out.snapshot_offset = in.snapshot_offset();
  out.snapshot_chunk = to_string(in.snapshot_chunk());
  out.snapshot_done = in.snapshot_done();
  return true;
}

}  // namespace

std::string encode(const raft::Message& m) {
  std::size_t payload_bytes = m.snapshot_chunk.size();
  for (const raft::Entry& e : m.entries) payload_bytes += e.data.size();
  flatbuffers::FlatBufferBuilder fbb(payload_bytes + 64 * m.entries.size() + 256);

  // Children first: flatbuffers builds back to front, so a table's parts precede its start.
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::Entry>>> entries;
  if (!m.entries.empty()) {
    std::vector<flatbuffers::Offset<fb::Entry>> offsets;
    offsets.reserve(m.entries.size());
    for (const raft::Entry& e : m.entries) {
      flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> data;
      if (!e.data.empty()) data = bytes_vector(fbb, e.data);
      fb::EntryBuilder b(fbb);
      b.add_term(e.term);
      b.add_index(e.index);
      b.add_type(static_cast<fb::EntryType>(e.type));
      if (!data.IsNull()) b.add_data(data);
      offsets.push_back(b.Finish());
    }
    entries = fbb.CreateVector(offsets);
  }
  flatbuffers::Offset<fb::SnapshotMeta> snapshot;
  const raft::SnapshotMeta& meta = m.snapshot;
  if (meta != raft::SnapshotMeta{}) {
    flatbuffers::Offset<fb::ConfState> conf;
    if (!meta.conf.voters.empty() || !meta.conf.learners.empty()) {
      flatbuffers::Offset<flatbuffers::Vector<std::uint64_t>> voters;
      flatbuffers::Offset<flatbuffers::Vector<std::uint64_t>> learners;
      if (!meta.conf.voters.empty()) voters = fbb.CreateVector(meta.conf.voters);
      if (!meta.conf.learners.empty()) learners = fbb.CreateVector(meta.conf.learners);
      conf = fb::CreateConfState(fbb, voters, learners);
    }
    fb::SnapshotMetaBuilder b(fbb);
    b.add_index(meta.index);
    b.add_term(meta.term);
    if (!conf.IsNull()) b.add_conf(conf);
    snapshot = b.Finish();
  }
  flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> chunk;
  if (!m.snapshot_chunk.empty()) chunk = bytes_vector(fbb, m.snapshot_chunk);

  fb::MessageBuilder b(fbb);
  b.add_type(static_cast<fb::MessageType>(m.type));
  b.add_from(m.from);
  b.add_to(m.to);
  b.add_term(m.term);
  b.add_log_term(m.log_term);
  b.add_index(m.index);
  if (!entries.IsNull()) b.add_entries(entries);
  b.add_commit(m.commit);
  b.add_reject(m.reject);
  b.add_reject_hint(m.reject_hint);
  b.add_reject_term(m.reject_term);
  b.add_transfer(m.transfer);
  b.add_context(m.context);
  if (!snapshot.IsNull()) b.add_snapshot(snapshot);
  b.add_snapshot_offset(m.snapshot_offset);
  if (!chunk.IsNull()) b.add_snapshot_chunk(chunk);
  b.add_snapshot_done(m.snapshot_done);
  fb::FinishMessageBuffer(fbb, b.Finish());

  COORD_ASSERT(fbb.GetSize() <= raft_message_bytes_max,
               "encoded raft message exceeds raft_message_bytes_max");
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

std::optional<raft::Message> decode(std::string_view bytes, std::string* error) {
  // The size check comes first: it bounds all work below, and the verifier itself requires a
  // buffer under 2 GiB.
  if (bytes.size() > raft_message_bytes_max) {
    fail(error, fmt::format("message of {} bytes exceeds the limit of {} bytes", bytes.size(),
                            raft_message_bytes_max));
    return std::nullopt;
  }
  // Root offset plus file identifier.
  constexpr std::size_t header_bytes = sizeof(flatbuffers::uoffset_t) + flatbuffers::kFileIdentifierLength;
  if (bytes.size() < header_bytes) {
    fail(error, fmt::format("message of {} bytes is shorter than a flatbuffers header", bytes.size()));
    return std::nullopt;
  }
  // A frame payload may start anywhere in a receive buffer; copy it when misaligned rather than
  // read unaligned scalars.
  std::vector<std::uint64_t> aligned;
  const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
  if (reinterpret_cast<std::uintptr_t>(data) % buffer_alignment != 0) {
    aligned.resize((bytes.size() + sizeof(std::uint64_t) - 1) / sizeof(std::uint64_t));
    std::memcpy(aligned.data(), bytes.data(), bytes.size());
    data = reinterpret_cast<const std::uint8_t*>(aligned.data());
  }
  if (!fb::MessageBufferHasIdentifier(data)) {
    fail(error, "not a raft message (file identifier mismatch)");
    return std::nullopt;
  }
  flatbuffers::Verifier::Options options;
  options.max_depth = verify_depth_max;
  options.max_tables = verify_tables_max;
  flatbuffers::Verifier verifier(data, bytes.size(), options);
  if (!fb::VerifyMessageBuffer(verifier)) {
    fail(error, "malformed raft message (flatbuffers verification failed)");
    return std::nullopt;
  }
  raft::Message message;
  if (!convert(*fb::GetMessage(data), message, error)) return std::nullopt;
  return message;
}

}  // namespace coord::net
