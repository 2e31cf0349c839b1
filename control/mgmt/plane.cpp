#include "control/mgmt/plane.h"

#include <algorithm>
#include <boost/json.hpp>

namespace cordon::control::mgmt {
namespace json = boost::json;
namespace {
constexpr const char* kSettingsKey = "management";
constexpr const char* kPeersKey = "management_peers";

// Whether `host` lies in `net` (same family).
bool contains(const nft::Cidr& net, const nft::Cidr& host) {
  if (net.ipv6 != host.ipv6) return false;
  for (unsigned bit = 0; bit < net.prefix; ++bit) {
    const unsigned mask = 0x80u >> (bit % 8);
    if ((net.address[bit / 8] & mask) != (host.address[bit / 8] & mask)) return false;
  }
  return true;
}

std::string serialize(const std::vector<wireguard::ManagementPeer>& peers) {
  json::array out;
  for (const wireguard::ManagementPeer& p : peers) out.push_back(wireguard::to_json(p));
  return json::serialize(out);
}

}  // namespace

nft::TableSpec ManagementPlane::spec(const nft::ManagementFirewallSettings& s,
                                     const std::vector<wireguard::ManagementPeer>& peers) const {
  nft::TableSpec t{s, grants_ ? grants_() : std::vector<nft::VendorGrant>{}, {}};
  for (const wireguard::ManagementPeer& p : peers) t.management_peers.push_back(p.tunnel_address);
  return t;
}

// Settings stored by a build before vendor_service_prefix_length have a service address
// without it: the start-up file's prefix is taken when it names the same address (the
// lab's management.json and a product's seed file do), so such a store keeps working.
Status ManagementPlane::add_service_prefix(
    const std::string& stored, const std::optional<nft::ManagementFirewallSettings>& initial) {
  json::error_code ec;
  json::value v = json::parse(stored, ec);
  if (ec || !v.is_object()) return ok();  // settings() reports it
  json::object& o = v.as_object();
  const json::value* address = o.if_contains("vendor_service_address");
  if (address == nullptr || o.contains("vendor_service_prefix_length") || !initial ||
      !address->is_string() || address->as_string() != initial->vendor_service_address) {
    return ok();
  }
  o["vendor_service_prefix_length"] = initial->vendor_service_prefix_length;
  return store_.set_setting(kSettingsKey, json::serialize(o));
}

Result<nft::ManagementFirewallSettings> ManagementPlane::settings() {
  if (settings_) return *settings_;
  Result<std::optional<std::string>> stored = store_.setting(kSettingsKey);
  if (!stored) return stored.error();
  if (!stored.value()) return Error{"not_found", "no management settings"};
  json::error_code ec;
  const json::value v = json::parse(*stored.value(), ec);
  if (ec) return Error{"io", "stored management settings are unreadable"};
  return nft::parse_settings(v);
}

Status ManagementPlane::load_peers() {
  Result<std::optional<std::string>> stored = store_.setting(kPeersKey);
  if (!stored) return stored.error();
  peers_.clear();
  if (!stored.value()) return ok();
  json::error_code ec;
  const json::value v = json::parse(*stored.value(), ec);
  if (ec || !v.is_array()) return Error{"io", "stored management peers are unreadable"};
  for (size_t i = 0; i < v.as_array().size(); ++i) {
    Result<wireguard::ManagementPeer> p =
        wireguard::parse_stored_management_peer(v.as_array()[i], "/" + std::to_string(i));
    if (!p) return p.error().context("stored management peers");
    peers_.push_back(p.value());
  }
  return ok();
}

Status ManagementPlane::store_peers(const std::vector<wireguard::ManagementPeer>& peers) {
  return store_.set_setting(kPeersKey, serialize(peers));
}

Status ManagementPlane::install(const nft::ManagementFirewallSettings& s,
                                const std::vector<wireguard::ManagementPeer>& peers) {
  const nft::TableSpec wanted = spec(s, peers);
  if (Status st = firewall_.apply_table(wanted); !st)
    return st.error().context("installing the management firewall");
  if (Status st = nft::verify(firewall_, wanted); !st)
    return st.error().context("reading the management firewall back");
  settings_ = s;
  peers_ = peers;
  return ok();
}

Status ManagementPlane::start(const std::optional<nft::ManagementFirewallSettings>& initial) {
  Result<std::optional<std::string>> stored = store_.setting(kSettingsKey);
  if (!stored) return stored.error();
  if (!stored.value()) {
    if (!initial) return Error{"not_found", "no management settings stored and none given"};
    if (Status st = store_.set_setting(kSettingsKey, json::serialize(nft::to_json(*initial))); !st)
      return st;
  } else if (Status st = add_service_prefix(*stored.value(), initial); !st) {
    return st;
  }
  Result<nft::ManagementFirewallSettings> s = settings();
  if (!s) return s.error();
  if (Status st = load_peers(); !st) return st;
  return install(s.value(), peers_);
}

bool ManagementPlane::is_peer_address(std::string_view address) const {
  return std::any_of(peers_.begin(), peers_.end(), [&](const wireguard::ManagementPeer& p) {
    return p.tunnel_address.address_string() == address;
  });
}

Status ManagementPlane::check_caller_keeps_access(const nft::ManagementFirewallSettings& s,
                                                  const store::Actor& actor) const {
  // Origin "unix" is local. A management peer keeps its access as long as the tunnel does.
  const bool local = actor.origin == "unix" || actor.origin == "local";
  if (local) return ok();
  const bool via_peer = !s.wireguard_interface.empty() && is_peer_address(actor.origin);
  if (!nft::admits(s, actor.origin) && !via_peer) {
    return Error{"conflict",
                 "refused: your own address " + actor.origin +
                     " is not in the new admin networks, so the change would lock you out",
                 "/admin_networks"};
  }
  // A web caller came in on the HTTPS port the firewall opens now. webd follows the
  // setting by starting again on the new port, which would end this caller's session
  // half-way through the change it is making, so only the appliance's console moves it.
  if (settings_ && s.https_port != settings_->https_port) {
    return Error{"conflict",
                 "refused: you are connected to the web UI on port " +
                     std::to_string(settings_->https_port) +
                     ", which moving https_port closes; change it on the appliance (cordonctl "
                     "settings management set): the web UI follows to the new port",
                 "/https_port"};
  }
  // A peer's own WireGuard configuration dials the current port.
  if (settings_ && is_peer_address(actor.origin) && s.wireguard_port != settings_->wireguard_port) {
    return Error{"conflict",
                 "refused: you are connected through a management peer's tunnel, which dials "
                 "port " +
                     std::to_string(settings_->wireguard_port) +
                     ", so moving wireguard_port would lock you out",
                 "/wireguard_port"};
  }
  return ok();
}

Status ManagementPlane::move_tunnel_port(std::uint16_t port) {
  if (!wireguard_ || tunnel_.listen_port == port) return ok();
  wireguard::InterfaceConfig moved = tunnel_;
  moved.listen_port = port;
  if (Status st = wireguard_->ensure_interface(moved); !st)
    return st.error().context("moving the WireGuard port to " + std::to_string(port));
  tunnel_ = moved;
  return ok();
}

Status ManagementPlane::change(const nft::ManagementFirewallSettings& s,
                               const store::Actor& actor) {
  if (!peers_.empty() && s.wireguard_interface.empty()) {
    return Error{"invalid",
                 "management peers reach the appliance through the tunnel: remove them before "
                 "removing the wireguard_interface",
                 "/wireguard_interface"};
  }
  if (wireguard_ && !s.wireguard_interface.empty() && s.wireguard_interface != tunnel_.name) {
    return Error{"conflict",
                 "the tunnel interface is " + tunnel_.name +
                     " (controld's --wireguard-interface): wireguard_interface must name it, "
                     "or be empty to close the tunnel's port",
                 "/wireguard_interface"};
  }
  if (Status st = check_caller_keeps_access(s, actor); !st) {
    (void)store_.audit({actor, "settings.management", "management",
                        "refused: would lock out " + actor.origin, "", "", ""});
    return st;
  }
  Result<nft::ManagementFirewallSettings> before = settings();
  const std::string before_text = before ? json::serialize(nft::to_json(before.value())) : "";
  const std::string after_text = json::serialize(nft::to_json(s));
  const std::uint16_t port_before = tunnel_.listen_port;
  // Put the previous table and port back: a failed change changes nothing.
  auto undo = [&] {
    if (before) (void)install(before.value(), peers_);
    (void)move_tunnel_port(port_before);
  };
  if (Status st = move_tunnel_port(s.wireguard_port); !st) return st;
  if (Status st = install(s, peers_); !st) {
    undo();
    return st;
  }
  if (Status st = store_.set_setting(kSettingsKey, after_text); !st) {
    undo();
    return st;
  }
  Result<int64_t> a =
      store_.audit({actor, "settings.management", "management", "ok",
                    store::sha256_hex(before_text), store::sha256_hex(after_text), after_text});
  if (!a) return a.error();
  check_service_port();
  return ok();
}

void ManagementPlane::set_service_port(
    link::LinkBackend* backend, std::function<void(const std::vector<std::string>&)> report) {
  service_port_.emplace(*backend);
  report_service_port_ = std::move(report);
  check_service_port();
}

void ManagementPlane::check_service_port() {
  if (!service_port_ || !settings_) return;
  std::vector<std::string> events = service_port_->check(*settings_);
  if (!events.empty() && report_service_port_) report_service_port_(events);
}

Status ManagementPlane::set_wireguard(wireguard::WireGuardBackend* wireguard,
                                      wireguard::InterfaceConfig tunnel,
                                      std::string appliance_public_key) {
  if (!settings_) return Error{"not_found", "no management settings: start() first"};
  if (!settings_->wireguard_interface.empty() && settings_->wireguard_interface != tunnel.name) {
    return Error{"conflict", "the management settings guard the tunnel interface " +
                                 settings_->wireguard_interface + ", not " + tunnel.name};
  }
  const std::string& interface_address = tunnel.tunnel_address;
  const auto slash = interface_address.find('/');
  if (slash == std::string::npos)
    return Error{"invalid", "the tunnel address needs a prefix length (10.99.0.1/24)"};
  Result<nft::Cidr> self = nft::Cidr::parse(interface_address.substr(0, slash));
  if (!self) return self.error();
  nft::Cidr network = self.value();
  const std::string prefix = interface_address.substr(slash + 1);
  if (prefix.empty() || prefix.size() > 3 ||
      !std::all_of(prefix.begin(), prefix.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoul(prefix) > (network.ipv6 ? 128u : 32u))
    return Error{"invalid", "\"" + interface_address + "\": bad prefix length"};
  network.prefix = static_cast<unsigned>(std::stoul(prefix));
  for (unsigned bit = network.prefix; bit < network.address_len() * 8; ++bit)
    network.address[bit / 8] =
        static_cast<uint8_t>(network.address[bit / 8] & ~(0x80u >> (bit % 8)));
  tunnel.listen_port = settings_->wireguard_port;
  if (Status st = wireguard->ensure_interface(tunnel); !st)
    return st.error().context("WireGuard interface");
  wireguard_ = wireguard;
  tunnel_ = std::move(tunnel);
  tunnel_network_ = network;
  tunnel_self_ = self.value();
  appliance_key_ = std::move(appliance_public_key);
  for (const wireguard::ManagementPeer& p : peers_) {
    if (Status st = wireguard_->set_peer({p.public_key, {p.tunnel_address}, std::nullopt, {}}); !st)
      return st.error().context("adding management peer " + p.name);
  }
  return ok();
}

Status ManagementPlane::check_new_peer(const wireguard::ManagementPeer& p) {
  if (peers_.size() >= wireguard::kMaxManagementPeers)
    return Error{"conflict",
                 "at most " + std::to_string(wireguard::kMaxManagementPeers) + " management peers",
                 ""};
  for (const wireguard::ManagementPeer& q : peers_) {
    if (q.name == p.name)
      return Error{"conflict", "a management peer of this name exists", "/name"};
    if (q.public_key == p.public_key)
      return Error{"conflict", "this key is management peer " + q.name + "'s", "/public_key"};
    if (q.tunnel_address == p.tunnel_address)
      return Error{"conflict", "this tunnel address is management peer " + q.name + "'s",
                   "/tunnel_address"};
  }
  if (p.public_key == appliance_key_)
    return Error{"invalid", "this is the appliance's own public key", "/public_key"};
  // In the tunnel's network, and neither its network, broadcast nor the appliance's address.
  nft::Cidr broadcast = tunnel_network_;
  for (unsigned bit = broadcast.prefix; bit < 32; ++bit)
    broadcast.address[bit / 8] =
        static_cast<uint8_t>(broadcast.address[bit / 8] | (0x80u >> (bit % 8)));
  nft::Cidr network_address = tunnel_network_;
  network_address.prefix = 32;
  broadcast.prefix = 32;
  nft::Cidr self = tunnel_self_;
  self.prefix = 32;
  if (!contains(tunnel_network_, p.tunnel_address) || p.tunnel_address == network_address ||
      p.tunnel_address == broadcast || p.tunnel_address == self)
    return Error{"invalid",
                 "must be a host address of the tunnel network " + tunnel_network_.to_string() +
                     " other than the appliance's own (" + tunnel_self_.to_string() + ")",
                 "/tunnel_address"};
  // Vendor sessions have keys and tunnel addresses of their own.
  Result<std::vector<store::VendorSession>> sessions = store_.open_vendor_sessions();
  if (!sessions) return sessions.error();
  const std::string address = p.tunnel_address.address_string();
  for (const store::VendorSession& s : sessions.value()) {
    if (s.public_key == p.public_key)
      return Error{
          "conflict",
          "this key has an open vendor session (" + std::to_string(s.id) + "); revoke it first",
          "/public_key"};
    if (s.tunnel_address == address)
      return Error{"conflict",
                   "vendor session " + std::to_string(s.id) + " uses this tunnel address",
                   "/tunnel_address"};
  }
  return ok();
}

std::optional<std::string> ManagementPlane::tunnel_network() const {
  if (!wireguard_) return std::nullopt;
  return tunnel_network_.to_string();
}

std::optional<std::string> ManagementPlane::appliance_tunnel_address() const {
  if (!wireguard_) return std::nullopt;
  return tunnel_self_.address_string();
}

std::optional<std::string> ManagementPlane::appliance_endpoint() const {
  if (!wireguard_ || !settings_ || settings_->wireguard_endpoint_host.empty()) return std::nullopt;
  return nft::wireguard_endpoint(*settings_);
}

Result<wireguard::ManagementPeer> ManagementPlane::add_peer(const json::value& body,
                                                            const store::Actor& actor,
                                                            int64_t now_ms) {
  if (!settings_)
    return Error{"not_found", "the management firewall is not managed by this controld"};
  if (!wireguard_ || settings_->wireguard_interface.empty())
    return Error{"not_found", "WireGuard is not configured on this appliance"};
  Result<wireguard::ManagementPeer> parsed = wireguard::parse_management_peer(body);
  if (!parsed) return parsed.error();
  wireguard::ManagementPeer& p = parsed.value();
  p.added_at = store::rfc3339_utc(now_ms);
  p.added_by = actor.name;
  if (Status st = check_new_peer(p); !st) return st.error();

  const std::vector<wireguard::ManagementPeer> before = peers_;
  std::vector<wireguard::ManagementPeer> after = peers_;
  after.push_back(p);
  if (Status st = wireguard_->set_peer({p.public_key, {p.tunnel_address}, std::nullopt, {}}); !st)
    return st.error().context("adding the WireGuard peer");
  // Any failure from here on takes the peer out again: nothing half-added stays.
  auto undo = [&] {
    (void)wireguard_->remove_peer(p.public_key);
    (void)install(*settings_, before);
  };
  if (Status st = install(*settings_, after); !st) {
    undo();
    return st.error();
  }
  if (Status st = store_peers(after); !st) {
    undo();
    return st.error();
  }
  const std::string detail = p.name + ": key " + p.public_key + ", tunnel address " +
                             p.tunnel_address.address_string() + " (HTTPS only)";
  Result<int64_t> a = store_.audit({actor, "management.peer.add", "management-peer/" + p.name, "ok",
                                    store::sha256_hex(serialize(before)),
                                    store::sha256_hex(serialize(after)), detail});
  if (!a) return a.error();
  return p;
}

Status ManagementPlane::remove_peer(const std::string& name, const store::Actor& actor) {
  const auto it = std::find_if(peers_.begin(), peers_.end(),
                               [&](const wireguard::ManagementPeer& p) { return p.name == name; });
  if (it == peers_.end()) return Error{"not_found", "no management peer named " + name};
  const wireguard::ManagementPeer peer = *it;
  if (actor.origin == peer.tunnel_address.address_string()) {
    (void)store_.audit({actor, "management.peer.remove", "management-peer/" + name,
                        "refused: would lock out " + actor.origin, "", "", ""});
    return Error{"conflict", "refused: you are connected through this peer (" + actor.origin +
                                 "), so removing it would lock you out"};
  }
  const std::vector<wireguard::ManagementPeer> before = peers_;
  std::vector<wireguard::ManagementPeer> after = peers_;
  after.erase(after.begin() + (it - peers_.begin()));
  // The firewall first (HTTPS from the address ends), then the tunnel itself.
  if (Status st = install(*settings_, after); !st) {
    (void)install(*settings_, before);
    return st;
  }
  if (wireguard_) {
    if (Status st = wireguard_->remove_peer(peer.public_key); !st) {
      (void)install(*settings_, before);
      return st.error().context("removing the WireGuard peer");
    }
  }
  if (Status st = store_peers(after); !st) {
    if (wireguard_)
      (void)wireguard_->set_peer({peer.public_key, {peer.tunnel_address}, std::nullopt, {}});
    (void)install(*settings_, before);
    return st;
  }
  Result<int64_t> a = store_.audit({actor, "management.peer.remove", "management-peer/" + name,
                                    "ok", store::sha256_hex(serialize(before)),
                                    store::sha256_hex(serialize(after)), peer.public_key});
  if (!a) return a.error();
  return ok();
}

Result<std::vector<std::string>> ManagementPlane::differences() {
  if (!settings_)
    return Error{"not_found", "the management firewall is not managed by this controld"};
  Result<nft::TableDescription> actual = firewall_.read_table();
  if (!actual) return actual.error();
  return nft::compare(nft::describe_intended(spec(*settings_, peers_)), actual.value());
}

Result<bool> ManagementPlane::reassert() {
  Result<std::vector<std::string>> diff = differences();
  if (!diff) return diff.error();
  if (diff.value().empty()) return false;
  if (Status st = install(*settings_, peers_); !st) return st.error();
  return true;
}

}  // namespace cordon::control::mgmt
