// Decoder: Ethernet, 802.1Q/802.1ad, ARP, IPv4 (options, fragments), IPv6 (extension
// headers), TCP, UDP, ICMP, ICMPv6. Pure function of the frame's bytes; never reads past
// `length`; any thread.
#pragma once

#include <cstdint>

#include "dataplane/engine/packet.h"
#include "dataplane/engine/verdict.h"

namespace cordon::engine {

namespace ip_protocol {
inline constexpr uint8_t icmp = 1;
inline constexpr uint8_t tcp = 6;
inline constexpr uint8_t udp = 17;
inline constexpr uint8_t icmpv6 = 58;
}  // namespace ip_protocol

namespace tcp_flag {
inline constexpr uint8_t fin = 0x01;
inline constexpr uint8_t syn = 0x02;
inline constexpr uint8_t rst = 0x04;
inline constexpr uint8_t psh = 0x08;
inline constexpr uint8_t ack = 0x10;
inline constexpr uint8_t urg = 0x20;
}  // namespace tcp_flag

enum class L3Kind : uint8_t { none, arp, ipv4, ipv6 };

struct ArpHeader {
  uint16_t operation = 0;  // 1 request, 2 reply
  MacAddress sender_mac;
  IpAddress sender_ip;
  MacAddress target_mac;
  IpAddress target_ip;
};

// The transport endpoints of the packet an ICMP error quotes (as the quoted packet
// was sent, i.e. from the original sender's point of view).
struct QuotedPacket {
  IpAddress src;
  IpAddress dst;
  uint8_t protocol = 0;
  uint16_t src_port = 0;  // TCP/UDP ports; for ICMP echo both hold the identifier
  uint16_t dst_port = 0;
  uint32_t tcp_seq = 0;  // TCP: the quoted segment's sequence number
};

struct DecodedPacket {
  MacAddress dst_mac;
  MacAddress src_mac;
  uint8_t vlan_count = 0;
  uint16_t vlan_ids[2] = {0, 0};  // outermost first (12-bit VIDs)
  uint16_t ethertype = 0;         // after VLAN tags

  L3Kind l3 = L3Kind::none;
  ArpHeader arp;  // valid when l3 == arp

  // IPv4/IPv6 (valid when l3 is ipv4 or ipv6)
  IpAddress src_ip;
  IpAddress dst_ip;
  uint8_t protocol = 0;   // upper-layer protocol after any IPv6 extension headers
  uint8_t hop_limit = 0;  // IPv4 TTL or IPv6 hop limit
  bool is_fragment = false;

  uint16_t l3_offset = 0;
  uint16_t l4_offset = 0;
  uint16_t payload_offset = 0;  // first byte after the TCP/UDP/ICMP header
  uint16_t payload_length = 0;  // bytes of L4 payload (IP length, not frame padding)

  // TCP/UDP
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  // TCP
  uint8_t tcp_flags = 0;
  uint32_t tcp_seq = 0;
  uint32_t tcp_ack = 0;
  uint16_t tcp_window = 0;
  // A SYN's window scale option (RFC 7323 §2): whether it has one, and its shift (at most
  // 14). Not read from other segments, where the option means nothing.
  bool tcp_window_scale_offered = false;
  uint8_t tcp_window_shift = 0;
  // ICMP/ICMPv6
  uint8_t icmp_type = 0;
  uint8_t icmp_code = 0;
  uint16_t icmp_echo_id = 0;  // echo request/reply identifier
  bool icmp_is_echo_request = false;
  bool icmp_is_echo_reply = false;
  bool icmp_is_error = false;  // destination unreachable, time exceeded, ...; quoted is valid
  bool icmpv6_is_neighbor_discovery = false;  // RS, RA, NS, NA, redirect (types 133..137)
  QuotedPacket quoted;
};

// Decodes `length` bytes of an Ethernet frame into `out`. Returns DropReason::none when
// the frame is well formed. On a drop the fields decoded so far stay filled (so events
// can name addresses) and the rest are unspecified. IP fragments return ip_fragment
// after filling the IP fields.
DropReason decode(const uint8_t* frame, uint32_t length, DecodedPacket& out) noexcept;

}  // namespace cordon::engine
