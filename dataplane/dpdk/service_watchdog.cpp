#include "dataplane/dpdk/service_watchdog.h"

#include <systemd/sd-daemon.h>

#include <cstdio>
#include <utility>

namespace cordon::dataplane {

ServiceWatchdog::ServiceWatchdog(std::function<std::vector<uint64_t>()> progress)
    : progress_(std::move(progress)) {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
    interval_ = std::chrono::microseconds(static_cast<int64_t>(usec / 2));
  last_ = progress_();
}

void ServiceWatchdog::ready(const std::string& status) {
  const std::string message = "READY=1\nSTATUS=" + status;
  (void)sd_notify(0, message.c_str());  // <= 0: not under systemd, nothing to do
}

void ServiceWatchdog::tick(Clock::time_point now) {
  if (interval_.count() == 0 || now < next_) return;
  next_ = now + interval_;
  const std::vector<uint64_t> current = progress_();
  bool all_moved = current.size() == last_.size();
  for (size_t i = 0; all_moved && i < current.size(); ++i) all_moved = current[i] != last_[i];
  if (all_moved) {
    (void)sd_notify(0, "WATCHDOG=1");
    last_ = current;
  } else {
    // Logged once per missed ping: systemd acts when WatchdogSec passes without one.
    std::fprintf(stderr, "cordon-dataplane: a worker made no progress; no watchdog ping\n");
  }
}

}  // namespace cordon::dataplane
