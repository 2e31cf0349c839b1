#include "bench/workload.h"

#include <sys/resource.h>
#include <x86intrin.h>

#include <algorithm>
#include <array>
#include <unordered_map>

namespace cordon::bench {
namespace {

using engine::Cidr;
using engine::Device;
using engine::Direction;
using engine::IpAddress;
using engine::PortRange;
using engine::Protocol;
using engine::Rule;

uint32_t prefix_mask(unsigned length) {
  return length == 0 ? 0 : ~uint32_t{0} << (32 - length);
}

// Hospital services shared by many devices' allowlists: PACS, HL7 engines, DNS/NTP,
// management subnets, whole sites. All inside 10.0.0.0/8; devices live in 192.168.0.0/16,
// so a trace tuple can only ever match rules of its own device and direction (which keeps
// the 5-tuple rte_acl rule set exactly equivalent to the per-device engine tables).
struct PeerPools {
  std::vector<uint32_t> hosts, nets28, nets24, nets20, nets16;
};

PeerPools make_pools(Rng& rng) {
  PeerPools p;
  auto fill = [&rng](std::vector<uint32_t>& v, size_t n, unsigned length) {
    for (size_t i = 0; i < n; ++i) {
      v.push_back((0x0A000000u | (static_cast<uint32_t>(rng.next()) & 0x00FFFFFFu)) &
                  prefix_mask(length));
    }
  };
  fill(p.hosts, 2000, 32);
  fill(p.nets28, 200, 28);
  fill(p.nets24, 400, 24);
  fill(p.nets20, 60, 20);
  fill(p.nets16, 24, 16);
  return p;
}

constexpr std::array<uint16_t, 20> kTcpPorts = {104,  11112, 2575, 2576, 443,  80,  22,
                                                3389, 8080,  8443, 5900, 4242, 21,  445,
                                                139,  1433,  3306, 6661, 7777, 9100};
constexpr std::array<uint16_t, 10> kUdpPorts = {53, 123, 161, 162, 514, 67, 69, 5060, 1812, 2049};
constexpr std::array<PortRange, 4> kWideRanges = {PortRange{1024, 65535}, PortRange{49152, 65535},
                                                  PortRange{5000, 5999}, PortRange{8000, 8999}};

Cidr random_peer(Rng& rng, const PeerPools& pools) {
  const uint32_t k = rng.percent();
  uint32_t net = 0;
  uint8_t length = 32;
  auto pick = [&rng](const std::vector<uint32_t>& v) { return v[rng.below(uint32_t(v.size()))]; };
  if (k < 45) {
    net = pick(pools.hosts);
  } else if (k < 50) {
    net = pick(pools.nets28), length = 28;
  } else if (k < 75) {
    net = pick(pools.nets24), length = 24;
  } else if (k < 80) {
    net = pick(pools.nets20), length = 20;
  } else if (k < 93) {
    net = pick(pools.nets16), length = 16;
  } else if (k < 95) {
    net = 0, length = 0;  // any peer
  } else {
    net = 0x0A000000u | (static_cast<uint32_t>(rng.next()) & 0x00FFFFFFu);  // device-specific
  }
  return Cidr{IpAddress::v4(net), length};
}

PortRange random_ports(Rng& rng, Protocol proto) {
  const uint32_t k = rng.percent();
  if (k < 55) {
    const uint16_t p = proto == Protocol::tcp ? kTcpPorts[rng.below(kTcpPorts.size())]
                                              : kUdpPorts[rng.below(kUdpPorts.size())];
    return {p, p};
  }
  if (k < 70) {
    const auto p = static_cast<uint16_t>(rng.between(1024, 49151));
    return {p, p};
  }
  if (k < 85) {
    const auto lo = static_cast<uint16_t>(rng.between(1024, 60000));
    return {lo, static_cast<uint16_t>(lo + rng.between(1, 256))};
  }
  if (k < 95) return kWideRanges[rng.below(kWideRanges.size())];
  return {0, 65535};
}

Rule random_rule(Rng& rng, const PeerPools& pools, uint32_t index) {
  Rule r;
  r.name = "r" + std::to_string(index);
  r.dir = rng.percent() < 60 ? Direction::out : Direction::in;
  r.proto = rng.percent() < 75 ? Protocol::tcp : Protocol::udp;
  r.peer = random_peer(rng, pools);
  r.dport = random_ports(rng, r.proto);
  return r;
}

// Hash probes classify() makes for this tuple (see Workload::mean_prefix_probes).
uint32_t prefix_probes(const Device& d, const TraceTuple& t) {
  uint64_t lengths = 0;  // bit i: prefix length i present
  for (const Rule& r : d.rules) {
    if (r.dir == t.dir && r.proto == t.proto && r.dport.first <= t.dport &&
        t.dport <= r.dport.last) {
      lengths |= uint64_t{1} << r.peer.prefix_length;
    }
  }
  return static_cast<uint32_t>(__builtin_popcountll(lengths));
}

int32_t reference_verdict(const Workload& w, const std::unordered_map<uint32_t, uint32_t>& devices,
                          const TraceTuple& t) {
  auto it = devices.find(t.device_ip);
  if (it == devices.end()) return -1;
  const Device& d = w.document.devices[it->second];
  const IpAddress peer = IpAddress::v4(t.peer_ip);
  for (size_t i = 0; i < d.rules.size(); ++i) {
    const Rule& r = d.rules[i];
    if (r.dir == t.dir && r.proto == t.proto && r.peer.contains(peer) && r.dport.first <= t.dport &&
        t.dport <= r.dport.last) {
      return static_cast<int32_t>(w.rule_offset[it->second] + i);
    }
  }
  return -1;
}

}  // namespace

uint32_t device_ip(uint32_t device_index) {
  return 0xC0A80000u | ((device_index / 250) << 8) | (device_index % 250 + 1);
}

Workload make_workload(uint32_t rule_count, uint64_t seed) {
  Workload w;
  w.device_count = std::max<uint32_t>(1, rule_count / kRulesPerDevice);
  Rng pool_rng(seed);
  const PeerPools pools = make_pools(pool_rng);
  Rng rng(seed ^ (uint64_t{rule_count} << 32));

  std::unordered_map<uint32_t, uint32_t> by_ip;
  std::vector<std::pair<uint32_t, uint32_t>> owner;  // global id -> (device, local index)
  for (uint32_t d = 0; d < w.device_count; ++d) {
    Device dev;
    dev.name = "dev-" + std::to_string(d);
    dev.mac.bytes = {
        0x02, 0x00, 0x00, 0x00, static_cast<uint8_t>(d >> 8), static_cast<uint8_t>(d & 0xff)};
    dev.ips.push_back(IpAddress::v4(device_ip(d)));
    const uint32_t n = d + 1 == w.device_count ? rule_count - w.rule_count : kRulesPerDevice;
    w.rule_offset.push_back(w.rule_count);
    for (uint32_t i = 0; i < n; ++i) {
      dev.rules.push_back(random_rule(rng, pools, i));
      owner.emplace_back(d, i);
    }
    w.rule_count += n;
    by_ip.emplace(device_ip(d), d);
    w.document.devices.push_back(std::move(dev));
  }

  // The trace: half aimed at a random rule (a hit unless an earlier rule of the same
  // device matches first), half misses of four kinds. Whatever a tuple was aimed at, its
  // expected verdict is what the brute-force reference says.
  auto aimed = [&](TraceTuple& t, uint32_t& length, PortRange& ports) {
    const auto [d, i] = owner[rng.below(uint32_t(owner.size()))];
    const Rule& r = w.document.devices[d].rules[i];
    length = r.peer.prefix_length;
    ports = r.dport;
    t.device_ip = device_ip(d);
    t.dir = r.dir;
    t.proto = r.proto;
    t.peer_ip =
        r.peer.network.v4_host_order() | (static_cast<uint32_t>(rng.next()) & ~prefix_mask(length));
    t.dport = static_cast<uint16_t>(rng.between(ports.first, ports.last));
  };
  w.trace.reserve(kTraceSize);
  for (uint32_t n = 0; n < kTraceSize; ++n) {
    TraceTuple t;
    t.sport = static_cast<uint16_t>(rng.between(32768, 60999));
    uint32_t length = 0;
    PortRange ports;
    const uint32_t k = rng.percent();
    if (k < 50) {
      aimed(t, length, ports);
    } else if (k < 60) {  // a device the policy does not know
      aimed(t, length, ports);
      t.device_ip = 0xC0A8FA00u | rng.between(1, 250);
    } else if (k < 75) {  // right device and peer, port just outside the rule's range
      aimed(t, length, ports);
      if (ports.last < 65535) {
        t.dport = static_cast<uint16_t>(ports.last + 1);
      } else if (ports.first > 0) {
        t.dport = static_cast<uint16_t>(ports.first - 1);
      } else {
        t.proto = t.proto == engine::Protocol::tcp ? engine::Protocol::udp : engine::Protocol::tcp;
      }
    } else if (k < 88) {  // right device and port, peer just outside the rule's prefix
      aimed(t, length, ports);
      if (length > 8) {
        t.peer_ip ^= uint32_t{1} << (32 - rng.between(9, length));
      } else {
        t.dir = t.dir == Direction::out ? Direction::in : Direction::out;
      }
    } else {  // random tuple toward a known device
      t.device_ip = device_ip(rng.below(w.device_count));
      t.dir = rng.percent() < 50 ? Direction::out : Direction::in;
      t.proto = rng.percent() < 75 ? Protocol::tcp : Protocol::udp;
      t.peer_ip = 0x0A000000u | (static_cast<uint32_t>(rng.next()) & 0x00FFFFFFu);
      t.dport = static_cast<uint16_t>(rng.percent() < 50 ? kTcpPorts[rng.below(kTcpPorts.size())]
                                                         : rng.below(65536));
    }
    w.trace.push_back(t);
  }

  uint64_t probes = 0;
  uint64_t known = 0;
  w.engine_input.reserve(w.trace.size());
  w.expected.reserve(w.trace.size());
  for (const TraceTuple& t : w.trace) {
    w.engine_input.push_back(
        EngineInput{IpAddress::v4(t.device_ip), IpAddress::v4(t.peer_ip), t.dport, t.dir, t.proto});
    const int32_t e = reference_verdict(w, by_ip, t);
    w.expected.push_back(e);
    if (e >= 0) ++w.expected_hits;
    if (auto it = by_ip.find(t.device_ip); it != by_ip.end()) {
      probes += prefix_probes(w.document.devices[it->second], t);
      ++known;
    }
  }
  w.mean_prefix_probes = known == 0 ? 0.0 : double(probes) / double(known);
  return w;
}

uint64_t read_tsc() {
  _mm_lfence();
  const uint64_t t = __rdtsc();
  _mm_lfence();
  return t;
}

uint64_t context_switches() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return static_cast<uint64_t>(u.ru_nvcsw) + static_cast<uint64_t>(u.ru_nivcsw);
}

Timing time_engine(const engine::CompiledPolicy& policy, const Workload& w, uint32_t passes,
                   std::vector<int32_t>& out, EngineCalls calls) {
  out.resize(w.engine_input.size());
  const EngineInput* in = w.engine_input.data();
  int32_t* result = out.data();
  if (calls == EngineCalls::burst) {
    std::vector<engine::CompiledPolicy::ClassifyResult> results(kEngineBurst);
    engine::CompiledPolicy::ClassifyResult* res = results.data();
    return time_chunks(w.engine_input.size(), passes, [&](size_t begin, size_t end) {
      for (size_t i = begin; i < end; i += kEngineBurst) {
        const size_t n = std::min(kEngineBurst, end - i);
        policy.classify_burst({in + i, n}, {res, n});
        for (size_t k = 0; k < n; ++k) result[i + k] = res[k].rule;
      }
    });
  }
  return time_chunks(w.engine_input.size(), passes, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      const EngineInput& t = in[i];
      const int32_t dev = policy.device_by_ip(t.device);
      result[i] = dev == engine::kNoDevice ? engine::kNoRule
                                           : policy.classify(static_cast<uint32_t>(dev), t.dir,
                                                             t.proto, t.peer, t.dport);
    }
  });
}

uint32_t verify_engine(const engine::CompiledPolicy& policy, const Workload& w,
                       std::vector<std::string>& report) {
  std::vector<engine::CompiledPolicy::ClassifyResult> burst(w.engine_input.size());
  for (size_t i = 0; i < w.engine_input.size(); i += kEngineBurst) {
    const size_t n = std::min(kEngineBurst, w.engine_input.size() - i);
    policy.classify_burst({w.engine_input.data() + i, n}, {burst.data() + i, n});
  }
  uint32_t mismatches = 0;
  for (size_t i = 0; i < w.engine_input.size(); ++i) {
    const EngineInput& t = w.engine_input[i];
    const int32_t dev = policy.device_by_ip(t.device);
    int32_t global = -1;
    if (dev != engine::kNoDevice) {
      const int32_t r =
          policy.classify(static_cast<uint32_t>(dev), t.dir, t.proto, t.peer, t.dport);
      if (r != engine::kNoRule) global = static_cast<int32_t>(w.rule_offset[dev]) + r;
    }
    int32_t burst_global = -1;
    if (burst[i].device != dev) {
      burst_global = -2;  // reported as a mismatch below
    } else if (burst[i].rule != engine::kNoRule) {
      burst_global = static_cast<int32_t>(w.rule_offset[dev]) + burst[i].rule;
    }
    if (global != w.expected[i] || burst_global != w.expected[i]) {
      if (++mismatches <= 10) {
        report.push_back(
            describe(w, static_cast<uint32_t>(i)) + "; engine says " + std::to_string(global) +
            " (classify_burst: " +
            (burst_global == -2 ? std::string("wrong device") : std::to_string(burst_global)) +
            ")");
      }
    }
  }
  return mismatches;
}

std::string ipv4_to_string(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xff) + "." +
         std::to_string((a >> 8) & 0xff) + "." + std::to_string(a & 0xff);
}

std::string describe(const Workload& w, uint32_t i) {
  const TraceTuple& t = w.trace[i];
  std::string s = "tuple " + std::to_string(i) + ": device " + ipv4_to_string(t.device_ip) +
                  (t.dir == Direction::out ? " out " : " in ") +
                  (t.proto == Protocol::tcp ? "tcp" : "udp") + " peer " +
                  ipv4_to_string(t.peer_ip) + " dport " + std::to_string(t.dport) +
                  ", reference rule " + std::to_string(w.expected[i]);
  return s;
}

Stats stats_of(std::vector<double> samples) {
  Stats s;
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  const size_t n = samples.size();
  s.median = n % 2 == 1 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
  s.min = samples.front();
  s.max = samples.back();
  return s;
}

}  // namespace cordon::bench
