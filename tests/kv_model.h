// A deliberately simple reference model of the key-value state machine, for the model-based
// test. It shares no logic with kv/: it keeps a full copy of the tree for every revision, counts
// children by scanning, validates paths only over the alphabet the generator uses, and finds
// watch events by diffing consecutive trees, and finds a lease's keys by scanning the tree. Slow
// and obviously right is the point.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kv/command.h"
#include "kv/event.h"
#include "kv/limits.h"
#include "kv/reads.h"
#include "kv/watch.h"

namespace kvmodel {

using namespace coord::kv;

struct MNode {
  std::string value;
  Revision create = 0;
  Revision mod = 0;
  std::uint64_t version = 0;
  std::uint64_t cversion = 0;
  LeaseId lease = 0;
  std::uint64_t seq = 0;
};
using Tree = std::map<std::string, MNode>;

inline std::string parent(const std::string& p) {
  const auto slash = p.rfind('/');
  return slash == 0 ? "/" : p.substr(0, slash);
}
inline std::string prefix_of(const std::string& p) { return p == "/" ? "/" : p + "/"; }
inline bool is_child(const std::string& par, const std::string& p) {
  return p != "/" && parent(p) == par;
}
inline bool under(const std::string& root, const std::string& p) {
  return root == "/" || p == root || p.rfind(prefix_of(root), 0) == 0;
}

// Valid over the generator's alphabet: ASCII, plus "é" as the only multi-byte character.
inline bool valid_path(const std::string& p) {
  if (p == "/") return true;
  if (p.empty() || p[0] != '/' || p.size() > 480 || p.back() == '/') return false;
  std::size_t start = 1;
  while (start <= p.size()) {
    std::size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    const std::string seg = p.substr(start, end - start);
    if (seg.empty() || seg.size() > 255 || seg == "." || seg == "..") return false;
    for (std::size_t i = 0; i < seg.size(); ++i) {
      const auto c = static_cast<unsigned char>(seg[i]);
      if (c < 0x20 || c == 0x7f) return false;
      if (c >= 0x80) {
        if (seg.compare(i, 2, "\xc3\xa9") != 0) return false;
        ++i;
      }
    }
    start = end + 1;
  }
  return true;
}

inline Node to_node(const Tree& t, const std::string& p) {
  const MNode& m = t.at(p);
  std::uint64_t children = 0;
  for (const auto& [k, v] : t) {
    if (is_child(p, k)) ++children;
  }
  return Node{m.value, m.create, m.mod, m.version, children, m.cversion, m.lease};
}

inline Status err(Error e, Revision compact = 0) {
  Status s;
  s.error = e;
  s.compact_revision = compact;
  return s;
}

class Model {
 public:
  explicit Model(const Limits& limits) : limits_(limits) {
    Tree t;
    t["/"] = MNode{};
    history_.push_back(t);
  }

  Revision revision() const { return history_.size() - 1; }
  Revision compact_revision() const { return compact_; }
  Index applied() const { return applied_; }
  std::size_t sessions() const { return sessions_.size(); }
  std::vector<LeaseId> lease_ids() const {
    std::vector<LeaseId> ids;
    for (const auto& [id, l] : leases_) ids.push_back(id);
    return ids;
  }
  // The lowest id a grant may name: ids are never reused, so above every id granted so far.
  LeaseId lease_free() const { return used_.empty() ? 1 : *used_.rbegin() + 1; }
  std::uint64_t keepalives(LeaseId id) const {
    const auto it = leases_.find(id);
    return it == leases_.end() ? 0 : it->second.keepalives;
  }
  const Tree& tree(Revision r) const { return history_.at(r); }

  Result noop(Index index) {
    applied_ = index;
    return plain({});
  }
  Result refuse(Index index, Error e) {
    applied_ = index;
    return plain(err(e));
  }

  Result apply(Index index, const Command& c) {
    applied_ = index;
    if (c.session_id != 0) {
      auto it = sessions_.find(c.session_id);
      if (it != sessions_.end()) {
        if (c.sequence < it->second.seq) return plain(err(Error::StaleSequence));
        if (c.sequence == it->second.seq) {
          it->second.index = index;
          return it->second.result;
        }
      }
    }
    Result r;
    if (const auto* t = std::get_if<Txn>(&c.body)) {
      r = txn(*t);
    } else if (const auto* k = std::get_if<Compact>(&c.body)) {
      r = compact(*k);
    } else if (const auto* g = std::get_if<LeaseGrant>(&c.body)) {
      r = grant(*g);
    } else if (const auto* v = std::get_if<LeaseRevoke>(&c.body)) {
      r = end_lease(v->id, std::nullopt);
    } else if (const auto* a = std::get_if<LeaseKeepAlive>(&c.body)) {
      r = keepalive(*a);
    } else {
      const auto& e = std::get<LeaseExpire>(c.body);
      r = end_lease(e.id, e.keepalives);
    }
    if (c.session_id != 0) {
      sessions_[c.session_id] = Session{c.sequence, index, r};
      while (sessions_.size() > limits_.sessions_max) {
        auto oldest = sessions_.begin();
        for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
          if (it->second.index < oldest->second.index) oldest = it;
        }
        sessions_.erase(oldest);
      }
    }
    return r;
  }

  // Reads: which tree revision `rev` means, or the error.
  Status resolve(Revision rev, Revision& at) const {
    if (rev == 0 || rev == revision()) {
      at = revision();
      return {};
    }
    if (rev > revision()) return err(Error::FutureRevision);
    if (rev < compact_) return err(Error::Compacted, compact_);
    at = rev;
    return {};
  }

  ReadResult<Node> get(const std::string& p, Revision rev) const {
    ReadResult<Node> out;
    if (!valid_path(p)) return with(out, err(Error::InvalidPath));
    if (out.status = resolve(rev, out.revision); !out.ok()) return zero(out);
    const Tree& t = tree(out.revision);
    if (!t.count(p)) return with(out, err(Error::NotFound));
    out.value = to_node(t, p);
    return out;
  }

  ReadResult<bool> exists(const std::string& p, Revision rev) const {
    ReadResult<bool> out;
    if (!valid_path(p)) return with(out, err(Error::InvalidPath));
    if (out.status = resolve(rev, out.revision); !out.ok()) return zero(out);
    out.value = tree(out.revision).count(p) > 0;
    return out;
  }

  ReadResult<ListPage> list(const std::string& p, const ListOptions& o) const {
    ReadResult<ListPage> out;
    if (!valid_path(p)) return with(out, err(Error::InvalidPath));
    if (out.status = resolve(o.revision, out.revision); !out.ok()) return zero(out);
    const Tree& t = tree(out.revision);
    if (!t.count(p)) return with(out, err(Error::NotFound));
    const std::size_t limit =
        o.limit == 0 || o.limit > limits_.list_page_max ? limits_.list_page_max : o.limit;
    std::vector<std::string> names;
    for (const auto& [k, v] : t) {
      if (is_child(p, k)) names.push_back(k.substr(prefix_of(p).size()));
    }
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) {
      if (!o.start_after.empty() && n <= o.start_after) continue;
      if (out.value.names.size() == limit) {
        out.value.more = true;
        break;
      }
      out.value.names.push_back(n);
    }
    return out;
  }

  ReadResult<RangePage> range(const std::string& p, const RangeOptions& o) const {
    ReadResult<RangePage> out;
    if (!valid_path(p)) return with(out, err(Error::InvalidPath));
    if (out.status = resolve(o.revision, out.revision); !out.ok()) return zero(out);
    const Tree& t = tree(out.revision);
    if (!t.count(p)) return with(out, err(Error::NotFound));
    const std::size_t limit = o.limit == 0 || o.limit > limits_.range_page_max
                                  ? limits_.range_page_max
                                  : o.limit;
    std::size_t bytes = 0;
    for (const auto& [k, v] : t) {
      if (!under(p, k) || (!o.start_after.empty() && k <= o.start_after)) continue;
      Node n = to_node(t, k);
      if (o.keys_only) n.value.clear();
      if (out.value.nodes.size() == limit ||
          (!out.value.nodes.empty() && bytes + n.value.size() > limits_.range_page_bytes_max)) {
        out.value.more = true;
        break;
      }
      bytes += n.value.size();
      out.value.nodes.push_back(KeyValue{k, n});
    }
    return out;
  }

  ReadResult<LeaseInfo> lease_ttl(LeaseId id) const {
    ReadResult<LeaseInfo> out;
    const auto it = leases_.find(id);
    if (it == leases_.end()) return with(out, err(Error::LeaseNotFound));
    out.revision = revision();
    out.value.lease = Lease{id, it->second.ttl, it->second.keepalives};
    out.value.keys = keys_of(tree(revision()), id);
    return out;
  }

  ReadResult<std::vector<Lease>> leases() const {
    ReadResult<std::vector<Lease>> out;
    out.revision = revision();
    for (const auto& [id, l] : leases_) out.value.push_back(Lease{id, l.ttl, l.keepalives});
    return out;
  }

  // The events of revision r: a diff of the trees before and after it.
  std::vector<Event> events(Revision r) const {
    std::vector<Event> out;
    const Tree& before = tree(r - 1);
    const Tree& after = tree(r);
    std::set<std::string> keys;
    for (const auto& [k, v] : before) keys.insert(k);
    for (const auto& [k, v] : after) keys.insert(k);
    for (const std::string& k : keys) {
      const bool was = before.count(k) > 0, is = after.count(k) > 0;
      Event e;
      e.path = k;
      e.revision = r;
      if (!was && is) {
        e.type = EventType::Created;
        e.node = to_node(after, k);
      } else if (was && !is) {
        e.type = EventType::Deleted;
        e.prev = to_node(before, k);
      } else if (after.at(k).mod == r) {
        e.type = EventType::Updated;
        e.node = to_node(after, k);
        e.prev = to_node(before, k);
      } else {
        continue;
      }
      out.push_back(e);
    }
    return out;
  }

 private:
  struct Session {
    std::uint64_t seq;
    Index index;
    Result result;
  };
  struct MLease {
    std::uint64_t ttl = 0;
    std::uint64_t keepalives = 0;
  };

  // The nodes of `t` attached to `lease`, in path order.
  static std::vector<std::string> keys_of(const Tree& t, LeaseId lease) {
    std::vector<std::string> keys;
    for (const auto& [k, v] : t) {
      if (v.lease == lease) keys.push_back(k);
    }
    return keys;
  }

  Result grant(const LeaseGrant& g) {
    if (g.ttl_ms == 0 || g.id >= (1ull << 63)) return plain(err(Error::InvalidRequest));
    if (g.ttl_ms > limits_.lease_ttl_ms_max) return plain(err(Error::TooLarge));
    if (g.id != 0 && g.id < lease_free()) return plain(err(Error::LeaseExists));
    if (leases_.size() >= limits_.leases_max) return plain(err(Error::TooManyLeases));
    const LeaseId id = g.id != 0 ? g.id : lease_free();
    if (id >= (1ull << 63)) return plain(err(Error::TooManyLeases));
    used_.insert(id);
    leases_[id] = MLease{g.ttl_ms, 0};
    Result r = plain({});
    r.lease.lease = Lease{id, g.ttl_ms, 0};
    return r;
  }

  Result keepalive(const LeaseKeepAlive& a) {
    const auto it = leases_.find(a.id);
    if (it == leases_.end()) return plain(err(Error::LeaseNotFound));
    it->second.keepalives += 1;
    Result r = plain({});
    r.lease.lease = Lease{a.id, it->second.ttl, it->second.keepalives};
    return r;
  }

  Result end_lease(LeaseId id, std::optional<std::uint64_t> keepalives) {
    const auto it = leases_.find(id);
    if (it == leases_.end()) return plain(err(Error::LeaseNotFound));
    if (keepalives && *keepalives != it->second.keepalives) {
      return plain(err(Error::LeaseRenewed));
    }
    Result r = plain({});
    r.lease.lease = Lease{id, it->second.ttl, it->second.keepalives};
    r.lease.deleted = keys_of(tree(revision()), id);
    leases_.erase(it);
    if (r.lease.deleted.empty()) return r;
    Tree t = tree(revision());
    for (const std::string& k : r.lease.deleted) {
      t.erase(k);
      t[parent(k)].cversion += 1;
    }
    history_.push_back(std::move(t));
    r.revision = revision();
    return r;
  }

  template <typename R>
  static R with(R r, Status s) {
    r.status = s;
    r.revision = 0;
    return r;
  }
  template <typename R>
  static R zero(R r) {
    r.revision = 0;
    return r;
  }

  Result plain(Status s) const {
    Result r;
    r.status = s;
    r.revision = revision();
    return r;
  }

  Result compact(const Compact& c) {
    if (c.revision == 0) return plain(err(Error::InvalidRequest));
    if (c.revision > revision()) return plain(err(Error::FutureRevision));
    if (c.revision <= compact_) return plain(err(Error::Compacted, compact_));
    compact_ = c.revision;
    return plain({});
  }

  Status check_op(const Op& op) const {
    const bool value_fields = !op.value.empty() || op.lease != 0 || op.parents;
    if (op.type == OpType::Get && (value_fields || op.sequential || op.recursive)) {
      return err(Error::InvalidRequest);
    }
    if (op.type == OpType::Put && (op.sequential || op.recursive))
      return err(Error::InvalidRequest);
    if (op.type == OpType::Create && op.recursive) return err(Error::InvalidRequest);
    if (op.type == OpType::Delete && (value_fields || op.sequential)) {
      return err(Error::InvalidRequest);
    }
    const bool seq = op.type == OpType::Create && op.sequential;
    if (!valid_path(seq ? op.path + "0000000000" : op.path)) return err(Error::InvalidPath);
    if (op.type == OpType::Delete && op.path == "/") return err(Error::InvalidRequest);
    if (op.lease != 0 && !seq && op.path == "/") return err(Error::InvalidRequest);
    if (op.value.size() > limits_.value_bytes_max) return err(Error::TooLarge);
    return {};
  }

  Status check(const Txn& t) const {
    if (t.compares.size() > limits_.txn_compares_max) return err(Error::TooLarge);
    for (const Compare& c : t.compares) {
      if (!valid_path(c.path)) return err(Error::InvalidPath);
      if (c.value.size() > limits_.value_bytes_max) return err(Error::TooLarge);
      if (c.target != CompareTarget::Value && !c.value.empty()) return err(Error::InvalidRequest);
      if (c.target == CompareTarget::Value && c.number != 0) return err(Error::InvalidRequest);
      if (c.target == CompareTarget::Exists && c.number > 1) return err(Error::InvalidRequest);
    }
    for (const auto* branch : {&t.success, &t.failure}) {
      if (branch->size() > limits_.txn_ops_max) return err(Error::TooLarge);
      for (const Op& op : *branch) {
        if (Status s = check_op(op); !s.ok()) return s;
      }
    }
    return {};
  }

  static bool holds(CompareOp op, int c) {
    switch (op) {
      case CompareOp::Equal: return c == 0;
      case CompareOp::NotEqual: return c != 0;
      case CompareOp::Less: return c < 0;
      case CompareOp::Greater: return c > 0;
    }
    return false;
  }
  template <typename T>
  static int cmp(const T& a, const T& b) {
    return a < b ? -1 : (b < a ? 1 : 0);
  }

  bool compare(const Tree& t, const Compare& c) const {
    const bool present = t.count(c.path) > 0;
    if (c.target == CompareTarget::Exists) {
      return holds(c.op, cmp<std::uint64_t>(present ? 1 : 0, c.number));
    }
    if (!present) return false;
    const MNode& n = t.at(c.path);
    switch (c.target) {
      case CompareTarget::Exists: return false;
      case CompareTarget::Version: return holds(c.op, cmp(n.version, c.number));
      case CompareTarget::CreateRevision: return holds(c.op, cmp(n.create, c.number));
      case CompareTarget::ModRevision: return holds(c.op, cmp(n.mod, c.number));
      case CompareTarget::Value: return holds(c.op, cmp(n.value, c.value));
    }
    return false;
  }

  // One transaction's work on a copy of the tree.
  struct Work {
    Tree t;
    std::set<std::string> claimed;
    std::size_t read_bytes = 0;
    Revision rev = 0;
  };

  static bool claim(Work& w, const std::string& p) { return w.claimed.insert(p).second; }

  // A key joining `lease` in the work tree: the lease must exist and have room.
  Status attach(const Work& w, LeaseId lease) const {
    if (lease == 0) return {};
    if (!leases_.count(lease)) return err(Error::LeaseNotFound);
    if (keys_of(w.t, lease).size() >= limits_.lease_keys_max) return err(Error::TooLarge);
    return {};
  }

  Status make(Work& w, const std::string& p, const std::string& value, LeaseId lease) const {
    if (w.t.at(parent(p)).lease != 0) return err(Error::NoChildrenForEphemerals);
    w.t[parent(p)].cversion += 1;
    if (!claim(w, p)) return err(Error::InvalidRequest);
    if (Status s = attach(w, lease); !s.ok()) return s;
    MNode n;
    n.value = value;
    n.create = n.mod = w.rev;
    n.lease = lease;
    w.t[p] = n;
    return {};
  }

  Status parents(Work& w, const std::string& p, bool create) const {
    std::vector<std::string> missing;
    for (std::string q = parent(p); !w.t.count(q); q = parent(q)) {
      if (!create) return err(Error::NotFound);
      missing.push_back(q);
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
      if (Status s = make(w, *it, "", 0); !s.ok()) return s;
    }
    return {};
  }

  Status run(Work& w, const Op& op, OpResult& out) const {
    out.type = op.type;
    out.path = op.path;
    switch (op.type) {
      case OpType::Get:
        if (w.t.count(op.path)) {
          w.read_bytes += w.t.at(op.path).value.size();
          if (w.read_bytes > limits_.txn_read_bytes_max) return err(Error::TooLarge);
          out.node = to_node(w.t, op.path);
        }
        return {};
      case OpType::Put:
        if (!w.t.count(op.path)) {
          if (Status s = parents(w, op.path, op.parents); !s.ok()) return s;
          out.created = true;
          return make(w, op.path, op.value, op.lease);
        } else {
          if (!claim(w, op.path)) return err(Error::InvalidRequest);
          bool has_children = false;
          for (const auto& [k, v] : w.t) has_children = has_children || is_child(op.path, k);
          if (op.lease != 0 && has_children) return err(Error::NoChildrenForEphemerals);
          if (op.lease != w.t.at(op.path).lease) {
            if (Status s = attach(w, op.lease); !s.ok()) return s;
          }
          MNode& n = w.t[op.path];
          n.value = op.value;
          n.mod = w.rev;
          n.version += 1;
          n.lease = op.lease;
          return {};
        }
      case OpType::Create: {
        std::string p = op.path;
        if (op.sequential) {
          const std::string probe = op.path + "0000000000";
          if (Status s = parents(w, probe, op.parents); !s.ok()) return s;
          const std::uint64_t counter = w.t[parent(probe)].seq++;
          std::string digits = std::to_string(counter);
          p = op.path + std::string(10 - digits.size(), '0') + digits;
          out.path = p;
        }
        if (w.t.count(p)) return err(Error::AlreadyExists);
        if (Status s = parents(w, p, op.parents); !s.ok()) return s;
        return make(w, p, op.value, op.lease);
      }
      case OpType::Delete: {
        if (!w.t.count(op.path)) return err(Error::NotFound);
        std::vector<std::string> doomed;
        for (const auto& [k, v] : w.t) {
          if (under(op.path, k)) doomed.push_back(k);
        }
        if (doomed.size() > 1 && !op.recursive) return err(Error::NotEmpty);
        if (doomed.size() > limits_.delete_nodes_max) return err(Error::TooLarge);
        for (const std::string& k : doomed) {
          if (!claim(w, k)) return err(Error::InvalidRequest);
          w.t.erase(k);
        }
        w.t[parent(op.path)].cversion += 1;
        out.deleted = doomed.size();
        return {};
      }
    }
    return err(Error::InvalidRequest);
  }

  Result txn(const Txn& t) {
    Result r = plain(check(t));
    if (!r.ok()) return r;
    for (std::size_t i = 0; i < t.compares.size(); ++i) {
      if (!compare(tree(revision()), t.compares[i])) {
        r.succeeded = false;
        r.failed_compare = static_cast<std::int32_t>(i);
        break;
      }
    }
    const std::vector<Op>& branch = r.succeeded ? t.success : t.failure;
    if (!r.succeeded && branch.empty()) {
      r.status = err(Error::CompareFailed);
      return r;
    }
    Work w{tree(revision()), {}, 0, revision() + 1};
    bool wrote = false;
    for (std::size_t i = 0; i < branch.size(); ++i) {
      OpResult out;
      if (Status s = run(w, branch[i], out); !s.ok()) {
        r.status = s;
        r.failed_op = static_cast<std::int32_t>(i);
        r.ops.clear();
        return r;
      }
      wrote = wrote || branch[i].type != OpType::Get;
      r.ops.push_back(out);
    }
    if (wrote) {
      history_.push_back(std::move(w.t));
      r.revision = revision();
    }
    return r;
  }

  Limits limits_;
  std::vector<Tree> history_;
  Revision compact_ = 0;
  Index applied_ = 0;
  std::map<SessionId, Session> sessions_;
  std::map<LeaseId, MLease> leases_;
  std::set<LeaseId> used_;  // every lease id ever granted
};

inline bool matches(const WatchFilter& f, const std::string& p) {
  switch (f.kind) {
    case WatchKind::Key: return p == f.path;
    case WatchKind::Subtree: return under(f.path, p);
    case WatchKind::Children: return is_child(f.path, p);
  }
  return false;
}

}  // namespace kvmodel
