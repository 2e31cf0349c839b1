// cordon-webd's firmware upload end to end: the real HttpsServer over TLS on loopback
// (io_context on its own thread), a fake controld (controld's HttpServer with POST
// /v1/update recording what it got), and a raw TLS client that sends a request header
// WITHOUT its body and waits for the answer. A refusal that arrives although no byte of
// the body was sent shows that webd decided from the header alone: no session, a
// forged session, a foreign Origin, a missing CSRF token, the operator and auditor roles,
// a body over the upload limit, and a body over the normal 1 MiB limit on any other
// endpoint. An admin's bundle over 1 MiB is accepted (after "100 Continue" when asked)
// and reaches controld whole, in the admin's name.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <thread>

#include "tests/unit/webui/webd_harness.h"

namespace cordon::webui {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

using testing::kOrigin;
using testing::Login;
constexpr uint64_t kMaxUpload = 4ull << 20;  // the test's upload limit
constexpr uint64_t kBundle = 3'000'000;      // over the normal 1 MiB, under the upload limit

// A TLS client with its own io_context, run only while the test waits on it.
struct Client {
  asio::io_context io;
  asio::ssl::context tls{asio::ssl::context::tls_client};
  asio::ssl::stream<tcp::socket> stream{io, tls};
  beast::flat_buffer buffer;
};

class UploadTest : public testing::WebdHarness {
 protected:
  void SetUp() override {
    expected_ = std::string(kBundle, '\0');
    for (size_t i = 0; i < expected_.size(); ++i) expected_[i] = static_cast<char>(i * 7 % 251);
    server::HttpsServer::Options so;
    so.max_upload = kMaxUpload;
    start(
        "cordon-webd-upload", 16ull << 20,
        [this](control::api::HttpServer& controld) {
          controld.route(
              "POST", "/v1/update",
              [this](control::api::Request& r, control::api::Responder respond) {
                received_.push_back({r.actor.name, r.body.size(), r.body == expected_});
                respond(control::api::json_response(
                    json::object{{"state", "installing"}, {"bytes", r.body.size()}}, 202));
              });
          controld.route("POST", "/v1/policy/validate",
                         [this](control::api::Request& r, control::api::Responder respond) {
                           received_.push_back({r.actor.name, r.body.size(), false});
                           respond(control::api::json_response(json::object{{"valid", true}}));
                         });
        },
        so);
  }

  void connect(Client& c) {
    c.tls.set_verify_mode(asio::ssl::verify_none);
    c.stream.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    c.stream.handshake(asio::ssl::stream_base::client);
  }
  // The request header of a POST with Content-Length `length`; the body is not sent.
  static std::string header(const std::string& target, uint64_t length, const Login* l,
                            const std::string& origin = kOrigin, bool with_csrf = true,
                            bool expect_continue = false) {
    std::string h = "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    if (!origin.empty()) h += "Origin: " + origin + "\r\n";
    if (l) h += "Cookie: __Host-cordon_session=" + l->session + "\r\n";
    if (l && with_csrf) h += "X-CSRF-Token: " + l->csrf + "\r\n";
    if (expect_continue) h += "Expect: 100-continue\r\n";
    h += "Content-Type: application/octet-stream\r\nContent-Length: " + std::to_string(length) +
         "\r\n\r\n";
    return h;
  }
  // One response within `limit`; nullopt when none came (or the connection broke).
  std::optional<http::response<http::string_body>> response(
      Client& c, std::chrono::seconds limit = std::chrono::seconds(10)) {
    http::response<http::string_body> res;
    bool done = false;
    beast::error_code ec;
    http::async_read(c.stream, c.buffer, res, [&](beast::error_code e, size_t) {
      ec = e;
      done = true;
    });
    c.io.restart();
    c.io.run_for(limit);
    if (!done) {
      c.stream.next_layer().cancel();
      c.io.restart();
      c.io.run();
      return std::nullopt;
    }
    if (ec) return std::nullopt;
    return res;
  }
  // Sends only the header and returns the status webd answers without the body (0: none).
  unsigned refused_before_body(const std::string& head) {
    Client c;
    connect(c);
    asio::write(c.stream, asio::buffer(head));
    auto res = response(c);
    return res ? res->result_int() : 0u;
  }
  size_t controld_calls() {
    return on_io([this] { return received_.size(); });
  }

  struct Received {
    std::string actor;
    size_t bytes;
    bool intact;
  };
  std::vector<Received> received_;
  std::string expected_;
};

TEST_F(UploadTest, RefusedFromTheHeaderBeforeAnyOfTheBodyIsRead) {
  const Login admin = login("admin"), oper = login("oper"), watcher = login("watcher");
  const Login forged{std::string(64, 'a'), std::string(64, 'b')};
  // Each of these sends a header announcing a bundle and no body: the answer comes anyway.
  EXPECT_EQ(refused_before_body(header("/api/v1/update", kBundle, nullptr)), 401u);
  EXPECT_EQ(refused_before_body(header("/api/v1/update", kBundle, &forged)), 401u);
  EXPECT_EQ(refused_before_body(header("/api/v1/update", kBundle, &oper)), 403u);
  EXPECT_EQ(refused_before_body(header("/api/v1/update", kBundle, &watcher)), 403u);
  EXPECT_EQ(refused_before_body(header("/api/v1/update", kBundle, &admin, "https://evil.example")),
            403u);
  EXPECT_EQ(refused_before_body(header("/api/v1/update", kBundle, &admin, "")), 403u);
  EXPECT_EQ(refused_before_body(header("/api/v1/update", kBundle, &admin, kOrigin, false)), 403u);
  // Even when asked to, webd does not invite the body of a refused upload.
  EXPECT_EQ(refused_before_body(header("/api/v1/update", kBundle, nullptr, kOrigin, true, true)),
            401u);
  EXPECT_EQ(controld_calls(), 0u);
}

TEST_F(UploadTest, OversizedBodiesRefusedBeforeTheyAreRead) {
  const Login admin = login("admin");
  // Over the upload limit, as admin: 413 at once.
  EXPECT_EQ(refused_before_body(header("/api/v1/update", kMaxUpload + 1, &admin)), 413u);
  // Every other endpoint keeps the 1 MiB limit, even for an admin.
  EXPECT_EQ(refused_before_body(header("/api/v1/policy/validate", (1u << 20) + 1, &admin)), 413u);
  EXPECT_EQ(refused_before_body(header("/api/v1/update/mark-good", (1u << 20) + 1, &admin)), 413u);
  EXPECT_EQ(refused_before_body(header("/api/v1/login", kBundle, nullptr)), 413u);
  // Over what any request may have: refused by the parser, still before the body.
  EXPECT_EQ(refused_before_body(header("/api/v1/update", 1ull << 40, &admin)), 413u);
  EXPECT_EQ(controld_calls(), 0u);
}

TEST_F(UploadTest, AdminBundleOverTheNormalLimitReachesControldWhole) {
  const Login admin = login("admin");
  for (const bool expect_continue : {false, true}) {
    Client c;
    connect(c);
    asio::write(c.stream, asio::buffer(header("/api/v1/update", kBundle, &admin, kOrigin, true,
                                              expect_continue)));
    if (expect_continue) {
      auto interim = response(c);
      ASSERT_TRUE(interim);
      EXPECT_EQ(interim->result_int(), 100u);
    }
    asio::write(c.stream, asio::buffer(expected_));
    auto res = response(c);
    ASSERT_TRUE(res) << "no answer to the upload";
    EXPECT_EQ(res->result_int(), 202u) << res->body();
    EXPECT_EQ(json::parse(res->body()).at("bytes").as_int64(), static_cast<int64_t>(kBundle));
  }
  auto received = on_io([this] { return received_; });
  ASSERT_EQ(received.size(), 2u);
  for (const Received& r : received) {
    EXPECT_EQ(r.actor, "web:admin");
    EXPECT_EQ(r.bytes, kBundle);
    EXPECT_TRUE(r.intact) << "the bundle changed on its way to controld";
  }
  // The connection limit for ordinary requests is still 1 MiB afterwards.
  EXPECT_EQ(refused_before_body(header("/api/v1/policy/validate", (1u << 20) + 1, &admin)), 413u);
}

}  // namespace
}  // namespace cordon::webui
