// coord-bench's latency histogram against the exact quantiles of the values it recorded: every
// quantile it reports is at least the exact one (never optimistic) and above it by less than the
// stated relative error, 1/64 (values below 128 ns exactly).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "bench/histogram.h"

namespace {

using coord::bench::Histogram;

// The value of rank ceil(q * n) (1-based, at least 1) of sorted values: Histogram::quantile's definition.
std::uint64_t exact_quantile(const std::vector<std::uint64_t>& sorted, double q) {
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(sorted.size()))));
  return sorted[static_cast<std::size_t>(rank - 1)];
}

void check_quantiles(const Histogram& h, std::vector<std::uint64_t> values) {
  std::sort(values.begin(), values.end());
  for (double q : {0.0, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1.0}) {
    CAPTURE(q);
    const std::uint64_t exact = exact_quantile(values, q);
    const std::uint64_t reported = h.quantile(q);
    CAPTURE(exact);
    CAPTURE(reported);
    CHECK(reported >= exact);
    if (exact < static_cast<std::uint64_t>(Histogram::kSubBuckets)) {
      CHECK(reported == exact);
    } else {
      CHECK(static_cast<double>(reported - exact) < static_cast<double>(exact) / 64.0);
    }
  }
}

// Log-uniform from 1 ns to about 100 s: every magnitude the histogram covers gets values.
std::vector<std::uint64_t> log_uniform(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> exponent(0.0, 11.0);
  std::vector<std::uint64_t> values;
  values.reserve(n);
  for (std::size_t i = 0; i < n; ++i) values.push_back(static_cast<std::uint64_t>(std::pow(10.0, exponent(rng))));
  return values;
}

}  // namespace

TEST_CASE("an empty histogram reports zeros") {
  const Histogram h;
  CHECK(h.count() == 0);
  CHECK(h.min() == 0);
  CHECK(h.max() == 0);
  CHECK(h.mean() == 0.0);
  CHECK(h.quantile(0.5) == 0);
}

TEST_CASE("quantiles are within the stated relative error of the exact ones") {
  for (std::uint64_t seed : {1, 2, 3}) {
    CAPTURE(seed);
    const std::vector<std::uint64_t> values = log_uniform(100'000, seed);
    Histogram h;
    for (std::uint64_t v : values) h.record(v);
    CHECK(h.count() == values.size());
    CHECK(h.min() == *std::min_element(values.begin(), values.end()));
    CHECK(h.max() == *std::max_element(values.begin(), values.end()));
    check_quantiles(h, values);
  }
}

TEST_CASE("latencies around a millisecond, as a run records them") {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> latency_ns(std::log(1e6), 0.5);
  std::vector<std::uint64_t> values;
  Histogram h;
  for (int i = 0; i < 200'000; ++i) {
    const auto v = static_cast<std::uint64_t>(latency_ns(rng));
    values.push_back(v);
    h.record(v);
  }
  check_quantiles(h, values);
  double sum = 0;
  for (std::uint64_t v : values) sum += static_cast<double>(v);
  CHECK(h.mean() == doctest::Approx(sum / static_cast<double>(values.size())));
}

TEST_CASE("small values are exact, and bucket edges land in their own bucket") {
  std::vector<std::uint64_t> values;
  Histogram h;
  for (std::uint64_t v = 0; v < 4096; ++v) {
    values.push_back(v);
    h.record(v);
  }
  // Powers of two and their neighbours, where a bucket's magnitude changes.
  for (int bit = 7; bit < 40; ++bit) {
    for (std::uint64_t v : {(std::uint64_t{1} << bit) - 1, std::uint64_t{1} << bit, (std::uint64_t{1} << bit) + 1}) {
      values.push_back(v);
      h.record(v);
    }
  }
  check_quantiles(h, values);
}

TEST_CASE("merging per-thread histograms equals recording everything in one") {
  const std::vector<std::uint64_t> values = log_uniform(30'000, 11);
  Histogram all;
  Histogram parts[3];
  for (std::size_t i = 0; i < values.size(); ++i) {
    all.record(values[i]);
    parts[i % 3].record(values[i]);
  }
  Histogram merged;
  for (const Histogram& p : parts) merged.merge(p);
  CHECK(merged.count() == all.count());
  CHECK(merged.min() == all.min());
  CHECK(merged.max() == all.max());
  CHECK(merged.mean() == doctest::Approx(all.mean()));
  for (double q : {0.01, 0.5, 0.9, 0.99, 0.999, 1.0}) CHECK(merged.quantile(q) == all.quantile(q));
  check_quantiles(merged, values);
}

TEST_CASE("a value beyond the last magnitude still counts in max and the top quantile") {
  Histogram h;
  h.record(1000);
  const std::uint64_t huge = std::uint64_t{1} << 62;
  h.record(huge);
  CHECK(h.count() == 2);
  CHECK(h.max() == huge);
  CHECK(h.quantile(1.0) == huge);
  CHECK(h.quantile(0.5) >= 1000);
  CHECK(h.quantile(0.5) < 1000 + 1000 / 64 + 1);
}
