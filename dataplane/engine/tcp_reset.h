// Builds the TCP reset that answers a refused TCP segment (Action::drop_and_reset).
// Pure function of the refused frame; any thread; no allocation.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dataplane/engine/decode.h"

namespace cordon::engine {

// Largest frame build_tcp_reset writes: Ethernet + 2 VLAN tags + IPv6 + TCP.
inline constexpr size_t kTcpResetMaxLength = 14 + 8 + 40 + 20;

// Writes into `out` a frame addressed back to the sender of `frame` (MACs, addresses and
// ports swapped, VLAN tags kept), with RST set and sequence numbers the sender accepts
// (RFC 9293 §3.10.7.1: seq = the segment's ACK if it had one, else 0 with RST|ACK
// acknowledging everything it sent). Returns the frame length, or 0 when `decoded` is
// not a TCP segment or is itself a reset (never answer a reset).
size_t build_tcp_reset(const uint8_t* frame, const DecodedPacket& decoded, uint8_t* out,
                       size_t out_capacity) noexcept;

// The reset that ends the connection at the other end (Action::drop_and_reset_both): same
// addresses and ports as `frame`, as if its sender reset the connection, at the sequence
// number the receiver expects next (the refused segment's own, since it never arrived).
size_t build_tcp_reset_onward(const uint8_t* frame, const DecodedPacket& decoded, uint8_t* out,
                              size_t out_capacity) noexcept;

}  // namespace cordon::engine
