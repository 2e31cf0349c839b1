#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <thread>

#include "control/wireguard/keys.h"
#include "control/wireguard/wireguard_backend.h"

extern char** environ;

namespace cordon::control::wireguard {
namespace {

Error tool_error(const std::vector<std::string>& argv, const CommandResult& r) {
  // argv never holds a secret (keys go by file), so it may be shown.
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  std::string err = r.err;
  while (!err.empty() && err.back() == '\n') err.pop_back();
  return Error{"io", "`" + cmd + "` failed (exit " + std::to_string(r.status) + "): " + err, ""};
}

std::vector<char*> c_argv(std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (auto& a : argv) out.push_back(a.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

CommandResult run_command(const std::vector<std::string>& argv_in) {
  CommandResult r;
  std::vector<std::string> argv = argv_in;
  std::vector<char*> args = c_argv(argv);
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return r;
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return r;
  }
  const pid_t pid = fork();
  if (pid == 0) {  // child: only async-signal-safe calls until exec
    const int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  if (pid < 0) {
    close(out[0]);
    close(err[0]);
    return r;
  }
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[4096];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

bool valid_interface_address(const std::string& address) {
  const auto slash = address.find('/');
  if (slash == std::string::npos || slash + 1 >= address.size() || address.size() - slash > 4) {
    return false;
  }
  const std::string host = address.substr(0, slash), prefix = address.substr(slash + 1);
  const bool v6 = host.find(':') != std::string::npos;
  unsigned char buf[16];
  if (inet_pton(v6 ? AF_INET6 : AF_INET, host.c_str(), buf) != 1) return false;
  if (!std::all_of(prefix.begin(), prefix.end(), ::isdigit)) return false;
  return std::stoul(prefix) <= (v6 ? 128u : 32u);
}

WgToolBackend::~WgToolBackend() {
  stop_wireguard_go();
}

bool WgToolBackend::link_exists(const std::string& name) {
  return run_command({tools_.ip, "link", "show", "dev", name}).status == 0;
}

Status WgToolBackend::start_wireguard_go(const std::string& name) {
  // Environment for the child, prepared before fork: ours plus foreground mode.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "WG_PROCESS_FOREGROUND=", 22) != 0) env_strings.emplace_back(*e);
  }
  env_strings.emplace_back("WG_PROCESS_FOREGROUND=1");
  std::vector<char*> envp = c_argv(env_strings);
  std::vector<std::string> argv = {tools_.wireguard_go, "-f", name};
  std::vector<char*> args = c_argv(argv);

  const pid_t pid = fork();
  if (pid == 0) {
    const int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execvpe(args[0], args.data(), envp.data());
    _exit(127);
  }
  if (pid < 0)
    return Error{"io", std::string("starting wireguard-go: ") + std::strerror(errno), ""};
  go_pid_ = pid;

  // Ready when its control socket answers and the tun device exists.
  const std::string sock = tools_.run_dir + "/" + name + ".sock";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(go_pid_, &status, WNOHANG) == go_pid_) {
      go_pid_ = -1;
      return Error{"io",
                   "wireguard-go for " + name + " exited (status " +
                       std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")",
                   ""};
    }
    struct stat st {};
    if (stat(sock.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && link_exists(name)) return ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop_wireguard_go();
  return Error{"unavailable", "wireguard-go for " + name + " did not come up within 10 s", ""};
}

void WgToolBackend::stop_wireguard_go() {
  if (go_pid_ <= 0) return;
  kill(go_pid_, SIGTERM);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (waitpid(go_pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(go_pid_, SIGKILL);
      waitpid(go_pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  go_pid_ = -1;
}

Status WgToolBackend::ensure_interface(const InterfaceConfig& c) {
  if (!nft::valid_interface_name(c.name)) {
    return Error{"invalid", "\"" + c.name + "\" is not a valid interface name", "/name"};
  }
  if (c.listen_port == 0) return Error{"invalid", "listen port must be 1..65535", "/listen_port"};
  if (!valid_interface_address(c.tunnel_address)) {
    return Error{"invalid", "\"" + c.tunnel_address + "\" is not an address/prefix",
                 "/tunnel_address"};
  }
  if (!name_.empty() && name_ != c.name) {
    return Error{"conflict", "this backend already manages " + name_, "/name"};
  }
  // The key file must be ours and private before its path goes to `wg`.
  if (auto key = ensure_private_key(c.private_key_file); !key) {
    return key.error().context("private key");
  }
  // A supervised wireguard-go that died took its interface with it: start again.
  if (go_pid_ > 0) {
    int status = 0;
    if (waitpid(go_pid_, &status, WNOHANG) == go_pid_) go_pid_ = -1;
  }
  if (!link_exists(c.name)) {
    const auto add = run_command({tools_.ip, "link", "add", "dev", c.name, "type", "wireguard"});
    if (add.status != 0) {  // no kernel module: userspace implementation
      if (auto s = start_wireguard_go(c.name); !s) return s;
    }
  }
  name_ = c.name;
  const std::vector<std::vector<std::string>> steps = {
      {tools_.wg, "set", c.name, "listen-port", std::to_string(c.listen_port), "private-key",
       c.private_key_file},
      {tools_.ip, "address", "replace", c.tunnel_address, "dev", c.name},
      {tools_.ip, "link", "set", "dev", c.name, "up"},
  };
  for (const auto& argv : steps) {
    const auto r = run_command(argv);
    if (r.status != 0) return tool_error(argv, r);
  }
  return ok();
}

Status WgToolBackend::set_peer(const PeerConfig& p) {
  if (name_.empty())
    return Error{"not_found", "no WireGuard interface (ensure_interface first)", ""};
  if (!valid_public_key(p.public_key)) return Error{"invalid", "bad public key", "/public_key"};
  std::string ips;
  for (const auto& c : p.allowed_ips) ips += (ips.empty() ? "" : ",") + c.to_string();
  std::vector<std::string> argv = {tools_.wg,    "set",         name_, "peer",
                                   p.public_key, "allowed-ips", ips};
  if (p.endpoint) {
    if (!valid_endpoint(*p.endpoint)) return Error{"invalid", "bad endpoint", "/endpoint"};
    argv.insert(argv.end(), {"endpoint", *p.endpoint});
  }
  argv.insert(argv.end(),
              {"persistent-keepalive", p.persistent_keepalive.count() == 0
                                           ? std::string("off")
                                           : std::to_string(p.persistent_keepalive.count())});
  const auto r = run_command(argv);
  if (r.status != 0) return tool_error(argv, r);
  // Routes for the peer's networks outside the interface's own subnet.
  for (const auto& c : p.allowed_ips) {
    const std::vector<std::string> route = {
        tools_.ip, c.ipv6 ? "-6" : "-4", "route", "replace", c.to_string(), "dev", name_};
    const auto rr = run_command(route);
    if (rr.status != 0) return tool_error(route, rr);
  }
  return ok();
}

Status WgToolBackend::remove_peer(const std::string& public_key) {
  if (name_.empty())
    return Error{"not_found", "no WireGuard interface (ensure_interface first)", ""};
  if (!valid_public_key(public_key)) return Error{"invalid", "bad public key", "/public_key"};
  // Its routes go too, unless another peer still uses them.
  auto peers = list_peers();
  if (!peers) return peers.error();
  std::vector<std::string> own;
  for (const auto& p : peers.value())
    if (p.public_key == public_key) own = p.allowed_ips;
  const std::vector<std::string> argv = {tools_.wg, "set", name_, "peer", public_key, "remove"};
  const auto r = run_command(argv);
  if (r.status != 0) return tool_error(argv, r);
  for (const auto& ip : own) {
    run_command({tools_.ip, "route", "del", ip, "dev", name_});  // may be the connected route
  }
  return ok();
}

Result<std::vector<PeerStatus>> WgToolBackend::list_peers() {
  if (name_.empty())
    return Error{"not_found", "no WireGuard interface (ensure_interface first)", ""};
  const std::vector<std::string> argv = {tools_.wg, "show", name_, "dump"};
  CommandResult r = run_command(argv);
  // The first line of a dump holds the interface's private key: wipe it at once.
  const auto first_newline = r.out.find('\n');
  sodium_memzero(r.out.data(), first_newline == std::string::npos ? r.out.size() : first_newline);
  if (r.status != 0) return tool_error(argv, r);
  std::vector<PeerStatus> peers;
  std::istringstream lines(first_newline == std::string::npos ? ""
                                                              : r.out.substr(first_newline + 1));
  std::string line;
  while (std::getline(lines, line)) {
    std::vector<std::string> f;
    std::istringstream fields(line);
    std::string field;
    while (std::getline(fields, field, '\t')) f.push_back(field);
    if (f.size() != 8) return Error{"io", "unexpected line in `wg show dump`", ""};
    PeerStatus p;
    p.public_key = f[0];
    if (f[2] != "(none)") p.endpoint = f[2];
    std::istringstream ips(f[3]);
    while (std::getline(ips, field, ','))
      if (field != "(none)") p.allowed_ips.push_back(field);
    const long long hs = std::stoll(f[4]);
    if (hs > 0)
      p.latest_handshake = std::chrono::system_clock::time_point(std::chrono::seconds(hs));
    p.rx_bytes = std::stoull(f[5]);
    p.tx_bytes = std::stoull(f[6]);
    if (f[7] != "off") p.persistent_keepalive = std::chrono::seconds(std::stol(f[7]));
    peers.push_back(std::move(p));
  }
  return peers;
}

Status WgToolBackend::remove_interface() {
  if (name_.empty()) return ok();
  if (link_exists(name_)) {
    const std::vector<std::string> argv = {tools_.ip, "link", "del", "dev", name_};
    const auto r = run_command(argv);
    if (r.status != 0 && go_pid_ <= 0) return tool_error(argv, r);
  }
  stop_wireguard_go();
  name_.clear();
  return ok();
}

}  // namespace cordon::control::wireguard
