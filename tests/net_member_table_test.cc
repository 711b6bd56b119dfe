// Runtime membership pieces below the server: ids of added members, the member description a
// conf change carries, DIR/members, the joined flag of the identity file, and the new request
// fields on the wire.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "net/client_codec.h"
#include "net/data_dir.h"
#include "net/member_table.h"

namespace {

using namespace coord::net;

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/coord-member-table-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace

TEST_CASE("ids of added members: stable, never a position id, distinct per name") {
  CHECK(member_id_for_name("n4") == 10530330170123407794ULL);  // pinned: data dirs store it
  CHECK(member_id_for_name("n4") == member_id_for_name("n4"));
  CHECK(member_id_for_name("n4") != member_id_for_name("n5"));
  CHECK((member_id_for_name("a") >> 63) == 1);
}

TEST_CASE("the member context round-trips and refuses what --initial-cluster would") {
  const MemberConfig m{member_id_for_name("n4"), "n4", "127.0.0.1:7004"};
  const auto back = decode_member_context(m.id, encode_member_context(m));
  REQUIRE(back.has_value());
  CHECK(*back == m);
  // Keys a newer build adds are ignored.
  CHECK(decode_member_context(5, "name=x\npeer=127.0.0.1:1\nzone=eu\n").has_value());
  CHECK_FALSE(decode_member_context(5, "name=bad name\npeer=127.0.0.1:1\n").has_value());
  CHECK_FALSE(decode_member_context(5, "name=x\npeer=nowhere\n").has_value());
  CHECK_FALSE(decode_member_context(5, "name=x\npeer=127.0.0.1:1").has_value());  // unterminated
  CHECK_FALSE(decode_member_context(0, encode_member_context(m)).has_value());
  CHECK_FALSE(decode_member_context(5, "").has_value());
}

TEST_CASE("DIR/members: absent, saved, loaded, a damaged one is refused") {
  TempDir dir;
  CHECK_FALSE(load_member_table(dir.path).has_value());
  const std::vector<MemberConfig> table{{1, "n1", "127.0.0.1:7001"}, {member_id_for_name("n4"), "n4", "127.0.0.1:7004"}};
  save_member_table(dir.path, table);
  const auto loaded = load_member_table(dir.path);
  REQUIRE(loaded.has_value());
  CHECK(*loaded == table);
  {
    std::ofstream out(dir.path + "/members", std::ios::trunc);
    out << "format=1\n1 n1\n";
  }
  CHECK_THROWS_AS(load_member_table(dir.path), DataDirError);
  {
    std::ofstream out(dir.path + "/members", std::ios::trunc);
    out << "format=9\n";
  }
  CHECK_THROWS_AS(load_member_table(dir.path), DataDirError);
}

TEST_CASE("a data dir created by joining refuses a restart as an initial member, and back") {
  TempDir dir;
  const MemberIdentity joined{"coord-x", member_id_for_name("n4"), "n4", "n4=127.0.0.1:7004", true};
  CHECK(claim_data_dir(dir.path + "/n4", joined));
  CHECK_FALSE(claim_data_dir(dir.path + "/n4", joined));
  MemberIdentity as_new = joined;
  as_new.joined = false;
  CHECK_THROWS_WITH_AS(claim_data_dir(dir.path + "/n4", as_new), doctest::Contains("--initial-cluster-state existing"),
                       DataDirError);
  // Identity files of initial members are unchanged (no joined line), so older data dirs match.
  const MemberIdentity initial{"coord-y", 1, "n1", "n1=127.0.0.1:7001", false};
  CHECK(claim_data_dir(dir.path + "/n1", initial));
  std::ifstream in(dir.path + "/n1/member");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text.find("joined") == std::string::npos);
}

TEST_CASE("member change requests and the cluster token round-trip on the wire") {
  ClientRequest r;
  r.id = 9;
  r.kind = RequestKind::MemberAdd;
  r.member_name = "n4";
  r.peer_address = "127.0.0.1:7004";
  r.learner = true;
  std::string error;
  const auto back = decode_request(encode_request(r), &error);
  REQUIRE_MESSAGE(back.has_value(), error);
  CHECK(*back == r);
  for (RequestKind kind : {RequestKind::MemberRemove, RequestKind::MemberPromote}) {
    r.kind = kind;
    CHECK(decode_request(encode_request(r), &error)->kind == kind);
  }
  ClientResponse answer;
  answer.id = 9;
  answer.cluster = "coord-abc";
  answer.members.push_back(MemberInfo{member_id_for_name("n4"), "n4", "127.0.0.1:7004", "", false, true, false});
  const auto decoded = decode_response(encode_response(answer), &error);
  REQUIRE_MESSAGE(decoded.has_value(), error);
  CHECK(*decoded == answer);
  CHECK(to_string(ErrorCode::UnknownMember) == "unknown-member");
  CHECK(to_string(ErrorCode::MemberExists) == "member-exists");
  CHECK(to_string(ErrorCode::NotLearner) == "not-learner");
  CHECK(to_string(ErrorCode::LastVoter) == "last-voter");
  CHECK_FALSE(retryable(ErrorCode::LastVoter));
}
