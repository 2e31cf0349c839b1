#include <algorithm>

#include "control/link/link_backend.h"

namespace cordon::control::link {

Status FakeLinkBackend::call(const std::string& what, const std::string& name,
                             const std::string& detail) {
  calls.push_back(what + " " + name + (detail.empty() ? "" : " " + detail));
  if (fail == what) {
    fail.clear();
    return Error{"io", what + " " + name + ": failed (fake)"};
  }
  if (!links.contains(name)) return Error{"not_found", "no interface " + name};
  return ok();
}

Result<LinkState> FakeLinkBackend::read(const std::string& name) {
  const auto it = links.find(name);
  if (it == links.end()) return Error{"not_found", "no interface " + name};
  return it->second;
}

Status FakeLinkBackend::set_up(const std::string& name) {
  if (Status s = call("set_up", name); !s) return s;
  links[name].up = true;
  return ok();
}

Status FakeLinkBackend::add_address(const std::string& name, const InterfaceAddress& address) {
  if (Status s = call("add_address", name, address.to_string()); !s) return s;
  std::vector<InterfaceAddress>& v = links[name].ipv4;
  if (std::find(v.begin(), v.end(), address) == v.end()) v.push_back(address);
  return ok();
}

Status FakeLinkBackend::remove_address(const std::string& name, const InterfaceAddress& address) {
  if (Status s = call("remove_address", name, address.to_string()); !s) return s;
  std::vector<InterfaceAddress>& v = links[name].ipv4;
  v.erase(std::remove(v.begin(), v.end(), address), v.end());
  return ok();
}

Status FakeLinkBackend::isolate(const std::string& name) {
  if (Status s = call("isolate", name); !s) return s;
  LinkState& l = links[name];
  l.arp_ignore = true;
  l.ipv6_disabled = true;
  l.tx_checksum_offload = false;
  return ok();
}

}  // namespace cordon::control::link
