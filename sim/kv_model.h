// The sequential model the kv workload's histories are checked against (sim/linearizability.h),
// written from kv/README.md's semantics rather than from kv/'s code, so that a bug there is not
// mirrored here.
//
// One model instance covers one key group: a group node /gG and its keys /gG/k0../gG/k(N-1).
// Every operation of the workload stays within one group (transactions and lists included), so
// a history splits into independent groups and each is checked on its own. Revisions are global
// across groups and are not modelled; values (unique per write), versions, existence and the
// group's children are.
//
// Writes are transactions: put, create, delete and compare-and-set are transactions with one
// operation (and a comparison). Puts and creates make the group node when it is missing (the
// workload sets `parents`); a list of a missing group is NotFound, a get of a missing key is
// NotFound.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kv/command.h"
#include "kv/error.h"
#include "kv/reads.h"

namespace coord::sim {

struct KvGroupModel {
  static constexpr int kKeysMax = 4;

  enum class Kind : std::uint8_t { Get, List, Txn };
  enum class OpType : std::uint8_t { Get, Put, Create, Delete };
  enum class Target : std::uint8_t { Exists, Missing, Version, Value };

  struct TxnOp {
    OpType type = OpType::Get;
    int key = 0;
    std::string value;  // Put, Create
  };
  // Equality comparisons only.
  struct Compare {
    int key = 0;
    Target target = Target::Exists;
    std::uint64_t version = 0;  // Version
    std::string value;          // Value
  };
  struct Input {
    Kind kind = Kind::Get;
    int key = 0;  // Get
    std::vector<Compare> compares;
    std::vector<TxnOp> success;
    std::vector<TxnOp> failure;
  };

  struct OpOutput {
    bool exists = false;  // Get
    std::string value;    // Get
    std::uint64_t version = 0;
    bool created = false;  // Put
    bool operator==(const OpOutput&) const = default;
  };
  struct Output {
    kv::Error error = kv::Error::Ok;
    // Get: the node; List: which keys the group lists (bit k); Txn: branch and results.
    bool exists = false;
    std::string value;
    std::uint64_t version = 0;
    std::uint32_t children = 0;
    bool succeeded = true;
    std::vector<OpOutput> ops;
  };

  struct Key {
    bool exists = false;
    std::string value;
    std::uint64_t version = 0;
    bool operator==(const Key&) const = default;
  };
  struct State {
    bool group = false;
    std::array<Key, kKeysMax> keys;
    bool operator==(const State&) const = default;
  };

  static State init() { return {}; }
  static std::size_t hash(const State& s);
  static bool step(const State& s, const Input& in, const std::optional<Output>& out, State* next);
  // What the model answers to `in` in state `s` (and the state after it).
  static Output expect(const State& s, const Input& in, State* next);
  // Whether an actual output matches the expected one (only what the operation reports).
  static bool matches(const Input& in, const Output& expected, const Output& actual);

  // Between the model and the kv API, for group `group` (paths "/g<group>/k<key>").
  static std::string group_path(int group);
  static std::string key_path(int group, int key);
  static kv::Txn to_txn(int group, const Input& in);
  static Output from_result(const Input& in, const kv::Result& result);
  static Output from_get(const kv::ReadResult<kv::Node>& read);
  static Output from_list(const kv::ReadResult<kv::ListPage>& read);

  static std::string describe(const Input& in);
  static std::string describe(const Input& in, const Output& out);
};

}  // namespace coord::sim
