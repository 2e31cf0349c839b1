// controld's management plane: the host firewall (table inet cordon_mgmt) built from the
// management settings kept in the store. The table is asserted at start and after every
// settings change, then read back from the kernel and compared with what was intended;
// a periodic check re-asserts it when someone changed it behind controld's back.
//
// A settings change that would lock out the caller's own connection is refused: its origin
// address not in the new admin networks, or the port it came in on moved (https_port, for
// a caller from the web; wireguard_port, for one through a management peer's tunnel).
// Moving wireguard_port otherwise moves the tunnel's listening port with the firewall's.
//
// Remote-management peers (issue 6): WireGuard peers whose tunnel addresses count as admin
// networks, for HTTPS through the tunnel only (set mgmt_peers of the table). Kept in the
// store, added to the WireGuard interface and the table together, audited
// (management.peer.add / management.peer.remove). A peer's key and tunnel address are
// its own: not the appliance's, not another peer's, not an open vendor session's. Removing
// the peer the caller is connected through is refused (it would lock the caller out).
//
// Threads: control thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "control/common/result.h"
#include "control/link/link_backend.h"
#include "control/mgmt/service_port.h"
#include "control/nft/firewall_backend.h"
#include "control/nft/settings.h"
#include "control/store/store.h"
#include "control/wireguard/peer.h"
#include "control/wireguard/wireguard_backend.h"

namespace cordon::control::mgmt {

class ManagementPlane {
 public:
  ManagementPlane(store::Store& store, nft::FirewallBackend& firewall)
      : store_(store), firewall_(firewall) {}

  // The stored settings, or `initial` (stored then) when there are none yet; installs
  // and verifies the table. Without either, there is nothing to enforce: an error.
  Status start(const std::optional<nft::ManagementFirewallSettings>& initial);
  Result<nft::ManagementFirewallSettings> settings();
  Status change(const nft::ManagementFirewallSettings& settings, const store::Actor& actor);
  // Reads the table back: the differences from the intended table (empty when equal).
  Result<std::vector<std::string>> differences();
  // Re-installs the table when the kernel's differs. Returns whether it had to.
  Result<bool> reassert();
  bool active() const { return settings_.has_value(); }
  // WireGuard, after start(): brings the tunnel interface up through `wireguard` and adds
  // the stored management peers to it. `tunnel.tunnel_address` is the interface's address
  // with its network ("10.99.0.1/24"; peers' tunnel addresses must lie in it). The
  // settings are the one place the tunnel's port is set: the interface listens on their
  // wireguard_port (tunnel.listen_port is replaced), the port the firewall opens, and
  // follows it when a settings change moves it. tunnel.name must be the interface the
  // settings guard (their wireguard_interface), when they name one. An error with
  // tunnel_network() still empty: the tunnel is not up. An error after it: the tunnel is
  // up and a stored peer could not be added.
  Status set_wireguard(wireguard::WireGuardBackend* wireguard, wireguard::InterfaceConfig tunnel,
                       std::string appliance_public_key);
  const std::vector<wireguard::ManagementPeer>& peers() const { return peers_; }
  // Once set_wireguard succeeded: the tunnel's network ("10.99.0.0/24") and the
  // appliance's own address in it ("10.99.0.1").
  std::optional<std::string> tunnel_network() const;
  std::optional<std::string> appliance_tunnel_address() const;
  // Once set_wireguard succeeded and the settings name a wireguard_endpoint_host: what
  // vendors and management peers dial ("vpn.hospital.example:51820", nft::wireguard_endpoint).
  std::optional<std::string> appliance_endpoint() const;
  // Body: {"name", "public_key", "tunnel_address"} (wireguard::parse_management_peer).
  // The peer is recorded as added at `now_ms` (ms since the epoch) by `actor.name`.
  Result<wireguard::ManagementPeer> add_peer(const boost::json::value& body,
                                             const store::Actor& actor, int64_t now_ms);
  Status remove_peer(const std::string& name, const store::Actor& actor);

  // The service port (mgmt/service_port.h): checked now, after every settings change and
  // at every check_service_port() (controld's 1 s tick); its events go to `report`.
  void set_service_port(link::LinkBackend* backend,
                        std::function<void(const std::vector<std::string>&)> report);
  void check_service_port();

  // Where the running vendor sessions' grants come from, so a table replacement keeps
  // them and the read-back expects them.
  void set_grants(std::function<std::vector<nft::VendorGrant>()> grants) {
    grants_ = std::move(grants);
  }

 private:
  // Installs and verifies the table for `settings` and `peers`; on success they are what
  // is installed.
  Status install(const nft::ManagementFirewallSettings& settings,
                 const std::vector<wireguard::ManagementPeer>& peers);
  nft::TableSpec spec(const nft::ManagementFirewallSettings& s,
                      const std::vector<wireguard::ManagementPeer>& peers) const;
  Status add_service_prefix(const std::string& stored,
                            const std::optional<nft::ManagementFirewallSettings>& initial);
  Status load_peers();
  Status store_peers(const std::vector<wireguard::ManagementPeer>& peers);
  // Why `peer` cannot be added (an error with the field's path), or ok.
  Status check_new_peer(const wireguard::ManagementPeer& peer);
  bool is_peer_address(std::string_view address) const;

  std::optional<nft::ManagementFirewallSettings> settings_;  // what is installed
  std::vector<wireguard::ManagementPeer> peers_;             // what is installed
  // Why `s` would cut the caller's own connection (see the header comment), or ok.
  Status check_caller_keeps_access(const nft::ManagementFirewallSettings& s,
                                   const store::Actor& actor) const;
  // Moves the tunnel's listening port (nothing when it is already `port`).
  Status move_tunnel_port(std::uint16_t port);

  wireguard::WireGuardBackend* wireguard_ = nullptr;
  wireguard::InterfaceConfig tunnel_;  // as the interface runs (set_wireguard)
  nft::Cidr tunnel_network_;           // the WireGuard interface's network
  nft::Cidr tunnel_self_;              // the appliance's own tunnel address (/32)
  std::string appliance_key_;
  std::function<std::vector<nft::VendorGrant>()> grants_;
  std::optional<ServicePort> service_port_;
  std::function<void(const std::vector<std::string>&)> report_service_port_;
  store::Store& store_;
  nft::FirewallBackend& firewall_;
};

}  // namespace cordon::control::mgmt
