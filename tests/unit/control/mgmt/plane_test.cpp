#include "control/mgmt/plane.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>

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

}  // namespace
}  // namespace cordon::control::mgmt
