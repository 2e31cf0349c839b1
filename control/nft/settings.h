// Settings of the management firewall (the nftables table `inet cordon_mgmt`) and the
// vendor access elements that open the forward path from a WireGuard peer to one device.
// Settings are part of controld's state and API: parse_settings() validates untrusted
// JSON and names the offending field by its JSON path; to_json() is its inverse.
//
// Threads: plain values, no shared state.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "control/common/result.h"

namespace cordon::control::nft {

// An IPv4 or IPv6 network with no host bits set ("10.60.0.0/24", "fd00:60::/64").
struct Cidr {
  bool ipv6 = false;
  std::array<std::uint8_t, 16> address{};  // IPv4 uses the first 4 bytes
  unsigned prefix = 0;

  // "10.60.0.5" is read as 10.60.0.5/32; host bits set is an error (a typo, usually).
  static Result<Cidr> parse(std::string_view text);
  std::string to_string() const;
  std::string address_string() const;  // the address alone: "10.60.0.5"
  std::size_t address_len() const { return ipv6 ? 16 : 4; }
  bool operator==(const Cidr&) const = default;
};

struct ManagementFirewallSettings {
  std::string interface;                // management interface: HTTPS, WireGuard UDP, ICMP
  std::string wireguard_interface;      // tunnel interface, guarded too; "" = no tunnel
  std::string external_interface;       // internet side (vendors): guarded, only WireGuard's
                                        // UDP port is open there; "" = none
  std::string vendor_egress_interface;  // where vendor traffic leaves toward the devices; "" = any
  // Where vendor traffic is source-translated (SNAT) on its way out of
  // vendor_egress_interface: the service address on the device segment, which the
  // dataplane admits for the active sessions. IPv4 literal; "" = no translation.
  std::string vendor_service_address;
  // The prefix length of the device segment the service address is on (8..30): controld
  // puts vendor_service_address/vendor_service_prefix_length on vendor_egress_interface
  // (mgmt/service_port.h), which makes the segment reachable through it. Required with
  // vendor_service_address; 0 without one.
  unsigned vendor_service_prefix_length = 0;
  std::vector<Cidr> admin_networks;  // may reach webd's HTTPS (incl. remote-management peers)
  std::uint16_t https_port = 8443;
  std::uint16_t wireguard_port = 51820;
  // The name or address vendors and management peers reach wireguard_port at from where
  // they are (the hospital's public name, a NAT address): shown to them with the port for
  // their own WireGuard configuration (wireguard_endpoint()). Not used by the firewall.
  // A DNS name or an IPv4/IPv6 literal; "" = not set (needs a wireguard_interface).
  std::string wireguard_endpoint_host;
  std::uint32_t icmp_echo_per_second = 5;  // echo requests accepted per second (burst 5)
  bool log_drops = true;                   // log dropped packets, at most 10 lines a minute

  bool operator==(const ManagementFirewallSettings&) const = default;
};

// "host:port" ("[v6]:port") that peers dial: wireguard_endpoint_host and wireguard_port;
// "" when no host is set.
std::string wireguard_endpoint(const ManagementFirewallSettings& settings);

// Validates a settings document; unknown fields are errors. Every error carries the JSON
// path of the field at fault ("/admin_networks/2").
Result<ManagementFirewallSettings> parse_settings(const boost::json::value& json);
boost::json::value to_json(const ManagementFirewallSettings& settings);

// Whether `address` (an IPv4/IPv6 literal, e.g. the peer of the admin's current HTTPS
// connection) lies in one of the admin networks, i.e. may reach webd under `settings`.
// controld refuses a settings change that would lock out the caller's own connection.
bool admits(const ManagementFirewallSettings& settings, std::string_view address);

// Checks an interface name the kernel would accept (1..15 bytes, no '/', no space).
bool valid_interface_name(std::string_view name);

// One vendor permission: packets from `tunnel_address` (the peer's WireGuard address,
// which WireGuard's cryptokey routing ties to the peer's key) to `device_address`, TCP or
// UDP destination `port`, and their replies. IPv4 only (the tunnel is IPv4).
struct VendorAccessElement {
  std::array<std::uint8_t, 4> tunnel_address{};
  std::array<std::uint8_t, 4> device_address{};
  std::uint16_t port = 0;

  static Result<VendorAccessElement> make(std::string_view tunnel, std::string_view device,
                                          std::uint16_t port);
  std::string to_string() const;  // "10.99.0.2 . 10.50.0.10 . 104"
  auto operator<=>(const VendorAccessElement&) const = default;
};

// Vendor sessions are capped; the kernel removes the element when its timeout ends.
inline constexpr std::chrono::milliseconds kMaxVendorTimeout = std::chrono::hours(8);

}  // namespace cordon::control::nft
