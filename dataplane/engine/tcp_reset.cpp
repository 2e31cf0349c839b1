#include "dataplane/engine/tcp_reset.h"

#include <cstring>

namespace cordon::engine {
namespace {

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}

// One's-complement sum of 16-bit words, folded at the end.
uint32_t sum16(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n % 2 != 0) sum += static_cast<uint32_t>(p[n - 1] << 8);
  return sum;
}
uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

}  // namespace

namespace {

size_t build(const uint8_t* frame, const DecodedPacket& d, uint8_t* out, size_t out_capacity,
             bool back_to_sender) noexcept {
  if (d.protocol != ip_protocol::tcp || (d.tcp_flags & tcp_flag::rst) != 0) return 0;
  if (d.l3 != L3Kind::ipv4 && d.l3 != L3Kind::ipv6) return 0;
  const bool v6 = d.l3 == L3Kind::ipv6;
  const size_t ip_length = v6 ? 40 : 20;
  const size_t l2_length = d.l3_offset;  // Ethernet + VLAN tags, copied as they were
  const size_t total = l2_length + ip_length + 20;
  if (total > out_capacity || l2_length > 14 + 8) return 0;

  // Layer 2: the original header, with the MAC addresses swapped when going back.
  std::memcpy(out, frame, l2_length);
  if (back_to_sender) {
    std::memcpy(out, d.src_mac.bytes.data(), 6);
    std::memcpy(out + 6, d.dst_mac.bytes.data(), 6);
  }
  const IpAddress& src = back_to_sender ? d.dst_ip : d.src_ip;
  const IpAddress& dst = back_to_sender ? d.src_ip : d.dst_ip;

  uint8_t* ip = out + l2_length;
  uint8_t* tcp = ip + ip_length;
  std::memset(ip, 0, ip_length + 20);
  if (v6) {
    ip[0] = 0x60;
    put16(ip + 4, 20);
    ip[6] = ip_protocol::tcp;
    ip[7] = 64;
    std::memcpy(ip + 8, src.bytes.data(), 16);
    std::memcpy(ip + 24, dst.bytes.data(), 16);
  } else {
    ip[0] = 0x45;
    put16(ip + 2, 40);
    ip[6] = 0x40;  // don't fragment
    ip[8] = 64;
    ip[9] = ip_protocol::tcp;
    std::memcpy(ip + 12, src.bytes.data(), 4);
    std::memcpy(ip + 16, dst.bytes.data(), 4);
    put16(ip + 10, fold(sum16(ip, 20)));
  }

  put16(tcp, back_to_sender ? d.dst_port : d.src_port);
  put16(tcp + 2, back_to_sender ? d.src_port : d.dst_port);
  tcp[12] = 5 << 4;
  if (back_to_sender) {
    const bool had_ack = (d.tcp_flags & tcp_flag::ack) != 0;
    // Sequence space the refused segment used: its payload plus one for SYN and for FIN.
    const uint32_t consumed = d.payload_length + ((d.tcp_flags & tcp_flag::syn) ? 1u : 0u) +
                              ((d.tcp_flags & tcp_flag::fin) ? 1u : 0u);
    put32(tcp + 4, had_ack ? d.tcp_ack : 0);
    put32(tcp + 8, had_ack ? 0 : d.tcp_seq + consumed);
    tcp[13] = had_ack ? tcp_flag::rst : static_cast<uint8_t>(tcp_flag::rst | tcp_flag::ack);
  } else {
    put32(tcp + 4, d.tcp_seq);
    tcp[13] = tcp_flag::rst;
  }

  // Checksum over the pseudo-header and the 20-byte TCP header.
  uint32_t sum = 0;
  if (v6) {
    sum = sum16(ip + 8, 32);
    sum += 20 + ip_protocol::tcp;
  } else {
    sum = sum16(ip + 12, 8);
    sum += 20 + ip_protocol::tcp;
  }
  put16(tcp + 16, fold(sum16(tcp, 20, sum)));
  return total;
}

}  // namespace

size_t build_tcp_reset(const uint8_t* frame, const DecodedPacket& decoded, uint8_t* out,
                       size_t out_capacity) noexcept {
  return build(frame, decoded, out, out_capacity, true);
}

size_t build_tcp_reset_onward(const uint8_t* frame, const DecodedPacket& decoded, uint8_t* out,
                              size_t out_capacity) noexcept {
  return build(frame, decoded, out, out_capacity, false);
}

}  // namespace cordon::engine
