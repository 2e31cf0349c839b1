#include "webui/routes/app.h"

#include <sodium.h>
#include <sys/stat.h>

#include <algorithm>
#include <boost/json.hpp>
#include <fstream>
#include <sstream>

#include "control/common/http_path.h"

namespace cordon::webui::routes {
namespace http = boost::beast::http;
namespace json = boost::json;
namespace fs = std::filesystem;
using auth::Role;

namespace {

constexpr uint64_t kMaxStaticFile = 16ull << 20;

bool valid_param(const std::string& s) {
  if (s.empty() || s.size() > 128 || s == "." || s == "..") return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-' || c == ':';
  });
}

bool state_changing(http::verb method) {
  return method != http::verb::get && method != http::verb::head;
}

std::string cookie_value(const RequestHeader& req, std::string_view name) {
  auto it = req.find(http::field::cookie);
  if (it == req.end()) return {};
  std::string_view cookies = it->value();
  while (!cookies.empty()) {
    const size_t semi = cookies.find(';');
    std::string_view pair = cookies.substr(0, semi);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    const size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name)
      return std::string(pair.substr(eq + 1));
    if (semi == std::string_view::npos) break;
    cookies.remove_prefix(semi + 1);
  }
  return {};
}

bool same_secret(const std::string& a, const std::string& b) {
  if (a.size() != b.size() || a.empty()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

HttpResponse json_reply(unsigned status, const json::value& body) {
  HttpResponse res{static_cast<http::status>(status), 11};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.body() = json::serialize(body);
  return res;
}

// The fields of a JSON object body that must all be strings.
struct Fields {
  std::map<std::string, std::string> values;
  std::optional<HttpResponse> error;
};
Fields string_fields(const std::string& body, std::initializer_list<const char*> names) {
  Fields out;
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) {
    out.error = error_reply(400, "invalid", "the body must be a JSON object");
    return out;
  }
  for (const char* name : names) {
    const json::value* field = v.as_object().if_contains(name);
    if (!field || !field->is_string()) {
      out.error = error_reply(400, "invalid", std::string("missing string field ") + name,
                              std::string("/") + name);
      return out;
    }
    out.values[name] = std::string(field->as_string());
  }
  return out;
}

unsigned status_of(const control::Error& e) {
  if (e.code == "invalid") return 400;
  if (e.code == "unauthorized") return 401;
  if (e.code == "forbidden") return 403;
  if (e.code == "not_found") return 404;
  if (e.code == "conflict") return 409;
  if (e.code == "throttled") return 429;
  if (e.code == "totp_required" || e.code == "totp_invalid") return 401;
  if (e.code == "unavailable") return 503;
  return 500;
}
HttpResponse error_of(const control::Error& e) {
  return error_reply(status_of(e), e.code, e.message, e.path);
}

std::string content_type(const fs::path& file) {
  static const std::map<std::string, std::string> types = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".txt", "text/plain; charset=utf-8"},
      {".map", "application/json"}};
  auto it = types.find(file.extension().string());
  return it == types.end() ? "application/octet-stream" : it->second;
}

// What an admin who must enrol in TOTP first may still call.
bool allowed_while_enrolling(const Endpoint& ep) {
  const std::string_view p = ep.pattern, m = ep.method;
  return p == "session" || p == "logout" || (m == "POST" && p == "session/totp") ||
         (m == "POST" && p == "session/totp/confirm");
}

HttpResponse enrolment_refusal() {
  return error_reply(403, "totp_enrollment_required",
                     "admins must set up a second factor (TOTP) first: POST session/totp");
}

json::object certificate_json(const server::CertificateInfo& info) {
  json::array sans;
  for (const auto& s : info.sans) sans.push_back(json::string(s));
  return json::object{
      {"subject", info.subject},        {"issuer", info.issuer},
      {"sans", std::move(sans)},        {"not_before", info.not_before},
      {"not_after", info.not_after},    {"sha256_fingerprint", info.sha256_fingerprint},
      {"self_signed", info.self_signed}};
}

std::string session_cookie(const std::string& id) {
  return std::string(kSessionCookie) + "=" + id + "; Path=/; Secure; HttpOnly; SameSite=Strict";
}

}  // namespace

const std::vector<Endpoint>& endpoints() {
  constexpr auto A = Role::auditor, O = Role::operator_, D = Role::admin;
  static const std::vector<Endpoint> table = {
      // webd's own
      {"POST", "setup", std::nullopt, false},
      {"POST", "login", std::nullopt, false},
      {"POST", "logout", A, false},
      {"GET", "session", A, false},
      {"POST", "session/password", A, false},
      {"GET", "login-audit", A, false},
      {"POST", "session/totp", A, false},
      {"POST", "session/totp/confirm", A, false},
      {"DELETE", "session/totp", A, false},
      {"GET", "users", D, false},
      {"POST", "users", D, false},
      {"DELETE", "users/{}", D, false},
      {"DELETE", "users/{}/totp", D, false},
      {"GET", "system/security", D, false},
      {"PUT", "system/security", D, false},
      {"GET", "system/certificate", A, false},
      {"POST", "system/certificate", D, false},
      {"GET", "events/ws", A, false},  // WebSocket upgrade (https_server.cpp); else 426
      // controld's, read
      {"GET", "health", A, true},
      {"GET", "policy", A, true},
      {"GET", "policy/versions", A, true},
      {"GET", "policy/versions/{}", A, true},
      {"GET", "policy/diff", A, true},
      {"GET", "events", A, true},
      {"GET", "audit", A, true},
      {"GET", "audit/verify", A, true},
      {"GET", "guardrail", A, true},
      {"GET", "settings/syslog", A, true},
      {"GET", "settings/management", A, true},
      {"GET", "settings/management/verify", A, true},
      {"GET", "discovery", A, true},
      {"GET", "devices/{}/flows", A, true},
      {"GET", "devices/{}/proposal", A, true},
      {"GET", "dataplane/stats", A, true},
      {"GET", "wireguard", A, true},
      {"GET", "vendor-sessions", A, true},
      {"GET", "management-peers", A, true},
      {"GET", "update", A, true},
      {"GET", "update/history", A, true},
      // controld's, policy changes
      {"POST", "policy", O, true},
      {"POST", "policy/validate", O, true},
      {"POST", "policy/dry-run", O, true},
      {"POST", "policy/rollback", O, true},
      {"POST", "policy/confirm", O, true},
      {"POST", "vendor-sessions", O, true},
      {"DELETE", "vendor-sessions/{}", O, true},
      // controld's, system settings
      {"PUT", "guardrail", D, true},
      {"PUT", "settings/syslog", D, true},
      {"PUT", "settings/management", D, true},
      {"POST", "management-peers", D, true},
      {"DELETE", "management-peers/{}", D, true},
      // controld's, firmware (POST update: the bundle, up to the upload limit, body_permit)
      {"POST", "update", D, true},
      {"POST", "update/mark-good", D, true},
      {"POST", "update/allow-downgrade", D, true},
  };
  return table;
}

HttpResponse error_reply(unsigned status, const std::string& code, const std::string& message,
                         const std::string& path) {
  json::object e{{"code", code}, {"message", message}};
  if (!path.empty()) e["path"] = path;
  return json_reply(status, json::object{{"error", std::move(e)}});
}

void add_security_headers(HttpResponse& res) {
  res.set(http::field::strict_transport_security, "max-age=63072000; includeSubDomains");
  res.set("Content-Security-Policy",
          "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; "
          "base-uri 'none'; form-action 'self'");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
  res.set("X-Frame-Options", "DENY");
  res.set("Cross-Origin-Opener-Policy", "same-origin");
  res.set(http::field::server, "cordon-webd");
}

App::App(Options options, auth::Accounts& accounts, ControldClient& controld)
    : options_(std::move(options)), accounts_(accounts), controld_(controld) {}

std::string App::prepare_setup() {
  if (accounts_.has_users() || options_.setup_token_file.empty()) return {};
  setup_token_ = auth::random_token();
  const fs::path file = options_.setup_token_file;
  fs::remove(file);
  const mode_t old = ::umask(077);
  std::ofstream out(file);
  ::umask(old);
  out << setup_token_ << "\n";
  out.close();
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  return out ? file.string() : "";
}

void App::handle(HttpRequest req, const std::string& peer, Respond respond) {
  const std::string_view target = req.target();
  if (target.empty() || target.front() != '/') {
    respond(error_reply(400, "invalid", "the request target must be an absolute path"));
    return;
  }
  const size_t q = target.find('?');
  const std::string path(target.substr(0, q));
  const std::string query = q == std::string_view::npos ? "" : std::string(target.substr(q + 1));
  if (path == "/api" || path.starts_with("/api/")) {
    api(req, path, query, peer, respond);
    return;
  }
  respond(static_file(req, path));
}

HttpResponse App::static_file(const HttpRequest& req, const std::string& path) {
  if (req.method() != http::verb::get)
    return error_reply(405, "method_not_allowed", "static files are read with GET");
  auto decoded = http_path::percent_decode_strict(path);
  if (!decoded) return error_reply(400, "invalid", "bad percent-encoding in the path");
  if (decoded->find('\0') != std::string::npos || decoded->find('\\') != std::string::npos)
    return error_reply(400, "invalid", "forbidden character in the path");
  std::vector<std::string> parts = http_path::split_path(*decoded);
  for (const std::string& part : parts)
    if (part == "." || part == "..")
      return error_reply(400, "invalid", "'.' and '..' are not allowed in paths");
  if (parts.empty() || decoded->back() == '/') parts.push_back("index.html");
  fs::path file = options_.app_dir;
  for (const std::string& part : parts) file /= part;
  // Symbolic links must not lead out of the app directory either.
  std::error_code ec;
  const fs::path root = fs::canonical(options_.app_dir, ec);
  if (ec) return error_reply(404, "not_found", "no such file");
  const fs::path real = fs::canonical(file, ec);
  if (ec || !fs::is_regular_file(real, ec)) return error_reply(404, "not_found", "no such file");
  const std::string root_s = root.string() + "/";
  if (real.string().compare(0, root_s.size(), root_s) != 0)
    return error_reply(404, "not_found", "no such file");
  const auto size = fs::file_size(real, ec);
  if (ec || size > kMaxStaticFile) return error_reply(404, "not_found", "no such file");
  std::ifstream in(real, std::ios::binary);
  std::ostringstream body;
  body << in.rdbuf();
  HttpResponse res{http::status::ok, 11};
  res.set(http::field::content_type, content_type(real));
  res.set(http::field::cache_control, "no-cache");
  res.body() = body.str();
  return res;
}

std::variant<App::Authorized, HttpResponse> App::authorize(const RequestHeader& req,
                                                           const std::string& path) {
  constexpr std::string_view prefix = "/api/v1/";
  if (!path.starts_with(prefix)) return error_reply(404, "not_found", "no such endpoint: " + path);
  const std::vector<std::string> segments =
      http_path::split_path(std::string_view(path).substr(prefix.size()));
  bool path_known = false;
  Authorized out;
  for (const Endpoint& ep : endpoints()) {
    const std::vector<std::string> pattern = http_path::split_path(ep.pattern);
    if (pattern.size() != segments.size()) continue;
    std::vector<std::string> found;
    bool match = true;
    for (size_t i = 0; i < pattern.size() && match; ++i) {
      if (pattern[i] == "{}")
        found.push_back(segments[i]);
      else
        match = pattern[i] == segments[i];
    }
    if (!match) continue;
    path_known = true;
    if (req.method_string() != ep.method) continue;
    out.endpoint = &ep;
    out.params = std::move(found);
    break;
  }
  if (!out.endpoint) {
    return path_known ? error_reply(405, "method_not_allowed",
                                    std::string(req.method_string()) + " is not allowed on " + path)
                      : error_reply(404, "not_found", "no such endpoint: " + path);
  }
  for (const std::string& p : out.params) {
    if (!valid_param(p)) return error_reply(400, "invalid", "bad path segment in " + path);
  }
  const bool changes = state_changing(req.method());
  if (changes) {
    // Cross-site requests are refused before anything else is looked at.
    auto origin = req.find(http::field::origin);
    if (origin == req.end() || !options_.origins.contains(std::string(origin->value())))
      return error_reply(403, "forbidden", "the request's Origin is not this server");
  }
  out.session_id = cookie_value(req, kSessionCookie);
  if (out.endpoint->role) {
    out.session = accounts_.lookup(out.session_id);
    if (!out.session)
      return error_reply(401, "unauthorized", "log in first (no session, or it has expired)");
    if (changes) {
      auto token = req.find("X-CSRF-Token");
      if (token == req.end() || !same_secret(std::string(token->value()), out.session->csrf_token))
        return error_reply(403, "forbidden", "missing or wrong X-CSRF-Token");
    }
    if (out.session->role < *out.endpoint->role) {
      return error_reply(
          403, "forbidden",
          std::string("this needs the ") + auth::role_name(*out.endpoint->role) + " role");
    }
    if (!allowed_while_enrolling(*out.endpoint) && accounts_.totp_enrollment_required(*out.session))
      return enrolment_refusal();
  }
  return out;
}

App::BodyPermit App::body_permit(const RequestHeader& req) {
  const std::string_view target = req.target();
  const std::string path(target.substr(0, target.find('?')));
  if (!is_upload(req.method(), path)) return BodyPermit{false, std::nullopt};
  auto decision = authorize(req, path);
  if (auto* refusal = std::get_if<HttpResponse>(&decision))
    return BodyPermit{false, std::move(*refusal)};
  return BodyPermit{true, std::nullopt};
}

bool App::is_upload(http::verb method, std::string_view path) {
  return method == http::verb::post && path == "/api/v1/update";
}

void App::api(HttpRequest& req, const std::string& path, const std::string& query,
              const std::string& peer, Respond& respond) {
  auto decision = authorize(req, path);
  if (auto* refusal = std::get_if<HttpResponse>(&decision)) {
    respond(std::move(*refusal));
    return;
  }
  Authorized& call = std::get<Authorized>(decision);
  if (!call.endpoint->forwarded) {
    respond(local(*call.endpoint, req, call.params, call.session ? &*call.session : nullptr,
                  call.session_id, peer));
    return;
  }
  std::string target = "/v1" + path.substr(std::string_view("/api/v1").size());
  if (!query.empty()) target += "?" + query;
  // A firmware bundle is raw bytes, everything else JSON; the body is moved, not copied
  // (a bundle is up to the upload limit).
  const char* type =
      is_upload(req.method(), path) ? "application/octet-stream" : "application/json";
  controld_.forward(
      std::string(req.method_string()), target, std::move(req.body()), call.session->user, peer,
      [respond](ControldReply reply) {
        if (reply.status == 0) {
          respond(error_reply(503, "unavailable", "controld: " + reply.error));
          return;
        }
        HttpResponse res{static_cast<http::status>(reply.status), 11};
        res.set(http::field::content_type, "application/json");
        res.set(http::field::cache_control, "no-store");
        res.body() = std::move(reply.body);
        respond(std::move(res));
      },
      type);
}

std::variant<App::EventsGrant, HttpResponse> App::events_socket(const HttpRequest& req) {
  const std::string_view target = req.target();
  const size_t q = target.find('?');
  if (target.substr(0, q) != "/api/v1/events/ws")
    return error_reply(404, "not_found", "WebSocket is only offered on /api/v1/events/ws");
  if (req.method() != http::verb::get)
    return error_reply(405, "method_not_allowed", "a WebSocket upgrade is a GET");
  auto origin = req.find(http::field::origin);
  if (origin == req.end() || !options_.origins.contains(std::string(origin->value())))
    return error_reply(403, "forbidden", "the request's Origin is not this server");
  const std::string session_id = cookie_value(req, kSessionCookie);
  auto session = accounts_.lookup(session_id);
  if (!session)
    return error_reply(401, "unauthorized", "log in first (no session, or it has expired)");
  // Every role may follow events (least role auditor).
  if (accounts_.totp_enrollment_required(*session)) return enrolment_refusal();
  EventsGrant grant{session->user, session_id, std::nullopt};
  std::string_view query = q == std::string_view::npos ? "" : target.substr(q + 1);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (pair.starts_with("after=")) {
      const std::string_view v = pair.substr(6);
      if (v.empty() || v.size() > 18 ||
          !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return error_reply(400, "invalid", "after must be an event id (digits)", "after");
      grant.after = std::stoll(std::string(v));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return grant;
}

bool App::session_alive(const std::string& session_id) {
  auto session = accounts_.peek(session_id);
  return session && !accounts_.totp_enrollment_required(*session);
}

HttpResponse App::local(const Endpoint& ep, const HttpRequest& req,
                        const std::vector<std::string>& params, const auth::Session* session,
                        const std::string& session_id, const std::string& peer) {
  const std::string name = ep.pattern;
  if (name == "setup") {
    auto f = string_fields(req.body(), {"user", "password", "token"});
    if (f.error) return *f.error;
    if (accounts_.has_users() || setup_token_.empty())
      return error_reply(409, "conflict", "setup is done: an admin exists");
    if (!same_secret(f.values["token"], setup_token_)) {
      accounts_.audit("setup", f.values["user"], peer, "bad token");
      return error_reply(403, "forbidden",
                         "wrong setup token (see the setup-token file in webd's state directory)",
                         "/token");
    }
    if (auto s = accounts_.create_user(f.values["user"], f.values["password"], Role::admin); !s)
      return error_of(s.error());
    accounts_.audit("setup", f.values["user"], peer, "ok");
    setup_token_.clear();
    std::error_code ec;
    fs::remove(options_.setup_token_file, ec);
    return json_reply(201, json::object{{"user", f.values["user"]}, {"role", "admin"}});
  }
  if (name == "login") {
    auto f = string_fields(req.body(), {"user", "password"});
    if (f.error) return *f.error;
    std::optional<std::string> totp;
    const json::value body = json::parse(req.body());  // an object: string_fields checked
    if (const json::value* t = body.as_object().if_contains("totp")) {
      if (!t->is_string()) return error_reply(400, "invalid", "totp must be a string", "/totp");
      totp = std::string(t->as_string());
    }
    // Whatever session this browser had ends: a login always starts a new one.
    if (!session_id.empty()) accounts_.logout(session_id);
    auto login = accounts_.login(f.values["user"], f.values["password"], peer, totp);
    if (!login) return error_of(login.error());
    HttpResponse res =
        json_reply(200, json::object{{"user", login.value().session.user},
                                     {"role", auth::role_name(login.value().session.role)},
                                     {"csrf_token", login.value().session.csrf_token},
                                     {"totp_enrollment_required",
                                      accounts_.totp_enrollment_required(login.value().session)}});
    res.set(http::field::set_cookie, session_cookie(login.value().session_id));
    return res;
  }
  if (name == "logout") {
    accounts_.logout(session_id);
    accounts_.audit("logout", session->user, peer, "ok");
    HttpResponse res = json_reply(200, json::object{{"logged_out", true}});
    res.set(http::field::set_cookie, std::string(kSessionCookie) +
                                         "=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
    return res;
  }
  if (name == "session") {
    return json_reply(200, json::object{{"user", session->user},
                                        {"role", auth::role_name(session->role)},
                                        {"csrf_token", session->csrf_token},
                                        {"totp_enabled", accounts_.totp_active(session->user)},
                                        {"totp_enrollment_required",
                                         accounts_.totp_enrollment_required(*session)}});
  }
  if (name == "session/totp" && req.method() == http::verb::post) {
    auto enrol = accounts_.totp_begin(session->user);
    accounts_.audit("totp enrol", session->user, peer,
                    enrol ? "ok" : "refused: " + enrol.error().code);
    if (!enrol) return error_of(enrol.error());
    return json_reply(200, json::object{{"secret", enrol.value().secret},
                                        {"otpauth_uri", enrol.value().otpauth_uri}});
  }
  if (name == "session/totp/confirm") {
    auto f = string_fields(req.body(), {"code"});
    if (f.error) return *f.error;
    auto s = accounts_.totp_confirm(session->user, f.values["code"]);
    accounts_.audit("totp confirm", session->user, peer, s ? "ok" : "refused: " + s.error().code);
    if (!s) return error_of(s.error());
    return json_reply(200, json::object{{"totp_enabled", true}});
  }
  if (name == "session/totp") {  // DELETE
    auto f = string_fields(req.body(), {"password"});
    if (f.error) return *f.error;
    auto s = accounts_.totp_disable(session->user, f.values["password"]);
    accounts_.audit("totp disable", session->user, peer, s ? "ok" : "refused: " + s.error().code);
    if (!s) return error_of(s.error());
    return json_reply(200, json::object{{"totp_enabled", false}});
  }
  if (name == "users/{}/totp") {
    auto s = accounts_.totp_reset(params.at(0));
    accounts_.audit("totp reset " + params.at(0), session->user, peer,
                    s ? "ok" : "refused: " + s.error().code);
    if (!s) return error_of(s.error());
    return json_reply(200, json::object{{"user", params.at(0)}, {"totp_enabled", false}});
  }
  if (name == "system/security" && req.method() == http::verb::get) {
    return json_reply(
        200, json::object{{"require_totp_for_admins", accounts_.require_totp_for_admins()}});
  }
  if (name == "system/security") {  // PUT
    boost::system::error_code ec;
    json::value v = json::parse(req.body(), ec);
    const json::value* on =
        !ec && v.is_object() ? v.as_object().if_contains("require_totp_for_admins") : nullptr;
    if (!on || !on->is_bool())
      return error_reply(400, "invalid", "require_totp_for_admins must be true or false",
                         "/require_totp_for_admins");
    if (v.as_object().size() != 1)
      return error_reply(400, "invalid", "only require_totp_for_admins can be set here");
    auto s = accounts_.set_require_totp_for_admins(on->as_bool());
    accounts_.audit(std::string("require totp for admins ") + (on->as_bool() ? "on" : "off"),
                    session->user, peer, s ? "ok" : "refused: " + s.error().code);
    if (!s) return error_of(s.error());
    return json_reply(200, json::object{{"require_totp_for_admins", on->as_bool()}});
  }
  if (name == "system/certificate" && req.method() == http::verb::get) {
    if (!options_.certificates) return error_reply(503, "unavailable", "no certificate store");
    auto info = options_.certificates->info();
    if (!info) return error_of(info.error());
    return json_reply(200, certificate_json(info.value()));
  }
  if (name == "system/certificate") {  // POST
    auto f = string_fields(req.body(), {"certificate_pem", "private_key_pem"});
    if (f.error) return *f.error;
    if (!options_.certificates) return error_reply(503, "unavailable", "no certificate store");
    auto s =
        options_.certificates->replace(f.values["certificate_pem"], f.values["private_key_pem"]);
    std::string& key = f.values["private_key_pem"];
    sodium_memzero(key.data(), key.size());
    auto info = options_.certificates->info();
    accounts_.audit("upload certificate", session->user, peer,
                    s ? "ok: " + (info ? info.value().sha256_fingerprint : std::string("?"))
                      : "refused: " + s.error().message);
    if (!s) return error_of(s.error());
    if (!info) return error_of(info.error());
    return json_reply(200, certificate_json(info.value()));
  }
  if (name == "events/ws") {
    HttpResponse res = error_reply(426, "upgrade_required",
                                   "live events are a WebSocket: connect with an Upgrade request");
    res.set(http::field::upgrade, "websocket");
    res.set(http::field::connection, "Upgrade");
    return res;
  }
  if (name == "session/password") {
    auto f = string_fields(req.body(), {"current_password", "new_password"});
    if (f.error) return *f.error;
    auto s = accounts_.change_password(session->user, f.values["current_password"],
                                       f.values["new_password"], session_id);
    accounts_.audit("change password", session->user, peer,
                    s ? "ok" : "refused: " + s.error().code);
    if (!s) return error_of(s.error());
    return json_reply(200, json::object{{"changed", true}});
  }
  if (name == "login-audit") {
    auto entries = accounts_.audit_entries(500);
    if (!entries) return error_of(entries.error());
    return json_reply(200, json::object{{"entries", std::move(entries.value())}});
  }
  if (name == "users" && req.method() == http::verb::get) {
    auto users = accounts_.list_users();
    if (!users) return error_of(users.error());
    json::array out;
    for (const auto& u : users.value())
      out.push_back(json::object{
          {"user", u.name}, {"role", auth::role_name(u.role)}, {"created_at", u.created_at}});
    return json_reply(200, json::object{{"users", std::move(out)}});
  }
  if (name == "users") {
    auto f = string_fields(req.body(), {"user", "password", "role"});
    if (f.error) return *f.error;
    auto role = auth::parse_role(f.values["role"]);
    if (!role) return error_reply(400, "invalid", "role is admin, operator or auditor", "/role");
    auto s = accounts_.create_user(f.values["user"], f.values["password"], *role);
    accounts_.audit("create user " + f.values["user"] + " (" + f.values["role"] + ")",
                    session->user, peer, s ? "ok" : "refused: " + s.error().code);
    if (!s) return error_of(s.error());
    return json_reply(201, json::object{{"user", f.values["user"]}, {"role", f.values["role"]}});
  }
  if (name == "users/{}") {
    auto s = accounts_.delete_user(params.at(0));
    accounts_.audit("delete user " + params.at(0), session->user, peer,
                    s ? "ok" : "refused: " + s.error().code);
    if (!s) return error_of(s.error());
    return json_reply(200, json::object{{"deleted", params.at(0)}});
  }
  return error_reply(404, "not_found", "no such endpoint");
}

}  // namespace cordon::webui::routes
