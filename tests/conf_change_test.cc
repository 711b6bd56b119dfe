#include "raft/conf_change.h"

#include <doctest/doctest.h>

#include <string>

using coord::raft::apply_conf_change;
using coord::raft::ConfChange;
using coord::raft::ConfChangeType;
using coord::raft::ConfState;
using coord::raft::decode_conf_change;
using coord::raft::encode_conf_change;
using coord::raft::is_learner;
using coord::raft::is_voter;
using coord::raft::NodeId;

TEST_CASE("conf change encoding round-trips") {
  for (auto type : {ConfChangeType::AddVoter, ConfChangeType::AddLearner,
                    ConfChangeType::RemoveNode}) {
    for (NodeId node : {NodeId{1}, NodeId{0x0102030405060708}, ~NodeId{0}}) {
      const ConfChange change{type, node};
      const std::string bytes = encode_conf_change(change);
      CHECK(bytes.size() == 10);
      CHECK(decode_conf_change(bytes) == change);
    }
  }
}

TEST_CASE("conf change encoding is little-endian with a version byte") {
  const std::string bytes = encode_conf_change({ConfChangeType::AddLearner, 0x0102});
  CHECK(bytes == std::string("\x01\x01\x02\x01\x00\x00\x00\x00\x00\x00", 10));
}

TEST_CASE("conf change decoding rejects malformed bytes") {
  const std::string good = encode_conf_change({ConfChangeType::RemoveNode, 7});
  CHECK(decode_conf_change(good).has_value());
  CHECK_FALSE(decode_conf_change("").has_value());
  CHECK_FALSE(decode_conf_change(good.substr(0, 9)).has_value());
  CHECK_FALSE(decode_conf_change(good + "x").has_value());

  std::string bad_version = good;
  bad_version[0] = 2;
  CHECK_FALSE(decode_conf_change(bad_version).has_value());

  std::string bad_type = good;
  bad_type[1] = 3;
  CHECK_FALSE(decode_conf_change(bad_type).has_value());

  CHECK_FALSE(decode_conf_change(encode_conf_change({ConfChangeType::AddVoter, 0})).has_value());
}

TEST_CASE("add voter keeps the list sorted and unique") {
  ConfState conf{{1, 3}, {}};
  conf = apply_conf_change(conf, {ConfChangeType::AddVoter, 2});
  CHECK(conf.voters == std::vector<NodeId>{1, 2, 3});
  conf = apply_conf_change(conf, {ConfChangeType::AddVoter, 2});
  CHECK(conf.voters == std::vector<NodeId>{1, 2, 3});
  CHECK(is_voter(conf, 2));
  CHECK_FALSE(is_learner(conf, 2));
}

TEST_CASE("add voter promotes a learner") {
  ConfState conf{{1}, {4, 5}};
  conf = apply_conf_change(conf, {ConfChangeType::AddVoter, 4});
  CHECK(conf.voters == std::vector<NodeId>{1, 4});
  CHECK(conf.learners == std::vector<NodeId>{5});
}

TEST_CASE("add learner") {
  ConfState conf{{1, 2}, {}};
  conf = apply_conf_change(conf, {ConfChangeType::AddLearner, 9});
  conf = apply_conf_change(conf, {ConfChangeType::AddLearner, 7});
  conf = apply_conf_change(conf, {ConfChangeType::AddLearner, 9});
  CHECK(conf.learners == std::vector<NodeId>{7, 9});
  CHECK(is_learner(conf, 7));
  CHECK_FALSE(is_voter(conf, 7));

  SUBCASE("is a no-op for a voter") {
    const ConfState after = apply_conf_change(conf, {ConfChangeType::AddLearner, 2});
    CHECK(after == conf);
  }
}

TEST_CASE("remove node from either list") {
  ConfState conf{{1, 2, 3}, {4}};
  conf = apply_conf_change(conf, {ConfChangeType::RemoveNode, 2});
  conf = apply_conf_change(conf, {ConfChangeType::RemoveNode, 4});
  CHECK(conf.voters == std::vector<NodeId>{1, 3});
  CHECK(conf.learners.empty());
  const ConfState same = apply_conf_change(conf, {ConfChangeType::RemoveNode, 42});
  CHECK(same == conf);
}

TEST_CASE("apply normalizes an unsorted configuration and ignores node 0") {
  const ConfState unsorted{{3, 1, 3}, {5, 4}};
  const ConfState conf = apply_conf_change(unsorted, {ConfChangeType::AddVoter, 0});
  CHECK(conf.voters == std::vector<NodeId>{1, 3});
  CHECK(conf.learners == std::vector<NodeId>{4, 5});
  CHECK(is_voter(unsorted, 1));
}

TEST_CASE("conf change context round-trips as version 2 and is bounded") {
  const ConfChange change{ConfChangeType::AddLearner, 0x8000000000000042ULL, "name=n4\npeer=127.0.0.1:7004\n"};
  const std::string bytes = encode_conf_change(change);
  CHECK(bytes.size() == 10 + change.context.size());
  CHECK(bytes[0] == 2);
  CHECK(decode_conf_change(bytes) == change);
  // Without a context the encoding stays version 1, which older builds read.
  CHECK(encode_conf_change({ConfChangeType::AddLearner, 7})[0] == 1);
  // A version-1 change with trailing bytes, or an oversized context, is refused.
  std::string v1_with_tail = bytes;
  v1_with_tail[0] = 1;
  CHECK_FALSE(decode_conf_change(v1_with_tail).has_value());
  const std::string oversized =
      encode_conf_change({ConfChangeType::AddVoter, 5, std::string(coord::raft::conf_change_context_bytes_max + 1, 'x')});
  CHECK_FALSE(decode_conf_change(oversized).has_value());
  // The core ignores the context: the configuration only depends on type and node.
  CHECK(apply_conf_change(ConfState{{1}, {}}, change) == ConfState{{1}, {0x8000000000000042ULL}});
}
