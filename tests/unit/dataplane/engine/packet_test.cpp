#include "dataplane/engine/packet.h"

#include <gtest/gtest.h>

#include <string>

namespace cordon::engine {
namespace {

using namespace std::string_literals;

TEST(MacAddress, ParsesEitherCase) {
  auto mac = MacAddress::parse("02:C0:4d:0a:Ff:10");
  ASSERT_TRUE(mac);
  EXPECT_EQ(mac->bytes, (std::array<uint8_t, 6>{0x02, 0xc0, 0x4d, 0x0a, 0xff, 0x10}));
  EXPECT_EQ(mac->to_string(), "02:c0:4d:0a:ff:10");
  EXPECT_EQ(mac->as_u64(), 0x02c04d0aff10u);
}

TEST(MacAddress, RejectsMalformedText) {
  for (const char* text : {"", "02:c0:4d:0a:ff", "02:c0:4d:0a:ff:10:", "02-c0-4d-0a-ff-10",
                           "02:c0:4d:0a:ff:1g", "2:c0:4d:0a:ff:100", "02:c0:4d:0a:ff: 1",
                           "+2:c0:4d:0a:ff:10", "02:c0:4d:0a:ff:-1", "02:c0:4d:0a:ff:10 "}) {
    EXPECT_FALSE(MacAddress::parse(text)) << text;
  }
}

TEST(MacAddress, MulticastBitIncludesBroadcast) {
  EXPECT_TRUE(MacAddress::parse("ff:ff:ff:ff:ff:ff")->is_multicast());
  EXPECT_TRUE(MacAddress::parse("01:00:5e:00:00:fb")->is_multicast());
  EXPECT_FALSE(MacAddress::parse("02:00:00:00:00:01")->is_multicast());
}

TEST(IpAddress, ParsesIpv4) {
  auto a = IpAddress::parse("10.50.0.20");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->family, 4);
  EXPECT_EQ(a->v4_host_order(), 0x0a320014u);
  EXPECT_EQ(*a, IpAddress::v4(0x0a320014));
  EXPECT_EQ(a->to_string(), "10.50.0.20");
  EXPECT_EQ(a->bit_width(), 32u);
  for (size_t i = 4; i < 16; ++i) EXPECT_EQ(a->bytes[i], 0) << i;  // families never mix
}

TEST(IpAddress, ParsesIpv6AndPrintsCanonically) {
  auto a = IpAddress::parse("FD00:0:0::0010");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->family, 6);
  EXPECT_EQ(a->bytes[0], 0xfd);
  EXPECT_EQ(a->bytes[15], 0x10);
  EXPECT_EQ(a->to_string(), "fd00::10");
  EXPECT_EQ(a->bit_width(), 128u);
  EXPECT_EQ(IpAddress::parse("::")->to_string(), "::");
  EXPECT_EQ(IpAddress::parse("::ffff:10.0.0.1")->family, 6);
}

TEST(IpAddress, FromWireMatchesParse) {
  const uint8_t v4[] = {192, 168, 1, 2};
  EXPECT_EQ(IpAddress::v4_from_wire(v4), *IpAddress::parse("192.168.1.2"));
  uint8_t v6[16] = {0xfe, 0x80};
  v6[15] = 1;
  EXPECT_EQ(IpAddress::v6_from_wire(v6), *IpAddress::parse("fe80::1"));
}

TEST(IpAddress, RejectsMalformedText) {
  for (const char* text :
       {"", "10.0.0", "10.0.0.256", "10.0.0.1 ", " 10.0.0.1", "10.0.0.1/24", "fe80::1%eth0",
        "fe80:::1", "1:2:3:4:5:6:7:8:9", "host.example", "10.0.0.1:80", "010.0.0.1"}) {
    EXPECT_FALSE(IpAddress::parse(text)) << text;
  }
  EXPECT_FALSE(IpAddress::parse(std::string(46, '1')));
}

// A policy string with an embedded NUL must not parse as its prefix.
TEST(IpAddress, RejectsEmbeddedNul) {
  EXPECT_FALSE(IpAddress::parse("10.0.0.1\0garbage"s));
  EXPECT_FALSE(IpAddress::parse("fe80::1\0"s));
  EXPECT_FALSE(Cidr::parse("10.0.0.0\0/8"s));
}

TEST(IpAddress, UnsetPrintsUnset) {
  EXPECT_EQ(IpAddress{}.to_string(), "unset");
}

TEST(IpAddress, OrdersAndComparesWithinFamily) {
  EXPECT_LT(*IpAddress::parse("10.0.0.1"), *IpAddress::parse("10.0.0.2"));
  EXPECT_NE(*IpAddress::parse("::"), *IpAddress::parse("0.0.0.0"));
}

TEST(IpAddress, MaskedClearsHostBits) {
  const IpAddress a = *IpAddress::parse("10.50.77.200");
  EXPECT_EQ(a.masked(24).to_string(), "10.50.77.0");
  EXPECT_EQ(a.masked(20).to_string(), "10.50.64.0");
  EXPECT_EQ(a.masked(0).to_string(), "0.0.0.0");
  EXPECT_EQ(a.masked(32), a);
  EXPECT_EQ(a.masked(31).to_string(), "10.50.77.200");
  EXPECT_EQ(a.masked(29).to_string(), "10.50.77.200");
  EXPECT_EQ(a.masked(28).to_string(), "10.50.77.192");

  const IpAddress b = *IpAddress::parse("fd00:1234:5678:9abc:def0::ffff");
  EXPECT_EQ(b.masked(64).to_string(), "fd00:1234:5678:9abc::");
  EXPECT_EQ(b.masked(127).to_string(), "fd00:1234:5678:9abc:def0::fffe");
  EXPECT_EQ(b.masked(36).to_string(), "fd00:1234:5000::");
  EXPECT_EQ(b.masked(128), b);
  EXPECT_EQ(b.masked(0).family, 6);
}

TEST(Cidr, ParsesNetworksAndHostRoutes) {
  auto net = Cidr::parse("10.50.0.0/16");
  ASSERT_TRUE(net);
  EXPECT_EQ(net->prefix_length, 16);
  EXPECT_EQ(net->network, *IpAddress::parse("10.50.0.0"));
  EXPECT_EQ(net->to_string(), "10.50.0.0/16");

  auto host = Cidr::parse("10.50.0.20");
  ASSERT_TRUE(host);
  EXPECT_EQ(host->prefix_length, 32);
  EXPECT_EQ(host->to_string(), "10.50.0.20/32");

  auto v6 = Cidr::parse("fe80::/64");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->prefix_length, 64);
  EXPECT_EQ(v6->to_string(), "fe80::/64");
  EXPECT_EQ(Cidr::parse("fd00::1")->prefix_length, 128);
  EXPECT_EQ(Cidr::parse("0.0.0.0/0")->prefix_length, 0);
  EXPECT_EQ(Cidr::parse("::/0")->prefix_length, 0);
}

TEST(Cidr, RejectsMalformedText) {
  for (const char* text : {"10.0.0.1/24", "10.0.0.0/33", "fe80::/129", "10.0.0.0/", "/24",
                           "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8x", "10.0.0.0/ 8",
                           "10.0.0.0/8/8", "10.0.0.0/1000", "fe80::1/64", "nonsense/8", ""}) {
    EXPECT_FALSE(Cidr::parse(text)) << text;
  }
}

TEST(Cidr, ContainsOnlyItsOwnFamily) {
  const Cidr net = *Cidr::parse("10.50.0.0/16");
  EXPECT_TRUE(net.contains(*IpAddress::parse("10.50.255.1")));
  EXPECT_TRUE(net.contains(*IpAddress::parse("10.50.0.0")));
  EXPECT_FALSE(net.contains(*IpAddress::parse("10.51.0.1")));
  EXPECT_FALSE(net.contains(*IpAddress::parse("::a32:1")));

  const Cidr any4 = *Cidr::parse("0.0.0.0/0");
  EXPECT_TRUE(any4.contains(*IpAddress::parse("192.0.2.1")));
  EXPECT_FALSE(any4.contains(*IpAddress::parse("fd00::1")));

  const Cidr v6 = *Cidr::parse("fd00:10::/32");
  EXPECT_TRUE(v6.contains(*IpAddress::parse("fd00:10:ffff::1")));
  EXPECT_FALSE(v6.contains(*IpAddress::parse("fd00:11::1")));
}

}  // namespace
}  // namespace cordon::engine
