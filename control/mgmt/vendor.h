// Time-boxed vendor access (issue 6): an operator lets one vendor public key reach one
// device on a list of ports for a bounded time. controld adds the WireGuard peer with a
// tunnel address of its own, and nftables set elements {tunnel address . device address
// . port} with the session's timeout: the forward path admits exactly those. At expiry
// or revoke the elements are gone (the forward chain checks every packet against the set,
// so open connections are cut at their next packet; a vendor TCP segment is answered with
// a reset) and the peer is removed kResetGraceMs later: until then it reaches nothing, but
// the vendor's next segment still arrives and gets its reset, so the vendor's client fails
// at once instead of timing out. Every step is audited; sessions survive a controld
// restart (their peers and elements are restored; peers of no session are removed).
//
// The dataplane admits the sessions' traffic on the device segment (from the service
// address the firewall translates it to): push_to_dataplane() sends it the active
// sessions. controld calls it after every change and once a second, so a restarted
// dataplane (which keeps no sessions) gets them back within a second.
//
// Threads: control thread only.
#pragma once

#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "control/common/result.h"
#include "control/dataplane_link/link.h"
#include "control/nft/firewall_backend.h"
#include "control/policy/lifecycle.h"
#include "control/store/store.h"
#include "control/wireguard/peer.h"
#include "control/wireguard/wireguard_backend.h"

namespace cordon::control::mgmt {

class VendorAccess {
 public:
  // `tunnel_prefix`: the first three octets of the tunnel's /24, e.g. "10.99.0"; the
  // appliance is .1, sessions get .2 to .254.
  VendorAccess(store::Store& store, wireguard::WireGuardBackend& wireguard,
               nft::FirewallBackend& firewall, policy::PolicyService& policy,
               std::string tunnel_prefix)
      : store_(store),
        wireguard_(wireguard),
        firewall_(firewall),
        policy_(policy),
        tunnel_prefix_(std::move(tunnel_prefix)) {}

  // Body: {"public_key", "device", "ports": [..], "duration_seconds"}.
  Result<store::VendorSession> create(const boost::json::value& body, const store::Actor& actor,
                                      int64_t now_ms);
  Status revoke(int64_t id, const store::Actor& actor);
  Result<std::vector<store::VendorSession>> active(int64_t now_ms);
  // Ends sessions past their expiry (their elements at once, their peers after the grace),
  // and removes the peers of sessions ended more than kResetGraceMs ago. Returns how many
  // sessions it ended.
  Result<int> expire(int64_t now_ms);
  // At start: the peers and elements of sessions still running, re-added; WireGuard peers
  // that are neither a running session's nor a management peer's, removed.
  Status restore(int64_t now_ms);
  // The nftables grants of the running sessions, with their time left (for table
  // replacements and read-back).
  std::vector<nft::VendorGrant> grants(int64_t now_ms);

  // The remote-management peers (ManagementPlane::peers): their keys and tunnel addresses
  // are never given to a vendor session.
  void set_management_peers(std::function<std::vector<wireguard::ManagementPeer>()> peers) {
    management_peers_ = std::move(peers);
  }

  // Where the sessions go on the device segment: the dataplane, and the service address
  // (management settings' vendor_service_address; "" = no vendor path through it).
  void set_dataplane(dataplane_link::DataplaneLink* link,
                     std::function<std::string()> service_address) {
    dataplane_ = link;
    service_address_ = std::move(service_address);
  }
  // The dataplane's session list (a JSON array, dataplane/dpdk/vendor_sessions.h): the
  // active sessions with the service address; empty without one.
  Result<std::string> dataplane_sessions(int64_t now_ms);
  // Sends dataplane_sessions() to the dataplane (ok when none is set).
  Status push_to_dataplane(int64_t now_ms);

  // How long a peer outlives its session (see the top of this file).
  static constexpr int64_t kResetGraceMs = 30'000;

 private:
  Status open(const store::VendorSession& s, int64_t now_ms);
  // Removes the session's elements; its peer goes at `now_ms` + kResetGraceMs.
  Status close(const store::VendorSession& s, int64_t now_ms);
  // Removes elements and peer at once (a session that never opened fully).
  Status close_now(const store::VendorSession& s);
  Status remove_retired_peers(int64_t now_ms);
  bool management_key(const std::string& public_key) const;

  store::Store& store_;
  wireguard::WireGuardBackend& wireguard_;
  nft::FirewallBackend& firewall_;
  policy::PolicyService& policy_;
  std::string tunnel_prefix_;
  dataplane_link::DataplaneLink* dataplane_ = nullptr;
  std::function<std::string()> service_address_;
  std::function<std::vector<wireguard::ManagementPeer>()> management_peers_;
  std::map<std::string, int64_t> retiring_;  // public key -> when its peer is removed
};

}  // namespace cordon::control::mgmt
