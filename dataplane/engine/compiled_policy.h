// CompiledPolicy: a validated PolicyDocument turned into immutable runtime tables.
//
// Threads: compile_policy() runs on the control thread (it allocates and may take a
// while for large rule sets). A published CompiledPolicy is never modified again except
// for its counters (see counters.h): every lookup is const, noexcept and allocation-free,
// safe from any number of workers at once. It is freed only after every worker has
// passed a quiescent state (engine.h).
//
// Classification (DESIGN §2, bench/README.md for the measurement that chose it): devices
// are found by MAC (device side) or IP (network side) in hash maps; each device has one
// rule set per (direction, protocol, address family). A rule set splits the port space
// into elementary intervals; for each interval, the rules covering it are stored in one
// hash map keyed by (interval, prefix length, masked peer address) -> lowest rule index.
// A lookup is a binary search over the interval starts plus one hash probe per distinct
// prefix length present in that interval.
#pragma once

#include <boost/unordered/unordered_flat_map.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/engine/counters.h"
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
  int32_t device_by_mac(const MacAddress& mac) const noexcept;
  int32_t device_by_ip(const IpAddress& ip) const noexcept;
  // Index of the lowest-numbered rule of `device` that allows a connection in direction
  // `dir` with `peer` on destination port `dport` (ignored for ICMP), or kNoRule.
  int32_t classify(uint32_t device, Direction dir, Protocol proto, const IpAddress& peer,
                   uint16_t dport) const noexcept;

  const CompiledDevice& device(uint32_t index) const { return devices_[index]; }
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
  uint32_t worker_slots() const { return worker_slots_; }

  // Sizes for reports and tests.
  size_t rule_count() const;
  size_t table_entries() const { return v4_entries_.size() + v6_entries_.size(); }

 private:
  friend struct PolicyCompiler;
  friend class Engine;

  struct RuleSet {
    uint32_t first_interval = 0;  // global interval id of interval_starts[0]
    std::vector<uint16_t> interval_starts;
    std::vector<uint32_t> prefix_offsets;  // per interval: range in prefix_lengths
    std::vector<uint8_t> prefix_lengths;
    bool empty() const { return interval_starts.empty(); }
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

  uint64_t version_ = 0;
  uint64_t epoch_ = 0;
  UnknownDevices unknown_devices_ = UnknownDevices::drop;
  std::vector<CompiledDevice> devices_;
  std::vector<RuleSet> rule_sets_;  // devices_.size() * kRuleSetsPerDevice
  boost::unordered_flat_map<uint64_t, int32_t> by_mac_;
  boost::unordered_flat_map<IpAddress, int32_t, IpAddressHash> by_ip_;
  boost::unordered_flat_map<uint64_t, int32_t> v4_entries_;
  boost::unordered_flat_map<V6Key, int32_t, V6KeyHash> v6_entries_;
  uint32_t worker_slots_ = 0;
  std::unique_ptr<DeviceCounters[]> counters_;
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
