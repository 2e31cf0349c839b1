// Packet views and addresses: what the engine sees of a frame. No NIC, no mbuf.
// Plain values; a PacketView borrows the frame's bytes for one process() call.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace cordon::engine {

// Which port of a pair a frame arrived on.
enum class Side : uint8_t {
  device = 0,   // from the protected device
  network = 1,  // from the hospital network toward the device
};

struct PacketView {
  const uint8_t* data = nullptr;
  uint32_t length = 0;
  Side ingress = Side::device;
};

struct MacAddress {
  std::array<uint8_t, 6> bytes{};

  // bytes[0] in bits 40..47, bytes[5] in bits 0..7. Two loads into registers and a byte
  // swap (a 6-byte memcpy into a uint64_t went through the stack and stalled the reload).
  uint64_t as_u64() const {
    uint32_t low = 0;
    uint16_t high = 0;
    std::memcpy(&low, bytes.data(), 4);
    std::memcpy(&high, bytes.data() + 4, 2);
    return __builtin_bswap64(uint64_t{low} | uint64_t{high} << 32) >> 16;
  }
  bool is_multicast() const { return (bytes[0] & 1) != 0; }  // includes broadcast
  auto operator<=>(const MacAddress&) const = default;

  static std::optional<MacAddress> parse(std::string_view text);
  std::string to_string() const;
};

// An IPv4 or IPv6 address. IPv4 lives in bytes[0..3], the rest zero, so that
// comparison and hashing never mix families.
struct IpAddress {
  std::array<uint8_t, 16> bytes{};
  uint8_t family = 0;  // 4 or 6; 0 = unset

  static IpAddress v4(uint32_t host_order) {
    IpAddress a;
    a.family = 4;
    a.bytes[0] = static_cast<uint8_t>(host_order >> 24);
    a.bytes[1] = static_cast<uint8_t>(host_order >> 16);
    a.bytes[2] = static_cast<uint8_t>(host_order >> 8);
    a.bytes[3] = static_cast<uint8_t>(host_order);
    return a;
  }
  static IpAddress v4_from_wire(const uint8_t* p) {
    IpAddress a;
    a.family = 4;
    std::memcpy(a.bytes.data(), p, 4);
    return a;
  }
  static IpAddress v6_from_wire(const uint8_t* p) {
    IpAddress a;
    a.family = 6;
    std::memcpy(a.bytes.data(), p, 16);
    return a;
  }
  uint32_t v4_host_order() const {
    return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) |
           bytes[3];
  }
  // Address with all bits past prefix_length cleared.
  IpAddress masked(unsigned prefix_length) const;
  unsigned bit_width() const { return family == 4 ? 32 : 128; }

  // Word-wise: the defaulted comparison of the byte arrays became a memcmp call.
  bool operator==(const IpAddress& o) const {
    uint64_t a[2];
    uint64_t b[2];
    std::memcpy(a, bytes.data(), 16);
    std::memcpy(b, o.bytes.data(), 16);
    return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | uint64_t(family ^ o.family)) == 0;
  }
  auto operator<=>(const IpAddress&) const = default;

  static std::optional<IpAddress> parse(std::string_view text);
  std::string to_string() const;
};

// Hash for IpAddress keys; boost::unordered_flat_map mixes the result further.
struct IpAddressHash {
  size_t operator()(const IpAddress& a) const noexcept {
    uint64_t hi = 0;
    uint64_t lo = 0;
    std::memcpy(&hi, a.bytes.data(), 8);
    std::memcpy(&lo, a.bytes.data() + 8, 8);
    return static_cast<size_t>(hi ^ (lo * 0x9e3779b97f4a7c15ULL) ^ a.family);
  }
};

struct Cidr {
  IpAddress network;  // always stored masked
  uint8_t prefix_length = 0;

  bool contains(const IpAddress& a) const {
    return a.family == network.family && a.masked(prefix_length) == network;
  }
  bool operator==(const Cidr&) const = default;
  // "10.0.0.0/24", "fe80::/64"; a bare address means a host route. Rejects host bits set.
  static std::optional<Cidr> parse(std::string_view text);
  std::string to_string() const;
};

}  // namespace cordon::engine
