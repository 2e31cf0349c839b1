// ServiceWatchdog against a fake NOTIFY_SOCKET (a unix datagram socket the test reads, as
// systemd's): READY=1; WATCHDOG=1 only when every worker's loop counter moved since the
// last ping, and not before the interval has passed.
#include "dataplane/dpdk/service_watchdog.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace cordon::dataplane {
namespace {
using namespace std::chrono_literals;

class FakeSystemd {
 public:
  FakeSystemd() {
    path_ = (std::filesystem::temp_directory_path() /
             ("cordon-dp-notify-" + std::to_string(::getpid())))
                .string();
    ::unlink(path_.c_str());
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    path_.copy(a.sun_path, sizeof a.sun_path - 1);
    bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::setenv("NOTIFY_SOCKET", path_.c_str(), 1);
    ::setenv("WATCHDOG_USEC", "200000", 1);  // pings due every 100 ms
    ::unsetenv("WATCHDOG_PID");
  }
  ~FakeSystemd() {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  bool bound() const { return bound_; }
  // The next datagram, or "" when none is waiting within `timeout`.
  std::string next(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return {};
    char buf[512];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
};

TEST(ServiceWatchdog, PingsOnlyWhileEveryWorkerMakesProgress) {
  FakeSystemd systemd;
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
