// Vendor sessions in controld with fakes: what reaches the dataplane (the sessions the
// device segment admits), on create, revoke, expiry and after a dataplane restart.
#include "control/mgmt/vendor.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "tests/unit/control/fake_dataplane_link.h"
#include "tests/unit/control/test_support.h"

namespace cordon::control::mgmt {
namespace {
namespace json = boost::json;

constexpr int64_t kNow = 1'800'000'000'000;
constexpr const char* kKey = "hJMu0ekIJQLY8t3fXPNNZRzSW/tqnmpb6FZePJnQBXc=";

class VendorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_.emplace(store::Store::open(dir_.str()).value());
    policy_.emplace(*store_, dataplane_);
    ASSERT_TRUE(
        policy_->apply(testing::example("lab.json"), {"alice", "unix"}, "", std::nullopt).ok());
    ASSERT_TRUE(
        wireguard_.ensure_interface({"wg-cordon", 51820, "/nonexistent", "10.99.0.1/24"}).ok());
    nft::TableSpec table;
    table.settings.interface = "mgmt0";
    table.settings.wireguard_interface = "wg-cordon";
    table.settings.admin_networks = {nft::Cidr::parse("10.60.0.0/24").value()};
    ASSERT_TRUE(firewall_.apply_table(table).ok());
    vendors_.emplace(*store_, wireguard_, firewall_, *policy_, "10.99.0");
    vendors_->set_dataplane(&dataplane_, [this] { return service_address_; });
  }
  Result<store::VendorSession> create(int duration_s, json::array ports = {104},
                                      int64_t now_ms = kNow) {
    return vendors_->create(json::object{{"public_key", kKey},
                                         {"device", "ct-1"},
                                         {"ports", std::move(ports)},
                                         {"duration_seconds", duration_s}},
                            {"alice", "unix"}, now_ms);
  }
  json::array pushed() { return json::parse(dataplane_.vendor_sessions).as_array(); }
  static int64_t wall() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  testing::ScratchDir dir_{"cordon-vendor"};
  std::optional<store::Store> store_;
  testing::FakeDataplaneLink dataplane_;
  std::optional<policy::PolicyService> policy_;
  wireguard::FakeWireGuardBackend wireguard_;
  nft::FakeFirewallBackend firewall_;
  std::optional<VendorAccess> vendors_;
  std::string service_address_ = "10.50.0.250";
};

TEST_F(VendorTest, CreatePushesTheSessionWithTheServiceAddress) {
  Result<store::VendorSession> s = create(600, {104, 11112});
  ASSERT_TRUE(s.ok()) << s.error().message;
  const json::array sessions = pushed();
  ASSERT_EQ(sessions.size(), 1u);
  const json::object& o = sessions[0].as_object();
  EXPECT_EQ(o.at("id").as_int64(), s.value().id);
  EXPECT_EQ(o.at("service_address").as_string(), "10.50.0.250");
  EXPECT_EQ(o.at("device").as_string(), "ct-1");
  EXPECT_EQ(json::serialize(o.at("ports")), "[104,11112]");
  EXPECT_EQ(o.at("expires_unix_ms").as_int64(), kNow + 600'000);
}

TEST_F(VendorTest, RevokeAndExpiryPushTheListWithoutTheSession) {
  Result<store::VendorSession> s = create(600);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(pushed().size(), 1u);
  ASSERT_TRUE(vendors_->revoke(s.value().id, {"alice", "unix"}).ok());
  EXPECT_TRUE(pushed().empty());

  ASSERT_TRUE(create(5).ok());
  ASSERT_EQ(pushed().size(), 1u);
  Result<int> ended = vendors_->expire(kNow + 5'000);
  ASSERT_TRUE(ended.ok());
  EXPECT_EQ(ended.value(), 1);
  EXPECT_TRUE(pushed().empty());
}

TEST_F(VendorTest, ASessionPastItsEndDoesNotRefuseTheKeysNextOne) {
  // `vendor list` leaves a session out from its end time; the expiry pass closes it within
  // a second. A new session for the same key in between is not refused as a second one.
  Result<store::VendorSession> first = create(5);
  ASSERT_TRUE(first.ok());
  Result<store::VendorSession> refused = create(600, {104}, kNow + 4'999);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "conflict");
  Result<store::VendorSession> second = create(600, {104}, kNow + 5'000);
  ASSERT_TRUE(second.ok()) << second.error().message;
  const json::array sessions = pushed();
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0].at("id").as_int64(), second.value().id);
  // The first one was ended: the store holds only the second open.
  Result<std::vector<store::VendorSession>> open = store_->open_vendor_sessions();
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open.value().size(), 1u);
  EXPECT_EQ(open.value()[0].id, second.value().id);
  EXPECT_EQ(vendors_->expire(kNow + 5'000).value(), 0);
}

TEST_F(VendorTest, ARestartedDataplaneGetsTheSessionsAgainAtTheNextPush) {
  ASSERT_TRUE(create(600).ok());
  dataplane_.unreachable = true;
  EXPECT_FALSE(vendors_->push_to_dataplane(kNow + 1'000).ok());
  dataplane_.unreachable = false;
  dataplane_.restart_empty();
  ASSERT_TRUE(vendors_->push_to_dataplane(kNow + 1'000).ok());
  EXPECT_EQ(pushed().size(), 1u);
  // A session past its expiry is not pushed, even before expire() ended it.
  ASSERT_TRUE(vendors_->push_to_dataplane(kNow + 600'000).ok());
  EXPECT_TRUE(pushed().empty());
}

TEST_F(VendorTest, WithoutAServiceAddressTheDataplaneAdmitsNoSession) {
  service_address_.clear();
  ASSERT_TRUE(create(600).ok());
  EXPECT_TRUE(pushed().empty());
}

// The peer outlives its session by the grace, without any grant: the vendor's next
// segment on an open connection still arrives, and the firewall answers it with a reset.
TEST_F(VendorTest, AnEndedSessionsPeerStaysWithoutGrantsForTheResetGrace) {
  auto peer_keys = [this] {
    std::vector<std::string> keys;
    const std::vector<wireguard::PeerStatus> peers = wireguard_.list_peers().value();
    for (const auto& p : peers) keys.push_back(p.public_key);
    return keys;
  };
  const int64_t wall = VendorTest::wall();
  Result<store::VendorSession> s = vendors_->create(
      json::object{
          {"public_key", kKey}, {"device", "ct-1"}, {"ports", {104}}, {"duration_seconds", 600}},
      {"alice", "unix"}, wall);
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_FALSE(firewall_.read_table().value().vendor_access.empty());
  ASSERT_TRUE(vendors_->revoke(s.value().id, {"alice", "unix"}).ok());
  EXPECT_TRUE(firewall_.read_table().value().vendor_access.empty());  // nothing reachable
  EXPECT_EQ(peer_keys(), std::vector<std::string>{kKey});             // resets still arrive
  ASSERT_TRUE(vendors_->expire(wall + 1'000).ok());
  EXPECT_EQ(peer_keys(), std::vector<std::string>{kKey});
  ASSERT_TRUE(vendors_->expire(wall + VendorAccess::kResetGraceMs + 60'000).ok());
  EXPECT_TRUE(peer_keys().empty());

  // Expiry: the same, counted from the expiry.
  ASSERT_TRUE(create(5).ok());
  ASSERT_EQ(vendors_->expire(kNow + 5'000).value(), 1);
  EXPECT_EQ(peer_keys(), std::vector<std::string>{kKey});
  ASSERT_TRUE(vendors_->expire(kNow + 5'000 + VendorAccess::kResetGraceMs).ok());
  EXPECT_TRUE(peer_keys().empty());

  // A key that became a management peer meanwhile keeps its peer.
  ASSERT_TRUE(create(5).ok());
  ASSERT_EQ(vendors_->expire(kNow + 5'000).value(), 1);
  const std::vector<wireguard::ManagementPeer> admins{
      {"noc", kKey, nft::Cidr::parse("10.99.0.200").value(), {}, {}}};
  vendors_->set_management_peers([&] { return admins; });
  ASSERT_TRUE(vendors_->expire(kNow + 5'000 + VendorAccess::kResetGraceMs).ok());
  EXPECT_EQ(peer_keys(), std::vector<std::string>{kKey});
}

TEST_F(VendorTest, RestoreRemovesPeersOfNoSession) {
  ASSERT_TRUE(wireguard_.set_peer({kKey, {nft::Cidr::parse("10.99.0.9").value()}, {}, {}}).ok());
  ASSERT_TRUE(vendors_->restore(kNow).ok());
  EXPECT_TRUE(wireguard_.list_peers().value().empty());
  // A running session's peer stays.
  ASSERT_TRUE(create(600).ok());
  ASSERT_TRUE(vendors_->restore(kNow + 1'000).ok());
  EXPECT_EQ(wireguard_.list_peers().value().size(), 1u);
}

TEST_F(VendorTest, ManagementPeersKeysAndAddressesAreNotGivenToVendors) {
  wireguard::ManagementPeer admin{"noc", kKey, nft::Cidr::parse("10.99.0.2").value(), {}, {}};
  vendors_->set_management_peers([&] { return std::vector<wireguard::ManagementPeer>{admin}; });
  Result<store::VendorSession> same_key = create(600);
  ASSERT_FALSE(same_key.ok());
  EXPECT_EQ(same_key.error().code, "conflict");
  EXPECT_EQ(same_key.error().path, "/public_key");
  // Another key gets a tunnel address the admin does not use.
  admin.public_key = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
  Result<store::VendorSession> s = create(600);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s.value().tunnel_address, "10.99.0.3");
}

}  // namespace
}  // namespace cordon::control::mgmt
