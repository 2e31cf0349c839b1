// CompiledPolicy: device lookup and classification, checked against a brute-force
// reference on random rule sets (first matching rule in document order).
#include "dataplane/engine/compiled_policy.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace cordon::engine
