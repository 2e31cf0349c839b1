// UpdateBackend on RAUC's D-Bus API (de.pengutronix.rauc.Installer at "/", RAUC >= 1.6)
// through libdbus-1: InstallBundle, then the Completed signal (Progress polled while
// waiting), LastError, Operation, Mark, GetSlotStatus, GetPrimary, BootSlot.
//
// Threads: calls may run on several threads at once (see backend.h): each opens its own
// private bus connection, which also means a RAUC restart (a lab "reboot") never leaves
// a dead connection behind.
#pragma once

#include <chrono>
#include <string>

#include "control/update/backend.h"

namespace cordon::control::update {

class RaucDbusBackend final : public UpdateBackend {
 public:
  struct Options {
    // "unix:path=/run/dbus/system_bus_socket"; empty: the system bus (which honours
    // DBUS_SYSTEM_BUS_ADDRESS, as the lab sets it).
    std::string bus_address;
    std::chrono::seconds install_timeout{900};
    std::chrono::seconds call_timeout{30};
  };
  explicit RaucDbusBackend(Options options) : options_(std::move(options)) {}

  Status install(const std::string& path,
                 const std::function<void(const Progress&)>& on_progress) override;
  Result<std::string> operation() override;
  Result<std::string> last_error() override;
  Status mark(const std::string& state, const std::string& slot) override;
  Result<std::vector<SlotInfo>> slots() override;
  Result<std::string> booted_slot() override;
  Result<std::string> primary_slot() override;

 private:
  Options options_;
};

}  // namespace cordon::control::update
