// SystemdNotifier: tells systemd that a service built on one io_context (controld, webd)
// serves (sd_notify READY=1, for Type=notify) and that its loop is alive (WATCHDOG=1, for
// WatchdogSec=).
//
// The watchdog pings come from a timer on the io_context that runs everything else, at
// half of WATCHDOG_USEC: a control thread that hangs (a stuck handler, a deadlock) stops
// the pings, and systemd kills and restarts controld. Without NOTIFY_SOCKET (not started
// by systemd) or WATCHDOG_USEC every call does nothing.
//
// Threads: construct, ready() and start_watchdog() on the control thread; the timer
// runs there too.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <string>

namespace cordon::control::update {

class SystemdNotifier {
 public:
  explicit SystemdNotifier(boost::asio::io_context& io);
  // READY=1 with a STATUS= line; once the API listens and recovery is done.
  void ready(const std::string& status);
  // Starts the WATCHDOG=1 timer if systemd asked for it (WATCHDOG_USEC set for us).
  void start_watchdog();
  // Half of WATCHDOG_USEC, or zero when the watchdog is off.
  std::chrono::microseconds interval() const { return interval_; }

 private:
  void schedule();
  boost::asio::steady_timer timer_;
  std::chrono::microseconds interval_{0};
};

}  // namespace cordon::control::update
