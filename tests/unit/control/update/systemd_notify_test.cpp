// SystemdNotifier against a fake NOTIFY_SOCKET (a unix datagram socket the test reads,
// as systemd's): READY=1, then WATCHDOG=1 at half of WATCHDOG_USEC while the control
// loop runs, and no ping while the loop is stuck.
#include "control/update/systemd_notify.h"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>

#include "tests/unit/fake_systemd.h"

namespace cordon::control::update {
namespace {
using Clock = std::chrono::steady_clock;

using cordon::testing::FakeSystemd;

TEST(SystemdNotifier, ReadyThenWatchdogPingsWhileTheLoopRunsAndNoneWhileItIsStuck) {
  FakeSystemd systemd("200000");  // 200 ms: pings every 100 ms
  ASSERT_TRUE(systemd.bound());

  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  SystemdNotifier notifier(io);
  EXPECT_EQ(notifier.interval(), std::chrono::milliseconds(100));
  notifier.ready("serving");
  EXPECT_EQ(systemd.next(std::chrono::seconds(5)), "READY=1\nSTATUS=serving");
  notifier.start_watchdog();
  std::thread loop([&] { io.run(); });

  // Pings keep coming while the loop runs: five within a few intervals each.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(systemd.next(std::chrono::seconds(5)), "WATCHDOG=1");

  // The control loop hangs (a handler that never returns, until released): no ping for
  // well over WATCHDOG_USEC, so systemd would kill the process.
  std::promise<void> release;
  std::promise<void> stuck;
  boost::asio::post(io, [&] {
    stuck.set_value();
    release.get_future().wait();
  });
  stuck.get_future().wait();
  // A ping the timer sent just before the hang may still be queued; drain it.
  while (!systemd.next(std::chrono::milliseconds(0)).empty()) {
  }
  const auto quiet_from = Clock::now();
  EXPECT_EQ(systemd.next(std::chrono::milliseconds(600)), "") << "a ping from a stuck loop";
  EXPECT_GE(Clock::now() - quiet_from, std::chrono::milliseconds(590));
  release.set_value();
  EXPECT_EQ(systemd.next(std::chrono::seconds(5)), "WATCHDOG=1") << "pings resume";

  work.reset();
  io.stop();
  loop.join();
}

TEST(SystemdNotifier, WithoutSystemdNothingIsSentAndTheWatchdogIsOff) {
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  boost::asio::io_context io;
  SystemdNotifier notifier(io);
  EXPECT_EQ(notifier.interval().count(), 0);
  notifier.ready("serving");  // no socket: a no-op, no crash
  notifier.start_watchdog();
  EXPECT_EQ(io.poll(), 0u) << "no timer was started";
}

}  // namespace
}  // namespace cordon::control::update
