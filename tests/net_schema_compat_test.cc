// Rolling upgrades (net/README.md, "Versioning rules"): replicas and clients one version apart
// must understand each other. tests/schema_v_prev/ holds the previous version of each wire
// schema, compiled into namespaces of their own. Here frames built with the previous version are
// decoded by this build's codecs, frames built by this build are verified and read with the
// previous version's generated code (fields it does not know are ignored), and the two schema
// versions are compared field by field through flatc's binary schemas, so that a removed,
// renumbered or retyped field fails this test.
#include <doctest/doctest.h>
#include <flatbuffers/flatbuffers.h>
#include <flatbuffers/reflection.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "net/client_codec.h"
#include "net/peer_codec.h"
#include "net/raft_codec.h"
#include "raft/conf_change.h"
#include "schema_v_prev/client_protocol_generated.h"
#include "schema_v_prev/peer_hello_generated.h"
#include "schema_v_prev/raft_message_generated.h"

namespace {

using namespace coord;
namespace prev_client = coord::client::v_prev;
namespace prev_wire = coord::wire::v_prev;
namespace prev_peer = coord::peer::v_prev;

std::string finished(const flatbuffers::FlatBufferBuilder& fbb) {
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

// The previous build's reading of a buffer: its verifier must accept it first.
template <typename Table>
const Table* read_with_previous(const std::string& bytes, const char* identifier) {
  flatbuffers::Verifier verifier(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  if (!verifier.VerifyBuffer<Table>(identifier)) return nullptr;
  return flatbuffers::GetRoot<Table>(bytes.data());
}
// The result points into `bytes`: a temporary would leave it dangling.
template <typename Table>
const Table* read_with_previous(std::string&& bytes, const char* identifier) = delete;

}  // namespace

TEST_CASE("schema compat: a request of the previous client is decoded by this replica") {
  flatbuffers::FlatBufferBuilder fbb;
  auto path = fbb.CreateString("/a/b");
  auto start_after = fbb.CreateString("/a/a");
  prev_client::RequestBuilder b(fbb);
  b.add_id(42);
  b.add_kind(prev_client::RequestKind::Range);
  b.add_path(path);
  b.add_revision(7);
  b.add_serializable(true);
  b.add_start_after(start_after);
  b.add_limit(10);
  b.add_keys_only(true);
  b.add_forwarded(true);
  prev_client::FinishRequestBuffer(fbb, b.Finish());
  std::string error;
  const auto r = net::decode_request(finished(fbb), &error);
  REQUIRE_MESSAGE(r.has_value(), error);
  CHECK(r->id == 42);
  CHECK(r->kind == net::RequestKind::Range);
  CHECK(r->path == "/a/b");
  CHECK(r->revision == 7);
  CHECK(r->serializable);
  CHECK(r->start_after == "/a/a");
  CHECK(r->limit == 10);
  CHECK(r->keys_only);
  CHECK(r->forwarded);
  // Fields the previous version did not have take their "old behaviour" defaults.
  CHECK(r->member_name.empty());
  CHECK(r->peer_address.empty());
  CHECK_FALSE(r->learner);
}

TEST_CASE("schema compat: a response of the previous replica is decoded by this client") {
  flatbuffers::FlatBufferBuilder fbb;
  auto message = fbb.CreateString("");
  auto m_name = fbb.CreateString("n2");
  auto m_peer = fbb.CreateString("127.0.0.1:7002");
  auto m_client = fbb.CreateString("127.0.0.1:7102");
  std::vector<flatbuffers::Offset<prev_client::Member>> members{
      prev_client::CreateMember(fbb, 2, m_name, m_peer, m_client, true, false, true)};
  auto member_vector = fbb.CreateVector(members);
  auto s_name = fbb.CreateString("n2");
  auto s_cluster = fbb.CreateString("coord-x");
  auto s_role = fbb.CreateString("leader");
  auto status = prev_client::CreateStatus(fbb, 2, s_name, s_cluster, s_role, 2, 5, 40, 39, 1, 40, 0, 30, 0);
  prev_client::ResponseBuilder b(fbb);
  b.add_id(9);
  b.add_message(message);
  b.add_revision(30);
  b.add_status(status);
  b.add_members(member_vector);
  fbb.Finish(b.Finish(), "CCLI");
  std::string error;
  const auto r = net::decode_response(finished(fbb), &error);
  REQUIRE_MESSAGE(r.has_value(), error);
  CHECK(r->ok());
  CHECK(r->revision == 30);
  REQUIRE(r->members.size() == 1);
  CHECK(r->members[0] == net::MemberInfo{2, "n2", "127.0.0.1:7002", "127.0.0.1:7102", true, false, true});
  REQUIRE(r->status.has_value());
  CHECK(r->status->term == 5);
  CHECK(r->status->cluster == "coord-x");
  CHECK(r->cluster.empty());  // added after the previous version
}

TEST_CASE("schema compat: the previous client reads this replica's responses, ignoring new fields") {
  net::ClientResponse r;
  r.id = 11;
  r.revision = 12;
  r.cluster = "coord-abc";  // unknown to the previous version
  r.members.push_back(net::MemberInfo{10530330170123407794ULL, "n4", "127.0.0.1:7004", "", false, true, false});
  r.names = {"a", "b"};
  const std::string bytes = net::encode_response(r);
  const auto* old = read_with_previous<prev_client::Response>(bytes, "CCLI");
  REQUIRE(old != nullptr);
  CHECK(old->id() == 11);
  CHECK(old->error() == 0);
  CHECK(old->revision() == 12);
  REQUIRE(old->members() != nullptr);
  REQUIRE(old->members()->size() == 1);
  CHECK(old->members()->Get(0)->id() == 10530330170123407794ULL);
  CHECK(old->members()->Get(0)->name()->str() == "n4");
  CHECK(old->members()->Get(0)->learner());
  REQUIRE(old->names() != nullptr);
  CHECK(old->names()->size() == 2);
}

TEST_CASE("schema compat: the previous replica reads this client's requests, and new kinds it refuses as unknown") {
  net::ClientRequest get;
  get.id = 3;
  get.kind = net::RequestKind::Get;
  get.path = "/k";
  get.revision = 4;
  get.serializable = true;
  const std::string get_bytes = net::encode_request(get);  // the reader points into it
  const auto* old = read_with_previous<prev_client::Request>(get_bytes, "CCLI");
  REQUIRE(old != nullptr);
  CHECK(old->id() == 3);
  CHECK(old->kind() == prev_client::RequestKind::Get);
  CHECK(old->path()->str() == "/k");
  CHECK(old->revision() == 4);
  CHECK(old->serializable());

  net::ClientRequest add;
  add.id = 5;
  add.kind = net::RequestKind::MemberAdd;
  add.member_name = "n4";
  add.peer_address = "127.0.0.1:7004";
  add.learner = true;
  const std::string add_bytes = net::encode_request(add);
  const auto* old_add = read_with_previous<prev_client::Request>(add_bytes, "CCLI");
  REQUIRE(old_add != nullptr);  // well-formed for the previous version too
  CHECK(old_add->id() == 5);    // so it can answer InvalidRequest under the right id
  // Its decoder refuses kinds above its largest (rule 4): InvalidRequest, connection kept.
  CHECK(static_cast<unsigned>(old_add->kind()) > static_cast<unsigned>(prev_client::RequestKind::MAX));
}

TEST_CASE("schema compat: Raft messages of the previous version are decoded by this replica") {
  flatbuffers::FlatBufferBuilder fbb;
  const std::string change = raft::encode_conf_change({raft::ConfChangeType::AddLearner, 4});
  auto data = fbb.CreateVector(reinterpret_cast<const std::uint8_t*>(change.data()), change.size());
  std::vector<flatbuffers::Offset<prev_wire::Entry>> entries{
      prev_wire::CreateEntry(fbb, 3, 8, prev_wire::EntryType::ConfChange, data)};
  auto entry_vector = fbb.CreateVector(entries);
  std::vector<std::uint64_t> voters{1, 2, 3};
  auto conf = prev_wire::CreateConfState(fbb, fbb.CreateVector(voters));
  auto meta = prev_wire::CreateSnapshotMeta(fbb, 7, 2, conf);
  prev_wire::MessageBuilder b(fbb);
  b.add_type(prev_wire::MessageType::Append);
  b.add_from(1);
  b.add_to(4);
  b.add_term(3);
  b.add_log_term(2);
  b.add_index(7);
  b.add_entries(entry_vector);
  b.add_commit(7);
  b.add_snapshot(meta);
  prev_wire::FinishMessageBuffer(fbb, b.Finish());
  std::string error;
  const auto m = net::decode(finished(fbb), &error);
  REQUIRE_MESSAGE(m.has_value(), error);
  CHECK(m->type == raft::MessageType::Append);
  CHECK(m->from == 1);
  CHECK(m->to == 4);
  CHECK(m->term == 3);
  CHECK(m->index == 7);
  REQUIRE(m->entries.size() == 1);
  CHECK(m->entries[0] == raft::Entry{3, 8, raft::EntryType::ConfChange, change});
  CHECK(m->snapshot.conf.voters == std::vector<raft::NodeId>{1, 2, 3});
  // The fields the previous version lacked: their defaults.
  CHECK(m->snapshot_offset == 0);
  CHECK(m->snapshot_chunk.empty());
  CHECK_FALSE(m->snapshot_done);
}

TEST_CASE("schema compat: the previous replica reads this replica's Raft messages, ignoring new fields") {
  raft::Message m;
  m.type = raft::MessageType::Snapshot;
  m.from = 2;
  m.to = 3;
  m.term = 9;
  m.snapshot = raft::SnapshotMeta{100, 8, raft::ConfState{{1, 2, 3}, {4}}};
  m.snapshot_offset = 65536;
  m.snapshot_chunk = std::string(1000, 'x');
  m.snapshot_done = true;
  m.context = 77;
  const std::string bytes = net::encode(m);
  const auto* old = read_with_previous<prev_wire::Message>(bytes, "CRFT");
  REQUIRE(old != nullptr);
  CHECK(old->type() == prev_wire::MessageType::Snapshot);
  CHECK(old->from() == 2);
  CHECK(old->to() == 3);
  CHECK(old->term() == 9);
  CHECK(old->context() == 77);
  REQUIRE(old->snapshot() != nullptr);
  CHECK(old->snapshot()->index() == 100);
  REQUIRE(old->snapshot()->conf() != nullptr);
  CHECK(old->snapshot()->conf()->learners()->size() == 1);
}

TEST_CASE("schema compat: peer hellos in both directions") {
  flatbuffers::FlatBufferBuilder fbb;
  prev_peer::FinishHelloBuffer(fbb, prev_peer::CreateHello(fbb, fbb.CreateString("coord-x"), 2, 1, fbb.CreateString("n2"),
                                                           fbb.CreateString("127.0.0.1:7102")));
  std::string error;
  const auto hello = net::decode_hello(finished(fbb), &error);
  REQUIRE_MESSAGE(hello.has_value(), error);
  CHECK(*hello == net::PeerHello{"coord-x", 2, 1, "n2", "127.0.0.1:7102", ""});

  const std::string bytes = net::encode_hello(net::PeerHello{"coord-x", 3, 1, "n3", "127.0.0.1:7103", "127.0.0.1:7003"});
  const auto* old = read_with_previous<prev_peer::Hello>(bytes, "CPHL");
  REQUIRE(old != nullptr);
  CHECK(old->from() == 3);
  CHECK(old->name()->str() == "n3");
  CHECK(old->client_address()->str() == "127.0.0.1:7103");
}

// ---------------------------------------------------------------------------------------------
// Field by field: every table, field and enum value of the previous version is in the current
// one with the same id (value) and type; what is new comes after all of the previous ids.

namespace {

struct BinarySchema {
  std::string bytes;
  const reflection::Schema* schema = nullptr;
};

BinarySchema load_schema(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  BinarySchema out{s.str(), nullptr};
  flatbuffers::Verifier verifier(reinterpret_cast<const std::uint8_t*>(out.bytes.data()), out.bytes.size());
  REQUIRE_MESSAGE(reflection::VerifySchemaBuffer(verifier), path);
  out.schema = reflection::GetSchema(out.bytes.data());
  return out;
}

// "coord.client.v_prev.Request" and "coord.client.Request" are the same table.
std::string short_name(const flatbuffers::String* name) {
  const std::string full = name->str();
  const std::size_t dot = full.rfind('.');
  return dot == std::string::npos ? full : full.substr(dot + 1);
}

const reflection::Object* find_object(const reflection::Schema& s, const std::string& name) {
  for (const reflection::Object* o : *s.objects()) {
    if (short_name(o->name()) == name) return o;
  }
  return nullptr;
}

// Linear rather than Vector::LookupByKey, whose inlined strcmp GCC's -Wstringop-overread
// misjudges under the sanitizers.
const reflection::Field* find_field(const reflection::Object& o, const std::string& name) {
  for (const reflection::Field* f : *o.fields()) {
    if (f->name()->str() == name) return f;
  }
  return nullptr;
}

const reflection::Enum* find_enum(const reflection::Schema& s, const std::string& name) {
  for (const reflection::Enum* e : *s.enums()) {
    if (short_name(e->name()) == name) return e;
  }
  return nullptr;
}

// What a field's type means, comparable across the two schemas (object and enum references are
// indices into each schema's own lists, so they are compared by name).
std::string type_text(const reflection::Schema& s, const reflection::Type& t) {
  std::string out = std::to_string(t.base_type()) + "/" + std::to_string(t.element());
  if (t.index() >= 0) {
    const bool is_object = t.base_type() == reflection::Obj ||
                           (t.base_type() == reflection::Vector && t.element() == reflection::Obj);
    out += is_object ? "/" + short_name(s.objects()->Get(static_cast<flatbuffers::uoffset_t>(t.index()))->name())
                     : "/" + short_name(s.enums()->Get(static_cast<flatbuffers::uoffset_t>(t.index()))->name());
  }
  return out;
}

std::vector<std::string> incompatibilities(const reflection::Schema& prev, const reflection::Schema& current) {
  std::vector<std::string> out;
  for (const reflection::Object* po : *prev.objects()) {
    const std::string table = short_name(po->name());
    const reflection::Object* co = find_object(current, table);
    if (co == nullptr) {
      out.push_back("table " + table + " removed");
      continue;
    }
    int prev_id_max = -1;
    for (const reflection::Field* pf : *po->fields()) {
      prev_id_max = std::max<int>(prev_id_max, pf->id());
      const reflection::Field* cf = find_field(*co, pf->name()->str());
      const std::string field = table + "." + pf->name()->str();
      if (cf == nullptr) {
        out.push_back(field + " removed");
      } else if (cf->id() != pf->id()) {
        out.push_back(field + " renumbered " + std::to_string(pf->id()) + " -> " + std::to_string(cf->id()));
      } else if (type_text(prev, *pf->type()) != type_text(current, *cf->type())) {
        out.push_back(field + " retyped " + type_text(prev, *pf->type()) + " -> " + type_text(current, *cf->type()));
      }
    }
    for (const reflection::Field* cf : *co->fields()) {
      if (find_field(*po, cf->name()->str()) == nullptr && cf->id() <= prev_id_max) {
        out.push_back(table + "." + cf->name()->str() + " added with id " + std::to_string(cf->id()) +
                      ", not after the previous fields");
      }
    }
  }
  for (const reflection::Enum* pe : *prev.enums()) {
    const std::string name = short_name(pe->name());
    const reflection::Enum* ce = find_enum(current, name);
    if (ce == nullptr) {
      out.push_back("enum " + name + " removed");
      continue;
    }
    if (pe->underlying_type()->base_type() != ce->underlying_type()->base_type()) out.push_back("enum " + name + " retyped");
    std::int64_t prev_max = 0;
    for (const reflection::EnumVal* pv : *pe->values()) {
      prev_max = std::max(prev_max, pv->value());
      const auto it = std::find_if(ce->values()->begin(), ce->values()->end(),
                                   [&](const reflection::EnumVal* cv) { return cv->name()->str() == pv->name()->str(); });
      if (it == ce->values()->end()) {
        out.push_back(name + "::" + pv->name()->str() + " removed");
      } else if ((*it)->value() != pv->value()) {
        out.push_back(name + "::" + pv->name()->str() + " renumbered");
      }
    }
    for (const reflection::EnumVal* cv : *ce->values()) {
      const bool known = std::any_of(pe->values()->begin(), pe->values()->end(),
                                     [&](const reflection::EnumVal* pv) { return pv->name()->str() == cv->name()->str(); });
      if (!known && cv->value() <= prev_max) out.push_back(name + "::" + cv->name()->str() + " inserted, not appended");
    }
  }
  return out;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += s + "; ";
  return out;
}

bool mentions(const std::vector<std::string>& items, const std::string& text) {
  return std::any_of(items.begin(), items.end(), [&](const std::string& s) { return s == text; });
}

}  // namespace

TEST_CASE("schema compat: every field and enum value of the previous version keeps its id and type") {
  for (const char* name : {"client_protocol", "raft_message", "peer_hello"}) {
    CAPTURE(name);
    const BinarySchema prev = load_schema(std::string(COORD_SCHEMA_PREV_BFBS_DIR) + "/" + name + ".bfbs");
    const BinarySchema current = load_schema(std::string(COORD_SCHEMA_CURRENT_BFBS_DIR) + "/" + name + ".bfbs");
    const std::vector<std::string> problems = incompatibilities(*prev.schema, *current.schema);
    CHECK_MESSAGE(problems.empty(), joined(problems));
  }
}

TEST_CASE("schema compat: the comparison catches removed fields and values (the versions swapped)") {
  // Read backwards, the current version "removes" what was added since the previous one: the
  // check must name exactly those.
  const BinarySchema prev = load_schema(std::string(COORD_SCHEMA_PREV_BFBS_DIR) + "/client_protocol.bfbs");
  const BinarySchema current = load_schema(std::string(COORD_SCHEMA_CURRENT_BFBS_DIR) + "/client_protocol.bfbs");
  const std::vector<std::string> backwards = incompatibilities(*current.schema, *prev.schema);
  CHECK_MESSAGE(mentions(backwards, "Request.member_name removed"), joined(backwards));
  CHECK_MESSAGE(mentions(backwards, "Response.cluster removed"), joined(backwards));
  CHECK_MESSAGE(mentions(backwards, "RequestKind::MemberAdd removed"), joined(backwards));
  const BinarySchema raft_prev = load_schema(std::string(COORD_SCHEMA_PREV_BFBS_DIR) + "/raft_message.bfbs");
  const BinarySchema raft_current = load_schema(std::string(COORD_SCHEMA_CURRENT_BFBS_DIR) + "/raft_message.bfbs");
  const std::vector<std::string> raft_backwards = incompatibilities(*raft_current.schema, *raft_prev.schema);
  CHECK_MESSAGE(mentions(raft_backwards, "Message.snapshot_done removed"), joined(raft_backwards));
  CHECK(raft_backwards.size() == 3);
}
