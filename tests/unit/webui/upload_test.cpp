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
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include "control/api/http_server.h"
#include "webui/auth/accounts.h"
#include "webui/routes/app.h"
#include "webui/server/https_server.h"
#include "webui/server/tls.h"

namespace cordon::webui {
namespace {
namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

constexpr const char* kOrigin = "https://10.60.0.1:8443";
constexpr const char* kPassword = "a long enough password";
constexpr uint64_t kMaxUpload = 4ull << 20;  // the test's upload limit
constexpr uint64_t kBundle = 3'000'000;      // over the normal 1 MiB, under the upload limit

// A TLS client with its own io_context, run only while the test waits on it.
struct Client {
  asio::io_context io;
  asio::ssl::context tls{asio::ssl::context::tls_client};
  asio::ssl::stream<tcp::socket> stream{io, tls};
  beast::flat_buffer buffer;
};

struct Login {
  std::string session, csrf;
};

class UploadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cordon-webd-upload-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "app");

    control::api::HttpServer::Options fake{
        (dir_ / "controld.sock").string(),   0600,        std::nullopt,
        {static_cast<uint32_t>(::getuid())}, 16ull << 20, 64};
    controld_.emplace(io_, fake);
    controld_->route("POST", "/v1/update",
                     [this](control::api::Request& r, control::api::Responder respond) {
                       received_.push_back({r.actor.name, r.body.size(), r.body == expected_});
                       respond(control::api::json_response(
                           json::object{{"state", "installing"}, {"bytes", r.body.size()}}, 202));
                     });
    controld_->route("POST", "/v1/policy/validate",
                     [this](control::api::Request& r, control::api::Responder respond) {
                       received_.push_back({r.actor.name, r.body.size(), false});
                       respond(control::api::json_response(json::object{{"valid", true}}));
                     });
    ASSERT_TRUE(controld_->listen().ok());

    auth::Accounts::Options options;
    options.pwhash_ops = 1;  // the hash cost is not what is tested here
    options.pwhash_memory = 8192;
    accounts_.emplace(auth::Accounts::open((dir_ / "webd.db").string(), options).value());
    ASSERT_TRUE(accounts_->create_user("admin", kPassword, auth::Role::admin).ok());
    ASSERT_TRUE(accounts_->create_user("oper", kPassword, auth::Role::operator_).ok());
    ASSERT_TRUE(accounts_->create_user("watcher", kPassword, auth::Role::auditor).ok());
    client_.emplace(io_, (dir_ / "controld.sock").string());
    const std::string cert = (dir_ / "cert.pem").string(), key = (dir_ / "key.pem").string();
    ASSERT_TRUE(server::ensure_self_signed(cert, key, {"IP:127.0.0.1"}).ok());
    certificates_.emplace(cert, key, true);
    ASSERT_TRUE(certificates_->load().ok());
    app_.emplace(
        routes::App::Options{dir_ / "app", {kOrigin}, dir_ / "setup-token", &*certificates_},
        *accounts_, *client_);
    server::HttpsServer::Options so;
    so.address = "127.0.0.1";
    so.port = 0;
    so.max_upload = kMaxUpload;
    server_.emplace(io_, *certificates_, *app_, so);
    ASSERT_TRUE(server_->listen().ok());
    port_ = server_->port();
    expected_ = std::string(kBundle, '\0');
    for (size_t i = 0; i < expected_.size(); ++i) expected_[i] = static_cast<char>(i * 7 % 251);
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    io_.stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
    app_.reset();
    fs::remove_all(dir_);
  }

  // Runs `f` on the server's thread (Accounts and the fake belong to it) and waits.
  template <class F>
  auto on_io(F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    asio::post(io_, [&task] { task(); });
    return result.get();
  }
  Login login(const std::string& user) {
    return on_io([&] {
      auto l = accounts_->login(user, kPassword, "127.0.0.1").value();
      return Login{l.session_id, l.session.csrf_token};
    });
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
  fs::path dir_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::optional<control::api::HttpServer> controld_;
  std::vector<Received> received_;
  std::string expected_;
  std::optional<auth::Accounts> accounts_;
  std::optional<routes::ControldClient> client_;
  std::optional<server::CertificateStore> certificates_;
  std::optional<routes::App> app_;
  std::optional<server::HttpsServer> server_;
  uint16_t port_ = 0;
  std::thread thread_;
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
