#include "sim/hash_sm.h"

#include "sim/rng.h"

namespace coord::sim {

namespace {

inline constexpr std::size_t kHeaderBytes = 24;

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t get_u64(std::string_view in, std::size_t at) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) {
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[at + static_cast<std::size_t>(i)])) << (8 * i);
  }
  return v;
}

// The filler for a state: its length and bytes follow from the header alone.
std::string filler(const StateDigest& s) {
  std::uint64_t state = mix64(s.hash ^ mix64(s.index) ^ s.count);
  const std::size_t length = static_cast<std::size_t>(state % (kSnapshotFillerBytesMax + 1));
  std::string out;
  out.reserve(length);
  while (out.size() < length) {
    const std::uint64_t word = splitmix64(state);
    for (int i = 0; i < 8 && out.size() < length; ++i) out.push_back(static_cast<char>((word >> (8 * i)) & 0xff));
  }
  return out;
}

}  // namespace

EntryDigest digest_of(const raft::Entry& entry) {
  const char type = static_cast<char>(entry.type);
  return EntryDigest{entry.term, fnv1a64(entry.data, fnv1a64(std::string_view(&type, 1)))};
}

void HashStateMachine::apply(const raft::Entry& entry) {
  state_.index = entry.index;
  if (entry.type != raft::EntryType::Normal || entry.data.empty()) return;
  ++state_.count;
  state_.hash = mix64(state_.hash ^ fnv1a64(entry.data));
}

std::string HashStateMachine::snapshot() const {
  std::string out;
  put_u64(out, state_.index);
  put_u64(out, state_.count);
  put_u64(out, state_.hash);
  out += filler(state_);
  return out;
}

std::optional<HashStateMachine> HashStateMachine::restore(std::string_view data) {
  if (data.size() < kHeaderBytes) return std::nullopt;
  HashStateMachine sm;
  sm.state_.index = get_u64(data, 0);
  sm.state_.count = get_u64(data, 8);
  sm.state_.hash = get_u64(data, 16);
  if (data.substr(kHeaderBytes) != filler(sm.state_)) return std::nullopt;
  return sm;
}

}  // namespace coord::sim
