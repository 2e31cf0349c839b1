// The service port's kernel side with a fake link backend: controld puts the service
// address on the egress interface, repairs it when the interface was recreated or
// changed, reports a missing interface once, and follows settings changes.
#include "control/mgmt/service_port.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "control/mgmt/plane.h"
#include "tests/unit/control/test_support.h"

namespace cordon::control::mgmt {
namespace {
namespace json = boost::json;

nft::ManagementFirewallSettings settings(const char* address = "10.50.0.250",
                                         unsigned prefix = 24) {
  json::object o = json::parse(R"({"interface":"mgmt0","wireguard_interface":"wg0",
      "vendor_egress_interface":"svc0","admin_networks":["10.60.0.0/24"]})")
                       .as_object();
  if (address != nullptr) {
    o["vendor_service_address"] = address;
    o["vendor_service_prefix_length"] = prefix;
  }
  return nft::parse_settings(o).value();
}

link::InterfaceAddress address(const char* text) {
  link::InterfaceAddress a;
  const std::string s(text);
  const auto slash = s.find('/');
  EXPECT_EQ(inet_pton(AF_INET, s.substr(0, slash).c_str(), a.address.data()), 1);
  a.prefix_length = static_cast<unsigned>(std::stoul(s.substr(slash + 1)));
  return a;
}

// A freshly created tap: down, no address, the kernel's defaults.
link::LinkState fresh_tap() {
  link::LinkState l;
  l.tx_checksum_offload = true;
  return l;
}

json::object parse(const std::string& event) {
  return json::parse(event).as_object();
}

TEST(ServicePort, PutsTheServiceAddressOnAFreshInterfaceAndIsolatesIt) {
  link::FakeLinkBackend links;
  links.links["svc0"] = fresh_tap();
  ServicePort port(links);
  Result<std::vector<std::string>> r = port.ensure(settings());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(links.calls, (std::vector<std::string>{
                             "isolate svc0", "add_address svc0 10.50.0.250/24", "set_up svc0"}));
  const link::LinkState& l = links.links["svc0"];
  EXPECT_EQ(l.ipv4, std::vector<link::InterfaceAddress>{address("10.50.0.250/24")});
  EXPECT_TRUE(l.up && l.arp_ignore && l.ipv6_disabled && !l.tx_checksum_offload);
  EXPECT_EQ(r.value().size(), 3u);

  // Already right: nothing is touched.
  links.calls.clear();
  ASSERT_TRUE(port.ensure(settings()).ok());
  EXPECT_TRUE(links.calls.empty());
}

TEST(ServicePort, RemovesEveryOtherAddressAndFollowsASettingsChange) {
  link::FakeLinkBackend links;
  links.links["svc0"] = fresh_tap();
  ServicePort port(links);
  ASSERT_TRUE(port.ensure(settings()).ok());
  links.links["svc0"].ipv4.push_back(address("192.168.7.1/24"));  // made by hand
  links.calls.clear();
  ASSERT_TRUE(port.ensure(settings("10.50.0.251", 25)).ok());
  EXPECT_EQ(links.links["svc0"].ipv4,
            std::vector<link::InterfaceAddress>{address("10.50.0.251/25")});
  EXPECT_EQ(links.calls, (std::vector<std::string>{"remove_address svc0 10.50.0.250/24",
                                                   "remove_address svc0 192.168.7.1/24",
                                                   "add_address svc0 10.50.0.251/25"}));
}

TEST(ServicePort, WithoutAServiceAddressNothingIsTouched) {
  link::FakeLinkBackend links;  // not even an interface
  ServicePort port(links);
  Result<std::vector<std::string>> r = port.ensure(settings(nullptr));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.value().empty());
  EXPECT_TRUE(links.calls.empty());
  EXPECT_TRUE(port.check(settings(nullptr)).empty());
}

TEST(ServicePort, AMissingInterfaceIsReportedOnceAndItsReturnOnce) {
  link::FakeLinkBackend links;
  ServicePort port(links);
  Result<std::vector<std::string>> r = port.ensure(settings());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "not_found");
  EXPECT_NE(r.error().message.find("svc0 is missing"), std::string::npos) << r.error().message;

  std::vector<std::string> events = port.check(settings());
  ASSERT_EQ(events.size(), 1u);
  json::object e = parse(events[0]);
  EXPECT_EQ(e.at("kind"), "service-port");
  EXPECT_EQ(e.at("interface"), "svc0");
  EXPECT_EQ(e.at("state"), "missing");
  EXPECT_TRUE(port.check(settings()).empty());  // still missing: said already

  // The dataplane (re)creates it: configured, reported once.
  links.links["svc0"] = fresh_tap();
  events = port.check(settings());
  ASSERT_EQ(events.size(), 1u);
  e = parse(events[0]);
  EXPECT_EQ(e.at("state"), "configured");
  EXPECT_NE(e.at("detail").as_string().find("added 10.50.0.250/24"), std::string::npos);
  EXPECT_TRUE(port.check(settings()).empty());

  // Recreated again (a dataplane restart): repaired and reported.
  links.links["svc0"] = fresh_tap();
  events = port.check(settings());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(parse(events[0]).at("state"), "configured");
}

TEST(ServicePort, ARefusedStepIsAnErrorAndRetriedAtTheNextCheck) {
  link::FakeLinkBackend links;
  links.links["svc0"] = fresh_tap();
  links.fail = "add_address";
  ServicePort port(links);
  std::vector<std::string> events = port.check(settings());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(parse(events[0]).at("state"), "error");
  EXPECT_TRUE(links.links["svc0"].ipv4.empty());
  events = port.check(settings());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(parse(events[0]).at("state"), "configured");
  EXPECT_EQ(links.links["svc0"].ipv4,
            std::vector<link::InterfaceAddress>{address("10.50.0.250/24")});
}

// In the plane: checked when the service port is set, after a settings change, and at
// every check_service_port().
TEST(ServicePort, ThePlaneChecksAtStartAfterAChangeAndOnItsTick) {
  testing::ScratchDir dir{"cordon-service-port"};
  store::Store store = store::Store::open(dir.str()).value();
  nft::FakeFirewallBackend firewall;
  link::FakeLinkBackend links;
  links.links["svc0"] = fresh_tap();
  ManagementPlane plane(store, firewall);
  ASSERT_TRUE(plane.start(settings()).ok());
  std::vector<std::string> reported;
  plane.set_service_port(&links, [&](const std::vector<std::string>& events) {
    reported.insert(reported.end(), events.begin(), events.end());
  });
  EXPECT_EQ(links.links["svc0"].ipv4,
            std::vector<link::InterfaceAddress>{address("10.50.0.250/24")});
  EXPECT_EQ(reported.size(), 1u);

  ASSERT_TRUE(plane.change(settings("10.50.0.249"), {"alice", "unix"}).ok());
  EXPECT_EQ(links.links["svc0"].ipv4,
            std::vector<link::InterfaceAddress>{address("10.50.0.249/24")});
  EXPECT_EQ(reported.size(), 2u);

  links.links["svc0"] = fresh_tap();  // the dataplane restarted
  plane.check_service_port();
  EXPECT_EQ(links.links["svc0"].ipv4,
            std::vector<link::InterfaceAddress>{address("10.50.0.249/24")});
  EXPECT_EQ(reported.size(), 3u);
}

// Settings stored by a build before vendor_service_prefix_length: the start-up file's
// prefix is taken for the same address; for another address they stay refused.
TEST(ServicePort, StoredSettingsWithoutThePrefixTakeTheStartUpFilesPrefix) {
  testing::ScratchDir dir{"cordon-service-port"};
  store::Store store = store::Store::open(dir.str()).value();
  nft::FakeFirewallBackend firewall;
  json::object old = json::value_from(nft::to_json(settings())).as_object();
  old.erase("vendor_service_prefix_length");
  ASSERT_TRUE(store.set_setting("management", json::serialize(old)).ok());
  {
    ManagementPlane plane(store, firewall);
    Status st = plane.start(settings("10.50.0.251"));
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().path, "/vendor_service_prefix_length");
  }
  ManagementPlane plane(store, firewall);
  Status st = plane.start(settings("10.50.0.250", 25));
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(plane.settings().value().vendor_service_address, "10.50.0.250");
  EXPECT_EQ(plane.settings().value().vendor_service_prefix_length, 25u);
}

}  // namespace
}  // namespace cordon::control::mgmt
