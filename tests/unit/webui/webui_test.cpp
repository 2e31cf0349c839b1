// cordon-webd's request handling without TLS: setup, login, sessions (fixation, expiry,
// forgery, logout), CSRF and Origin, throttling, TOTP (RFC vectors, enrolment, login,
// the admin requirement), certificate upload checks, the role matrix over every endpoint,
// static files with path traversal, and forwarding to a fake controld (controld's own
// HttpServer on a unix socket, trusting this process's uid) that echoes who it was told
// is acting.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "control/api/http_server.h"
#include "webui/auth/accounts.h"
#include "webui/auth/totp.h"
#include "webui/routes/app.h"
#include "webui/server/tls.h"

namespace cordon::webui {
namespace {
namespace fs = std::filesystem;
namespace http = boost::beast::http;
namespace json = boost::json;
using routes::HttpRequest;
using routes::HttpResponse;

constexpr const char* kOrigin = "https://10.60.0.1:8443";
constexpr const char* kPassword = "a long enough password";

std::string S(const json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : json::serialize(v);
}

class WebuiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cordon-webui-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "app" / "js");
    std::ofstream(dir_ / "app" / "index.html") << "<!doctype html><p>cordon</p>";
    std::ofstream(dir_ / "app" / "js" / "app.js") << "console.log(1)";
    std::ofstream(dir_ / "secret.txt") << "outside";
    fs::create_symlink(dir_ / "secret.txt", dir_ / "app" / "link.txt");

    control::api::HttpServer::Options fake{
        (dir_ / "controld.sock").string(),   0600,    std::nullopt,
        {static_cast<uint32_t>(::getuid())}, 1 << 20, 8};
    controld_.emplace(io_, fake);
    auto echo = [](control::api::Request& r, control::api::Responder respond) {
      respond(control::api::json_response(
          json::object{{"method", r.method},
                       {"path", r.path},
                       {"actor", r.actor.name},
                       {"origin", r.actor.origin},
                       {"body", r.body},
                       {"since", r.query.count("since") ? r.query["since"] : ""}}));
    };
    for (const auto& ep : routes::endpoints()) {
      if (!ep.forwarded) continue;
      std::string pattern = std::string("/v1/") + ep.pattern;
      controld_->route(ep.method, pattern, echo);
    }
    ASSERT_TRUE(controld_->listen().ok());

    auth::Accounts::Options options;
    options.now = [this] { return now_; };
    accounts_.emplace(auth::Accounts::open((dir_ / "webd.db").string(), options).value());
    client_.emplace(io_, (dir_ / "controld.sock").string());
    cert_file_ = (dir_ / "webd-cert.pem").string();
    key_file_ = (dir_ / "webd-key.pem").string();
    ASSERT_TRUE(server::ensure_self_signed(cert_file_, key_file_, {"IP:10.60.0.1"}).ok());
    certificates_.emplace(cert_file_, key_file_, true);
    ASSERT_TRUE(certificates_->load().ok());
    app_.emplace(
        routes::App::Options{dir_ / "app", {kOrigin}, dir_ / "setup-token", &*certificates_},
        *accounts_, *client_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  HttpResponse call(http::verb method, const std::string& target, const std::string& body = "",
                    const std::map<std::string, std::string>& headers = {}) {
    HttpRequest req{method, target, 11};
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    std::optional<HttpResponse> reply;
    app_->handle(req, "192.0.2.7", [&](HttpResponse res) { reply = std::move(res); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    io_.restart();
    while (!reply && std::chrono::steady_clock::now() < deadline)
      io_.run_one_for(std::chrono::milliseconds(100));
    EXPECT_TRUE(reply.has_value()) << "no answer to " << target;
    return reply.value_or(HttpResponse{http::status::gateway_timeout, 11});
  }

  struct Login {
    std::string cookie;  // "__Host-cordon_session=..."
    std::string csrf;
  };
  std::string setup_admin(const std::string& user = "admin") {
    const std::string token_file = app_->prepare_setup();
    std::ifstream in(token_file);
    std::string token;
    in >> token;
    auto res = call(
        http::verb::post, "/api/v1/setup",
        json::serialize(json::object{{"user", user}, {"password", kPassword}, {"token", token}}),
        {{"Origin", kOrigin}});
    EXPECT_EQ(res.result_int(), 201u) << res.body();
    return token;
  }
  HttpResponse login_raw(const std::string& user, const std::string& password,
                         const std::map<std::string, std::string>& extra = {}) {
    std::map<std::string, std::string> headers{{"Origin", kOrigin}};
    headers.insert(extra.begin(), extra.end());
    return call(http::verb::post, "/api/v1/login",
                json::serialize(json::object{{"user", user}, {"password", password}}), headers);
  }
  Login login(const std::string& user) {
    auto res = login_raw(user, kPassword);
    EXPECT_EQ(res.result_int(), 200u) << res.body();
    std::string cookie(res[http::field::set_cookie]);
    cookie = cookie.substr(0, cookie.find(';'));
    return Login{cookie, std::string(json::parse(res.body()).at("csrf_token").as_string())};
  }
  std::map<std::string, std::string> auth_headers(const Login& l) {
    return {{"Origin", kOrigin}, {"Cookie", l.cookie}, {"X-CSRF-Token", l.csrf}};
  }

  fs::path dir_;
  boost::asio::io_context io_;
  std::optional<control::api::HttpServer> controld_;
  auth::Clock::time_point now_ = auth::Clock::now();
  std::optional<auth::Accounts> accounts_;
  std::optional<routes::ControldClient> client_;
  std::string cert_file_, key_file_;
  std::optional<server::CertificateStore> certificates_;
  std::optional<routes::App> app_;
};

TEST_F(WebuiTest, SetupOnceWithTokenThenConflict) {
  // Before setup nothing but setup works, and setup needs the token from the state dir.
  const std::string file = app_->prepare_setup();
  ASSERT_FALSE(file.empty());
  EXPECT_EQ(fs::status(file).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  auto bad = call(http::verb::post, "/api/v1/setup",
                  R"({"user":"admin","password":"a long enough password","token":"guess"})",
                  {{"Origin", kOrigin}});
  EXPECT_EQ(bad.result_int(), 403u);
  EXPECT_FALSE(accounts_->has_users());
  std::string token;
  std::ifstream(file) >> token;
  auto short_pw = call(
      http::verb::post, "/api/v1/setup",
      json::serialize(json::object{{"user", "admin"}, {"password", "short"}, {"token", token}}),
      {{"Origin", kOrigin}});
  EXPECT_EQ(short_pw.result_int(), 400u);
  EXPECT_NE(short_pw.body().find("/password"), std::string::npos);
  EXPECT_FALSE(accounts_->has_users());
  auto good = call(
      http::verb::post, "/api/v1/setup",
      json::serialize(json::object{{"user", "admin"}, {"password", kPassword}, {"token", token}}),
      {{"Origin", kOrigin}});
  EXPECT_EQ(good.result_int(), 201u) << good.body();
  EXPECT_FALSE(fs::exists(file));
  auto again = call(
      http::verb::post, "/api/v1/setup",
      json::serialize(json::object{{"user", "evil"}, {"password", kPassword}, {"token", token}}),
      {{"Origin", kOrigin}});
  EXPECT_EQ(again.result_int(), 409u);
  EXPECT_TRUE(app_->prepare_setup().empty());
  EXPECT_EQ(login_raw("evil", kPassword).result_int(), 401u);
}

TEST_F(WebuiTest, LoginCookieAttributesAndWrongPassword) {
  setup_admin();
  auto res = login_raw("admin", kPassword);
  ASSERT_EQ(res.result_int(), 200u);
  const std::string cookie(res[http::field::set_cookie]);
  EXPECT_TRUE(cookie.starts_with("__Host-cordon_session="));
  EXPECT_EQ(cookie.find(';') - std::string("__Host-cordon_session=").size(), 64u);  // 256 bits, hex
  for (const char* attr : {"; Path=/", "; Secure", "; HttpOnly", "; SameSite=Strict"})
    EXPECT_NE(cookie.find(attr), std::string::npos) << attr;
  EXPECT_EQ(login_raw("admin", "wrong password!!").result_int(), 401u);
  EXPECT_EQ(login_raw("nobody", kPassword).result_int(), 401u);
  EXPECT_EQ(call(http::verb::post, "/api/v1/login", "not json", {{"Origin", kOrigin}}).result_int(),
            400u);
}

TEST_F(WebuiTest, SessionFixationImpossible) {
  setup_admin();
  // A cookie planted before login is ignored: login issues a different id.
  const std::string planted = std::string(routes::kSessionCookie) + "=" + std::string(64, 'a');
  auto res = login_raw("admin", kPassword, {{"Cookie", planted}});
  ASSERT_EQ(res.result_int(), 200u);
  EXPECT_EQ(std::string(res[http::field::set_cookie]).find(std::string(64, 'a')),
            std::string::npos);
  EXPECT_EQ(call(http::verb::get, "/api/v1/session", "", {{"Cookie", planted}}).result_int(), 401u);
  // A second login gives a new id and ends the session the browser presented.
  Login first = login("admin");
  auto second = login_raw("admin", kPassword, {{"Cookie", first.cookie}});
  ASSERT_EQ(second.result_int(), 200u);
  EXPECT_EQ(std::string(second[http::field::set_cookie]).find(first.cookie), std::string::npos);
  EXPECT_EQ(call(http::verb::get, "/api/v1/session", "", {{"Cookie", first.cookie}}).result_int(),
            401u);
}

TEST_F(WebuiTest, ExpiredForgedAndLoggedOutSessionsRefused) {
  setup_admin();
  Login l = login("admin");
  EXPECT_EQ(call(http::verb::get, "/api/v1/session", "", {{"Cookie", l.cookie}}).result_int(),
            200u);
  // Forged: right shape, unknown id; and garbage.
  EXPECT_EQ(call(http::verb::get, "/api/v1/session", "",
                 {{"Cookie", std::string(routes::kSessionCookie) + "=" + std::string(64, '0')}})
                .result_int(),
            401u);
  EXPECT_EQ(call(http::verb::get, "/api/v1/session", "",
                 {{"Cookie", std::string(routes::kSessionCookie) + "=x"}})
                .result_int(),
            401u);
  // Idle: 29 min keeps it alive (and restarts the idle clock), 31 min more ends it.
  now_ += std::chrono::minutes(29);
  EXPECT_EQ(call(http::verb::get, "/api/v1/session", "", {{"Cookie", l.cookie}}).result_int(),
            200u);
  now_ += std::chrono::minutes(31);
  EXPECT_EQ(call(http::verb::get, "/api/v1/session", "", {{"Cookie", l.cookie}}).result_int(),
            401u);
  // Absolute: used every 20 min, still over after 12 h.
  Login busy = login("admin");
  for (int i = 0; i < 35; ++i) {
    now_ += std::chrono::minutes(20);
    EXPECT_EQ(call(http::verb::get, "/api/v1/session", "", {{"Cookie", busy.cookie}}).result_int(),
              200u)
        << i;
  }
  now_ += std::chrono::minutes(20);  // 12 h after login
  EXPECT_EQ(call(http::verb::get, "/api/v1/session", "", {{"Cookie", busy.cookie}}).result_int(),
            401u);
  // Logout invalidates on the server, whatever the browser keeps.
  Login out = login("admin");
  auto res = call(http::verb::post, "/api/v1/logout", "", auth_headers(out));
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_NE(std::string(res[http::field::set_cookie]).find("Max-Age=0"), std::string::npos);
  EXPECT_EQ(call(http::verb::get, "/api/v1/session", "", {{"Cookie", out.cookie}}).result_int(),
            401u);
  EXPECT_EQ(call(http::verb::get, "/api/v1/health", "", {{"Cookie", out.cookie}}).result_int(),
            401u);
  // Sessions never used again are dropped, not kept forever.
  Login a = login("admin"), b = login("admin");
  EXPECT_GE(accounts_->session_count(), 2u);
  now_ += std::chrono::hours(13);
  login("admin");
  EXPECT_EQ(accounts_->session_count(), 1u);
  EXPECT_EQ(call(http::verb::get, "/api/v1/session", "", {{"Cookie", a.cookie}}).result_int(),
            401u);
}

TEST_F(WebuiTest, CsrfAndOriginChecked) {
  setup_admin();
  Login l = login("admin");
  const std::string body = R"({"user":"op","password":"a long enough password","role":"operator"})";
  auto h = auth_headers(l);
  auto no_token = h;
  no_token.erase("X-CSRF-Token");
  EXPECT_EQ(call(http::verb::post, "/api/v1/users", body, no_token).result_int(), 403u);
  auto wrong_token = h;
  wrong_token["X-CSRF-Token"] = std::string(64, 'f');
  EXPECT_EQ(call(http::verb::post, "/api/v1/users", body, wrong_token).result_int(), 403u);
  auto no_origin = h;
  no_origin.erase("Origin");
  EXPECT_EQ(call(http::verb::post, "/api/v1/users", body, no_origin).result_int(), 403u);
  auto evil_origin = h;
  evil_origin["Origin"] = "https://evil.example";
  EXPECT_EQ(call(http::verb::post, "/api/v1/users", body, evil_origin).result_int(), 403u);
  EXPECT_EQ(call(http::verb::post, "/api/v1/login",
                 R"({"user":"admin","password":"a long enough password"})",
                 {{"Origin", "https://evil.example"}})
                .result_int(),
            403u);
  // Nothing was created by the refused requests; the right one works.
  EXPECT_EQ(accounts_->list_users().value().size(), 1u);
  EXPECT_EQ(call(http::verb::post, "/api/v1/users", body, h).result_int(), 201u);
  EXPECT_EQ(accounts_->list_users().value().size(), 2u);
  // Forwarded state changes are checked the same way.
  auto fwd = no_token;
  EXPECT_EQ(call(http::verb::post, "/api/v1/policy/dry-run", "{}", fwd).result_int(), 403u);
}

TEST_F(WebuiTest, ThrottlingPerAccountAndAddressAudited) {
  setup_admin();
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(login_raw("admin", "wrong password " + std::to_string(i)).result_int(), 401u);
  // Locked: even the right password is refused, without being checked.
  EXPECT_EQ(login_raw("admin", kPassword).result_int(), 429u);
  now_ += std::chrono::minutes(16);
  EXPECT_EQ(login_raw("admin", kPassword).result_int(), 200u);
  // Backoff: the next lockout lasts twice as long.
  for (int i = 0; i < 5; ++i) login_raw("admin", "wrong password again");
  now_ += std::chrono::minutes(16);
  EXPECT_EQ(login_raw("admin", kPassword).result_int(), 429u);
  now_ += std::chrono::minutes(15);
  EXPECT_EQ(login_raw("admin", kPassword).result_int(), 200u);
  // Per address: many names from one address lock the address out.
  for (int i = 0; i < 20; ++i) login_raw("user" + std::to_string(i), "wrong password!!");
  EXPECT_EQ(login_raw("admin", kPassword).result_int(), 429u);
  auto audit = accounts_->audit_entries(1000).value();
  size_t failed = 0, throttled = 0, okay = 0;
  for (const auto& e : audit) {
    const auto& o = e.as_object();
    if (S(o.at("event")) != "login") continue;
    EXPECT_EQ(S(o.at("source")), "192.0.2.7");
    if (S(o.at("outcome")) == "failed") ++failed;
    if (S(o.at("outcome")) == "throttled") ++throttled;
    if (S(o.at("outcome")) == "ok") ++okay;
  }
  EXPECT_EQ(failed, 30u);
  EXPECT_EQ(throttled, 3u);
  EXPECT_EQ(okay, 2u);
}

TEST_F(WebuiTest, RoleMatrixEveryEndpointEveryRole) {
  setup_admin();
  Login admin = login("admin");
  for (const char* role : {"operator", "auditor"}) {
    auto res =
        call(http::verb::post, "/api/v1/users",
             json::serialize(json::object{
                 {"user", std::string("u-") + role}, {"password", kPassword}, {"role", role}}),
             auth_headers(admin));
    ASSERT_EQ(res.result_int(), 201u) << res.body();
  }
  std::map<auth::Role, Login> sessions{{auth::Role::operator_, login("u-operator")},
                                       {auth::Role::auditor, login("u-auditor")}};
  for (const auto& ep : routes::endpoints()) {
    if (!ep.role) continue;  // setup and login need no session
    std::string path = std::string("/api/v1/") + ep.pattern;
    if (const size_t p = path.find("{}"); p != std::string::npos) path.replace(p, 2, "x1");
    for (auth::Role role : {auth::Role::auditor, auth::Role::operator_, auth::Role::admin}) {
      // Logout ends the session it is given: it gets a fresh one.
      Login l = role == auth::Role::admin ? admin : sessions.at(role);
      if (std::string(ep.pattern) == "logout")
        l = login(role == auth::Role::admin       ? "admin"
                  : role == auth::Role::operator_ ? "u-operator"
                                                  : "u-auditor");
      const http::verb verb = http::string_to_verb(ep.method);
      auto res = call(verb, path, "{}", auth_headers(l));
      const unsigned status = res.result_int();
      const std::string where =
          std::string(ep.method) + " " + path + " as " + auth::role_name(role);
      if (role < *ep.role) {
        EXPECT_EQ(status, 403u) << where << ": " << res.body();
      } else {
        EXPECT_NE(status, 403u) << where << ": " << res.body();
        EXPECT_NE(status, 401u) << where;
        if (ep.forwarded) {
          ASSERT_EQ(status, 200u) << where << ": " << res.body();
          auto echoed = json::parse(res.body()).as_object();
          EXPECT_EQ(S(echoed.at("path")), "/v1/" + path.substr(8)) << where;
          EXPECT_EQ(S(echoed.at("method")), ep.method) << where;
        }
      }
      // Without a session everything is 401.
      EXPECT_EQ(call(verb, path, "{}", {{"Origin", kOrigin}}).result_int(), 401u) << where;
    }
  }
  // Not in the table: 404, whatever the role.
  EXPECT_EQ(call(http::verb::get, "/api/v1/firmware", "", auth_headers(admin)).result_int(), 404u);
  EXPECT_EQ(call(http::verb::get, "/api/v2/health", "", auth_headers(admin)).result_int(), 404u);
  EXPECT_EQ(call(http::verb::delete_, "/api/v1/policy", "", auth_headers(admin)).result_int(),
            405u);
}

TEST_F(WebuiTest, ForwardNamesUserAndOriginAndKeepsQuery) {
  setup_admin();
  Login l = login("admin");
  auto res = call(http::verb::get, "/api/v1/events?since=42", "", auth_headers(l));
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  auto o = json::parse(res.body()).as_object();
  EXPECT_EQ(S(o.at("actor")), "web:admin");
  EXPECT_EQ(S(o.at("origin")), "192.0.2.7");
  EXPECT_EQ(S(o.at("since")), "42");
  auto post = call(http::verb::post, "/api/v1/policy/dry-run", R"({"x":1})", auth_headers(l));
  EXPECT_EQ(S(json::parse(post.body()).at("body")), R"({"x":1})");
  // Path parameters are checked before anything is forwarded.
  EXPECT_EQ(call(http::verb::get, "/api/v1/devices/..%2f/flows", "", auth_headers(l)).result_int(),
            400u);
  EXPECT_EQ(call(http::verb::get, "/api/v1/devices/../flows", "", auth_headers(l)).result_int(),
            400u);
  // controld down: a clear 503.
  controld_.reset();
  fs::remove(dir_ / "controld.sock");
  auto down = call(http::verb::get, "/api/v1/health", "", auth_headers(l));
  EXPECT_EQ(down.result_int(), 503u);
  EXPECT_NE(down.body().find("controld"), std::string::npos);
}

TEST_F(WebuiTest, UsersApi) {
  setup_admin();
  Login admin = login("admin");
  auto h = auth_headers(admin);
  EXPECT_EQ(call(http::verb::post, "/api/v1/users",
                 R"({"user":"op","password":"a long enough password","role":"root"})", h)
                .result_int(),
            400u);
  EXPECT_EQ(call(http::verb::post, "/api/v1/users",
                 R"({"user":"../x","password":"a long enough password","role":"auditor"})", h)
                .result_int(),
            400u);
  EXPECT_EQ(call(http::verb::post, "/api/v1/users",
                 R"({"user":"op","password":"a long enough password","role":"operator"})", h)
                .result_int(),
            201u);
  EXPECT_EQ(call(http::verb::post, "/api/v1/users",
                 R"({"user":"op","password":"a long enough password","role":"operator"})", h)
                .result_int(),
            409u);
  auto list = json::parse(call(http::verb::get, "/api/v1/users", "", h).body());
  EXPECT_EQ(list.at("users").as_array().size(), 2u);
  EXPECT_EQ(S(list.at("users").as_array()[1].at("role")), "operator");
  EXPECT_EQ(list.at("users").as_array()[1].as_object().if_contains("hash"), nullptr);
  Login op = login("op");
  // Own password: the current one is needed; other sessions of that user end.
  Login op2 = login("op");
  EXPECT_EQ(call(http::verb::post, "/api/v1/session/password",
                 R"({"current_password":"wrong one here","new_password":"another long password"})",
                 auth_headers(op))
                .result_int(),
            403u);
  EXPECT_EQ(
      call(
          http::verb::post, "/api/v1/session/password",
          R"({"current_password":"a long enough password","new_password":"another long password"})",
          auth_headers(op))
          .result_int(),
      200u);
  EXPECT_EQ(call(http::verb::get, "/api/v1/session", "", {{"Cookie", op.cookie}}).result_int(),
            200u);
  EXPECT_EQ(call(http::verb::get, "/api/v1/session", "", {{"Cookie", op2.cookie}}).result_int(),
            401u);
  EXPECT_EQ(login_raw("op", kPassword).result_int(), 401u);
  EXPECT_EQ(login_raw("op", "another long password").result_int(), 200u);
  // Delete: sessions end; the last admin stays.
  EXPECT_EQ(call(http::verb::delete_, "/api/v1/users/op", "", h).result_int(), 200u);
  EXPECT_EQ(call(http::verb::get, "/api/v1/session", "", {{"Cookie", op.cookie}}).result_int(),
            401u);
  EXPECT_EQ(call(http::verb::delete_, "/api/v1/users/admin", "", h).result_int(), 409u);
  EXPECT_EQ(call(http::verb::delete_, "/api/v1/users/ghost", "", h).result_int(), 404u);
}

TEST_F(WebuiTest, StaticFilesAndPathTraversal) {
  auto index = call(http::verb::get, "/");
  EXPECT_EQ(index.result_int(), 200u);
  EXPECT_EQ(index[http::field::content_type], "text/html; charset=utf-8");
  auto js = call(http::verb::get, "/js/app.js?v=1");
  EXPECT_EQ(js.result_int(), 200u);
  EXPECT_EQ(js[http::field::content_type], "text/javascript; charset=utf-8");
  EXPECT_EQ(js.body(), "console.log(1)");
  for (const char* bad :
       {"/../secret.txt", "/js/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2fsecret.txt",
        "/js/%2e%2e/%2e%2e/secret.txt", "/index.html%00.js", "/..%5csecret.txt", "/%zz"}) {
    auto res = call(http::verb::get, bad);
    EXPECT_EQ(res.result_int(), 400u) << bad;
    EXPECT_EQ(res.body().find("outside"), std::string::npos) << bad;
  }
  for (const char* missing : {"//etc/passwd", "/etc/passwd", "/link.txt", "/js", "/nothing.html"}) {
    auto res = call(http::verb::get, missing);
    EXPECT_EQ(res.result_int(), 404u) << missing;
    EXPECT_EQ(res.body().find("outside"), std::string::npos) << missing;
  }
  EXPECT_EQ(call(http::verb::get, "http://evil/index.html").result_int(), 400u);
  EXPECT_EQ(call(http::verb::post, "/index.html", "x", {{"Origin", kOrigin}}).result_int(), 405u);
}

}  // namespace
}  // namespace cordon::webui

// ---- TOTP ----

namespace cordon::webui {
namespace {

TEST(Totp, Base32Rfc4648Vectors) {
  const std::vector<std::pair<std::string, std::string>> vectors = {{"", ""},
                                                                    {"f", "MY"},
                                                                    {"fo", "MZXQ"},
                                                                    {"foo", "MZXW6"},
                                                                    {"foob", "MZXW6YQ"},
                                                                    {"fooba", "MZXW6YTB"},
                                                                    {"foobar", "MZXW6YTBOI"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(auth::base32_encode(plain), encoded);
    EXPECT_EQ(auth::base32_decode(encoded), plain) << encoded;
  }
  EXPECT_EQ(auth::base32_decode("MZXW6YQ="), "foob");      // padding
  EXPECT_EQ(auth::base32_decode("mzxw6ytboi"), "foobar");  // lower case
  EXPECT_FALSE(auth::base32_decode("MZ1W"));               // '1' is not in the alphabet
  EXPECT_FALSE(auth::base32_decode("MZ"));                 // stray bits: not canonical
  EXPECT_FALSE(auth::base32_decode("M"));                  // a dangling character
  EXPECT_FALSE(auth::base32_decode("MY=Y"));               // padding inside
  const std::string bytes("\x00\xff\x10\x80\x7f", 5);
  EXPECT_EQ(auth::base32_decode(auth::base32_encode(bytes)), bytes);
}

TEST(Totp, Rfc4226AndRfc6238Sha1Vectors) {
  const std::string key = "12345678901234567890";
  const uint32_t hotp[] = {755224, 287082, 359152, 969429, 338314,
                           254676, 287922, 162583, 399871, 520489};
  for (uint64_t c = 0; c < 10; ++c) EXPECT_EQ(auth::hotp(key, c), hotp[c]) << c;
  // RFC 6238 appendix B, SHA-1: 8 digits there, the last 6 of them here.
  const std::vector<std::pair<int64_t, uint32_t>> totp = {
      {59, 94287082},         {1111111109, 7081804},  {1111111111, 14050471},
      {1234567890, 89005924}, {2000000000, 69279037}, {20000000000, 65353130}};
  for (const auto& [t, code8] : totp) {
    EXPECT_EQ(auth::hotp(key, static_cast<uint64_t>(t / 30), 8), code8) << t;
    char six[8];
    std::snprintf(six, sizeof six, "%06u", code8 % 1000000);
    EXPECT_EQ(auth::totp_match(key, six, t, -1), t / 30) << t;
  }
}

TEST(Totp, WindowOneStepAndNoReuse) {
  const std::string key = "12345678901234567890";
  const int64_t t = 1111111109;                                      // step 37037036, code 081804
  EXPECT_EQ(auth::totp_match(key, "081804", t + 30, -1), 37037036);  // one step late: fine
  EXPECT_EQ(auth::totp_match(key, "081804", t - 30, -1), 37037036);  // one step early: fine
  EXPECT_FALSE(auth::totp_match(key, "081804", t + 60, -1));         // two steps: no
  EXPECT_FALSE(auth::totp_match(key, "081804", t, 37037036));        // used already
  EXPECT_FALSE(auth::totp_match(key, "81804", t, -1));
  EXPECT_FALSE(auth::totp_match(key, "08180a", t, -1));
  EXPECT_FALSE(auth::totp_match(key, "0818045", t, -1));
}

std::string code_at(const std::string& secret_b32, auth::Clock::time_point when) {
  const auto secret = auth::base32_decode(secret_b32);
  EXPECT_TRUE(secret.has_value());
  const int64_t t =
      std::chrono::duration_cast<std::chrono::seconds>(when.time_since_epoch()).count();
  char six[8];
  std::snprintf(six, sizeof six, "%06u",
                auth::hotp(secret.value_or(""), static_cast<uint64_t>(t / 30)));
  return six;
}

class WebuiTotpTest : public WebuiTest {
 protected:
  HttpResponse login_totp(const std::string& user, const std::optional<std::string>& totp,
                          const std::string& password = kPassword) {
    json::object body{{"user", user}, {"password", password}};
    if (totp) body["totp"] = *totp;
    return call(http::verb::post, "/api/v1/login", json::serialize(body), {{"Origin", kOrigin}});
  }
  // Enrols and confirms TOTP for the logged-in user; returns the secret.
  std::string enrol(const Login& l) {
    auto res = call(http::verb::post, "/api/v1/session/totp", "", auth_headers(l));
    EXPECT_EQ(res.result_int(), 200u) << res.body();
    auto o = json::parse(res.body()).as_object();
    const std::string secret = S(o.at("secret"));
    EXPECT_EQ(auth::base32_decode(secret).value_or("").size(), 20u);
    EXPECT_EQ(S(o.at("otpauth_uri")).rfind("otpauth://totp/Cordon:", 0), 0u);
    EXPECT_NE(S(o.at("otpauth_uri")).find("secret=" + secret), std::string::npos);
    auto ok = call(http::verb::post, "/api/v1/session/totp/confirm",
                   json::serialize(json::object{{"code", code_at(secret, now_)}}), auth_headers(l));
    EXPECT_EQ(ok.result_int(), 200u) << ok.body();
    return secret;
  }
  std::string error_code(const HttpResponse& res) {
    return S(json::parse(res.body()).at("error").at("code"));
  }
};

TEST_F(WebuiTotpTest, EnrolConfirmLoginDisable) {
  setup_admin();
  Login l = login("admin");
  // Enrolment is not active before confirmation; a wrong code does not confirm it.
  auto begin = call(http::verb::post, "/api/v1/session/totp", "", auth_headers(l));
  ASSERT_EQ(begin.result_int(), 200u) << begin.body();
  const std::string first = S(json::parse(begin.body()).at("secret"));
  EXPECT_EQ(login_totp("admin", std::nullopt).result_int(), 200u);
  l = login("admin");
  std::string wrong = code_at(first, now_);
  wrong[0] = wrong[0] == '9' ? '0' : static_cast<char>(wrong[0] + 1);
  auto bad = call(http::verb::post, "/api/v1/session/totp/confirm",
                  json::serialize(json::object{{"code", wrong}}), auth_headers(l));
  EXPECT_EQ(bad.result_int(), 400u) << bad.body();
  EXPECT_FALSE(json::parse(call(http::verb::get, "/api/v1/session", "", auth_headers(l)).body())
                   .at("totp_enabled")
                   .as_bool());

  const std::string secret = enrol(l);
  EXPECT_NE(secret, first);  // a new enrolment, a new secret
  auto session = json::parse(call(http::verb::get, "/api/v1/session", "", auth_headers(l)).body());
  EXPECT_TRUE(session.at("totp_enabled").as_bool());
  EXPECT_FALSE(session.at("totp_enrollment_required").as_bool());
  // Enrolling again while active is refused.
  EXPECT_EQ(call(http::verb::post, "/api/v1/session/totp", "", auth_headers(l)).result_int(), 409u);

  auto missing = login_totp("admin", std::nullopt);
  EXPECT_EQ(missing.result_int(), 401u);
  EXPECT_EQ(error_code(missing), "totp_required");
  EXPECT_TRUE(missing[http::field::set_cookie].empty());
  // The code used to confirm cannot log in within its window.
  auto reused = login_totp("admin", code_at(secret, now_));
  EXPECT_EQ(reused.result_int(), 401u);
  EXPECT_EQ(error_code(reused), "totp_invalid");
  auto wrong_password =
      login_totp("admin", code_at(secret, now_ + std::chrono::seconds(30)), "not the password!!");
  EXPECT_EQ(error_code(wrong_password), "unauthorized");
  now_ += std::chrono::seconds(30);
  auto good = login_totp("admin", code_at(secret, now_));
  ASSERT_EQ(good.result_int(), 200u) << good.body();
  EXPECT_EQ(error_code(login_totp("admin", code_at(secret, now_))), "totp_invalid");  // used

  // Turning it off needs the password.
  auto bad_off =
      call(http::verb::delete_, "/api/v1/session/totp",
           json::serialize(json::object{{"password", "not the password!!"}}), auth_headers(l));
  EXPECT_EQ(bad_off.result_int(), 403u);
  auto off = call(http::verb::delete_, "/api/v1/session/totp",
                  json::serialize(json::object{{"password", kPassword}}), auth_headers(l));
  EXPECT_EQ(off.result_int(), 200u) << off.body();
  EXPECT_EQ(login_totp("admin", std::nullopt).result_int(), 200u);

  // Audited, and the secret is in no audit entry.
  auto audit = call(http::verb::get, "/api/v1/login-audit", "", auth_headers(login("admin")));
  const std::string text = audit.body();
  for (const char* event : {"totp enrol", "totp confirm", "totp disable"})
    EXPECT_NE(text.find(event), std::string::npos) << event;
  EXPECT_NE(text.find("totp required"), std::string::npos);
  EXPECT_NE(text.find("failed: totp"), std::string::npos);
  EXPECT_EQ(text.find(secret), std::string::npos);
}

TEST_F(WebuiTotpTest, WrongCodesAreThrottled) {
  setup_admin();
  const std::string secret = enrol(login("admin"));
  now_ += std::chrono::seconds(90);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(error_code(login_totp("admin", "000000")), "totp_invalid");
  // Locked now: even the right code gets 429.
  EXPECT_EQ(login_totp("admin", code_at(secret, now_)).result_int(), 429u);
}

TEST_F(WebuiTotpTest, AdminResetsAnotherUsersTotp) {
  setup_admin();
  Login admin = login("admin");
  ASSERT_EQ(call(http::verb::post, "/api/v1/users",
                 json::serialize(
                     json::object{{"user", "op"}, {"password", kPassword}, {"role", "operator"}}),
                 auth_headers(admin))
                .result_int(),
            201u);
  enrol(login("op"));
  EXPECT_EQ(error_code(login_totp("op", std::nullopt)), "totp_required");
  auto reset = call(http::verb::delete_, "/api/v1/users/op/totp", "", auth_headers(admin));
  EXPECT_EQ(reset.result_int(), 200u) << reset.body();
  EXPECT_EQ(login_totp("op", std::nullopt).result_int(), 200u);
  EXPECT_EQ(
      call(http::verb::delete_, "/api/v1/users/op/totp", "", auth_headers(admin)).result_int(),
      409u);  // nothing to reset
  EXPECT_EQ(
      call(http::verb::delete_, "/api/v1/users/nobody/totp", "", auth_headers(admin)).result_int(),
      404u);
  auto audit = call(http::verb::get, "/api/v1/login-audit", "", auth_headers(admin)).body();
  EXPECT_NE(audit.find("totp reset op"), std::string::npos);
}

TEST_F(WebuiTotpTest, AdminsWithoutTotpMustEnrolWhenRequired) {
  setup_admin();
  Login admin = login("admin");
  ASSERT_EQ(call(http::verb::post, "/api/v1/users",
                 json::serialize(
                     json::object{{"user", "op"}, {"password", kPassword}, {"role", "operator"}}),
                 auth_headers(admin))
                .result_int(),
            201u);
  EXPECT_FALSE(
      json::parse(call(http::verb::get, "/api/v1/system/security", "", auth_headers(admin)).body())
          .at("require_totp_for_admins")
          .as_bool());
  EXPECT_EQ(call(http::verb::put, "/api/v1/system/security", R"({"require_totp_for_admins":1})",
                 auth_headers(admin))
                .result_int(),
            400u);
  auto on = call(http::verb::put, "/api/v1/system/security", R"({"require_totp_for_admins":true})",
                 auth_headers(admin));
  ASSERT_EQ(on.result_int(), 200u) << on.body();

  // The admin's session (and a new one) may only see itself, log out and enrol.
  admin = login("admin");
  auto session =
      json::parse(call(http::verb::get, "/api/v1/session", "", auth_headers(admin)).body());
  EXPECT_TRUE(session.at("totp_enrollment_required").as_bool());
  for (const auto& [verb, path] : std::vector<std::pair<http::verb, std::string>>{
           {http::verb::get, "/api/v1/users"},
           {http::verb::get, "/api/v1/health"},
           {http::verb::get, "/api/v1/system/security"},
           {http::verb::post, "/api/v1/session/password"}}) {
    auto res = call(verb, path, "{}", auth_headers(admin));
    EXPECT_EQ(res.result_int(), 403u) << path;
    EXPECT_EQ(error_code(res), "totp_enrollment_required") << path;
  }
  // Operators are not concerned.
  Login op = login("op");
  EXPECT_EQ(call(http::verb::get, "/api/v1/health", "", auth_headers(op)).result_int(), 200u);
  enrol(admin);
  EXPECT_EQ(call(http::verb::get, "/api/v1/users", "", auth_headers(admin)).result_int(), 200u);
  EXPECT_FALSE(json::parse(call(http::verb::get, "/api/v1/session", "", auth_headers(admin)).body())
                   .at("totp_enrollment_required")
                   .as_bool());
  auto audit = call(http::verb::get, "/api/v1/login-audit", "", auth_headers(admin)).body();
  EXPECT_NE(audit.find("require totp for admins on"), std::string::npos);
}

// ---- certificate upload ----

struct Pem {
  std::string cert, key;
};
std::string bio_text(BIO* b) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<size_t>(n));
}
std::string key_pem(EVP_PKEY* key) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::string out = bio_text(b);
  BIO_free(b);
  return out;
}
// A certificate for `key`'s public half, valid from now+`from` to now+`to` seconds.
std::string cert_pem(EVP_PKEY* key, long from, long to, const std::string& cn) {
  X509* cert = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
  X509_set_version(cert, 2);
  X509_gmtime_adj(X509_getm_notBefore(cert), from);
  X509_gmtime_adj(X509_getm_notAfter(cert), to);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name,
                                            ("DNS:" + cn + ",IP:10.60.0.9").c_str());
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  X509_sign(cert, key, EVP_sha256());
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, cert);
  std::string out = bio_text(b);
  BIO_free(b);
  X509_free(cert);
  return out;
}
Pem make_pair(EVP_PKEY* key, long from, long to, const std::string& cn) {
  return Pem{cert_pem(key, from, to, cn), key_pem(key)};
}
std::string read_all(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST_F(WebuiTest, CertificateUploadCheckedAndSwapped) {
  setup_admin();
  Login admin = login("admin");
  auto before = call(http::verb::get, "/api/v1/system/certificate", "", auth_headers(admin));
  ASSERT_EQ(before.result_int(), 200u) << before.body();
  auto b = json::parse(before.body()).as_object();
  EXPECT_TRUE(b.at("self_signed").as_bool());
  EXPECT_EQ(S(b.at("subject")), "CN=cordon-webd,O=Cordon");
  EXPECT_EQ(json::serialize(b.at("sans")), R"(["IP:10.60.0.1"])");
  const std::string old_cert = read_all(cert_file_), old_key = read_all(key_file_);
  const auto old_context = certificates_->current();

  EVP_PKEY* p384 = EVP_EC_gen("P-384");
  EVP_PKEY* other = EVP_EC_gen("P-256");
  EVP_PKEY* p521 = EVP_EC_gen("P-521");
  EVP_PKEY* rsa1024 = EVP_RSA_gen(1024);
  const long day = 24 * 3600;
  const Pem good = make_pair(p384, -60, 30 * day, "cordon.example");
  struct Case {
    std::string what, cert, key, path;
  };
  const std::vector<Case> refused = {
      {"mismatched key", good.cert, key_pem(other), "/private_key_pem"},
      {"expired", cert_pem(p384, -30 * day, -day, "old.example"), good.key, "/certificate_pem"},
      {"not yet valid", cert_pem(p384, day, 30 * day, "soon.example"), good.key,
       "/certificate_pem"},
      {"garbage certificate", "hello, not a certificate", good.key, "/certificate_pem"},
      {"broken PEM", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", good.key,
       "/certificate_pem"},
      {"garbage key", good.cert, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
       "/private_key_pem"},
      {"P-521", cert_pem(p521, -60, day, "big.example"), key_pem(p521), "/private_key_pem"},
      {"RSA 1024", cert_pem(rsa1024, -60, day, "weak.example"), key_pem(rsa1024),
       "/private_key_pem"},
  };
  for (const Case& c : refused) {
    auto res =
        call(http::verb::post, "/api/v1/system/certificate",
             json::serialize(json::object{{"certificate_pem", c.cert}, {"private_key_pem", c.key}}),
             auth_headers(admin));
    EXPECT_EQ(res.result_int(), 400u) << c.what << ": " << res.body();
    EXPECT_EQ(S(json::parse(res.body()).at("error").at("path")), c.path)
        << c.what << ": " << res.body();
    // Nothing changed.
    EXPECT_EQ(read_all(cert_file_), old_cert) << c.what;
    EXPECT_EQ(read_all(key_file_), old_key) << c.what;
    EXPECT_EQ(certificates_->current(), old_context) << c.what;
    EXPECT_FALSE(fs::exists(cert_file_ + ".new") || fs::exists(key_file_ + ".new")) << c.what;
  }

  auto up = call(
      http::verb::post, "/api/v1/system/certificate",
      json::serialize(json::object{{"certificate_pem", good.cert}, {"private_key_pem", good.key}}),
      auth_headers(admin));
  ASSERT_EQ(up.result_int(), 200u) << up.body();
  auto after =
      json::parse(
          call(http::verb::get, "/api/v1/system/certificate", "", auth_headers(admin)).body())
          .as_object();
  EXPECT_EQ(S(after.at("subject")), "CN=cordon.example");
  EXPECT_EQ(json::serialize(after.at("sans")), R"(["DNS:cordon.example","IP:10.60.0.9"])");
  EXPECT_NE(S(after.at("sha256_fingerprint")), S(b.at("sha256_fingerprint")));
  EXPECT_EQ(S(after.at("sha256_fingerprint")).size(), 32u * 3 - 1);
  EXPECT_NE(certificates_->current(), old_context);
  EXPECT_NE(read_all(cert_file_), old_cert);
  EXPECT_EQ(fs::status(key_file_).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  // What is on disk loads again (as at the next start).
  server::CertificateStore again(cert_file_, key_file_, true);
  ASSERT_TRUE(again.load().ok());
  EXPECT_EQ(again.info().value().sha256_fingerprint, S(after.at("sha256_fingerprint")));
  auto audit = call(http::verb::get, "/api/v1/login-audit", "", auth_headers(admin)).body();
  EXPECT_NE(audit.find("ok: " + S(after.at("sha256_fingerprint"))), std::string::npos);
  EXPECT_NE(audit.find("refused: the certificate expired"), std::string::npos);
  EVP_PKEY_free(p384);
  EVP_PKEY_free(other);
  EVP_PKEY_free(p521);
  EVP_PKEY_free(rsa1024);
}

TEST(CertificateStore, FilesFromCommandLineAreNotReplaced) {
  const fs::path dir = fs::temp_directory_path() / ("cordon-webd-cs-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string cert = (dir / "c.pem").string(), key = (dir / "k.pem").string();
  ASSERT_TRUE(server::ensure_self_signed(cert, key, {"DNS:localhost"}).ok());
  server::CertificateStore store(cert, key, false);
  ASSERT_TRUE(store.load().ok());
  EVP_PKEY* k = EVP_EC_gen("P-256");
  auto s = store.replace(cert_pem(k, -60, 3600, "x.example"), key_pem(k));
  EVP_PKEY_free(k);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "conflict");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace cordon::webui
