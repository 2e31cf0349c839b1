#include "dataplane/dpdk/latency_histogram.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>

namespace cordon::dataplane {
namespace {

TEST(LatencyHistogram, EveryValueFallsInsideItsBucket) {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{7}, uint64_t{8}, uint64_t{15}, uint64_t{16},
                     uint64_t{17}, uint64_t{1000}, uint64_t{4095}, uint64_t{4096},
                     uint64_t{123456789}, UINT64_MAX}) {
    const uint32_t b = LatencyHistogram::bucket_of(v);
    ASSERT_LT(b, LatencyHistogram::kBuckets) << v;
    EXPECT_LE(LatencyHistogram::lower_bound(b), v) << v;
    EXPECT_GE(LatencyHistogram::upper_bound(b), v) << v;
  }
  EXPECT_EQ(LatencyHistogram::bucket_of(UINT64_MAX), LatencyHistogram::kBuckets - 1);
}

TEST(LatencyHistogram, BucketsTileTheRangeAndAreAtMostAnEighthWide) {
  for (uint32_t b = 0; b + 1 < LatencyHistogram::kBuckets; ++b) {
    EXPECT_EQ(LatencyHistogram::upper_bound(b) + 1, LatencyHistogram::lower_bound(b + 1)) << b;
    const uint64_t lo = LatencyHistogram::lower_bound(b);
    const uint64_t width = LatencyHistogram::upper_bound(b) - lo + 1;
    if (lo >= LatencyHistogram::kSub) {
      EXPECT_LE(width * 8, lo) << b;
    }
    EXPECT_EQ(LatencyHistogram::bucket_of(lo), b);
  }
}

TEST(LatencyHistogram, PercentilesComeFromTheRecordedPackets) {
  LatencyHistogram h;
  h.record(100, 98);    // 98 packets at 100 cycles
  h.record(5000, 1);    // one at 5000
  h.record(200000, 1);  // one at 200000
  std::array<uint64_t, LatencyHistogram::kBuckets> counts{};
  for (uint32_t b = 0; b < LatencyHistogram::kBuckets; ++b) counts[b] = h.count(b);
  const uint64_t p50 = latency_percentile(counts, 0.5);
  EXPECT_GE(p50, 100u);
  EXPECT_LT(p50, 100u + 100u / 8);
  const uint64_t p99 = latency_percentile(counts, 0.99);
  EXPECT_GE(p99, 5000u);
  EXPECT_LT(p99, 5000u + 5000u / 8);
  const uint64_t max = latency_percentile(counts, 1.0);
  EXPECT_GE(max, 200000u);
  EXPECT_LT(max, 200000u + 200000u / 8);
  std::array<uint64_t, LatencyHistogram::kBuckets> none{};
  EXPECT_EQ(latency_percentile(none, 0.99), 0u);
}

}  // namespace
}  // namespace cordon::dataplane
