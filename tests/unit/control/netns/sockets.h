// Small TCP helpers for namespace tests: sockets open in the calling thread's namespace.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>

namespace cordon::test {

inline sockaddr_in v4(const std::string& addr, std::uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, addr.c_str(), &sa.sin_addr);
  return sa;
}

// A listening socket on addr:port, or -1.
inline int listen_tcp(const std::string& addr, std::uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const sockaddr_in sa = v4(addr, port);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 || listen(fd, 16) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Connects from src to dst:port; the connected socket, or -1 when the handshake did not
// complete within `deadline` (dropped SYNs) or was refused.
inline int connect_tcp(const std::string& src, const std::string& dst, std::uint16_t port,
                       std::chrono::milliseconds deadline) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const sockaddr_in from = v4(src, 0), to = v4(dst, port);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&from), sizeof from) != 0) {
    close(fd);
    return -1;
  }
  if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  int err = 0;
  socklen_t len = sizeof err;
  if (poll(&p, 1, static_cast<int>(deadline.count())) != 1 ||
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Accepts one pending connection within `deadline`, or -1.
inline int accept_tcp(int listener, std::chrono::milliseconds deadline) {
  pollfd p{listener, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(deadline.count())) != 1) return -1;
  return accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
}

// True when `fd` has bytes to read within `deadline`.
inline bool readable(int fd, std::chrono::milliseconds deadline) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, static_cast<int>(deadline.count())) == 1;
}

}  // namespace cordon::test
