// ServiceWatchdog against a fake NOTIFY_SOCKET (a unix datagram socket the test reads, as
// systemd's): READY=1; WATCHDOG=1 only when every worker's loop counter moved since the
// last ping, and not before the interval has passed.
#include "dataplane/dpdk/service_watchdog.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/unit/fake_systemd.h"

namespace cordon::dataplane {
namespace {
using namespace std::chrono_literals;

using cordon::testing::FakeSystemd;

TEST(ServiceWatchdog, PingsOnlyWhileEveryWorkerMakesProgress) {
  FakeSystemd systemd("200000");  // pings due every 100 ms
  ASSERT_TRUE(systemd.bound());
  std::vector<uint64_t> loops{0, 0};
  ServiceWatchdog watchdog([&loops] { return loops; });
  EXPECT_EQ(watchdog.interval(), 100ms);

  watchdog.ready("enforcing policy version 3");
  EXPECT_EQ(systemd.next(1000ms), "READY=1\nSTATUS=enforcing policy version 3");

  const auto t0 = ServiceWatchdog::Clock::now();
  loops = {5, 7};
  watchdog.tick(t0);
  EXPECT_EQ(systemd.next(1000ms), "WATCHDOG=1");
  loops = {6, 8};
  watchdog.tick(t0 + 50ms);  // not due yet
  EXPECT_EQ(systemd.next(50ms), "");

  loops = {9, 7};  // worker 1 has not moved since the last ping: it is stuck
  watchdog.tick(t0 + 100ms);
  EXPECT_EQ(systemd.next(50ms), "");
  watchdog.tick(t0 + 200ms);
  EXPECT_EQ(systemd.next(50ms), "");

  loops = {10, 9};  // it moves again
  watchdog.tick(t0 + 300ms);
  EXPECT_EQ(systemd.next(1000ms), "WATCHDOG=1");
}

TEST(ServiceWatchdog, SilentWithoutSystemd) {
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  std::vector<uint64_t> loops{0};
  ServiceWatchdog watchdog([&loops] { return loops; });
  EXPECT_EQ(watchdog.interval(), 0us);
  loops = {1};
  watchdog.tick(ServiceWatchdog::Clock::now());  // nothing to send to, nothing breaks
}

}  // namespace
}  // namespace cordon::dataplane
