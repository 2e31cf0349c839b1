// UpdateService: controld's side of the signed A/B firmware update
// (docs/update-flow.md). The flow:
//   upload (size cap) -> RAUC verifies signature and `compatible`, the pre-install
//   handler the version floor -> install into the inactive slot, primary for a trial
//   boot -> reboot -> on_boot(): self-test of the new slot -> mark good (commit), or
//   mark bad and reboot back to the previous slot; the next on_boot() reports the
//   rollback.
// Every step is an event and an audit entry. What must survive a crash or a reboot
// (the update in flight: which slot it left, in which boot; the last result) is kept in
// the store's settings ("update.pending", "update.last_result").
//
// Threads: every public method is for the control thread. install and self-test run
// on one worker thread at a time; the worker touches only the backend, the self-test
// and `mu_`-guarded progress, and hands store writes to the control thread through
// `post` (controld: boost::asio::post on its io_context). The destructor joins it.
#pragma once

#include <array>
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "control/common/result.h"
#include "control/store/store.h"
#include "control/update/backend.h"
#include "control/update/self_test.h"

namespace cordon::control::update {

class UpdateService {
 public:
  struct Options {
    std::string bundle_dir;                    // uploads land here (created, mode 0700)
    uint64_t max_bundle_bytes = 512ull << 20;  // larger uploads are refused unread
    // Written by the pre-install handler (images/update-pre-install.sh) when it
    // rejects a bundle; RAUC itself only says "Pre-install handler error".
    std::string rejection_file = "/var/lib/cordon/update/last-rejection";
    std::string release_file = "/etc/cordon-release";  // VERSION= of the running system
    // Changes on every boot; the lab uses a file that its "reboot" rewrites.
    std::string boot_id_file = "/proc/sys/kernel/random/boot_id";
    // Run after a failed self-test marked the new slot bad; empty: none (the watchdog
    // or the operator reboots).
    std::vector<std::string> reboot_command;
    // The HMAC key of configuration backups (backup.h): state_dir/backup.key.
    std::string backup_key_file;
    // The administrator's downgrade allowance (allow_downgrade) for the pre-install
    // handler: `admin_downgrade_allowance` of /etc/cordon/update.conf. Empty: refused.
    std::string downgrade_allowance_file;
    std::chrono::seconds downgrade_allowance_ttl = std::chrono::hours(24);
  };
  // Fault injection for the crash tests (--crash-at): called with the name of each step
  // of the flow as it is reached (kCrashPoints); the test's hook SIGKILLs the process.
  using Checkpoint = std::function<void(std::string_view)>;
  static constexpr std::array<std::string_view, 6> kCrashPoints = {
      "upload",      // half of the bundle written to the upload file
      "verify",      // the update is recorded, RAUC has taken the bundle and checks it
      "installed",   // RAUC finished and the install is recorded; before the reboot
      "trial-boot",  // the trial boot is recorded; before the self-test starts
      "self-test",   // the self-test passed; before the slot is marked good
      "mark-good",   // RAUC marked the slot good; before the commit is recorded
  };
  // Where the update events go: by default straight into the store; controld hands them
  // to ControlApi::log_events (store, event long-poll, syslog export). Control thread.
  using EventSink = std::function<void(const std::vector<std::string>&)>;
  using Post = std::function<void(std::function<void()>)>;

  UpdateService(UpdateBackend& backend, SelfTest& self_test, store::Store& store, Options options,
                Post post);
  ~UpdateService();
  void set_checkpoint(Checkpoint checkpoint) { checkpoint_ = std::move(checkpoint); }
  void set_event_sink(EventSink sink) { event_sink_ = std::move(sink); }
  UpdateService(const UpdateService&) = delete;
  UpdateService& operator=(const UpdateService&) = delete;

  // Starts an install of `bundle` (the bytes of a .raucb). Refused, with nothing
  // written, when another update step runs, an update awaits its reboot, or the bundle
  // is over the size cap. The result comes later: status(), events, audit.
  Status upload(const std::string& bundle, const store::Actor& actor);
  // The same for a file already in the bundle dir (copied there by scp, a USB import);
  // `name` is a plain file name, never a path.
  Status install_file(const std::string& name, const store::Actor& actor);
  // Once after start: if this boot is the trial boot of an installed update, runs the
  // self-test (on the worker) and commits or falls back; if the previous slot booted
  // again, records the rollback.
  Status on_boot();
  // An administrator commits the booted trial slot without waiting for the self-test.
  Status mark_good(const store::Actor& actor);
  // An administrator allows one install of `version` below the version floor: written
  // for the pre-install handler (version, expiry), which consumes it when it lets that
  // version through (single use). RAUC still checks the bundle's signature. Audited.
  // Returns {"version","expires_at"}.
  Result<boost::json::object> allow_downgrade(const std::string& version, const std::string& reason,
                                              const store::Actor& actor);
  // The state for GET /v1/update: state, progress, booted and primary slot, slots,
  // versions, the update in flight and the last result.
  boost::json::object status();
  bool busy();  // a worker step (install, self-test) is running
  // For tests: waits for the running worker step to finish.
  void join();

  const Options& options() const { return options_; }
  std::string booted_version() const;  // VERSION= of the running system's release file

 private:
  Status start_install(const std::string& path, const std::string& sha256, uint64_t size,
                       const store::Actor& actor);
  void install_worker(std::string path, store::Actor actor);
  void self_test_worker(boost::json::object pending);
  // On the control thread: one audit entry and one event for a step.
  void record(const std::string& step, const std::string& outcome, const std::string& detail,
              const store::Actor& actor, const std::string& version = {});
  // Only an event (progress steps that need no audit entry). Control thread.
  void event(const std::string& step, const std::string& outcome, const std::string& detail,
             const store::Actor& actor, const std::string& version = {});
  void post_record(const std::string& step, const std::string& outcome, const std::string& detail,
                   const store::Actor& actor, const std::string& version = {});
  void set_last_result(const std::string& outcome, const std::string& version,
                       const std::string& reason);
  void set_state(const std::string& state, int percent, const std::string& message);
  std::string boot_id() const;
  Result<std::optional<boost::json::object>> pending();
  std::string rejection_reason(const std::string& rauc_error) const;
  void checkpoint(std::string_view step) {
    if (checkpoint_) checkpoint_(step);
  }
  // A partial upload left by a crash is removed and reported.
  void clean_interrupted_upload();

  UpdateBackend& backend_;
  SelfTest& self_test_;
  store::Store& store_;
  Options options_;
  Post post_;
  Checkpoint checkpoint_;
  EventSink event_sink_;

  std::mutex mu_;               // guards the four fields below
  std::string state_ = "idle";  // idle, installing, awaiting-reboot, self-test, rebooting
  int percent_ = 0;
  std::string message_;
  bool busy_ = false;
  std::thread worker_;
};

}  // namespace cordon::control::update
