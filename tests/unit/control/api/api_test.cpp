// The control API over a real unix socket: every endpoint's bad input gets a JSON error
// with a code and the offending field's path, and changes nothing.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "control/api/http_server.h"
#include "control/api/routes.h"
#include "control/mgmt/plane.h"
#include "control/nft/firewall_backend.h"
#include "control/wireguard/wireguard_backend.h"
#include "tests/unit/control/fake_dataplane_link.h"
#include "tests/unit/control/test_support.h"

namespace cordon::control::api {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;

using testing::example;

struct Reply {
  unsigned status = 0;
  json::value body;
};

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_.emplace(store::Store::open((dir_.path() / "state").string()).value());
    policy_.emplace(*store_, dataplane_);
    server_.emplace(io_,
                    HttpServer::Options{
                        (dir_.path() / "api.sock").string(), 0600, std::nullopt, {}, 1 << 20, 8});
    api_.emplace(io_, *store_, *policy_, dataplane_);
    api_->install(*server_);
    ASSERT_TRUE(server_->listen().ok());
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    io_.stop();
    thread_.join();
  }

  Reply call(http::verb method, const std::string& target, const std::string& body = "",
             const std::string& raw = "") {
    asio::io_context io;
    asio::local::stream_protocol::socket socket(io);
    socket.connect((dir_.path() / "api.sock").string());
    // Write errors are ignored: the server may answer (413) and close before reading all.
    beast::error_code ec;
    if (!raw.empty()) {
      asio::write(socket, asio::buffer(raw), ec);
    } else {
      http::request<http::string_body> req(method, target, 11);
      req.set(http::field::host, "controld");
      req.body() = body;
      req.prepare_payload();
      http::write(socket, req, ec);
    }
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(socket, buffer, res, ec);
    Reply r;
    if (ec) return r;  // status 0: the server cut the connection
    r.status = res.result_int();
    json::error_code jec;
    r.body = json::parse(res.body(), jec);
    return r;
  }
  // Runs `f` on the server's thread and waits for it (the store belongs to that thread).
  template <class F>
  void on_server(F f) {
    std::promise<void> done;
    asio::post(io_, [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }

  static std::string error_path(const Reply& r) {
    const json::value* p = r.body.at("error").as_object().if_contains("path");
    return p ? std::string(p->as_string()) : "";
  }

  testing::ScratchDir dir_{"cordon-api"};
  asio::io_context io_;
  testing::FakeDataplaneLink dataplane_;
  std::optional<store::Store> store_;
  std::optional<policy::PolicyService> policy_;
  std::optional<HttpServer> server_;
  std::optional<ControlApi> api_;
  std::thread thread_;
};

std::string apply_body(const std::string& doc, const std::string& extra = "") {
  return "{\"document\":" + json::serialize(json::value(doc)) + extra + "}";
}

TEST_F(ApiTest, ApplyGetHistoryDiffRollback) {
  Reply r = call(http::verb::post, "/v1/policy",
                 apply_body(example("lab.json"), R"(,"comment":"first")"));
  ASSERT_EQ(r.status, 201u) << json::serialize(r.body);
  EXPECT_EQ(r.body.at("version").as_int64(), 1);
  r = call(http::verb::post, "/v1/policy", apply_body(example("monitor.json")));
  ASSERT_EQ(r.status, 201u);
  r = call(http::verb::get, "/v1/policy");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.body.at("version").as_int64(), 2);
  EXPECT_TRUE(r.body.at("policy").is_object());
  r = call(http::verb::get, "/v1/policy/versions");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.body.at("versions").as_array().size(), 2u);
  EXPECT_EQ(r.body.at("versions").as_array()[1].at("comment").as_string(), "first");
  r = call(http::verb::get, "/v1/policy/diff?from=1&to=2");
  ASSERT_EQ(r.status, 200u);
  EXPECT_NE(std::string(r.body.at("text").as_string()).find("device"), std::string::npos);
  r = call(http::verb::post, "/v1/policy/rollback", R"({"version":1})");
  ASSERT_EQ(r.status, 201u);
  EXPECT_EQ(r.body.at("version").as_int64(), 3);
  r = call(http::verb::get, "/v1/audit/verify");
  ASSERT_EQ(r.status, 200u);
  EXPECT_TRUE(r.body.at("intact").as_bool());
  EXPECT_EQ(r.body.at("entries").as_int64(), 3);
  r = call(http::verb::get, "/v1/audit");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.body.at("entries").as_array()[0].at("actor").as_string().subview(0, 4), "uid:");
}

TEST_F(ApiTest, InvalidPolicyListsEveryErrorWithItsPath) {
  json::value broken = json::parse(example("lab.json"));
  broken.at("devices").as_array()[0].as_object()["mac"] = "nope";
  Reply r = call(http::verb::post, "/v1/policy", "{\"document\":" + json::serialize(broken) + "}");
  ASSERT_EQ(r.status, 400u);
  const json::object& e = r.body.at("error").as_object();
  EXPECT_EQ(e.at("code").as_string(), "invalid");
  EXPECT_EQ(e.at("details").as_array()[0].at("path").as_string(), "devices[0].mac");
  EXPECT_EQ(dataplane_.apply_calls, 0);
  r = call(http::verb::post, "/v1/policy/validate",
           "{\"document\":" + json::serialize(broken) + "}");
  EXPECT_EQ(r.status, 400u);
  r = call(http::verb::post, "/v1/policy/validate", apply_body(example("lab.json")));
  EXPECT_EQ(r.status, 200u);
  EXPECT_TRUE(r.body.at("valid").as_bool());
}

TEST_F(ApiTest, BadBodiesAreRefusedWithTheFieldPath) {
  struct Case {
    http::verb method;
    const char* target;
    std::string body;
    const char* path;
  };
  const Case cases[] = {
      {http::verb::post, "/v1/policy", "{\"document\":{},\"colour\":1}", "/colour"},
      {http::verb::post, "/v1/policy", "{}", "/document"},
      {http::verb::post, "/v1/policy", "{\"document\":42}", "/document"},
      {http::verb::post, "/v1/policy", apply_body("{}", R"(,"comment":7)"), "/comment"},
      {http::verb::post, "/v1/policy", apply_body("{}", R"(,"confirm_within":1)"),
       "/confirm_within"},
      {http::verb::post, "/v1/policy", apply_body("{}", R"(,"confirm_within":"10")"),
       "/confirm_within"},
      {http::verb::post, "/v1/policy",
       apply_body("{}", ",\"comment\":\"" + std::string(1001, 'x') + "\""), "/comment"},
      {http::verb::post, "/v1/policy/validate", "{\"doc\":{}}", "/doc"},
      {http::verb::post, "/v1/policy/rollback", "{}", "/version"},
      {http::verb::post, "/v1/policy/rollback", R"({"version":-1})", "/version"},
      {http::verb::post, "/v1/policy/rollback", R"({"version":1.5})", "/version"},
      {http::verb::post, "/v1/policy/confirm", R"({"x":1})", "/x"},
      {http::verb::get, "/v1/policy/versions?limit=0", "", "?limit"},
      {http::verb::get, "/v1/policy/versions?limit=abc", "", "?limit"},
      {http::verb::get, "/v1/events?after=-4", "", "?after"},
      {http::verb::get, "/v1/events?wait=3600", "", "?wait"},
      {http::verb::get, "/v1/audit?limit=99999999", "", "?limit"},
      {http::verb::get, "/v1/policy/diff", "", "?from"},
      {http::verb::get, "/v1/policy/diff?from=x", "", "?from"},
  };
  for (const Case& c : cases) {
    const Reply r = call(c.method, c.target, c.body);
    EXPECT_EQ(r.status, 400u) << c.target << " " << c.body;
    if (r.status == 400u) {
      EXPECT_EQ(error_path(r), c.path) << c.target << " " << c.body;
    }
  }
  for (const char* body : {"not json", "[1,2]", "\"text\"", "{\"document\":"}) {
    const Reply r = call(http::verb::post, "/v1/policy", body);
    EXPECT_EQ(r.status, 400u) << body;
    EXPECT_EQ(r.body.at("error").at("code").as_string(), "invalid") << body;
  }
  EXPECT_EQ(dataplane_.apply_calls, 0);
  EXPECT_EQ(call(http::verb::get, "/v1/policy").body.at("version").as_int64(), 0);
}

TEST_F(ApiTest, UnknownPathsMethodsAndVersions) {
  EXPECT_EQ(call(http::verb::get, "/v1/nothing").status, 404u);
  EXPECT_EQ(call(http::verb::get, "/v1/policy/versions/7").status, 404u);
  EXPECT_EQ(call(http::verb::get, "/v1/policy/versions/0").status, 400u);
  EXPECT_EQ(call(http::verb::get, "/v1/policy/versions/..%2F..%2Fetc").status, 400u);
  EXPECT_EQ(call(http::verb::delete_, "/v1/policy").status, 405u);
  EXPECT_EQ(call(http::verb::get, "/v1/policy/rollback").status, 405u);  // nothing changes on GET
  EXPECT_EQ(call(http::verb::post, "/v1/policy/confirm", "{}").status, 409u);
  EXPECT_EQ(call(http::verb::post, "/v1/policy/rollback", R"({"version":3})").status, 404u);
}

// This controld runs without the host firewall, WireGuard and vendor access: their routes
// say so (404, not_found) and change nothing, whatever the body.
TEST_F(ApiTest, RoutesOfPartsThisControldRunsWithoutAnswerNotFound) {
  const std::pair<http::verb, const char*> routes[] = {
      {http::verb::get, "/v1/settings/management"},
      {http::verb::put, "/v1/settings/management"},
      {http::verb::get, "/v1/settings/management/verify"},
      {http::verb::get, "/v1/wireguard"},
      {http::verb::get, "/v1/management-peers"},
      {http::verb::post, "/v1/management-peers"},
      {http::verb::delete_, "/v1/management-peers/abc"},
      {http::verb::get, "/v1/vendor-sessions"},
      {http::verb::post, "/v1/vendor-sessions"},
      {http::verb::delete_, "/v1/vendor-sessions/1"},
  };
  for (const auto& [method, target] : routes) {
    const Reply r = call(method, target, "{}");
    EXPECT_EQ(r.status, 404u) << target;
    if (r.status == 404u) {
      EXPECT_EQ(r.body.at("error").at("code").as_string(), "not_found") << target;
    }
  }
}

// What a WireGuard peer needs from the appliance, as the management settings name it: the
// endpoint ("host:port") in every answer that hands out the appliance's side of a tunnel.
TEST_F(ApiTest, TheApplianceEndpointComesFromTheManagementSettings) {
  nft::FakeFirewallBackend firewall;
  wireguard::FakeWireGuardBackend wireguard;
  std::optional<mgmt::ManagementPlane> plane;
  constexpr const char* kKey = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
  on_server([&] {
    plane.emplace(*store_, firewall);
    ASSERT_TRUE(plane
                    ->start(nft::parse_settings(
                                json::parse(R"({"interface":"mgmt0","wireguard_interface":"wg0",
                                    "admin_networks":["10.60.0.0/24"]})"))
                                .value())
                    .ok());
    ASSERT_TRUE(plane->set_wireguard(&wireguard, {"wg0", 0, "/key", "10.99.0.1/24"}, kKey).ok());
    api_->set_management(&*plane);
    api_->set_vendor_access(nullptr, &wireguard, kKey);
  });
  // Not set: the answers say nothing about it.
  EXPECT_FALSE(
      call(http::verb::get, "/v1/wireguard").body.as_object().contains("appliance_endpoint"));
  json::object settings = call(http::verb::get, "/v1/settings/management").body.as_object();
  settings["wireguard_endpoint_host"] = "vpn.hospital.example";
  settings["wireguard_port"] = 51999;
  ASSERT_EQ(call(http::verb::put, "/v1/settings/management", json::serialize(settings)).status,
            200u);
  EXPECT_EQ(call(http::verb::get, "/v1/wireguard").body.at("appliance_endpoint"),
            "vpn.hospital.example:51999");
  const Reply peers = call(http::verb::get, "/v1/management-peers");
  EXPECT_EQ(peers.body.at("appliance_endpoint"), "vpn.hospital.example:51999");
  EXPECT_EQ(peers.body.at("appliance_public_key"), kKey);
  const Reply added =
      call(http::verb::post, "/v1/management-peers",
           R"({"name":"noc","public_key":"hJMu0ekIJQLY8t3fXPNNZRzSW/tqnmpb6FZePJnQBXc=",)"
           R"("tunnel_address":"10.99.0.200"})");
  ASSERT_EQ(added.status, 201u) << json::serialize(added.body);
  EXPECT_EQ(added.body.at("appliance_endpoint"), "vpn.hospital.example:51999");
  // A host with a port in it is refused and changes nothing.
  settings["wireguard_endpoint_host"] = "vpn.hospital.example:51820";
  const Reply bad = call(http::verb::put, "/v1/settings/management", json::serialize(settings));
  EXPECT_EQ(bad.status, 400u);
  EXPECT_EQ(error_path(bad), "/wireguard_endpoint_host");
  EXPECT_EQ(call(http::verb::get, "/v1/wireguard").body.at("appliance_endpoint"),
            "vpn.hospital.example:51999");
  on_server([&] { api_->set_management(nullptr); });
}

// Settings bodies that are not JSON are refused before their parser sees them.
TEST_F(ApiTest, SettingsBodiesThatAreNotJsonAreRefused) {
  const json::value guardrail = call(http::verb::get, "/v1/guardrail").body;
  const json::value syslog = call(http::verb::get, "/v1/settings/syslog").body;
  for (const char* target : {"/v1/guardrail", "/v1/settings/syslog"}) {
    const Reply r = call(http::verb::put, target, "{\"enabled\":");
    EXPECT_EQ(r.status, 400u) << target;
    EXPECT_EQ(r.body.at("error").at("code").as_string(), "invalid") << target;
  }
  EXPECT_EQ(call(http::verb::get, "/v1/guardrail").body, guardrail);
  EXPECT_EQ(call(http::verb::get, "/v1/settings/syslog").body, syslog);
}

TEST_F(ApiTest, OversizedAndMalformedRequestsAreRefused) {
  // Body over the 1 MiB limit of this server.
  const Reply big = call(http::verb::post, "/v1/policy", std::string(2 << 20, ' '));
  EXPECT_EQ(big.status, 413u);
  // A header over 16 KiB.
  const Reply header =
      call(http::verb::get, "", "",
           "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n");
  EXPECT_EQ(header.status, 431u);
  // Not HTTP at all.
  const Reply garbage = call(http::verb::get, "", "", "\x16\x03\x01 hello\r\n\r\n");
  EXPECT_TRUE(garbage.status == 400u || garbage.status == 0u);
  EXPECT_EQ(dataplane_.apply_calls, 0);
}

TEST_F(ApiTest, OnlyTrustedFrontEndsMayNameTheUser) {
  const std::string req =
      "POST /v1/policy HTTP/1.1\r\nHost: x\r\nX-Cordon-User: mallory\r\n"
      "Content-Length: ";
  const std::string body = apply_body(example("lab.json"));
  const Reply r =
      call(http::verb::post, "", "", req + std::to_string(body.size()) + "\r\n\r\n" + body);
  ASSERT_EQ(r.status, 201u);
  const Reply audit = call(http::verb::get, "/v1/audit");
  // This test's uid is not trusted: the header is ignored, the Unix user is recorded.
  EXPECT_EQ(audit.body.at("entries").as_array()[0].at("actor").as_string().subview(0, 4), "uid:");
}

TEST_F(ApiTest, EventsLongPollWakesOnNewEvents) {
  on_server([&] { api_->on_events({R"({"kind":"drop","n":1})"}); });
  Reply r = call(http::verb::get, "/v1/events");
  ASSERT_EQ(r.status, 200u);
  ASSERT_EQ(r.body.at("events").as_array().size(), 1u);
  const int64_t last = r.body.at("last_id").as_int64();
  auto waiting = std::async(std::launch::async, [&] {
    return call(http::verb::get, "/v1/events?after=" + std::to_string(last) + "&wait=30");
  });
  // The poll is parked until an event arrives (it would return empty after 30 s).
  while (server_->connections() < 1) std::this_thread::yield();
  EXPECT_EQ(waiting.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  on_server([&] { api_->on_events({R"({"kind":"drop","n":2})"}); });
  r = waiting.get();
  ASSERT_EQ(r.status, 200u);
  ASSERT_EQ(r.body.at("events").as_array().size(), 1u);
  EXPECT_EQ(r.body.at("events").as_array()[0].at("n").as_int64(), 2);
}

TEST_F(ApiTest, DryRunOfAnUploadedCaptureAndItsBadInputs) {
  ASSERT_EQ(call(http::verb::post, "/v1/policy", apply_body(example("lab.json"))).status, 201u);
  // The case's capture: a DICOM association the lab policy allows.
  std::ifstream in(std::string(CORDON_SOURCE_DIR) +
                       "/tests/packets/app-dicom-called-ae-one-byte-segments/frames.pcap",
                   std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  const std::string raw = bytes.str();
  std::string b64(4 * ((raw.size() + 2) / 3) + 1, '\0');
  b64.resize(static_cast<size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                                                 reinterpret_cast<const unsigned char*>(raw.data()),
                                                 static_cast<int>(raw.size()))));
  json::value candidate = json::parse(example("lab.json"));
  json::array& rules = candidate.at("devices").as_array()[0].at("rules").as_array();
  rules.erase(rules.begin());  // store-to-pacs
  const std::string body =
      "{\"document\":" + json::serialize(candidate) + ",\"pcap_base64\":\"" + b64 + "\"}";
  Reply r = call(http::verb::post, "/v1/policy/dry-run", body);
  ASSERT_EQ(r.status, 200u) << json::serialize(r.body);
  EXPECT_EQ(r.body.at("report").at("totals").at("newly_blocked_flows").as_int64(), 1);
  EXPECT_NE(std::string(r.body.at("text").as_string()).find("port 104"), std::string::npos);
  EXPECT_EQ(dataplane_.apply_calls, 1);  // a dry-run installs nothing

  const std::string doc = "{\"document\":" + json::serialize(candidate);
  const std::pair<std::string, const char*> bad[] = {
      {doc + "}", "/pcap_base64"},  // neither
      {doc + ",\"pcap_base64\":\"" + b64 + "\",\"recorded_seconds\":3600}",
       "/pcap_base64"},                                           // both
      {doc + ",\"pcap_base64\":\"!!!!\"}", "/pcap_base64"},       // not base64
      {doc + ",\"recorded_seconds\":1}", "/recorded_seconds"},    // too short
      {"{\"document\":{},\"recorded_seconds\":3600}", "schema"},  // invalid policy
  };
  for (const auto& [text, path] : bad) {
    r = call(http::verb::post, "/v1/policy/dry-run", text);
    EXPECT_EQ(r.status, 400u) << text.substr(0, 80);
    if (r.status == 400u && std::string(path) != "schema") {
      EXPECT_EQ(error_path(r), path);
    }
  }
  // Bytes that are not a capture: a clear error, not a crash.
  r = call(http::verb::post, "/v1/policy/dry-run", doc + ",\"pcap_base64\":\"aGVsbG8gd29ybGQ=\"}");
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(std::string(r.body.at("error").at("message").as_string()).find("not a pcap"),
            std::string::npos);
}

TEST_F(ApiTest, HealthReportsAnUnreachableDataplane) {
  dataplane_.unreachable = true;
  const Reply r = call(http::verb::get, "/v1/health");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.body.at("dataplane").as_string(), "unreachable");
  EXPECT_EQ(call(http::verb::get, "/v1/dataplane/stats").status, 503u);
}

}  // namespace
}  // namespace cordon::control::api
