// WireGuard as an OS side effect behind one interface (DESIGN §5).
//
// WgToolBackend drives wireguard-tools (`wg`, `ip`). Where the kernel has no WireGuard
// module (`ip link add type wireguard` fails) it starts `wireguard-go` for the interface
// and supervises it: the process lives as long as the backend, is restarted by
// ensure_interface() when it died, and is stopped by remove_interface() or the
// destructor. wireguard-go's control socket is /var/run/wireguard/NAME.sock for every
// network namespace, so interface names must be unique on the machine.
// Commands and wireguard-go run in the network namespace of the calling thread.
// Private keys reach `wg` only as a file path (never on a command line, never logged).
//
// FakeWireGuardBackend keeps the same state in memory for controld's unit tests.
//
// Threads: a backend is used by one thread at a time (controld's control thread).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "control/common/result.h"
#include "control/nft/settings.h"
#include "control/wireguard/peer.h"

namespace cordon::control::wireguard {

struct InterfaceConfig {
  std::string name;                   // e.g. "wg-cordon"; unique on the machine (see above)
  std::uint16_t listen_port = 51820;  // WireGuard binds every address; the firewall
                                      // limits where the port answers
  std::string private_key_file;       // from ensure_private_key(); 0600
  std::string tunnel_address;         // the interface's address and subnet, "10.99.0.1/24"
};

struct PeerStatus {
  std::string public_key;
  std::vector<std::string> allowed_ips;
  std::string endpoint;  // "" until known
  std::optional<std::chrono::system_clock::time_point> latest_handshake;
  std::uint64_t rx_bytes = 0;
  std::uint64_t tx_bytes = 0;
  std::chrono::seconds persistent_keepalive{0};
};

class WireGuardBackend {
 public:
  virtual ~WireGuardBackend() = default;
  // Creates the interface if needed and (re)applies key, port and address; brings it up.
  virtual Status ensure_interface(const InterfaceConfig& config) = 0;
  // Adds a peer, or updates it (allowed IPs replaced, endpoint and keepalive set).
  virtual Status set_peer(const PeerConfig& peer) = 0;
  // Removes a peer; an unknown peer is not an error.
  virtual Status remove_peer(const std::string& public_key) = 0;
  virtual Result<std::vector<PeerStatus>> list_peers() = 0;
  // Deletes the interface (and stops wireguard-go); absent is not an error.
  virtual Status remove_interface() = 0;
};

class WgToolBackend final : public WireGuardBackend {
 public:
  struct Tools {
    std::string wg = "wg";
    std::string ip = "ip";
    std::string wireguard_go = "wireguard-go";
    std::string run_dir = "/var/run/wireguard";  // wireguard-go's control sockets
  };
  WgToolBackend() = default;
  explicit WgToolBackend(Tools tools) : tools_(std::move(tools)) {}
  ~WgToolBackend() override;
  WgToolBackend(const WgToolBackend&) = delete;
  WgToolBackend& operator=(const WgToolBackend&) = delete;

  Status ensure_interface(const InterfaceConfig& config) override;
  Status set_peer(const PeerConfig& peer) override;
  Status remove_peer(const std::string& public_key) override;
  Result<std::vector<PeerStatus>> list_peers() override;
  Status remove_interface() override;

  // Whether this backend runs wireguard-go for the interface (no kernel module).
  bool userspace() const { return go_pid_ > 0; }
  // The supervised wireguard-go process, or -1.
  pid_t wireguard_go_pid() const { return go_pid_; }

 private:
  Status start_wireguard_go(const std::string& name);
  void stop_wireguard_go();
  bool link_exists(const std::string& name);
  Tools tools_;
  std::string name_;
  pid_t go_pid_ = -1;
};

// Runs argv (no shell), returns exit status, stdout and stderr. Exposed for tests.
struct CommandResult {
  int status = -1;  // exit code, or -1 when it could not run / was killed
  std::string out;
  std::string err;
};
CommandResult run_command(const std::vector<std::string>& argv);

// "10.99.0.1/24" or "fd00:99::1/64": an address with a prefix length.
bool valid_interface_address(const std::string& address);

class FakeWireGuardBackend final : public WireGuardBackend {
 public:
  Status ensure_interface(const InterfaceConfig& config) override;
  Status set_peer(const PeerConfig& peer) override;
  Status remove_peer(const std::string& public_key) override;
  Result<std::vector<PeerStatus>> list_peers() override;
  Status remove_interface() override;

  // Test controls: pretend a handshake happened; make the next call fail.
  void handshake(const std::string& public_key, std::chrono::system_clock::time_point when);
  std::optional<Error> fail_next;
  std::optional<InterfaceConfig> interface;  // as last ensured

 private:
  Status take_failure();
  std::map<std::string, PeerStatus> peers_;
};

}  // namespace cordon::control::wireguard
