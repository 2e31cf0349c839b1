// controld's management plane: the host firewall (table inet cordon_mgmt) built from the
// management settings kept in the store. The table is asserted at start and after every
// settings change, then read back from the kernel and compared with what was intended;
// a periodic check re-asserts it when someone changed it behind controld's back.
//
// A settings change that would lock out the caller's own connection (its origin address
// not in the new admin networks) is refused.
//
// Threads: control thread only.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "control/common/result.h"
#include "control/nft/firewall_backend.h"
#include "control/nft/settings.h"
#include "control/store/store.h"

namespace cordon::control::mgmt {

class ManagementPlane {
 public:
  ManagementPlane(store::Store& store, nft::FirewallBackend& firewall)
      : store_(store), firewall_(firewall) {}

  // The stored settings, or `initial` (stored then) when there are none yet; installs
  // and verifies the table. Without either, there is nothing to enforce: an error.
  Status start(const std::optional<nft::ManagementFirewallSettings>& initial);
  Result<nft::ManagementFirewallSettings> settings();
  Status change(const nft::ManagementFirewallSettings& settings, const store::Actor& actor);
  // Reads the table back: the differences from the intended table (empty when equal).
  Result<std::vector<std::string>> differences();
  // Re-installs the table when the kernel's differs. Returns whether it had to.
  Result<bool> reassert();
  bool active() const { return settings_.has_value(); }
  // Where the running vendor sessions' grants come from, so a table replacement keeps
  // them and the read-back expects them.
  void set_grants(std::function<std::vector<nft::VendorGrant>()> grants) {
    grants_ = std::move(grants);
  }

 private:
  Status install(const nft::ManagementFirewallSettings& settings);
  nft::TableSpec spec(const nft::ManagementFirewallSettings& s) const {
    return nft::TableSpec{s, grants_ ? grants_() : std::vector<nft::VendorGrant>{}};
  }
  std::optional<nft::ManagementFirewallSettings> settings_;  // what is installed
  std::function<std::vector<nft::VendorGrant>()> grants_;
  store::Store& store_;
  nft::FirewallBackend& firewall_;
};

}  // namespace cordon::control::mgmt
