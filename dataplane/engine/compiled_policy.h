// CompiledPolicy: a validated PolicyDocument turned into immutable runtime tables.
//
// Threads: compile_policy() runs on the control thread (it allocates and may take a
// while for large rule sets). A published CompiledPolicy is never modified again except
// for its counters (see counters.h): every lookup is const, noexcept and allocation-free,
// safe from any number of workers at once. It is freed only after every worker has
// passed a quiescent state (engine.h).
//
// Classification (DESIGN §2; bench/README.md and bench/results/ for the measurements):
// devices are found by MAC (device side) or IP (network side); each device has one rule
// set per (direction, protocol, address family). A rule set splits the port space into
// elementary intervals; the rules covering an interval are keys (interval, prefix length,
// masked peer) -> lowest rule index in one hash table per address family. All rule sets
// live in one arena (layout at SetRef): a port's interval is found with two SSE4.1
// compares (every 8th start, then one block of 8; binary search past 64 intervals), and
// each IPv4 interval has a probe plan: always two probes (its two longest prefix lengths,
// the same one twice if it has one), plus a loop over any others (rare). Device MACs,
// IPv4 device addresses and IPv4 keys sit in KeyTable, our own open-addressing table of 64-byte
// buckets probed without branches, used instead of boost::unordered_flat_map because
// classify_burst must prefetch buckets. classify_burst runs groups of 16 queries one
// stage at a time (device bucket, rule set, hash buckets, probes), so their cache misses
// overlap. Unknown devices and empty rule sets point at sentinel sets whose probes miss,
// which leaves no data-dependent branch on the IPv4 path. IPv6 devices and keys stay in
// boost::unordered_flat_map (no benchmark covers IPv6). Only SSE4.1/POPCNT (x86-64-v2).
// Measured on the 2-CPU dev VM (bench/results/2026-11-27-vm.md, TSC cycles/packet,
// 1k/10k/50k rules; the VM was about twice as slow as for the first report, so compare
// within a run): classify_burst 70/89/176 against rte_acl avx512x32 74/172/283 (1.06x,
// 1.94x, 1.61x faster). One call per packet (device_by_ip + classify, as the worker calls
// it today) 94/155/512: 0.79x, 1.11x, 0.55x of avx512x32.
#pragma once

#include <immintrin.h>

#include <boost/unordered/unordered_flat_map.hpp>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/engine/counters.h"
#include "dataplane/engine/inspection.h"
#include "dataplane/engine/packet.h"
#include "dataplane/engine/policy_document.h"

namespace cordon::engine {

inline constexpr int32_t kNoRule = -1;
inline constexpr int32_t kNoDevice = -1;

struct CompiledDevice {
  std::string name;
  MacAddress mac;
  std::vector<IpAddress> ips;
  DeviceMode mode = DeviceMode::enforce;
  DenyAction deny_action = DenyAction::drop;
  std::vector<Rule> rules;  // as in the document; rule indices refer to this vector

  bool owns(const IpAddress& ip) const {
    for (const IpAddress& own : ips) {
      if (own == ip) return true;
    }
    return false;
  }
};

class CompiledPolicy {
 public:
  // Any thread. kNoDevice when no device has this MAC / IP.
  int32_t device_by_mac(const MacAddress& mac) const noexcept {
    return by_mac_.find(mac.as_u64());  // kNoRule (a miss) is kNoDevice
  }
  int32_t device_by_ip(const IpAddress& ip) const noexcept;
  // Index of the lowest-numbered rule of `device` that allows a connection in direction
  // `dir` with `peer` on destination port `dport` (ignored for ICMP), or kNoRule.
  int32_t classify(uint32_t device, Direction dir, Protocol proto, const IpAddress& peer,
                   uint16_t dport) const noexcept;

  const CompiledDevice& device(uint32_t index) const { return devices_[index]; }
  // Any thread. device(index).owns(ip), answered for IPv4 from a packed 16-byte record per
  // device (anti-spoofing runs on every device-side packet; the CompiledDevice and its
  // address vector on the heap were two more scattered cache lines per packet).
  bool owns(uint32_t device, const IpAddress& ip) const noexcept {
    const OwnedIpv4& own = owned_v4_[device];
    if (ip.family != 4 || own.count > OwnedIpv4::kInline) return devices_[device].owns(ip);
    uint32_t wire;
    std::memcpy(&wire, ip.bytes.data(), sizeof wire);  // bytes 4..15 of an IPv4 are zero
    for (uint32_t i = 0; i < own.count; ++i) {
      if (own.addresses[i] == wire) return true;
    }
    return false;
  }
  // Any thread. device(index).mac == mac, from a packed array (8 bytes per device): the
  // worker checks it for every device-side packet of a known flow.
  bool device_has_mac(uint32_t device, const MacAddress& mac) const noexcept {
    return macs_[device] == mac.as_u64();
  }
  uint32_t device_count() const { return static_cast<uint32_t>(devices_.size()); }
  UnknownDevices unknown_devices() const { return unknown_devices_; }

  // The version controld gave this policy (0 for none) and the engine's epoch, which
  // increases with every publish and is what flows remember.
  uint64_t version() const { return version_; }
  uint64_t epoch() const { return epoch_; }

  // Per-worker, per-device counters. Workers write only their own slice.
  DeviceCounters& counters(uint32_t worker, uint32_t device) const {
    return counters_[static_cast<size_t>(worker) * devices_.size() + device];
  }
  ForwardCounters& forward_counters(uint32_t worker, uint32_t device) const {
    // Each worker's slice starts on a line of its own (no false sharing between workers).
    return forward_counters_[static_cast<size_t>(worker) * forward_lines_per_worker_ +
                             device / ForwardCounterLine::kDevices]
        .devices[device % ForwardCounterLine::kDevices];
  }
  uint32_t worker_slots() const { return worker_slots_; }
  // Which TCP flows are inspected and how (virtual patches, protocol rules).
  const InspectionPolicy& inspection() const { return *inspection_; }

  // Sizes for reports and tests.
  size_t rule_count() const;
  size_t table_entries() const { return v4_entries_.size() + v6_entries_.size(); }

  // A burst of lookups: for each query, device_by_ip(device) and, when a device owns that
  // address, classify(device, dir, peer, dport). Same results as the one-at-a-time calls;
  // faster per query, because the lookups of several queries overlap and each one's
  // memory is prefetched a few steps before it is read. out.size() must be >= in.size().
  struct ClassifyQuery {
    IpAddress device;  // the protected device's address
    IpAddress peer;
    uint16_t dport = 0;
    Direction dir = Direction::out;
    Protocol proto = Protocol::tcp;
  };
  struct ClassifyResult {
    int32_t device = kNoDevice;
    int32_t rule = kNoRule;  // kNoRule also when device is kNoDevice
  };
  void classify_burst(std::span<const ClassifyQuery> in,
                      std::span<ClassifyResult> out) const noexcept;

 private:
  friend struct PolicyCompiler;
  friend class Engine;

  // Open-addressing hash table of 64-bit keys -> int32 values, built once on the control
  // thread. Buckets are one 64-byte line of 4 slots; a key lives in its home bucket or,
  // when that is full, in the next ones (linear probing by whole buckets). Written by
  // hand instead of boost::unordered_flat_map so that a burst lookup can compute a key's
  // bucket and prefetch it long before probing it (bench/README.md has the measurement).
  class KeyTable {
   public:
    static constexpr uint64_t kEmpty = ~uint64_t{0};  // never a valid key
    void build(const std::vector<std::pair<uint64_t, int32_t>>& entries);
    size_t bucket(uint64_t key) const noexcept {
      const uint64_t h = (key ^ (key >> 29)) * 0xbf58476d1ce4e5b9ULL;
      return static_cast<size_t>(h >> shift_);
    }
    void prefetch(size_t bucket) const noexcept { __builtin_prefetch(&lines_[bucket]); }
    // Branch-free within a bucket (SSE4.1): which slot holds the key is unpredictable.
    int32_t find(uint64_t key, size_t bucket) const noexcept {
      const __m128i k = _mm_set1_epi64x(static_cast<long long>(key));
      const __m128i empty = _mm_set1_epi64x(-1);
      for (;;) {
        const Line& line = lines_[bucket];
        const __m128i k01 = _mm_load_si128(reinterpret_cast<const __m128i*>(line.keys));
        const __m128i k23 = _mm_load_si128(reinterpret_cast<const __m128i*>(line.keys + 2));
        const int hit = _mm_movemask_pd(_mm_castsi128_pd(_mm_cmpeq_epi64(k01, k))) |
                        _mm_movemask_pd(_mm_castsi128_pd(_mm_cmpeq_epi64(k23, k))) << 2;
        const int free = _mm_movemask_pd(_mm_castsi128_pd(_mm_cmpeq_epi64(k01, empty))) |
                         _mm_movemask_pd(_mm_castsi128_pd(_mm_cmpeq_epi64(k23, empty))) << 2;
        // values[4] is kNoRule: the result of a miss.
        const int32_t value = line.values[__builtin_ctz(static_cast<unsigned>(hit | 16))];
        if ((hit | free) != 0) return value;
        bucket = (bucket + 1) & mask_;
      }
    }
    int32_t find(uint64_t key) const noexcept { return find(key, bucket(key)); }
    size_t size() const { return size_; }

   private:
    struct alignas(64) Line {
      uint64_t keys[4] = {kEmpty, kEmpty, kEmpty, kEmpty};
      int32_t values[5] = {kNoRule, kNoRule, kNoRule, kNoRule, kNoRule};
    };
    std::vector<Line> lines_{2};
    size_t mask_ = 1;
    int shift_ = 63;  // bucket() = top log2(lines) bits of the mixed key
    size_t size_ = 0;
  };

  // One rule set (device, direction, protocol, family) lives in arena_ from word `offset`:
  //   word 0      first_interval (global id of its interval 0), n (number of intervals)
  //   words 1-2   summary: starts[0], starts[8], ... starts[56] (0xffff past the end)
  //   words 3..   starts[n] padded with 0xffff to a multiple of 8 (each interval's first
  //               port, ascending, starts[0] == 0)
  //   then, IPv4: per interval a probe plan (PolicyCompiler::probe_plan): the two longest
  //               peer prefix lengths of its rules, and a mask of the others;
  //         IPv6: per interval + 1 an offset into v6_lengths_ (uint32).
  // Every SetRef is valid: a rule set without rules points at a shared set whose single
  // interval has no rules (lookups miss).
  struct SetRef {
    uint32_t offset = 0;
    uint32_t intervals = 0;
  };
  struct V6Key {
    uint32_t interval;
    uint8_t prefix_length;
    std::array<uint8_t, 16> address;
    bool operator==(const V6Key&) const = default;
  };
  struct V6KeyHash {
    size_t operator()(const V6Key& k) const noexcept;
  };

  static size_t ruleset_slot(Direction dir, Protocol proto, bool v6) {
    return (static_cast<size_t>(dir) * 3 + static_cast<size_t>(proto)) * 2 + (v6 ? 1 : 0);
  }
  static constexpr size_t kRuleSetsPerDevice = 12;
  static uint64_t v4_key(uint32_t interval, uint32_t prefix_length, uint32_t masked_address) {
    return (uint64_t{interval} << 38) | (uint64_t{prefix_length} << 32) | masked_address;
  }
  // Local index of the interval of `port` in the rule set at `set` (arena words).
  [[gnu::always_inline]] static inline uint32_t find_interval(const uint64_t* set, uint32_t n,
                                                              uint16_t port) noexcept;
  int32_t classify_v6(const uint64_t* set, uint32_t n, const IpAddress& peer,
                      uint16_t port) const noexcept;
  // Probes of the prefix lengths in bits 16.. of an IPv4 interval's plan word.
  int32_t probe_rest(uint32_t interval, uint64_t plan, uint32_t address) const noexcept;

  // A device's IPv4 addresses in wire byte order, when it has at most kInline of them
  // (count > kInline: look in CompiledDevice::ips). Indexed like devices_.
  struct OwnedIpv4 {
    static constexpr uint32_t kInline = 3;
    uint32_t addresses[kInline] = {};
    uint32_t count = 0;
  };
  static_assert(sizeof(OwnedIpv4) == 16, "four records per cache line");

  uint64_t version_ = 0;
  uint64_t epoch_ = 0;
  UnknownDevices unknown_devices_ = UnknownDevices::drop;
  std::vector<CompiledDevice> devices_;
  std::vector<OwnedIpv4> owned_v4_;
  std::vector<uint64_t> macs_;     // MacAddress::as_u64 of each device, indexed like devices_
  std::vector<SetRef> rule_sets_;  // (devices_.size() + 1) * kRuleSetsPerDevice
  std::vector<uint64_t> arena_;    // every rule set, see SetRef
  std::vector<uint8_t> v6_lengths_;
  // MAC (MacAddress::as_u64, never KeyTable::kEmpty) -> device. A KeyTable rather than
  // boost::unordered_flat_map: one multiply and one cache line per lookup, and the worker
  // looks up every device-side packet's source MAC (bench/README.md, part 2).
  KeyTable by_mac_;
  KeyTable by_ip4_;  // IPv4 address (host order) -> device
  boost::unordered_flat_map<IpAddress, int32_t, IpAddressHash> by_ip6_;
  KeyTable v4_entries_;  // v4_key(interval, prefix length, masked peer) -> lowest rule
  boost::unordered_flat_map<V6Key, int32_t, V6KeyHash> v6_entries_;
  uint32_t worker_slots_ = 0;
  std::unique_ptr<DeviceCounters[]> counters_;
  std::unique_ptr<ForwardCounterLine[]> forward_counters_;
  size_t forward_lines_per_worker_ = 0;
  std::unique_ptr<InspectionPolicy> inspection_;
};

struct CompileResult {
  std::unique_ptr<CompiledPolicy> policy;  // null when errors is non-empty
  std::vector<PolicyError> errors;
};

// Control thread only. Compiles a valid document; fails (with errors naming the device)
// only when a rule set exceeds the table size limit. `worker_slots` sizes the counters.
CompileResult compile_policy(const PolicyDocument& document, uint64_t version,
                             uint32_t worker_slots);

}  // namespace cordon::engine
