#include "control/nft/table.h"

#include <algorithm>
#include <set>

#include "control/nft/nftnl_objects.h"

namespace cordon::control::nft {

Status validate(const TableSpec& spec) {
  if (!valid_interface_name(spec.settings.interface)) {
    return Error{"invalid", "management interface name is not valid", "/interface"};
  }
  for (const auto& [name, path] :
       {std::pair{&spec.settings.wireguard_interface, "/wireguard_interface"},
        std::pair{&spec.settings.vendor_egress_interface, "/vendor_egress_interface"}}) {
    if (!name->empty() && !valid_interface_name(*name)) {
      return Error{"invalid", "interface name is not valid", path};
    }
  }
  if (spec.settings.admin_networks.empty()) {
    return Error{"invalid", "no admin networks", "/admin_networks"};
  }
  if (!spec.management_peers.empty() && spec.settings.wireguard_interface.empty()) {
    return Error{"invalid", "management peers need a wireguard_interface", "/wireguard_interface"};
  }
  if (spec.management_peers.size() > kMaxManagementPeerAddresses) {
    return Error{"invalid",
                 "more than " + std::to_string(kMaxManagementPeerAddresses) + " management peers",
                 ""};
  }
  for (const auto& peer : spec.management_peers) {
    if (peer.ipv6 || peer.prefix != 32) {
      return Error{"invalid",
                   "management peer address " + peer.to_string() + " is not one IPv4 address", ""};
    }
  }
  if (spec.vendor_access.size() > kMaxVendorElements) {
    return Error{"invalid",
                 "more than " + std::to_string(kMaxVendorElements) + " vendor access elements", ""};
  }
  std::set<VendorAccessElement> seen;
  for (const auto& g : spec.vendor_access) {
    if (g.timeout.count() <= 0 || g.timeout > kMaxVendorTimeout) {
      return Error{"invalid",
                   "vendor access " + g.element.to_string() + ": timeout must be 1 ms .. 8 h", ""};
    }
    if (!seen.insert(g.element).second) {
      return Error{"invalid", "vendor access " + g.element.to_string() + " listed twice", ""};
    }
  }
  return ok();
}

TableDescription describe_intended(const TableSpec& spec) {
  return detail::describe(detail::build_objects(spec));
}

std::vector<std::string> compare(const TableDescription& intended, const TableDescription& actual) {
  std::vector<std::string> diff;
  if (intended.present != actual.present) {
    diff.push_back(actual.present ? "unexpected: table inet cordon_mgmt exists"
                                  : "missing: table inet cordon_mgmt");
    return diff;
  }
  // Lines are in a canonical order; report each line present on one side only, and a
  // rule order change as a pair of missing/unexpected lines.
  const std::multiset<std::string> want(intended.lines.begin(), intended.lines.end());
  const std::multiset<std::string> have(actual.lines.begin(), actual.lines.end());
  for (const auto& line : intended.lines) {
    if (have.count(line) < want.count(line)) diff.push_back("missing: " + line);
  }
  for (const auto& line : actual.lines) {
    if (want.count(line) < have.count(line)) diff.push_back("unexpected: " + line);
  }
  std::sort(diff.begin(), diff.end());
  diff.erase(std::unique(diff.begin(), diff.end()), diff.end());
  if (diff.empty() && intended.lines != actual.lines) {
    diff.push_back("rules are in a different order");
  }

  for (const auto& w : intended.vendor_access) {
    auto it = std::find_if(actual.vendor_access.begin(), actual.vendor_access.end(),
                           [&](const VendorEntry& h) { return h.element == w.element; });
    if (it == actual.vendor_access.end()) {
      diff.push_back("missing: vendor access " + w.element.to_string());
    } else if (it->remaining > w.remaining + kVendorTimeLeftSlack ||
               (w.remaining.count() > 0) != (it->remaining.count() > 0)) {
      diff.push_back("vendor access " + w.element.to_string() + ": " +
                     std::to_string(it->remaining.count()) + " ms left, intended at most " +
                     std::to_string(w.remaining.count()) + " ms");
    }
  }
  for (const auto& h : actual.vendor_access) {
    if (std::none_of(intended.vendor_access.begin(), intended.vendor_access.end(),
                     [&](const VendorEntry& w) { return w.element == h.element; })) {
      diff.push_back("unexpected: vendor access " + h.element.to_string());
    }
  }
  return diff;
}

}  // namespace cordon::control::nft
