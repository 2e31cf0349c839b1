#include "tests/unit/dataplane/engine/frames.h"

#include <stdexcept>
#include <utility>

#include "dataplane/engine/packet.h"

namespace cordon::testing {

using engine::IpAddress;
using engine::MacAddress;

enum class FrameBuilder::Kind : uint8_t {
  eth,
  vlan,
  arp,
  ethertype,
  ipv4,
  ipv4_options,
  ipv4_fragment,
  ipv4_id,
  ipv6,
  ipv6_extension,
  ipv6_fragment,
  ip_protocol,
  tcp,
  tcp_options,
  tcp_window,
  udp,
  icmp_echo_request,
  icmp_echo_reply,
  icmp,
  icmp_error,
  payload,
  truncate_to,
  ip_total_length,
  bad_ipv4_checksum,
};

namespace {

constexpr uint16_t kEthertypeIpv4 = 0x0800;
constexpr uint16_t kEthertypeArp = 0x0806;
constexpr uint16_t kEthertypeIpv6 = 0x86dd;
constexpr uint8_t kProtocolIcmp = 1;
constexpr uint8_t kProtocolTcp = 6;
constexpr uint8_t kProtocolUdp = 17;
constexpr uint8_t kProtocolIcmpv6 = 58;
constexpr uint8_t kProtocolIpv6NoNext = 59;
constexpr uint8_t kProtocolReserved = 255;  // IPv4 with no upper layer given
constexpr uint8_t kIpv6Fragment = 44;
constexpr uint8_t kIpv6Authentication = 51;

MacAddress parse_mac(const std::string& text) {
  auto mac = MacAddress::parse(text);
  if (!mac) throw std::invalid_argument("FrameBuilder: bad MAC address '" + text + "'");
  return *mac;
}

IpAddress parse_ip(const std::string& text, uint8_t family) {
  auto ip = IpAddress::parse(text);
  if (!ip || ip->family != family) {
    throw std::invalid_argument("FrameBuilder: bad IPv" + std::to_string(family) + " address '" +
                                text + "'");
  }
  return *ip;
}

void put8(Bytes& out, uint64_t v) {
  out.push_back(static_cast<uint8_t>(v));
}
void put16(Bytes& out, uint64_t v) {
  put8(out, v >> 8);
  put8(out, v);
}
void put32(Bytes& out, uint64_t v) {
  put16(out, v >> 16);
  put16(out, v);
}
void put(Bytes& out, const uint8_t* p, size_t n) {
  out.insert(out.end(), p, p + n);
}
void put_ip(Bytes& out, const IpAddress& ip) {
  put(out, ip.bytes.data(), ip.family == 4 ? 4 : 16);
}
void put_mac(Bytes& out, const MacAddress& mac) {
  put(out, mac.bytes.data(), mac.bytes.size());
}
void store16(Bytes& out, size_t at, uint16_t v) {
  out[at] = static_cast<uint8_t>(v >> 8);
  out[at + 1] = static_cast<uint8_t>(v);
}

// RFC 1071 ones' complement sum, unfolded.
uint32_t sum_words(const Bytes& bytes, uint32_t sum = 0) {
  for (size_t i = 0; i < bytes.size(); i += 2) {
    const uint32_t high = bytes[i];
    const uint32_t low = i + 1 < bytes.size() ? bytes[i + 1] : 0;
    sum += (high << 8) | low;
  }
  return sum;
}
uint16_t finish_checksum(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// The quoted packet of an ICMP error starts at its IP header.
Bytes strip_ethernet(const Bytes& frame) {
  if (frame.size() < 14) throw std::invalid_argument("FrameBuilder: quoted frame too short");
  size_t offset = 12;
  while (offset + 2 <= frame.size()) {
    const uint16_t type = static_cast<uint16_t>((frame[offset] << 8) | frame[offset + 1]);
    if (type != 0x8100 && type != 0x88a8) break;
    offset += 4;
  }
  offset += 2;
  if (offset > frame.size()) throw std::invalid_argument("FrameBuilder: quoted frame too short");
  return Bytes(frame.begin() + static_cast<std::ptrdiff_t>(offset), frame.end());
}

// What the recorded steps describe, gathered before any byte is laid out.
struct Model {
  MacAddress src_mac = *MacAddress::parse("02:00:00:00:00:01");
  MacAddress dst_mac = *MacAddress::parse("02:00:00:00:00:02");
  std::vector<std::pair<uint16_t, uint16_t>> vlans;  // tpid, vid

  enum class L3 { none, arp, raw, ipv4, ipv6 } l3 = L3::none;
  uint16_t raw_ethertype = 0;
  Bytes l3_body;  // ARP message or raw EtherType payload
  IpAddress src_ip, dst_ip;
  uint8_t ttl = 64;
  Bytes ipv4_options;
  uint16_t ipv4_fragment_field = 0;
  uint16_t ipv4_id = 0;
  Bytes ipv6_extensions;  // laid out with placeholder next-header bytes
  std::vector<std::pair<size_t, uint8_t>> ipv6_extension_types;  // offset, type

  enum class L4 { none, raw, tcp, udp, echo_request, echo_reply, icmp, icmp_error } l4 = L4::none;
  uint8_t raw_protocol = 0;
  Bytes l4_header;  // without the type byte for ICMP, which depends on the family
  uint8_t icmp_type = 0;
  Bytes payload;

  size_t truncate_to = SIZE_MAX;
  bool override_ip_length = false;
  uint16_t ip_length = 0;
  bool corrupt_ipv4_checksum = false;
};

void add_ipv6_extension(Model& m, uint8_t type, Bytes body) {
  const size_t length = (2 + body.size() + 7) / 8 * 8;
  body.resize(length - 2, 0);  // zero bytes are Pad1 options
  m.ipv6_extension_types.emplace_back(m.ipv6_extensions.size(), type);
  put8(m.ipv6_extensions, 0);  // next header, filled in build()
  put8(m.ipv6_extensions, type == kIpv6Authentication ? length / 4 - 2 : length / 8 - 1);
  m.ipv6_extensions.insert(m.ipv6_extensions.end(), body.begin(), body.end());
}

}  // namespace

FrameBuilder& FrameBuilder::add(Step step) {
  steps_.push_back(std::move(step));
  return *this;
}

FrameBuilder& FrameBuilder::eth(const std::string& src_mac, const std::string& dst_mac) {
  parse_mac(src_mac);  // fail at the call that is wrong, not later in build()
  parse_mac(dst_mac);
  return add({.kind = Kind::eth, .a = src_mac, .b = dst_mac});
}
FrameBuilder& FrameBuilder::vlan(uint16_t vid, uint16_t tpid) {
  return add({.kind = Kind::vlan, .n1 = vid, .n2 = tpid});
}
FrameBuilder& FrameBuilder::arp(uint16_t op, const std::string& sender_mac,
                                const std::string& sender_ip, const std::string& target_mac,
                                const std::string& target_ip) {
  parse_mac(sender_mac);
  parse_ip(sender_ip, 4);
  parse_mac(target_mac);
  parse_ip(target_ip, 4);
  return add({.kind = Kind::arp,
              .a = sender_mac,
              .b = sender_ip,
              .c = target_mac,
              .d = target_ip,
              .n1 = op});
}
FrameBuilder& FrameBuilder::ethertype(uint16_t type, Bytes payload) {
  return add({.kind = Kind::ethertype, .n1 = type, .bytes = std::move(payload)});
}
FrameBuilder& FrameBuilder::ipv4(const std::string& src, const std::string& dst, uint8_t ttl) {
  parse_ip(src, 4);
  parse_ip(dst, 4);
  return add({.kind = Kind::ipv4, .a = src, .b = dst, .n1 = ttl});
}
FrameBuilder& FrameBuilder::ipv4_options(Bytes options) {
  return add({.kind = Kind::ipv4_options, .bytes = std::move(options)});
}
FrameBuilder& FrameBuilder::ipv4_fragment(uint16_t offset_bytes, bool more_fragments) {
  return add({.kind = Kind::ipv4_fragment, .n1 = offset_bytes, .n2 = more_fragments});
}
FrameBuilder& FrameBuilder::ipv4_id(uint16_t id) {
  return add({.kind = Kind::ipv4_id, .n1 = id});
}
FrameBuilder& FrameBuilder::ipv6(const std::string& src, const std::string& dst,
                                 uint8_t hop_limit) {
  parse_ip(src, 6);
  parse_ip(dst, 6);
  return add({.kind = Kind::ipv6, .a = src, .b = dst, .n1 = hop_limit});
}
FrameBuilder& FrameBuilder::ipv6_extension(uint8_t type, Bytes body) {
  return add({.kind = Kind::ipv6_extension, .n1 = type, .bytes = std::move(body)});
}
FrameBuilder& FrameBuilder::ipv6_fragment(uint16_t offset_bytes, bool more_fragments, uint32_t id) {
  return add({.kind = Kind::ipv6_fragment, .n1 = offset_bytes, .n2 = more_fragments, .n3 = id});
}
FrameBuilder& FrameBuilder::ip_protocol(uint8_t protocol, Bytes payload) {
  return add({.kind = Kind::ip_protocol, .n1 = protocol, .bytes = std::move(payload)});
}
FrameBuilder& FrameBuilder::tcp(uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq,
                                uint32_t ack) {
  return add({.kind = Kind::tcp,
              .n1 = sport,
              .n2 = dport,
              .n3 = flags,
              .n4 = (uint64_t{seq} << 32) | ack});
}
FrameBuilder& FrameBuilder::tcp_options(Bytes options) {
  return add({.kind = Kind::tcp_options, .bytes = std::move(options)});
}
FrameBuilder& FrameBuilder::tcp_window(uint16_t window) {
  return add({.kind = Kind::tcp_window, .n1 = window});
}
FrameBuilder& FrameBuilder::udp(uint16_t sport, uint16_t dport) {
  return add({.kind = Kind::udp, .n1 = sport, .n2 = dport});
}
FrameBuilder& FrameBuilder::icmp_echo_request(uint16_t id, uint16_t seq) {
  return add({.kind = Kind::icmp_echo_request, .n1 = id, .n2 = seq});
}
FrameBuilder& FrameBuilder::icmp_echo_reply(uint16_t id, uint16_t seq) {
  return add({.kind = Kind::icmp_echo_reply, .n1 = id, .n2 = seq});
}
FrameBuilder& FrameBuilder::icmp(uint8_t type, uint8_t code, Bytes body) {
  return add({.kind = Kind::icmp, .n1 = type, .n2 = code, .bytes = std::move(body)});
}
FrameBuilder& FrameBuilder::icmp_error(uint8_t type, uint8_t code, const Bytes& quoted_frame) {
  return add(
      {.kind = Kind::icmp_error, .n1 = type, .n2 = code, .bytes = strip_ethernet(quoted_frame)});
}
FrameBuilder& FrameBuilder::payload(Bytes bytes) {
  return add({.kind = Kind::payload, .bytes = std::move(bytes)});
}
FrameBuilder& FrameBuilder::payload(const std::string& text) {
  return payload(Bytes(text.begin(), text.end()));
}
FrameBuilder& FrameBuilder::truncate_to(size_t length) {
  return add({.kind = Kind::truncate_to, .n1 = length});
}
FrameBuilder& FrameBuilder::ip_total_length(uint16_t value) {
  return add({.kind = Kind::ip_total_length, .n1 = value});
}
FrameBuilder& FrameBuilder::bad_ipv4_checksum() {
  return add({.kind = Kind::bad_ipv4_checksum});
}

Bytes FrameBuilder::build() const {
  Model m;
  for (const Step& s : steps_) {
    switch (s.kind) {
      case Kind::eth:
        m.src_mac = parse_mac(s.a);
        m.dst_mac = parse_mac(s.b);
        break;
      case Kind::vlan:
        m.vlans.emplace_back(static_cast<uint16_t>(s.n2), static_cast<uint16_t>(s.n1));
        break;
      case Kind::arp:
        m.l3 = Model::L3::arp;
        m.l3_body.clear();
        put16(m.l3_body, 1);  // hardware type Ethernet
        put16(m.l3_body, kEthertypeIpv4);
        put8(m.l3_body, 6);
        put8(m.l3_body, 4);
        put16(m.l3_body, s.n1);
        put_mac(m.l3_body, parse_mac(s.a));
        put_ip(m.l3_body, parse_ip(s.b, 4));
        put_mac(m.l3_body, parse_mac(s.c));
        put_ip(m.l3_body, parse_ip(s.d, 4));
        break;
      case Kind::ethertype:
        m.l3 = Model::L3::raw;
        m.raw_ethertype = static_cast<uint16_t>(s.n1);
        m.l3_body = s.bytes;
        break;
      case Kind::ipv4:
        m.l3 = Model::L3::ipv4;
        m.src_ip = parse_ip(s.a, 4);
        m.dst_ip = parse_ip(s.b, 4);
        m.ttl = static_cast<uint8_t>(s.n1);
        break;
      case Kind::ipv4_options:
        m.ipv4_options = s.bytes;
        m.ipv4_options.resize((m.ipv4_options.size() + 3) / 4 * 4, 0);
        break;
      case Kind::ipv4_fragment:
        m.ipv4_fragment_field = static_cast<uint16_t>((s.n2 ? 0x2000 : 0) | ((s.n1 / 8) & 0x1fff));
        break;
      case Kind::ipv4_id:
        m.ipv4_id = static_cast<uint16_t>(s.n1);
        break;
      case Kind::ipv6:
        m.l3 = Model::L3::ipv6;
        m.src_ip = parse_ip(s.a, 6);
        m.dst_ip = parse_ip(s.b, 6);
        m.ttl = static_cast<uint8_t>(s.n1);
        break;
      case Kind::ipv6_extension:
        add_ipv6_extension(m, static_cast<uint8_t>(s.n1), s.bytes);
        break;
      case Kind::ipv6_fragment: {
        Bytes body;
        put16(body, (s.n1 & 0xfff8) | (s.n2 ? 1 : 0));
        put32(body, s.n3);
        // The fragment header's second byte is reserved (zero), which is what the generic
        // length computation writes for an 8-byte header.
        add_ipv6_extension(m, kIpv6Fragment, std::move(body));
        break;
      }
      case Kind::ip_protocol:
        m.l4 = Model::L4::raw;
        m.raw_protocol = static_cast<uint8_t>(s.n1);
        m.l4_header = s.bytes;
        break;
      case Kind::tcp:
        m.l4 = Model::L4::tcp;
        m.l4_header.clear();
        put16(m.l4_header, s.n1);
        put16(m.l4_header, s.n2);
        put32(m.l4_header, s.n4 >> 32);  // sequence
        put32(m.l4_header, s.n4);        // acknowledgement
        put8(m.l4_header, 5 << 4);       // data offset: no options
        put8(m.l4_header, s.n3);
        put16(m.l4_header, 64240);  // window
        put16(m.l4_header, 0);      // checksum
        put16(m.l4_header, 0);      // urgent pointer
        break;
      case Kind::tcp_options: {
        if (m.l4 != Model::L4::tcp) throw std::logic_error("tcp_options() before tcp()");
        Bytes options = s.bytes;
        options.resize((options.size() + 3) / 4 * 4, 0);
        m.l4_header.resize(20);
        m.l4_header.insert(m.l4_header.end(), options.begin(), options.end());
        m.l4_header[12] = static_cast<uint8_t>(m.l4_header.size() / 4 << 4);
        break;
      }
      case Kind::tcp_window:
        if (m.l4 != Model::L4::tcp) throw std::logic_error("tcp_window() before tcp()");
        m.l4_header[14] = static_cast<uint8_t>(s.n1 >> 8);
        m.l4_header[15] = static_cast<uint8_t>(s.n1);
        break;
      case Kind::udp:
        m.l4 = Model::L4::udp;
        m.l4_header.clear();
        put16(m.l4_header, s.n1);
        put16(m.l4_header, s.n2);
        put16(m.l4_header, 0);  // length
        put16(m.l4_header, 0);  // checksum
        break;
      case Kind::icmp_echo_request:
      case Kind::icmp_echo_reply:
        m.l4 = s.kind == Kind::icmp_echo_request ? Model::L4::echo_request : Model::L4::echo_reply;
        m.l4_header.clear();
        put8(m.l4_header, 0);   // code
        put16(m.l4_header, 0);  // checksum
        put16(m.l4_header, s.n1);
        put16(m.l4_header, s.n2);
        break;
      case Kind::icmp:
      case Kind::icmp_error:
        m.l4 = s.kind == Kind::icmp ? Model::L4::icmp : Model::L4::icmp_error;
        m.icmp_type = static_cast<uint8_t>(s.n1);
        m.l4_header.clear();
        put8(m.l4_header, s.n2);
        put16(m.l4_header, 0);                                  // checksum
        if (s.kind == Kind::icmp_error) put32(m.l4_header, 0);  // unused / MTU / pointer
        m.l4_header.insert(m.l4_header.end(), s.bytes.begin(), s.bytes.end());
        break;
      case Kind::payload:
        m.payload.insert(m.payload.end(), s.bytes.begin(), s.bytes.end());
        break;
      case Kind::truncate_to:
        m.truncate_to = s.n1;
        break;
      case Kind::ip_total_length:
        m.override_ip_length = true;
        m.ip_length = static_cast<uint16_t>(s.n1);
        break;
      case Kind::bad_ipv4_checksum:
        m.corrupt_ipv4_checksum = true;
        break;
    }
  }

  const bool ipv6 = m.l3 == Model::L3::ipv6;

  // Upper layer: header, payload, then the checksum once the protocol is known.
  Bytes l4;
  uint8_t protocol = ipv6 ? kProtocolIpv6NoNext : kProtocolReserved;
  size_t checksum_at = SIZE_MAX;
  bool pseudo_header = true;
  switch (m.l4) {
    case Model::L4::none:
      break;
    case Model::L4::raw:
      protocol = m.raw_protocol;
      l4 = m.l4_header;
      break;
    case Model::L4::tcp:
      protocol = kProtocolTcp;
      l4 = m.l4_header;
      checksum_at = 16;
      break;
    case Model::L4::udp:
      protocol = kProtocolUdp;
      l4 = m.l4_header;
      checksum_at = 6;
      store16(l4, 4, static_cast<uint16_t>(l4.size() + m.payload.size()));
      break;
    case Model::L4::echo_request:
    case Model::L4::echo_reply:
    case Model::L4::icmp:
    case Model::L4::icmp_error: {
      protocol = ipv6 ? kProtocolIcmpv6 : kProtocolIcmp;
      pseudo_header = ipv6;  // ICMPv4 checksums cover the message only
      uint8_t type = m.icmp_type;
      if (m.l4 == Model::L4::echo_request) type = ipv6 ? 128 : 8;
      if (m.l4 == Model::L4::echo_reply) type = ipv6 ? 129 : 0;
      l4.push_back(type);
      l4.insert(l4.end(), m.l4_header.begin(), m.l4_header.end());
      checksum_at = 2;
      break;
    }
  }
  l4.insert(l4.end(), m.payload.begin(), m.payload.end());

  if (checksum_at != SIZE_MAX && (m.l3 == Model::L3::ipv4 || ipv6)) {
    uint32_t sum = 0;
    if (pseudo_header) {
      Bytes pseudo;
      put_ip(pseudo, m.src_ip);
      put_ip(pseudo, m.dst_ip);
      if (ipv6) {
        put32(pseudo, l4.size());
        put32(pseudo, protocol);
      } else {
        put16(pseudo, protocol);
        put16(pseudo, l4.size());
      }
      sum = sum_words(pseudo);
    }
    uint16_t checksum = finish_checksum(sum_words(l4, sum));
    if (protocol == kProtocolUdp && checksum == 0) checksum = 0xffff;  // 0 means "none"
    store16(l4, checksum_at, checksum);
  }

  // Layer 3.
  Bytes l3;
  uint16_t ethertype = 0;
  switch (m.l3) {
    case Model::L3::none:
      l3 = l4;
      break;
    case Model::L3::arp:
      ethertype = kEthertypeArp;
      l3 = m.l3_body;
      break;
    case Model::L3::raw:
      ethertype = m.raw_ethertype;
      l3 = m.l3_body;
      break;
    case Model::L3::ipv4: {
      ethertype = kEthertypeIpv4;
      const size_t header_length = 20 + m.ipv4_options.size();
      put8(l3, 0x40 | (header_length / 4));
      put8(l3, 0);  // DSCP/ECN
      put16(l3, m.override_ip_length ? m.ip_length : header_length + l4.size());
      put16(l3, m.ipv4_id);
      put16(l3, m.ipv4_fragment_field);
      put8(l3, m.ttl);
      put8(l3, protocol);
      put16(l3, 0);  // checksum
      put_ip(l3, m.src_ip);
      put_ip(l3, m.dst_ip);
      l3.insert(l3.end(), m.ipv4_options.begin(), m.ipv4_options.end());
      uint16_t checksum = finish_checksum(sum_words(l3));
      if (m.corrupt_ipv4_checksum) checksum ^= 0x0001;
      store16(l3, 10, checksum);
      l3.insert(l3.end(), l4.begin(), l4.end());
      break;
    }
    case Model::L3::ipv6: {
      ethertype = kEthertypeIpv6;
      Bytes extensions = m.ipv6_extensions;
      // Chain the next-header fields: each extension names the one after it.
      uint8_t first = protocol;
      for (size_t i = m.ipv6_extension_types.size(); i-- > 0;) {
        extensions[m.ipv6_extension_types[i].first] = first;
        first = m.ipv6_extension_types[i].second;
      }
      put32(l3, 0x60000000);  // version, traffic class, flow label
      put16(l3, m.override_ip_length ? m.ip_length : extensions.size() + l4.size());
      put8(l3, first);
      put8(l3, m.ttl);
      put_ip(l3, m.src_ip);
      put_ip(l3, m.dst_ip);
      l3.insert(l3.end(), extensions.begin(), extensions.end());
      l3.insert(l3.end(), l4.begin(), l4.end());
      break;
    }
  }

  Bytes frame;
  put_mac(frame, m.dst_mac);
  put_mac(frame, m.src_mac);
  for (const auto& [tpid, vid] : m.vlans) {
    put16(frame, tpid);
    put16(frame, vid & 0x0fff);
  }
  put16(frame, ethertype);
  frame.insert(frame.end(), l3.begin(), l3.end());
  if (m.truncate_to < frame.size()) frame.resize(m.truncate_to);
  return frame;
}

}  // namespace cordon::testing
