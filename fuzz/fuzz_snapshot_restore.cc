// Snapshot restore from damaged bytes (kv::StateMachine::restore, kv/snapshot.h), on both
// backends.
//
// Input: one mode byte, then the snapshot bytes (the seed corpus holds valid snapshots, which
// the fuzzer damages). With the mode's low bit set the harness rewrites the trailing checksum to
// match the damaged bytes, so that the checks behind the checksum (framing, order, rows, the
// header against the meta rows, the lease index) are reached too: that is a snapshot from a
// buggy or hostile writer rather than a damaged file.
//
// Checked, on MemoryStorage and on LMDB, each starting from the same small state:
//   - restore either refuses with InvalidRequest and leaves the state exactly as it was, or
//     succeeds; it never crashes, trips an assertion or throws;
//   - both backends decide alike, and end in the same state;
//   - after a successful restore the state's own snapshot is the restored bytes, byte for
//     byte (for a format 3 snapshot, converted on the way in: a current one that restores to
//     itself), and reads work: every node of the tree can be got, listed and ranged at the current
//     revision, and the leases listed.
// Not checked: reads of the history and writes after restoring a snapshot whose checksum was
// rewritten. The snapshot checks rows one by one (and the lease index against the nodes), not
// that the history, the change log and the tree agree with each other, so such a snapshot can
// trip the read-back assertions there (fuzz/README.md, "Known gaps").
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "fuzz/kv_state.h"
#include "kv/layout.h"
#include "kv/lmdb_storage.h"
#include "kv/memory_storage.h"
#include "kv/snapshot.h"
#include "kv/state_machine.h"

namespace {

using namespace coord;

void fix_checksum(std::string& bytes) {
  if (bytes.size() < 8) return;
  const std::uint64_t sum = kv::snapshot_checksum(std::string_view(bytes).substr(0, bytes.size() - 8));
  for (int i = 0; i < 8; ++i) bytes[bytes.size() - 8 + i] = static_cast<char>(sum >> (56 - 8 * i));
}

// One LMDB environment for the whole run (opening one per input would dominate), in a temporary
// directory removed at exit.
struct Lmdb {
  Lmdb() {
    std::string pattern = (std::filesystem::temp_directory_path() / "coord-fuzz-XXXXXX").string();
    FUZZ_CHECK(::mkdtemp(pattern.data()) != nullptr, "no temporary directory");
    directory = pattern;
    kv::LmdbOptions options;
    options.directory = directory + "/kv";
    options.map_bytes = std::size_t{256} << 20;
    options.sync = false;
    storage = std::make_unique<kv::LmdbStorage>(options);
    sm = std::make_unique<kv::StateMachine>(*storage);
  }
  ~Lmdb() {
    sm.reset();
    storage.reset();
    std::error_code ignored;
    std::filesystem::remove_all(directory, ignored);
  }
  std::string directory;
  std::unique_ptr<kv::LmdbStorage> storage;
  std::unique_ptr<kv::StateMachine> sm;
};

Lmdb& lmdb() {
  static Lmdb instance;
  return instance;
}

// Reads of everything in the restored tree, at the current revision.
void check_reads(const kv::StateMachine& sm) {
  kv::RangeOptions options;
  options.keys_only = false;
  std::size_t pages = 0;
  while (pages++ < 64) {
    const auto page = sm.range("/", options);
    FUZZ_CHECK(page.ok(), "range over a restored tree failed: %s", page.status.message.c_str());
    for (const kv::KeyValue& kv : page.value.nodes) {
      const auto node = sm.get(kv.path);
      FUZZ_CHECK(node.ok() && node.value == kv.node, "get disagrees with range at %s", kv.path.c_str());
      FUZZ_CHECK(sm.exists(kv.path).value, "a ranged node does not exist");
      const auto children = sm.list(kv.path);
      FUZZ_CHECK(children.ok(), "list of a restored node failed: %s", children.status.message.c_str());
    }
    if (!page.value.more || page.value.nodes.empty()) break;
    options.start_after = page.value.nodes.back().path;
  }
  const auto leases = sm.leases();
  FUZZ_CHECK(leases.ok(), "leases of a restored state: %s", leases.status.message.c_str());
  for (const kv::Lease& lease : leases.value) {
    FUZZ_CHECK(sm.lease_ttl(lease.id).ok(), "a listed lease is not found");
  }
}

// Restores `bytes` into `sm`, which holds `before`; checks the outcome and returns whether it
// was accepted.
bool restore(kv::StateMachine& sm, const std::string& before, const std::string& bytes) {
  kv::Status status;
  try {
    status = sm.restore(bytes);
  } catch (const kv::StorageError& e) {
    FUZZ_CHECK(false, "restore threw: %s", e.what());
  }
  if (!status.ok()) {
    FUZZ_CHECK(status.error == kv::Error::InvalidRequest, "restore refused with error %u",
               static_cast<unsigned>(status.error));
    FUZZ_CHECK(sm.snapshot() == before, "a refused restore changed the state");
    return false;
  }
  const std::string after = sm.snapshot();
  if (kv::parse_snapshot(bytes).format == kv::layout_format) {
    FUZZ_CHECK(after == bytes, "the restored state's snapshot differs from the restored bytes");
  } else {
    // A format 3 snapshot, converted on the way in: the state's own snapshot is in the current
    // format, and restoring that gives the same state again.
    kv::MemoryStorage storage;
    kv::StateMachine again(storage);
    FUZZ_CHECK(again.restore(after).ok(), "the snapshot of a converted state does not restore");
    FUZZ_CHECK(again.snapshot() == after, "a converted state's snapshot does not restore to itself");
  }
  check_reads(sm);
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((data[0] & 1) != 0) fix_checksum(bytes);
  const std::string& base = fuzz::base_snapshot();

  kv::MemoryStorage storage;
  kv::StateMachine memory(storage);
  FUZZ_CHECK(memory.restore(base).ok(), "the base state does not restore");
  const bool memory_ok = restore(memory, base, bytes);

  kv::StateMachine& on_disk = *lmdb().sm;
  FUZZ_CHECK(on_disk.restore(base).ok(), "the base state does not restore on LMDB");
  const bool lmdb_ok = restore(on_disk, base, bytes);
  FUZZ_CHECK(memory_ok == lmdb_ok, "the backends disagree: memory %s, LMDB %s", memory_ok ? "restored" : "refused",
             lmdb_ok ? "restored" : "refused");
  FUZZ_CHECK(memory.snapshot() == on_disk.snapshot(), "the backends ended in different states");
  return 0;
}
