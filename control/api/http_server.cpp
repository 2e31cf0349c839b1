#include "control/api/http_server.h"

#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <optional>

#include "control/common/http_path.h"

namespace cordon::control::api {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using local = asio::local::stream_protocol;

namespace {

constexpr uint32_t kHeaderLimit = 16 * 1024;
constexpr auto kRequestTimeout = std::chrono::seconds(30);

std::map<std::string, std::string> parse_query(std::string_view q) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start < q.size()) {
    size_t amp = q.find('&', start);
    if (amp == std::string_view::npos) amp = q.size();
    const std::string_view pair = q.substr(start, amp - start);
    const size_t eq = pair.find('=');
    if (!pair.empty()) {
      out[http_path::percent_decode_query(pair.substr(0, eq))] =
          eq == std::string_view::npos ? "" : http_path::percent_decode_query(pair.substr(eq + 1));
    }
    start = amp + 1;
  }
  return out;
}

std::string unix_user(uint32_t uid) {
  passwd pw{};
  passwd* found = nullptr;
  char buf[4096];
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found)
    return "uid:" + std::to_string(uid) + "(" + found->pw_name + ")";
  return "uid:" + std::to_string(uid);
}

}  // namespace

unsigned http_status(const std::string& code) {
  if (code == "invalid") return 400;
  if (code == "unauthorized") return 401;
  if (code == "forbidden") return 403;
  if (code == "not_found") return 404;
  if (code == "method_not_allowed") return 405;
  if (code == "conflict") return 409;
  if (code == "too_large") return 413;
  if (code == "dataplane" || code == "unavailable") return 503;
  return 500;
}

namespace {
json::object error_json(const Error& e) {
  json::object o{{"code", e.code}, {"message", e.message}};
  if (!e.path.empty()) o["path"] = e.path;
  if (!e.details.empty()) {
    json::array details;
    for (const Error& d : e.details) details.push_back(error_json(d));
    o["details"] = std::move(details);
  }
  return o;
}
}  // namespace

Response json_response(const json::value& body, unsigned status) {
  return Response{status, json::serialize(body)};
}

Response error_response(const Error& error) {
  return json_response(json::object{{"error", error_json(error)}}, http_status(error.code));
}

class HttpServer::Session : public std::enable_shared_from_this<HttpServer::Session> {
 public:
  Session(HttpServer& server, local::socket socket, store::Actor peer, bool trusted)
      : server_(server),
        stream_(std::move(socket)),
        peer_(std::move(peer)),
        trusted_(trusted),
        live_(server.live_) {
    ++*live_;
  }
  ~Session() { --*live_; }

  void start() { read(); }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(server_.options_.max_body);
    stream_.expires_after(kRequestTimeout);  // slow clients are cut
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      respond_and_close(error_response(
          Error{"too_large", "the request body is larger than " +
                                 std::to_string(server_.options_.max_body) + " bytes"}));
      return;
    }
    if (ec == http::error::header_limit) {
      respond_and_close(
          Response{431, R"({"error":{"code":"too_large","message":"request header too large"}})"});
      return;
    }
    if (ec) {
      if (ec != http::error::end_of_stream && ec != beast::error::timeout &&
          ec != asio::error::eof && ec != asio::error::operation_aborted &&
          ec != asio::error::connection_reset) {
        respond_and_close(
            error_response(Error{"invalid", "malformed HTTP request: " + ec.message()}));
        return;
      }
      beast::error_code ignored;
      stream_.socket().shutdown(local::socket::shutdown_both, ignored);
      return;
    }
    stream_.expires_never();  // a long poll may legitimately take a while to answer
    http::request<http::string_body> req = parser_->release();
    keep_alive_ = req.keep_alive();
    Request request;
    request.method = std::string(req.method_string());
    parse_target(req.target(), request);
    request.body = std::move(req.body());
    request.actor = peer_;
    if (trusted_) {
      // Only a trusted front-end may say on whose behalf it calls.
      if (auto user = req.find("X-Cordon-User"); user != req.end() && !user->value().empty())
        request.actor.name = "web:" + std::string(user->value());
      if (auto origin = req.find("X-Cordon-Origin");
          origin != req.end() && !origin->value().empty())
        request.actor.origin = std::string(origin->value());
    }
    auto self = shared_from_this();
    auto answered = std::make_shared<bool>(false);
    server_.dispatch(request, [self, answered](Response response) {
      if (*answered) return;
      *answered = true;
      self->write(std::move(response), !self->keep_alive_);
    });
  }

  void respond_and_close(Response response) { write(std::move(response), true); }

  void write(Response response, bool close) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(response.status), 11);
    res->set(http::field::content_type, "application/json");
    res->set(http::field::cache_control, "no-store");
    res->keep_alive(!close);
    res->body() = std::move(response.body);
    res->prepare_payload();
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res, close](beast::error_code ec, size_t) {
                        if (ec || close) {
                          beast::error_code ignored;
                          self->stream_.socket().shutdown(local::socket::shutdown_both, ignored);
                          return;
                        }
                        self->read();
                      });
  }

  HttpServer& server_;
  beast::basic_stream<local> stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  store::Actor peer_;
  bool trusted_;
  bool keep_alive_ = false;
  std::shared_ptr<size_t> live_;
};

HttpServer::HttpServer(asio::io_context& io, Options options)
    : io_(io), options_(std::move(options)), acceptor_(io) {}

HttpServer::~HttpServer() {
  beast::error_code ignored;
  acceptor_.close(ignored);
}

void HttpServer::route(const std::string& method, const std::string& pattern, Handler handler) {
  routes_.push_back(Route{method, http_path::split_path(pattern), std::move(handler)});
}

Status HttpServer::listen() {
  std::error_code fs_ec;
  std::filesystem::create_directories(std::filesystem::path(options_.socket_path).parent_path(),
                                      fs_ec);
  ::unlink(options_.socket_path.c_str());  // a stale socket from an earlier run
  beast::error_code ec;
  acceptor_.open(local(), ec);
  if (!ec) acceptor_.bind(local::endpoint(options_.socket_path), ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error{"io", "cannot listen on " + options_.socket_path + ": " + ec.message()};
  if (::chmod(options_.socket_path.c_str(), options_.socket_mode) != 0)
    return Error{"io", "cannot set the mode of " + options_.socket_path};
  if (options_.socket_gid &&
      ::chown(options_.socket_path.c_str(), static_cast<uid_t>(-1), *options_.socket_gid) != 0)
    return Error{"io", "cannot give " + options_.socket_path + " to group " +
                           std::to_string(*options_.socket_gid)};
  accept();
  return ok();
}

void HttpServer::accept() {
  acceptor_.async_accept([this](beast::error_code ec, local::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      if (*live_ >= options_.max_connections) {
        beast::error_code ignored;
        socket.close(ignored);  // over the cap: refused at once, nothing read
      } else {
        ucred cred{};
        socklen_t len = sizeof cred;
        store::Actor peer{"unknown", "unix"};
        bool trusted = false;
        if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
          peer.name = unix_user(cred.uid);
          trusted = options_.trusted_uids.count(cred.uid) > 0;
        }
        std::make_shared<Session>(*this, std::move(socket), std::move(peer), trusted)->start();
      }
    }
    accept();
  });
}

void parse_target(std::string_view target, Request& request) {
  const size_t q = target.find('?');
  request.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) request.query = parse_query(target.substr(q + 1));
}

void HttpServer::dispatch(Request& request, Responder respond) {
  const std::vector<std::string> segments = http_path::split_path(request.path);
  bool path_matched = false;
  for (Route& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    std::vector<std::string> params;
    bool match = true;
    for (size_t i = 0; i < segments.size() && match; ++i) {
      if (route.segments[i] == "{}")
        params.push_back(segments[i]);
      else
        match = route.segments[i] == segments[i];
    }
    if (!match) continue;
    path_matched = true;
    if (route.method != request.method) continue;
    request.path_params = std::move(params);
    route.handler(request, std::move(respond));
    return;
  }
  if (path_matched) {
    respond(error_response(
        Error{"method_not_allowed", request.method + " is not allowed on " + request.path}));
  } else {
    respond(error_response(Error{"not_found", "no such endpoint: " + request.path}));
  }
}

}  // namespace cordon::control::api
