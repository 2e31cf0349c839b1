// The kernel side of a network interface that controld configures itself: the
// dataplane's service port, where vendor traffic leaves toward the devices
// (docs/management-plane.md, "Vendor path"). An OS side effect behind an interface with
// a fake (DESIGN §5): RtnetlinkBackend (rtnetlink through libmnl, the interface's sysctl
// files, the ethtool ioctl) and FakeLinkBackend for tests.
//
// Threads: one caller at a time (controld's control thread); backends keep no state
// between calls other than the fake's.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "control/common/result.h"

namespace cordon::control::link {

// An IPv4 address of an interface with the prefix length of its network
// ("10.50.0.250/24": host bits set, unlike nft::Cidr).
struct InterfaceAddress {
  std::array<std::uint8_t, 4> address{};
  unsigned prefix_length = 32;

  std::string to_string() const;
  bool operator==(const InterfaceAddress&) const = default;
};

struct LinkState {
  bool up = false;                     // administratively up (IFF_UP)
  std::vector<InterfaceAddress> ipv4;  // its IPv4 addresses
  bool arp_ignore = false;             // net.ipv4.conf.IF.arp_ignore is 1
  bool ipv6_disabled = false;          // net.ipv6.conf.IF.disable_ipv6 is 1 (or no IPv6)
  bool tx_checksum_offload = false;    // ethtool tx-checksumming is on
  bool operator==(const LinkState&) const = default;
};

class LinkBackend {
 public:
  virtual ~LinkBackend() = default;
  // The interface's state; error "not_found" when there is no interface of that name.
  virtual Result<LinkState> read(const std::string& name) = 0;
  virtual Status set_up(const std::string& name) = 0;
  virtual Status add_address(const std::string& name, const InterfaceAddress& address) = 0;
  virtual Status remove_address(const std::string& name, const InterfaceAddress& address) = 0;
  // arp_ignore 1 (ARP answered only for the interface's own addresses, not for the
  // appliance's others), IPv6 off (no autoconfiguration or neighbour discovery from the
  // appliance onto the device segment), TX checksum offload off (the frames go to a
  // userspace port, which forwards them as they are: a partial checksum would reach the
  // device unfinished).
  virtual Status isolate(const std::string& name) = 0;
};

// The real one: rtnetlink (libmnl) for the link and its addresses, /proc/sys for the
// sysctls, SIOCETHTOOL for the checksum offload. Acts in the caller's network namespace.
class RtnetlinkBackend final : public LinkBackend {
 public:
  Result<LinkState> read(const std::string& name) override;
  Status set_up(const std::string& name) override;
  Status add_address(const std::string& name, const InterfaceAddress& address) override;
  Status remove_address(const std::string& name, const InterfaceAddress& address) override;
  Status isolate(const std::string& name) override;
};

// In memory: `links` are the interfaces that exist; every call is recorded in `calls`
// ("add_address svc0 10.50.0.250/24"); `fail` makes the next call of that name fail.
class FakeLinkBackend final : public LinkBackend {
 public:
  Result<LinkState> read(const std::string& name) override;
  Status set_up(const std::string& name) override;
  Status add_address(const std::string& name, const InterfaceAddress& address) override;
  Status remove_address(const std::string& name, const InterfaceAddress& address) override;
  Status isolate(const std::string& name) override;

  std::map<std::string, LinkState> links;
  std::vector<std::string> calls;
  std::string fail;  // e.g. "add_address": that call fails once with error "io"

 private:
  Status call(const std::string& what, const std::string& name, const std::string& detail = "");
};

}  // namespace cordon::control::link
