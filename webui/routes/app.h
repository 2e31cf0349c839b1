// cordon-webd's request handling, independent of TLS and sockets: static files of the
// browser app, webd's own endpoints (setup, login, logout, session, users, login audit)
// and /api/v1/... forwarded to controld for the roles the table in app.cpp allows.
// Anything not in a table is 404. docs/webui.md lists the table.
//
// Order of checks for /api/: endpoint known (else 404) -> for state-changing methods the
// Origin equals one of the server's own origins (else 403) -> session valid (else 401)
// -> X-CSRF-Token equals the session's token on state-changing methods (else 403) ->
// role sufficient (else 403) -> an admin who must enrol in TOTP first reaches only
// session, logout and session/totp(/confirm) (else 403 totp_enrollment_required).
// These checks need the request header only: for the firmware upload (POST
// /api/v1/update, admin) the server makes them through body_permit() before it reads the
// body, and only then allows that one request a body over the normal limit.
//
// Threads: an App belongs to the io_context's single thread.
#pragma once

#include <boost/beast/http.hpp>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "webui/auth/accounts.h"
#include "webui/routes/controld_client.h"
#include "webui/server/tls.h"

namespace cordon::webui::routes {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using RequestHeader = boost::beast::http::request_header<>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;
using Respond = std::function<void(HttpResponse)>;

inline constexpr const char* kSessionCookie = "__Host-cordon_session";

// An entry of the table of endpoints: method, path under /api/v1 with "{}" for one
// segment, the least role allowed (nullopt: no session needed), and whether the call is
// forwarded to controld (same path under /v1) or answered by webd.
struct Endpoint {
  const char* method;
  const char* pattern;
  std::optional<auth::Role> role;
  bool forwarded;
};
const std::vector<Endpoint>& endpoints();

class App {
 public:
  struct Options {
    std::filesystem::path app_dir;           // static files of the browser app
    std::set<std::string> origins;           // e.g. "https://10.60.0.1:8443"
    std::filesystem::path setup_token_file;  // holds the one-time setup token while no user exists
    // The served certificate (system/certificate); nullptr: those endpoints answer 503.
    server::CertificateStore* certificates = nullptr;
  };
  App(Options options, auth::Accounts& accounts, ControldClient& controld);

  // Writes a fresh setup token when there is no user yet; returns its file, or "".
  std::string prepare_setup();

  // `peer` is the client's IP address. `respond` is called once, now or later. The request
  // is taken by value so that a forwarded body (a bundle of up to the upload limit) is
  // moved on to controld, not copied.
  void handle(HttpRequest req, const std::string& peer, Respond respond);

  // Called by the server with the request header alone, before any of the body is read.
  // For the upload endpoint every check of the call is made now (Origin, session, CSRF,
  // role, TOTP): passed, `upload` is true and the server may accept a body up to its
  // upload limit; failed, `refusal` is the answer to send instead of reading the body.
  // Any other request: neither (it keeps the normal limit; its checks come after the body).
  struct BodyPermit {
    bool upload = false;
    std::optional<HttpResponse> refusal;
  };
  BodyPermit body_permit(const RequestHeader& req);
  // Whether METHOD PATH is the firmware upload (the only endpoint with a large body).
  static bool is_upload(boost::beast::http::verb method, std::string_view path);

  // A WebSocket upgrade request: allowed only for GET /api/v1/events/ws, with the same
  // checks as any API call (Origin always: browsers send it on upgrades), and an optional
  // ?after=ID. Either the grant, or the refusal to answer instead of upgrading.
  struct EventsGrant {
    std::string user;
    std::string session_id;
    std::optional<int64_t> after;
  };
  std::variant<EventsGrant, HttpResponse> events_socket(const HttpRequest& req);
  // Whether a socket's session still stands (logged out, expired, user deleted: no; an
  // admin newly required to enrol in TOTP: no). Does not restart the idle clock.
  bool session_alive(const std::string& session_id);
  ControldClient& controld() { return controld_; }

 private:
  // The endpoint a request names and the session that may call it, or the refusal.
  struct Authorized {
    const Endpoint* endpoint = nullptr;
    std::vector<std::string> params;
    std::optional<auth::Session> session;
    std::string session_id;
  };
  std::variant<Authorized, HttpResponse> authorize(const RequestHeader& req,
                                                   const std::string& path);
  void api(HttpRequest& req, const std::string& path, const std::string& query,
           const std::string& peer, Respond& respond);
  HttpResponse static_file(const HttpRequest& req, const std::string& path);
  HttpResponse local(const Endpoint& ep, const HttpRequest& req,
                     const std::vector<std::string>& params, const auth::Session* session,
                     const std::string& session_id, const std::string& peer);

  Options options_;
  auth::Accounts& accounts_;
  ControldClient& controld_;
  std::string setup_token_;
};

// Security headers every response carries (applied by the server at write time).
void add_security_headers(HttpResponse& res);
// {"error":{"code","message"[,"path"]}} with the status for the code.
HttpResponse error_reply(unsigned status, const std::string& code, const std::string& message,
                         const std::string& path = {});

}  // namespace cordon::webui::routes
