#include "control/mgmt/service_port.h"

#include <arpa/inet.h>

#include <boost/json.hpp>

#include "control/store/store.h"

namespace cordon::control::mgmt {

Result<std::vector<std::string>> ServicePort::ensure(const nft::ManagementFirewallSettings& s) {
  std::vector<std::string> changes;
  if (s.vendor_service_address.empty() || s.vendor_egress_interface.empty()) return changes;
  const std::string& name = s.vendor_egress_interface;
  link::InterfaceAddress want;
  if (inet_pton(AF_INET, s.vendor_service_address.c_str(), want.address.data()) != 1) {
    return Error{"invalid", "not an IPv4 address: " + s.vendor_service_address,
                 "/vendor_service_address"};
  }
  want.prefix_length = s.vendor_service_prefix_length;

  Result<link::LinkState> state = backend_.read(name);
  if (!state) {
    if (state.error().code == "not_found") {
      return Error{"not_found", "service interface " + name +
                                    " is missing: vendor sessions cannot reach the devices "
                                    "(is the dataplane running with its service port?)"};
    }
    return state.error().context("service interface " + name);
  }
  const link::LinkState& now = state.value();
  // controld owns the interface's IPv4 addresses: any other (an earlier setting's, a
  // hand-made one) would make the appliance answer on the device segment as that.
  bool have = false;
  for (const link::InterfaceAddress& a : now.ipv4) {
    if (a == want) {
      have = true;
      continue;
    }
    if (Status st = backend_.remove_address(name, a); !st) return st.error();
    changes.push_back("removed " + a.to_string());
  }
  if (!now.arp_ignore || !now.ipv6_disabled || now.tx_checksum_offload) {
    // Before the address: no ARP answers or IPv6 on the segment for the others first.
    if (Status st = backend_.isolate(name); !st) return st.error();
    changes.push_back("isolated (arp_ignore 1, IPv6 off, TX checksum offload off)");
  }
  if (!have) {
    if (Status st = backend_.add_address(name, want); !st) return st.error();
    changes.push_back("added " + want.to_string());
  }
  if (!now.up) {
    if (Status st = backend_.set_up(name); !st) return st.error();
    changes.push_back("set up");
  }
  return changes;
}

std::vector<std::string> ServicePort::check(const nft::ManagementFirewallSettings& s) {
  std::vector<std::string> events;
  const auto event = [&](const char* state, const std::string& detail) {
    boost::json::object e{{"time", store::now_rfc3339()},
                          {"kind", "service-port"},
                          {"interface", s.vendor_egress_interface},
                          {"state", state},
                          {"detail", detail}};
    events.push_back(boost::json::serialize(e));
  };
  Result<std::vector<std::string>> r = ensure(s);
  if (!r) {
    if (r.error().message != problem_) {
      problem_ = r.error().message;
      event(r.error().code == "not_found" ? "missing" : "error", problem_);
    }
    return events;
  }
  if (!r.value().empty() || !problem_.empty()) {
    std::string detail =
        s.vendor_service_address + "/" + std::to_string(s.vendor_service_prefix_length);
    for (const std::string& change : r.value()) detail += "; " + change;
    event("configured", detail);
  }
  problem_.clear();
  return events;
}

}  // namespace cordon::control::mgmt
