// The dataplane's clocks: the monotonic one the workers judge packets by (flow expiry,
// event times) and the real-time one that dates events and flow snapshots.
#pragma once

#include <cstdint>
#include <ctime>

namespace cordon::dataplane {

inline uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000 + uint64_t(ts.tv_nsec);
}

inline uint64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000 + uint64_t(ts.tv_nsec);
}

}  // namespace cordon::dataplane
