#include "dataplane/engine/compiled_policy.h"

#include "dataplane/engine/flow_table.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <set>

namespace cordon::engine {
namespace {

// Bound on hash entries one policy may expand to (rules copied into every elementary
// port interval they cover). Typical allowlists use a tiny fraction; a pathological rule
// set (thousands of overlapping wide port ranges) is refused rather than exhausting memory.
constexpr size_t kMaxTableEntries = 8'000'000;

// Rule sets with at most this many intervals are searched with two SSE compares (the
// summary of every 8th start, then one block of 8); larger ones by binary search.
constexpr uint32_t kSimdIntervals = 64;
constexpr size_t kHeaderWords = 3;  // first_interval/n, summary (2 words)

size_t padded_starts(uint32_t n) {
  return (n + 7) & ~size_t{7};
}
size_t lengths_word(uint32_t n) {  // first word after the starts
  return kHeaderWords + padded_starts(n) / 4;
}

uint16_t load16(const uint64_t* words, size_t index) {
  uint16_t v;
  std::memcpy(&v, reinterpret_cast<const char*>(words) + 2 * index, sizeof v);
  return v;
}
uint32_t load32(const uint64_t* words, size_t index) {
  uint32_t v;
  std::memcpy(&v, reinterpret_cast<const char*>(words) + 4 * index, sizeof v);
  return v;
}

// Number of the 8 uint16 lanes of `v` that are <= port (as broadcast in `p`).
uint32_t count_le(__m128i v, __m128i p) {
  const __m128i le = _mm_cmpeq_epi16(_mm_min_epu16(v, p), v);
  return static_cast<uint32_t>(__builtin_popcount(static_cast<unsigned>(_mm_movemask_epi8(le)))) /
         2;
}

uint32_t v4_mask(uint32_t prefix_length) {
  return static_cast<uint32_t>(~uint64_t{0} << (32 - prefix_length));  // 0 for /0
}

// Lowest of two rule indices, kNoRule (-1) counting as the highest.
int32_t lower_rule(int32_t a, int32_t b) {
  return static_cast<uint32_t>(a) < static_cast<uint32_t>(b) ? a : b;
}

}  // namespace

void CompiledPolicy::KeyTable::build(const std::vector<std::pair<uint64_t, int32_t>>& entries) {
  size_t lines = 2;
  while (lines * 2 < entries.size()) lines *= 2;  // at most 2 of 4 slots used on average
  lines_.assign(lines, Line{});
  mask_ = lines - 1;
  shift_ = 64 - std::countr_zero(lines);
  size_ = entries.size();
  for (const auto& [key, value] : entries) {
    for (size_t b = bucket(key);; b = (b + 1) & mask_) {
      Line& line = lines_[b];
      auto* free = std::find(std::begin(line.keys), std::end(line.keys), kEmpty);
      if (free != std::end(line.keys)) {
        line.values[free - line.keys] = value;
        *free = key;
        break;
      }
    }
  }
}

size_t CompiledPolicy::V6KeyHash::operator()(const V6Key& k) const noexcept {
  uint64_t hi = 0;
  uint64_t lo = 0;
  std::memcpy(&hi, k.address.data(), 8);
  std::memcpy(&lo, k.address.data() + 8, 8);
  return static_cast<size_t>(hi ^ (lo * 0x9e3779b97f4a7c15ULL) ^
                             (uint64_t{k.interval} << 8 | k.prefix_length) * 0xc2b2ae3d27d4eb4fULL);
}

int32_t CompiledPolicy::device_by_ip(const IpAddress& ip) const noexcept {
  if (ip.family == 4) return by_ip4_.find(ip.v4_host_order());
  auto it = by_ip6_.find(ip);
  return it == by_ip6_.end() ? kNoDevice : it->second;
}

inline uint32_t CompiledPolicy::find_interval(const uint64_t* set, uint32_t n,
                                              uint16_t port) noexcept {
  if (n <= kSimdIntervals) [[likely]] {
    const __m128i p = _mm_set1_epi16(static_cast<short>(port));
    const __m128i summary = _mm_loadu_si128(reinterpret_cast<const __m128i*>(set + 1));
    // Lanes past the end hold 0xffff: they count only for port 65535, hence the clamps.
    const uint32_t block = std::min(count_le(summary, p), (n + 7) / 8) - 1;
    const __m128i starts =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(set + kHeaderWords + 2 * block));
    return 8 * block + std::min(count_le(starts, p), n - 8 * block) - 1;
  }
  // Branchless binary search for the last start <= port (starts[0] == 0 <= port).
  const uint64_t* starts = set + kHeaderWords;
  size_t base = 0;
  for (size_t len = n; len > 1;) {
    const size_t half = len / 2;
    base = load16(starts, base + half) <= port ? base + half : base;
    len -= half;
  }
  return static_cast<uint32_t>(base);
}

int32_t CompiledPolicy::classify_v6(const uint64_t* set, uint32_t n, const IpAddress& peer,
                                    uint16_t port) const noexcept {
  const uint32_t local = find_interval(set, n, port);
  const auto interval = static_cast<uint32_t>(set[0]) + local;
  const uint64_t* offsets = set + lengths_word(n);
  int32_t best = kNoRule;
  for (uint32_t i = load32(offsets, local); i < load32(offsets, local + 1); ++i) {
    const uint8_t length = v6_lengths_[i];
    auto hit = v6_entries_.find(V6Key{interval, length, peer.masked(length).bytes});
    if (hit != v6_entries_.end()) best = lower_rule(best, hit->second);
  }
  return best;
}

int32_t CompiledPolicy::probe_rest(uint32_t interval, uint64_t plan,
                                   uint32_t address) const noexcept {
  int32_t best = kNoRule;
  for (uint64_t rest = plan >> 16; rest != 0;) {
    const auto length = static_cast<uint32_t>(63 - std::countl_zero(rest));
    rest &= ~(uint64_t{1} << length);
    best = lower_rule(best, v4_entries_.find(v4_key(interval, length, address & v4_mask(length))));
  }
  return best;
}

int32_t CompiledPolicy::classify(uint32_t device, Direction dir, Protocol proto,
                                 const IpAddress& peer, uint16_t dport) const noexcept {
  const bool v6 = peer.family == 6;
  const SetRef ref = rule_sets_[device * kRuleSetsPerDevice + ruleset_slot(dir, proto, v6)];
  if (proto == Protocol::icmp) dport = 0;
  const uint64_t* set = arena_.data() + ref.offset;
  if (v6) return classify_v6(set, ref.intervals, peer, dport);
  const uint32_t local = find_interval(set, ref.intervals, dport);
  const auto interval = static_cast<uint32_t>(set[0]) + local;
  const uint64_t plan = set[lengths_word(ref.intervals) + local];
  const uint32_t address = peer.v4_host_order();
  const uint32_t first = plan & 0xff;
  const uint32_t second = (plan >> 8) & 0xff;
  int32_t best = lower_rule(v4_entries_.find(v4_key(interval, first, address & v4_mask(first))),
                            v4_entries_.find(v4_key(interval, second, address & v4_mask(second))));
  if ((plan >> 16) != 0) [[unlikely]]
    best = lower_rule(best, probe_rest(interval, plan, address));
  return best;
}

void CompiledPolicy::classify_burst(std::span<const ClassifyQuery> in,
                                    std::span<ClassifyResult> out) const noexcept {
  // Software pipeline over groups of kGroup queries, one stage per dependent load, each
  // stage prefetching what the next one reads: device bucket -> rule set -> hash buckets.
  // Unknown devices and empty rule sets go through the same steps (sentinel rule sets
  // whose probes miss), so the only data-dependent branches left are the rare ones.
  constexpr size_t kGroup = 16;
  struct State {
    size_t bucket[2];
    uint64_t key[2];
    uint64_t plan;
    const uint64_t* set;
    uint32_t intervals;
    uint32_t interval;
  };
  const auto sentinel_device = static_cast<uint32_t>(devices_.size());
  for (size_t first = 0; first < in.size(); first += kGroup) {
    const size_t count = std::min(kGroup, in.size() - first);
    const ClassifyQuery* q = in.data() + first;
    ClassifyResult* r = out.data() + first;
    State st[kGroup];
    // 1: device buckets.
    for (size_t i = 0; i < count; ++i) {
      st[i].bucket[0] = by_ip4_.bucket(q[i].device.v4_host_order());
      by_ip4_.prefetch(st[i].bucket[0]);
    }
    // 2: devices, rule sets.
    for (size_t i = 0; i < count; ++i) {
      int32_t dev = by_ip4_.find(q[i].device.v4_host_order(), st[i].bucket[0]);
      if (q[i].device.family != 4) [[unlikely]]
        dev = device_by_ip(q[i].device);
      r[i].device = dev;
      const uint32_t index = dev == kNoDevice ? sentinel_device : static_cast<uint32_t>(dev);
      const SetRef ref = rule_sets_[index * kRuleSetsPerDevice +
                                    ruleset_slot(q[i].dir, q[i].proto, q[i].peer.family == 6)];
      st[i].intervals = ref.intervals;
      st[i].set = arena_.data() + ref.offset;
      __builtin_prefetch(st[i].set);
    }
    // 3: intervals, probe keys.
    for (size_t i = 0; i < count; ++i) {
      if (q[i].peer.family == 6) [[unlikely]]
        continue;
      const uint64_t* set = st[i].set;
      const uint16_t port = q[i].proto == Protocol::icmp ? 0 : q[i].dport;
      const uint32_t local = find_interval(set, st[i].intervals, port);
      const auto interval = static_cast<uint32_t>(set[0]) + local;
      const uint64_t plan = set[lengths_word(st[i].intervals) + local];
      const uint32_t address = q[i].peer.v4_host_order();
      const uint32_t first_length = plan & 0xff;
      const uint32_t second_length = (plan >> 8) & 0xff;
      st[i].key[0] = v4_key(interval, first_length, address & v4_mask(first_length));
      st[i].key[1] = v4_key(interval, second_length, address & v4_mask(second_length));
      st[i].bucket[0] = v4_entries_.bucket(st[i].key[0]);
      st[i].bucket[1] = v4_entries_.bucket(st[i].key[1]);
      v4_entries_.prefetch(st[i].bucket[0]);
      v4_entries_.prefetch(st[i].bucket[1]);
      st[i].plan = plan;
      st[i].interval = interval;
    }
    // 4: probes.
    for (size_t i = 0; i < count; ++i) {
      if (q[i].peer.family == 6) [[unlikely]] {
        const uint16_t port = q[i].proto == Protocol::icmp ? 0 : q[i].dport;
        r[i].rule = classify_v6(st[i].set, st[i].intervals, q[i].peer, port);
        continue;
      }
      int32_t best = lower_rule(v4_entries_.find(st[i].key[0], st[i].bucket[0]),
                                v4_entries_.find(st[i].key[1], st[i].bucket[1]));
      if ((st[i].plan >> 16) != 0) [[unlikely]]
        best = lower_rule(best, probe_rest(st[i].interval, st[i].plan, q[i].peer.v4_host_order()));
      r[i].rule = best;
    }
  }
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
  // Rules are visited in order, so the first insert for a key keeps the lowest index.
  boost::unordered_flat_map<uint64_t, int32_t> v4_entries;

  static CompileResult compile(const PolicyDocument& document, uint64_t version,
                               uint32_t worker_slots);

  size_t table_entries() const { return v4_entries.size() + out.v6_entries_.size(); }

  // Sets that no device's rule set uses and whose lookups always miss: one interval
  // (every port), no prefix length, an interval id that no table key has. Empty rule sets
  // and the sentinel device (unknown addresses in classify_burst) point at them.
  CompiledPolicy::SetRef empty_sets[2];
  void build_empty_sets() {
    for (bool v6 : {false, true}) {
      empty_sets[v6] = CompiledPolicy::SetRef{emit_set(next_interval, {0}, {{}}, v6), 1};
      ++next_interval;
    }
  }

  // Appends a rule set to the arena (layout: CompiledPolicy::SetRef); returns its offset.
  uint32_t emit_set(uint32_t first_interval, const std::vector<uint16_t>& starts,
                    const std::vector<std::set<uint8_t>>& lengths, bool v6) {
    const auto n = static_cast<uint32_t>(starts.size());
    std::vector<uint64_t>& arena = out.arena_;
    const size_t offset = arena.size();
    std::vector<uint16_t> padded(padded_starts(n), 0xffff);
    std::copy(starts.begin(), starts.end(), padded.begin());
    uint16_t summary[8];
    for (size_t b = 0; b < 8; ++b) summary[b] = 8 * b < n ? padded[8 * b] : 0xffff;
    arena.push_back(uint64_t{first_interval} | uint64_t{n} << 32);
    arena.resize(arena.size() + 2 + padded.size() / 4);
    std::memcpy(&arena[offset + 1], summary, sizeof summary);
    std::memcpy(&arena[offset + kHeaderWords], padded.data(), padded.size() * 2);
    if (v6) {
      std::vector<uint32_t> offsets;
      offsets.push_back(static_cast<uint32_t>(out.v6_lengths_.size()));
      for (const auto& l : lengths) {
        // Longest prefixes first: they are the most specific and most often hit.
        out.v6_lengths_.insert(out.v6_lengths_.end(), l.rbegin(), l.rend());
        offsets.push_back(static_cast<uint32_t>(out.v6_lengths_.size()));
      }
      const size_t at = arena.size();
      arena.resize(at + (offsets.size() + 1) / 2);
      std::memcpy(&arena[at], offsets.data(), offsets.size() * 4);
    } else {
      for (const auto& l : lengths) arena.push_back(probe_plan(l));
    }
    return static_cast<uint32_t>(offset);
  }

  // IPv4 interval's plan word: the two longest prefix lengths in bits 0-7 and 8-15 (the
  // same one twice when there is only one; /0 twice when there is none, a probe that
  // misses, since the interval has no rule), the other lengths as a mask from bit 16.
  static uint64_t probe_plan(const std::set<uint8_t>& lengths) {
    auto it = lengths.rbegin();
    const uint64_t first = it == lengths.rend() ? 0 : *it++;
    const uint64_t second = it == lengths.rend() ? first : *it++;
    uint64_t plan = first | second << 8;
    for (; it != lengths.rend(); ++it) plan |= uint64_t{1} << (16 + *it);
    return plan;
  }

  void build_rule_set(uint32_t device_index, Direction dir, Protocol proto, bool v6) {
    const CompiledDevice& device = out.devices_[device_index];
    std::vector<int32_t> members;
    for (size_t i = 0; i < device.rules.size(); ++i) {
      const Rule& r = device.rules[i];
      if (r.dir == dir && r.proto == proto && (r.peer.network.family == 6) == v6) {
        members.push_back(static_cast<int32_t>(i));
      }
    }
    CompiledPolicy::SetRef& ref = out.rule_sets_[device_index * CompiledPolicy::kRuleSetsPerDevice +
                                                 CompiledPolicy::ruleset_slot(dir, proto, v6)];
    if (members.empty()) {
      ref = empty_sets[v6];
      return;
    }

    // Elementary intervals: every rule's first port and the port after its last.
    std::set<uint32_t> boundaries{0};
    for (int32_t m : members) {
      const PortRange ports = proto == Protocol::icmp ? PortRange{} : device.rules[m].dport;
      boundaries.insert(ports.first);
      if (ports.last < 65535) boundaries.insert(uint32_t{ports.last} + 1);
    }
    const std::vector<uint16_t> starts(boundaries.begin(), boundaries.end());
    const auto n = static_cast<uint32_t>(starts.size());
    const uint32_t first_interval = next_interval;
    next_interval += n;

    std::vector<std::set<uint8_t>> lengths(n);
    for (int32_t m : members) {
      const Rule& r = device.rules[m];
      const PortRange ports = proto == Protocol::icmp ? PortRange{} : r.dport;
      auto first = std::lower_bound(starts.begin(), starts.end(), ports.first);
      for (auto it = first; it != starts.end() && *it <= ports.last; ++it) {
        const auto local = static_cast<uint32_t>(it - starts.begin());
        const uint32_t interval = first_interval + local;
        lengths[local].insert(r.peer.prefix_length);
        if (v6) {
          out.v6_entries_.try_emplace(
              CompiledPolicy::V6Key{interval, r.peer.prefix_length, r.peer.network.bytes}, m);
        } else {
          v4_entries.try_emplace(CompiledPolicy::v4_key(interval, r.peer.prefix_length,
                                                        r.peer.network.v4_host_order()),
                                 m);
        }
        if (table_entries() > kMaxTableEntries) return;
      }
    }

    ref.offset = emit_set(first_interval, starts, lengths, v6);
    ref.intervals = n;
  }
};

CompileResult PolicyCompiler::compile(const PolicyDocument& document, uint64_t version,
                                      uint32_t worker_slots) {
  CompileResult result;
  // Flows keep device and rule indices in packed fields. The document's limits keep within
  // them; this check is for policies built by code (vendor sessions add rules).
  if (document.devices.size() > Flow::kMaxDevices) {
    result.errors.push_back(PolicyError{"devices", "too many devices to compile"});
    return result;
  }
  for (size_t i = 0; i < document.devices.size(); ++i) {
    if (document.devices[i].rules.size() > Flow::kMaxRules) {
      result.errors.push_back(
          PolicyError{"devices[" + std::to_string(i) + "].rules", "too many rules to compile"});
      return result;
    }
  }
  auto policy = std::unique_ptr<CompiledPolicy>(new CompiledPolicy());
  policy->version_ = version;
  policy->unknown_devices_ = document.unknown_devices;
  policy->devices_.reserve(document.devices.size());
  boost::unordered_flat_map<uint64_t, int32_t> by_ip4;
  boost::unordered_flat_map<uint64_t, int32_t> by_mac;
  for (const Device& d : document.devices) {
    const auto index = static_cast<int32_t>(policy->devices_.size());
    policy->devices_.push_back(
        CompiledDevice{d.name, d.mac, d.ips, d.mode, d.deny_action, d.rules});
    by_mac.emplace(d.mac.as_u64(), index);
    policy->macs_.push_back(d.mac.as_u64());
    CompiledPolicy::OwnedIpv4 own;
    for (const IpAddress& ip : d.ips) {
      if (ip.family != 4) continue;
      if (own.count < CompiledPolicy::OwnedIpv4::kInline) {
        std::memcpy(&own.addresses[own.count], ip.bytes.data(), sizeof own.addresses[0]);
      }
      ++own.count;  // past kInline: CompiledDevice::owns answers
    }
    policy->owned_v4_.push_back(own);
    for (const IpAddress& ip : d.ips) {
      if (ip.family == 4) {
        by_ip4.emplace(ip.v4_host_order(), index);
      } else {
        policy->by_ip6_.emplace(ip, index);
      }
    }
  }
  policy->by_ip4_.build(std::vector<std::pair<uint64_t, int32_t>>(by_ip4.begin(), by_ip4.end()));
  policy->by_mac_.build(std::vector<std::pair<uint64_t, int32_t>>(by_mac.begin(), by_mac.end()));
  // One more device: the sentinel of classify_burst, all of its sets empty.
  policy->rule_sets_.resize((policy->devices_.size() + 1) * CompiledPolicy::kRuleSetsPerDevice);

  PolicyCompiler compiler{*policy, result.errors, 0, {}, {}};
  compiler.build_empty_sets();
  for (size_t slot = 0; slot < CompiledPolicy::kRuleSetsPerDevice; ++slot) {
    policy->rule_sets_[policy->devices_.size() * CompiledPolicy::kRuleSetsPerDevice + slot] =
        compiler.empty_sets[slot % 2];  // ruleset_slot: odd slots are IPv6
  }
  for (uint32_t i = 0; i < policy->devices_.size(); ++i) {
    for (Direction dir : {Direction::out, Direction::in}) {
      for (Protocol proto : {Protocol::tcp, Protocol::udp, Protocol::icmp}) {
        compiler.build_rule_set(i, dir, proto, false);
        compiler.build_rule_set(i, dir, proto, true);
      }
    }
    if (compiler.table_entries() > kMaxTableEntries) {
      result.errors.push_back(
          PolicyError{"devices[" + std::to_string(i) + "].rules",
                      "rule set too large to compile: overlapping port ranges expand past " +
                          std::to_string(kMaxTableEntries) + " table entries"});
      return result;
    }
  }
  // Interval ids are packed into 26 bits of the IPv4 key; arena offsets into 32 bits.
  if (compiler.next_interval >= (1u << 26) || policy->arena_.size() > UINT32_MAX) {
    result.errors.push_back(PolicyError{"", "too many distinct port ranges to compile"});
    return result;
  }
  policy->v4_entries_.build(std::vector<std::pair<uint64_t, int32_t>>(compiler.v4_entries.begin(),
                                                                      compiler.v4_entries.end()));

  policy->inspection_ = InspectionPolicy::compile(document, worker_slots, result.errors);
  if (!policy->inspection_) return result;
  policy->worker_slots_ = worker_slots;
  policy->counters_ = std::make_unique<DeviceCounters[]>(
      static_cast<size_t>(worker_slots) * std::max<size_t>(policy->devices_.size(), 1));
  policy->forward_lines_per_worker_ =
      std::max<size_t>(1, (policy->devices_.size() + ForwardCounterLine::kDevices - 1) /
                              ForwardCounterLine::kDevices);
  policy->forward_counters_ = std::make_unique<ForwardCounterLine[]>(
      static_cast<size_t>(worker_slots) * policy->forward_lines_per_worker_);
  result.policy = std::move(policy);
  return result;
}

CompileResult compile_policy(const PolicyDocument& document, uint64_t version,
                             uint32_t worker_slots) {
  return PolicyCompiler::compile(document, version, worker_slots);
}

}  // namespace cordon::engine
