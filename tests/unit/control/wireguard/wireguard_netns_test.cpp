// WgToolBackend with wireguard-go between two namespaces (label netns, root).
//   mgmt-wg-a: veth 192.0.2.1/24, tunnel mgmt-wga 10.99.0.1/24, port 51820
//   mgmt-wg-b: veth 192.0.2.50/24, tunnel mgmt-wgb 10.99.0.2/24, port 51821
#include <gtest/gtest.h>

#include <signal.h>

#include <filesystem>

#include "control/wireguard/keys.h"
#include "control/wireguard/wireguard_backend.h"
#include "tests/unit/control/netns/netns.h"

namespace cordon::control::wireguard {
namespace {

using namespace std::chrono_literals;
using test::Enter;
using test::must;
using test::Netns;
using test::sh;
namespace fs = std::filesystem;

TEST(WireGuardNetns, TunnelCarriesTrafficUntilThePeerIsRemoved) {
  if (!test::is_root()) GTEST_SKIP() << "needs root (label netns)";
  const fs::path dir = fs::temp_directory_path() / ("cordon-wg-netns-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  // Leftovers of a crashed run: wireguard-go sockets are machine-wide.
  for (const char* n : {"mgmt-wga", "mgmt-wgb"})
    fs::remove(fs::path("/var/run/wireguard") / (std::string(n) + ".sock"));

  Netns a("mgmt-wg-a"), b("mgmt-wg-b");
  must("ip link add mgmt-wgv netns " + a.name() + " type veth peer name mgmt-wgv netns " +
       b.name());
  must("ip -n " + a.name() + " addr add 192.0.2.1/24 dev mgmt-wgv");
  must("ip -n " + b.name() + " addr add 192.0.2.50/24 dev mgmt-wgv");
  must("ip -n " + a.name() + " link set mgmt-wgv up");
  must("ip -n " + b.name() + " link set mgmt-wgv up");

  const std::string key_a = (dir / "a.key").string(), key_b = (dir / "b.key").string();
  const std::string pub_a = ensure_private_key(key_a).value();
  const std::string pub_b = ensure_private_key(key_b).value();

  WgToolBackend wg_a, wg_b;
  {
    Enter in(a);
    const Status s = wg_a.ensure_interface({"mgmt-wga", 51820, key_a, "10.99.0.1/24"});
    ASSERT_TRUE(s.ok()) << s.error().message;
    PeerConfig vendor{pub_b, {nft::Cidr::parse("10.99.0.2/32").value()}, std::nullopt, 0s};
    ASSERT_TRUE(wg_a.set_peer(vendor).ok());
  }
  {
    Enter in(b);
    const Status s = wg_b.ensure_interface({"mgmt-wgb", 51821, key_b, "10.99.0.2/24"});
    ASSERT_TRUE(s.ok()) << s.error().message;
    PeerConfig appliance{pub_a, {nft::Cidr::parse("10.99.0.1/32").value()}, "192.0.2.1:51820", 5s};
    ASSERT_TRUE(wg_b.set_peer(appliance).ok());
  }
  EXPECT_TRUE(wg_a.userspace()) << "expected wireguard-go (no kernel module on this machine)";

  // Handshake and ping through the tunnel.
  EXPECT_TRUE(
      test::wait_for([&] { return sh(b.exec("ping -c 1 -W 1 10.99.0.1 >/dev/null")) == 0; }, 20s));
  {
    Enter in(a);
    auto peers = wg_a.list_peers();
    ASSERT_TRUE(peers.ok()) << peers.error().message;
    ASSERT_EQ(peers.value().size(), 1u);
    EXPECT_EQ(peers.value()[0].public_key, pub_b);
    EXPECT_TRUE(peers.value()[0].latest_handshake.has_value());
    EXPECT_EQ(peers.value()[0].endpoint, "192.0.2.50:51821") << "learned from the handshake";
    EXPECT_GT(peers.value()[0].rx_bytes, 0u);
    // Removing the peer cuts the tunnel.
    ASSERT_TRUE(wg_a.remove_peer(pub_b).ok());
    EXPECT_TRUE(wg_a.list_peers().value().empty());
  }
  EXPECT_TRUE(
      test::wait_for([&] { return sh(b.exec("ping -c 1 -W 1 10.99.0.1 >/dev/null")) != 0; }, 10s));
  EXPECT_NE(sh(b.exec("ping -c 3 -W 1 10.99.0.1 >/dev/null")), 0) << "still answered after removal";

  {
    Enter in(a);
    ASSERT_TRUE(wg_a.remove_interface().ok());
    EXPECT_NE(sh(a.exec("ip link show mgmt-wga >/dev/null 2>&1")), 0);
  }
  {
    Enter in(b);
    ASSERT_TRUE(wg_b.remove_interface().ok());
  }
  EXPECT_FALSE(fs::exists("/var/run/wireguard/mgmt-wga.sock"));
  fs::remove_all(dir);
}

TEST(WireGuardNetns, SupervisedWireguardGoIsRestarted) {
  if (!test::is_root()) GTEST_SKIP() << "needs root (label netns)";
  const fs::path dir =
      fs::temp_directory_path() / ("cordon-wg-restart-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::remove("/var/run/wireguard/mgmt-wgr.sock");
  Netns a("mgmt-wg-r");
  Enter in(a);
  WgToolBackend wg;
  const InterfaceConfig config{"mgmt-wgr", 51830, (dir / "k").string(), "10.98.0.1/24"};
  ASSERT_TRUE(wg.ensure_interface(config).ok());
  ASSERT_TRUE(wg.userspace());
  // Kill it behind the backend's back: the interface disappears with it.
  ASSERT_GT(wg.wireguard_go_pid(), 0);
  ASSERT_EQ(kill(wg.wireguard_go_pid(), SIGKILL), 0);
  ASSERT_TRUE(test::wait_for([&] { return sh("ip link show mgmt-wgr >/dev/null 2>&1") != 0; }, 5s));
  const Status s = wg.ensure_interface(config);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(sh("ip link show mgmt-wgr >/dev/null 2>&1"), 0);
  EXPECT_EQ(sh("ip -4 addr show dev mgmt-wgr | grep -q 10.98.0.1/24"), 0);
  ASSERT_TRUE(wg.remove_interface().ok());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace cordon::control::wireguard
