// Counters written by exactly one worker and read by the control thread.
// Each counter is an atomic updated with relaxed load+store (not fetch_add): there is a
// single writer, so this is race-free and compiles to a plain increment, while readers
// on other threads get torn-free values.
#pragma once

#include <atomic>
#include <cstdint>

#include "dataplane/engine/verdict.h"

namespace cordon::engine {

using Counter = std::atomic<uint64_t>;

inline void bump(Counter& counter, uint64_t by = 1) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

// What every forwarded packet of a device adds to, kept apart from the rest of its
// counters: four devices share a cache line, so one worker's forwarding counters for a
// few hundred devices stay in its L1 cache. Inside DeviceCounters (640 bytes each) every
// forwarded packet missed L1 on its device's line (bench/README.md, part 2).
struct ForwardCounters {
  Counter packets{0};
  Counter bytes{0};
};
struct alignas(64) ForwardCounterLine {
  static constexpr uint32_t kDevices = 4;
  ForwardCounters devices[kDevices];
};
static_assert(sizeof(ForwardCounterLine) == 64);

// A device's other counters: drops and new flows.
struct alignas(64) DeviceCounters {
  Counter dropped[kDropReasonCount]{};
  Counter would_drop[kDropReasonCount]{};  // monitor/learn mode: forwarded, not enforced
  Counter new_flows{0};
};

struct alignas(64) WorkerCounters {
  Counter packets{0};
  Counter forwarded{0};
  Counter dropped[kDropReasonCount]{};  // every drop, with or without a device
  Counter events_suppressed{0};         // events lost to the rate limit or a full ring
  Counter flows_evicted{0};  // new flows that pushed out a closing or embryonic (half-open) one
  Counter flows_expired{0};
  Counter flows_active{0};  // a gauge: entries in the worker's flow table
};

}  // namespace cordon::engine
