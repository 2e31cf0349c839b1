// cordon-webd's HTTPS listener (Boost.Beast over OpenSSL): TLS handshake, then HTTP/1.1
// requests handed to the App; every response gets the security headers.
// Limits: header 16 KiB, body `max_body`, a whole request (and the handshake) must
// arrive within `read_timeout` (slow clients are cut), at most `max_connections` at once
// (more are closed at accept, nothing read).
//
// Threads: everything runs on the io_context's single thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "control/common/result.h"
#include "webui/routes/app.h"

namespace cordon::webui::server {

class HttpsServer {
 public:
  struct Options {
    std::string address = "127.0.0.1";
    uint16_t port = 8443;
    uint64_t max_body = 1 << 20;
    size_t max_connections = 64;
    std::chrono::seconds read_timeout{15};
  };
  HttpsServer(boost::asio::io_context& io, std::shared_ptr<boost::asio::ssl::context> tls,
              routes::App& app, Options options);
  ~HttpsServer();
  control::Status listen();  // binds now; accepting starts on the io_context
  uint16_t port() const;
  size_t connections() const { return *live_; }

 private:
  class Connection;
  void accept();
  std::shared_ptr<boost::asio::ssl::context> tls_;
  routes::App& app_;
  Options options_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<size_t> live_ = std::make_shared<size_t>(0);
};

}  // namespace cordon::webui::server
