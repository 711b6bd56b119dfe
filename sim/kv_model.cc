#include "sim/kv_model.h"

#include <fmt/format.h>

#include "sim/rng.h"

namespace coord::sim {

using M = KvGroupModel;

std::size_t M::hash(const State& s) {
  std::uint64_t h = s.group ? 0x9e3779b97f4a7c15ULL : 0;
  for (const Key& k : s.keys) {
    h = mix64(h ^ (k.exists ? 1 : 0) ^ (k.version << 1));
    h = mix64(h ^ fnv1a64(k.value));
  }
  return static_cast<std::size_t>(h);
}

M::Output M::expect(const State& s, const Input& in, State* next) {
  *next = s;
  Output out;
  switch (in.kind) {
    case Kind::Get: {
      const Key& k = s.keys[static_cast<std::size_t>(in.key)];
      if (!k.exists) {
        out.error = kv::Error::NotFound;
        return out;
      }
      out.exists = true;
      out.value = k.value;
      out.version = k.version;
      return out;
    }
    case Kind::List:
      if (!s.group) {
        out.error = kv::Error::NotFound;
        return out;
      }
      for (int k = 0; k < kKeysMax; ++k) {
        if (s.keys[static_cast<std::size_t>(k)].exists) out.children |= 1u << k;
      }
      return out;
    case Kind::Txn: break;
  }
  for (const Compare& c : in.compares) {
    const Key& k = s.keys[static_cast<std::size_t>(c.key)];
    bool holds = false;
    switch (c.target) {
      case Target::Exists: holds = k.exists; break;
      case Target::Missing: holds = !k.exists; break;
      // On a missing node every comparison but existence fails.
      case Target::Version: holds = k.exists && k.version == c.version; break;
      case Target::Value: holds = k.exists && k.value == c.value; break;
    }
    if (!holds) {
      out.succeeded = false;
      break;
    }
  }
  const std::vector<TxnOp>& branch = out.succeeded ? in.success : in.failure;
  if (!out.succeeded && branch.empty()) {
    out.error = kv::Error::CompareFailed;
    return out;
  }
  // All or nothing: the branch runs on a copy, later operations see earlier ones.
  // A key's value may change once per transaction; a second change is an invalid request, found
  // after the operation's own checks (existence) pass.
  State after = s;
  std::uint32_t changed = 0;
  auto fail = [&out](kv::Error error) {
    out.error = error;
    out.ops.clear();
    return out;
  };
  for (const TxnOp& op : branch) {
    Key& k = after.keys[static_cast<std::size_t>(op.key)];
    OpOutput r;
    const std::uint32_t bit = 1u << op.key;
    const bool claimed = (changed & bit) != 0;
    switch (op.type) {
      case OpType::Get:
        r.exists = k.exists;
        if (k.exists) {
          r.value = k.value;
          r.version = k.version;
        }
        break;
      case OpType::Put:
        if (claimed) return fail(kv::Error::InvalidRequest);
        if (k.exists) {
          k.value = op.value;
          ++k.version;
        } else {
          k = Key{true, op.value, 0};
          after.group = true;
          r.created = true;
        }
        break;
      case OpType::Create:
        if (k.exists) return fail(kv::Error::AlreadyExists);
        if (claimed) return fail(kv::Error::InvalidRequest);
        k = Key{true, op.value, 0};
        after.group = true;
        break;
      case OpType::Delete:
        if (!k.exists) return fail(kv::Error::NotFound);
        if (claimed) return fail(kv::Error::InvalidRequest);
        k = Key{};
        break;
    }
    if (op.type != OpType::Get) changed |= bit;
    out.ops.push_back(r);
  }
  *next = after;
  return out;
}

bool M::matches(const Input& in, const Output& expected, const Output& actual) {
  if (expected.error != actual.error) return false;
  switch (in.kind) {
    case Kind::Get:
      return expected.exists == actual.exists && expected.value == actual.value &&
             expected.version == actual.version;
    case Kind::List: return expected.children == actual.children;
    case Kind::Txn: break;
  }
  if (expected.succeeded != actual.succeeded) return false;
  if (expected.error != kv::Error::Ok) return true;
  return expected.ops == actual.ops;
}

bool M::step(const State& s, const Input& in, const std::optional<Output>& out, State* next) {
  const Output expected = expect(s, in, next);
  return !out || matches(in, expected, *out);
}

std::string M::group_path(int group) { return fmt::format("/g{}", group); }

std::string M::key_path(int group, int key) { return fmt::format("/g{}/k{}", group, key); }

kv::Txn M::to_txn(int group, const Input& in) {
  kv::Txn txn;
  for (const Compare& c : in.compares) {
    std::string path = key_path(group, c.key);
    switch (c.target) {
      case Target::Exists: txn.compares.push_back(kv::Compare::exists(std::move(path))); break;
      case Target::Missing: txn.compares.push_back(kv::Compare::missing(std::move(path))); break;
      case Target::Version:
        txn.compares.push_back(kv::Compare::version(std::move(path), kv::CompareOp::Equal, c.version));
        break;
      case Target::Value:
        txn.compares.push_back(kv::Compare::value_is(std::move(path), kv::CompareOp::Equal, c.value));
        break;
    }
  }
  auto ops = [group](const std::vector<TxnOp>& from) {
    std::vector<kv::Op> to;
    for (const TxnOp& op : from) {
      std::string path = key_path(group, op.key);
      switch (op.type) {
        case OpType::Get: to.push_back(kv::Op::get(std::move(path))); break;
        case OpType::Put: {
          kv::Op put = kv::Op::put(std::move(path), op.value);
          put.parents = true;
          to.push_back(std::move(put));
          break;
        }
        case OpType::Create: {
          kv::Op create = kv::Op::create(std::move(path), op.value);
          create.parents = true;
          to.push_back(std::move(create));
          break;
        }
        case OpType::Delete: to.push_back(kv::Op::remove(std::move(path))); break;
      }
    }
    return to;
  };
  txn.success = ops(in.success);
  txn.failure = ops(in.failure);
  return txn;
}

M::Output M::from_result(const Input& in, const kv::Result& result) {
  (void)in;
  Output out;
  out.error = result.status.error;
  out.succeeded = result.succeeded;
  if (!result.ok()) return out;
  for (const kv::OpResult& r : result.ops) {
    OpOutput o;
    if (r.type == kv::OpType::Get && r.node) {
      o.exists = true;
      o.value = r.node->value;
      o.version = r.node->version;
    }
    o.created = r.type == kv::OpType::Put && r.created;
    out.ops.push_back(o);
  }
  return out;
}

M::Output M::from_get(const kv::ReadResult<kv::Node>& read) {
  Output out;
  out.error = read.status.error;
  if (read.ok()) {
    out.exists = true;
    out.value = read.value.value;
    out.version = read.value.version;
  }
  return out;
}

M::Output M::from_list(const kv::ReadResult<kv::ListPage>& read) {
  Output out;
  out.error = read.status.error;
  if (!read.ok()) return out;
  for (const std::string& name : read.value.names) {
    int key = -1;
    for (int k = 0; k < kKeysMax; ++k) {
      if (name == fmt::format("k{}", k)) key = k;
    }
    // A name the model does not know makes the output match nothing.
    out.children |= key >= 0 ? (1u << key) : (1u << 31);
  }
  if (read.value.more) out.children |= 1u << 30;
  return out;
}

namespace {

std::string describe_ops(const std::vector<M::TxnOp>& ops) {
  std::string out;
  for (const M::TxnOp& op : ops) {
    if (!out.empty()) out += ", ";
    switch (op.type) {
      case M::OpType::Get: out += fmt::format("get k{}", op.key); break;
      case M::OpType::Put: out += fmt::format("put k{}={}", op.key, op.value); break;
      case M::OpType::Create: out += fmt::format("create k{}={}", op.key, op.value); break;
      case M::OpType::Delete: out += fmt::format("delete k{}", op.key); break;
    }
  }
  return out;
}

}  // namespace

std::string M::describe(const Input& in) {
  switch (in.kind) {
    case Kind::Get: return fmt::format("get k{}", in.key);
    case Kind::List: return "list";
    case Kind::Txn: break;
  }
  if (in.compares.empty() && in.failure.empty()) return describe_ops(in.success);
  std::string cmp;
  for (const Compare& c : in.compares) {
    if (!cmp.empty()) cmp += " && ";
    switch (c.target) {
      case Target::Exists: cmp += fmt::format("k{} exists", c.key); break;
      case Target::Missing: cmp += fmt::format("k{} missing", c.key); break;
      case Target::Version: cmp += fmt::format("k{}.version=={}", c.key, c.version); break;
      case Target::Value: cmp += fmt::format("k{}.value=={}", c.key, c.value); break;
    }
  }
  return fmt::format("if {} then [{}] else [{}]", cmp, describe_ops(in.success), describe_ops(in.failure));
}

std::string M::describe(const Input& in, const Output& out) {
  std::string result;
  if (out.error != kv::Error::Ok) {
    result = kv::to_string(out.error);
  } else {
    switch (in.kind) {
      case Kind::Get: result = fmt::format("{} version {}", out.value, out.version); break;
      case Kind::List: {
        std::string names;
        for (int k = 0; k < 32; ++k) {
          if (out.children & (1u << k)) names += (names.empty() ? "" : ",") + fmt::format("k{}", k);
        }
        result = "[" + names + "]";
        break;
      }
      case Kind::Txn: {
        result = out.succeeded ? "ok" : "ok (else)";
        for (const OpOutput& o : out.ops) {
          if (o.exists) result += fmt::format("; got {} version {}", o.value, o.version);
          if (o.created) result += "; created";
        }
        break;
      }
    }
  }
  return describe(in) + " -> " + result;
}

}  // namespace coord::sim
