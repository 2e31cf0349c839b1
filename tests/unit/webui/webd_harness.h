// The real cordon-webd in front of a fake controld, for end-to-end tests over loopback.
// controld's own HttpServer, on a unix socket in a fresh directory, stands in for controld
// (each test adds the routes it needs); webd's HttpsServer serves TLS on 127.0.0.1 with a
// fresh self-signed certificate. Both run on one io_context on a thread of its own, so
// whatever touches them (Accounts, the fake's state) goes through on_io(). Accounts:
// admin (admin), oper (operator), watcher (auditor), all with kPassword.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <filesystem>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <thread>

#include "control/api/http_server.h"
#include "webui/auth/accounts.h"
#include "webui/routes/app.h"
#include "webui/server/https_server.h"
#include "webui/server/tls.h"

namespace cordon::webui::testing {

inline constexpr const char* kOrigin = "https://10.60.0.1:8443";
inline constexpr const char* kPassword = "a long enough password";

struct Login {
  std::string session, csrf;
};

class WebdHarness : public ::testing::Test {
 protected:
  // Call from SetUp(). `name` prefixes the directory (the test's name is appended);
  // `controld_body_limit` is the fake's request limit; `add_routes` adds the fake's
  // routes; `options` configures webd (its address and port are set here).
  void start(const std::string& name, uint64_t controld_body_limit,
             const std::function<void(control::api::HttpServer&)>& add_routes,
             server::HttpsServer::Options options) {
    dir_ = std::filesystem::temp_directory_path() /
           (name + "-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "app");

    control::api::HttpServer::Options fake{(dir_ / "controld.sock").string(),
                                           0600,
                                           std::nullopt,
                                           {static_cast<uint32_t>(::getuid())},
                                           controld_body_limit,
                                           64};
    controld_.emplace(io_, fake);
    add_routes(*controld_);
    ASSERT_TRUE(controld_->listen().ok());

    auth::Accounts::Options accounts;
    accounts.pwhash_ops = 1;  // the hash cost is not what is tested here
    accounts.pwhash_memory = 8192;
    accounts_.emplace(auth::Accounts::open((dir_ / "webd.db").string(), accounts).value());
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
    options.address = "127.0.0.1";
    options.port = 0;
    server_.emplace(io_, *certificates_, *app_, options);
    ASSERT_TRUE(server_->listen().ok());
    port_ = server_->port();
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    io_.stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
    app_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Runs `f` on the server's thread (Accounts and the fake belong to it) and waits.
  template <class F>
  auto on_io(F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    boost::asio::post(io_, [&task] { task(); });
    return result.get();
  }

  Login login(const std::string& user) {
    return on_io([&] {
      auto l = accounts_->login(user, kPassword, "127.0.0.1").value();
      return Login{l.session_id, l.session.csrf_token};
    });
  }

  std::filesystem::path dir_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  std::optional<control::api::HttpServer> controld_;
  std::optional<auth::Accounts> accounts_;
  std::optional<routes::ControldClient> client_;
  std::optional<server::CertificateStore> certificates_;
  std::optional<routes::App> app_;
  std::optional<server::HttpsServer> server_;
  uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace cordon::webui::testing
