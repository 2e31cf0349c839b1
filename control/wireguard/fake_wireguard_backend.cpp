#include "control/wireguard/keys.h"
#include "control/wireguard/wireguard_backend.h"

namespace cordon::control::wireguard {

Status FakeWireGuardBackend::take_failure() {
  if (!fail_next) return ok();
  Error e = *fail_next;
  fail_next.reset();
  return e;
}

Status FakeWireGuardBackend::ensure_interface(const InterfaceConfig& c) {
  if (auto s = take_failure(); !s) return s;
  if (!nft::valid_interface_name(c.name)) {
    return Error{"invalid", "\"" + c.name + "\" is not a valid interface name", "/name"};
  }
  if (c.listen_port == 0) return Error{"invalid", "listen port must be 1..65535", "/listen_port"};
  if (!valid_interface_address(c.tunnel_address)) {
    return Error{"invalid", "\"" + c.tunnel_address + "\" is not an address/prefix",
                 "/tunnel_address"};
  }
  if (c.private_key_file.empty()) return Error{"invalid", "no private key file", ""};
  interface = c;
  return ok();
}

Status FakeWireGuardBackend::set_peer(const PeerConfig& p) {
  if (auto s = take_failure(); !s) return s;
  if (!interface) return Error{"not_found", "no WireGuard interface (ensure_interface first)", ""};
  if (!valid_public_key(p.public_key)) return Error{"invalid", "bad public key", "/public_key"};
  PeerStatus& st = peers_[p.public_key];
  st.public_key = p.public_key;
  st.allowed_ips.clear();
  for (const auto& c : p.allowed_ips) st.allowed_ips.push_back(c.to_string());
  if (p.endpoint) st.endpoint = *p.endpoint;
  st.persistent_keepalive = p.persistent_keepalive;
  return ok();
}

Status FakeWireGuardBackend::remove_peer(const std::string& public_key) {
  if (auto s = take_failure(); !s) return s;
  if (!interface) return Error{"not_found", "no WireGuard interface (ensure_interface first)", ""};
  peers_.erase(public_key);
  return ok();
}

Result<std::vector<PeerStatus>> FakeWireGuardBackend::list_peers() {
  if (auto s = take_failure(); !s) return s.error();
  if (!interface) return Error{"not_found", "no WireGuard interface (ensure_interface first)", ""};
  std::vector<PeerStatus> out;
  for (const auto& [key, st] : peers_) out.push_back(st);
  return out;
}

Status FakeWireGuardBackend::remove_interface() {
  if (auto s = take_failure(); !s) return s;
  interface.reset();
  peers_.clear();
  return ok();
}

void FakeWireGuardBackend::handshake(const std::string& public_key,
                                     std::chrono::system_clock::time_point when) {
  if (auto it = peers_.find(public_key); it != peers_.end()) it->second.latest_handshake = when;
}

}  // namespace cordon::control::wireguard
