// The A/B update mechanism as controld sees it: install a signed bundle into the
// inactive slot, report progress, mark slots good or bad, and tell which slot booted.
// The real implementation is RAUC over D-Bus (rauc_dbus_backend.h); FakeUpdateBackend
// (fake_backend.h) stands in for it in unit tests.
//
// Threads: UpdateService's worker calls install/mark while the control thread may ask
// for status (slots, booted_slot, primary_slot, operation, last_error) at the same
// time; implementations allow that (RaucDbusBackend opens a connection per call, the
// fake takes a mutex).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "control/common/result.h"

namespace cordon::control::update {

struct Progress {
  int percent = 0;
  std::string message;  // RAUC's current step, e.g. "Checking bundle"
};

struct SlotInfo {
  std::string name;            // "rootfs.0"
  std::string bootname;        // "A"
  std::string state;           // "booted", "active", "inactive"
  std::string boot_status;     // "good", "bad", "" when unknown
  std::string bundle_version;  // version of the bundle last installed here, "" if none
  std::string installed_at;    // when, "" if never installed through the updater
};

class UpdateBackend {
 public:
  virtual ~UpdateBackend() = default;
  // Verifies and installs the bundle at `path` into the inactive slot and makes that
  // slot primary for a trial boot. Blocks until the installer has finished; calls
  // `on_progress` (on the calling thread) as the installer reports progress. On
  // failure the error message is the installer's reason (RAUC's LastError).
  virtual Status install(const std::string& path,
                         const std::function<void(const Progress&)>& on_progress) = 0;
  // The installer's operation ("idle", "installing") and its last error ("" if none).
  virtual Result<std::string> operation() = 0;
  virtual Result<std::string> last_error() = 0;
  // Marks a slot: `state` "good", "bad" or "active"; `slot` "booted", "other" or a name.
  virtual Status mark(const std::string& state, const std::string& slot) = 0;
  virtual Result<std::vector<SlotInfo>> slots() = 0;
  virtual Result<std::string> booted_slot() = 0;   // bootname of the running slot
  virtual Result<std::string> primary_slot() = 0;  // name of the slot booted next
};

}  // namespace cordon::control::update
