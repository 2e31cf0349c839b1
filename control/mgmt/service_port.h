// The service port's kernel side, owned by controld: the interface where vendor traffic
// leaves toward the devices (settings' vendor_egress_interface, the kernel side of the
// dataplane's net_tap port) carries exactly the service address with its segment's
// prefix (vendor_service_address/vendor_service_prefix_length), is up, and is isolated
// (link::LinkBackend::isolate). The dataplane creates the interface anew at every start,
// so controld checks it at start, after every settings change and once a second, and
// repairs what differs (docs/management-plane.md, "Vendor path").
//
// A missing interface is reported once (until it is back), not at every check: it is
// what a stopped or restarting dataplane looks like.
//
// Threads: control thread only.
#pragma once

#include <string>
#include <vector>

#include "control/common/result.h"
#include "control/link/link_backend.h"
#include "control/nft/settings.h"

namespace cordon::control::mgmt {

class ServicePort {
 public:
  explicit ServicePort(link::LinkBackend& backend) : backend_(backend) {}

  // Makes the interface match `settings` (nothing to do without a service address).
  // Returns what it changed, one line a step ("added 10.50.0.250/24"); an error when the
  // interface is missing (code "not_found") or the kernel refused a step.
  Result<std::vector<std::string>> ensure(const nft::ManagementFirewallSettings& settings);

  // ensure(), as events for controld's event log (JSON objects, kind "service-port"):
  // one when it changed something, one when a problem starts or changes (state
  // "missing" or "error"), none while all is well or the same problem persists.
  std::vector<std::string> check(const nft::ManagementFirewallSettings& settings);

 private:
  link::LinkBackend& backend_;
  std::string problem_;  // the error last reported; "" when none
};

}  // namespace cordon::control::mgmt
