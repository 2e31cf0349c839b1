#include "control/wireguard/peer.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <set>

#include <boost/json.hpp>

#include "control/wireguard/keys.h"

namespace cordon::control::wireguard {
namespace {

Error invalid(std::string message, std::string path) {
  return Error{"invalid", std::move(message), std::move(path)};
}

// The required field `public_key` of `obj`: a WireGuard public key.
Result<std::string> parse_public_key(const boost::json::object& obj, const std::string& base) {
  const auto* key = obj.if_contains("public_key");
  if (key == nullptr) return invalid("required field is missing", base + "/public_key");
  if (!key->is_string() || !valid_public_key(key->as_string())) {
    return invalid(
        "must be a WireGuard public key (44 characters of base64, as `wg pubkey` prints)",
        base + "/public_key");
  }
  return std::string(key->as_string());
}

// The fields of a management peer that the client gives (name, public_key,
// tunnel_address), for the API's input and the stored form alike. Whether other fields
// may be present is the caller's business.
Result<ManagementPeer> parse_management_peer_fields(const boost::json::object& obj,
                                                    const std::string& base) {
  ManagementPeer p;
  const auto* name = obj.if_contains("name");
  if (name == nullptr) return invalid("required field is missing", base + "/name");
  if (!name->is_string() || name->as_string().empty() || name->as_string().size() > 32 ||
      !std::all_of(name->as_string().begin(), name->as_string().end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
      })) {
    return invalid("must be 1 to 32 characters of A-Z a-z 0-9 . _ -", base + "/name");
  }
  p.name = name->as_string();

  Result<std::string> key = parse_public_key(obj, base);
  if (!key) return key.error();
  p.public_key = key.value();

  const auto* address = obj.if_contains("tunnel_address");
  if (address == nullptr) return invalid("required field is missing", base + "/tunnel_address");
  if (!address->is_string()) {
    return invalid("must be an IPv4 address like \"10.99.0.200\"", base + "/tunnel_address");
  }
  auto cidr = nft::Cidr::parse(address->as_string());
  if (!cidr) return invalid(cidr.error().message, base + "/tunnel_address");
  if (cidr.value().ipv6 || cidr.value().prefix != 32) {
    return invalid("must be one IPv4 address (the tunnel is IPv4)", base + "/tunnel_address");
  }
  const auto& a = cidr.value().address;
  if (a[0] == 0 || a[0] == 127 || a[0] >= 224 || (a[0] == 169 && a[1] == 254)) {
    return invalid("must be a unicast host address (not 0/8, 127/8, 169.254/16, 224/3)",
                   base + "/tunnel_address");
  }
  p.tunnel_address = cidr.value();
  return p;
}

bool is_client_field(std::string_view k) {
  return k == "name" || k == "public_key" || k == "tunnel_address";
}
bool is_server_field(std::string_view k) {
  return k == "added_at" || k == "added_by";
}

}  // namespace

bool valid_endpoint(const std::string& endpoint) {
  std::string host, port;
  if (endpoint.find('\0') != std::string::npos) return false;
  if (!endpoint.empty() && endpoint.front() == '[') {
    const auto close = endpoint.find("]:");
    if (close == std::string::npos) return false;
    host = endpoint.substr(1, close - 1);
    port = endpoint.substr(close + 2);
    unsigned char buf[16];
    if (inet_pton(AF_INET6, host.c_str(), buf) != 1) return false;
  } else {
    const auto colon = endpoint.rfind(':');
    if (colon == std::string::npos) return false;
    host = endpoint.substr(0, colon);
    port = endpoint.substr(colon + 1);
    unsigned char buf[4];
    if (inet_pton(AF_INET, host.c_str(), buf) != 1) return false;
  }
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit)) {
    return false;
  }
  const unsigned long p = std::stoul(port);
  return p >= 1 && p <= 65535;
}

Result<PeerConfig> parse_peer(const boost::json::value& json, const std::string& base) {
  const auto* obj = json.if_object();
  if (obj == nullptr) return invalid("peer must be a JSON object", base);
  static const std::set<std::string> known = {"public_key", "allowed_ips", "endpoint",
                                              "persistent_keepalive"};
  for (const auto& kv : *obj) {
    if (!known.contains(std::string(kv.key()))) {
      return invalid("unknown field", base + "/" + std::string(kv.key()));
    }
  }
  PeerConfig p;
  Result<std::string> key = parse_public_key(*obj, base);
  if (!key) return key.error();
  p.public_key = key.value();

  const auto* ips = obj->if_contains("allowed_ips");
  if (ips == nullptr) return invalid("required field is missing", base + "/allowed_ips");
  if (!ips->is_array() || ips->as_array().empty()) {
    return invalid("must be a non-empty array of networks", base + "/allowed_ips");
  }
  if (ips->as_array().size() > 64) return invalid("at most 64 networks", base + "/allowed_ips");
  std::size_t i = 0;
  for (const auto& v : ips->as_array()) {
    const std::string path = base + "/allowed_ips/" + std::to_string(i++);
    if (!v.is_string()) return invalid("must be a network like \"10.99.0.2/32\"", path);
    auto cidr = nft::Cidr::parse(v.as_string());
    if (!cidr) return invalid(cidr.error().message, path);
    if (cidr.value().prefix == 0) {
      return invalid("a peer may not claim every address (/0)", path);
    }
    p.allowed_ips.push_back(cidr.value());
  }

  if (const auto* ep = obj->if_contains("endpoint"); ep != nullptr && !ep->is_null()) {
    if (!ep->is_string() || !valid_endpoint(std::string(ep->as_string()))) {
      return invalid("must be \"address:port\" with a literal address", base + "/endpoint");
    }
    p.endpoint = std::string(ep->as_string());
  }
  if (const auto* ka = obj->if_contains("persistent_keepalive")) {
    if (!ka->is_int64() || ka->as_int64() < 0 || ka->as_int64() > 65535) {
      if (!(ka->is_uint64() && ka->as_uint64() <= 65535)) {
        return invalid("must be seconds between 0 (off) and 65535", base + "/persistent_keepalive");
      }
    }
    p.persistent_keepalive = std::chrono::seconds(ka->to_number<std::int64_t>());
  }
  return p;
}

Result<ManagementPeer> parse_management_peer(const boost::json::value& json,
                                             const std::string& base) {
  const auto* obj = json.if_object();
  if (obj == nullptr) return invalid("management peer must be a JSON object", base);
  for (const auto& kv : *obj) {
    const std::string_view k = kv.key();
    if (is_server_field(k)) {
      return invalid("is set by the appliance when the peer is added; do not send it",
                     base + "/" + std::string(k));
    }
    if (!is_client_field(k)) return invalid("unknown field", base + "/" + std::string(k));
  }
  return parse_management_peer_fields(*obj, base);
}

Result<ManagementPeer> parse_stored_management_peer(const boost::json::value& json,
                                                    const std::string& base) {
  const auto* obj = json.if_object();
  if (obj == nullptr) return invalid("management peer must be a JSON object", base);
  for (const auto& kv : *obj) {
    const std::string_view k = kv.key();
    if (!is_client_field(k) && !is_server_field(k)) {
      return invalid("unknown field", base + "/" + std::string(k));
    }
  }
  Result<ManagementPeer> p = parse_management_peer_fields(*obj, base);
  if (!p) return p;
  // Absent in peers stored by a build before they were recorded.
  for (auto [field, out] :
       {std::pair{"added_at", &p.value().added_at}, std::pair{"added_by", &p.value().added_by}}) {
    const auto* v = obj->if_contains(field);
    if (v == nullptr || v->is_null()) continue;
    if (!v->is_string() || v->as_string().empty()) {
      return invalid("must be a non-empty string", base + "/" + field);
    }
    *out = std::string(v->as_string());
  }
  return p;
}

boost::json::value to_json(const ManagementPeer& p) {
  boost::json::object o;
  o["name"] = p.name;
  o["public_key"] = p.public_key;
  o["tunnel_address"] = p.tunnel_address.address_string();
  if (p.added_at) o["added_at"] = *p.added_at;
  if (p.added_by) o["added_by"] = *p.added_by;
  return o;
}

boost::json::value to_json(const PeerConfig& p) {
  boost::json::object o;
  o["public_key"] = p.public_key;
  boost::json::array ips;
  for (const auto& c : p.allowed_ips) ips.emplace_back(c.to_string());
  o["allowed_ips"] = std::move(ips);
  if (p.endpoint) o["endpoint"] = *p.endpoint;
  o["persistent_keepalive"] = p.persistent_keepalive.count();
  return o;
}

Result<std::chrono::seconds> parse_duration(const boost::json::value& json, const std::string& path,
                                            std::chrono::seconds cap) {
  std::int64_t n = -1;
  if (json.is_int64()) n = json.as_int64();
  if (json.is_uint64() && json.as_uint64() <= static_cast<std::uint64_t>(cap.count())) {
    n = static_cast<std::int64_t>(json.as_uint64());
  }
  if (!json.is_int64() && !json.is_uint64()) {
    return invalid("must be a whole number of seconds", path);
  }
  if (n < 1 || n > cap.count()) {
    return invalid("must be 1 .. " + std::to_string(cap.count()) + " seconds", path);
  }
  return std::chrono::seconds(n);
}

}  // namespace cordon::control::wireguard
