#include "dataplane/dpdk/vendor_sessions.h"

#include <boost/json.hpp>
#include <set>

namespace cordon::dataplane {
namespace json = boost::json;

namespace {

bool as_int64(const json::value& v, int64_t& out) {
  if (v.is_int64()) {
    out = v.as_int64();
    return true;
  }
  if (v.is_uint64() && v.as_uint64() <= uint64_t(INT64_MAX)) {
    out = static_cast<int64_t>(v.as_uint64());
    return true;
  }
  return false;
}

}  // namespace

std::vector<engine::PolicyError> parse_vendor_sessions(const json::value& sessions,
                                                       std::vector<VendorSession>& out) {
  std::vector<engine::PolicyError> errors;
  out.clear();
  if (!sessions.is_array()) return {{"sessions", "must be an array"}};
  const json::array& list = sessions.as_array();
  if (list.size() > kMaxVendorSessions) {
    return {{"sessions", "at most " + std::to_string(kMaxVendorSessions) + " sessions"}};
  }
  std::vector<VendorSession> parsed;
  std::set<int64_t> ids;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string path = "sessions[" + std::to_string(i) + "]";
    if (!list[i].is_object()) {
      errors.push_back({path, "must be an object"});
      continue;
    }
    const json::object& o = list[i].as_object();
    VendorSession s;
    for (const auto& [key, value] : o) {
      if (key != "id" && key != "service_address" && key != "device" && key != "ports" &&
          key != "expires_unix_ms") {
        errors.push_back({path + "." + std::string(key), "unknown field"});
      }
    }
    const json::value* id = o.if_contains("id");
    if (id == nullptr || !as_int64(*id, s.id) || s.id <= 0) {
      errors.push_back({path + ".id", "required: a positive integer"});
    } else if (!ids.insert(s.id).second) {
      errors.push_back({path + ".id", "duplicate session id " + std::to_string(s.id)});
    }
    const json::value* address = o.if_contains("service_address");
    std::optional<engine::IpAddress> ip;
    if (address != nullptr && address->is_string()) {
      ip = engine::IpAddress::parse(std::string_view(address->as_string()));
    }
    if (!ip) {
      errors.push_back({path + ".service_address", "required: an IPv4 or IPv6 address"});
    } else {
      s.service_address = *ip;
    }
    const json::value* device = o.if_contains("device");
    if (device == nullptr || !device->is_string() || device->as_string().empty()) {
      errors.push_back({path + ".device", "required: a device name"});
    } else {
      s.device = std::string(device->as_string());
    }
    const json::value* ports = o.if_contains("ports");
    if (ports == nullptr || !ports->is_array() || ports->as_array().empty() ||
        ports->as_array().size() > kMaxVendorSessionPorts) {
      errors.push_back(
          {path + ".ports", "required: 1 to " + std::to_string(kMaxVendorSessionPorts) + " ports"});
    } else {
      for (size_t p = 0; p < ports->as_array().size(); ++p) {
        int64_t port = 0;
        if (!as_int64(ports->as_array()[p], port) || port < 1 || port > 65535) {
          errors.push_back(
              {path + ".ports[" + std::to_string(p) + "]", "must be a port from 1 to 65535"});
          continue;
        }
        s.ports.push_back(static_cast<uint16_t>(port));
      }
    }
    const json::value* expires = o.if_contains("expires_unix_ms");
    if (expires == nullptr || !as_int64(*expires, s.expires_unix_ms) || s.expires_unix_ms <= 0) {
      errors.push_back({path + ".expires_unix_ms", "required: milliseconds since 1970"});
    }
    parsed.push_back(std::move(s));
  }
  if (errors.empty()) out = std::move(parsed);
  return errors;
}

json::value to_json(const std::vector<VendorSession>& sessions) {
  json::array out;
  for (const VendorSession& s : sessions) {
    json::array ports;
    for (uint16_t p : s.ports) ports.push_back(p);
    out.push_back(json::object{{"id", s.id},
                               {"service_address", s.service_address.to_string()},
                               {"device", s.device},
                               {"ports", std::move(ports)},
                               {"expires_unix_ms", s.expires_unix_ms}});
  }
  return out;
}

std::string vendor_rule_name(int64_t id) {
  return "vendor-session-" + std::to_string(id);
}

engine::PolicyDocument with_vendor_sessions(const engine::PolicyDocument& document,
                                            const std::vector<VendorSession>& sessions) {
  engine::PolicyDocument merged = document;
  for (const VendorSession& s : sessions) {
    for (engine::Device& device : merged.devices) {
      if (device.name != s.device) continue;
      engine::Cidr peer;
      peer.network = s.service_address;
      peer.prefix_length = s.service_address.family == 6 ? 128 : 32;
      for (uint16_t port : s.ports) {
        for (engine::Protocol proto : {engine::Protocol::tcp, engine::Protocol::udp}) {
          engine::Rule rule;
          rule.name = vendor_rule_name(s.id);
          rule.dir = engine::Direction::in;
          rule.proto = proto;
          rule.peer = peer;
          rule.dport = {port, port};
          rule.vendor_session = true;
          device.rules.push_back(std::move(rule));
        }
      }
    }
  }
  return merged;
}

}  // namespace cordon::dataplane
