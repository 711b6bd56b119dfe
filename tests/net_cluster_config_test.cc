// --initial-cluster parsing, member ids, and the data directory's identity check.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>

#include "net/cluster_config.h"
#include "net/data_dir.h"

using namespace coord;

TEST_CASE("ids are positions in the sorted list, the same whatever the order given") {
  std::string error;
  const auto a = net::parse_initial_cluster("n2=127.0.0.1:2,n1=127.0.0.1:1,n3=[::1]:3", "", &error);
  REQUIRE_MESSAGE(a.has_value(), error);
  const auto b = net::parse_initial_cluster("n1=127.0.0.1:1,n3=[::1]:3,n2=127.0.0.1:2", "", &error);
  REQUIRE(b.has_value());
  CHECK(a->find("n1")->id == 1);
  CHECK(a->find("n2")->id == 2);
  CHECK(a->find("n3")->id == 3);
  CHECK(a->token == b->token);
  CHECK(a->spec() == "n1=127.0.0.1:1,n2=127.0.0.1:2,n3=[::1]:3");
  const auto other = net::parse_initial_cluster("n1=127.0.0.1:1,n2=127.0.0.1:2,n3=[::1]:4", "", &error);
  REQUIRE(other.has_value());
  CHECK(other->token != a->token);
  CHECK(net::parse_initial_cluster("n1=127.0.0.1:1", "mytoken", &error)->token == "mytoken");
}

TEST_CASE("bad cluster lists are refused with a reason") {
  std::string error;
  CHECK_FALSE(net::parse_initial_cluster("", "", &error).has_value());
  CHECK_FALSE(net::parse_initial_cluster("n1", "", &error).has_value());
  CHECK_FALSE(net::parse_initial_cluster("n1=localhost:1", "", &error).has_value());
  CHECK_FALSE(net::parse_initial_cluster("n1=127.0.0.1:99999", "", &error).has_value());
  CHECK_FALSE(net::parse_initial_cluster("n1=127.0.0.1:1,n1=127.0.0.1:2", "", &error).has_value());
  CHECK(error.find("twice") != std::string::npos);
  CHECK_FALSE(net::parse_initial_cluster("bad name=127.0.0.1:1", "", &error).has_value());
  CHECK_FALSE(net::parse_initial_cluster("n1=127.0.0.1:1,", "", &error).has_value());
}

TEST_CASE("a data directory refuses another cluster or member") {
  char tmpl[] = "/tmp/coord-datadir-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const std::string dir = std::string(tmpl) + "/n1";
  const net::MemberIdentity me{"tok", 1, "n1", "n1=127.0.0.1:1"};
  CHECK(net::claim_data_dir(dir, me));
  CHECK_FALSE(net::claim_data_dir(dir, me));  // the same member again: fine
  CHECK_THROWS_AS(net::claim_data_dir(dir, net::MemberIdentity{"other", 1, "n1", "x"}), net::DataDirError);
  CHECK_THROWS_AS(net::claim_data_dir(dir, net::MemberIdentity{"tok", 2, "n2", "x"}), net::DataDirError);
  // Stores without an identity file: not ours to take over.
  const std::string bare = std::string(tmpl) + "/bare";
  std::filesystem::create_directories(bare + "/raft");
  CHECK_THROWS_AS(net::claim_data_dir(bare, me), net::DataDirError);
  std::filesystem::remove_all(tmpl);
}
