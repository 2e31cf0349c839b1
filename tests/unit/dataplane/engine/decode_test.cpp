// Decoder tests: one table row per branch of decode(), plus truncation sweeps that cut
// valid frames at every byte (run under ASan they prove no read past `length`).
#include "dataplane/engine/decode.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <functional>
#include <new>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "tests/unit/dataplane/engine/frames.h"

namespace cordon::engine {
// Readable reasons in failure messages.
void PrintTo(DropReason reason, std::ostream* os) {
  *os << label(reason);
}
}  // namespace cordon::engine

namespace cordon::engine {
namespace {

using testing::Bytes;
using testing::FrameBuilder;

constexpr char kDeviceMac[] = "02:c0:4d:00:00:10";
constexpr char kNetworkMac[] = "02:00:00:00:00:20";
constexpr char kDeviceIp[] = "10.50.0.10";
constexpr char kNetworkIp[] = "10.50.0.20";
constexpr char kRouterIp[] = "10.50.0.1";
constexpr char kDeviceIp6[] = "fd00::10";
constexpr char kNetworkIp6[] = "fd00::20";
constexpr char kRouterIp6[] = "fe80::1";

// Byte offsets in an untagged frame.
constexpr size_t kL3 = 14;
constexpr size_t kIpv4L4 = kL3 + 20;
constexpr size_t kIpv6L4 = kL3 + 40;

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}
MacAddress mac(const char* text) {
  return *MacAddress::parse(text);
}

FrameBuilder v4() {
  return FrameBuilder().eth(kDeviceMac, kNetworkMac).ipv4(kDeviceIp, kNetworkIp);
}
FrameBuilder v4_from(const char* src) {
  return FrameBuilder().eth(kDeviceMac, kNetworkMac).ipv4(src, kNetworkIp);
}
FrameBuilder v6() {
  return FrameBuilder().eth(kDeviceMac, kNetworkMac).ipv6(kDeviceIp6, kNetworkIp6);
}
FrameBuilder v6_from(const char* src, const char* dst = kNetworkIp6) {
  return FrameBuilder().eth(kDeviceMac, kNetworkMac).ipv6(src, dst, 255);
}

Bytes tcp_syn_v4() {
  return v4().tcp(40000, 104, tcp_flag::syn).build();
}
Bytes udp_v4() {
  return v4().udp(40001, 2575).payload("MSH|").build();
}
Bytes echo_v4() {
  return v4().icmp_echo_request(0x1234, 7).build();
}
Bytes tcp_syn_v6() {
  return v6().tcp(40000, 104, tcp_flag::syn).build();
}
Bytes udp_v6() {
  return v6().udp(40001, 2575).payload("MSH|").build();
}

Bytes patched(Bytes frame, size_t at, uint8_t value) {
  frame.at(at) = value;
  return frame;
}
Bytes padded(Bytes frame, size_t to) {
  frame.resize(std::max(frame.size(), to), 0);
  return frame;
}

// RFC 1071 sum over bytes [from, to), folded (not complemented).
uint16_t ones_complement_sum(const Bytes& bytes, size_t from, size_t to, uint32_t sum = 0) {
  for (size_t i = from; i < to; i += 2) {
    sum += static_cast<uint32_t>(bytes[i] << 8) | (i + 1 < to ? bytes[i + 1] : 0u);
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// After patching IPv4 header bytes, so that only the patched field is wrong.
Bytes with_ipv4_checksum_refreshed(Bytes frame) {
  frame[kL3 + 10] = 0;
  frame[kL3 + 11] = 0;
  const uint16_t checksum =
      static_cast<uint16_t>(~ones_complement_sum(frame, kL3, kL3 + (frame[kL3] & 0x0f) * 4u));
  frame[kL3 + 10] = static_cast<uint8_t>(checksum >> 8);
  frame[kL3 + 11] = static_cast<uint8_t>(checksum);
  return frame;
}

struct DecodeCase {
  std::string description;
  Bytes frame;
  DropReason expected;
  std::function<void(const DecodedPacket&)> check = [](const DecodedPacket&) {};
};

void PrintTo(const DecodeCase& c, std::ostream* os) {
  *os << c.description;
}

std::vector<DecodeCase> ethernet_cases() {
  return {
      {"ethernet header one byte short", Bytes(13, 0), DropReason::truncated_ethernet},
      {"empty frame", Bytes{}, DropReason::truncated_ethernet},
      {"ethernet header only, unknown ethertype", FrameBuilder().ethertype(0x88b5, {}).build(),
       DropReason::unsupported_ethertype,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.ethertype, 0x88b5);
         EXPECT_EQ(p.l3_offset, kL3);
         EXPECT_EQ(p.l3, L3Kind::none);
       }},
      {"LLDP is unsupported", FrameBuilder().ethertype(0x88cc, Bytes(40, 1)).build(),
       DropReason::unsupported_ethertype},
      {"0x9100 tag is not a VLAN tag we accept",
       FrameBuilder().vlan(10, 0x9100).ipv4(kDeviceIp, kNetworkIp).udp(1, 2).build(),
       DropReason::unsupported_ethertype,
       [](const DecodedPacket& p) { EXPECT_EQ(p.vlan_count, 0); }},
      {"one 802.1Q tag",
       FrameBuilder()
           .eth(kDeviceMac, kNetworkMac)
           .vlan(100)
           .ipv4(kDeviceIp, kNetworkIp)
           .tcp(40000, 104, tcp_flag::syn)
           .build(),
       DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.vlan_count, 1);
         EXPECT_EQ(p.vlan_ids[0], 100);
         EXPECT_EQ(p.ethertype, 0x0800);
         EXPECT_EQ(p.l3_offset, kL3 + 4);
         EXPECT_EQ(p.l4_offset, kIpv4L4 + 4);
         EXPECT_EQ(p.dst_port, 104);
       }},
      {"VID is the low 12 bits of the TCI, priority bits ignored",
       patched(FrameBuilder().vlan(0x123).ipv4(kDeviceIp, kNetworkIp).udp(1, 2).build(), 14, 0xe1),
       DropReason::none,
       [](const DecodedPacket& p) {
         ASSERT_EQ(p.vlan_count, 1);
         EXPECT_EQ(p.vlan_ids[0], 0x123);
       }},
      {"QinQ 802.1ad outer and 802.1Q inner",
       FrameBuilder().vlan(100, 0x88a8).vlan(200).ipv6(kDeviceIp6, kNetworkIp6).udp(5, 6).build(),
       DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.vlan_count, 2);
         EXPECT_EQ(p.vlan_ids[0], 100);
         EXPECT_EQ(p.vlan_ids[1], 200);
         EXPECT_EQ(p.ethertype, 0x86dd);
         EXPECT_EQ(p.l3_offset, kL3 + 8);
         EXPECT_EQ(p.l4_offset, kIpv6L4 + 8);
       }},
      {"two 802.1Q tags",
       FrameBuilder()
           .vlan(1)
           .vlan(2)
           .arp(1, kDeviceMac, kDeviceIp, "00:00:00:00:00:00", kNetworkIp)
           .build(),
       DropReason::none, [](const DecodedPacket& p) { EXPECT_EQ(p.vlan_count, 2); }},
      {"three tags",
       FrameBuilder().vlan(1, 0x88a8).vlan(2).vlan(3).ipv4(kDeviceIp, kNetworkIp).udp(1, 2).build(),
       DropReason::vlan_too_deep},
      {"VLAN tag cut short",
       FrameBuilder().vlan(1).ipv4(kDeviceIp, kNetworkIp).truncate_to(17).build(),
       DropReason::truncated_ethernet},
      {"MAC addresses", tcp_syn_v4(), DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.src_mac, mac(kDeviceMac));
         EXPECT_EQ(p.dst_mac, mac(kNetworkMac));
         EXPECT_EQ(p.vlan_count, 0);
       }},
  };
}

std::vector<DecodeCase> arp_cases() {
  const Bytes request = FrameBuilder()
                            .eth(kDeviceMac, "ff:ff:ff:ff:ff:ff")
                            .arp(1, kDeviceMac, kDeviceIp, "00:00:00:00:00:00", kNetworkIp)
                            .build();
  const size_t arp = kL3;
  return {
      {"ARP request", request, DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.l3, L3Kind::arp);
         EXPECT_EQ(p.ethertype, 0x0806);
         EXPECT_EQ(p.dst_mac, mac("ff:ff:ff:ff:ff:ff"));
         EXPECT_EQ(p.arp.operation, 1);
         EXPECT_EQ(p.arp.sender_mac, mac(kDeviceMac));
         EXPECT_EQ(p.arp.sender_ip, ip(kDeviceIp));
         EXPECT_EQ(p.arp.target_mac, mac("00:00:00:00:00:00"));
         EXPECT_EQ(p.arp.target_ip, ip(kNetworkIp));
         EXPECT_EQ(p.src_ip.family, 0);  // not an IP packet
       }},
      {"ARP reply",
       FrameBuilder()
           .eth(kNetworkMac, kDeviceMac)
           .arp(2, kNetworkMac, kNetworkIp, kDeviceMac, kDeviceIp)
           .build(),
       DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.arp.operation, 2);
         EXPECT_EQ(p.arp.sender_mac, mac(kNetworkMac));
         EXPECT_EQ(p.arp.sender_ip, ip(kNetworkIp));
         EXPECT_EQ(p.arp.target_mac, mac(kDeviceMac));
         EXPECT_EQ(p.arp.target_ip, ip(kDeviceIp));
       }},
      {"ARP probe from 0.0.0.0 is not an IP source",
       FrameBuilder().arp(1, kDeviceMac, "0.0.0.0", "00:00:00:00:00:00", kDeviceIp).build(),
       DropReason::none},
      {"ARP padded to 60 bytes", padded(request, 60), DropReason::none},
      {"ARP one byte short", Bytes(request.begin(), request.end() - 1), DropReason::bad_arp,
       [](const DecodedPacket& p) { EXPECT_EQ(p.l3, L3Kind::arp); }},
      {"ARP hardware type not Ethernet", patched(request, arp + 1, 6), DropReason::bad_arp},
      {"ARP protocol type not IPv4", patched(request, arp + 2, 0x86), DropReason::bad_arp},
      {"ARP hardware size not 6", patched(request, arp + 4, 8), DropReason::bad_arp},
      {"ARP protocol size not 4", patched(request, arp + 5, 16), DropReason::bad_arp},
      {"ARP operation 3 (RARP)", patched(request, arp + 7, 3), DropReason::bad_arp,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.arp.operation, 3);
         EXPECT_EQ(p.arp.sender_ip, ip(kDeviceIp));  // still named in the event
       }},
  };
}

std::vector<DecodeCase> ipv4_cases() {
  const Bytes syn = tcp_syn_v4();
  return {
      {"TCP SYN over IPv4", syn, DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.l3, L3Kind::ipv4);
         EXPECT_EQ(p.src_ip, ip(kDeviceIp));
         EXPECT_EQ(p.dst_ip, ip(kNetworkIp));
         EXPECT_EQ(p.protocol, ip_protocol::tcp);
         EXPECT_EQ(p.hop_limit, 64);
         EXPECT_FALSE(p.is_fragment);
         EXPECT_EQ(p.l3_offset, kL3);
         EXPECT_EQ(p.l4_offset, kIpv4L4);
         EXPECT_EQ(p.payload_offset, kIpv4L4 + 20);
         EXPECT_EQ(p.payload_length, 0);
       }},
      {"TTL", v4().ipv4(kDeviceIp, kNetworkIp, 3).udp(1, 2).build(), DropReason::none,
       [](const DecodedPacket& p) { EXPECT_EQ(p.hop_limit, 3); }},
      {"IPv4 header one byte short", Bytes(syn.begin(), syn.begin() + kL3 + 19),
       DropReason::bad_ipv4_header, [](const DecodedPacket& p) { EXPECT_EQ(p.l3, L3Kind::ipv4); }},
      {"IPv4 version 6", patched(syn, kL3, 0x65), DropReason::bad_ipv4_header},
      {"IPv4 IHL 4", patched(syn, kL3, 0x44), DropReason::bad_ipv4_header},
      {"IPv4 IHL past the frame", patched(syn, kL3, 0x4f), DropReason::bad_ipv4_header},
      {"IPv4 total length past the frame",
       v4().tcp(1, 2, tcp_flag::syn).ip_total_length(41).build(), DropReason::bad_ipv4_length,
       [](const DecodedPacket& p) { EXPECT_EQ(p.src_ip, ip(kDeviceIp)); }},
      {"IPv4 total length shorter than the header",
       v4().tcp(1, 2, tcp_flag::syn).ip_total_length(19).build(), DropReason::bad_ipv4_length},
      {"IPv4 header checksum wrong", v4().tcp(1, 2, tcp_flag::syn).bad_ipv4_checksum().build(),
       DropReason::bad_ipv4_checksum},
      {"IPv4 header checksum covers options",
       patched(v4().ipv4_options({1, 1, 1, 0}).udp(1, 2).build(), kL3 + 22, 0),
       DropReason::bad_ipv4_checksum},
      {"Ethernet padding is not payload", padded(v4().udp(1, 2).payload("ab").build(), 60),
       DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.payload_offset, kIpv4L4 + 8);
         EXPECT_EQ(p.payload_length, 2);
       }},
      {"IPv4 options NOP NOP router alert",
       v4().ipv4_options({1, 1, 148, 4, 0, 0, 1, 0})
           .tcp(1, 2, tcp_flag::syn)
           .payload("xyz")
           .build(),
       DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.l4_offset, kIpv4L4 + 8);
         EXPECT_EQ(p.payload_offset, kIpv4L4 + 8 + 20);
         EXPECT_EQ(p.payload_length, 3);
       }},
      {"IPv4 record route then end of list, garbage after it",
       v4().ipv4_options({7, 7, 4, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}).udp(1, 2).build(),
       DropReason::none, [](const DecodedPacket& p) { EXPECT_EQ(p.l4_offset, kIpv4L4 + 12); }},
      {"IPv4 option filling the header exactly",
       v4().ipv4_options({7, 8, 4, 0, 0, 0, 0, 0}).udp(1, 2).build(), DropReason::none},
      {"IPv4 option length 0", v4().ipv4_options({7, 0, 0, 0}).udp(1, 2).build(),
       DropReason::bad_ipv4_header},
      {"IPv4 option length 1", v4().ipv4_options({1, 7, 1, 0}).udp(1, 2).build(),
       DropReason::bad_ipv4_header},
      {"IPv4 option longer than the header",
       v4().ipv4_options({7, 9, 4, 0, 0, 0, 0, 0}).udp(1, 2).build(), DropReason::bad_ipv4_header},
      {"IPv4 option without its length byte", v4().ipv4_options({1, 1, 1, 68}).udp(1, 2).build(),
       DropReason::bad_ipv4_header},
      {"IPv4 loose source route", v4().ipv4_options({131, 7, 4, 10, 0, 0, 1, 0}).udp(1, 2).build(),
       DropReason::ip_source_route},
      {"IPv4 strict source route after a NOP",
       v4().ipv4_options({1, 137, 7, 4, 10, 0, 0, 1}).udp(1, 2).build(),
       DropReason::ip_source_route},
      {"IPv4 source route longer than the header",
       v4().ipv4_options({131, 9, 4, 10, 0, 0, 1, 0}).udp(1, 2).build(),
       DropReason::bad_ipv4_header},
      {"IPv4 first fragment", v4().ipv4_fragment(0, true).tcp(1, 2, tcp_flag::syn).build(),
       DropReason::ip_fragment,
       [](const DecodedPacket& p) {
         EXPECT_TRUE(p.is_fragment);
         EXPECT_EQ(p.protocol, ip_protocol::tcp);
         EXPECT_EQ(p.src_ip, ip(kDeviceIp));
         EXPECT_EQ(p.dst_ip, ip(kNetworkIp));
         EXPECT_EQ(p.l4_offset, kIpv4L4);
       }},
      {"IPv4 last fragment", v4().ipv4_fragment(1480, false).ip_protocol(17, Bytes(20, 0)).build(),
       DropReason::ip_fragment,
       [](const DecodedPacket& p) {
         EXPECT_TRUE(p.is_fragment);
         EXPECT_EQ(p.protocol, ip_protocol::udp);
       }},
      {"IPv4 don't-fragment is not a fragment",
       with_ipv4_checksum_refreshed(patched(syn, kL3 + 6, 0x40)), DropReason::none},
      {"IPv4 source 0.0.0.0", v4_from("0.0.0.0").udp(68, 67).build(),
       DropReason::bad_source_address,
       [](const DecodedPacket& p) { EXPECT_EQ(p.src_ip, ip("0.0.0.0")); }},
      {"IPv4 source limited broadcast", v4_from("255.255.255.255").udp(1, 2).build(),
       DropReason::bad_source_address},
      {"IPv4 source multicast", v4_from("224.0.0.251").udp(5353, 5353).build(),
       DropReason::bad_source_address},
      {"IPv4 source top of multicast", v4_from("239.255.255.255").udp(1, 2).build(),
       DropReason::bad_source_address},
      {"IPv4 source loopback", v4_from("127.0.0.1").tcp(1, 2, tcp_flag::syn).build(),
       DropReason::bad_source_address},
      {"IPv4 source equal to the destination (land)",
       FrameBuilder()
           .eth(kNetworkMac, kDeviceMac)
           .ipv4(kDeviceIp, kDeviceIp)
           .tcp(139, 139, tcp_flag::syn)
           .build(),
       DropReason::bad_source_address},
      {"IPv4 source just below multicast", v4_from("223.255.255.255").udp(1, 2).build(),
       DropReason::none},
      {"IPv4 broadcast destination is fine",
       FrameBuilder().ipv4(kDeviceIp, "255.255.255.255").udp(1, 2).build(), DropReason::none},
      {"IPv4 GRE is unsupported", v4().ip_protocol(47, Bytes(8, 0)).build(),
       DropReason::unsupported_ip_protocol,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.protocol, 47);
         EXPECT_EQ(p.src_ip, ip(kDeviceIp));
         EXPECT_EQ(p.l4_offset, kIpv4L4);
       }},
      {"ICMPv6 inside IPv4 is unsupported", v4().ip_protocol(58, Bytes(8, 0)).build(),
       DropReason::unsupported_ip_protocol},
  };
}

std::vector<DecodeCase> ipv6_cases() {
  const Bytes syn = tcp_syn_v6();
  // HBH(8) + routing(8) + destination options(8).
  const size_t three_extensions = 24;
  return {
      {"TCP SYN over IPv6", syn, DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.l3, L3Kind::ipv6);
         EXPECT_EQ(p.ethertype, 0x86dd);
         EXPECT_EQ(p.src_ip, ip(kDeviceIp6));
         EXPECT_EQ(p.dst_ip, ip(kNetworkIp6));
         EXPECT_EQ(p.protocol, ip_protocol::tcp);
         EXPECT_EQ(p.hop_limit, 64);
         EXPECT_EQ(p.l4_offset, kIpv6L4);
         EXPECT_EQ(p.payload_offset, kIpv6L4 + 20);
         EXPECT_EQ(p.src_port, 40000);
       }},
      {"IPv6 header one byte short", Bytes(syn.begin(), syn.begin() + kL3 + 39),
       DropReason::bad_ipv6_header, [](const DecodedPacket& p) { EXPECT_EQ(p.l3, L3Kind::ipv6); }},
      {"IPv6 version 4", patched(syn, kL3, 0x40), DropReason::bad_ipv6_header},
      {"IPv6 payload length past the frame",
       v6().tcp(1, 2, tcp_flag::syn).ip_total_length(21).build(), DropReason::bad_ipv6_header},
      {"IPv6 payload length shorter than the frame bounds the upper layer",
       v6().udp(1, 2).payload("abcd").ip_total_length(8).build(), DropReason::bad_udp_header},
      {"IPv6 Ethernet padding is not payload", padded(v6().udp(1, 2).build(), 80), DropReason::none,
       [](const DecodedPacket& p) { EXPECT_EQ(p.payload_length, 0); }},
      {"IPv6 hop-by-hop, routing, destination options",
       v6().ipv6_extension(0, {5, 2, 0, 0})
           .ipv6_extension(43, {2, 0})
           .ipv6_extension(60)
           .udp(1, 2)
           .payload("hi")
           .build(),
       DropReason::none,
       [=](const DecodedPacket& p) {
         EXPECT_EQ(p.protocol, ip_protocol::udp);
         EXPECT_EQ(p.l4_offset, kIpv6L4 + three_extensions);
         EXPECT_EQ(p.payload_offset, kIpv6L4 + three_extensions + 8);
         EXPECT_EQ(p.payload_length, 2);
       }},
      {"IPv6 long hop-by-hop header", v6().ipv6_extension(0, Bytes(30, 0)).udp(1, 2).build(),
       DropReason::none, [](const DecodedPacket& p) { EXPECT_EQ(p.l4_offset, kIpv6L4 + 32); }},
      {"IPv6 authentication header",
       v6().ipv6_extension(51, Bytes(14, 0)).tcp(1, 2, tcp_flag::syn).build(), DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.protocol, ip_protocol::tcp);
         EXPECT_EQ(p.l4_offset, kIpv6L4 + 16);
       }},
      {"IPv6 destination options twice, around routing",
       v6().ipv6_extension(60).ipv6_extension(43, {2, 0}).ipv6_extension(60).udp(1, 2).build(),
       DropReason::none},
      {"IPv6 longest legal chain",
       v6().ipv6_extension(0)
           .ipv6_extension(60)
           .ipv6_extension(43, {2, 0})
           .ipv6_extension(51)
           .ipv6_extension(60)
           .udp(1, 2)
           .build(),
       DropReason::none, [](const DecodedPacket& p) { EXPECT_EQ(p.l4_offset, kIpv6L4 + 40); }},
      {"IPv6 destination options three times",
       v6().ipv6_extension(60)
           .ipv6_extension(43, {2, 0})
           .ipv6_extension(60)
           .ipv6_extension(60)
           .udp(1, 2)
           .build(),
       DropReason::bad_ipv6_extension},
      {"IPv6 hop-by-hop not first", v6().ipv6_extension(60).ipv6_extension(0).udp(1, 2).build(),
       DropReason::bad_ipv6_extension},
      {"IPv6 type 0 routing header (source route)",
       v6().ipv6_extension(43, {0, 1}).udp(1, 2).build(), DropReason::ip_source_route,
       [](const DecodedPacket& p) { EXPECT_EQ(p.protocol, ip_protocol::udp); }},
      {"IPv6 type 0 routing header with no segments left",
       v6().ipv6_extension(60).ipv6_extension(43, {0, 0}).udp(1, 2).build(),
       DropReason::ip_source_route},
      {"IPv6 routing header twice",
       v6().ipv6_extension(43, {2, 0}).ipv6_extension(43, {2, 0}).udp(1, 2).build(),
       DropReason::bad_ipv6_extension},
      {"IPv6 authentication header twice",
       v6().ipv6_extension(51).ipv6_extension(51).udp(1, 2).build(),
       DropReason::bad_ipv6_extension},
      {"IPv6 extension header cut by the payload length",
       v6().ipv6_extension(60).ip_total_length(7).build(), DropReason::bad_ipv6_extension},
      {"IPv6 extension length past the payload",
       patched(v6().ipv6_extension(60, Bytes(14, 0)).build(), kIpv6L4 + 1, 2),
       DropReason::bad_ipv6_extension},
      {"IPv6 extension chain cut by the frame",
       v6().ipv6_extension(60).udp(1, 2).truncate_to(kIpv6L4 + 4).ip_total_length(4).build(),
       DropReason::bad_ipv6_extension},
      {"IPv6 first fragment", v6().ipv6_fragment(0, true).udp(1, 2).payload("x").build(),
       DropReason::ip_fragment,
       [](const DecodedPacket& p) {
         EXPECT_TRUE(p.is_fragment);
         EXPECT_EQ(p.protocol, ip_protocol::udp);
         EXPECT_EQ(p.src_ip, ip(kDeviceIp6));
         EXPECT_EQ(p.l4_offset, kIpv6L4 + 8);
       }},
      {"IPv6 later fragment",
       v6().ipv6_fragment(1448, false).ip_protocol(6, Bytes(16, 0xee)).build(),
       DropReason::ip_fragment,
       [](const DecodedPacket& p) {
         EXPECT_TRUE(p.is_fragment);
         EXPECT_EQ(p.protocol, ip_protocol::tcp);
       }},
      {"IPv6 atomic fragment", v6().ipv6_fragment(0, false).udp(1, 2).build(),
       DropReason::ip_fragment},
      {"IPv6 fragment after hop-by-hop",
       v6().ipv6_extension(0).ipv6_fragment(8, true).ip_protocol(17, Bytes(8, 0)).build(),
       DropReason::ip_fragment},
      {"IPv6 ESP is unsupported", v6().ip_protocol(50, Bytes(16, 0)).build(),
       DropReason::unsupported_ip_protocol,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.protocol, 50);
         EXPECT_EQ(p.src_ip, ip(kDeviceIp6));
       }},
      {"IPv6 no next header", v6().ipv6_extension(60).build(), DropReason::unsupported_ip_protocol,
       [](const DecodedPacket& p) { EXPECT_EQ(p.protocol, 59); }},
      {"ICMPv4 inside IPv6 is unsupported", v6().ip_protocol(1, Bytes(8, 0)).build(),
       DropReason::unsupported_ip_protocol},
      {"IPv6 source multicast", v6_from("ff02::1").udp(1, 2).build(),
       DropReason::bad_source_address,
       [](const DecodedPacket& p) { EXPECT_EQ(p.src_ip, ip("ff02::1")); }},
      {"IPv6 source loopback", v6_from("::1").tcp(1, 2, tcp_flag::syn).build(),
       DropReason::bad_source_address},
      {"IPv6 source unspecified, TCP", v6_from("::").tcp(1, 2, tcp_flag::syn).build(),
       DropReason::bad_source_address},
      {"IPv6 source unspecified, echo request", v6_from("::").icmp_echo_request(1).build(),
       DropReason::bad_source_address},
      {"IPv6 source equal to the destination (land)",
       v6_from(kDeviceIp6, kDeviceIp6).tcp(139, 139, tcp_flag::syn).build(),
       DropReason::bad_source_address},
      {"IPv6 source ::2 is not loopback", v6_from("::2").udp(1, 2).build(), DropReason::none},
      {"IPv6 link-local source", v6_from("fe80::10").udp(1, 2).build(), DropReason::none},
  };
}

std::vector<DecodeCase> tcp_cases() {
  const Bytes syn_frame = tcp_syn_v4();
  const size_t data_offset = kIpv4L4 + 12;
  const size_t flags = kIpv4L4 + 13;
  std::vector<DecodeCase> cases = {
      {"TCP fields",
       v4().tcp(40000, 104, tcp_flag::psh | tcp_flag::ack, 0x01020304, 0xa0b0c0d0)
           .payload("hello")
           .build(),
       DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.src_port, 40000);
         EXPECT_EQ(p.dst_port, 104);
         EXPECT_EQ(p.tcp_flags, tcp_flag::psh | tcp_flag::ack);
         EXPECT_EQ(p.tcp_seq, 0x01020304u);
         EXPECT_EQ(p.tcp_ack, 0xa0b0c0d0u);
         EXPECT_EQ(p.tcp_window, 64240);
         EXPECT_EQ(p.payload_offset, kIpv4L4 + 20);
         EXPECT_EQ(p.payload_length, 5);
       }},
      {"TCP with options",
       patched(v4().tcp(1, 2, tcp_flag::syn).payload(Bytes{2, 4, 5, 0xb4, 'd'}).build(),
               data_offset, 0x60),
       DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.payload_offset, kIpv4L4 + 24);
         EXPECT_EQ(p.payload_length, 1);
       }},
      {"TCP SYN window scale among other options",
       v4().tcp(1, 2, tcp_flag::syn).tcp_options({2, 4, 5, 0xb4, 1, 3, 3, 7}).build(),
       DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_TRUE(p.tcp_window_scale_offered);
         EXPECT_EQ(p.tcp_window_shift, 7);
       }},
      {"TCP SYN window scale above 14 is taken as 14",
       v4().tcp(1, 2, tcp_flag::syn | tcp_flag::ack).tcp_options({3, 3, 15}).build(),
       DropReason::none, [](const DecodedPacket& p) { EXPECT_EQ(p.tcp_window_shift, 14); }},
      {"TCP window scale after the end of the option list is not read",
       v4().tcp(1, 2, tcp_flag::syn).tcp_options({0, 3, 3, 7}).build(), DropReason::none,
       [](const DecodedPacket& p) { EXPECT_FALSE(p.tcp_window_scale_offered); }},
      {"TCP window scale past a malformed option is not read, the SYN is valid",
       v4().tcp(1, 2, tcp_flag::syn).tcp_options({8, 1, 3, 3, 7}).build(), DropReason::none,
       [](const DecodedPacket& p) { EXPECT_FALSE(p.tcp_window_scale_offered); }},
      {"TCP window scale cut by the header's end is not read",
       v4().tcp(1, 2, tcp_flag::syn).tcp_options({1, 1, 1, 3}).build(), DropReason::none,
       [](const DecodedPacket& p) { EXPECT_FALSE(p.tcp_window_scale_offered); }},
      {"TCP window scale means nothing outside a SYN",
       v4().tcp(1, 2, tcp_flag::ack).tcp_options({3, 3, 7}).build(), DropReason::none,
       [](const DecodedPacket& p) { EXPECT_FALSE(p.tcp_window_scale_offered); }},
      {"TCP header cut by the IP length",
       v4().tcp(1, 2, tcp_flag::syn).ip_total_length(20 + 19).build(), DropReason::bad_tcp_header},
      {"TCP data offset 4", patched(syn_frame, data_offset, 0x40), DropReason::bad_tcp_header},
      {"TCP data offset past the segment",
       patched(v4().tcp(1, 2, tcp_flag::syn).payload(Bytes(39, 0)).build(), data_offset, 0xf0),
       DropReason::bad_tcp_header},
      {"TCP data offset exactly the segment",
       patched(v4().tcp(1, 2, tcp_flag::syn).payload(Bytes(40, 1)).build(), data_offset, 0xf0),
       DropReason::none, [](const DecodedPacket& p) { EXPECT_EQ(p.payload_length, 0); }},
      {"TCP ECE and CWR are left out of the flags", patched(syn_frame, flags, 0xc2),
       DropReason::none, [](const DecodedPacket& p) { EXPECT_EQ(p.tcp_flags, tcp_flag::syn); }},
      {"TCP only ECE is a null scan", patched(syn_frame, flags, 0x40), DropReason::bad_tcp_flags},
  };
  struct FlagCase {
    const char* name;
    uint8_t flags;
    DropReason expected;
  };
  using namespace tcp_flag;
  const FlagCase flag_cases[] = {
      {"SYN+FIN", syn | fin, DropReason::bad_tcp_flags},
      {"SYN+FIN+ACK", syn | fin | ack, DropReason::bad_tcp_flags},
      {"SYN+RST", syn | rst, DropReason::bad_tcp_flags},
      {"SYN+RST+ACK", syn | rst | ack, DropReason::bad_tcp_flags},
      {"null", 0, DropReason::bad_tcp_flags},
      {"Xmas FIN+PSH+URG", fin | psh | urg, DropReason::bad_tcp_flags},
      {"all six", fin | syn | rst | psh | ack | urg, DropReason::bad_tcp_flags},
      {"FIN+PSH+URG+ACK", fin | psh | urg | ack, DropReason::none},
      {"SYN", syn, DropReason::none},
      {"SYN+ACK", syn | ack, DropReason::none},
      {"ACK", ack, DropReason::none},
      {"FIN+ACK", fin | ack, DropReason::none},
      {"RST", rst, DropReason::none},
      {"RST+ACK", rst | ack, DropReason::none},
      {"FIN alone", fin, DropReason::none},
      {"URG+ACK", urg | ack, DropReason::none},
  };
  for (const FlagCase& f : flag_cases) {
    const uint8_t expected_flags = f.flags;
    cases.push_back(
        {std::string("TCP flags ") + f.name, v4().tcp(1, 2, f.flags).build(), f.expected,
         [expected_flags](const DecodedPacket& p) { EXPECT_EQ(p.tcp_flags, expected_flags); }});
  }
  return cases;
}

std::vector<DecodeCase> udp_cases() {
  const Bytes udp = udp_v4();
  const size_t length = kIpv4L4 + 4;
  return {
      {"UDP fields", udp, DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.protocol, ip_protocol::udp);
         EXPECT_EQ(p.src_port, 40001);
         EXPECT_EQ(p.dst_port, 2575);
         EXPECT_EQ(p.payload_offset, kIpv4L4 + 8);
         EXPECT_EQ(p.payload_length, 4);
       }},
      {"UDP over IPv6", udp_v6(), DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.dst_port, 2575);
         EXPECT_EQ(p.payload_length, 4);
       }},
      {"UDP header truncated", v4().ip_protocol(17, Bytes(7, 0)).build(),
       DropReason::bad_udp_header},
      {"UDP length longer than the IP payload", patched(udp, length + 1, 13),
       DropReason::bad_udp_header},
      {"UDP length shorter than the IP payload", patched(udp, length + 1, 11),
       DropReason::bad_udp_header},
      {"UDP length below its header", patched(udp, length + 1, 7), DropReason::bad_udp_header},
      {"UDP without payload", v4().udp(1, 2).build(), DropReason::none,
       [](const DecodedPacket& p) { EXPECT_EQ(p.payload_length, 0); }},
  };
}

std::vector<DecodeCase> icmp_cases() {
  const Bytes quoted_syn = v4().tcp(40000, 104, tcp_flag::syn).build();
  const Bytes quoted_udp = v4().udp(40001, 2575).payload(Bytes(100, 7)).build();
  const Bytes quoted_echo = echo_v4();
  auto error_v4 = [](uint8_t type, uint8_t code, const Bytes& quoted) {
    return FrameBuilder()
        .eth(kNetworkMac, kDeviceMac)
        .ipv4(kRouterIp, kDeviceIp)
        .icmp_error(type, code, quoted)
        .build();
  };
  auto check_quoted_syn = [](const DecodedPacket& p) {
    EXPECT_TRUE(p.icmp_is_error);
    EXPECT_EQ(p.quoted.src, ip(kDeviceIp));
    EXPECT_EQ(p.quoted.dst, ip(kNetworkIp));
    EXPECT_EQ(p.quoted.protocol, ip_protocol::tcp);
    EXPECT_EQ(p.quoted.src_port, 40000);
    EXPECT_EQ(p.quoted.dst_port, 104);
  };
  const Bytes quote_header_only = Bytes(quoted_syn.begin(), quoted_syn.begin() + kIpv4L4 + 7);
  return {
      {"ICMP echo request", echo_v4(), DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.protocol, ip_protocol::icmp);
         EXPECT_EQ(p.icmp_type, 8);
         EXPECT_EQ(p.icmp_code, 0);
         EXPECT_TRUE(p.icmp_is_echo_request);
         EXPECT_FALSE(p.icmp_is_echo_reply);
         EXPECT_FALSE(p.icmp_is_error);
         EXPECT_EQ(p.icmp_echo_id, 0x1234);
         EXPECT_EQ(p.payload_offset, kIpv4L4 + 8);
         EXPECT_EQ(p.src_port, 0);
       }},
      {"ICMP echo reply", v4().icmp_echo_reply(0x4321).payload("ping").build(), DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.icmp_type, 0);
         EXPECT_TRUE(p.icmp_is_echo_reply);
         EXPECT_FALSE(p.icmp_is_echo_request);
         EXPECT_EQ(p.icmp_echo_id, 0x4321);
         EXPECT_EQ(p.payload_length, 4);
       }},
      {"ICMP truncated header", v4().icmp(13, 0).build(), DropReason::bad_icmp_header,
       [](const DecodedPacket& p) { EXPECT_EQ(p.protocol, ip_protocol::icmp); }},
      {"ICMP timestamp is not an error", v4().icmp(13, 0, Bytes(16, 0)).build(), DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.icmp_type, 13);
         EXPECT_FALSE(p.icmp_is_error);
         EXPECT_FALSE(p.icmp_is_echo_request);
       }},
      {"ICMP redirect is not treated as an error", v4().icmp(5, 1, Bytes(4 + 28, 0)).build(),
       DropReason::none, [](const DecodedPacket& p) { EXPECT_FALSE(p.icmp_is_error); }},
      {"ICMP source quench is not treated as an error", v4().icmp(4, 0, Bytes(4, 0)).build(),
       DropReason::none, [](const DecodedPacket& p) { EXPECT_FALSE(p.icmp_is_error); }},
      {"ICMP port unreachable quoting TCP", error_v4(3, 3, quoted_syn), DropReason::none,
       [=](const DecodedPacket& p) {
         EXPECT_EQ(p.icmp_type, 3);
         EXPECT_EQ(p.icmp_code, 3);
         EXPECT_EQ(p.src_ip, ip(kRouterIp));
         check_quoted_syn(p);
       }},
      {"ICMP error quoting only the IP header and 8 bytes",
       error_v4(3, 1, Bytes(quoted_syn.begin(), quoted_syn.begin() + kIpv4L4 + 8)),
       DropReason::none, check_quoted_syn},
      {"ICMP error quoting one byte less than 8", error_v4(3, 1, quote_header_only),
       DropReason::bad_icmp_header, [](const DecodedPacket& p) { EXPECT_TRUE(p.icmp_is_error); }},
      {"ICMP error quoting half an IP header",
       error_v4(3, 1, Bytes(quoted_syn.begin(), quoted_syn.begin() + kL3 + 19)),
       DropReason::bad_icmp_header},
      {"ICMP error quoting IPv6", error_v4(3, 1, tcp_syn_v6()), DropReason::bad_icmp_header},
      {"ICMP error quoting IHL 4", error_v4(3, 1, patched(quoted_syn, kL3, 0x44)),
       DropReason::bad_icmp_header},
      {"ICMP error quoting options",
       error_v4(11, 0, v4().ipv4_options({1, 1, 1, 1}).udp(7, 8).build()), DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.quoted.src_port, 7);
         EXPECT_EQ(p.quoted.dst_port, 8);
       }},
      {"ICMP time exceeded quoting UDP", error_v4(11, 0, quoted_udp), DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_TRUE(p.icmp_is_error);
         EXPECT_EQ(p.icmp_type, 11);
         EXPECT_EQ(p.quoted.protocol, ip_protocol::udp);
         EXPECT_EQ(p.quoted.src_port, 40001);
         EXPECT_EQ(p.quoted.dst_port, 2575);
       }},
      {"ICMP parameter problem quoting an echo request", error_v4(12, 0, quoted_echo),
       DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_TRUE(p.icmp_is_error);
         EXPECT_FALSE(p.icmp_is_echo_request);  // the error is not an echo
         EXPECT_EQ(p.quoted.protocol, ip_protocol::icmp);
         EXPECT_EQ(p.quoted.src_port, 0x1234);
         EXPECT_EQ(p.quoted.dst_port, 0x1234);
       }},
      {"ICMP error quoting a non-echo ICMP has no ports",
       error_v4(3, 1, v4().icmp(13, 0, Bytes(16, 9)).build()), DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.quoted.protocol, ip_protocol::icmp);
         EXPECT_EQ(p.quoted.src_port, 0);
       }},
      {"ICMP error quoting a later fragment has no ports",
       error_v4(3, 4, v4().ipv4_fragment(1480, false).tcp(40000, 104, tcp_flag::ack).build()),
       DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.quoted.protocol, ip_protocol::tcp);
         EXPECT_EQ(p.quoted.src_port, 0);
         EXPECT_EQ(p.quoted.dst_port, 0);
       }},
  };
}

std::vector<DecodeCase> icmpv6_cases() {
  const Bytes quoted_syn = tcp_syn_v6();
  auto error_v6 = [](uint8_t type, uint8_t code, const Bytes& quoted) {
    return FrameBuilder()
        .eth(kNetworkMac, kDeviceMac)
        .ipv6(kRouterIp6, kDeviceIp6)
        .icmp_error(type, code, quoted)
        .build();
  };
  // Reserved word, then the target address.
  Bytes ns_body(20, 0xfe);
  std::fill(ns_body.begin(), ns_body.begin() + 4, 0);
  return {
      {"ICMPv6 echo request", v6().icmp_echo_request(0xbeef).build(), DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.protocol, ip_protocol::icmpv6);
         EXPECT_EQ(p.icmp_type, 128);
         EXPECT_TRUE(p.icmp_is_echo_request);
         EXPECT_EQ(p.icmp_echo_id, 0xbeef);
         EXPECT_FALSE(p.icmpv6_is_neighbor_discovery);
       }},
      {"ICMPv6 echo reply", v6().icmp_echo_reply(0xcafe).build(), DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.icmp_type, 129);
         EXPECT_TRUE(p.icmp_is_echo_reply);
         EXPECT_EQ(p.icmp_echo_id, 0xcafe);
       }},
      {"ICMPv6 truncated header", v6().icmp(128, 0).build(), DropReason::bad_icmp_header},
      {"ICMPv6 after a destination options header",
       v6().ipv6_extension(60).icmp_echo_request(5).build(), DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.l4_offset, kIpv6L4 + 8);
         EXPECT_EQ(p.icmp_echo_id, 5);
       }},
      {"ICMPv6 destination unreachable quoting TCP", error_v6(1, 4, quoted_syn), DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_TRUE(p.icmp_is_error);
         EXPECT_EQ(p.icmp_type, 1);
         EXPECT_EQ(p.icmp_code, 4);
         EXPECT_EQ(p.quoted.src, ip(kDeviceIp6));
         EXPECT_EQ(p.quoted.dst, ip(kNetworkIp6));
         EXPECT_EQ(p.quoted.protocol, ip_protocol::tcp);
         EXPECT_EQ(p.quoted.src_port, 40000);
         EXPECT_EQ(p.quoted.dst_port, 104);
       }},
      {"ICMPv6 packet too big quoting UDP behind extension headers",
       error_v6(2, 0, v6().ipv6_extension(0).ipv6_extension(60).udp(7, 9).payload("x").build()),
       DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.quoted.protocol, ip_protocol::udp);
         EXPECT_EQ(p.quoted.src_port, 7);
         EXPECT_EQ(p.quoted.dst_port, 9);
       }},
      {"ICMPv6 time exceeded quoting an echo request",
       error_v6(3, 0, v6().icmp_echo_request(0x0102).build()), DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.quoted.protocol, ip_protocol::icmpv6);
         EXPECT_EQ(p.quoted.src_port, 0x0102);
         EXPECT_EQ(p.quoted.dst_port, 0x0102);
       }},
      {"ICMPv6 parameter problem quoting a first fragment",
       error_v6(4, 0, v6().ipv6_fragment(0, true).udp(11, 12).build()), DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.quoted.protocol, ip_protocol::udp);
         EXPECT_EQ(p.quoted.src_port, 11);
       }},
      {"ICMPv6 error quoting a later fragment has no ports",
       error_v6(4, 0, v6().ipv6_fragment(8, false).ip_protocol(17, Bytes(8, 1)).build()),
       DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_EQ(p.quoted.protocol, ip_protocol::udp);
         EXPECT_EQ(p.quoted.src_port, 0);
       }},
      {"ICMPv6 error quote cut inside the transport header",
       error_v6(1, 0, Bytes(quoted_syn.begin(), quoted_syn.begin() + kIpv6L4 + 7)),
       DropReason::bad_icmp_header},
      {"ICMPv6 error quote cut inside the IPv6 header",
       error_v6(1, 0, Bytes(quoted_syn.begin(), quoted_syn.begin() + kL3 + 39)),
       DropReason::bad_icmp_header},
      {"ICMPv6 error quoting IPv4", error_v6(1, 0, tcp_syn_v4()), DropReason::bad_icmp_header},
      {"ICMPv6 error quoting a bad extension chain",
       error_v6(1, 0, v6().ipv6_extension(60).ipv6_extension(0).udp(1, 2).build()),
       DropReason::bad_icmp_header},
      {"ICMPv6 error quote cut inside an extension header",
       error_v6(1, 0,
                v6().ipv6_extension(60, Bytes(14, 0)).udp(1, 2).truncate_to(kIpv6L4 + 12).build()),
       DropReason::bad_icmp_header},
      {"ICMPv6 type 5 is not an error", v6().icmp(5, 0, Bytes(60, 0)).build(), DropReason::none,
       [](const DecodedPacket& p) { EXPECT_FALSE(p.icmp_is_error); }},
      {"neighbor solicitation",
       v6_from("fe80::10", "ff02::1:ff00:20").icmp(135, 0, ns_body).build(), DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_TRUE(p.icmpv6_is_neighbor_discovery);
         EXPECT_EQ(p.icmp_type, 135);
         EXPECT_EQ(p.hop_limit, 255);
         EXPECT_FALSE(p.icmp_is_error);
       }},
      {"neighbor solicitation for DAD from ::",
       v6_from("::", "ff02::1:ff00:10").icmp(135, 0, ns_body).build(), DropReason::none,
       [](const DecodedPacket& p) {
         EXPECT_TRUE(p.icmpv6_is_neighbor_discovery);
         EXPECT_EQ(p.src_ip, ip("::"));
       }},
      {"router solicitation from ::", v6_from("::", "ff02::2").icmp(133, 0, Bytes(4, 0)).build(),
       DropReason::none,
       [](const DecodedPacket& p) { EXPECT_TRUE(p.icmpv6_is_neighbor_discovery); }},
      {"neighbor advertisement from ::", v6_from("::").icmp(136, 0, ns_body).build(),
       DropReason::bad_source_address},
      {"router advertisement", v6_from(kRouterIp6, "ff02::1").icmp(134, 0, Bytes(12, 0)).build(),
       DropReason::none,
       [](const DecodedPacket& p) { EXPECT_TRUE(p.icmpv6_is_neighbor_discovery); }},
      {"router advertisement too short",
       v6_from(kRouterIp6, "ff02::1").icmp(134, 0, Bytes(11, 0)).build(),
       DropReason::bad_icmp_header},
      {"neighbor solicitation without target",
       v6_from("fe80::10").icmp(135, 0, Bytes(4, 0)).build(), DropReason::bad_icmp_header},
      {"neighbor advertisement", v6_from("fe80::10").icmp(136, 0, ns_body).build(),
       DropReason::none},
      {"redirect", v6_from(kRouterIp6).icmp(137, 0, Bytes(36, 0)).build(), DropReason::none,
       [](const DecodedPacket& p) { EXPECT_TRUE(p.icmpv6_is_neighbor_discovery); }},
      {"redirect too short", v6_from(kRouterIp6).icmp(137, 0, Bytes(35, 0)).build(),
       DropReason::bad_icmp_header},
      {"MLD report is not neighbor discovery",
       v6_from("fe80::10").icmp(143, 0, Bytes(4, 0)).build(), DropReason::none,
       [](const DecodedPacket& p) { EXPECT_FALSE(p.icmpv6_is_neighbor_discovery); }},
  };
}

std::vector<DecodeCase> all_cases() {
  std::vector<DecodeCase> all;
  for (auto group : {ethernet_cases, arp_cases, ipv4_cases, ipv6_cases, tcp_cases, udp_cases,
                     icmp_cases, icmpv6_cases}) {
    for (DecodeCase& c : group()) all.push_back(std::move(c));
  }
  return all;
}

class DecodeTable : public ::testing::TestWithParam<DecodeCase> {};

TEST_P(DecodeTable, Decodes) {
  const DecodeCase& c = GetParam();
  // An exact-size heap copy: under ASan any read past the end is reported.
  const Bytes frame = c.frame;
  DecodedPacket packet;
  EXPECT_EQ(decode(frame.data(), static_cast<uint32_t>(frame.size()), packet), c.expected);
  c.check(packet);
}

std::string test_name(const ::testing::TestParamInfo<DecodeCase>& info) {
  std::string name = info.param.description;
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Frames, DecodeTable, ::testing::ValuesIn(all_cases()), test_name);

// Every reason decode() can return appears in the table at least once.
TEST(DecodeCoverage, EveryDecodeReasonIsTested) {
  std::set<DropReason> seen;
  for (const DecodeCase& c : all_cases()) seen.insert(c.expected);
  for (auto r = static_cast<size_t>(DropReason::none);
       r <= static_cast<size_t>(DropReason::unsupported_ip_protocol); ++r) {
    const auto reason = static_cast<DropReason>(r);
    EXPECT_TRUE(seen.contains(reason)) << "no test expects " << label(reason);
  }
}

DropReason decode_bytes(const Bytes& frame, DecodedPacket& out) {
  return decode(frame.data(), static_cast<uint32_t>(frame.size()), out);
}

// Every prefix of a valid frame is a drop; the exact reason follows the layer cut.
TEST(DecodeTruncation, EveryPrefixOfTaggedTcpWithOptions) {
  const Bytes frame = FrameBuilder()
                          .eth(kDeviceMac, kNetworkMac)
                          .vlan(7)
                          .ipv4(kDeviceIp, kNetworkIp)
                          .ipv4_options({1, 1, 1, 0})
                          .tcp(40000, 104, tcp_flag::psh | tcp_flag::ack)
                          .payload("12345")
                          .build();
  const size_t l3 = kL3 + 4;
  DecodedPacket packet;
  ASSERT_EQ(decode_bytes(frame, packet), DropReason::none);
  for (size_t n = 0; n < frame.size(); ++n) {
    SCOPED_TRACE("prefix length " + std::to_string(n));
    const Bytes prefix(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(n));
    DropReason expected = DropReason::bad_ipv4_length;
    if (n < l3) {
      expected = DropReason::truncated_ethernet;
    } else if (n < l3 + 24) {
      expected = DropReason::bad_ipv4_header;
    }
    EXPECT_EQ(decode_bytes(prefix, packet), expected);
  }
}

// Frames whose every proper prefix must be dropped, whatever the reason.
TEST(DecodeTruncation, EveryPrefixOfEachProtocolIsDropped) {
  const Bytes frames[] = {
      tcp_syn_v4(),
      udp_v4(),
      echo_v4(),
      FrameBuilder()
          .vlan(1, 0x88a8)
          .vlan(2)
          .arp(1, kDeviceMac, kDeviceIp, kNetworkMac, kNetworkIp)
          .build(),
      v6().ipv6_extension(0)
          .ipv6_extension(43, {2, 0})
          .ipv6_extension(51)
          .ipv6_extension(60)
          .tcp(1, 2, tcp_flag::syn)
          .payload("abc")
          .build(),
      v6().icmp_echo_request(9).build(),
      FrameBuilder().ipv4(kRouterIp, kDeviceIp).icmp_error(3, 3, udp_v4()).build(),
      FrameBuilder()
          .ipv6(kRouterIp6, kDeviceIp6)
          .icmp_error(1, 0, v6().ipv6_extension(60).udp(1, 2).build())
          .build(),
      v6_from("::", "ff02::1:ff00:10").icmp(135, 0, Bytes(20, 0)).build(),
  };
  for (const Bytes& frame : frames) {
    DecodedPacket packet;
    ASSERT_EQ(decode_bytes(frame, packet), DropReason::none);
    for (size_t n = 0; n < frame.size(); ++n) {
      const Bytes prefix(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(n));
      EXPECT_NE(decode_bytes(prefix, packet), DropReason::none)
          << "prefix " << n << " of a " << frame.size() << "-byte frame";
    }
  }
}

// The engine reuses one DecodedPacket per batch slot: nothing of the previous frame stays.
TEST(DecodeReuse, NoFieldSurvivesFromThePreviousFrame) {
  DecodedPacket packet;
  const Bytes error =
      FrameBuilder().vlan(5).ipv4(kRouterIp, kDeviceIp).icmp_error(3, 3, tcp_syn_v4()).build();
  ASSERT_EQ(decode_bytes(error, packet), DropReason::none);
  ASSERT_TRUE(packet.icmp_is_error);
  ASSERT_EQ(decode_bytes(udp_v6(), packet), DropReason::none);
  EXPECT_EQ(packet.vlan_count, 0);
  EXPECT_FALSE(packet.icmp_is_error);
  EXPECT_EQ(packet.icmp_type, 0);
  EXPECT_EQ(packet.quoted.protocol, 0);
  EXPECT_EQ(packet.quoted.src.family, 0);
  ASSERT_EQ(decode_bytes(tcp_syn_v4(), packet), DropReason::none);
  ASSERT_EQ(decode_bytes(Bytes(10, 0), packet), DropReason::truncated_ethernet);
  EXPECT_EQ(packet.l3, L3Kind::none);
  EXPECT_EQ(packet.tcp_flags, 0);
  EXPECT_EQ(packet.src_ip.family, 0);
}

// decode() clears the packet with plain zero stores (a memset became `rep stosq`, slow
// per packet): that is the default only while every member's default is zero, and every
// byte must be cleared, whatever the frame.
TEST(DecodeReuse, ClearsEveryByteToTheDefaults) {
  alignas(DecodedPacket) uint8_t defaults[sizeof(DecodedPacket)] = {};
  new (defaults) DecodedPacket{};  // members' defaults over zeroed storage
  const std::vector<uint8_t> zero(sizeof(DecodedPacket), 0);
  EXPECT_TRUE(std::equal(zero.begin(), zero.end(), defaults)) << "a default is not zero";

  DecodedPacket reused;
  std::memset(static_cast<void*>(&reused), 0xff, sizeof reused);  // padding too
  ASSERT_EQ(decode_bytes(Bytes(10, 0), reused), DropReason::truncated_ethernet);
  const auto* bytes = reinterpret_cast<const uint8_t*>(&reused);
  EXPECT_TRUE(std::equal(zero.begin(), zero.end(), bytes));
}

// The builder's checksums are what a real stack computes (checked against the RFC 1071
// sum over the finished bytes), so frames fed to the engine look like real traffic.
TEST(FrameBuilder, Ipv4AndTransportChecksumsVerify) {
  const Bytes tcp = v4().ipv4_options({1, 1, 1, 1}).tcp(1, 2, tcp_flag::syn).payload("odd").build();
  const size_t l4 = kIpv4L4 + 4;
  EXPECT_EQ(ones_complement_sum(tcp, kL3, l4), 0xffff);
  Bytes pseudo(tcp.begin() + kL3 + 12, tcp.begin() + kL3 + 20);
  const size_t l4_length = tcp.size() - l4;
  pseudo.insert(pseudo.end(), {0, ip_protocol::tcp, 0, static_cast<uint8_t>(l4_length)});
  EXPECT_EQ(ones_complement_sum(tcp, l4, tcp.size(), ones_complement_sum(pseudo, 0, pseudo.size())),
            0xffff);

  const Bytes icmp = echo_v4();
  EXPECT_EQ(ones_complement_sum(icmp, kIpv4L4, icmp.size()), 0xffff);
}

TEST(FrameBuilder, Ipv6TransportChecksumVerifies) {
  const Bytes udp = v6().ipv6_extension(60).udp(1, 2).payload("abcde").build();
  const size_t l4 = kIpv6L4 + 8;
  const size_t l4_length = udp.size() - l4;
  Bytes pseudo(udp.begin() + kL3 + 8, udp.begin() + kL3 + 40);
  pseudo.insert(pseudo.end(),
                {0, 0, 0, static_cast<uint8_t>(l4_length), 0, 0, 0, ip_protocol::udp});
  EXPECT_EQ(ones_complement_sum(udp, l4, udp.size(), ones_complement_sum(pseudo, 0, pseudo.size())),
            0xffff);
  EXPECT_EQ(udp[l4 + 4], 0);
  EXPECT_EQ(udp[l4 + 5], l4_length);

  const Bytes echo = v6().icmp_echo_request(3).build();
  const size_t echo_length = echo.size() - kIpv6L4;
  Bytes echo_pseudo(echo.begin() + kL3 + 8, echo.begin() + kL3 + 40);
  echo_pseudo.insert(echo_pseudo.end(),
                     {0, 0, 0, static_cast<uint8_t>(echo_length), 0, 0, 0, ip_protocol::icmpv6});
  EXPECT_EQ(ones_complement_sum(echo, kIpv6L4, echo.size(),
                                ones_complement_sum(echo_pseudo, 0, echo_pseudo.size())),
            0xffff);
}

TEST(FrameBuilder, RejectsBadAddresses) {
  EXPECT_THROW(FrameBuilder().eth("02:00:00:00:00", kNetworkMac), std::invalid_argument);
  EXPECT_THROW(FrameBuilder().ipv4(kDeviceIp6, kNetworkIp), std::invalid_argument);
  EXPECT_THROW(FrameBuilder().ipv6(kDeviceIp, kNetworkIp6), std::invalid_argument);
}

}  // namespace
}  // namespace cordon::engine
