#include "control/nft/settings.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <set>

#include <boost/json.hpp>

namespace cordon::control::nft {
namespace {

Error invalid(std::string message, std::string path) {
  return Error{"invalid", std::move(message), std::move(path)};
}

Result<std::uint64_t> read_uint(const boost::json::value& v, const std::string& path,
                                std::uint64_t min, std::uint64_t max) {
  std::uint64_t n = 0;
  if (v.is_uint64()) {
    n = v.as_uint64();
  } else if (v.is_int64() && v.as_int64() >= 0) {
    n = static_cast<std::uint64_t>(v.as_int64());
  } else {
    return invalid(
        "must be an integer between " + std::to_string(min) + " and " + std::to_string(max), path);
  }
  if (n < min || n > max) {
    return invalid(std::to_string(n) + " is out of range (" + std::to_string(min) + ".." +
                       std::to_string(max) + ")",
                   path);
  }
  return n;
}

Result<std::string> read_interface(const boost::json::value& v, const std::string& path,
                                   bool may_be_empty) {
  if (may_be_empty && v.is_null()) return std::string{};
  if (!v.is_string()) return invalid("must be an interface name (string)", path);
  std::string name(v.as_string());
  if (may_be_empty && name.empty()) return name;
  if (!valid_interface_name(name)) {
    return invalid("\"" + name +
                       "\" is not a valid interface name (1-15 characters, no '/', "
                       "no whitespace)",
                   path);
  }
  return name;
}

// A DNS name (RFC 1123 labels of letters, digits and hyphens, 1..63 bytes, no hyphen at
// either end; at most 253 bytes; a trailing dot allowed) or an IPv4/IPv6 literal.
bool valid_endpoint_host(std::string_view host) {
  if (host.find('\0') != std::string_view::npos) return false;
  const std::string text(host);
  std::array<std::uint8_t, 16> address{};
  if (inet_pton(AF_INET6, text.c_str(), address.data()) == 1 ||
      inet_pton(AF_INET, text.c_str(), address.data()) == 1)
    return true;
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty() || host.size() > 253) return false;
  bool all_digits_or_dots = true;
  size_t label = 0;
  for (size_t i = 0; i <= host.size(); ++i) {
    if (i == host.size() || host[i] == '.') {
      if (label == 0 || label > 63 || host[i - 1] == '-' || host[i - label] == '-') return false;
      label = 0;
      continue;
    }
    const char c = host[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && c != '-') return false;
    if (c < '0' || c > '9') all_digits_or_dots = false;
    ++label;
  }
  // "10.0.0.256" is a mistyped address, not a name.
  return !all_digits_or_dots;
}

}  // namespace

std::string wireguard_endpoint(const ManagementFirewallSettings& s) {
  if (s.wireguard_endpoint_host.empty()) return "";
  const bool v6 = s.wireguard_endpoint_host.find(':') != std::string::npos;
  return (v6 ? "[" + s.wireguard_endpoint_host + "]" : s.wireguard_endpoint_host) + ":" +
         std::to_string(s.wireguard_port);
}

bool valid_interface_name(std::string_view name) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return c > ' ' && c < 0x7f && c != '/' && c != ':' && c != '"' && c != '\\';
  });
}

bool admits(const ManagementFirewallSettings& settings, std::string_view address) {
  auto host = Cidr::parse(address);
  if (!host || host.value().prefix != (host.value().ipv6 ? 128u : 32u)) return false;
  const Cidr& h = host.value();
  return std::any_of(settings.admin_networks.begin(), settings.admin_networks.end(),
                     [&](const Cidr& net) {
                       if (net.ipv6 != h.ipv6) return false;
                       for (unsigned bit = 0; bit < net.prefix; ++bit) {
                         const unsigned mask = 0x80u >> (bit % 8);
                         if ((net.address[bit / 8] & mask) != (h.address[bit / 8] & mask)) {
                           return false;
                         }
                       }
                       return true;
                     });
}

Result<Cidr> Cidr::parse(std::string_view text) {
  const std::string s(text);
  if (s.find('\0') != std::string::npos) return invalid("network contains a NUL byte", "");
  const auto slash = s.find('/');
  const std::string addr = s.substr(0, slash);
  Cidr c;
  c.ipv6 = addr.find(':') != std::string::npos;
  if (inet_pton(c.ipv6 ? AF_INET6 : AF_INET, addr.c_str(), c.address.data()) != 1) {
    return invalid("\"" + s + "\" is not an IPv4 or IPv6 network", "");
  }
  const unsigned max_prefix = c.ipv6 ? 128 : 32;
  c.prefix = max_prefix;
  if (slash != std::string::npos) {
    const std::string p = s.substr(slash + 1);
    if (p.empty() || p.size() > 3 || !std::all_of(p.begin(), p.end(), ::isdigit) ||
        std::stoul(p) > max_prefix) {
      return invalid("\"" + s + "\": prefix length must be 0.." + std::to_string(max_prefix), "");
    }
    c.prefix = static_cast<unsigned>(std::stoul(p));
  }
  for (unsigned bit = c.prefix; bit < max_prefix; ++bit) {
    if (c.address[bit / 8] & (0x80u >> (bit % 8))) {
      return invalid("\"" + s + "\" has host bits set after /" + std::to_string(c.prefix), "");
    }
  }
  return c;
}

std::string Cidr::address_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(ipv6 ? AF_INET6 : AF_INET, address.data(), buf, sizeof buf);
  return buf;
}

std::string Cidr::to_string() const {
  return address_string() + "/" + std::to_string(prefix);
}

Result<ManagementFirewallSettings> parse_settings(const boost::json::value& json) {
  const auto* obj = json.if_object();
  if (obj == nullptr) return invalid("settings must be a JSON object", "");
  static const std::set<std::string> known = {
      "interface",          "wireguard_interface",     "vendor_egress_interface",
      "external_interface", "admin_networks",          "https_port",
      "wireguard_port",     "wireguard_endpoint_host", "icmp_echo_per_second",
      "log_drops",          "vendor_service_address",  "vendor_service_prefix_length"};
  for (const auto& kv : *obj) {
    if (!known.contains(std::string(kv.key()))) {
      return invalid("unknown field", "/" + std::string(kv.key()));
    }
  }

  ManagementFirewallSettings s;
  const auto* iface = obj->if_contains("interface");
  if (iface == nullptr) return invalid("required field is missing", "/interface");
  auto name = read_interface(*iface, "/interface", false);
  if (!name) return name.error();
  s.interface = name.value();

  for (auto [field, out] : {std::pair{"wireguard_interface", &s.wireguard_interface},
                            std::pair{"vendor_egress_interface", &s.vendor_egress_interface},
                            std::pair{"external_interface", &s.external_interface}}) {
    if (const auto* v = obj->if_contains(field)) {
      auto n = read_interface(*v, std::string("/") + field, true);
      if (!n) return n.error();
      *out = n.value();
    }
  }
  if (s.wireguard_interface == s.interface) {
    return invalid("the tunnel interface must differ from the management interface",
                   "/wireguard_interface");
  }
  if (!s.vendor_egress_interface.empty() && s.wireguard_interface.empty()) {
    return invalid("vendor access needs a wireguard_interface", "/vendor_egress_interface");
  }
  if (!s.vendor_egress_interface.empty() && (s.vendor_egress_interface == s.interface ||
                                             s.vendor_egress_interface == s.wireguard_interface)) {
    return invalid("must differ from the management and tunnel interfaces",
                   "/vendor_egress_interface");
  }
  if (!s.external_interface.empty() &&
      (s.external_interface == s.interface || s.external_interface == s.wireguard_interface ||
       s.external_interface == s.vendor_egress_interface)) {
    return invalid("must differ from the management, tunnel and egress interfaces",
                   "/external_interface");
  }

  const auto* nets = obj->if_contains("admin_networks");
  if (nets == nullptr) return invalid("required field is missing", "/admin_networks");
  if (!nets->is_array()) return invalid("must be an array of networks", "/admin_networks");
  if (nets->as_array().empty()) {
    return invalid("must list at least one network (otherwise nobody can reach the web UI)",
                   "/admin_networks");
  }
  if (nets->as_array().size() > 256) {
    return invalid("at most 256 admin networks", "/admin_networks");
  }
  std::size_t i = 0;
  for (const auto& n : nets->as_array()) {
    const std::string path = "/admin_networks/" + std::to_string(i++);
    if (!n.is_string()) return invalid("must be a network like \"10.60.0.0/24\"", path);
    auto cidr = Cidr::parse(n.as_string());
    if (!cidr) return invalid(cidr.error().message, path);
    s.admin_networks.push_back(cidr.value());
  }

  if (const auto* v = obj->if_contains("vendor_service_address")) {
    const std::string path = "/vendor_service_address";
    if (s.vendor_egress_interface.empty()) {
      return invalid("needs a vendor_egress_interface (where it is used)", path);
    }
    std::array<std::uint8_t, 4> a{};
    if (!v->is_string() || inet_pton(AF_INET, v->as_string().c_str(), a.data()) != 1) {
      return invalid("must be an IPv4 address like \"10.50.0.250\"", path);
    }
    if (a[0] == 0 || a[0] == 127 || a[0] >= 224 || (a[0] == 169 && a[1] == 254)) {
      return invalid("must be a unicast host address (not 0/8, 127/8, 169.254/16, 224/3)", path);
    }
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, a.data(), text, sizeof text);
    s.vendor_service_address = text;
    if (admits(s, text)) {
      return invalid("lies in an admin network: vendor traffic would count as the admin's", path);
    }
    const auto* p = obj->if_contains("vendor_service_prefix_length");
    if (p == nullptr) {
      return invalid("required with vendor_service_address (the device segment's prefix length)",
                     "/vendor_service_prefix_length");
    }
    auto n = read_uint(*p, "/vendor_service_prefix_length", 8, 30);
    if (!n) return n.error();
    s.vendor_service_prefix_length = static_cast<unsigned>(n.value());
    const std::uint32_t host =
        (std::uint32_t{a[0]} << 24 | std::uint32_t{a[1]} << 16 | std::uint32_t{a[2]} << 8 | a[3]) &
        (~std::uint32_t{0} >> s.vendor_service_prefix_length);
    if (host == 0 || host == ~std::uint32_t{0} >> s.vendor_service_prefix_length) {
      return invalid("is the network or broadcast address of its /" +
                         std::to_string(s.vendor_service_prefix_length) + " segment",
                     path);
    }
  } else if (obj->if_contains("vendor_service_prefix_length") != nullptr) {
    return invalid("needs a vendor_service_address", "/vendor_service_prefix_length");
  }

  if (const auto* v = obj->if_contains("https_port")) {
    auto n = read_uint(*v, "/https_port", 1, 65535);
    if (!n) return n.error();
    s.https_port = static_cast<std::uint16_t>(n.value());
  }
  if (const auto* v = obj->if_contains("wireguard_port")) {
    auto n = read_uint(*v, "/wireguard_port", 1, 65535);
    if (!n) return n.error();
    s.wireguard_port = static_cast<std::uint16_t>(n.value());
  }
  if (const auto* v = obj->if_contains("wireguard_endpoint_host")) {
    const std::string path = "/wireguard_endpoint_host";
    if (!v->is_string() || !valid_endpoint_host(v->as_string())) {
      return invalid(
          "must be a DNS name like \"vpn.hospital.example\" or an IP address, without a port "
          "(the port is wireguard_port)",
          path);
    }
    if (s.wireguard_interface.empty()) return invalid("needs a wireguard_interface", path);
    s.wireguard_endpoint_host = std::string(v->as_string());
  }
  if (const auto* v = obj->if_contains("icmp_echo_per_second")) {
    auto n = read_uint(*v, "/icmp_echo_per_second", 1, 1000);
    if (!n) return n.error();
    s.icmp_echo_per_second = static_cast<std::uint32_t>(n.value());
  }
  if (const auto* v = obj->if_contains("log_drops")) {
    if (!v->is_bool()) return invalid("must be true or false", "/log_drops");
    s.log_drops = v->as_bool();
  }
  return s;
}

boost::json::value to_json(const ManagementFirewallSettings& s) {
  boost::json::object o;
  o["interface"] = s.interface;
  o["wireguard_interface"] = s.wireguard_interface;
  o["vendor_egress_interface"] = s.vendor_egress_interface;
  o["external_interface"] = s.external_interface;
  if (!s.vendor_service_address.empty()) {
    o["vendor_service_address"] = s.vendor_service_address;
    o["vendor_service_prefix_length"] = s.vendor_service_prefix_length;
  }
  boost::json::array nets;
  for (const auto& n : s.admin_networks) nets.emplace_back(n.to_string());
  o["admin_networks"] = std::move(nets);
  o["https_port"] = s.https_port;
  o["wireguard_port"] = s.wireguard_port;
  if (!s.wireguard_endpoint_host.empty()) o["wireguard_endpoint_host"] = s.wireguard_endpoint_host;
  o["icmp_echo_per_second"] = s.icmp_echo_per_second;
  o["log_drops"] = s.log_drops;
  return o;
}

Result<VendorAccessElement> VendorAccessElement::make(std::string_view tunnel,
                                                      std::string_view device, std::uint16_t port) {
  VendorAccessElement e;
  if (inet_pton(AF_INET, std::string(tunnel).c_str(), e.tunnel_address.data()) != 1) {
    return invalid("\"" + std::string(tunnel) + "\" is not an IPv4 tunnel address", "");
  }
  if (inet_pton(AF_INET, std::string(device).c_str(), e.device_address.data()) != 1) {
    return invalid("\"" + std::string(device) + "\" is not an IPv4 device address", "");
  }
  if (port == 0) return invalid("port must be 1..65535", "");
  e.port = port;
  return e;
}

std::string VendorAccessElement::to_string() const {
  char a[INET_ADDRSTRLEN] = {}, b[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, tunnel_address.data(), a, sizeof a);
  inet_ntop(AF_INET, device_address.data(), b, sizeof b);
  return std::string(a) + " . " + b + " . " + std::to_string(port);
}

}  // namespace cordon::control::nft
