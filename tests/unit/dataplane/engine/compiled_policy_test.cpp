// CompiledPolicy: device lookup and classification, checked against a brute-force
// reference on random rule sets (first matching rule in document order), one query at a
// time and in bursts (classify_burst), IPv4 and IPv6.
#include "dataplane/engine/compiled_policy.h"

#include "dataplane/engine/flow_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace cordon::engine {
namespace {

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}
Cidr cidr(const char* text) {
  return *Cidr::parse(text);
}

Rule rule(std::string name, Direction dir, Protocol proto, const char* peer, uint16_t first = 0,
          uint16_t last = 65535) {
  Rule r;
  r.name = std::move(name);
  r.dir = dir;
  r.proto = proto;
  r.peer = cidr(peer);
  r.dport = PortRange{first, last};
  return r;
}

Device device(std::string name, const char* mac, std::vector<IpAddress> ips,
              std::vector<Rule> rules) {
  Device d;
  d.name = std::move(name);
  d.mac = *MacAddress::parse(mac);
  d.ips = std::move(ips);
  d.rules = std::move(rules);
  return d;
}

std::unique_ptr<CompiledPolicy> compile(const PolicyDocument& doc) {
  CompileResult r = compile_policy(doc, 7, 1);
  EXPECT_TRUE(r.errors.empty());
  return std::move(r.policy);
}

TEST(CompiledPolicy, FindsDevicesByMacAndIp) {
  PolicyDocument doc;
  doc.devices.push_back(device("ct-1", "02:c0:4d:00:00:10", {ip("10.50.0.10")}, {}));
  doc.devices.push_back(
      device("mr-1", "02:c0:4d:00:00:11", {ip("10.50.0.11"), ip("2001:db8::11")}, {}));
  auto p = compile(doc);
  EXPECT_EQ(p->version(), 7u);
  EXPECT_EQ(p->device_by_mac(*MacAddress::parse("02:c0:4d:00:00:11")), 1);
  EXPECT_EQ(p->device_by_mac(*MacAddress::parse("02:c0:4d:00:00:12")), kNoDevice);
  EXPECT_EQ(p->device_by_ip(ip("10.50.0.10")), 0);
  EXPECT_EQ(p->device_by_ip(ip("2001:db8::11")), 1);
  EXPECT_EQ(p->device_by_ip(ip("10.50.0.12")), kNoDevice);
  // An IPv4 address never matches an IPv6 one with the same leading bytes.
  EXPECT_EQ(p->device_by_ip(ip("a32:a::")), kNoDevice);
  EXPECT_TRUE(p->device_has_mac(1, *MacAddress::parse("02:c0:4d:00:00:11")));
  EXPECT_FALSE(p->device_has_mac(0, *MacAddress::parse("02:c0:4d:00:00:11")));
}

// A Flow names its device and rule in packed fields; a policy built by code (not through
// the document's limits) with more devices than they hold is refused, not truncated.
TEST(CompiledPolicy, RefusesMoreDevicesThanAFlowCanName) {
  PolicyDocument doc;
  doc.devices.resize(Flow::kMaxDevices + 1);
  const CompileResult r = compile_policy(doc, 1, 1);
  EXPECT_EQ(r.policy, nullptr);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].message, "too many devices to compile");
}

TEST(CompiledPolicy, ClassifiesByDirectionProtocolPeerAndPort) {
  PolicyDocument doc;
  doc.devices.push_back(
      device("ct-1", "02:c0:4d:00:00:10", {ip("10.50.0.10")},
             {rule("store", Direction::out, Protocol::tcp, "10.50.0.20/32", 104, 104),
              rule("ntp", Direction::out, Protocol::udp, "10.50.0.1/32", 123, 123),
              rule("ping", Direction::in, Protocol::icmp, "10.50.0.0/24"),
              rule("range", Direction::in, Protocol::tcp, "10.50.0.0/24", 5000, 5010),
              rule("v6", Direction::out, Protocol::tcp, "2001:db8::/64", 443, 443)}));
  auto p = compile(doc);
  EXPECT_EQ(p->classify(0, Direction::out, Protocol::tcp, ip("10.50.0.20"), 104), 0);
  EXPECT_EQ(p->classify(0, Direction::out, Protocol::tcp, ip("10.50.0.20"), 105), kNoRule);
  EXPECT_EQ(p->classify(0, Direction::out, Protocol::tcp, ip("10.50.0.21"), 104), kNoRule);
  EXPECT_EQ(p->classify(0, Direction::in, Protocol::tcp, ip("10.50.0.20"), 104), kNoRule);
  EXPECT_EQ(p->classify(0, Direction::out, Protocol::udp, ip("10.50.0.20"), 104), kNoRule);
  EXPECT_EQ(p->classify(0, Direction::out, Protocol::udp, ip("10.50.0.1"), 123), 1);
  EXPECT_EQ(p->classify(0, Direction::in, Protocol::icmp, ip("10.50.0.77"), 0), 2);
  EXPECT_EQ(p->classify(0, Direction::in, Protocol::icmp, ip("10.50.1.77"), 0), kNoRule);
  EXPECT_EQ(p->classify(0, Direction::out, Protocol::icmp, ip("10.50.0.77"), 0), kNoRule);
  EXPECT_EQ(p->classify(0, Direction::in, Protocol::tcp, ip("10.50.0.9"), 4999), kNoRule);
  EXPECT_EQ(p->classify(0, Direction::in, Protocol::tcp, ip("10.50.0.9"), 5000), 3);
  EXPECT_EQ(p->classify(0, Direction::in, Protocol::tcp, ip("10.50.0.9"), 5010), 3);
  EXPECT_EQ(p->classify(0, Direction::in, Protocol::tcp, ip("10.50.0.9"), 5011), kNoRule);
  EXPECT_EQ(p->classify(0, Direction::out, Protocol::tcp, ip("2001:db8::5"), 443), 4);
  EXPECT_EQ(p->classify(0, Direction::out, Protocol::tcp, ip("2001:db9::5"), 443), kNoRule);
}

TEST(CompiledPolicy, FirstMatchingRuleWins) {
  PolicyDocument doc;
  doc.devices.push_back(
      device("ct-1", "02:c0:4d:00:00:10", {ip("10.50.0.10")},
             {rule("wide", Direction::out, Protocol::tcp, "10.0.0.0/8", 1, 65535),
              rule("narrow", Direction::out, Protocol::tcp, "10.50.0.20/32", 104, 104)}));
  auto p = compile(doc);
  EXPECT_EQ(p->classify(0, Direction::out, Protocol::tcp, ip("10.50.0.20"), 104), 0);
}

// Reference semantics: the first rule in document order that matches.
int32_t brute_force(const Device& d, Direction dir, Protocol proto, const IpAddress& peer,
                    uint16_t port) {
  for (size_t i = 0; i < d.rules.size(); ++i) {
    const Rule& r = d.rules[i];
    if (r.dir != dir || r.proto != proto || !r.peer.contains(peer)) continue;
    if (proto != Protocol::icmp && (port < r.dport.first || port > r.dport.last)) continue;
    return static_cast<int32_t>(i);
  }
  return kNoRule;
}

TEST(CompiledPolicy, MatchesBruteForceOnRandomRuleSets) {
  std::mt19937 rng(12345);
  auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
  const uint8_t lengths[] = {0, 8, 16, 20, 24, 28, 32};
  for (int round = 0; round < 20; ++round) {
    PolicyDocument doc;
    for (int dev = 0; dev < 4; ++dev) {
      std::vector<Rule> rules;
      for (int n = 0; n < 60; ++n) {
        const uint8_t len = lengths[pick(7)];
        const uint32_t addr = 0x0a000000u | (pick(4) << 8) | pick(8);
        const uint32_t mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
        Rule r;
        r.name = "r" + std::to_string(n);
        r.dir = pick(2) ? Direction::in : Direction::out;
        r.proto = static_cast<Protocol>(pick(3));
        r.peer = Cidr{IpAddress::v4(addr & mask), len};
        const auto first = static_cast<uint16_t>(pick(20) + 100);
        r.dport = PortRange{first, static_cast<uint16_t>(first + (pick(3) == 0 ? pick(30) : 0))};
        rules.push_back(r);
      }
      char mac[18];
      std::snprintf(mac, sizeof mac, "02:00:00:00:00:%02x", dev);
      doc.devices.push_back(
          device("d" + std::to_string(dev), mac, {IpAddress::v4(0xc0a80000u + dev)}, rules));
    }
    auto p = compile(doc);
    for (int probe = 0; probe < 5000; ++probe) {
      const uint32_t dev = pick(4);
      const auto dir = pick(2) ? Direction::in : Direction::out;
      const auto proto = static_cast<Protocol>(pick(3));
      const IpAddress peer = IpAddress::v4(0x0a000000u | (pick(5) << 8) | pick(10));
      const auto port = static_cast<uint16_t>(pick(160) + 90);
      ASSERT_EQ(p->classify(dev, dir, proto, peer, port),
                brute_force(doc.devices[dev], dir, proto, peer, port))
          << "round " << round << " device " << dev << " peer " << peer.to_string() << " port "
          << port;
    }
  }
}

// Random policies of IPv4 and IPv6 rules over few or many port intervals (more than the
// 64 that the SIMD interval search handles, and ports 0 and 65535), several prefix lengths
// per interval (more than the two probes of the fast path); queries from known, unknown,
// IPv6 and unset device addresses. classify(), device_by_ip() and classify_burst() (in
// bursts of every size around its internal group of 16) must all agree with brute force.
TEST(CompiledPolicy, BurstAndSingleLookupsMatchBruteForce) {
  std::mt19937 rng(777);
  auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
  const uint8_t v4_lengths[] = {0, 8, 16, 20, 24, 28, 30, 32};
  const uint8_t v6_lengths[] = {0, 32, 48, 64, 120, 124, 126, 128};
  auto v6_peer = [&]() {
    IpAddress a = ip("2001:db8::");
    a.bytes[7] = static_cast<uint8_t>(pick(4));
    a.bytes[15] = static_cast<uint8_t>(pick(8));
    return a;
  };
  auto v4_peer = [&]() { return IpAddress::v4(0x0a000000u | (pick(5) << 8) | pick(10)); };
  auto v6_device = [](uint32_t dev) {
    IpAddress a = ip("2001:db8:ffff::");
    a.bytes[15] = static_cast<uint8_t>(dev);
    return a;
  };
  for (int round = 0; round < 24; ++round) {
    const bool many_intervals = round % 3 == 0;
    const uint32_t devices = 1 + pick(6);
    // Port pool: a narrow window (few intervals) or spread over the whole range.
    std::vector<uint16_t> ports;
    for (uint32_t i = 0; i < (many_intervals ? 150u : 12u); ++i) {
      ports.push_back(static_cast<uint16_t>(many_intervals ? pick(65536) : 100 + pick(40)));
    }
    ports.insert(ports.end(), {0, 1, 65534, 65535});
    PolicyDocument doc;
    for (uint32_t dev = 0; dev < devices; ++dev) {
      std::vector<Rule> rules;
      const uint32_t count = many_intervals ? 240 : 60;
      for (uint32_t n = 0; n < count; ++n) {
        Rule r;
        r.name = "r" + std::to_string(n);
        r.dir = pick(2) ? Direction::in : Direction::out;
        r.proto = static_cast<Protocol>(pick(3));
        if (pick(10) < 3) {
          const uint8_t len = v6_lengths[pick(8)];
          r.peer = Cidr{v6_peer().masked(len), len};
        } else {
          const uint8_t len = v4_lengths[pick(8)];
          r.peer = Cidr{v4_peer().masked(len), len};
        }
        const uint16_t first = ports[pick(static_cast<uint32_t>(ports.size()))];
        const uint32_t span = pick(4) == 0 ? pick(many_intervals ? 3000 : 30) : 0;
        r.dport = PortRange{first, static_cast<uint16_t>(std::min<uint32_t>(first + span, 65535))};
        rules.push_back(r);
      }
      char mac[32];
      std::snprintf(mac, sizeof mac, "02:00:00:00:01:%02x", dev & 0xffu);
      doc.devices.push_back(device("d" + std::to_string(dev), mac,
                                   {IpAddress::v4(0xc0a80000u + dev), v6_device(dev)}, rules));
    }
    auto p = compile(doc);
    ASSERT_TRUE(p);

    std::vector<CompiledPolicy::ClassifyQuery> queries;
    for (int i = 0; i < 3000; ++i) {
      CompiledPolicy::ClassifyQuery q;
      const uint32_t dev = pick(devices + 1);  // devices: unknown
      switch (pick(8)) {
        case 0:
          q.device = v6_device(dev);
          break;
        case 1:
          q.device = IpAddress{};
          break;  // family 0: never a device
        default:
          q.device = IpAddress::v4(0xc0a80000u + dev);
          break;
      }
      q.peer = pick(3) == 0 ? v6_peer() : v4_peer();
      q.dir = pick(2) ? Direction::in : Direction::out;
      q.proto = static_cast<Protocol>(pick(3));
      const uint16_t near = ports[pick(static_cast<uint32_t>(ports.size()))];
      q.dport = static_cast<uint16_t>(near + pick(3) - 1);  // around a rule's first port
      queries.push_back(q);
    }
    std::vector<CompiledPolicy::ClassifyResult> results(queries.size());
    for (size_t at = 0; at < queries.size();) {
      const size_t n = std::min<size_t>(pick(40), queries.size() - at);  // 0..39
      p->classify_burst({queries.data() + at, n}, {results.data() + at, n});
      at += n;
    }
    for (size_t i = 0; i < queries.size(); ++i) {
      const auto& q = queries[i];
      int32_t want_device = kNoDevice;
      for (uint32_t d = 0; d < devices && want_device == kNoDevice; ++d) {
        if (doc.devices[d].ips[0] == q.device || doc.devices[d].ips[1] == q.device) {
          want_device = static_cast<int32_t>(d);
        }
      }
      const int32_t want_rule =
          want_device == kNoDevice
              ? kNoRule
              : brute_force(doc.devices[want_device], q.dir, q.proto, q.peer, q.dport);
      const std::string where = "round " + std::to_string(round) + " query " + std::to_string(i) +
                                " device " + q.device.to_string() + " peer " + q.peer.to_string() +
                                " port " + std::to_string(q.dport);
      ASSERT_EQ(p->device_by_ip(q.device), want_device) << where;
      if (want_device != kNoDevice) {
        ASSERT_EQ(p->classify(static_cast<uint32_t>(want_device), q.dir, q.proto, q.peer, q.dport),
                  want_rule)
            << where;
      }
      ASSERT_EQ(results[i].device, want_device) << where;
      ASSERT_EQ(results[i].rule, want_rule) << where;
    }
  }
}

// Many devices: the device table spills buckets; every address is still found once.
TEST(CompiledPolicy, FindsEveryDeviceOfALargePolicy) {
  PolicyDocument doc;
  for (uint32_t d = 0; d < 3000; ++d) {
    char mac[32];
    std::snprintf(mac, sizeof mac, "02:00:00:00:%02x:%02x", (d >> 8) & 0xffu, d & 0xffu);
    doc.devices.push_back(
        device("d" + std::to_string(d), mac, {IpAddress::v4(0x0a000000u + d * 7)},
               {rule("any", Direction::out, Protocol::tcp, "0.0.0.0/0", 443, 443)}));
  }
  auto p = compile(doc);
  std::vector<CompiledPolicy::ClassifyQuery> queries;
  for (uint32_t a = 0; a < 3000 * 7; ++a) {
    CompiledPolicy::ClassifyQuery q;
    q.device = IpAddress::v4(0x0a000000u + a);
    q.peer = ip("192.0.2.1");
    q.dport = 443;
    queries.push_back(q);
  }
  std::vector<CompiledPolicy::ClassifyResult> results(queries.size());
  p->classify_burst(queries, results);
  for (uint32_t a = 0; a < queries.size(); ++a) {
    const int32_t want = a % 7 == 0 ? static_cast<int32_t>(a / 7) : kNoDevice;
    ASSERT_EQ(p->device_by_ip(queries[a].device), want) << a;
    ASSERT_EQ(results[a].device, want) << a;
    ASSERT_EQ(results[a].rule, want == kNoDevice ? kNoRule : 0) << a;
  }
}

}  // namespace
}  // namespace cordon::engine
