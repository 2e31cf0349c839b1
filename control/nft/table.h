// What the management table should hold (TableSpec) and what it holds, normalised
// (TableDescription), so that intended and kernel state compare line by line.
//
// The table `inet cordon_mgmt`:
//   set admin_v4, admin_v6   interval sets of the admin networks
//   set mgmt_peers           (with a tunnel) tunnel addresses of remote-management peers:
//                            HTTPS through the tunnel only
//   set vendor_access        ipv4_addr . ipv4_addr . inet_service, flags timeout:
//                            {vendor tunnel address . device address . port}
//   chain input    hook input, policy drop; guards the management and tunnel interfaces,
//                  accepts every other interface untouched
//   chain forward  hook forward, policy accept; traffic from/to the tunnel interface
//                  passes only when it matches a vendor_access element, else dropped
//                  (an established vendor TCP connection gets a reset toward the vendor)
// docs/management-plane.md describes every rule.
//
// Threads: plain values and pure functions, no shared state.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "control/nft/settings.h"

namespace cordon::control::nft {

inline constexpr const char* kTableName = "cordon_mgmt";
inline constexpr const char* kAdminSetV4 = "admin_v4";
inline constexpr const char* kAdminSetV6 = "admin_v6";
inline constexpr const char* kVendorSet = "vendor_access";
inline constexpr const char* kManagementPeerSet = "mgmt_peers";
inline constexpr std::size_t kMaxManagementPeerAddresses = 64;
inline constexpr std::size_t kMaxVendorElements = 1024;

struct VendorGrant {
  VendorAccessElement element;
  std::chrono::milliseconds timeout{0};  // time left; 1 ms .. kMaxVendorTimeout
  bool operator==(const VendorGrant&) const = default;
};

// The whole desired table: replacing the table also rewrites the vendor elements, so the
// caller passes the sessions still active with their time left.
struct TableSpec {
  ManagementFirewallSettings settings;
  std::vector<VendorGrant> vendor_access;
  // Tunnel addresses (IPv4 /32) of remote-management peers: they reach HTTPS when they
  // come in on the tunnel interface (WireGuard ties each to its peer's key), nowhere else.
  std::vector<Cidr> management_peers;
};

// The table as libnftnl renders it, in a stable order:
//   "table inet cordon_mgmt flags 0x0"
//   "chain input type filter hook 1 prio 0 policy drop"
//   "set admin_v4 key_type 0x7 key_len 4 flags 0x4"
//   "element admin_v4 0a3c0000"  /  "element admin_v4 0a3c0100 interval-end"
//   "rule input 3 \"https from admin networks (IPv4)\": [ meta load nfproto => reg 1 ] ..."
// Counters are rendered without their values. Vendor elements are kept apart with the
// time they have left, since that changes by itself.
struct VendorEntry {
  VendorAccessElement element;
  std::chrono::milliseconds remaining{0};  // 0 = no timeout
};
struct TableDescription {
  bool present = false;
  std::vector<std::string> lines;
  std::vector<VendorEntry> vendor_access;  // sorted by element
};

// Rejects a spec that could not be installed (element count, timeouts); changes nothing.
Status validate(const TableSpec& spec);

// The description of `spec`, built through the same libnftnl objects that are sent to
// the kernel (no kernel needed).
TableDescription describe_intended(const TableSpec& spec);

// Differences between intended and actual, one line each ("missing: ...",
// "unexpected: ..."); empty when they match. Vendor elements compare by key; time left
// is not compared (it counts down) beyond "not longer than intended", within
// kVendorTimeLeftSlack.
// How much longer than intended the kernel may keep a vendor element. An element's
// timeout is its session's time left when controld computed it; the kernel starts
// counting when the commit reaches it (milliseconds later) and rounds to whole jiffies, so
// right after an insert it shows a little more time left than the session has. Far below
// the 1 s resolution of a session's duration.
inline constexpr std::chrono::milliseconds kVendorTimeLeftSlack{500};
std::vector<std::string> compare(const TableDescription& intended, const TableDescription& actual);

}  // namespace cordon::control::nft
