// Fuzz target for decode(): arbitrary bytes as an Ethernet frame. Besides the sanitizers'
// checks (no read past `length`), the fields the engine trusts after a clean decode must
// point inside the frame; a violation traps so the fuzzer keeps the input.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "dataplane/engine/decode.h"

namespace {

using cordon::engine::DecodedPacket;
using cordon::engine::DropReason;
using cordon::engine::L3Kind;

void require(bool condition) {
  if (!condition) __builtin_trap();
}

void check_invariants(const DecodedPacket& p, DropReason reason, uint32_t length) {
  require(p.vlan_count <= 2);
  if (reason != DropReason::none && reason != DropReason::ip_fragment &&
      reason != DropReason::unsupported_ip_protocol) {
    return;  // other fields are unspecified on a drop
  }
  require(p.l3_offset >= 14 && p.l3_offset <= length);
  require(p.l3_offset == 14 + 4u * p.vlan_count);
  if (reason == DropReason::none && p.l3 == L3Kind::arp) {
    require(p.l3_offset + 28u <= length);
    require(p.arp.operation == 1 || p.arp.operation == 2);
    return;
  }
  require(p.l3 == L3Kind::ipv4 || p.l3 == L3Kind::ipv6);
  const uint8_t family = p.l3 == L3Kind::ipv4 ? 4 : 6;
  require(p.src_ip.family == family && p.dst_ip.family == family);
  require(p.l4_offset > p.l3_offset && p.l4_offset <= length);
  require(p.is_fragment == (reason == DropReason::ip_fragment));
  if (reason != DropReason::none) return;
  require(p.payload_offset >= p.l4_offset);
  require(uint32_t{p.payload_offset} + p.payload_length <= length);
  if (p.icmp_is_error) {
    require(p.quoted.src.family == family && p.quoted.dst.family == family);
  }
  require(!(p.icmp_is_echo_request && p.icmp_is_echo_reply));
  if (family == 4) {
    // The source checks let none of these through.
    const uint32_t src = p.src_ip.v4_host_order();
    require(src != 0 && src != 0xffffffff && (src >> 28) != 0xe && (src >> 24) != 127);
  } else {
    require(p.src_ip.bytes[0] != 0xff);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > UINT16_MAX) return 0;  // no Ethernet frame is longer; keeps lengths in uint32_t
  // An exact-size copy so that ASan sees any read past the end, even when the caller's
  // buffer is larger than `size`.
  std::vector<uint8_t> frame(data, data + size);
  const auto length = static_cast<uint32_t>(size);

  DecodedPacket packet;
  const DropReason reason = cordon::engine::decode(frame.data(), length, packet);
  check_invariants(packet, reason, length);

  // Decoding into a used DecodedPacket gives the same answer: no state leaks between frames.
  DecodedPacket reused;
  reused.vlan_count = 2;
  reused.l4_offset = reused.payload_offset = reused.payload_length = 0xffff;
  reused.tcp_flags = 0x12;
  reused.icmp_is_error = reused.icmpv6_is_neighbor_discovery = true;
  reused.quoted.src_port = reused.quoted.dst_port = 7;
  require(cordon::engine::decode(frame.data(), length, reused) == reason);
  require(reused.l4_offset == packet.l4_offset && reused.payload_offset == packet.payload_offset &&
          reused.payload_length == packet.payload_length &&
          reused.vlan_count == packet.vlan_count && reused.tcp_flags == packet.tcp_flags &&
          reused.icmp_is_error == packet.icmp_is_error &&
          reused.icmpv6_is_neighbor_discovery == packet.icmpv6_is_neighbor_discovery &&
          reused.quoted.src_port == packet.quoted.src_port &&
          reused.quoted.dst_port == packet.quoted.dst_port);
  return 0;
}
