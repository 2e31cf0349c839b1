// Test frame builder: readable construction of Ethernet frames for packet tables.
// Computes lengths and checksums unless told otherwise. Test code only.
//
//   auto frame = FrameBuilder()
//                    .eth("02:c0:4d:00:00:10", "02:00:00:00:00:20")
//                    .ipv4("10.50.0.10", "10.50.0.20")
//                    .tcp(40000, 104, tcp_flag::syn)
//                    .build();
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cordon::testing {

using Bytes = std::vector<uint8_t>;

class FrameBuilder {
 public:
  // Layer 2. Default MACs are 02:00:00:00:00:01 -> 02:00:00:00:00:02.
  FrameBuilder& eth(const std::string& src_mac, const std::string& dst_mac);
  FrameBuilder& vlan(uint16_t vid, uint16_t tpid = 0x8100);  // may be called twice (QinQ)
  // ARP over Ethernet/IPv4. op 1 = request, 2 = reply.
  FrameBuilder& arp(uint16_t op, const std::string& sender_mac, const std::string& sender_ip,
                    const std::string& target_mac, const std::string& target_ip);
  // Raw EtherType and payload (e.g. for unsupported ethertypes).
  FrameBuilder& ethertype(uint16_t type, Bytes payload);

  // Layer 3.
  FrameBuilder& ipv4(const std::string& src, const std::string& dst, uint8_t ttl = 64);
  FrameBuilder& ipv4_options(Bytes options);  // padded to 4 bytes by the caller
  FrameBuilder& ipv4_fragment(uint16_t offset_bytes, bool more_fragments);
  FrameBuilder& ipv4_id(uint16_t id);
  FrameBuilder& ipv6(const std::string& src, const std::string& dst, uint8_t hop_limit = 64);
  // An IPv6 extension header (hop-by-hop 0, routing 43, fragment 44, dest options 60)
  // inserted before the upper-layer header, in call order. `body` excludes next-header
  // and length bytes and is padded by the builder to a multiple of 8 bytes.
  FrameBuilder& ipv6_extension(uint8_t type, Bytes body = {});
  // IPv6 fragment header (offset in bytes, multiple of 8).
  FrameBuilder& ipv6_fragment(uint16_t offset_bytes, bool more_fragments, uint32_t id = 1);
  FrameBuilder& ip_protocol(uint8_t protocol, Bytes payload);  // raw upper layer

  // Layer 4.
  FrameBuilder& tcp(uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq = 1000,
                    uint32_t ack = 0);
  // After tcp(): options (padded with end-of-option-list bytes to 4), the window field.
  FrameBuilder& tcp_options(Bytes options);
  FrameBuilder& tcp_window(uint16_t window);
  FrameBuilder& udp(uint16_t sport, uint16_t dport);
  // ICMP (IPv4) or ICMPv6 (IPv6), chosen by the L3 in use.
  FrameBuilder& icmp_echo_request(uint16_t id, uint16_t seq = 1);
  FrameBuilder& icmp_echo_reply(uint16_t id, uint16_t seq = 1);
  FrameBuilder& icmp(uint8_t type, uint8_t code, Bytes body = {});  // body after the 4-byte header
  // An ICMP error (e.g. type 3 code 3) quoting `quoted_frame` from its IP header on
  // (the builder strips the quoted frame's Ethernet/VLAN header).
  FrameBuilder& icmp_error(uint8_t type, uint8_t code, const Bytes& quoted_frame);
  FrameBuilder& payload(Bytes bytes);
  FrameBuilder& payload(const std::string& text);

  // Corruptions, applied by build().
  FrameBuilder& truncate_to(size_t length);       // cut the finished frame
  FrameBuilder& ip_total_length(uint16_t value);  // override IPv4 total / IPv6 payload length
  FrameBuilder& bad_ipv4_checksum();

  Bytes build() const;

 private:
  enum class Kind : uint8_t;  // one per public call, defined in frames.cpp
  // Kept as plain recorded steps so the builder stays copyable: build() interprets them.
  struct Step {
    Kind kind{};
    std::string a{}, b{}, c{}, d{};
    uint64_t n1 = 0, n2 = 0, n3 = 0, n4 = 0;
    Bytes bytes{};
  };
  FrameBuilder& add(Step step);
  std::vector<Step> steps_;
};

}  // namespace cordon::testing
