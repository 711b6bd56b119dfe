// The other half of fencing: what a protected resource (a storage service, a file, a database
// table) runs before accepting an operation from a lock holder.
//
// A holder sends its fencing token with every operation. The Guard accepts the operation only if
// the token is at least the highest token it has accepted for that resource, and remembers a new
// highest *durably, before* accepting. A holder whose lock was taken over (it paused, its lease
// expired, someone else got a greater token and used it) is then refused, however convinced it
// is that it still holds the lock: tokens strictly increase across successive holders (they are
// create revisions, fencing/fenced_txn.h), and the resource has seen the greater one.
//
// Equal tokens are accepted: a holder makes many operations with one token. Token 0 is never
// issued and always refused.
//
// The Guard is deterministic and does no I/O itself; durability is the GuardStore's job. Not
// thread-safe, and check() and the operation it admits must not interleave with another
// check() for the same resource: the resource serializes them (one thread, or its own lock).
// One Guard per store: it caches what it read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "fencing/fenced_txn.h"

namespace coord::fencing {

// Resource names are at most this long (a store may use them in file names).
inline constexpr std::size_t guard_resource_bytes_max = 100;
// Resources whose highest token a Guard keeps in memory; past it the cache starts over (and
// reads the store again).
inline constexpr std::size_t guard_cached_resources_max = 4'096;

struct StoreStatus {
  bool ok = true;
  std::string error;
};

// Where a Guard remembers the highest token it accepted per resource. save() must not return
// until the token would survive a crash of the resource's process (or machine, for a durable
// store); a store that can't promise that must say so and return an error.
class GuardStore {
 public:
  virtual ~GuardStore() = default;
  // The highest token saved for `resource`, 0 when none was.
  virtual StoreStatus load(std::string_view resource, Token& highest) = 0;
  virtual StoreStatus save(std::string_view resource, Token highest) = 0;
};

// Survives the Guard, not the process: for tests, the simulator, and resources that are
// themselves in memory.
class MemoryGuardStore final : public GuardStore {
 public:
  StoreStatus load(std::string_view resource, Token& highest) override;
  StoreStatus save(std::string_view resource, Token highest) override;

  // Makes the next save() fail (to test that a token not remembered is not accepted).
  void fail_next_save(std::string error) { fail_next_save_ = std::move(error); }
  std::size_t saves() const { return saves_; }

 private:
  std::map<std::string, Token, std::less<>> highest_;
  std::string fail_next_save_;
  std::size_t saves_ = 0;
};

enum class Verdict : std::uint8_t {
  Accepted = 0,
  Stale = 1,         // below the highest accepted: a newer holder exists
  Invalid = 2,       // token 0, or a resource name out of bounds
  StoreFailed = 3,   // the store could not read or remember: refused, to stay safe
};

const char* to_string(Verdict verdict);

struct GuardDecision {
  Verdict verdict = Verdict::Accepted;
  Token highest = 0;  // the highest accepted token after this check (when known)
  std::string error;  // why, unless accepted

  bool accepted() const { return verdict == Verdict::Accepted; }
};

class Guard {
 public:
  explicit Guard(GuardStore& store) : store_(store) {}

  // Accepts `token` for `resource` when it is at least the highest accepted so far; a greater
  // one is saved to the store first, and refused if that fails.
  GuardDecision check(std::string_view resource, Token token);

  // The highest accepted token (0 when none), from the store if not cached.
  GuardDecision highest(std::string_view resource);

 private:
  GuardStore& store_;
  std::map<std::string, Token, std::less<>> cache_;
};

}  // namespace coord::fencing
