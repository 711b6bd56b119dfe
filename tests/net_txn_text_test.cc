// The text form of transactions that `coordctl txn` reads.
#include <doctest/doctest.h>

#include "net/txn_text.h"

using namespace coord;

TEST_CASE("a full transaction parses into compares and both branches") {
  std::string error;
  const auto txn = net::parse_txn_text(
      "# take the lock if free\n"
      "compare missing /app/lock\n"
      "compare version /app/cfg = 3\n"
      "compare value /app/cfg != old value\n"
      "then\n"
      "create --parents /app/lock me and my value\n"
      "create --sequential /app/jobs/job- \n"
      "put /app/cfg new\n"
      "else\n"
      "get /app/lock\n"
      "delete --recursive /app/stale\n",
      &error);
  REQUIRE_MESSAGE(txn.has_value(), error);
  REQUIRE(txn->compares.size() == 3);
  CHECK(txn->compares[0] == kv::Compare::missing("/app/lock"));
  CHECK(txn->compares[1] == kv::Compare::version("/app/cfg", kv::CompareOp::Equal, 3));
  CHECK(txn->compares[2] == kv::Compare::value_is("/app/cfg", kv::CompareOp::NotEqual, "old value"));
  REQUIRE(txn->success.size() == 3);
  kv::Op lock = kv::Op::create("/app/lock", "me and my value");
  lock.parents = true;
  CHECK(txn->success[0] == lock);
  CHECK(txn->success[1] == kv::Op::create_sequential("/app/jobs/job-", ""));
  CHECK(txn->success[2] == kv::Op::put("/app/cfg", "new"));
  REQUIRE(txn->failure.size() == 2);
  CHECK(txn->failure[0] == kv::Op::get("/app/lock"));
  CHECK(txn->failure[1] == kv::Op::remove("/app/stale", true));
}

TEST_CASE("operations without a then header form the success branch") {
  const auto txn = net::parse_txn_text("put /a 1\nput /b 2\n", nullptr);
  REQUIRE(txn.has_value());
  CHECK(txn->compares.empty());
  CHECK(txn->success.size() == 2);
}

TEST_CASE("mistakes name their line") {
  std::string error;
  CHECK_FALSE(net::parse_txn_text("", &error).has_value());
  CHECK_FALSE(net::parse_txn_text("compare version /a ~ 3\n", &error).has_value());
  CHECK(error.find("line 1") != std::string::npos);
  CHECK_FALSE(net::parse_txn_text("put /a 1\ncompare exists /a\n", &error).has_value());
  CHECK(error.find("line 2") != std::string::npos);
  CHECK_FALSE(net::parse_txn_text("then\nfrobnicate /a\n", &error).has_value());
  CHECK_FALSE(net::parse_txn_text("delete --parents /a\n", &error).has_value());
  CHECK_FALSE(net::parse_txn_text("compare version /a = x\n", &error).has_value());
  CHECK_FALSE(net::parse_txn_text("get /a extra\n", &error).has_value());
  CHECK_FALSE(net::parse_txn_text("else\nthen\n", &error).has_value());
}
