#include "control/mgmt/plane.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>
#include <map>

#include "tests/unit/control/test_support.h"

namespace cordon::control::mgmt {
namespace {
namespace json = boost::json;

nft::ManagementFirewallSettings settings(const std::string& admin) {
  return nft::parse_settings(
             json::parse(R"({"interface":"mgmt0","external_interface":"wan0","admin_networks":[")" +
                         admin + R"("]})"))
      .value();
}

class PlaneTest : public ::testing::Test {
 protected:
  void SetUp() override { store_.emplace(store::Store::open(dir_.str()).value()); }
  testing::ScratchDir dir_{"cordon-plane"};
  std::optional<store::Store> store_;
  nft::FakeFirewallBackend firewall_;
};

TEST_F(PlaneTest, StartInstallsVerifiesAndRemembersTheSettings) {
  {
    ManagementPlane plane(*store_, firewall_);
    ASSERT_TRUE(plane.start(settings("10.60.0.0/24")).ok());
    EXPECT_TRUE(plane.differences().value().empty());
  }
  // A restart uses the stored settings, not the start-up file's.
  ManagementPlane plane(*store_, firewall_);
  ASSERT_TRUE(plane.change(settings("10.70.0.0/24"), {"alice", "unix"}).ok());
  ManagementPlane again(*store_, firewall_);
  ASSERT_TRUE(again.start(settings("10.60.0.0/24")).ok());
  EXPECT_EQ(again.settings().value().admin_networks[0].to_string(), "10.70.0.0/24");
}

TEST_F(PlaneTest, WithoutSettingsThereIsNothingToStart) {
  ManagementPlane plane(*store_, firewall_);
  EXPECT_EQ(plane.start(std::nullopt).error().code, "not_found");
}

TEST_F(PlaneTest, AChangeThatLocksOutTheCallerIsRefused) {
  ManagementPlane plane(*store_, firewall_);
  ASSERT_TRUE(plane.start(settings("10.60.0.0/24")).ok());
  const int applies = firewall_.applies;
  Status s = plane.change(settings("10.70.0.0/24"), {"web:alice", "10.60.0.5"});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "conflict");
  EXPECT_EQ(s.error().path, "/admin_networks");
  EXPECT_EQ(firewall_.applies, applies);  // nothing installed
  EXPECT_EQ(plane.settings().value().admin_networks[0].to_string(), "10.60.0.0/24");
  EXPECT_EQ(store_->audit_entries(0, 10).value().back().record.outcome.rfind("refused", 0), 0u);
  // Keeping the caller's network is fine.
  EXPECT_TRUE(plane.change(settings("10.60.0.0/16"), {"web:alice", "10.60.0.5"}).ok());
}

TEST_F(PlaneTest, AFailedInstallLeavesThePreviousTable) {
  ManagementPlane plane(*store_, firewall_);
  ASSERT_TRUE(plane.start(settings("10.60.0.0/24")).ok());
  firewall_.fail_next_apply = Error{"io", "netlink: injected failure"};
  EXPECT_FALSE(plane.change(settings("10.70.0.0/24"), {"alice", "unix"}).ok());
  EXPECT_TRUE(plane.differences().value().empty());
  EXPECT_EQ(plane.settings().value().admin_networks[0].to_string(), "10.60.0.0/24");
}

TEST_F(PlaneTest, ATamperedTableIsReasserted) {
  ManagementPlane plane(*store_, firewall_);
  ASSERT_TRUE(plane.start(settings("10.60.0.0/24")).ok());
  EXPECT_FALSE(plane.reassert().value());
  ASSERT_TRUE(firewall_.delete_table().ok());  // someone removed it
  EXPECT_FALSE(plane.differences().value().empty());
  EXPECT_TRUE(plane.reassert().value());
  EXPECT_TRUE(plane.differences().value().empty());
}

// --- remote-management peers ---

constexpr const char* kApplianceKey = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
constexpr const char* kAdminKey = "hJMu0ekIJQLY8t3fXPNNZRzSW/tqnmpb6FZePJnQBXc=";
constexpr const char* kOtherKey = "GKrdKlLdT2UdsTlBJwXqNPUthpoGt5o5i5ChCl5bvmQ=";
constexpr int64_t kNow = 1'795'000'000'123;  // 2026-11-18T11:06:40.123Z
// The tunnel as controld brings it up (its port comes from the settings).
const wireguard::InterfaceConfig kTunnel{"wg-cordon", 0, "/key", "10.99.0.1/24"};

class PeersTest : public PlaneTest {
 protected:
  void SetUp() override {
    PlaneTest::SetUp();
    plane_.emplace(*store_, firewall_);
    ASSERT_TRUE(plane_->start(tunnel_settings("10.60.0.0/24")).ok());
    ASSERT_TRUE(plane_->set_wireguard(&wireguard_, kTunnel, kApplianceKey).ok());
  }
  static nft::ManagementFirewallSettings tunnel_settings(const std::string& admin) {
    return tunnel_settings(admin, 51820);
  }
  static nft::ManagementFirewallSettings tunnel_settings(const std::string& admin,
                                                         uint16_t wireguard_port,
                                                         uint16_t https_port = 8443) {
    return nft::parse_settings(json::parse(R"({"interface":"mgmt0","external_interface":"wan0",
        "wireguard_interface":"wg-cordon","admin_networks":[")" +
                                           admin + R"("],"wireguard_port":)" +
                                           std::to_string(wireguard_port) + R"(,"https_port":)" +
                                           std::to_string(https_port) + "}"))
        .value();
  }
  static json::value peer(const std::string& name, const std::string& key,
                          const std::string& address) {
    return json::object{{"name", name}, {"public_key", key}, {"tunnel_address", address}};
  }
  // The allowed IPs of each WireGuard peer, by key.
  std::map<std::string, std::vector<std::string>> wg_peers() {
    std::map<std::string, std::vector<std::string>> out;
    const std::vector<wireguard::PeerStatus> peers = wireguard_.list_peers().value();
    for (const auto& p : peers) out[p.public_key] = p.allowed_ips;
    return out;
  }
  bool table_has(const std::string& line) {
    const auto lines = firewall_.read_table().value().lines;
    return std::find(lines.begin(), lines.end(), line) != lines.end();
  }
  std::string last_audit() {
    const auto entries = store_->audit_entries(0, 1000).value();
    const auto& r = entries.back().record;
    return r.action + " " + r.target + " " + r.outcome;
  }
  wireguard::FakeWireGuardBackend wireguard_;
  std::optional<ManagementPlane> plane_;
};

TEST_F(PeersTest, APeerJoinsTheTunnelAndTheHttpsSetAndSurvivesARestart) {
  Result<wireguard::ManagementPeer> p =
      plane_->add_peer(peer("noc", kAdminKey, "10.99.0.200"), {"alice", "unix"}, kNow);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(wg_peers()[kAdminKey], std::vector<std::string>{"10.99.0.200/32"});
  EXPECT_TRUE(table_has("element mgmt_peers 0a6300c8"));
  EXPECT_TRUE(plane_->differences().value().empty());
  EXPECT_EQ(last_audit(), "management.peer.add management-peer/noc ok");
  // When and by whom, from the clock and the actor (the audit entry's actor).
  EXPECT_EQ(p.value().added_at, "2026-11-18T11:06:40.123Z");
  EXPECT_EQ(p.value().added_by, "alice");
  EXPECT_EQ(store_->audit_entries(0, 1000).value().back().record.actor.name, "alice");
  ASSERT_EQ(plane_->peers().size(), 1u);
  EXPECT_EQ(plane_->peers()[0], p.value());
  // Not an admin network: the settings are unchanged.
  EXPECT_EQ(plane_->settings().value().admin_networks.size(), 1u);

  // A restarted controld installs the peer's rule and re-adds it to a fresh interface.
  wireguard::FakeWireGuardBackend fresh;
  nft::FakeFirewallBackend firewall;
  ManagementPlane again(*store_, firewall);
  ASSERT_TRUE(again.start(std::nullopt).ok());
  ASSERT_EQ(again.peers().size(), 1u);
  EXPECT_EQ(again.peers()[0], p.value());
  EXPECT_EQ(again.peers()[0].added_at, "2026-11-18T11:06:40.123Z");
  EXPECT_EQ(again.peers()[0].added_by, "alice");
  ASSERT_TRUE(again.set_wireguard(&fresh, kTunnel, kApplianceKey).ok());
  ASSERT_EQ(fresh.list_peers().value().size(), 1u);
  EXPECT_EQ(fresh.list_peers().value()[0].public_key, kAdminKey);
  const auto lines = firewall.read_table().value().lines;
  EXPECT_NE(std::find(lines.begin(), lines.end(), "element mgmt_peers 0a6300c8"), lines.end());
}

TEST_F(PeersTest, BadPeersAreRefusedWithTheFieldAndChangeNothing) {
  ASSERT_TRUE(
      plane_->add_peer(peer("noc", kAdminKey, "10.99.0.200"), {"alice", "unix"}, kNow).ok());
  const int applies = firewall_.applies;
  // A vendor session holds kOtherKey at 10.99.0.2.
  store::VendorSession v;
  v.public_key = kOtherKey;
  v.device = "ct-1";
  v.device_ip = "10.50.0.10";
  v.ports = {104};
  v.tunnel_address = "10.99.0.2";
  v.expires_ms = 4'000'000'000'000;
  ASSERT_TRUE(
      store_->add_vendor_session(v, {{"alice", "unix"}, "vendor.create", "", "ok", "", "", ""})
          .ok());
  constexpr const char* kFresh = "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd28=";
  struct Case {
    json::value body;
    const char* code;
    const char* path;
  };
  const Case cases[] = {
      {json::array{}, "invalid", ""},
      {json::object{{"name", "x"}, {"public_key", kFresh}}, "invalid", "/tunnel_address"},
      {peer("bad name", kFresh, "10.99.0.201"), "invalid", "/name"},
      {peer("noc", kFresh, "10.99.0.201"), "conflict", "/name"},
      {peer("b", kAdminKey, "10.99.0.201"), "conflict", "/public_key"},
      {peer("b", kFresh, "10.99.0.200"), "conflict", "/tunnel_address"},
      {peer("b", kApplianceKey, "10.99.0.201"), "invalid", "/public_key"},
      {peer("b", kFresh, "10.99.0.1"), "invalid", "/tunnel_address"},    // the appliance's
      {peer("b", kFresh, "10.99.0.0"), "invalid", "/tunnel_address"},    // network
      {peer("b", kFresh, "10.99.0.255"), "invalid", "/tunnel_address"},  // broadcast
      {peer("b", kFresh, "10.60.0.7"), "invalid", "/tunnel_address"},    // not the tunnel's
      {peer("b", kOtherKey, "10.99.0.201"), "conflict", "/public_key"},  // a vendor's key
      {peer("b", kFresh, "10.99.0.2"), "conflict", "/tunnel_address"},   // a vendor's address
      // When and by whom are the appliance's to say.
      {json::object{{"name", "b"},
                    {"public_key", kFresh},
                    {"tunnel_address", "10.99.0.201"},
                    {"added_at", "2020-01-01T00:00:00.000Z"}},
       "invalid", "/added_at"},
      {json::object{{"name", "b"},
                    {"public_key", kFresh},
                    {"tunnel_address", "10.99.0.201"},
                    {"added_by", "someone-else"}},
       "invalid", "/added_by"},
  };
  for (const auto& c : cases) {
    Result<wireguard::ManagementPeer> r = plane_->add_peer(c.body, {"alice", "unix"}, kNow);
    ASSERT_FALSE(r.ok()) << json::serialize(c.body);
    EXPECT_EQ(r.error().code, c.code) << json::serialize(c.body) << ": " << r.error().message;
    EXPECT_EQ(r.error().path, c.path) << json::serialize(c.body) << ": " << r.error().message;
  }
  EXPECT_EQ(firewall_.applies, applies);
  EXPECT_EQ(plane_->peers().size(), 1u);
  EXPECT_EQ(wg_peers().size(), 1u);
}

TEST_F(PeersTest, AWebUserIsRecordedAsTheAuditLogNamesThem) {
  Result<wireguard::ManagementPeer> p = plane_->add_peer(peer("noc", kAdminKey, "10.99.0.200"),
                                                         {"web:bob", "10.60.0.5"}, kNow + 1000);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p.value().added_by, "web:bob");
  EXPECT_EQ(p.value().added_at, "2026-11-18T11:06:41.123Z");
  const auto entries = store_->audit_entries(0, 1000).value();
  EXPECT_EQ(entries.back().record.action, "management.peer.add");
  EXPECT_EQ(entries.back().record.actor.name, *p.value().added_by);
}

TEST_F(PeersTest, TheTunnelNetworkIsKnownOnceWireGuardIs) {
  EXPECT_EQ(plane_->tunnel_network(), "10.99.0.0/24");
  EXPECT_EQ(plane_->appliance_tunnel_address(), "10.99.0.1");
  ManagementPlane without(*store_, firewall_);
  ASSERT_TRUE(without.start(std::nullopt).ok());
  EXPECT_FALSE(without.tunnel_network().has_value());
  EXPECT_FALSE(without.appliance_tunnel_address().has_value());
}

// Peers stored by a build before added_at/added_by still load, without them, and a new
// peer beside them gets both.
TEST_F(PeersTest, PeersStoredWithoutWhenAndWhoStillLoad) {
  ASSERT_TRUE(
      store_
          ->set_setting("management_peers", std::string(R"([{"name":"old","public_key":")") +
                                                kAdminKey + R"(","tunnel_address":"10.99.0.200"}])")
          .ok());
  wireguard::FakeWireGuardBackend fresh;
  nft::FakeFirewallBackend firewall;
  ManagementPlane again(*store_, firewall);
  ASSERT_TRUE(again.start(std::nullopt).ok());
  ASSERT_TRUE(again.set_wireguard(&fresh, kTunnel, kApplianceKey).ok());
  ASSERT_EQ(again.peers().size(), 1u);
  EXPECT_EQ(again.peers()[0].name, "old");
  EXPECT_FALSE(again.peers()[0].added_at.has_value());
  EXPECT_FALSE(again.peers()[0].added_by.has_value());
  EXPECT_EQ(fresh.list_peers().value().size(), 1u);

  ASSERT_TRUE(again.add_peer(peer("new", kOtherKey, "10.99.0.201"), {"carol", "unix"}, kNow).ok());
  const json::value stored = json::parse(*store_->setting("management_peers").value());
  ASSERT_EQ(stored.as_array().size(), 2u);
  EXPECT_FALSE(stored.as_array()[0].as_object().contains("added_at"));
  EXPECT_EQ(stored.as_array()[1].at("added_by"), "carol");
  EXPECT_EQ(stored.as_array()[1].at("added_at"), "2026-11-18T11:06:40.123Z");
}

// A stored peer that is not what a peer must be stops the start with the entry's path.
TEST_F(PeersTest, AnUnreadableStoredPeerIsReportedWithItsPath) {
  ASSERT_TRUE(store_
                  ->set_setting("management_peers",
                                std::string(R"([{"name":"old","public_key":")") + kAdminKey +
                                    R"(","tunnel_address":"10.99.0.200","added_at":5}])")
                  .ok());
  nft::FakeFirewallBackend firewall;
  ManagementPlane again(*store_, firewall);
  Status st = again.start(std::nullopt);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().path, "/0/added_at") << st.error().message;
}

TEST_F(PeersTest, AFailedInstallTakesThePeerOutOfTheTunnelAgain) {
  firewall_.fail_next_apply = Error{"io", "netlink: injected failure"};
  EXPECT_FALSE(
      plane_->add_peer(peer("noc", kAdminKey, "10.99.0.200"), {"alice", "unix"}, kNow).ok());
  EXPECT_TRUE(plane_->peers().empty());
  EXPECT_TRUE(wg_peers().empty());
  EXPECT_TRUE(plane_->differences().value().empty());
  EXPECT_FALSE(table_has("element mgmt_peers 0a6300c8"));
  // And a failed WireGuard step adds nothing to the table.
  wireguard_.fail_next = Error{"io", "wg: injected failure"};
  const int applies = firewall_.applies;
  EXPECT_FALSE(
      plane_->add_peer(peer("noc", kAdminKey, "10.99.0.200"), {"alice", "unix"}, kNow).ok());
  EXPECT_EQ(firewall_.applies, applies);
}

TEST_F(PeersTest, RemovingAPeerCutsItUnlessTheCallerIsConnectedThroughIt) {
  ASSERT_TRUE(
      plane_->add_peer(peer("noc", kAdminKey, "10.99.0.200"), {"alice", "unix"}, kNow).ok());
  // The caller connected through this very peer would lock itself out.
  Status own = plane_->remove_peer("noc", {"web:bob", "10.99.0.200"});
  ASSERT_FALSE(own.ok());
  EXPECT_EQ(own.error().code, "conflict");
  EXPECT_EQ(last_audit(),
            "management.peer.remove management-peer/noc refused: would lock out 10.99.0.200");
  EXPECT_EQ(wg_peers().size(), 1u);
  EXPECT_TRUE(table_has("element mgmt_peers 0a6300c8"));

  EXPECT_EQ(plane_->remove_peer("nobody", {"alice", "unix"}).error().code, "not_found");
  ASSERT_TRUE(plane_->remove_peer("noc", {"web:alice", "10.60.0.5"}).ok());
  EXPECT_TRUE(wg_peers().empty());
  EXPECT_FALSE(table_has("element mgmt_peers 0a6300c8"));
  EXPECT_TRUE(plane_->differences().value().empty());
  EXPECT_EQ(last_audit(), "management.peer.remove management-peer/noc ok");
  ManagementPlane again(*store_, firewall_);
  ASSERT_TRUE(again.start(std::nullopt).ok());
  EXPECT_TRUE(again.peers().empty());
}

TEST_F(PeersTest, APeerCountsAsAnAdminNetworkForTheLockOutRule) {
  ASSERT_TRUE(
      plane_->add_peer(peer("noc", kAdminKey, "10.99.0.200"), {"alice", "unix"}, kNow).ok());
  // An admin working through the tunnel may change the admin networks...
  EXPECT_TRUE(plane_->change(tunnel_settings("10.70.0.0/24"), {"web:bob", "10.99.0.200"}).ok());
  // ...but an address that is neither is still refused.
  EXPECT_EQ(
      plane_->change(tunnel_settings("10.80.0.0/24"), {"web:eve", "10.99.0.201"}).error().code,
      "conflict");
  // Peers need the tunnel: the settings may not drop it while there are any.
  Status no_tunnel = plane_->change(settings("10.70.0.0/24"), {"alice", "unix"});
  ASSERT_FALSE(no_tunnel.ok());
  EXPECT_EQ(no_tunnel.error().path, "/wireguard_interface");
  EXPECT_TRUE(plane_->differences().value().empty());
}

// The settings are the one place the tunnel's port is set: the interface listens where the
// firewall opens, from the start and after every change that moves it.
TEST_F(PeersTest, TheTunnelListensOnTheSettingsPortAndFollowsIt) {
  ASSERT_TRUE(wireguard_.interface.has_value());
  EXPECT_EQ(wireguard_.interface->listen_port, 51820);
  EXPECT_EQ(wireguard_.interface->name, "wg-cordon");
  EXPECT_EQ(wireguard_.interface->tunnel_address, "10.99.0.1/24");

  ASSERT_TRUE(
      plane_->change(tunnel_settings("10.60.0.0/24", 51999), {"web:alice", "10.60.0.5"}).ok());
  EXPECT_EQ(wireguard_.interface->listen_port, 51999);
  EXPECT_EQ(plane_->settings().value().wireguard_port, 51999);
  EXPECT_TRUE(plane_->differences().value().empty());

  // A port WireGuard cannot take changes nothing: neither the firewall nor the stored settings.
  wireguard_.fail_next = Error{"io", "wg: injected failure"};
  const int applies = firewall_.applies;
  EXPECT_FALSE(plane_->change(tunnel_settings("10.60.0.0/24", 52000), {"alice", "unix"}).ok());
  EXPECT_EQ(firewall_.applies, applies);
  EXPECT_EQ(wireguard_.interface->listen_port, 51999);
  EXPECT_EQ(plane_->settings().value().wireguard_port, 51999);
  // A firewall that refuses the change puts the port back.
  firewall_.fail_next_apply = Error{"io", "netlink: injected failure"};
  EXPECT_FALSE(plane_->change(tunnel_settings("10.60.0.0/24", 52000), {"alice", "unix"}).ok());
  EXPECT_EQ(wireguard_.interface->listen_port, 51999);
  EXPECT_EQ(plane_->settings().value().wireguard_port, 51999);
  EXPECT_TRUE(plane_->differences().value().empty());

  // A restarted controld brings the tunnel up on the stored port.
  wireguard::FakeWireGuardBackend fresh;
  nft::FakeFirewallBackend firewall;
  ManagementPlane again(*store_, firewall);
  ASSERT_TRUE(again.start(tunnel_settings("10.60.0.0/24")).ok());
  ASSERT_TRUE(again.set_wireguard(&fresh, kTunnel, kApplianceKey).ok());
  EXPECT_EQ(fresh.interface->listen_port, 51999);
}

TEST_F(PeersTest, TheSettingsMustGuardTheTunnelInterfaceThatRuns) {
  nft::ManagementFirewallSettings other = tunnel_settings("10.60.0.0/24");
  other.wireguard_interface = "wg-other";
  Status st = plane_->change(other, {"alice", "unix"});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "conflict");
  EXPECT_EQ(st.error().path, "/wireguard_interface");
  EXPECT_EQ(plane_->settings().value().wireguard_interface, "wg-cordon");
  // Closing the tunnel's port (no interface named) is allowed while no peer needs it.
  EXPECT_TRUE(plane_->change(settings("10.60.0.0/24"), {"alice", "unix"}).ok());

  // A controld started with another tunnel interface than the settings guard refuses it.
  wireguard::FakeWireGuardBackend fresh;
  nft::FakeFirewallBackend firewall;
  ManagementPlane again(*store_, firewall);
  ASSERT_TRUE(again.start(std::nullopt).ok());
  ASSERT_TRUE(again.change(tunnel_settings("10.60.0.0/24"), {"alice", "unix"}).ok());
  Status wrong =
      again.set_wireguard(&fresh, {"wg-other", 0, "/key", "10.99.0.1/24"}, kApplianceKey);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, "conflict");
  EXPECT_FALSE(fresh.interface.has_value());
  EXPECT_FALSE(again.tunnel_network().has_value());
}

// Moving the port a caller is connected to would cut that caller off: the web UI's HTTPS
// port for anyone from the web, the tunnel's port for a management peer. The appliance's
// console may move both.
TEST_F(PeersTest, ACallerCannotMoveThePortItIsConnectedTo) {
  ASSERT_TRUE(
      plane_->add_peer(peer("noc", kAdminKey, "10.99.0.200"), {"alice", "unix"}, kNow).ok());
  const int applies = firewall_.applies;
  Status https =
      plane_->change(tunnel_settings("10.60.0.0/24", 51820, 9443), {"web:alice", "10.60.0.5"});
  ASSERT_FALSE(https.ok());
  EXPECT_EQ(https.error().code, "conflict");
  EXPECT_EQ(https.error().path, "/https_port");
  EXPECT_EQ(last_audit(), "settings.management management refused: would lock out 10.60.0.5");
  Status tunnel =
      plane_->change(tunnel_settings("10.60.0.0/24", 51999), {"web:bob", "10.99.0.200"});
  ASSERT_FALSE(tunnel.ok());
  EXPECT_EQ(tunnel.error().path, "/wireguard_port");
  EXPECT_EQ(firewall_.applies, applies);
  EXPECT_EQ(wireguard_.interface->listen_port, 51820);
  EXPECT_EQ(plane_->settings().value().https_port, 8443);

  // An admin on the management LAN may move the tunnel's port (the peer dials again).
  EXPECT_TRUE(
      plane_->change(tunnel_settings("10.60.0.0/24", 51999), {"web:alice", "10.60.0.5"}).ok());
  // The console may move the HTTPS port.
  EXPECT_TRUE(plane_->change(tunnel_settings("10.60.0.0/24", 51999, 9443), {"root", "unix"}).ok());
  EXPECT_EQ(plane_->settings().value().https_port, 9443);
}

TEST_F(PlaneTest, WithoutWireGuardThereAreNoPeers) {
  ManagementPlane plane(*store_, firewall_);
  ASSERT_TRUE(plane.start(settings("10.60.0.0/24")).ok());
  EXPECT_EQ(plane
                .add_peer(json::object{{"name", "noc"},
                                       {"public_key", kAdminKey},
                                       {"tunnel_address", "10.99.0.200"}},
                          {"alice", "unix"}, kNow)
                .error()
                .code,
            "not_found");
}

}  // namespace
}  // namespace cordon::control::mgmt
