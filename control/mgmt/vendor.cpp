#include "control/mgmt/vendor.h"

#include <algorithm>
#include <boost/json.hpp>
#include <set>

#include "control/wireguard/keys.h"
#include "control/wireguard/peer.h"

namespace cordon::control::mgmt {
namespace json = boost::json;

namespace {

std::vector<nft::VendorAccessElement> elements_of(const store::VendorSession& s) {
  std::vector<nft::VendorAccessElement> out;
  for (uint16_t port : s.ports) {
    Result<nft::VendorAccessElement> e =
        nft::VendorAccessElement::make(s.tunnel_address, s.device_ip, port);
    if (e) out.push_back(e.value());
  }
  return out;
}

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<store::VendorSession> VendorAccess::create(const json::value& body,
                                                  const store::Actor& actor, int64_t now_ms) {
  if (!body.is_object()) return Error{"invalid", "must be an object", ""};
  const json::object& o = body.as_object();
  for (const auto& [k, v] : o) {
    if (k != "public_key" && k != "device" && k != "ports" && k != "duration_seconds")
      return Error{"invalid", "unknown field", "/" + std::string(k)};
  }
  const json::value* key = o.if_contains("public_key");
  if (!key || !key->is_string() || !wireguard::valid_public_key(key->as_string()))
    return Error{"invalid", "must be a WireGuard public key (44 characters of base64)",
                 "/public_key"};
  const json::value* device = o.if_contains("device");
  if (!device || !device->is_string())
    return Error{"invalid", "required: a device name", "/device"};
  const json::value* ports = o.if_contains("ports");
  if (!ports || !ports->is_array() || ports->as_array().empty() || ports->as_array().size() > 16)
    return Error{"invalid", "one to 16 ports", "/ports"};
  std::set<int64_t> port_set;
  for (size_t i = 0; i < ports->as_array().size(); ++i) {
    const json::value& p = ports->as_array()[i];
    if (!p.is_int64() || p.as_int64() < 1 || p.as_int64() > 65535)
      return Error{"invalid", "a port from 1 to 65535", "/ports/" + std::to_string(i)};
    port_set.insert(p.as_int64());
  }
  const json::value* duration = o.if_contains("duration_seconds");
  if (!duration) return Error{"invalid", "required", "/duration_seconds"};
  Result<std::chrono::seconds> d = wireguard::parse_duration(*duration, "/duration_seconds");
  if (!d) return d.error();

  // The device must be one the active policy knows; its (first IPv4) address is the target.
  Result<policy::ActivePolicy> active = policy_.active();
  if (!active) return active.error();
  json::error_code ec;
  const json::value doc =
      json::parse(active.value().document.empty() ? "{}" : active.value().document, ec);
  std::string device_ip;
  if (!ec && doc.is_object() && doc.as_object().contains("devices")) {
    for (const json::value& dv : doc.at("devices").as_array()) {
      if (dv.at("name").as_string() != device->as_string()) continue;
      for (const json::value& ip : dv.at("ip").as_array()) {
        const std::string a(ip.as_string());
        if (device_ip.empty() && a.find(':') == std::string::npos) device_ip = a;
      }
    }
  }
  if (device_ip.empty())
    return Error{"not_found", "no device with an IPv4 address of that name in the active policy",
                 "/device"};

  // A session past its end time is over, as `vendor list` already shows it, even if the
  // once-a-second expiry pass has not closed it yet: close it now, so that it neither
  // refuses the key's new session nor holds a tunnel address.
  if (Result<int> ended = expire(now_ms); !ended) return ended.error();
  Result<std::vector<store::VendorSession>> open_sessions = store_.open_vendor_sessions();
  if (!open_sessions) return open_sessions.error();
  std::set<std::string> used;
  for (const store::VendorSession& s : open_sessions.value()) {
    used.insert(s.tunnel_address);
    if (s.public_key == key->as_string())
      return Error{"conflict",
                   "this vendor key already has an open session (" + std::to_string(s.id) +
                       "); revoke it first",
                   "/public_key"};
  }
  if (management_peers_) {
    for (const wireguard::ManagementPeer& m : management_peers_()) {
      if (m.public_key == key->as_string())
        return Error{
            "conflict",
            "this key is management peer " + m.name + "'s; a vendor session needs a key of its own",
            "/public_key"};
      const std::string address = m.tunnel_address.to_string();
      used.insert(address.substr(0, address.find('/')));
    }
  }
  std::string tunnel;
  for (int host = 2; host < 255 && tunnel.empty(); ++host) {
    const std::string candidate = tunnel_prefix_ + "." + std::to_string(host);
    if (!used.count(candidate)) tunnel = candidate;
  }
  if (tunnel.empty()) return Error{"conflict", "no free tunnel address: too many open sessions"};

  store::VendorSession s;
  s.public_key = std::string(key->as_string());
  s.device = std::string(device->as_string());
  s.device_ip = device_ip;
  for (int64_t p : port_set) s.ports.push_back(static_cast<uint16_t>(p));
  s.tunnel_address = tunnel;
  s.created_by = actor.name;
  s.created_ms = now_ms;
  s.expires_ms = now_ms + std::chrono::duration_cast<std::chrono::milliseconds>(d.value()).count();
  if (Status st = open(s, now_ms); !st) {
    (void)close_now(s);
    (void)store_.audit({actor, "vendor.create", "vendor-session", "failed: " + st.error().message,
                        "", "", s.device});
    return st.error();
  }
  Result<int64_t> id = store_.add_vendor_session(
      s, {actor, "vendor.create", "", "ok", "", "",
          "key " + s.public_key + " -> " + s.device + " (" + s.device_ip + ") ports " +
              json::serialize(json::value_from(s.ports)) + " for " +
              std::to_string(d.value().count()) + " s, tunnel address " + s.tunnel_address});
  if (!id) {
    (void)close_now(s);
    return id.error();
  }
  s.id = id.value();
  retiring_.erase(s.public_key);  // the key's peer is the new session's now
  // A dataplane that is not reachable now gets the session with the next periodic push.
  (void)push_to_dataplane(now_ms);
  return s;
}

Result<std::string> VendorAccess::dataplane_sessions(int64_t now_ms) {
  const std::string service = service_address_ ? service_address_() : std::string();
  json::array out;
  if (!service.empty()) {
    Result<std::vector<store::VendorSession>> sessions = active(now_ms);
    if (!sessions) return sessions.error();
    for (const store::VendorSession& s : sessions.value()) {
      out.push_back(json::object{{"id", s.id},
                                 {"service_address", service},
                                 {"device", s.device},
                                 {"ports", json::value_from(s.ports)},
                                 {"expires_unix_ms", s.expires_ms}});
    }
  }
  return json::serialize(out);
}

Status VendorAccess::push_to_dataplane(int64_t now_ms) {
  if (dataplane_ == nullptr) return ok();
  Result<std::string> sessions = dataplane_sessions(now_ms);
  if (!sessions) return sessions.error();
  if (Status st = dataplane_->set_vendor_sessions(sessions.value()); !st)
    return st.error().context("pushing the vendor sessions to the dataplane");
  return ok();
}

Status VendorAccess::open(const store::VendorSession& s, int64_t now_ms) {
  Result<nft::Cidr> allowed = nft::Cidr::parse(s.tunnel_address + "/32");
  if (!allowed) return allowed.error();
  wireguard::PeerConfig peer;
  peer.public_key = s.public_key;
  peer.allowed_ips = {allowed.value()};
  if (Status st = wireguard_.set_peer(peer); !st)
    return st.error().context("adding the vendor's WireGuard peer");
  const auto left = std::chrono::milliseconds(std::max<int64_t>(1, s.expires_ms - now_ms));
  if (Status st = firewall_.add_vendor_access(elements_of(s), left); !st)
    return st.error().context("opening the firewall for the session");
  return ok();
}

Status VendorAccess::close_now(const store::VendorSession& s) {
  Status peer = wireguard_.remove_peer(s.public_key);
  Status elements = firewall_.remove_vendor_access(elements_of(s));
  if (!peer) return peer;
  return elements;
}

Status VendorAccess::close(const store::VendorSession& s, int64_t now_ms) {
  if (Status st = firewall_.remove_vendor_access(elements_of(s)); !st) return st;
  retiring_[s.public_key] = now_ms + kResetGraceMs;
  return ok();
}

bool VendorAccess::management_key(const std::string& public_key) const {
  if (!management_peers_) return false;
  for (const wireguard::ManagementPeer& m : management_peers_())
    if (m.public_key == public_key) return true;
  return false;
}

Status VendorAccess::remove_retired_peers(int64_t now_ms) {
  for (auto it = retiring_.begin(); it != retiring_.end();) {
    if (it->second > now_ms) {
      ++it;
      continue;
    }
    // The key may have become a management peer's meanwhile: that peer stays.
    if (!management_key(it->first)) {
      if (Status st = wireguard_.remove_peer(it->first); !st)
        return st.error().context("removing an ended vendor session's peer");
    }
    it = retiring_.erase(it);
  }
  return ok();
}

Status VendorAccess::revoke(int64_t id, const store::Actor& actor) {
  Result<std::vector<store::VendorSession>> sessions = store_.open_vendor_sessions();
  if (!sessions) return sessions.error();
  for (const store::VendorSession& s : sessions.value()) {
    if (s.id != id) continue;
    if (Status st = close(s, wall_ms()); !st)
      return st.error().context("revoking vendor session " + std::to_string(id));
    Status ended = store_.end_vendor_session(
        id, "revoked by " + actor.name,
        {actor, "vendor.revoke", "vendor-session/" + std::to_string(id), "ok", "", "", ""});
    // The dataplane cuts the session's open connections now; if it cannot be reached,
    // the firewall already has, and the next periodic push catches it up.
    if (ended) (void)push_to_dataplane(wall_ms());
    return ended;
  }
  return Error{"not_found", "no open vendor session " + std::to_string(id)};
}

Result<std::vector<store::VendorSession>> VendorAccess::active(int64_t now_ms) {
  Result<std::vector<store::VendorSession>> sessions = store_.open_vendor_sessions();
  if (!sessions) return sessions.error();
  std::vector<store::VendorSession> out;
  for (const store::VendorSession& s : sessions.value())
    if (s.expires_ms > now_ms) out.push_back(s);
  return out;
}

Result<int> VendorAccess::expire(int64_t now_ms) {
  Result<std::vector<store::VendorSession>> sessions = store_.open_vendor_sessions();
  if (!sessions) return sessions.error();
  int ended = 0;
  for (const store::VendorSession& s : sessions.value()) {
    if (s.expires_ms > now_ms) continue;
    if (Status st = close(s, now_ms); !st) return st.error();
    if (Status st = store_.end_vendor_session(s.id, "expired",
                                              {{"controld", "local"},
                                               "vendor.expire",
                                               "vendor-session/" + std::to_string(s.id),
                                               "ok",
                                               "",
                                               "",
                                               ""});
        !st)
      return st.error();
    ++ended;
  }
  if (ended > 0) (void)push_to_dataplane(now_ms);
  if (Status st = remove_retired_peers(now_ms); !st) return st.error();
  return ended;
}

Status VendorAccess::restore(int64_t now_ms) {
  Result<int> expired = expire(now_ms);
  if (!expired) return expired.error();
  Result<std::vector<store::VendorSession>> sessions = active(now_ms);
  if (!sessions) return sessions.error();
  for (const store::VendorSession& s : sessions.value())
    if (Status st = open(s, now_ms); !st) return st;
  // A peer left from before the restart (a kernel interface keeps its peers) whose session
  // has ended, or that nobody configured: it goes.
  Result<std::vector<wireguard::PeerStatus>> peers = wireguard_.list_peers();
  if (!peers) return peers.error();
  for (const wireguard::PeerStatus& p : peers.value()) {
    const bool running =
        std::any_of(sessions.value().begin(), sessions.value().end(),
                    [&](const store::VendorSession& s) { return s.public_key == p.public_key; });
    if (!running && !management_key(p.public_key)) {
      if (Status st = wireguard_.remove_peer(p.public_key); !st) return st;
    }
  }
  return ok();
}

std::vector<nft::VendorGrant> VendorAccess::grants(int64_t now_ms) {
  std::vector<nft::VendorGrant> out;
  Result<std::vector<store::VendorSession>> sessions = active(now_ms);
  if (!sessions) return out;
  for (const store::VendorSession& s : sessions.value())
    for (const nft::VendorAccessElement& e : elements_of(s))
      out.push_back(nft::VendorGrant{e, std::chrono::milliseconds(s.expires_ms - now_ms)});
  return out;
}

}  // namespace cordon::control::mgmt
