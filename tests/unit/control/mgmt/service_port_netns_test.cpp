// The service port with the real RtnetlinkBackend, in a namespace of its own with a tap
// standing in for the dataplane's net_tap port (label netns, needs root).
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "control/link/link_backend.h"
#include "control/mgmt/service_port.h"
#include "tests/unit/control/netns/netns.h"

namespace cordon::control::mgmt {
namespace {
using test::Enter;
using test::Netns;
using test::sh_output;

nft::ManagementFirewallSettings settings() {
  return nft::parse_settings(boost::json::parse(R"({"interface":"mgmt0",
      "wireguard_interface":"wg0","vendor_egress_interface":"svc-t",
      "admin_networks":["10.60.0.0/24"],"vendor_service_address":"10.50.0.250",
      "vendor_service_prefix_length":24})"))
      .value();
}

TEST(ServicePortNetns, RtnetlinkConfiguresATapAndReadsItBack) {
  if (!test::is_root()) GTEST_SKIP() << "needs root (label netns)";
  Netns ns("mgmt-link-a");
  test::must(ns.exec("ip tuntap add dev svc-t mode tap"));
  test::must(ns.exec("ip addr add 192.168.7.1/24 dev svc-t"));  // made by hand: must go
  Enter in(ns);
  link::RtnetlinkBackend links;
  EXPECT_EQ(links.read("nope0").error().code, "not_found");
  Result<link::LinkState> before = links.read("svc-t");
  ASSERT_TRUE(before.ok()) << before.error().message;
  EXPECT_FALSE(before.value().up);
  ASSERT_EQ(before.value().ipv4.size(), 1u);
  EXPECT_EQ(before.value().ipv4[0].to_string(), "192.168.7.1/24");

  ServicePort port(links);
  Result<std::vector<std::string>> r = port.ensure(settings());
  ASSERT_TRUE(r.ok()) << r.error().message;
  Result<link::LinkState> after = links.read("svc-t");
  ASSERT_TRUE(after.ok()) << after.error().message;
  EXPECT_TRUE(after.value().up);
  ASSERT_EQ(after.value().ipv4.size(), 1u);
  EXPECT_EQ(after.value().ipv4[0].to_string(), "10.50.0.250/24");
  EXPECT_TRUE(after.value().arp_ignore);
  EXPECT_TRUE(after.value().ipv6_disabled);
  EXPECT_FALSE(after.value().tx_checksum_offload);

  // What ip(8) and the sysctls say.
  const std::string shown = sh_output(ns.exec("ip -4 addr show dev svc-t"));
  EXPECT_NE(shown.find("inet 10.50.0.250/24"), std::string::npos) << shown;
  EXPECT_EQ(shown.find("192.168.7.1"), std::string::npos) << shown;
  EXPECT_EQ(sh_output(ns.exec("cat /proc/sys/net/ipv4/conf/svc-t/arp_ignore")), "1\n");
  EXPECT_EQ(sh_output(ns.exec("cat /proc/sys/net/ipv6/conf/svc-t/disable_ipv6")), "1\n");

  // Right already: nothing to change.
  r = port.ensure(settings());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r.value().empty());

  // Gone (the dataplane stopped): missing.
  test::must(ns.exec("ip link del svc-t"));
  r = port.ensure(settings());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "not_found");
}

}  // namespace
}  // namespace cordon::control::mgmt
