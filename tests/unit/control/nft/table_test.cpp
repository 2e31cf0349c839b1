// The table built from settings (through libnftnl, no kernel) and the fake backend.
#include <netinet/in.h>  // before the linux/ headers

#include <gtest/gtest.h>

#include <algorithm>

#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include "control/nft/firewall_backend.h"
#include "control/nft/nftnl_objects.h"
#include "control/nft/table.h"

namespace cordon::control::nft {
namespace {

using namespace std::chrono_literals;

TableSpec lab_spec() {
  TableSpec spec;
  spec.settings.interface = "mgmt0";
  spec.settings.wireguard_interface = "wg-cordon";
  spec.settings.admin_networks = {Cidr::parse("10.60.0.5/32").value(),
                                  Cidr::parse("fd00:60::/64").value()};
  return spec;
}

const std::string* find_rule(const TableDescription& d, const std::string& comment) {
  for (const auto& l : d.lines) {
    if (l.rfind("rule ", 0) == 0 && l.find("\"" + comment + "\"") != std::string::npos) return &l;
  }
  return nullptr;
}

bool has(const TableDescription& d, const std::string& line) {
  return std::find(d.lines.begin(), d.lines.end(), line) != d.lines.end();
}

TEST(NftTable, InputChainDropsByDefaultAndAcceptsOnlyTheServices) {
  const TableDescription d = describe_intended(lab_spec());
  ASSERT_TRUE(d.present);
  EXPECT_EQ(d.lines.front(), "table inet cordon_mgmt flags 0x0");
  EXPECT_TRUE(has(d, "chain input type filter hook 1 prio 0 policy drop"));
  EXPECT_TRUE(has(d, "chain forward type filter hook 2 prio 0 policy accept"));

  const auto* https = find_rule(d, "https from admin networks (IPv4)");
  ASSERT_NE(https, nullptr);
  EXPECT_NE(https->find("cmp eq reg 1 0x0000fb20"), std::string::npos) << *https;  // 8443, BE
  EXPECT_NE(https->find("lookup reg 1 set admin_v4 0x0"), std::string::npos) << *https;
  EXPECT_NE(https->find("immediate reg 0 accept"), std::string::npos) << *https;
  const auto* wg = find_rule(d, "wireguard");
  ASSERT_NE(wg, nullptr);
  EXPECT_NE(wg->find("0x00006cca"), std::string::npos) << *wg;  // 51820, BE
  const auto* echo = find_rule(d, "icmp echo, rate limited");
  ASSERT_NE(echo, nullptr);
  EXPECT_NE(echo->find("limit rate 5/second burst 5"), std::string::npos) << *echo;
  ASSERT_NE(find_rule(d, "icmpv6 neighbour solicitation"), nullptr);
  ASSERT_NE(find_rule(d, "log drops, rate limited"), nullptr);
  const auto* drop = find_rule(d, "count drops");
  ASSERT_NE(drop, nullptr);
  EXPECT_NE(drop->find("[ counter ] [ immediate reg 0 drop ]"), std::string::npos) << *drop;
  // The drop is the input chain's last rule.
  std::string last_input;
  for (const auto& l : d.lines)
    if (l.rfind("rule input ", 0) == 0) last_input = l;
  EXPECT_EQ(last_input, *drop);
}

TEST(NftTable, SettingsChangeTheRules) {
  TableSpec spec = lab_spec();
  spec.settings.https_port = 9443;
  spec.settings.log_drops = false;
  spec.settings.wireguard_interface = "";
  const TableDescription d = describe_intended(spec);
  EXPECT_NE(find_rule(d, "https from admin networks (IPv4)")->find("0x0000e324"),
            std::string::npos);
  EXPECT_EQ(find_rule(d, "log drops, rate limited"), nullptr);
  EXPECT_EQ(find_rule(d, "wireguard"), nullptr);
  EXPECT_EQ(find_rule(d, "vendor to device (tcp)"), nullptr) << "no tunnel, no vendor path";
}

TEST(NftTable, AdminNetworksBecomeMergedIntervals) {
  TableSpec spec = lab_spec();
  spec.settings.admin_networks = {Cidr::parse("10.60.1.0/24").value(),
                                  Cidr::parse("10.60.0.0/24").value(),    // adjacent: merged
                                  Cidr::parse("10.60.0.128/25").value(),  // inside: merged
                                  Cidr::parse("192.0.2.7").value(),
                                  Cidr::parse("::/0").value()};  // up to the top
  const TableDescription d = describe_intended(spec);
  std::vector<std::string> v4, v6;
  for (const auto& l : d.lines) {
    if (l.rfind("element admin_v4 ", 0) == 0) v4.push_back(l.substr(17));
    if (l.rfind("element admin_v6 ", 0) == 0) v6.push_back(l.substr(17));
  }
  EXPECT_EQ(v4, (std::vector<std::string>{"0a3c0000", "0a3c0200 interval-end", "c0000207",
                                          "c0000208 interval-end"}));
  EXPECT_EQ(v6, (std::vector<std::string>{"00000000000000000000000000000000"}));
}

TEST(NftTable, VendorPathChecksBothDirectionsAgainstTheSet) {
  TableSpec spec = lab_spec();
  spec.settings.vendor_egress_interface = "svc0";
  const TableDescription d = describe_intended(spec);
  EXPECT_TRUE(has(d, "set vendor_access key_type 0x71cd key_len 12 flags 0x10"));
  for (const char* c : {"vendor to device (tcp)", "vendor to device (udp)",
                        "device replies to vendor (tcp)", "device replies to vendor (udp)"}) {
    const auto* r = find_rule(d, c);
    ASSERT_NE(r, nullptr) << c;
    EXPECT_NE(r->find("lookup reg 1 set vendor_access 0x0"), std::string::npos) << *r;
  }
  ASSERT_NE(find_rule(d, "other traffic from the tunnel"), nullptr);
  ASSERT_NE(find_rule(d, "other traffic into the tunnel"), nullptr);
  // A vendor TCP connection the set no longer admits is reset toward the vendor, before
  // the silent drop of everything else from the tunnel; only established connections.
  const auto* cut = find_rule(d, "cut vendor tcp connection");
  ASSERT_NE(cut, nullptr);
  EXPECT_NE(cut->find("[ ct load state => reg 1 ]"), std::string::npos) << *cut;
  EXPECT_NE(cut->find("[ bitwise reg 1 = ( reg 1 & 0x00000002 ) ^ 0x00000000 ]"), std::string::npos)
      << *cut;
  EXPECT_NE(cut->find("[ reject type 1 code 0 ]"), std::string::npos) << *cut;
  const auto position = [&](const std::string* rule) {
    return std::find(d.lines.begin(), d.lines.end(), *rule) - d.lines.begin();
  };
  EXPECT_LT(position(cut), position(find_rule(d, "other traffic from the tunnel")));
  EXPECT_GT(position(cut), position(find_rule(d, "device replies to vendor (udp)")));
}

TEST(NftTable, ManagementPeersReachHttpsThroughTheTunnelOnly) {
  TableSpec spec = lab_spec();
  spec.management_peers = {Cidr::parse("10.99.0.200").value(), Cidr::parse("10.99.0.201").value()};
  const TableDescription d = describe_intended(spec);
  EXPECT_TRUE(has(d, "set mgmt_peers key_type 0x7 key_len 4 flags 0x4"));
  // Two adjacent /32s merge into one interval 10.99.0.200 .. 10.99.0.201.
  EXPECT_TRUE(has(d, "element mgmt_peers 0a6300c8")) << ::testing::PrintToString(d.lines);
  EXPECT_TRUE(has(d, "element mgmt_peers 0a6300ca interval-end"));
  const auto* r = find_rule(d, "https from management peers (tunnel)");
  ASSERT_NE(r, nullptr);
  // Only on the tunnel interface, only TCP to the HTTPS port, only from the set.
  const auto* from_tunnel = find_rule(d, "other traffic from the tunnel");  // iifname wg-cordon
  ASSERT_NE(from_tunnel, nullptr);
  const auto begin = from_tunnel->find("[ meta"), end = from_tunnel->find(" [ counter");
  const std::string iif_tunnel = from_tunnel->substr(begin, end - begin);
  EXPECT_NE(iif_tunnel.find("iifname"), std::string::npos) << iif_tunnel;
  EXPECT_NE(r->find(iif_tunnel), std::string::npos) << *r;
  EXPECT_NE(r->find("cmp eq reg 1 0x0000fb20"), std::string::npos) << *r;
  EXPECT_NE(r->find("lookup reg 1 set mgmt_peers 0x0"), std::string::npos) << *r;
  // The peers are not admin networks: the admin sets do not hold them.
  for (const auto& l : d.lines) {
    if (l.rfind("element admin_v4 ", 0) == 0) {
      EXPECT_EQ(l.find("0a6300"), std::string::npos) << l;
    }
  }
  // Without peers the set is there, empty, and the rule matches nothing.
  const TableDescription empty = describe_intended(lab_spec());
  EXPECT_TRUE(has(empty, "set mgmt_peers key_type 0x7 key_len 4 flags 0x4"));
  EXPECT_NE(find_rule(empty, "https from management peers (tunnel)"), nullptr);
  // Without a tunnel there is neither; peers then are refused.
  TableSpec no_tunnel = lab_spec();
  no_tunnel.settings.wireguard_interface.clear();
  EXPECT_EQ(find_rule(describe_intended(no_tunnel), "https from management peers (tunnel)"),
            nullptr);
  no_tunnel.management_peers = spec.management_peers;
  EXPECT_EQ(validate(no_tunnel).error().path, "/wireguard_interface");
  TableSpec network = lab_spec();
  network.management_peers = {Cidr::parse("10.99.0.0/24").value()};
  EXPECT_FALSE(validate(network).ok());
  TableSpec too_many = lab_spec();
  for (int i = 0; i <= static_cast<int>(kMaxManagementPeerAddresses); ++i)
    too_many.management_peers.push_back(Cidr::parse("10.99.1." + std::to_string(i)).value());
  EXPECT_FALSE(validate(too_many).ok());
  // The fake keeps them, so a read-back compares equal only with the same peers.
  FakeFirewallBackend fake;
  ASSERT_TRUE(fake.apply_table(spec).ok());
  EXPECT_TRUE(verify(fake, spec).ok());
  EXPECT_EQ(verify(fake, lab_spec()).error().code, "mismatch");
}

TEST(NftTable, ServiceAddressAddsTheSnatChainAndRoutingIsGuarded) {
  TableSpec spec = lab_spec();
  spec.settings.vendor_egress_interface = "svc0";
  spec.settings.external_interface = "wan0";
  EXPECT_EQ(find_rule(describe_intended(spec), "vendor snat (tcp)"), nullptr);
  spec.settings.vendor_service_address = "10.50.0.250";
  const TableDescription d = describe_intended(spec);
  EXPECT_TRUE(has(d, "chain postrouting type nat hook 4 prio 100 policy accept")) << [&] {
    std::string all;
    for (const auto& l : d.lines) all += l + "\n";
    return all;
  }();
  for (const char* c : {"vendor snat (tcp)", "vendor snat (udp)"}) {
    const auto* r = find_rule(d, c);
    ASSERT_NE(r, nullptr) << c;
    EXPECT_NE(r->find("lookup reg 1 set vendor_access"), std::string::npos) << *r;
    EXPECT_NE(r->find("0xfa00320a"), std::string::npos) << *r;  // 10.50.0.250, as loaded
    EXPECT_NE(r->find("nat snat ip addr_min reg 1"), std::string::npos) << *r;
  }
  for (const char* c : {"no routing from mgmt0", "no routing to mgmt0", "no routing from wan0",
                        "no routing to wan0", "no routing from svc0", "no routing to svc0"}) {
    EXPECT_NE(find_rule(d, c), nullptr) << c;
  }
}

// The objects survive netlink encoding: build each message, parse it into a fresh
// object, and the description is the same (libnftnl's own test method; no kernel).
TEST(NftTable, NetlinkMessagesParseBackToTheSameTable) {
  TableSpec spec = lab_spec();
  spec.settings.vendor_egress_interface = "svc0";
  spec.vendor_access = {{VendorAccessElement::make("10.99.0.2", "10.50.0.10", 104).value(), 60s}};
  spec.management_peers = {Cidr::parse("10.99.0.200").value()};
  const detail::NftObjects built = detail::build_objects(spec);
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  detail::NftObjects parsed;
  {
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_NEWTABLE, NFPROTO_INET, 0, 1);
    nftnl_table_nlmsg_build_payload(nlh, built.table.get());
    parsed.table.reset(nftnl_table_alloc());
    ASSERT_EQ(nftnl_table_nlmsg_parse(nlh, parsed.table.get()), 0);
  }
  for (const auto& c : built.chains) {
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_NEWCHAIN, NFPROTO_INET, 0, 1);
    nftnl_chain_nlmsg_build_payload(nlh, c.get());
    parsed.chains.emplace_back(nftnl_chain_alloc());
    ASSERT_EQ(nftnl_chain_nlmsg_parse(nlh, parsed.chains.back().get()), 0);
  }
  for (const auto& set : built.sets) {
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_NEWSET, NFPROTO_INET, 0, 1);
    nftnl_set_nlmsg_build_payload(nlh, set.get());
    parsed.sets.emplace_back(nftnl_set_alloc());
    ASSERT_EQ(nftnl_set_nlmsg_parse(nlh, parsed.sets.back().get()), 0);
    // One element per message: libnftnl 1.2.4 numbers the nested elements 1, 2, ... when
    // building but accepts only type 1 when parsing (the kernel ignores the number).
    nftnl_set_elems_iter* it = nftnl_set_elems_iter_create(set.get());
    for (nftnl_set_elem* e = nftnl_set_elems_iter_next(it); e != nullptr;
         e = nftnl_set_elems_iter_next(it)) {
      detail::SetPtr one(nftnl_set_alloc());
      nftnl_set_set_u32(one.get(), NFTNL_SET_FAMILY, NFPROTO_INET);
      nftnl_set_set_str(one.get(), NFTNL_SET_TABLE, kTableName);
      nftnl_set_set_str(one.get(), NFTNL_SET_NAME, nftnl_set_get_str(set.get(), NFTNL_SET_NAME));
      nftnl_set_elem* copy = nftnl_set_elem_alloc();
      std::uint32_t len = 0;
      const void* key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
      nftnl_set_elem_set(copy, NFTNL_SET_ELEM_KEY, key, len);
      for (const auto attr : {NFTNL_SET_ELEM_FLAGS}) {
        if (nftnl_set_elem_is_set(e, attr)) {
          nftnl_set_elem_set_u32(copy, attr, nftnl_set_elem_get_u32(e, attr));
        }
      }
      if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_TIMEOUT)) {
        nftnl_set_elem_set_u64(copy, NFTNL_SET_ELEM_TIMEOUT,
                               nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_TIMEOUT));
      }
      nftnl_set_elem_add(one.get(), copy);
      nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_NEWSETELEM, NFPROTO_INET, 0, 1);
      nftnl_set_elems_nlmsg_build_payload(nlh, one.get());
      ASSERT_EQ(nftnl_set_elems_nlmsg_parse(nlh, parsed.sets.back().get()), 0);
    }
    nftnl_set_elems_iter_destroy(it);
  }
  for (const auto& r : built.rules) {
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_NEWRULE, NFPROTO_INET, 0, 1);
    nftnl_rule_nlmsg_build_payload(nlh, r.get());
    parsed.rules.emplace_back(nftnl_rule_alloc());
    ASSERT_EQ(nftnl_rule_nlmsg_parse(nlh, parsed.rules.back().get()), 0);
  }
  const TableDescription want = detail::describe(built), got = detail::describe(parsed);
  EXPECT_EQ(got.lines, want.lines);
  ASSERT_EQ(got.vendor_access.size(), 1u);
  EXPECT_EQ(got.vendor_access[0].element.to_string(), "10.99.0.2 . 10.50.0.10 . 104");
  EXPECT_EQ(got.vendor_access[0].remaining, 60s);
  EXPECT_TRUE(compare(want, got).empty());
}

TEST(NftTable, CompareReportsEachDifference) {
  TableSpec a = lab_spec();
  TableSpec b = lab_spec();
  b.settings.https_port = 9443;
  const auto e = VendorAccessElement::make("10.99.0.2", "10.50.0.10", 104).value();
  b.vendor_access = {{e, 60s}};
  EXPECT_TRUE(compare(describe_intended(a), describe_intended(a)).empty());
  const auto diff = compare(describe_intended(a), describe_intended(b));
  const auto contains = [&](const std::string& s) {
    return std::any_of(diff.begin(), diff.end(),
                       [&](const std::string& l) { return l.find(s) != std::string::npos; });
  };
  EXPECT_TRUE(contains("missing: rule input 2 \"https from admin networks (IPv4)\""));
  EXPECT_TRUE(contains("unexpected: rule input 2 \"https from admin networks (IPv4)\""));
  EXPECT_TRUE(contains("unexpected: vendor access 10.99.0.2 . 10.50.0.10 . 104"));
  EXPECT_EQ(compare(describe_intended(a), TableDescription{}),
            std::vector<std::string>{"missing: table inet cordon_mgmt"});
}

// The kernel counts an element's timeout from the commit, a few milliseconds after controld
// computed it: a read-back right after an insert has a little more time left than intended.
// That is no difference; an element that outlives its session by more is.
TEST(NftTable, CompareAllowsTheKernelsCommitDelayOnVendorTimeLeft) {
  const auto e = VendorAccessElement::make("10.99.0.2", "10.50.0.10", 104).value();
  TableSpec intended = lab_spec();
  intended.vendor_access = {{e, 599960ms}};
  TableSpec kernel = intended;
  kernel.vendor_access = {{e, 599980ms}};
  EXPECT_TRUE(compare(describe_intended(intended), describe_intended(kernel)).empty());
  kernel.vendor_access = {{e, 599960ms + kVendorTimeLeftSlack + 1ms}};
  const auto diff = compare(describe_intended(intended), describe_intended(kernel));
  ASSERT_EQ(diff.size(), 1u);
  EXPECT_NE(diff[0].find("intended at most 599960 ms"), std::string::npos) << diff[0];
  kernel.vendor_access = {{e, 1s}};
  EXPECT_TRUE(compare(describe_intended(intended), describe_intended(kernel)).empty());
}

TEST(NftTable, ValidateRejectsBadVendorGrants) {
  TableSpec spec = lab_spec();
  const auto e = VendorAccessElement::make("10.99.0.2", "10.50.0.10", 104).value();
  spec.vendor_access = {{e, 9h}};
  EXPECT_FALSE(validate(spec).ok());
  spec.vendor_access = {{e, 1h}, {e, 2h}};
  EXPECT_FALSE(validate(spec).ok());
  spec.vendor_access = {{e, 1h}};
  EXPECT_TRUE(validate(spec).ok());
  spec.settings.wireguard_interface = "a-name-far-too-long";
  EXPECT_EQ(validate(spec).error().path, "/wireguard_interface");
}

TEST(FakeFirewallBackend, BehavesLikeTheKernelTable) {
  auto now = std::chrono::steady_clock::time_point{} + 1h;
  FakeFirewallBackend fw([&] { return now; });
  EXPECT_FALSE(fw.read_table().value().present);
  const auto e = VendorAccessElement::make("10.99.0.2", "10.50.0.10", 104).value();
  EXPECT_EQ(fw.add_vendor_access({e}, 1s).error().code, "not_found");

  const TableSpec spec = lab_spec();
  ASSERT_TRUE(fw.apply_table(spec).ok());
  EXPECT_TRUE(verify(fw, spec).ok());

  ASSERT_TRUE(fw.add_vendor_access({e}, 30s).ok());
  EXPECT_FALSE(verify(fw, spec).ok()) << "an element not in the spec is a difference";
  TableSpec with = spec;
  with.vendor_access = {{e, 30s}};
  EXPECT_TRUE(verify(fw, with).ok());
  now += 10s;
  ASSERT_EQ(fw.read_table().value().vendor_access.size(), 1u);
  EXPECT_EQ(fw.read_table().value().vendor_access[0].remaining, 20s);
  now += 20s;
  EXPECT_TRUE(fw.read_table().value().vendor_access.empty()) << "expired";

  ASSERT_TRUE(fw.add_vendor_access({e}, 30s).ok());
  ASSERT_TRUE(fw.remove_vendor_access({e}).ok());
  EXPECT_TRUE(fw.read_table().value().vendor_access.empty());
  EXPECT_FALSE(fw.add_vendor_access({e}, 9h).ok());

  fw.fail_next_apply = Error{"io", "kernel said no", ""};
  TableSpec other = spec;
  other.settings.https_port = 1;
  EXPECT_FALSE(fw.apply_table(other).ok());
  EXPECT_TRUE(verify(fw, spec).ok()) << "a failed apply changes nothing";
  EXPECT_EQ(fw.applies, 1);
}

}  // namespace
}  // namespace cordon::control::nft
