// Residence time of packets inside the dataplane (--latency-histogram on): TSC cycles
// from the moment a burst came back from rte_eth_rx_burst to the moment its forwarded
// frames are handed to rte_eth_tx_burst, counted per packet in fixed log buckets.
// Used by the benchmarks (bench/README.md, "Latency"); off by default, and when off the
// worker loop is compiled without any stamping (shell.cpp, Shell::poll<false>).
//
// Buckets: 8 sub-buckets per power of two (HDR-style), so a bucket is at most 12.5 %
// wide and a percentile read from the buckets is within 12.5 % of the true value.
// Values 0..7 have a bucket each; value v >= 8 with highest set bit h goes to bucket
// 8 * (h - 2) + the three bits below h.
//
// Threads: one LatencyHistogram per worker. Only its worker calls record(); any thread
// (telemetry, the exit summary) may read counts with relaxed loads: a reader sees each
// bucket's count at some recent moment, never a torn value.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>

namespace cordon::dataplane {

class LatencyHistogram {
 public:
  static constexpr uint32_t kSubBits = 3;
  static constexpr uint32_t kSub = 1u << kSubBits;
  static constexpr uint32_t kBuckets = kSub * (64 - kSubBits + 1);  // 496

  static constexpr uint32_t bucket_of(uint64_t cycles) {
    if (cycles < kSub) return static_cast<uint32_t>(cycles);
    const auto high = static_cast<uint32_t>(63 - std::countl_zero(cycles));
    const auto below = static_cast<uint32_t>((cycles >> (high - kSubBits)) & (kSub - 1));
    return kSub * (high - kSubBits + 1) + below;
  }
  // The smallest value that falls into `bucket`.
  static constexpr uint64_t lower_bound(uint32_t bucket) {
    if (bucket < kSub) return bucket;
    const uint32_t high = bucket / kSub + kSubBits - 1;
    return (uint64_t{1} << high) | (uint64_t{bucket % kSub} << (high - kSubBits));
  }
  // The largest value that falls into `bucket`.
  static constexpr uint64_t upper_bound(uint32_t bucket) {
    return bucket + 1 < kBuckets ? lower_bound(bucket + 1) - 1 : UINT64_MAX;
  }

  // Worker only: `packets` packets spent `cycles` in the dataplane.
  void record(uint64_t cycles, uint64_t packets) noexcept {
    std::atomic<uint64_t>& c = counts_[bucket_of(cycles)];
    c.store(c.load(std::memory_order_relaxed) + packets, std::memory_order_relaxed);
  }
  uint64_t count(uint32_t bucket) const noexcept {
    return counts_[bucket].load(std::memory_order_relaxed);
  }

 private:
  std::array<std::atomic<uint64_t>, kBuckets> counts_{};
};

// The value below which `fraction` (0..1] of the samples in `counts` lie, as the upper
// bound of the bucket that holds that sample; 0 when there are no samples.
template <typename Counts>
uint64_t latency_percentile(const Counts& counts, double fraction) {
  uint64_t total = 0;
  for (uint32_t b = 0; b < LatencyHistogram::kBuckets; ++b) total += counts[b];
  if (total == 0) return 0;
  auto rank = static_cast<uint64_t>(fraction * static_cast<double>(total));
  if (rank == 0) rank = 1;
  if (rank > total) rank = total;
  uint64_t seen = 0;
  for (uint32_t b = 0; b < LatencyHistogram::kBuckets; ++b) {
    seen += counts[b];
    if (seen >= rank) return LatencyHistogram::upper_bound(b);
  }
  return LatencyHistogram::upper_bound(LatencyHistogram::kBuckets - 1);
}

}  // namespace cordon::dataplane
