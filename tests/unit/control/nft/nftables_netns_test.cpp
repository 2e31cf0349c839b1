// NftablesBackend against the kernel, in namespaces of our own (label netns, root).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <atomic>
#include <regex>
#include <thread>

#include "control/nft/firewall_backend.h"
#include "tests/unit/control/netns/netns.h"
#include "tests/unit/control/netns/sockets.h"

namespace cordon::control::nft {
namespace {

using namespace std::chrono_literals;
using test::Enter;
using test::must;
using test::Netns;
using test::sh;
using test::sh_output;

VendorAccessElement element(const char* tunnel, const char* device, std::uint16_t port) {
  auto e = VendorAccessElement::make(tunnel, device, port);
  EXPECT_TRUE(e.ok());
  return e.value();
}

TableSpec spec_a() {
  TableSpec spec;
  spec.settings.interface = "mgmt-m0";
  spec.settings.wireguard_interface = "mgmt-wg0";
  spec.settings.vendor_egress_interface = "mgmt-dev";
  spec.settings.admin_networks = {Cidr::parse("10.60.0.5/32").value(),
                                  Cidr::parse("10.60.1.0/24").value(),
                                  Cidr::parse("fd00:60::/64").value()};
  return spec;
}

TableSpec spec_b() {
  TableSpec spec = spec_a();
  spec.settings.https_port = 9443;
  spec.settings.log_drops = false;
  spec.settings.admin_networks.push_back(Cidr::parse("10.70.0.0/16").value());
  spec.vendor_access = {{element("10.99.0.2", "10.50.0.10", 104), 3600s}};
  return spec;
}

// Packets counted by the input chain's final drop rule, as nft(8) prints them.
long drop_count(const Netns& ns) {
  const std::string out = sh_output(ns.exec("nft list chain inet cordon_mgmt input"));
  std::smatch m;
  static const std::regex re("counter packets ([0-9]+) bytes [0-9]+ drop comment \"count drops\"");
  return std::regex_search(out, m, re) ? std::stol(m[1]) : -1;
}

class NftablesNetns : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::is_root()) GTEST_SKIP() << "needs root (label netns)";
  }
};

TEST_F(NftablesNetns, AppliedTableReadsBackAsIntendedAndNftUnderstandsIt) {
  Netns host("mgmt-nft-a");
  Enter in(host);
  NftablesBackend fw;
  ASSERT_TRUE(fw.read_table().ok());
  EXPECT_FALSE(fw.read_table().value().present);

  const TableSpec spec = spec_b();
  ASSERT_TRUE(fw.apply_table(spec).ok());
  const Status v = verify(fw, spec);
  EXPECT_TRUE(v.ok()) << v.error().message;

  // nft(8) parses what we built: sets print with their types and elements.
  const std::string listing = sh_output(host.exec("nft list table inet cordon_mgmt"));
  EXPECT_NE(listing.find("policy drop"), std::string::npos) << listing;
  EXPECT_NE(listing.find("10.60.1.0/24"), std::string::npos) << listing;
  EXPECT_NE(listing.find("10.99.0.2 . 10.50.0.10 . 104"), std::string::npos) << listing;
  EXPECT_NE(listing.find("tcp dport 9443"), std::string::npos) << listing;

  // A different intention is reported, line by line.
  const Status other = verify(fw, spec_a());
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code, "mismatch");
  EXPECT_NE(other.error().message.find("unexpected: vendor access 10.99.0.2 . 10.50.0.10 . 104"),
            std::string::npos)
      << other.error().message;
  EXPECT_NE(other.error().message.find("missing: rule input"), std::string::npos);

  // A change made behind our back is found.
  must(host.exec("nft delete element inet cordon_mgmt admin_v4 '{ 10.60.1.0/24 }'"));
  const Status tampered = verify(fw, spec);
  ASSERT_FALSE(tampered.ok());
  EXPECT_NE(tampered.error().message.find("missing: element admin_v4 0a3c0100"), std::string::npos)
      << tampered.error().message;

  ASSERT_TRUE(fw.delete_table().ok());
  EXPECT_FALSE(fw.read_table().value().present);
  EXPECT_TRUE(fw.delete_table().ok()) << "deleting an absent table is not an error";
}

TEST_F(NftablesNetns, ThousandReplacementsAreAtomicAndLeaveOtherTablesAlone) {
  Netns host("mgmt-nft-b");
  must(host.exec("nft add table inet other"));
  must(host.exec("nft add chain inet other input '{ type filter hook input priority 10; }'"));
  must(host.exec("nft add rule inet other input tcp dport 22 counter accept"));
  const std::string other_before = sh_output(host.exec("nft list table inet other"));

  const TableSpec a = spec_a(), b = spec_b();
  const TableDescription want_a = describe_intended(a), want_b = describe_intended(b);

  // A reader in the same namespace sees table A or table B, whole, every time.
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0}, mixed{0};
  std::string first_mix;
  std::thread reader([&] {
    Enter in(host);
    NftablesBackend fw;
    while (!stop) {
      auto d = fw.read_table();
      if (!d.ok() || !d.value().present) continue;
      ++reads;
      if (!compare(want_a, d.value()).empty() && !compare(want_b, d.value()).empty()) {
        if (mixed++ == 0) {
          for (const auto& l : compare(want_a, d.value())) first_mix += l.substr(0, 400) + "\n";
        }
      }
    }
  });

  {
    Enter in(host);
    NftablesBackend fw;
    for (int i = 0; i < 1000; ++i) {
      const Status s = fw.apply_table(i % 2 == 0 ? a : b);
      ASSERT_TRUE(s.ok()) << "replacement " << i << ": " << s.error().message;
    }
    stop = true;
    reader.join();
    const Status v = verify(fw, b);  // the last one applied
    EXPECT_TRUE(v.ok()) << v.error().message;
  }
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(mixed.load(), 0) << first_mix;
  EXPECT_EQ(sh_output(host.exec("nft list table inet other")), other_before);
  // Exactly two tables: ours and the other one.
  EXPECT_EQ(sh_output(host.exec("nft list tables")), "table inet other\ntable inet cordon_mgmt\n");
}

TEST_F(NftablesNetns, RejectedTransactionChangesNothing) {
  Netns host("mgmt-nft-c");
  Enter in(host);
  NftablesBackend fw;
  const TableSpec good = spec_b();
  ASSERT_TRUE(fw.apply_table(good).ok());
  TableSpec bad = spec_a();
  bad.vendor_access = {{element("10.99.0.2", "10.50.0.10", 104), 9h}};
  const Status s = fw.apply_table(bad);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "invalid");
  const Status v = verify(fw, good);
  EXPECT_TRUE(v.ok()) << v.error().message;
}

// host: mgmt-m0 10.60.0.1/24 <-> admin side 10.60.0.5 (admin) and 10.60.0.66 (not admin)
TEST_F(NftablesNetns, OnlyAdminNetworksReachHttps) {
  Netns host("mgmt-nft-h"), lan("mgmt-nft-l");
  must("ip link add mgmt-m0 netns " + host.name() + " type veth peer name mgmt-m0p netns " +
       lan.name());
  must("ip -n " + host.name() + " addr add 10.60.0.1/24 dev mgmt-m0");
  must("ip -n " + host.name() + " link set mgmt-m0 up");
  must("ip -n " + lan.name() + " addr add 10.60.0.5/24 dev mgmt-m0p");
  must("ip -n " + lan.name() + " addr add 10.60.0.66/24 dev mgmt-m0p");
  must("ip -n " + lan.name() + " link set mgmt-m0p up");

  int https = -1, ssh = -1;
  {
    Enter in(host);
    https = test::listen_tcp("10.60.0.1", 8443);
    ssh = test::listen_tcp("10.60.0.1", 22);
    NftablesBackend fw;
    ASSERT_TRUE(fw.apply_table(spec_a()).ok());
  }
  ASSERT_GE(https, 0);
  ASSERT_GE(ssh, 0);
  Enter in(lan);
  // The admin host gets through (poll: the veth may still be coming up).
  int c = -1;
  ASSERT_TRUE(test::wait_for(
      [&] {
        c = test::connect_tcp("10.60.0.5", "10.60.0.1", 8443, 500ms);
        return c >= 0;
      },
      10s));
  close(c);
  const long drops_before = drop_count(host);
  ASSERT_GE(drops_before, 0);
  // Another host of the same segment is dropped, and so is every other service.
  EXPECT_LT(test::connect_tcp("10.60.0.66", "10.60.0.1", 8443, 1500ms), 0);
  EXPECT_LT(test::connect_tcp("10.60.0.5", "10.60.0.1", 22, 1500ms), 0);
  EXPECT_TRUE(test::wait_for([&] { return drop_count(host) >= drops_before + 2; }, 5s));
  // Ping is answered.
  EXPECT_EQ(sh(lan.exec("ping -c 1 -W 2 -I 10.60.0.66 10.60.0.1 >/dev/null")), 0);
  close(https);
  close(ssh);
}

// vendor (10.99.0.2) --mgmt-wg0-- host --mgmt-dev-- device (10.50.0.10, ports 104 and 105)
TEST_F(NftablesNetns, VendorElementsOpenExactlyDeviceAndPortUntilTheyExpire) {
  Netns host("mgmt-nft-r"), vendor("mgmt-nft-v"), device("mgmt-nft-d");
  must("ip link add mgmt-wg0 netns " + host.name() + " type veth peer name mgmt-wg0p netns " +
       vendor.name());
  must("ip link add mgmt-dev netns " + host.name() + " type veth peer name mgmt-devp netns " +
       device.name());
  must("ip -n " + host.name() + " addr add 10.99.0.1/24 dev mgmt-wg0");
  must("ip -n " + host.name() + " addr add 10.50.0.1/24 dev mgmt-dev");
  must("ip -n " + host.name() + " link set mgmt-wg0 up");
  must("ip -n " + host.name() + " link set mgmt-dev up");
  must(host.exec("sysctl -qw net.ipv4.ip_forward=1"));
  must("ip -n " + vendor.name() + " addr add 10.99.0.2/24 dev mgmt-wg0p");
  must("ip -n " + vendor.name() + " link set mgmt-wg0p up");
  must("ip -n " + vendor.name() + " route add default via 10.99.0.1");
  must("ip -n " + device.name() + " addr add 10.50.0.10/24 dev mgmt-devp");
  must("ip -n " + device.name() + " addr add 10.50.0.11/24 dev mgmt-devp");
  must("ip -n " + device.name() + " link set mgmt-devp up");
  must("ip -n " + device.name() + " route add default via 10.50.0.1");

  int dicom = -1, other_port = -1, other_device = -1, mgmt = -1;
  {
    Enter in(device);
    dicom = test::listen_tcp("10.50.0.10", 104);
    other_port = test::listen_tcp("10.50.0.10", 105);
    other_device = test::listen_tcp("10.50.0.11", 104);
  }
  NftablesBackend fw;
  {
    Enter in(host);
    mgmt = test::listen_tcp("10.99.0.1", 8443);
    ASSERT_TRUE(fw.apply_table(spec_a()).ok());
    ASSERT_TRUE(fw.add_vendor_access({element("10.99.0.2", "10.50.0.10", 104)}, 4s).ok());
  }
  ASSERT_TRUE(dicom >= 0 && other_port >= 0 && other_device >= 0 && mgmt >= 0);

  int session = -1;
  {
    Enter in(vendor);
    ASSERT_TRUE(test::wait_for(
        [&] {
          session = test::connect_tcp("10.99.0.2", "10.50.0.10", 104, 500ms);
          return session >= 0;
        },
        3s))
        << "vendor could not reach the device port it was granted";
    EXPECT_LT(test::connect_tcp("10.99.0.2", "10.50.0.10", 105, 1000ms), 0) << "other port";
    EXPECT_LT(test::connect_tcp("10.99.0.2", "10.50.0.11", 104, 1000ms), 0) << "other device";
    EXPECT_LT(test::connect_tcp("10.99.0.2", "10.99.0.1", 8443, 1000ms), 0) << "management";
  }
  const int accepted = test::accept_tcp(dicom, 2s);
  ASSERT_GE(accepted, 0);
  ASSERT_EQ(write(session, "a", 1), 1);
  EXPECT_TRUE(test::readable(accepted, 2s)) << "data of the granted session arrives";
  char byte;
  ASSERT_EQ(read(accepted, &byte, 1), 1);

  // The element expires by itself (kernel timeout), and the open connection is cut.
  {
    Enter in(host);
    EXPECT_TRUE(test::wait_for(
        [&] {
          auto d = fw.read_table();
          return d.ok() && d.value().present && d.value().vendor_access.empty();
        },
        10s));
  }
  ASSERT_EQ(write(session, "b", 1), 1);
  EXPECT_FALSE(test::readable(accepted, 1500ms)) << "data passed after the element expired";
  {
    Enter in(vendor);
    EXPECT_LT(test::connect_tcp("10.99.0.2", "10.50.0.10", 104, 1000ms), 0);
  }

  // Renew and revoke: remove_vendor_access cuts at once, and is idempotent.
  {
    Enter in(host);
    const auto e = element("10.99.0.2", "10.50.0.10", 104);
    ASSERT_TRUE(fw.add_vendor_access({e}, 1h).ok());
    ASSERT_TRUE(fw.add_vendor_access({e}, 2h).ok()) << "renewing replaces the timeout";
    auto d = fw.read_table();
    ASSERT_TRUE(d.ok());
    ASSERT_EQ(d.value().vendor_access.size(), 1u);
    EXPECT_GT(d.value().vendor_access[0].remaining, 1h);
    ASSERT_TRUE(fw.remove_vendor_access({e}).ok());
    EXPECT_TRUE(fw.read_table().value().vendor_access.empty());
    EXPECT_TRUE(fw.remove_vendor_access({e}).ok());
  }
  for (int fd : {session, accepted, dicom, other_port, other_device, mgmt}) close(fd);
}

// With a service address, granted vendor traffic leaves the egress interface with it as
// source (SNAT in chain postrouting), and the table with the nat chain reads back equal.
TEST_F(NftablesNetns, VendorTrafficIsTranslatedToTheServiceAddress) {
  Netns host("mgmt-nft-r"), vendor("mgmt-nft-v"), device("mgmt-nft-d");
  must("ip link add mgmt-wg0 netns " + host.name() + " type veth peer name mgmt-wg0p netns " +
       vendor.name());
  must("ip link add mgmt-dev netns " + host.name() + " type veth peer name mgmt-devp netns " +
       device.name());
  must("ip -n " + host.name() + " addr add 10.99.0.1/24 dev mgmt-wg0");
  must("ip -n " + host.name() + " addr add 10.50.0.250/24 dev mgmt-dev");
  must("ip -n " + host.name() + " link set mgmt-wg0 up");
  must("ip -n " + host.name() + " link set mgmt-dev up");
  must(host.exec("sysctl -qw net.ipv4.ip_forward=1"));
  must("ip -n " + vendor.name() + " addr add 10.99.0.2/24 dev mgmt-wg0p");
  must("ip -n " + vendor.name() + " link set mgmt-wg0p up");
  must("ip -n " + vendor.name() + " route add default via 10.99.0.1");
  // The device has no route back to the tunnel: only the translation lets it answer.
  must("ip -n " + device.name() + " addr add 10.50.0.10/24 dev mgmt-devp");
  must("ip -n " + device.name() + " link set mgmt-devp up");

  int dicom = -1;
  {
    Enter in(device);
    dicom = test::listen_tcp("10.50.0.10", 104);
  }
  ASSERT_GE(dicom, 0);
  TableSpec spec = spec_a();
  spec.settings.vendor_service_address = "10.50.0.250";
  NftablesBackend fw;
  {
    Enter in(host);
    ASSERT_TRUE(fw.apply_table(spec).ok());
    ASSERT_TRUE(fw.add_vendor_access({element("10.99.0.2", "10.50.0.10", 104)}, 1h).ok());
    auto actual = fw.read_table();
    ASSERT_TRUE(actual.ok());
    spec.vendor_access = {{element("10.99.0.2", "10.50.0.10", 104), 1h}};
    EXPECT_EQ(compare(describe_intended(spec), actual.value()), std::vector<std::string>{});
    const std::string listed = sh_output(host.exec("nft list chain inet cordon_mgmt postrouting"));
    EXPECT_NE(listed.find("snat ip to 10.50.0.250"), std::string::npos) << listed;
  }
  int session = -1;
  {
    Enter in(vendor);
    ASSERT_TRUE(test::wait_for(
        [&] {
          session = test::connect_tcp("10.99.0.2", "10.50.0.10", 104, 500ms);
          return session >= 0;
        },
        3s));
  }
  const int accepted = test::accept_tcp(dicom, 2s);
  ASSERT_GE(accepted, 0);
  sockaddr_in peer{};
  socklen_t len = sizeof peer;
  ASSERT_EQ(getpeername(accepted, reinterpret_cast<sockaddr*>(&peer), &len), 0);
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &peer.sin_addr, text, sizeof text);
  EXPECT_STREQ(text, "10.50.0.250");
  for (int fd : {session, accepted, dicom}) close(fd);
}

TEST_F(NftablesNetns, TheLargestAllowedTableFitsOneBatch) {
  Netns host("mgmt-nft-m");
  Enter in(host);
  NftablesBackend fw;
  TableSpec spec = spec_a();
  for (std::size_t i = 0; i < kMaxVendorElements; ++i) {
    const std::string device =
        "10.50." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    spec.vendor_access.push_back({element("10.99.0.2", device.c_str(), 104), 1h});
  }
  for (int i = 0; i < 256; ++i) {
    spec.settings.admin_networks.push_back(
        Cidr::parse("10.70." + std::to_string(i) + ".0/25").value());
  }
  spec.settings.admin_networks.resize(256);
  const Status s = fw.apply_table(spec);
  ASSERT_TRUE(s.ok()) << s.error().message;
  const Status v = verify(fw, spec);
  EXPECT_TRUE(v.ok()) << v.error().message.substr(0, 2000);
  EXPECT_EQ(fw.read_table().value().vendor_access.size(), kMaxVendorElements);
  // One more is refused before anything is sent.
  spec.vendor_access.push_back({element("10.99.0.3", "10.50.0.10", 104), 1h});
  EXPECT_EQ(fw.apply_table(spec).error().code, "invalid");
}

TEST_F(NftablesNetns, VendorChangesWithoutTableAreNotFound) {
  Netns host("mgmt-nft-n");
  Enter in(host);
  NftablesBackend fw;
  const Status s = fw.add_vendor_access({element("10.99.0.2", "10.50.0.10", 104)}, 1s);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "not_found") << s.error().message;
}

}  // namespace
}  // namespace cordon::control::nft
