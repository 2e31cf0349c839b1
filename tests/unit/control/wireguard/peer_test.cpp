// Peer validation and the fake backend.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "control/wireguard/peer.h"
#include "control/wireguard/wireguard_backend.h"

namespace cordon::control::wireguard {
namespace {

using namespace std::chrono_literals;
constexpr const char* kKey = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

boost::json::value good() {
  boost::json::object o;
  o["public_key"] = kKey;
  o["allowed_ips"] = boost::json::array{"10.99.0.2/32"};
  o["endpoint"] = "192.0.2.50:51820";
  o["persistent_keepalive"] = 25;
  return o;
}

TEST(WireGuardPeer, GoodPeerParsesAndRoundTrips) {
  auto p = parse_peer(good());
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p.value().public_key, kKey);
  EXPECT_EQ(p.value().allowed_ips[0].to_string(), "10.99.0.2/32");
  EXPECT_EQ(*p.value().endpoint, "192.0.2.50:51820");
  EXPECT_EQ(p.value().persistent_keepalive, 25s);
  EXPECT_EQ(parse_peer(to_json(p.value())).value(), p.value());
}

TEST(WireGuardPeer, RejectionsNameTheField) {
  struct Case {
    const char* field;
    boost::json::value value;
    const char* path;
  };
  const Case cases[] = {
      {"public_key", "not-a-key", "/peers/3/public_key"},
      {"public_key", 12, "/peers/3/public_key"},
      {"allowed_ips", boost::json::array{}, "/peers/3/allowed_ips"},
      {"allowed_ips", boost::json::array{"10.99.0.2/32", "10.99.0.0/8"}, "/peers/3/allowed_ips/1"},
      {"allowed_ips", boost::json::array{"0.0.0.0/0"}, "/peers/3/allowed_ips/0"},
      {"allowed_ips", boost::json::array{"vendor"}, "/peers/3/allowed_ips/0"},
      {"endpoint", "vendor.example.com:51820", "/peers/3/endpoint"},
      {"endpoint", "192.0.2.50", "/peers/3/endpoint"},
      {"endpoint", "192.0.2.50:0", "/peers/3/endpoint"},
      {"endpoint", "[2001:db8::5:51820", "/peers/3/endpoint"},
      {"persistent_keepalive", -1, "/peers/3/persistent_keepalive"},
      {"persistent_keepalive", 70000, "/peers/3/persistent_keepalive"},
      {"preshared_key", "x", "/peers/3/preshared_key"},
  };
  for (const auto& c : cases) {
    auto v = good();
    v.as_object()[c.field] = c.value;
    auto r = parse_peer(v, "/peers/3");
    ASSERT_FALSE(r.ok()) << c.field << " = " << boost::json::serialize(c.value);
    EXPECT_EQ(r.error().code, "invalid");
    EXPECT_EQ(r.error().path, c.path) << r.error().message;
  }
  auto v = good();
  v.as_object().erase("public_key");
  EXPECT_EQ(parse_peer(v).error().path, "/public_key");
  EXPECT_TRUE(valid_endpoint("[2001:db8::5]:51820"));
  EXPECT_FALSE(valid_endpoint(std::string("192.0.2.50\0:1", 13)));
}

TEST(ManagementPeer, GoodPeerParsesAndRoundTrips) {
  const boost::json::value v = {
      {"name", "noc-laptop"}, {"public_key", kKey}, {"tunnel_address", "10.99.0.200"}};
  auto p = parse_management_peer(v);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p.value().name, "noc-laptop");
  EXPECT_EQ(p.value().tunnel_address.to_string(), "10.99.0.200/32");
  EXPECT_EQ(boost::json::serialize(to_json(p.value())), boost::json::serialize(v));
  EXPECT_EQ(parse_management_peer(to_json(p.value())).value(), p.value());
  // "/32" is the same address.
  boost::json::value slash = v;
  slash.as_object()["tunnel_address"] = "10.99.0.200/32";
  EXPECT_EQ(parse_management_peer(slash).value(), p.value());
}

TEST(ManagementPeer, RejectionsNameTheField) {
  struct Case {
    const char* field;
    boost::json::value value;
    const char* path;
  };
  const Case cases[] = {
      {"name", "", "/peer/name"},
      {"name", "has space", "/peer/name"},
      {"name", "../etc", "/peer/name"},
      {"name", boost::json::string(std::string(33, 'a')), "/peer/name"},
      {"name", 7, "/peer/name"},
      {"public_key", "not-a-key", "/peer/public_key"},
      {"tunnel_address", "10.99.0.0/24", "/peer/tunnel_address"},
      {"tunnel_address", "10.99.0.5/24", "/peer/tunnel_address"},
      {"tunnel_address", "fd00:99::5", "/peer/tunnel_address"},
      {"tunnel_address", "127.0.0.1", "/peer/tunnel_address"},
      {"tunnel_address", "224.0.0.1", "/peer/tunnel_address"},
      {"tunnel_address", "noc", "/peer/tunnel_address"},
      {"tunnel_address", 10, "/peer/tunnel_address"},
      {"allowed_ips", boost::json::array{"0.0.0.0/0"}, "/peer/allowed_ips"},
  };
  for (const auto& c : cases) {
    boost::json::value v = {{"name", "noc"}, {"public_key", kKey}, {"tunnel_address", "10.99.0.9"}};
    v.as_object()[c.field] = c.value;
    auto r = parse_management_peer(v, "/peer");
    ASSERT_FALSE(r.ok()) << c.field << " = " << boost::json::serialize(c.value);
    EXPECT_EQ(r.error().code, "invalid");
    EXPECT_EQ(r.error().path, c.path) << r.error().message;
  }
  for (const char* missing : {"name", "public_key", "tunnel_address"}) {
    boost::json::value v = {{"name", "noc"}, {"public_key", kKey}, {"tunnel_address", "10.99.0.9"}};
    v.as_object().erase(missing);
    EXPECT_EQ(parse_management_peer(v).error().path, std::string("/") + missing);
  }
  EXPECT_EQ(parse_management_peer(boost::json::array{}).error().path, "");
}

TEST(ManagementPeer, WhenAndWhoAreTheServersNotTheClients) {
  for (const char* field : {"added_at", "added_by"}) {
    boost::json::value v = {{"name", "noc"}, {"public_key", kKey}, {"tunnel_address", "10.99.0.9"}};
    v.as_object()[field] = "2026-11-18T11:06:40.123Z";
    auto r = parse_management_peer(v, "/peer");
    ASSERT_FALSE(r.ok()) << field;
    EXPECT_EQ(r.error().code, "invalid");
    EXPECT_EQ(r.error().path, std::string("/peer/") + field);
    EXPECT_EQ(r.error().message, "is set by the appliance when the peer is added; do not send it");
  }
}

TEST(ManagementPeer, TheStoredFormKeepsWhenAndWho) {
  boost::json::value v = {{"name", "noc"},
                          {"public_key", kKey},
                          {"tunnel_address", "10.99.0.9"},
                          {"added_at", "2026-11-18T11:06:40.123Z"},
                          {"added_by", "web:alice"}};
  auto p = parse_stored_management_peer(v);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p.value().added_at, "2026-11-18T11:06:40.123Z");
  EXPECT_EQ(p.value().added_by, "web:alice");
  EXPECT_EQ(boost::json::serialize(to_json(p.value())), boost::json::serialize(v));

  // A peer stored by an earlier build has neither, and its JSON leaves them out.
  boost::json::value old = {{"name", "noc"}, {"public_key", kKey}, {"tunnel_address", "10.99.0.9"}};
  auto o = parse_stored_management_peer(old);
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_FALSE(o.value().added_at.has_value());
  EXPECT_FALSE(o.value().added_by.has_value());
  EXPECT_EQ(boost::json::serialize(to_json(o.value())), boost::json::serialize(old));
  boost::json::value nulls = old;
  nulls.as_object()["added_at"] = nullptr;
  nulls.as_object()["added_by"] = nullptr;
  EXPECT_EQ(parse_stored_management_peer(nulls).value(), o.value());

  // The stored form is checked like the API's, with its own extra fields.
  const std::pair<const char*, boost::json::value> bad[] = {
      {"added_at", 7}, {"added_by", ""}, {"unknown", "x"}, {"public_key", "not-a-key"}};
  for (const auto& [field, value] : bad) {
    boost::json::value w = v;
    w.as_object()[field] = value;
    auto r = parse_stored_management_peer(w, "/3");
    ASSERT_FALSE(r.ok()) << field;
    EXPECT_EQ(r.error().path, std::string("/3/") + field) << r.error().message;
  }
}

TEST(WireGuardPeer, SessionDurationsAreCapped) {
  EXPECT_EQ(parse_duration(boost::json::value(3600), "/duration").value(), 3600s);
  EXPECT_EQ(parse_duration(boost::json::value(8 * 3600), "/duration").value(), 8h);
  for (const auto& bad :
       {boost::json::value(8 * 3600 + 1), boost::json::value(0), boost::json::value(-5),
        boost::json::value(1.5), boost::json::value("1h")}) {
    auto r = parse_duration(bad, "/duration");
    ASSERT_FALSE(r.ok()) << boost::json::serialize(bad);
    EXPECT_EQ(r.error().path, "/duration");
  }
  EXPECT_FALSE(parse_duration(boost::json::value(120), "/d", 60s).ok());
}

TEST(FakeWireGuardBackend, KeepsPeersLikeWg) {
  FakeWireGuardBackend wg;
  const PeerConfig peer = parse_peer(good()).value();
  EXPECT_EQ(wg.set_peer(peer).error().code, "not_found") << "no interface yet";
  EXPECT_EQ(wg.ensure_interface({"wg-cordon", 51820, "/k", "10.99.0.1"}).error().path,
            "/tunnel_address");
  ASSERT_TRUE(wg.ensure_interface({"wg-cordon", 51820, "/k", "10.99.0.1/24"}).ok());
  ASSERT_TRUE(wg.set_peer(peer).ok());
  auto list = wg.list_peers().value();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_FALSE(list[0].latest_handshake.has_value());
  const auto t = std::chrono::system_clock::now();
  wg.handshake(kKey, t);
  EXPECT_EQ(wg.list_peers().value()[0].latest_handshake, t);

  PeerConfig moved = peer;  // update replaces allowed IPs
  moved.allowed_ips = {nft::Cidr::parse("10.99.0.3/32").value()};
  ASSERT_TRUE(wg.set_peer(moved).ok());
  list = wg.list_peers().value();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].allowed_ips, std::vector<std::string>{"10.99.0.3/32"});

  wg.fail_next = Error{"io", "wg failed", ""};
  EXPECT_FALSE(wg.remove_peer(kKey).ok());
  EXPECT_EQ(wg.list_peers().value().size(), 1u) << "a failed call changes nothing";
  ASSERT_TRUE(wg.remove_peer(kKey).ok());
  EXPECT_TRUE(wg.list_peers().value().empty());
  EXPECT_TRUE(wg.remove_peer(kKey).ok()) << "removing an unknown peer is not an error";
}

}  // namespace
}  // namespace cordon::control::wireguard
