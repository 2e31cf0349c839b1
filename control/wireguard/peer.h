// WireGuard peers as controld's API takes them, validated with JSON paths.
//
// Threads: plain values, no shared state.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "control/common/result.h"
#include "control/nft/settings.h"

namespace cordon::control::wireguard {

struct PeerConfig {
  std::string public_key;                        // base64, 44 characters
  std::vector<nft::Cidr> allowed_ips;            // at least one; the peer's tunnel address(es)
  std::optional<std::string> endpoint;           // "192.0.2.50:51820" / "[2001:db8::5]:51820"
  std::chrono::seconds persistent_keepalive{0};  // 0 = off
  bool operator==(const PeerConfig&) const = default;
};

// {"public_key": "...", "allowed_ips": ["10.99.0.2/32"], "endpoint": "192.0.2.50:51820",
//  "persistent_keepalive": 25}; unknown fields are errors. Paths are relative to `json`,
// prefixed with `base` ("/peers/0" gives "/peers/0/allowed_ips/1").
Result<PeerConfig> parse_peer(const boost::json::value& json, const std::string& base = "");
boost::json::value to_json(const PeerConfig& peer);

// A session length in whole seconds, 1 .. cap (vendor sessions: at most 8 h).
inline constexpr std::chrono::seconds kMaxVendorSession = std::chrono::hours(8);
Result<std::chrono::seconds> parse_duration(const boost::json::value& json, const std::string& path,
                                            std::chrono::seconds cap = kMaxVendorSession);

// A remote-management peer (issue 6): an admin's WireGuard key and the tunnel address it
// uses; that address may reach webd's HTTPS through the tunnel (and nothing else).
// `name` (1..32 of [A-Za-z0-9._-]) identifies the peer in the API. The tunnel address is
// one IPv4 host ("10.99.0.200" or "10.99.0.200/32"); whether it lies in the tunnel's
// network is checked by controld, which knows the network. When and by whom the peer was
// added is set by controld, never by the client; peers stored by a build before these
// were recorded have neither.
struct ManagementPeer {
  std::string name;
  std::string public_key;
  nft::Cidr tunnel_address;             // IPv4, prefix 32
  std::optional<std::string> added_at;  // RFC 3339 UTC ("2026-11-28T11:44:28.123Z")
  std::optional<std::string> added_by;  // the actor's name, as the audit log has it
  bool operator==(const ManagementPeer&) const = default;
};
inline constexpr std::size_t kMaxManagementPeers = 64;
// The API's input: {"name": "noc-laptop", "public_key": "...", "tunnel_address":
// "10.99.0.200"}; unknown fields are errors, and so are added_at/added_by (server-set).
// The result has neither added_at nor added_by.
Result<ManagementPeer> parse_management_peer(const boost::json::value& json,
                                             const std::string& base = "");
// The stored form (store setting "management_peers"): the API's fields plus optional
// "added_at" and "added_by" strings (absent or null in peers stored by earlier builds).
Result<ManagementPeer> parse_stored_management_peer(const boost::json::value& json,
                                                    const std::string& base = "");
// The stored form and the API's output: added_at/added_by only when known.
boost::json::value to_json(const ManagementPeer& peer);

// "host:port" with a literal IPv4 address or a bracketed IPv6 address (no DNS).
bool valid_endpoint(const std::string& endpoint);

}  // namespace cordon::control::wireguard
