// ServiceWatchdog: tells systemd that the dataplane enforces and listens (sd_notify
// READY=1, for Type=notify) and that it still works (WATCHDOG=1, for WatchdogSec=).
//
// A ping is sent at half of WATCHDOG_USEC, and only if every worker's loop counter and
// the control loop moved since the previous ping: a worker stuck on an lcore (which
// would leave its ports unserved) or a hung control thread stops the pings, and systemd
// kills and restarts the dataplane, which comes back enforcing its persisted policy.
// Without NOTIFY_SOCKET (not under systemd) or WATCHDOG_USEC nothing is sent.
//
// Threads: ready() and tick() on the control thread only; the progress function reads
// the workers' counters (relaxed atomics the workers bump once per loop).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace cordon::dataplane {

class ServiceWatchdog {
 public:
  using Clock = std::chrono::steady_clock;
  // `progress`: one counter per worker that grows while the worker loops.
  explicit ServiceWatchdog(std::function<std::vector<uint64_t>()> progress);

  void ready(const std::string& status);
  // Called by the control loop on every turn (at least every 50 ms).
  void tick(Clock::time_point now);
  // Half of WATCHDOG_USEC; zero when systemd asked for no watchdog.
  std::chrono::microseconds interval() const { return interval_; }

 private:
  std::function<std::vector<uint64_t>()> progress_;
  std::chrono::microseconds interval_{0};
  Clock::time_point next_{};
  std::vector<uint64_t> last_;
};

}  // namespace cordon::dataplane
