// An UpdateBackend in memory for unit tests: two slots A (rootfs.0) and B (rootfs.1),
// boot counting as in tests/update/boot-backend.sh (a trial slot boots while attempts
// remain; a bad or exhausted one falls back), and a scripted install result.
//
// Threads: every method takes `mu_`, so the API thread may ask for status while the
// service's worker installs; the public fields are for the test, touched only while the
// service is idle.
#pragma once

#include <map>
#include <mutex>
#include <optional>

#include "control/update/backend.h"

namespace cordon::control::update {

class FakeUpdateBackend final : public UpdateBackend {
 public:
  struct Slot {
    std::string bootname;
    std::string version;  // of the image in it, "" when empty
    bool committed = false;
    int attempts = 0;
    bool bad = false;
  };
  FakeUpdateBackend();

  // The next install: fails with `error` if set; otherwise writes an image of
  // `version` into the inactive slot and makes it primary with 3 attempts.
  std::optional<std::string> install_error;
  std::string install_version = "1.1.0";
  // Runs inside install(), as RAUC's handlers run during the install (e.g. the
  // pre-install handler writing its rejection file).
  std::function<void()> during_install;
  std::vector<std::string> installed_paths;  // every bundle path install() was given
  std::vector<std::string> marks;            // "good booted", "bad booted", ...

  // The lab's reboot: boot the first slot of the order that is committed or has
  // attempts left (using one up). Returns its bootname.
  std::string reboot();

  Status install(const std::string& path,
                 const std::function<void(const Progress&)>& on_progress) override;
  Result<std::string> operation() override { return std::string("idle"); }
  Result<std::string> last_error() override {
    std::lock_guard lock(mu_);
    return last_error_;
  }
  Status mark(const std::string& state, const std::string& slot) override;
  Result<std::vector<SlotInfo>> slots() override;
  Result<std::string> booted_slot() override {
    std::lock_guard lock(mu_);
    return booted_;
  }
  Result<std::string> primary_slot() override;

  std::map<std::string, Slot> slot_table;  // by name: "rootfs.0", "rootfs.1"
  std::vector<std::string> order;          // slot names, primary first

 private:
  std::string inactive() const;
  std::mutex mu_;
  std::string booted_ = "A";
  std::string last_error_;
};

}  // namespace cordon::control::update
