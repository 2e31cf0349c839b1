#include "webui/server/https_server.h"

#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>

namespace cordon::webui::server {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {
constexpr uint32_t kHeaderLimit = 16 * 1024;
}

class HttpsServer::Connection : public std::enable_shared_from_this<HttpsServer::Connection> {
 public:
  Connection(HttpsServer& server, tcp::socket socket)
      : server_(server), stream_(std::move(socket), *server.tls_), live_(server.live_) {
    ++*live_;
    beast::error_code ec;
    const auto remote = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    peer_ = ec ? "unknown" : remote.address().to_string();
  }
  ~Connection() { --*live_; }

  void start() {
    beast::get_lowest_layer(stream_).expires_after(server_.options_.read_timeout);
    stream_.async_handshake(asio::ssl::stream_base::server,
                            [self = shared_from_this()](beast::error_code ec) {
                              if (!ec) self->read();
                            });
  }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(server_.options_.max_body);
    beast::get_lowest_layer(stream_).expires_after(server_.options_.read_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      write(routes::error_reply(413, "too_large",
                                "the request body is larger than " +
                                    std::to_string(server_.options_.max_body) + " bytes"),
            true);
      return;
    }
    if (ec == http::error::header_limit) {
      write(routes::error_reply(431, "too_large", "the request header is larger than 16 KiB"),
            true);
      return;
    }
    if (ec) {
      if (ec.category() == beast::error_code(http::error::end_of_stream).category() &&
          ec != http::error::end_of_stream && ec != http::error::partial_message) {
        write(routes::error_reply(400, "invalid", "malformed HTTP request: " + ec.message()), true);
        return;
      }
      return close();  // gone, or too slow (the timer has closed the socket already)
    }
    beast::get_lowest_layer(stream_).expires_never();
    request_ = parser_->release();
    keep_alive_ = request_.keep_alive();
    auto self = shared_from_this();
    auto answered = std::make_shared<bool>(false);
    server_.app_.handle(request_, peer_, [self, answered](routes::HttpResponse res) {
      if (*answered) return;
      *answered = true;
      self->write(std::move(res), !self->keep_alive_);
    });
  }

  void write(routes::HttpResponse res, bool close_after) {
    auto out = std::make_shared<routes::HttpResponse>(std::move(res));
    routes::add_security_headers(*out);
    out->version(11);
    out->keep_alive(!close_after);
    out->prepare_payload();
    beast::get_lowest_layer(stream_).expires_after(server_.options_.read_timeout);
    http::async_write(stream_, *out,
                      [self = shared_from_this(), out, close_after](beast::error_code ec, size_t) {
                        if (ec || close_after) return self->close();
                        self->read();
                      });
  }

  void close() {
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(2));
    stream_.async_shutdown([self = shared_from_this()](beast::error_code) {
      beast::error_code ignored;
      beast::get_lowest_layer(self->stream_).socket().close(ignored);
    });
  }

  HttpsServer& server_;
  beast::ssl_stream<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  routes::HttpRequest request_;
  std::string peer_;
  bool keep_alive_ = false;
  std::shared_ptr<size_t> live_;
};

HttpsServer::HttpsServer(asio::io_context& io, std::shared_ptr<asio::ssl::context> tls,
                         routes::App& app, Options options)
    : tls_(std::move(tls)), app_(app), options_(std::move(options)), acceptor_(io) {}

HttpsServer::~HttpsServer() {
  beast::error_code ignored;
  acceptor_.close(ignored);
}

control::Status HttpsServer::listen() {
  beast::error_code ec;
  const auto address = asio::ip::make_address(options_.address, ec);
  if (ec) return control::Error{"invalid", "bad listen address " + options_.address, "--listen"};
  const tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return control::Error{"io", "cannot listen on " + options_.address + ":" +
                                    std::to_string(options_.port) + ": " + ec.message()};
  accept();
  return control::ok();
}

uint16_t HttpsServer::port() const {
  beast::error_code ec;
  return acceptor_.local_endpoint(ec).port();
}

void HttpsServer::accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      if (*live_ >= options_.max_connections) {
        beast::error_code ignored;
        socket.close(ignored);  // over the cap: closed at once, nothing read
      } else {
        std::make_shared<Connection>(*this, std::move(socket))->start();
      }
    }
    accept();
  });
}

}  // namespace cordon::webui::server
