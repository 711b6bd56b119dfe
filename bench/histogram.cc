#include "bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace coord::bench {

// Bucket layout: a value below kSubBuckets is its own bucket (magnitude 0). A larger value whose
// highest set bit is bit p has magnitude m = p - kSubBucketBits + 1, and its top kSubBucketBits
// bits (value >> m, in [kSubBuckets/2, kSubBuckets)) pick the slot within that magnitude. The
// lower half of each magnitude's slots stays unused; the bucket width is 2^m for values of at
// least 2^(m + kSubBucketBits - 1), a relative error below 1/64.
std::size_t Histogram::bucket_of(std::uint64_t value) {
  if (value < static_cast<std::uint64_t>(kSubBuckets)) return static_cast<std::size_t>(value);
  const int top = std::bit_width(value) - 1;  // >= kSubBucketBits
  const int magnitude = top - kSubBucketBits + 1;
  if (magnitude > kMagnitudes) return kBuckets - 1;
  const std::uint64_t sub = value >> magnitude;  // in [kSubBuckets/2, kSubBuckets)
  return static_cast<std::size_t>(magnitude) * kSubBuckets + static_cast<std::size_t>(sub);
}

std::uint64_t Histogram::upper_edge(std::size_t bucket) {
  const std::size_t magnitude = bucket / kSubBuckets;
  const std::uint64_t sub = bucket % kSubBuckets;
  if (magnitude == 0) return sub;
  return ((sub + 1) << magnitude) - 1;
}

void Histogram::record(std::uint64_t value_ns) {
  ++counts_[bucket_of(value_ns)];
  ++count_;
  sum_ += value_ns;
  min_ = std::min(min_, value_ns);
  max_ = std::max(max_, value_ns);
}

void Histogram::merge(const Histogram& other) {
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

std::uint64_t Histogram::quantile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  // The rank of the value asked for, 1-based: ceil(q * count), at least 1.
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_))));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    // The last bucket also holds every value beyond the range: only max() bounds it.
    if (seen >= rank) return i == kBuckets - 1 ? max_ : std::min(upper_edge(i), max_);
  }
  return max_;
}

}  // namespace coord::bench
