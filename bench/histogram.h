// A latency histogram with bounded relative error over a wide dynamic range, in the manner of
// HdrHistogram (no Debian package of it exists for C++): values are bucketed by their highest
// set bit and then by the next bits below it, so every recorded value is known to within
// 1/64 (under 1.6%) from 1 ns up to a day, in a fixed 41 KiB. Percentiles
// report the upper edge of the bucket that holds them (never an optimistic figure).
//
// One histogram per client thread, merged at the end: recording is a few instructions and
// takes no lock.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace coord::bench {

class Histogram {
 public:
  static constexpr int kSubBucketBits = 7;
  static constexpr int kSubBuckets = 1 << kSubBucketBits;
  // Values below 2^(kMagnitudes + kSubBucketBits) ns (over a day) are bucketed as
  // above; larger ones land in the last bucket and still count in max().
  static constexpr int kMagnitudes = 40;

  void record(std::uint64_t value_ns);
  void merge(const Histogram& other);

  std::uint64_t count() const { return count_; }
  std::uint64_t min() const { return count_ == 0 ? 0 : min_; }
  std::uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / static_cast<double>(count_); }
  // The value at quantile q (0..1]: at least a fraction q of the recorded values are <= it.
  std::uint64_t quantile(double q) const;

 private:
  static std::size_t bucket_of(std::uint64_t value);
  static std::uint64_t upper_edge(std::size_t bucket);

  static constexpr std::size_t kBuckets = static_cast<std::size_t>(kMagnitudes + 1) * kSubBuckets;

  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
};

}  // namespace coord::bench
