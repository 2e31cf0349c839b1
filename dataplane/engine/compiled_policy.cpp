#include "dataplane/engine/compiled_policy.h"

#include <algorithm>
#include <cstring>
#include <set>

namespace cordon::engine {
namespace {

// Bound on hash entries one policy may expand to (rules copied into every elementary
// port interval they cover). Typical allowlists use a tiny fraction; a pathological rule
// set (thousands of overlapping wide port ranges) is refused rather than exhausting memory.
constexpr size_t kMaxTableEntries = 8'000'000;

uint64_t v4_key(uint32_t interval, uint8_t prefix_length, uint32_t masked_address) {
  return (uint64_t{interval} << 38) | (uint64_t{prefix_length} << 32) | masked_address;
}

}  // namespace

size_t CompiledPolicy::V6KeyHash::operator()(const V6Key& k) const noexcept {
  uint64_t hi = 0;
  uint64_t lo = 0;
  std::memcpy(&hi, k.address.data(), 8);
  std::memcpy(&lo, k.address.data() + 8, 8);
  return static_cast<size_t>(hi ^ (lo * 0x9e3779b97f4a7c15ULL) ^
                             (uint64_t{k.interval} << 8 | k.prefix_length) * 0xc2b2ae3d27d4eb4fULL);
}

int32_t CompiledPolicy::device_by_mac(const MacAddress& mac) const noexcept {
  auto it = by_mac_.find(mac.as_u64());
  return it == by_mac_.end() ? kNoDevice : it->second;
}

int32_t CompiledPolicy::device_by_ip(const IpAddress& ip) const noexcept {
  auto it = by_ip_.find(ip);
  return it == by_ip_.end() ? kNoDevice : it->second;
}

int32_t CompiledPolicy::classify(uint32_t device, Direction dir, Protocol proto,
                                 const IpAddress& peer, uint16_t dport) const noexcept {
  const bool v6 = peer.family == 6;
  const RuleSet& set = rule_sets_[device * kRuleSetsPerDevice + ruleset_slot(dir, proto, v6)];
  if (set.empty()) return kNoRule;
  if (proto == Protocol::icmp) dport = 0;
  // Elementary interval holding dport: the last start <= dport (starts[0] is always 0).
  auto it = std::upper_bound(set.interval_starts.begin(), set.interval_starts.end(), dport);
  const auto local = static_cast<uint32_t>(it - set.interval_starts.begin() - 1);
  const uint32_t interval = set.first_interval + local;
  int32_t best = kNoRule;
  for (uint32_t i = set.prefix_offsets[local]; i < set.prefix_offsets[local + 1]; ++i) {
    const uint8_t length = set.prefix_lengths[i];
    int32_t found = kNoRule;
    if (v6) {
      V6Key key{interval, length, peer.masked(length).bytes};
      auto hit = v6_entries_.find(key);
      if (hit != v6_entries_.end()) found = hit->second;
    } else {
      const uint32_t mask = length == 0 ? 0 : ~uint32_t{0} << (32 - length);
      auto hit = v4_entries_.find(v4_key(interval, length, peer.v4_host_order() & mask));
      if (hit != v4_entries_.end()) found = hit->second;
    }
    if (found != kNoRule && (best == kNoRule || found < best)) best = found;
  }
  return best;
}

size_t CompiledPolicy::rule_count() const {
  size_t n = 0;
  for (const auto& d : devices_) n += d.rules.size();
  return n;
}

// Builds the tables of one CompiledPolicy. Control thread only.
struct PolicyCompiler {
  CompiledPolicy& out;
  std::vector<PolicyError>& errors;
  uint32_t next_interval = 0;

  static CompileResult compile(const PolicyDocument& document, uint64_t version,
                               uint32_t worker_slots);

  void build_rule_set(uint32_t device_index, Direction dir, Protocol proto, bool v6) {
    const CompiledDevice& device = out.devices_[device_index];
    CompiledPolicy::RuleSet& set =
        out.rule_sets_[device_index * CompiledPolicy::kRuleSetsPerDevice +
                       CompiledPolicy::ruleset_slot(dir, proto, v6)];
    std::vector<int32_t> members;
    for (size_t i = 0; i < device.rules.size(); ++i) {
      const Rule& r = device.rules[i];
      if (r.dir == dir && r.proto == proto && (r.peer.network.family == 6) == v6) {
        members.push_back(static_cast<int32_t>(i));
      }
    }
    if (members.empty()) return;

    // Elementary intervals: every rule's first port and the port after its last.
    std::set<uint32_t> boundaries{0};
    for (int32_t m : members) {
      const PortRange ports = proto == Protocol::icmp ? PortRange{} : device.rules[m].dport;
      boundaries.insert(ports.first);
      if (ports.last < 65535) boundaries.insert(uint32_t{ports.last} + 1);
    }
    set.first_interval = next_interval;
    for (uint32_t b : boundaries) set.interval_starts.push_back(static_cast<uint16_t>(b));
    next_interval += static_cast<uint32_t>(set.interval_starts.size());

    std::vector<std::set<uint8_t>> lengths(set.interval_starts.size());
    for (int32_t m : members) {
      const Rule& r = device.rules[m];
      const PortRange ports = proto == Protocol::icmp ? PortRange{} : r.dport;
      auto first =
          std::lower_bound(set.interval_starts.begin(), set.interval_starts.end(), ports.first);
      for (auto it = first; it != set.interval_starts.end() && *it <= ports.last; ++it) {
        const auto local = static_cast<uint32_t>(it - set.interval_starts.begin());
        const uint32_t interval = set.first_interval + local;
        lengths[local].insert(r.peer.prefix_length);
        // Rules are visited in order, so the first insert for a key keeps the lowest index.
        if (v6) {
          out.v6_entries_.try_emplace(
              CompiledPolicy::V6Key{interval, r.peer.prefix_length, r.peer.network.bytes}, m);
        } else {
          out.v4_entries_.try_emplace(
              v4_key(interval, r.peer.prefix_length, r.peer.network.v4_host_order()), m);
        }
        if (out.table_entries() > kMaxTableEntries) return;
      }
    }
    set.prefix_offsets.push_back(0);
    for (const auto& l : lengths) {
      // Longest prefixes first: they are the most specific and most often hit.
      set.prefix_lengths.insert(set.prefix_lengths.end(), l.rbegin(), l.rend());
      set.prefix_offsets.push_back(static_cast<uint32_t>(set.prefix_lengths.size()));
    }
  }
};

CompileResult PolicyCompiler::compile(const PolicyDocument& document, uint64_t version,
                                      uint32_t worker_slots) {
  CompileResult result;
  auto policy = std::unique_ptr<CompiledPolicy>(new CompiledPolicy());
  policy->version_ = version;
  policy->unknown_devices_ = document.unknown_devices;
  policy->devices_.reserve(document.devices.size());
  for (const Device& d : document.devices) {
    const auto index = static_cast<int32_t>(policy->devices_.size());
    policy->devices_.push_back(
        CompiledDevice{d.name, d.mac, d.ips, d.mode, d.deny_action, d.rules});
    policy->by_mac_.emplace(d.mac.as_u64(), index);
    for (const IpAddress& ip : d.ips) policy->by_ip_.emplace(ip, index);
  }
  policy->rule_sets_.resize(policy->devices_.size() * CompiledPolicy::kRuleSetsPerDevice);

  PolicyCompiler compiler{*policy, result.errors};
  for (uint32_t i = 0; i < policy->devices_.size(); ++i) {
    for (Direction dir : {Direction::out, Direction::in}) {
      for (Protocol proto : {Protocol::tcp, Protocol::udp, Protocol::icmp}) {
        compiler.build_rule_set(i, dir, proto, false);
        compiler.build_rule_set(i, dir, proto, true);
      }
    }
    if (policy->table_entries() > kMaxTableEntries) {
      result.errors.push_back(
          PolicyError{"devices[" + std::to_string(i) + "].rules",
                      "rule set too large to compile: overlapping port ranges expand past " +
                          std::to_string(kMaxTableEntries) + " table entries"});
      return result;
    }
  }
  // Interval ids are packed into 26 bits of the IPv4 key.
  if (compiler.next_interval >= (1u << 26)) {
    result.errors.push_back(PolicyError{"", "too many distinct port ranges to compile"});
    return result;
  }

  policy->worker_slots_ = worker_slots;
  policy->counters_ = std::make_unique<DeviceCounters[]>(
      static_cast<size_t>(worker_slots) * std::max<size_t>(policy->devices_.size(), 1));
  result.policy = std::move(policy);
  return result;
}

CompileResult compile_policy(const PolicyDocument& document, uint64_t version,
                             uint32_t worker_slots) {
  return PolicyCompiler::compile(document, version, worker_slots);
}

}  // namespace cordon::engine
