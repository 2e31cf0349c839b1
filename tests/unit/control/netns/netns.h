// Helpers for tests that need network namespaces (label `netns`, run as root).
// Namespaces are named by the test ("mgmt-..."), removed on destruction, and removed
// first if a crashed run left them behind.
//
// Threads: Enter switches the namespace of the calling thread only.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

namespace cordon::test {

inline bool is_root() {
  return geteuid() == 0;
}

// Runs a shell command, returns its exit status.
inline int sh(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}
// Runs a shell command and returns what it printed.
inline std::string sh_output(const std::string& cmd) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  if (!p) return out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p.get())) > 0) out.append(buf, n);
  return out;
}
inline void must(const std::string& cmd) {
  if (sh(cmd) != 0) throw std::runtime_error("command failed: " + cmd);
}

class Netns {
 public:
  explicit Netns(std::string name) : name_(std::move(name)) {
    sh("ip netns del " + name_ + " 2>/dev/null");
    must("ip netns add " + name_);
    must("ip -n " + name_ + " link set lo up");
  }
  ~Netns() { sh("ip netns del " + name_ + " 2>/dev/null"); }
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;
  const std::string& name() const { return name_; }
  std::string exec(const std::string& cmd) const { return "ip netns exec " + name_ + " " + cmd; }

 private:
  std::string name_;
};

// Moves the calling thread into a namespace for its lifetime; sockets opened meanwhile
// stay in that namespace.
class Enter {
 public:
  explicit Enter(const Netns& ns) : original_(open("/proc/thread-self/ns/net", O_RDONLY)) {
    const int fd = open(("/var/run/netns/" + ns.name()).c_str(), O_RDONLY);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) throw std::runtime_error("setns " + ns.name());
    close(fd);
  }
  ~Enter() {
    if (setns(original_, CLONE_NEWNET) != 0) std::abort();
    close(original_);
  }
  Enter(const Enter&) = delete;
  Enter& operator=(const Enter&) = delete;

 private:
  int original_;
};

// Polls `done` until it holds or `deadline` passes; returns its last value.
inline bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace cordon::test
