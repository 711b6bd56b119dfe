// What the WAL's tests share for handling its files: a scratch directory, reading and
// overwriting bytes of a segment, listing segments, and finding records with the store's own
// framing (so that a test can damage exactly one record).
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "storage/wal_records.h"
#include "storage/wal_segment.h"

namespace coordtest {

// A directory under /tmp named after `prefix`, removed with everything in it at the end; log()
// is where a test puts its store.
struct ScratchDir {
  explicit ScratchDir(const std::string& prefix = "coord-wal-test") {
    std::string name = "/tmp/" + prefix + "-XXXXXX";
    REQUIRE(::mkdtemp(name.data()) != nullptr);
    root = name;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::string log() const { return root + "/raft"; }
  std::string root;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void overwrite(const std::string& path, std::uint64_t offset, const std::string& bytes) {
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The segment files of a store's directory, oldest first.
inline std::vector<std::string> segment_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (coord::storage::parse_wal_segment_name(e.path().filename().string())) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Offsets and sizes of the records in a segment file, read with the store's own framing.
inline std::vector<std::pair<std::uint64_t, std::uint64_t>> records_of(const std::string& path) {
  const std::string bytes = slurp(path);
  const auto seq = coord::storage::parse_wal_segment_name(std::filesystem::path(path).filename().string());
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  std::uint64_t at = 0;
  for (;;) {
    const auto frame = coord::storage::parse_wal_record(std::string_view(bytes).substr(at), *seq, at);
    if (frame.status != coord::storage::WalFrame::Status::Ok) break;
    const std::uint64_t size = coord::storage::wal_record_bytes(frame.payload.size());
    out.emplace_back(at, size);
    at += size;
  }
  return out;
}

}  // namespace coordtest
