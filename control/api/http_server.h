// A small HTTP/1.1 server on a unix stream socket (Boost.Beast), for controld's API.
// It knows nothing about Cordon: requests are routed by method and path to handlers
// that answer through a Responder, now or later (long polls answer later).
//
// Who is calling comes from the socket (SO_PEERCRED): the Unix user, or, when the peer
// is one of the trusted front-ends (cordon-webd's uid), the user it names in the
// X-Cordon-User / X-Cordon-Origin headers.
//
// Limits: header 16 KiB, body `max_body` bytes, 30 s to send a request, at most
// `max_connections` at once; over a limit the client gets a JSON error or is cut.
//
// Threads: everything runs on the io_context's single thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "control/common/result.h"
#include "control/store/store.h"

namespace cordon::control::api {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query
  std::map<std::string, std::string> query;
  std::string body;
  store::Actor actor;
  std::vector<std::string> path_params;  // the parts a route matched with "{}"
};

struct Response {
  unsigned status = 200;
  std::string body;  // JSON
};

using Responder = std::function<void(Response)>;
using Handler = std::function<void(Request&, Responder)>;

// JSON bodies for results and errors ({"error":{"code","message","path","details"}}).
Response json_response(const boost::json::value& body, unsigned status = 200);
Response error_response(const Error& error);
unsigned http_status(const std::string& error_code);
// Splits a request target into the path and the percent-decoded query parameters.
void parse_target(std::string_view target, Request& request);

class HttpServer {
 public:
  struct Options {
    std::string socket_path;
    unsigned socket_mode = 0660;
    std::optional<uint32_t> socket_gid;  // group that may connect (e.g. cordon-webd's)
    std::set<uint32_t> trusted_uids;     // front-ends allowed to name the acting user
    uint64_t max_body = 64ull << 20;
    size_t max_connections = 64;
  };
  HttpServer(boost::asio::io_context& io, Options options);
  ~HttpServer();

  // Routes: `pattern` is a path where "{}" matches one segment ("/v1/policy/versions/{}").
  void route(const std::string& method, const std::string& pattern, Handler handler);
  Status listen();

  // For tests and long polls: the number of open connections.
  size_t connections() const { return *live_; }
  // Routes one parsed request to its handler (the sessions call it; so does the fuzz
  // target, which needs no socket). Unknown paths 404, known paths with another method 405.
  void dispatch(Request& request, Responder respond);

 private:
  class Session;
  void accept();

  struct Route {
    std::string method;
    std::vector<std::string> segments;
    Handler handler;
  };
  boost::asio::io_context& io_;
  Options options_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::vector<Route> routes_;
  std::shared_ptr<size_t> live_ = std::make_shared<size_t>(0);
};

}  // namespace cordon::control::api
