#include "control/update/fake_backend.h"

#include <algorithm>

namespace cordon::control::update {

FakeUpdateBackend::FakeUpdateBackend() {
  slot_table["rootfs.0"] = Slot{"A", "1.0.0", true, 3, false};
  slot_table["rootfs.1"] = Slot{"B", "", false, 0, false};
  order = {"rootfs.0", "rootfs.1"};
}

std::string FakeUpdateBackend::inactive() const {
  for (const auto& [name, slot] : slot_table) {
    if (slot.bootname != booted_) return name;
  }
  return {};
}

Status FakeUpdateBackend::install(const std::string& path,
                                  const std::function<void(const Progress&)>& on_progress) {
  std::lock_guard lock(mu_);
  installed_paths.push_back(path);
  if (on_progress) on_progress(Progress{0, "Installing"});
  if (during_install) during_install();
  if (install_error) {
    last_error_ = *install_error;
    return Error{"rejected", *install_error};
  }
  last_error_.clear();
  const std::string target = inactive();
  Slot& slot = slot_table[target];
  slot.version = install_version;
  slot.committed = false;
  slot.bad = false;
  slot.attempts = 3;
  order.erase(std::remove(order.begin(), order.end(), target), order.end());
  order.insert(order.begin(), target);
  if (on_progress) on_progress(Progress{100, "Installing done."});
  return ok();
}

Status FakeUpdateBackend::mark(const std::string& state, const std::string& slot) {
  std::lock_guard lock(mu_);
  marks.push_back(state + " " + slot);
  std::string name;
  for (const auto& [n, s] : slot_table) {
    if ((slot == "booted" && s.bootname == booted_) || slot == n) name = n;
  }
  if (name.empty()) return Error{"invalid", "no slot " + slot};
  Slot& s = slot_table[name];
  if (state == "good") {
    s.committed = true;
    s.bad = false;
  } else if (state == "bad") {
    s.committed = false;
    s.bad = true;
    s.attempts = 0;
  } else {
    return Error{"invalid", "unknown state " + state};
  }
  return ok();
}

std::string FakeUpdateBackend::reboot() {
  std::lock_guard lock(mu_);
  for (const auto& name : order) {
    Slot& s = slot_table[name];
    if (s.bad || s.version.empty()) continue;
    if (s.committed) {
      booted_ = s.bootname;
      return booted_;
    }
    if (s.attempts > 0) {
      --s.attempts;
      booted_ = s.bootname;
      return booted_;
    }
  }
  return booted_;
}

Result<std::vector<SlotInfo>> FakeUpdateBackend::slots() {
  std::lock_guard lock(mu_);
  std::vector<SlotInfo> out;
  for (const auto& [name, s] : slot_table) {
    SlotInfo info;
    info.name = name;
    info.bootname = s.bootname;
    info.state = s.bootname == booted_ ? "booted" : "inactive";
    info.boot_status = s.bad ? "bad" : (s.committed ? "good" : "");
    info.bundle_version = s.version;
    out.push_back(info);
  }
  return out;
}

Result<std::string> FakeUpdateBackend::primary_slot() {
  std::lock_guard lock(mu_);
  return order.front();
}

}  // namespace cordon::control::update
