#include "control/update/systemd_notify.h"

#include <systemd/sd-daemon.h>

namespace cordon::control::update {

SystemdNotifier::SystemdNotifier(boost::asio::io_context& io) : timer_(io) {
  uint64_t usec = 0;
  // > 0: the watchdog is on for this process (WATCHDOG_PID, if set, is ours).
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
    interval_ = std::chrono::microseconds(static_cast<int64_t>(usec / 2));
}

void SystemdNotifier::ready(const std::string& status) {
  const std::string message = "READY=1\nSTATUS=" + status;
  (void)sd_notify(0, message.c_str());  // < 0 or 0: not under systemd; nothing to do
}

void SystemdNotifier::start_watchdog() {
  if (interval_.count() == 0) return;
  (void)sd_notify(0, "WATCHDOG=1");
  schedule();
}

void SystemdNotifier::schedule() {
  timer_.expires_after(interval_);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    (void)sd_notify(0, "WATCHDOG=1");
    schedule();
  });
}

}  // namespace cordon::control::update
