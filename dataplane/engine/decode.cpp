// Frame decoder. Every read is preceded by a bounds check against the end of the frame
// or of the IP packet (IP lengths, never Ethernet padding); offsets are uint32_t so that
// `end - offset` never wraps once `offset <= end` holds, which every step keeps true.
#include "dataplane/engine/decode.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>

namespace cordon::engine {
namespace {

constexpr uint32_t kEthernetHeaderLength = 14;
constexpr uint32_t kVlanTagLength = 4;
constexpr uint32_t kMaxVlanTags = 2;
constexpr uint32_t kArpLength = 28;  // Ethernet/IPv4 ARP
constexpr uint32_t kIpv4MinHeaderLength = 20;
constexpr uint32_t kIpv6HeaderLength = 40;
constexpr uint32_t kTcpMinHeaderLength = 20;
constexpr uint32_t kUdpHeaderLength = 8;
constexpr uint32_t kIcmpHeaderLength = 8;       // type, code, checksum, 4 bytes rest-of-header
constexpr uint32_t kQuotedTransportLength = 8;  // what RFC 792 guarantees an error quotes

namespace ethertype {
constexpr uint16_t ipv4 = 0x0800;
constexpr uint16_t arp = 0x0806;
constexpr uint16_t vlan = 0x8100;
constexpr uint16_t qinq = 0x88a8;
constexpr uint16_t ipv6 = 0x86dd;
}  // namespace ethertype

namespace ipv6_extension {
constexpr uint8_t hop_by_hop = 0;
constexpr uint8_t routing = 43;
constexpr uint8_t fragment = 44;
constexpr uint8_t authentication = 51;
constexpr uint8_t destination_options = 60;
}  // namespace ipv6_extension

namespace icmp_type {
constexpr uint8_t echo_reply = 0;
constexpr uint8_t destination_unreachable = 3;
constexpr uint8_t echo_request = 8;
constexpr uint8_t time_exceeded = 11;
constexpr uint8_t parameter_problem = 12;
}  // namespace icmp_type

namespace icmpv6_type {
constexpr uint8_t first_error = 1;  // destination unreachable
constexpr uint8_t last_error = 4;   // parameter problem (2 packet too big, 3 time exceeded)
constexpr uint8_t echo_request = 128;
constexpr uint8_t echo_reply = 129;
constexpr uint8_t router_solicitation = 133;
constexpr uint8_t neighbor_solicitation = 135;
constexpr uint8_t first_neighbor_discovery = 133;
constexpr uint8_t last_neighbor_discovery = 137;  // redirect
}  // namespace icmpv6_type

// RFC 4861 minimum message lengths of RS, RA, NS, NA, redirect (types 133..137): shorter
// messages cannot hold the fixed fields (e.g. the target address) later stages read.
constexpr uint8_t kNeighborDiscoveryMinLength[] = {8, 16, 24, 24, 40};

inline uint16_t load_be16(const uint8_t* p) noexcept {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

inline uint32_t load_be32(const uint8_t* p) noexcept {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// An address straight into its destination with one 16-byte store. Building it in a
// temporary (IpAddress::v4_from_wire) made the compiler assemble the 16 bytes from three
// smaller stores and reload them as one, a store-forwarding stall on every packet
// (bench/README.md, part 2).
inline void load_ipv4(const uint8_t* p, IpAddress& address) noexcept {
  uint32_t word;
  std::memcpy(&word, p, 4);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(address.bytes.data()),
                   _mm_cvtsi32_si128(static_cast<int>(word)));
  address.family = 4;
}

inline void load_ipv6(const uint8_t* p, IpAddress& address) noexcept {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(address.bytes.data()),
                   _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  address.family = 6;
}

inline void load_mac(const uint8_t* p, MacAddress& mac) noexcept {
  std::memcpy(mac.bytes.data(), p, mac.bytes.size());
}

// Bit f set when TCP flag byte f (FIN..URG) is a combination no real stack sends:
// SYN+FIN, SYN+RST, no flag at all (null scan), FIN+PSH+URG without ACK (Xmas scan).
constexpr uint64_t kImpossibleTcpFlags = [] {
  uint64_t mask = 0;
  for (unsigned f = 0; f < 64; ++f) {
    const bool syn_fin = (f & tcp_flag::syn) && (f & tcp_flag::fin);
    const bool syn_rst = (f & tcp_flag::syn) && (f & tcp_flag::rst);
    const unsigned xmas = tcp_flag::fin | tcp_flag::psh | tcp_flag::urg;
    const bool xmas_scan = (f & xmas) == xmas && !(f & tcp_flag::ack);
    if (f == 0 || syn_fin || syn_rst || xmas_scan) mask |= uint64_t{1} << f;
  }
  return mask;
}();

// `length` is a multiple of 4 (IHL * 4). The one's-complement sum of the 16-bit words,
// taken 32 bits at a time in host order and folded: RFC 1071 (the sum does not depend on
// byte order, and 0xffff is its own byte swap).
bool ipv4_header_checksum_ok(const uint8_t* header, uint32_t length) noexcept {
  uint64_t sum = 0;  // at most 15 words of 32 bits: no overflow
  for (uint32_t i = 0; i < length; i += 4) {
    uint32_t word;
    std::memcpy(&word, header + i, 4);
    sum += word;
  }
  sum = (sum & 0xffffffff) + (sum >> 32);
  sum = (sum & 0xffffffff) + (sum >> 32);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return sum == 0xffff;
}

// RFC 791 options: EOL ends the list, NOP is one byte, every other option carries a
// length byte that counts itself and the type and must stay inside the header. A loose or
// strict source route is refused even when well formed: a host that honours it answers
// along the route reversed, so a sender forging a trusted peer's address would receive
// the replies (RFC 7126 §4.3, §4.4 advise dropping both).
DropReason check_ipv4_options(const uint8_t* options, uint32_t length) noexcept {
  constexpr uint8_t kLooseSourceRoute = 131;
  constexpr uint8_t kStrictSourceRoute = 137;
  uint32_t i = 0;
  while (i < length) {
    const uint8_t type = options[i];
    if (type == 0) return DropReason::none;  // end of option list: the rest is padding
    if (type == 1) {
      ++i;
      continue;
    }
    if (length - i < 2) return DropReason::bad_ipv4_header;
    const uint8_t option_length = options[i + 1];
    if (option_length < 2 || option_length > length - i) return DropReason::bad_ipv4_header;
    if (type == kLooseSourceRoute || type == kStrictSourceRoute) {
      return DropReason::ip_source_route;
    }
    i += option_length;
  }
  return DropReason::none;
}

bool ipv4_source_bad(const uint8_t* address) noexcept {
  const uint32_t a = load_be32(address);
  const bool unspecified = a == 0;
  const bool limited_broadcast = a == 0xffffffff;
  const bool multicast = (a >> 28) == 0xe;
  const bool loopback = (a >> 24) == 127;
  return unspecified | limited_broadcast | multicast | loopback;
}

bool ipv6_is_unspecified(const uint8_t* address) noexcept {
  uint64_t high, low;
  std::memcpy(&high, address, 8);
  std::memcpy(&low, address + 8, 8);
  return (high | low) == 0;
}

bool ipv6_is_loopback(const uint8_t* address) noexcept {
  uint64_t high;
  std::memcpy(&high, address, 8);
  return high == 0 && load_be32(address + 8) == 0 && load_be32(address + 12) == 1;
}

struct Ipv6Chain {
  uint32_t offset = 0;          // first byte after the last extension header walked
  uint8_t next = 0;             // next header value there: the upper-layer protocol
  bool fragment = false;        // a fragment header was seen
  bool later_fragment = false;  // ...with a non-zero offset (no upper-layer header follows)
  bool source_route = false;    // a routing header of type 0 was seen
};

// Walks the extension headers from chain.offset, bounded by `end` (the end of the IPv6
// payload). Rules (RFC 8200 §4.1, enforced as a firewall): hop-by-hop only first; every
// other header at most once, except destination options at most twice. These rules
// bound the chain to six headers, so the loop needs no separate counter. A fragment
// header ends the walk when `stop_at_fragment` is set or the fragment is not the first.
bool walk_ipv6_extensions(const uint8_t* frame, uint32_t end, bool stop_at_fragment,
                          Ipv6Chain& chain) noexcept {
  uint32_t seen = 0;  // bit per header type, destination options counted separately
  unsigned destination_options = 0;
  for (bool first = true;; first = false) {
    const uint8_t type = chain.next;
    uint32_t seen_bit;
    switch (type) {
      case ipv6_extension::hop_by_hop:
        if (!first) return false;
        seen_bit = 0;
        break;
      case ipv6_extension::routing:
        seen_bit = 1u << 0;
        break;
      case ipv6_extension::fragment:
        seen_bit = 1u << 1;
        break;
      case ipv6_extension::authentication:
        seen_bit = 1u << 2;
        break;
      case ipv6_extension::destination_options:
        if (++destination_options > 2) return false;
        seen_bit = 0;
        break;
      default:
        return true;  // upper-layer protocol (or one we do not know: the caller decides)
    }
    if (seen & seen_bit) return false;
    seen |= seen_bit;

    // Every extension header is at least 8 bytes long.
    if (end - chain.offset < 8) return false;
    const uint8_t* header = frame + chain.offset;
    uint32_t header_length;
    if (type == ipv6_extension::fragment) {
      header_length = 8;
      chain.fragment = true;
      chain.later_fragment = (load_be16(header + 2) & 0xfff8) != 0;
    } else if (type == ipv6_extension::authentication) {
      header_length = (uint32_t{header[1]} + 2) * 4;  // RFC 4302: in 4-byte units, minus 2
    } else {
      header_length = (uint32_t{header[1]} + 1) * 8;
    }
    if (header_length > end - chain.offset) return false;
    // Type 0 is the IPv6 source route, deprecated for the same reason as IPv4's (RFC 5095).
    if (type == ipv6_extension::routing && header[2] == 0) chain.source_route = true;
    chain.next = header[0];
    chain.offset += header_length;
    if (type == ipv6_extension::fragment && (stop_at_fragment || chain.later_fragment)) {
      return true;
    }
  }
}

// Fills the transport endpoints of a quoted packet whose upper-layer header starts at
// `l4` (at least kQuotedTransportLength bytes are there).
void fill_quoted_ports(const uint8_t* l4, QuotedPacket& quoted) noexcept {
  switch (quoted.protocol) {
    case ip_protocol::tcp:
      quoted.src_port = load_be16(l4);
      quoted.dst_port = load_be16(l4 + 2);
      quoted.tcp_seq = load_be32(l4 + 4);
      break;
    case ip_protocol::udp:
      quoted.src_port = load_be16(l4);
      quoted.dst_port = load_be16(l4 + 2);
      break;
    case ip_protocol::icmp:
      if (l4[0] == icmp_type::echo_request || l4[0] == icmp_type::echo_reply) {
        quoted.src_port = quoted.dst_port = load_be16(l4 + 4);
      }
      break;
    case ip_protocol::icmpv6:
      if (l4[0] == icmpv6_type::echo_request || l4[0] == icmpv6_type::echo_reply) {
        quoted.src_port = quoted.dst_port = load_be16(l4 + 4);
      }
      break;
    default:
      break;
  }
}

// The IPv4 header and first 8 transport bytes an ICMP error quotes, in [offset, end).
DropReason decode_quoted_ipv4(const uint8_t* frame, uint32_t offset, uint32_t end,
                              QuotedPacket& quoted) noexcept {
  const uint32_t available = end - offset;
  if (available < kIpv4MinHeaderLength) return DropReason::bad_icmp_header;
  const uint8_t* ip = frame + offset;
  const uint32_t header_length = (ip[0] & 0x0fu) * 4;
  if ((ip[0] >> 4) != 4 || header_length < kIpv4MinHeaderLength ||
      header_length + kQuotedTransportLength > available) {
    return DropReason::bad_icmp_header;
  }
  quoted.src = IpAddress::v4_from_wire(ip + 12);
  quoted.dst = IpAddress::v4_from_wire(ip + 16);
  quoted.protocol = ip[9];
  // A later fragment quotes payload bytes, not a transport header: no ports.
  if ((load_be16(ip + 6) & 0x1fff) == 0) fill_quoted_ports(ip + header_length, quoted);
  return DropReason::none;
}

// The IPv6 header, extension headers and first 8 transport bytes an ICMPv6 error quotes.
DropReason decode_quoted_ipv6(const uint8_t* frame, uint32_t offset, uint32_t end,
                              QuotedPacket& quoted) noexcept {
  if (end - offset < kIpv6HeaderLength) return DropReason::bad_icmp_header;
  const uint8_t* ip = frame + offset;
  if ((ip[0] >> 4) != 6) return DropReason::bad_icmp_header;
  quoted.src = IpAddress::v6_from_wire(ip + 8);
  quoted.dst = IpAddress::v6_from_wire(ip + 24);
  Ipv6Chain chain;
  chain.offset = offset + kIpv6HeaderLength;
  chain.next = ip[6];
  if (!walk_ipv6_extensions(frame, end, /*stop_at_fragment=*/false, chain) ||
      end - chain.offset < kQuotedTransportLength) {
    return DropReason::bad_icmp_header;
  }
  quoted.protocol = chain.next;
  if (!chain.later_fragment) fill_quoted_ports(frame + chain.offset, quoted);
  return DropReason::none;
}

// The window scale option among a SYN's options. A malformed list ends the search, as in
// the stacks that receive it (Linux tcp_parse_options): the segment itself is still valid.
void read_window_scale(const uint8_t* options, uint32_t length, DecodedPacket& out) noexcept {
  constexpr uint8_t kEnd = 0, kNop = 1, kWindowScale = 3;
  constexpr uint8_t kMaxShift = 14;  // RFC 7323 §2.3: larger values are taken as 14
  for (uint32_t i = 0; i < length && options[i] != kEnd;) {
    if (options[i] == kNop) {
      ++i;
      continue;
    }
    if (length - i < 2) return;
    const uint8_t option_length = options[i + 1];
    if (option_length < 2 || option_length > length - i) return;
    if (options[i] == kWindowScale && option_length == 3) {
      out.tcp_window_scale_offered = true;
      out.tcp_window_shift = std::min(options[i + 2], kMaxShift);
      return;
    }
    i += option_length;
  }
}

DropReason decode_tcp(const uint8_t* frame, uint32_t l4, uint32_t end,
                      DecodedPacket& out) noexcept {
  const uint32_t available = end - l4;
  if (available < kTcpMinHeaderLength) return DropReason::bad_tcp_header;
  const uint8_t* tcp = frame + l4;
  out.src_port = load_be16(tcp);
  out.dst_port = load_be16(tcp + 2);
  out.tcp_seq = load_be32(tcp + 4);
  out.tcp_ack = load_be32(tcp + 8);
  // ECE and CWR (the top two bits) are congestion signals, not connection state: the
  // engine compares flags against the tcp_flag values, so they are left out.
  out.tcp_flags = tcp[13] & 0x3f;
  out.tcp_window = load_be16(tcp + 14);
  const uint32_t header_length = (tcp[12] >> 4) * 4u;
  if (header_length < kTcpMinHeaderLength || header_length > available) {
    return DropReason::bad_tcp_header;
  }
  out.payload_offset = static_cast<uint16_t>(l4 + header_length);
  out.payload_length = static_cast<uint16_t>(available - header_length);
  if ((kImpossibleTcpFlags >> out.tcp_flags) & 1) return DropReason::bad_tcp_flags;
  if ((out.tcp_flags & tcp_flag::syn) != 0 && header_length > kTcpMinHeaderLength) {
    read_window_scale(tcp + kTcpMinHeaderLength, header_length - kTcpMinHeaderLength, out);
  }
  return DropReason::none;
}

DropReason decode_udp(const uint8_t* frame, uint32_t l4, uint32_t end,
                      DecodedPacket& out) noexcept {
  const uint32_t available = end - l4;
  if (available < kUdpHeaderLength) return DropReason::bad_udp_header;
  const uint8_t* udp = frame + l4;
  out.src_port = load_be16(udp);
  out.dst_port = load_be16(udp + 2);
  // Strictly equal: a shorter UDP length would hide bytes from inspection.
  if (load_be16(udp + 4) != available) return DropReason::bad_udp_header;
  out.payload_offset = static_cast<uint16_t>(l4 + kUdpHeaderLength);
  out.payload_length = static_cast<uint16_t>(available - kUdpHeaderLength);
  return DropReason::none;
}

DropReason decode_icmp(const uint8_t* frame, uint32_t l4, uint32_t end,
                       DecodedPacket& out) noexcept {
  const uint32_t available = end - l4;
  if (available < kIcmpHeaderLength) return DropReason::bad_icmp_header;
  const uint8_t* icmp = frame + l4;
  const uint8_t type = icmp[0];
  out.icmp_type = type;
  out.icmp_code = icmp[1];
  out.payload_offset = static_cast<uint16_t>(l4 + kIcmpHeaderLength);
  out.payload_length = static_cast<uint16_t>(available - kIcmpHeaderLength);
  switch (type) {
    case icmp_type::echo_request:
    case icmp_type::echo_reply:
      out.icmp_is_echo_request = type == icmp_type::echo_request;
      out.icmp_is_echo_reply = type == icmp_type::echo_reply;
      out.icmp_echo_id = load_be16(icmp + 4);
      return DropReason::none;
    case icmp_type::destination_unreachable:
    case icmp_type::time_exceeded:
    case icmp_type::parameter_problem:
      out.icmp_is_error = true;
      return decode_quoted_ipv4(frame, l4 + kIcmpHeaderLength, end, out.quoted);
    default:
      return DropReason::none;  // other types: the policy decides (none is allowed by rules)
  }
}

DropReason decode_icmpv6(const uint8_t* frame, uint32_t l4, uint32_t end,
                         DecodedPacket& out) noexcept {
  const uint32_t available = end - l4;
  if (available < kIcmpHeaderLength) return DropReason::bad_icmp_header;
  const uint8_t* icmp = frame + l4;
  const uint8_t type = icmp[0];
  out.icmp_type = type;
  out.icmp_code = icmp[1];
  out.payload_offset = static_cast<uint16_t>(l4 + kIcmpHeaderLength);
  out.payload_length = static_cast<uint16_t>(available - kIcmpHeaderLength);
  if (type == icmpv6_type::echo_request || type == icmpv6_type::echo_reply) {
    out.icmp_is_echo_request = type == icmpv6_type::echo_request;
    out.icmp_is_echo_reply = type == icmpv6_type::echo_reply;
    out.icmp_echo_id = load_be16(icmp + 4);
    return DropReason::none;
  }
  if (type >= icmpv6_type::first_error && type <= icmpv6_type::last_error) {
    out.icmp_is_error = true;
    return decode_quoted_ipv6(frame, l4 + kIcmpHeaderLength, end, out.quoted);
  }
  if (type >= icmpv6_type::first_neighbor_discovery &&
      type <= icmpv6_type::last_neighbor_discovery) {
    out.icmpv6_is_neighbor_discovery = true;
    if (available < kNeighborDiscoveryMinLength[type - icmpv6_type::first_neighbor_discovery]) {
      return DropReason::bad_icmp_header;
    }
  }
  return DropReason::none;
}

// Upper layer at l4 of an IP packet ending at `end`; out.protocol is already set.
DropReason decode_transport(const uint8_t* frame, uint32_t l4, uint32_t end, bool ipv6,
                            DecodedPacket& out) noexcept {
  switch (out.protocol) {
    case ip_protocol::tcp:
      return decode_tcp(frame, l4, end, out);
    case ip_protocol::udp:
      return decode_udp(frame, l4, end, out);
    case ip_protocol::icmp:
      if (ipv6) break;  // ICMPv4 inside IPv6 is meaningless
      return decode_icmp(frame, l4, end, out);
    case ip_protocol::icmpv6:
      if (!ipv6) break;
      return decode_icmpv6(frame, l4, end, out);
    default:
      break;
  }
  return DropReason::unsupported_ip_protocol;
}

DropReason decode_arp(const uint8_t* frame, uint32_t length, uint32_t l3,
                      DecodedPacket& out) noexcept {
  out.l3 = L3Kind::arp;
  if (length - l3 < kArpLength) return DropReason::bad_arp;
  const uint8_t* arp = frame + l3;
  // Hardware type Ethernet (1), protocol IPv4, address sizes 6 and 4.
  if (load_be16(arp) != 1 || load_be16(arp + 2) != ethertype::ipv4 || arp[4] != 6 || arp[5] != 4) {
    return DropReason::bad_arp;
  }
  out.arp.operation = load_be16(arp + 6);
  load_mac(arp + 8, out.arp.sender_mac);
  out.arp.sender_ip = IpAddress::v4_from_wire(arp + 14);
  load_mac(arp + 18, out.arp.target_mac);
  out.arp.target_ip = IpAddress::v4_from_wire(arp + 24);
  // Only request and reply: RARP and InARP operations have no business on a device link.
  if (out.arp.operation != 1 && out.arp.operation != 2) return DropReason::bad_arp;
  return DropReason::none;
}

DropReason decode_ipv4(const uint8_t* frame, uint32_t length, uint32_t l3,
                       DecodedPacket& out) noexcept {
  out.l3 = L3Kind::ipv4;
  const uint32_t available = length - l3;
  if (available < kIpv4MinHeaderLength) return DropReason::bad_ipv4_header;
  const uint8_t* ip = frame + l3;
  if ((ip[0] >> 4) != 4) return DropReason::bad_ipv4_header;
  load_ipv4(ip + 12, out.src_ip);
  load_ipv4(ip + 16, out.dst_ip);
  out.protocol = ip[9];
  out.hop_limit = ip[8];
  const uint32_t header_length = (ip[0] & 0x0fu) * 4;
  if (header_length < kIpv4MinHeaderLength || header_length > available) {
    return DropReason::bad_ipv4_header;
  }
  const uint32_t total_length = load_be16(ip + 2);
  if (total_length < header_length || total_length > available) {
    return DropReason::bad_ipv4_length;
  }
  if (!ipv4_header_checksum_ok(ip, header_length)) return DropReason::bad_ipv4_checksum;
  const DropReason options =
      check_ipv4_options(ip + kIpv4MinHeaderLength, header_length - kIpv4MinHeaderLength);
  if (options != DropReason::none) return options;
  // A source equal to the destination never comes off a wire: the "land" attack, which
  // hangs old stacks (CVE-1999-0016).
  if (ipv4_source_bad(ip + 12) || load_be32(ip + 12) == load_be32(ip + 16)) {
    return DropReason::bad_source_address;
  }
  const uint32_t l4 = l3 + header_length;
  out.l4_offset = static_cast<uint16_t>(l4);
  if (load_be16(ip + 6) & 0x3fff) {  // more-fragments flag or a fragment offset
    out.is_fragment = true;
    return DropReason::ip_fragment;
  }
  return decode_transport(frame, l4, l3 + total_length, /*ipv6=*/false, out);
}

DropReason decode_ipv6(const uint8_t* frame, uint32_t length, uint32_t l3,
                       DecodedPacket& out) noexcept {
  out.l3 = L3Kind::ipv6;
  const uint32_t available = length - l3;
  if (available < kIpv6HeaderLength) return DropReason::bad_ipv6_header;
  const uint8_t* ip = frame + l3;
  if ((ip[0] >> 4) != 6) return DropReason::bad_ipv6_header;
  load_ipv6(ip + 8, out.src_ip);
  load_ipv6(ip + 24, out.dst_ip);
  out.protocol = ip[6];
  out.hop_limit = ip[7];
  const uint32_t payload_length = load_be16(ip + 4);
  if (payload_length > available - kIpv6HeaderLength) return DropReason::bad_ipv6_header;
  const uint8_t* src = ip + 8;
  if (src[0] == 0xff || ipv6_is_loopback(src) || std::memcmp(src, ip + 24, 16) == 0) {
    return DropReason::bad_source_address;  // the source equal to the destination: as IPv4
  }

  const uint32_t end = l3 + kIpv6HeaderLength + payload_length;
  Ipv6Chain chain;
  chain.offset = l3 + kIpv6HeaderLength;
  chain.next = ip[6];
  const bool chain_ok = walk_ipv6_extensions(frame, end, /*stop_at_fragment=*/true, chain);
  out.protocol = chain.next;
  if (!chain_ok) return DropReason::bad_ipv6_extension;
  out.l4_offset = static_cast<uint16_t>(chain.offset);
  if (chain.source_route) return DropReason::ip_source_route;
  if (chain.fragment) {  // atomic fragments too: nothing fragmented passes uninspected
    out.is_fragment = true;
    return DropReason::ip_fragment;
  }
  const DropReason reason = decode_transport(frame, chain.offset, end, /*ipv6=*/true, out);
  if (reason != DropReason::none) return reason;
  // The unspecified source :: is legitimate only before a node owns an address: router
  // solicitation and the neighbor solicitation of duplicate address detection
  // (RFC 4861 §4.1, §4.3; RFC 4862 §5.4). Anything else from :: is refused.
  if (ipv6_is_unspecified(src) && !(out.protocol == ip_protocol::icmpv6 &&
                                    (out.icmp_type == icmpv6_type::router_solicitation ||
                                     out.icmp_type == icmpv6_type::neighbor_solicitation))) {
    return DropReason::bad_source_address;
  }
  return DropReason::none;
}

// Zeroes a DecodedPacket (every member's default is zero) with 16-byte stores written out
// one by one. Both `out = {}` and a copy from a clean instance become `rep stosq` once
// the struct passes GCC's inline size for a memset (it did at 188 bytes), and that
// instruction's start-up cost, once per packet, made the whole pipeline ~12 % slower
// (bench/README.md, part 2). A sequence of stores is not turned into a memset call.
template <size_t... Chunk>
void clear_chunks(uint8_t* bytes, std::index_sequence<Chunk...>) noexcept {
  const __m128i zero = _mm_setzero_si128();
  (_mm_storeu_si128(reinterpret_cast<__m128i*>(bytes + 16 * Chunk), zero), ...);
}

void clear(DecodedPacket& out) noexcept {
  static_assert(std::is_trivially_copyable_v<DecodedPacket> && sizeof(DecodedPacket) >= 16);
  constexpr size_t kSize = sizeof(DecodedPacket);
  auto* bytes = reinterpret_cast<uint8_t*>(&out);
  clear_chunks(bytes, std::make_index_sequence<kSize / 16>{});
  // The last bytes, overlapping the chunk before them when the size is not a multiple of 16.
  if constexpr (kSize % 16 != 0) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(bytes + kSize - 16), _mm_setzero_si128());
  }
}

}  // namespace

DropReason decode(const uint8_t* frame, uint32_t length, DecodedPacket& out) noexcept {
  // Callers reuse one DecodedPacket per batch slot: start clean so that no field of a
  // previous frame survives into this one.
  clear(out);
  if (length < kEthernetHeaderLength) return DropReason::truncated_ethernet;
  load_mac(frame, out.dst_mac);
  load_mac(frame + 6, out.src_mac);
  uint16_t type = load_be16(frame + 12);
  uint32_t offset = kEthernetHeaderLength;
  while (type == ethertype::vlan || type == ethertype::qinq) {
    if (out.vlan_count == kMaxVlanTags) return DropReason::vlan_too_deep;
    if (length - offset < kVlanTagLength) return DropReason::truncated_ethernet;
    out.vlan_ids[out.vlan_count++] = load_be16(frame + offset) & 0x0fff;
    type = load_be16(frame + offset + 2);
    offset += kVlanTagLength;
  }
  out.ethertype = type;
  out.l3_offset = static_cast<uint16_t>(offset);
  switch (type) {
    case ethertype::arp:
      return decode_arp(frame, length, offset, out);
    case ethertype::ipv4:
      return decode_ipv4(frame, length, offset, out);
    case ethertype::ipv6:
      return decode_ipv6(frame, length, offset, out);
    default:
      return DropReason::unsupported_ethertype;
  }
}

}  // namespace cordon::engine
