// cordon-webd's HTTPS listener (Boost.Beast over OpenSSL): TLS handshake, then HTTP/1.1
// requests handed to the App; every response gets the security headers.
// Limits: header 16 KiB, body `max_body`, a whole request (and the handshake) must
// arrive within `read_timeout` (slow clients are cut). The header is read first; the
// firmware upload (POST /api/v1/update) whose session, role and CSRF token pass
// App::body_permit may then send a body up to `max_upload` within `upload_timeout`; a
// refused one is answered without reading its body; at most `max_connections` at once
// (more are closed at accept, nothing read). The certificate comes from a
// CertificateStore at each accept, so an uploaded one serves new connections at once.
//
// GET /api/v1/events/ws upgrades to a WebSocket (after App::events_socket's checks):
// webd long-polls controld's GET /v1/events on the client's behalf, one poll at a time
// per socket, and sends one text frame per event. Bounded: at most
// `max_event_sockets` sockets (503 before upgrading); a poll is made only while fewer than
// 64 frames wait to be sent; a frame not taken by the client within `ws_write_timeout`
// closes the socket (1013, try again later); the session ending closes it (1008, checked
// every `ws_check_interval`); client messages over 4 KiB close it (1009), smaller ones are
// ignored; a client that answers no ping for 60 s is cut.
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
#include "webui/server/tls.h"

namespace cordon::webui::server {

class HttpsServer {
 public:
  struct Options {
    std::string address = "127.0.0.1";
    uint16_t port = 8443;
    uint64_t max_body = 1 << 20;
    uint64_t max_upload = 256ull << 20;  // a firmware bundle, admins only
    std::chrono::seconds upload_timeout{600};
    size_t max_connections = 64;
    std::chrono::seconds read_timeout{15};
    size_t max_event_sockets = 16;
    std::chrono::milliseconds ws_check_interval{1000};
    std::chrono::seconds ws_write_timeout{20};
  };
  HttpsServer(boost::asio::io_context& io, CertificateStore& certificates, routes::App& app,
              Options options);
  ~HttpsServer();
  control::Status listen();  // binds now; accepting starts on the io_context
  uint16_t port() const;
  size_t connections() const { return *live_; }
  size_t event_sockets() const { return *event_sockets_; }

 private:
  class Connection;
  class EventsSocket;
  void accept();
  CertificateStore& certificates_;
  routes::App& app_;
  Options options_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<size_t> live_ = std::make_shared<size_t>(0);
  std::shared_ptr<size_t> event_sockets_ = std::make_shared<size_t>(0);
};

}  // namespace cordon::webui::server
