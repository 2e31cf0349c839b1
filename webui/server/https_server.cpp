#include "webui/server/https_server.h"

#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json.hpp>
#include <deque>
#include <optional>

namespace cordon::webui::server {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

namespace {
constexpr uint32_t kHeaderLimit = 16 * 1024;
constexpr size_t kClientMessageLimit = 4096;  // the client has nothing to say: small frames only
constexpr size_t kPollBelow = 64;             // frames waiting to be sent before polling stops
constexpr int kEventsPerPoll = 100;
constexpr int kPollWaitSeconds = 25;  // controld's long poll; well under the client's 120 s
constexpr std::chrono::seconds kRetryAfter{2};  // controld unreachable: try again
constexpr std::chrono::seconds kCloseGrace{5};  // a close handshake that hangs is cut
}  // namespace

// One live-events WebSocket. Threads: the io_context's single thread, like everything here.
class HttpsServer::EventsSocket : public std::enable_shared_from_this<HttpsServer::EventsSocket> {
 public:
  EventsSocket(HttpsServer& server, std::shared_ptr<asio::ssl::context> tls, TlsStream stream,
               routes::App::EventsGrant grant, std::string peer)
      : server_(server),
        tls_(std::move(tls)),
        ws_(std::move(stream)),
        grant_(std::move(grant)),
        peer_(std::move(peer)),
        after_(grant_.after),
        watchdog_(ws_.get_executor()),
        retry_(ws_.get_executor()),
        live_(server.live_),
        sockets_(server.event_sockets_) {
    ++*live_;
    ++*sockets_;
  }
  ~EventsSocket() { release(); }

  void start(routes::HttpRequest req) {
    beast::get_lowest_layer(ws_).expires_never();  // the websocket's own timeouts from here
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = std::chrono::seconds(15);
    timeouts.idle_timeout = std::chrono::seconds(60);
    timeouts.keep_alive_pings = true;
    ws_.set_option(timeouts);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { routes::add_security_headers(res); }));
    ws_.read_message_max(kClientMessageLimit);
    ws_.text(true);
    upgrade_request_ = std::move(req);  // kept for as long as the accept may look at it
    auto self = shared_from_this();
    ws_.async_accept(upgrade_request_, [self](beast::error_code ec) {
      if (ec) return self->stop();
      self->read();
      self->watch();
      self->poll();
    });
  }

 private:
  // Client messages are read (so control frames are answered) and dropped.
  void read() {
    ws_.async_read(incoming_, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->incoming_.clear();
      if (ec) return self->stop();  // closed, or a message over the limit (Beast sent 1009)
      self->read();
    });
  }

  void watch() {
    watchdog_.expires_after(server_.options_.ws_check_interval);
    watchdog_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->stopped_) return;
      if (self->closing_) {
        if (std::chrono::steady_clock::now() - self->closing_since_ > kCloseGrace)
          return self->stop();
      } else if (!self->server_.app_.session_alive(self->grant_.session_id)) {
        self->close(websocket::close_code::policy_error, "session ended");
      } else if (self->writing_ && std::chrono::steady_clock::now() - self->write_started_ >
                                       self->server_.options_.ws_write_timeout) {
        self->close(websocket::close_code::try_again_later, "too slow: events not taken");
      }
      self->watch();
    });
  }

  void poll() {
    if (closing_ || polling_ || queue_.size() >= kPollBelow) return;
    polling_ = true;
    // Without a position, the first call only learns the newest id (limit=1, no wait).
    const std::string target = after_ ? "/v1/events?after=" + std::to_string(*after_) +
                                            "&limit=" + std::to_string(kEventsPerPoll) +
                                            "&wait=" + std::to_string(kPollWaitSeconds)
                                      : std::string("/v1/events?limit=1");
    server_.app_.controld().forward("GET", target, "", grant_.user, peer_,
                                    [self = shared_from_this()](routes::ControldReply reply) {
                                      self->on_poll(std::move(reply));
                                    });
  }

  void on_poll(routes::ControldReply reply) {
    polling_ = false;
    if (closing_) return;
    json::error_code ec;
    const json::value v = reply.status == 200 ? json::parse(reply.body, ec) : json::value();
    const json::object* o = !ec && v.is_object() ? &v.as_object() : nullptr;
    const json::value* events = o ? o->if_contains("events") : nullptr;
    const json::value* last = o ? o->if_contains("last_id") : nullptr;
    if (!events || !events->is_array() || !last || !last->is_int64()) {
      // controld down or answering oddly: the socket stays, the poll is tried again.
      retry_.expires_after(kRetryAfter);
      retry_.async_wait([self = shared_from_this()](beast::error_code rec) {
        if (!rec) self->poll();
      });
      return;
    }
    if (after_) {
      for (const json::value& event : events->as_array()) queue_.push_back(json::serialize(event));
    }
    after_ = std::max(after_.value_or(0), last->as_int64());
    write_next();
    poll();
  }

  void write_next() {
    if (writing_ || closing_ || queue_.empty()) return;
    writing_ = true;
    write_started_ = std::chrono::steady_clock::now();
    ws_.async_write(asio::buffer(queue_.front()),
                    [self = shared_from_this()](beast::error_code ec, size_t) {
                      self->writing_ = false;
                      if (ec) return self->stop();
                      self->queue_.pop_front();
                      self->write_next();
                      self->poll();
                    });
  }

  void close(websocket::close_code code, const char* reason) {
    if (closing_) return;
    closing_ = true;
    closing_since_ = std::chrono::steady_clock::now();
    ws_.async_close(websocket::close_reason(code, reason),
                    [self = shared_from_this()](beast::error_code) { self->stop(); });
  }

  void stop() {
    if (stopped_) return;
    stopped_ = closing_ = true;
    watchdog_.cancel();
    retry_.cancel();
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws_).socket().close(ignored);
    // A poll still waiting in controld keeps this object up to kPollWaitSeconds more;
    // the socket no longer counts against the caps.
    release();
  }

  void release() {
    if (released_) return;
    released_ = true;
    --*live_;
    --*sockets_;
  }

  HttpsServer& server_;
  std::shared_ptr<asio::ssl::context> tls_;  // kept while the connection lives
  websocket::stream<TlsStream> ws_;
  routes::App::EventsGrant grant_;
  std::string peer_;
  routes::HttpRequest upgrade_request_;
  std::optional<int64_t> after_;
  beast::flat_buffer incoming_;
  std::deque<std::string> queue_;
  asio::steady_timer watchdog_, retry_;
  bool polling_ = false, writing_ = false, closing_ = false, stopped_ = false, released_ = false;
  std::chrono::steady_clock::time_point write_started_, closing_since_;
  std::shared_ptr<size_t> live_, sockets_;
};

class HttpsServer::Connection : public std::enable_shared_from_this<HttpsServer::Connection> {
 public:
  Connection(HttpsServer& server, tcp::socket socket)
      : server_(server),
        tls_(server.certificates_.current()),
        stream_(std::move(socket), *tls_),
        live_(server.live_) {
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
  // The header first: only once the App has seen it (and, for the firmware upload, checked
  // the session, role and CSRF token) is the body read, with the limit that request may
  // have. A refused upload is answered without reading any of its body.
  void read() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    // While the header is parsed a Content-Length is held against the largest limit any
    // request may have; the request's own limit is set once the header is known.
    parser_->body_limit(std::max(server_.options_.max_body, server_.options_.max_upload));
    body_limit_ = std::max(server_.options_.max_body, server_.options_.max_upload);
    beast::get_lowest_layer(stream_).expires_after(server_.options_.read_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return on_read(ec);
    routes::App::BodyPermit permit = server_.app_.body_permit(parser_->get());
    if (permit.refusal) return write(std::move(*permit.refusal), true);  // the body stays unread
    body_limit_ = permit.upload ? server_.options_.max_upload : server_.options_.max_body;
    if (const auto length = parser_->content_length(); length && *length > body_limit_)
      return write(too_large(), true);
    parser_->body_limit(body_limit_);
    if (permit.upload) {
      // An admin's bundle may take longer than a request normally may; the deadline
      // still bounds it.
      beast::get_lowest_layer(stream_).expires_after(server_.options_.upload_timeout);
      auto expect = parser_->get().find(http::field::expect);
      if (expect != parser_->get().end() && beast::iequals(expect->value(), "100-continue")) {
        // curl waits for this before sending a large body; sent only now that it may.
        auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
        http::async_write(stream_, *cont,
                          [self = shared_from_this(), cont](beast::error_code wec, size_t) {
                            if (wec) return self->close();
                            self->read_body();
                          });
        return;
      }
    }
    read_body();
  }

  void read_body() {
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  routes::HttpResponse too_large() const {
    return routes::error_reply(
        413, "too_large",
        "the request body is larger than " + std::to_string(body_limit_) + " bytes");
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::body_limit) return write(too_large(), true);
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
    if (websocket::is_upgrade(request_)) return upgrade();
    auto self = shared_from_this();
    auto answered = std::make_shared<bool>(false);
    server_.app_.handle(std::move(request_), peer_, [self, answered](routes::HttpResponse res) {
      if (*answered) return;
      *answered = true;
      self->write(std::move(res), !self->keep_alive_);
    });
  }

  void upgrade() {
    auto decision = server_.app_.events_socket(request_);
    if (auto* refusal = std::get_if<routes::HttpResponse>(&decision))
      return write(std::move(*refusal), true);
    if (*server_.event_sockets_ >= server_.options_.max_event_sockets)
      return write(routes::error_reply(503, "unavailable",
                                       "too many live-event connections: try again later"),
                   true);
    std::make_shared<EventsSocket>(server_, tls_, std::move(stream_),
                                   std::move(std::get<routes::App::EventsGrant>(decision)), peer_)
        ->start(std::move(request_));
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
  std::shared_ptr<asio::ssl::context> tls_;  // the certificate current at accept
  TlsStream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  routes::HttpRequest request_;
  std::string peer_;
  bool keep_alive_ = false;
  uint64_t body_limit_ = 0;  // of the request being read
  std::shared_ptr<size_t> live_;
};

HttpsServer::HttpsServer(asio::io_context& io, CertificateStore& certificates, routes::App& app,
                         Options options)
    : certificates_(certificates), app_(app), options_(std::move(options)), acceptor_(io) {}

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
