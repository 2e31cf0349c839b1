#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "control/nft/settings.h"

namespace cordon::control::nft {
namespace {

boost::json::value good() {
  return boost::json::parse(R"({
    "interface": "mgmt0", "wireguard_interface": "wg-cordon",
    "vendor_egress_interface": "svc0",
    "admin_networks": ["10.60.0.5/32", "10.60.1.0/24", "fd00:60::/64"],
    "https_port": 8443, "wireguard_port": 51820,
    "icmp_echo_per_second": 5, "log_drops": true})");
}

Error rejected(boost::json::value v) {
  auto r = parse_settings(v);
  EXPECT_FALSE(r.ok());
  return r.ok() ? Error{} : r.error();
}

TEST(NftSettings, GoodSettingsParseAndRoundTrip) {
  auto r = parse_settings(good());
  ASSERT_TRUE(r.ok()) << r.error().message << " at " << r.error().path;
  const auto& s = r.value();
  EXPECT_EQ(s.interface, "mgmt0");
  EXPECT_EQ(s.wireguard_interface, "wg-cordon");
  ASSERT_EQ(s.admin_networks.size(), 3u);
  EXPECT_EQ(s.admin_networks[0].to_string(), "10.60.0.5/32");
  EXPECT_TRUE(s.admin_networks[2].ipv6);
  EXPECT_EQ(s.admin_networks[2].to_string(), "fd00:60::/64");
  EXPECT_EQ(s.admin_networks[0].address_string(), "10.60.0.5");
  EXPECT_EQ(s.admin_networks[2].address_string(), "fd00:60::");
  auto again = parse_settings(to_json(s));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value(), s);
}

TEST(NftSettings, DefaultsApplyToOmittedFields) {
  auto r =
      parse_settings(boost::json::parse(R"({"interface":"mgmt0","admin_networks":["10.60.0.5"]})"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().https_port, 8443);
  EXPECT_EQ(r.value().wireguard_port, 51820);
  EXPECT_TRUE(r.value().log_drops);
  EXPECT_EQ(r.value().wireguard_interface, "");
  EXPECT_EQ(r.value().admin_networks[0].prefix, 32u) << "a bare address is a /32";
}

TEST(NftSettings, EveryRejectionNamesTheField) {
  struct Case {
    const char* field;
    boost::json::value value;
    const char* path;
    const char* says;
  };
  const Case cases[] = {
      {"admin_networks", boost::json::parse(R"(["10.60.0.0/24","10.1.0.0/16","10.60.0.5/24"])"),
       "/admin_networks/2", "host bits"},
      {"admin_networks", boost::json::parse(R"(["10.60.0.0/33"])"), "/admin_networks/0", "prefix"},
      {"admin_networks", boost::json::parse(R"(["fd00::/129"])"), "/admin_networks/0", "prefix"},
      {"admin_networks", boost::json::parse(R"(["mgmt.example"])"), "/admin_networks/0",
       "not an IPv4"},
      {"admin_networks", boost::json::parse(R"([42])"), "/admin_networks/0", "network"},
      {"admin_networks", boost::json::array{std::string_view("10.60.0.5\0/8", 12)},
       "/admin_networks/0", "NUL"},
      {"admin_networks", boost::json::parse(R"([])"), "/admin_networks", "at least one"},
      {"admin_networks", "10.60.0.0/24", "/admin_networks", "array"},
      {"interface", "", "/interface", "interface name"},
      {"interface", "averyveryverylongname", "/interface", "interface name"},
      {"interface", "eth0/1", "/interface", "interface name"},
      {"wireguard_interface", "mgmt0", "/wireguard_interface", "differ"},
      {"https_port", 0, "/https_port", "out of range"},
      {"https_port", 70000, "/https_port", "out of range"},
      {"https_port", "8443", "/https_port", "integer"},
      {"wireguard_port", -1, "/wireguard_port", "integer"},
      {"icmp_echo_per_second", 0, "/icmp_echo_per_second", "out of range"},
      {"log_drops", "yes", "/log_drops", "true or false"},
      {"sshd", true, "/sshd", "unknown field"},
  };
  for (const auto& c : cases) {
    auto v = good();
    v.as_object()[c.field] = c.value;
    const Error e = rejected(v);
    EXPECT_EQ(e.code, "invalid") << c.field;
    EXPECT_EQ(e.path, c.path) << c.field << " = " << boost::json::serialize(c.value);
    EXPECT_NE(e.message.find(c.says), std::string::npos) << e.message;
  }
}

// What peers dial: the host an admin sets and the settings' port, in the form a WireGuard
// configuration's Endpoint takes.
TEST(NftSettings, WireGuardEndpointHost) {
  auto v = good();
  EXPECT_EQ(wireguard_endpoint(parse_settings(v).value()), "") << "not set: nothing to show";
  for (const auto& [host, endpoint] :
       {std::pair{"vpn.hospital.example", "vpn.hospital.example:51820"},
        std::pair{"VPN-1.example.", "VPN-1.example.:51820"}, std::pair{"gateway", "gateway:51820"},
        std::pair{"192.0.2.1", "192.0.2.1:51820"},
        std::pair{"2001:db8::1", "[2001:db8::1]:51820"}}) {
    v.as_object()["wireguard_endpoint_host"] = host;
    auto r = parse_settings(v);
    ASSERT_TRUE(r.ok()) << host << ": " << r.error().message;
    EXPECT_EQ(wireguard_endpoint(r.value()), endpoint);
    EXPECT_EQ(parse_settings(to_json(r.value())).value(), r.value()) << host;
  }
  for (const boost::json::value& bad :
       {boost::json::value("vpn.example:51820"), boost::json::value("-vpn.example"),
        boost::json::value("vpn-.example"), boost::json::value("vpn..example"),
        boost::json::value("vpn_1.example"), boost::json::value("10.0.0.256"),
        boost::json::value(""), boost::json::value(std::string(64, 'a') + ".example"),
        boost::json::value(std::string_view("192.0.2.1\0evil", 14)),
        boost::json::value("[2001:db8::1]"), boost::json::value(42)}) {
    v.as_object()["wireguard_endpoint_host"] = bad;
    const Error e = rejected(v);
    EXPECT_EQ(e.path, "/wireguard_endpoint_host") << boost::json::serialize(bad);
    EXPECT_NE(e.message.find("DNS name"), std::string::npos) << e.message;
  }
  // Only with a tunnel to dial.
  v.as_object()["wireguard_endpoint_host"] = "vpn.hospital.example";
  v.as_object().erase("wireguard_interface");
  v.as_object().erase("vendor_egress_interface");
  const Error e = rejected(v);
  EXPECT_EQ(e.path, "/wireguard_endpoint_host");
  EXPECT_NE(e.message.find("wireguard_interface"), std::string::npos) << e.message;
}

TEST(NftSettings, VendorServiceAddress) {
  boost::json::object o = boost::json::parse(R"({"interface":"mgmt0","wireguard_interface":"wg0",
      "vendor_egress_interface":"svc0","admin_networks":["10.60.0.0/24"],
      "vendor_service_address":"10.50.0.250","vendor_service_prefix_length":24})")
                              .as_object();
  auto s = parse_settings(o);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s.value().vendor_service_address, "10.50.0.250");
  EXPECT_EQ(s.value().vendor_service_prefix_length, 24u);
  EXPECT_EQ(parse_settings(to_json(s.value())).value(), s.value());
  for (const char* bad : {"10.50.0", "10.50.0.250/24", "127.0.0.1", "0.0.0.0", "224.0.0.1",
                          "255.255.255.255", "169.254.1.1", "10.60.0.7", "fd00::1"}) {
    boost::json::object c = o;
    c["vendor_service_address"] = bad;
    auto r = parse_settings(c);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().path, "/vendor_service_address") << bad;
  }
  // The prefix: required with the address, 8..30, the address a host of it.
  struct PrefixCase {
    const char* address;
    boost::json::value prefix;  // null: absent
    const char* path;
    const char* says;
  };
  for (const PrefixCase& c : {
           PrefixCase{"10.50.0.250", nullptr, "/vendor_service_prefix_length", "required"},
           PrefixCase{"10.50.0.250", 7, "/vendor_service_prefix_length", "8"},
           PrefixCase{"10.50.0.250", 31, "/vendor_service_prefix_length", "30"},
           PrefixCase{"10.50.0.250", "24", "/vendor_service_prefix_length", ""},
           PrefixCase{"10.50.0.0", 24, "/vendor_service_address", "network or broadcast"},
           PrefixCase{"10.50.0.255", 24, "/vendor_service_address", "network or broadcast"},
           PrefixCase{"10.50.0.251", 30, "/vendor_service_address", "network or broadcast"},
       }) {
    boost::json::object v = o;
    v["vendor_service_address"] = c.address;
    if (c.prefix.is_null())
      v.erase("vendor_service_prefix_length");
    else
      v["vendor_service_prefix_length"] = c.prefix;
    auto r = parse_settings(v);
    ASSERT_FALSE(r.ok()) << c.address << " " << boost::json::serialize(c.prefix);
    EXPECT_EQ(r.error().path, c.path) << c.address;
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << r.error().message;
  }
  boost::json::object no_address = o;
  no_address.erase("vendor_service_address");
  auto without = parse_settings(no_address);
  ASSERT_FALSE(without.ok());
  EXPECT_EQ(without.error().path, "/vendor_service_prefix_length");

  boost::json::object no_egress = o;
  no_egress.erase("vendor_egress_interface");
  auto r = parse_settings(no_egress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().path, "/vendor_service_address");
  EXPECT_NE(r.error().message.find("vendor_egress_interface"), std::string::npos);
}

TEST(NftSettings, MissingRequiredFieldsAndNonObjects) {
  auto v = good();
  v.as_object().erase("interface");
  EXPECT_EQ(rejected(v).path, "/interface");
  v = good();
  v.as_object().erase("admin_networks");
  EXPECT_EQ(rejected(v).path, "/admin_networks");
  EXPECT_EQ(rejected(boost::json::parse("[1]")).path, "");
  v = good();
  v.as_object()["wireguard_interface"] = nullptr;
  EXPECT_EQ(rejected(v).path, "/vendor_egress_interface") << "vendor access needs the tunnel";
}

TEST(NftSettings, AdmitsTellsWhetherAnAddressMayReachHttps) {
  const auto s = parse_settings(good()).value();
  EXPECT_TRUE(admits(s, "10.60.0.5"));
  EXPECT_FALSE(admits(s, "10.60.0.6"));
  EXPECT_TRUE(admits(s, "10.60.1.200"));
  EXPECT_TRUE(admits(s, "fd00:60::1234"));
  EXPECT_FALSE(admits(s, "fd00:61::1"));
  EXPECT_FALSE(admits(s, "10.60.1.0/24")) << "an address, not a network";
  EXPECT_FALSE(admits(s, "garbage"));
}

TEST(NftSettings, VendorAccessElement) {
  auto e = VendorAccessElement::make("10.99.0.2", "10.50.0.10", 104);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e.value().to_string(), "10.99.0.2 . 10.50.0.10 . 104");
  EXPECT_FALSE(VendorAccessElement::make("fd00::2", "10.50.0.10", 104).ok());
  EXPECT_FALSE(VendorAccessElement::make("10.99.0.2", "10.50.0.300", 104).ok());
  EXPECT_FALSE(VendorAccessElement::make("10.99.0.2", "10.50.0.10", 0).ok());
}

}  // namespace
}  // namespace cordon::control::nft
