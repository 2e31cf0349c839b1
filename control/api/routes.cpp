#include "control/api/routes.h"

#include <openssl/evp.h>

#include <boost/asio/post.hpp>

#include "control/policy/dry_run.h"
#include "control/policy/learn.h"
#include "control/policy/recorded.h"
#include "dataplane/engine/policy_document.h"

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <initializer_list>

namespace cordon::control::api {
namespace json = boost::json;
namespace {

Result<json::value> parse_body(std::string_view text) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return Error{"invalid", "the request body is not JSON: " + ec.message(), ""};
  return v;
}

// A JSON request body, for the parsers that check their own fields.
Result<json::value> json_body(const Request& r) {
  return parse_body(r.body);
}

// A JSON request body: an object whose fields are all known.
class Body {
 public:
  static Result<Body> parse(const std::string& text,
                            std::initializer_list<std::string_view> allowed) {
    Result<json::value> parsed = parse_body(text.empty() ? std::string_view("{}") : text);
    if (!parsed) return parsed.error();
    json::value& v = parsed.value();
    if (!v.is_object()) return Error{"invalid", "the request body must be a JSON object", ""};
    for (const auto& [key, value] : v.as_object()) {
      bool known = false;
      for (std::string_view a : allowed) known = known || a == key;
      if (!known) return Error{"invalid", "unknown field", "/" + std::string(key)};
    }
    return Body(std::move(v.as_object()));
  }

  // A policy document given as a JSON object or as the text of one.
  Result<std::string> document(std::string_view field) const {
    const json::value* v = o_.if_contains(field);
    if (!v) return Error{"invalid", "required", "/" + std::string(field)};
    if (v->is_string()) return std::string(v->as_string());
    if (v->is_object()) return json::serialize(*v);
    return Error{"invalid", "must be a policy document (object or JSON text)",
                 "/" + std::string(field)};
  }

  Result<std::string> text(std::string_view field, size_t max_length) const {
    const json::value* v = o_.if_contains(field);
    if (!v) return std::string();
    if (!v->is_string()) return Error{"invalid", "must be a string", "/" + std::string(field)};
    if (v->as_string().size() > max_length)
      return Error{"invalid", "longer than " + std::to_string(max_length) + " characters",
                   "/" + std::string(field)};
    return std::string(v->as_string());
  }

  Result<std::optional<int64_t>> integer(std::string_view field, int64_t min, int64_t max,
                                         bool required) const {
    const json::value* v = o_.if_contains(field);
    if (!v) {
      if (required) return Error{"invalid", "required", "/" + std::string(field)};
      return std::optional<int64_t>{};
    }
    if (!v->is_int64() || v->as_int64() < min || v->as_int64() > max)
      return Error{"invalid",
                   "must be an integer from " + std::to_string(min) + " to " + std::to_string(max),
                   "/" + std::string(field)};
    return std::optional<int64_t>{v->as_int64()};
  }

 private:
  explicit Body(json::object o) : o_(std::move(o)) {}
  json::object o_;
};

// What the routes of a part this controld runs without answer.
const Error kNoHostFirewall{"not_found", "this controld does not manage the host firewall", ""};
const Error kNoWireGuard{"not_found", "WireGuard is not configured on this appliance", ""};
const Error kNoVendorAccess{"not_found", "vendor access is not configured on this appliance", ""};

Result<int64_t> query_int(const Request& r, const std::string& name, int64_t fallback, int64_t min,
                          int64_t max) {
  const auto it = r.query.find(name);
  if (it == r.query.end()) return fallback;
  int64_t v = 0;
  const std::string& s = it->second;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v < min || v > max)
    return Error{"invalid",
                 "query parameter must be an integer from " + std::to_string(min) + " to " +
                     std::to_string(max),
                 "?" + name};
  return v;
}

Result<int64_t> path_version(const Request& r) {
  int64_t v = 0;
  const std::string& s = r.path_params.at(0);
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v < 1)
    return Error{"invalid", "a policy version is a positive integer", r.path};
  return v;
}

json::object version_json(const store::PolicyVersion& v) {
  return json::object{{"version", v.version}, {"created_at", v.created_at}, {"author", v.author},
                      {"origin", v.origin},   {"comment", v.comment},       {"sha256", v.sha256},
                      {"status", v.status}};
}

json::object applied_json(const policy::Applied& a) {
  json::object o{{"version", a.version}, {"sha256", a.sha256}};
  if (a.confirm_by)
    o["confirm_by_unix_ms"] =
        std::chrono::duration_cast<std::chrono::milliseconds>(a.confirm_by->time_since_epoch())
            .count();
  return o;
}

json::object audit_json(const store::AuditEntry& e) {
  return json::object{{"seq", e.seq},
                      {"at", e.at},
                      {"actor", e.record.actor.name},
                      {"origin", e.record.actor.origin},
                      {"action", e.record.action},
                      {"target", e.record.target},
                      {"outcome", e.record.outcome},
                      {"before_hash", e.record.before_hash},
                      {"after_hash", e.record.after_hash},
                      {"detail", e.record.detail},
                      {"hash", e.hash}};
}

// Document of a version, or of the active policy for "active".
Result<std::string> document_of(store::Store& store, policy::PolicyService& policy,
                                const std::string& which) {
  if (which == "active") {
    Result<policy::ActivePolicy> a = policy.active();
    if (!a) return a.error();
    return a.value().document;
  }
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(which.data(), which.data() + which.size(), v);
  if (ec != std::errc{} || end != which.data() + which.size())
    return Error{"invalid", "a version number or \"active\"", ""};
  Result<std::optional<store::PolicyVersion>> row = store.version(v);
  if (!row) return row.error();
  if (!row.value()) return Error{"not_found", "no policy version " + which};
  return row.value()->document;
}

// Standard base64 (RFC 4648) with padding; nullopt when it is not.
std::optional<std::string> base64_decode(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out(in.size() / 4 * 3, '\0');
  EVP_ENCODE_CTX* ctx = EVP_ENCODE_CTX_new();
  EVP_DecodeInit(ctx);
  int n = 0;
  int tail = 0;
  const int rc = EVP_DecodeUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &n,
                                  reinterpret_cast<const unsigned char*>(in.data()),
                                  static_cast<int>(in.size()));
  const int fin =
      rc < 0 ? -1 : EVP_DecodeFinal(ctx, reinterpret_cast<unsigned char*>(out.data()) + n, &tail);
  EVP_ENCODE_CTX_free(ctx);
  if (rc < 0 || fin < 0) return std::nullopt;
  out.resize(static_cast<size_t>(n + tail));
  return out;
}

}  // namespace

void ControlApi::start() {
  Result<std::optional<std::string>> stored = store_.setting("syslog");
  if (!stored || !stored.value()) return;
  json::error_code ec;
  const json::value v = json::parse(*stored.value(), ec);
  if (ec) return;
  if (Result<export_::SyslogSettings> s = export_::parse_syslog_settings(v); s)
    syslog_.configure(s.value());
}

ControlApi::~ControlApi() {
  if (dry_run_thread_.joinable()) dry_run_thread_.join();
}

// POST /v1/policy/dry-run {document, pcap_base64 | recorded_seconds}: what the candidate
// would block (and allow) compared with the active policy, replayed through the engine.
void ControlApi::dry_run(Request& r, Responder respond) {
  Result<Body> body = Body::parse(r.body, {"document", "pcap_base64", "recorded_seconds"});
  if (!body) return respond(error_response(body.error()));
  Result<std::string> doc = body.value().document("document");
  if (!doc) return respond(error_response(doc.error()));
  Result<std::string> capture_b64 = body.value().text("pcap_base64", 96u << 20);
  if (!capture_b64) return respond(error_response(capture_b64.error()));
  Result<std::optional<int64_t>> recorded =
      body.value().integer("recorded_seconds", 60, 90 * 86400, false);
  if (!recorded) return respond(error_response(recorded.error()));
  if (capture_b64.value().empty() == !recorded.value().has_value())
    return respond(error_response(
        Error{"invalid", "give exactly one of pcap_base64 and recorded_seconds", "/pcap_base64"}));
  engine::PolicyParseResult candidate = engine::parse_policy(doc.value());
  if (!candidate.document) {
    Result<std::string> v = policy::validate_policy(doc.value());  // the same errors as apply
    return respond(error_response(v.ok() ? Error{"invalid", "invalid policy"} : v.error()));
  }
  Result<policy::ActivePolicy> active = policy_.active();
  if (!active) return respond(error_response(active.error()));
  std::optional<engine::PolicyDocument> active_doc;
  if (active.value().version != 0)
    active_doc = engine::parse_policy(active.value().document).document;

  std::string capture;
  std::string name;
  if (recorded.value()) {
    if (!active_doc)
      return respond(error_response(
          Error{"conflict", "no active policy: nothing has been recorded against one"}));
    Result<std::vector<store::FlowRecord>> flows =
        store_.flows("", now_ms() - *recorded.value() * 1000);
    if (!flows) return respond(error_response(flows.error()));
    policy::RecordedCapture rc = policy::capture_from_flow_records(*active_doc, flows.value());
    capture = std::move(rc.pcap);
    name = "flow records of the last " + std::to_string(*recorded.value()) + " s (" +
           std::to_string(rc.packets) +
           " kinds of connection; addresses, ports and directions only)";
  } else {
    std::optional<std::string> bytes = base64_decode(capture_b64.value());
    if (!bytes) return respond(error_response(Error{"invalid", "not base64", "/pcap_base64"}));
    capture = std::move(*bytes);
    name = "uploaded capture";
  }
  if (dry_run_busy_)
    return respond(
        error_response(Error{"conflict", "another dry-run is running; try again when it is done"}));
  if (dry_run_thread_.joinable()) dry_run_thread_.join();
  dry_run_busy_ = true;
  dry_run_thread_ =
      std::thread([this, respond = std::move(respond), capture = std::move(capture),
                   name = std::move(name), candidate_doc = std::move(*candidate.document),
                   active_doc = std::move(active_doc)]() mutable {
        Result<policy::DryRunReport> report = policy::dry_run_pcap_bytes(
            active_doc ? &*active_doc : nullptr, candidate_doc, capture, name);
        Response response =
            report ? json_response(json::object{{"report", policy::to_json(report.value())},
                                                {"text", policy::to_text(report.value())}})
                   : error_response(report.error());
        boost::asio::post(
            io_, [this, respond = std::move(respond), response = std::move(response)]() mutable {
              dry_run_busy_ = false;
              respond(std::move(response));
            });
      });
}

void ControlApi::install(HttpServer& server) {
  server.route("POST", "/v1/policy/dry-run",
               [this](Request& r, Responder respond) { dry_run(r, std::move(respond)); });

  server.route("GET", "/v1/health", [this](Request&, Responder respond) {
    Result<policy::ActivePolicy> a = policy_.active();
    Result<int64_t> enforced = link_.version();
    json::object o{{"controld", "ok"},
                   {"active_version", a ? a.value().version : 0},
                   {"dataplane", enforced ? "ok" : "unreachable"}};
    if (enforced) o["dataplane_version"] = enforced.value();
    respond(json_response(o));
  });

  server.route("GET", "/v1/policy", [this](Request&, Responder respond) {
    Result<policy::ActivePolicy> a = policy_.active();
    if (!a) return respond(error_response(a.error()));
    json::object o{{"version", a.value().version}, {"sha256", a.value().sha256}};
    o["policy"] =
        a.value().document.empty() ? json::value(nullptr) : json::parse(a.value().document);
    if (auto deadline = policy_.confirm_deadline())
      o["confirm_by_unix_ms"] =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline->time_since_epoch())
              .count();
    respond(json_response(o));
  });

  server.route("POST", "/v1/policy", [this](Request& r, Responder respond) {
    Result<Body> body = Body::parse(r.body, {"document", "comment", "confirm_within"});
    if (!body) return respond(error_response(body.error()));
    Result<std::string> doc = body.value().document("document");
    if (!doc) return respond(error_response(doc.error()));
    Result<std::string> comment = body.value().text("comment", 1000);
    if (!comment) return respond(error_response(comment.error()));
    Result<std::optional<int64_t>> confirm = body.value().integer(
        "confirm_within", 10, policy::PolicyService::kMaxConfirmSeconds, false);
    if (!confirm) return respond(error_response(confirm.error()));
    std::optional<int> confirm_s;
    if (confirm.value()) confirm_s = static_cast<int>(*confirm.value());
    Result<policy::ActivePolicy> before = policy_.active();
    if (!before) return respond(error_response(before.error()));
    Result<policy::Applied> applied =
        policy_.apply(doc.value(), r.actor, comment.value(), confirm_s);
    if (!applied) return respond(error_response(applied.error()));
    (void)guardrail_.watch(applied.value().version, before.value().version, now_ms());
    respond(json_response(applied_json(applied.value()), 201));
  });

  server.route("POST", "/v1/policy/validate", [](Request& r, Responder respond) {
    Result<Body> body = Body::parse(r.body, {"document"});
    if (!body) return respond(error_response(body.error()));
    Result<std::string> doc = body.value().document("document");
    if (!doc) return respond(error_response(doc.error()));
    Result<std::string> canonical = policy::validate_policy(doc.value());
    if (!canonical) return respond(error_response(canonical.error()));
    respond(json_response(
        json::object{{"valid", true}, {"sha256", store::sha256_hex(canonical.value())}}));
  });

  server.route("GET", "/v1/policy/versions", [this](Request& r, Responder respond) {
    Result<int64_t> limit = query_int(r, "limit", 100, 1, 10000);
    if (!limit) return respond(error_response(limit.error()));
    Result<std::vector<store::PolicyVersion>> h = store_.history(limit.value());
    if (!h) return respond(error_response(h.error()));
    json::array out;
    for (const store::PolicyVersion& v : h.value()) out.push_back(version_json(v));
    Result<std::optional<int64_t>> active = store_.active_version();
    respond(json_response(json::object{
        {"active", active && active.value() ? json::value(*active.value()) : json::value(nullptr)},
        {"versions", std::move(out)}}));
  });

  server.route("GET", "/v1/policy/versions/{}", [this](Request& r, Responder respond) {
    Result<int64_t> v = path_version(r);
    if (!v) return respond(error_response(v.error()));
    Result<std::optional<store::PolicyVersion>> row = store_.version(v.value());
    if (!row) return respond(error_response(row.error()));
    if (!row.value())
      return respond(
          error_response(Error{"not_found", "no policy version " + std::to_string(v.value())}));
    json::object o = version_json(*row.value());
    o["policy"] = json::parse(row.value()->document);
    respond(json_response(o));
  });

  server.route("GET", "/v1/policy/diff", [this](Request& r, Responder respond) {
    const auto from = r.query.find("from");
    const auto to = r.query.find("to");
    if (from == r.query.end())
      return respond(error_response(Error{"invalid", "required", "?from"}));
    Result<std::string> a = document_of(store_, policy_, from->second);
    if (!a) return respond(error_response(Error{a.error().code, a.error().message, "?from"}));
    Result<std::string> b =
        document_of(store_, policy_, to == r.query.end() ? "active" : to->second);
    if (!b) return respond(error_response(Error{b.error().code, b.error().message, "?to"}));
    json::value diff = policy::diff_documents(a.value(), b.value());
    respond(json_response(json::object{{"diff", diff}, {"text", policy::diff_text(diff)}}));
  });

  server.route("POST", "/v1/policy/rollback", [this](Request& r, Responder respond) {
    Result<Body> body = Body::parse(r.body, {"version", "comment"});
    if (!body) return respond(error_response(body.error()));
    Result<std::optional<int64_t>> v = body.value().integer("version", 1, INT64_MAX, true);
    if (!v) return respond(error_response(v.error()));
    Result<std::string> comment = body.value().text("comment", 1000);
    if (!comment) return respond(error_response(comment.error()));
    Result<policy::ActivePolicy> before = policy_.active();
    if (!before) return respond(error_response(before.error()));
    Result<policy::Applied> applied = policy_.rollback(*v.value(), r.actor, comment.value());
    if (!applied) return respond(error_response(applied.error()));
    (void)guardrail_.watch(applied.value().version, before.value().version, now_ms());
    respond(json_response(applied_json(applied.value()), 201));
  });

  server.route("POST", "/v1/policy/confirm", [this](Request& r, Responder respond) {
    Result<Body> body = Body::parse(r.body, {});
    if (!body) return respond(error_response(body.error()));
    if (Status s = policy_.confirm(r.actor); !s) return respond(error_response(s.error()));
    respond(json_response(json::object{{"confirmed", true}}));
  });

  server.route("GET", "/v1/events",
               [this](Request& r, Responder respond) { get_events(r, std::move(respond)); });

  server.route("GET", "/v1/audit", [this](Request& r, Responder respond) {
    Result<int64_t> after = query_int(r, "after", 0, 0, INT64_MAX);
    if (!after) return respond(error_response(after.error()));
    Result<int64_t> limit = query_int(r, "limit", 500, 1, 10000);
    if (!limit) return respond(error_response(limit.error()));
    Result<std::vector<store::AuditEntry>> entries =
        store_.audit_entries(after.value(), limit.value());
    if (!entries) return respond(error_response(entries.error()));
    json::array out;
    for (const store::AuditEntry& e : entries.value()) out.push_back(audit_json(e));
    respond(json_response(json::object{{"entries", std::move(out)}}));
  });

  server.route("GET", "/v1/audit/verify", [this](Request&, Responder respond) {
    Result<store::AuditVerification> v = store_.verify_audit();
    if (!v) return respond(error_response(v.error()));
    json::object o{{"intact", v.value().intact}, {"entries", v.value().entries}};
    if (!v.value().intact) {
      o["first_bad_seq"] = v.value().first_bad_seq;
      o["problem"] = v.value().problem;
    }
    respond(json_response(o));
  });

  server.route("GET", "/v1/guardrail", [this](Request&, Responder respond) {
    Result<policy::GuardrailSettings> g = guardrail_.settings();
    if (!g) return respond(error_response(g.error()));
    respond(json_response(policy::guardrail_json(g.value())));
  });

  server.route("PUT", "/v1/guardrail", [this](Request& r, Responder respond) {
    Result<json::value> v = json_body(r);
    if (!v) return respond(error_response(v.error()));
    Result<policy::GuardrailSettings> g = policy::parse_guardrail(v.value());
    if (!g) return respond(error_response(g.error()));
    if (Status s = guardrail_.set_settings(g.value(), r.actor); !s)
      return respond(error_response(s.error()));
    respond(json_response(policy::guardrail_json(g.value())));
  });

  server.route("GET", "/v1/settings/syslog", [this](Request&, Responder respond) {
    Result<std::optional<std::string>> stored = store_.setting("syslog");
    if (!stored) return respond(error_response(stored.error()));
    json::value settings =
        stored.value() ? json::parse(*stored.value()) : export_::syslog_settings_json({});
    const export_::SyslogStats st = syslog_.stats();
    respond(json_response(json::object{{"settings", settings},
                                       {"sent", st.sent},
                                       {"dropped", st.dropped},
                                       {"last_error", st.last_error}}));
  });

  server.route("PUT", "/v1/settings/syslog", [this](Request& r, Responder respond) {
    Result<json::value> v = json_body(r);
    if (!v) return respond(error_response(v.error()));
    Result<export_::SyslogSettings> s = export_::parse_syslog_settings(v.value());
    if (!s) return respond(error_response(s.error()));
    const std::string after = json::serialize(export_::syslog_settings_json(s.value()));
    Result<std::optional<std::string>> before = store_.setting("syslog");
    if (!before) return respond(error_response(before.error()));
    if (Status st = store_.set_setting("syslog", after); !st)
      return respond(error_response(st.error()));
    Result<int64_t> a = store_.audit({r.actor, "settings.syslog", "syslog", "ok",
                                      store::sha256_hex(before.value().value_or("")),
                                      store::sha256_hex(after), after});
    if (!a) return respond(error_response(a.error()));
    syslog_.configure(s.value());
    respond(json_response(export_::syslog_settings_json(s.value())));
  });

  server.route("GET", "/v1/settings/management", [this](Request&, Responder respond) {
    if (!management_) return respond(error_response(kNoHostFirewall));
    Result<nft::ManagementFirewallSettings> s = management_->settings();
    if (!s) return respond(error_response(s.error()));
    respond(json_response(nft::to_json(s.value())));
  });

  server.route("PUT", "/v1/settings/management", [this](Request& r, Responder respond) {
    if (!management_) return respond(error_response(kNoHostFirewall));
    Result<json::value> v = json_body(r);
    if (!v) return respond(error_response(v.error()));
    Result<nft::ManagementFirewallSettings> s = nft::parse_settings(v.value());
    if (!s) return respond(error_response(s.error()));
    if (Status st = management_->change(s.value(), r.actor); !st)
      return respond(error_response(st.error()));
    respond(json_response(nft::to_json(s.value())));
  });

  server.route("GET", "/v1/settings/management/verify", [this](Request&, Responder respond) {
    if (!management_) return respond(error_response(kNoHostFirewall));
    Result<std::vector<std::string>> diff = management_->differences();
    if (!diff) return respond(error_response(diff.error()));
    json::array lines;
    for (const std::string& d : diff.value()) lines.push_back(json::string(d));
    respond(json_response(
        json::object{{"matches", diff.value().empty()}, {"differences", std::move(lines)}}));
  });

  server.route("GET", "/v1/wireguard", [this](Request&, Responder respond) {
    if (!wireguard_) return respond(error_response(kNoWireGuard));
    Result<std::vector<wireguard::PeerStatus>> peers = wireguard_->list_peers();
    if (!peers) return respond(error_response(peers.error()));
    json::array out;
    for (const wireguard::PeerStatus& p : peers.value()) {
      json::object o{{"public_key", p.public_key},
                     {"endpoint", p.endpoint},
                     {"rx_bytes", p.rx_bytes},
                     {"tx_bytes", p.tx_bytes}};
      json::array ips;
      for (const std::string& ip : p.allowed_ips) ips.push_back(json::string(ip));
      o["allowed_ips"] = std::move(ips);
      if (p.latest_handshake)
        o["latest_handshake_unix"] =
            std::chrono::duration_cast<std::chrono::seconds>(p.latest_handshake->time_since_epoch())
                .count();
      out.push_back(std::move(o));
    }
    // The public key only: the private key never leaves its file.
    json::object body{{"public_key", wireguard_public_key_}, {"peers", std::move(out)}};
    add_appliance_endpoint(body);
    respond(json_response(std::move(body)));
  });

  // Remote-management peers: WireGuard peers that reach HTTPS through the tunnel.
  server.route("GET", "/v1/management-peers", [this](Request&, Responder respond) {
    if (!management_) return respond(error_response(kNoHostFirewall));
    // Handshake and counters from the interface, when WireGuard runs.
    std::vector<wireguard::PeerStatus> status;
    if (wireguard_) {
      if (Result<std::vector<wireguard::PeerStatus>> p = wireguard_->list_peers(); p)
        status = p.value();
    }
    json::array out;
    for (const wireguard::ManagementPeer& p : management_->peers()) {
      json::object o = wireguard::to_json(p).as_object();
      for (const wireguard::PeerStatus& st : status) {
        if (st.public_key != p.public_key) continue;
        o["endpoint"] = st.endpoint;
        o["rx_bytes"] = st.rx_bytes;
        o["tx_bytes"] = st.tx_bytes;
        if (st.latest_handshake)
          o["latest_handshake_unix"] = std::chrono::duration_cast<std::chrono::seconds>(
                                           st.latest_handshake->time_since_epoch())
                                           .count();
      }
      out.push_back(std::move(o));
    }
    json::object body{{"peers", std::move(out)}, {"appliance_public_key", wireguard_public_key_}};
    // The tunnel's side of a peer's configuration, once WireGuard is up (--wireguard-address).
    if (std::optional<std::string> n = management_->tunnel_network()) body["tunnel_network"] = *n;
    if (std::optional<std::string> a = management_->appliance_tunnel_address())
      body["appliance_tunnel_address"] = *a;
    add_appliance_endpoint(body);
    respond(json_response(std::move(body)));
  });

  server.route("POST", "/v1/management-peers", [this](Request& r, Responder respond) {
    if (!management_) return respond(error_response(kNoHostFirewall));
    Result<json::value> v = json_body(r);
    if (!v) return respond(error_response(v.error()));
    Result<wireguard::ManagementPeer> p = management_->add_peer(v.value(), r.actor, now_ms());
    if (!p) return respond(error_response(p.error()));
    json::object o = wireguard::to_json(p.value()).as_object();
    o["appliance_public_key"] = wireguard_public_key_;
    add_appliance_endpoint(o);
    respond(json_response(std::move(o), 201));
  });

  server.route("DELETE", "/v1/management-peers/{}", [this](Request& r, Responder respond) {
    if (!management_) return respond(error_response(kNoHostFirewall));
    if (Status s = management_->remove_peer(r.path_params.at(0), r.actor); !s)
      return respond(error_response(s.error()));
    respond(json_response(json::object{{"removed", r.path_params.at(0)}}));
  });

  server.route("GET", "/v1/vendor-sessions", [this](Request&, Responder respond) {
    if (!vendors_) return respond(error_response(kNoVendorAccess));
    Result<std::vector<store::VendorSession>> sessions = vendors_->active(now_ms());
    if (!sessions) return respond(error_response(sessions.error()));
    json::array out;
    for (const store::VendorSession& v : sessions.value()) {
      out.push_back(json::object{{"id", v.id},
                                 {"public_key", v.public_key},
                                 {"device", v.device},
                                 {"device_ip", v.device_ip},
                                 {"ports", json::value_from(v.ports)},
                                 {"tunnel_address", v.tunnel_address},
                                 {"created_by", v.created_by},
                                 {"seconds_left", (v.expires_ms - now_ms()) / 1000}});
    }
    respond(json_response(json::object{{"sessions", std::move(out)}}));
  });

  server.route("POST", "/v1/vendor-sessions", [this](Request& r, Responder respond) {
    if (!vendors_) return respond(error_response(kNoVendorAccess));
    Result<json::value> v = json_body(r);
    if (!v) return respond(error_response(v.error()));
    Result<store::VendorSession> s = vendors_->create(v.value(), r.actor, now_ms());
    if (!s) return respond(error_response(s.error()));
    json::object body{{"id", s.value().id},
                      {"tunnel_address", s.value().tunnel_address},
                      {"device_ip", s.value().device_ip},
                      {"ports", json::value_from(s.value().ports)},
                      {"appliance_public_key", wireguard_public_key_},
                      {"seconds_left", (s.value().expires_ms - now_ms()) / 1000}};
    add_appliance_endpoint(body);
    respond(json_response(std::move(body), 201));
  });

  server.route("DELETE", "/v1/vendor-sessions/{}", [this](Request& r, Responder respond) {
    if (!vendors_) return respond(error_response(kNoVendorAccess));
    Result<int64_t> id = path_version(r);
    if (!id)
      return respond(
          error_response(Error{"invalid", "a session id is a positive integer", r.path}));
    if (Status s = vendors_->revoke(id.value(), r.actor); !s)
      return respond(error_response(s.error()));
    respond(json_response(json::object{{"revoked", id.value()}}));
  });

  server.route("GET", "/v1/discovery", [this](Request&, Responder respond) {
    Result<std::vector<store::HostRecord>> hosts = store_.hosts();
    if (!hosts) return respond(error_response(hosts.error()));
    json::array out;
    for (const store::HostRecord& h : hosts.value()) {
      out.push_back(
          json::object{{"mac", h.mac},
                       {"ip", h.ip},
                       {"device", h.device.empty() ? json::value(nullptr) : json::value(h.device)},
                       {"covered", !h.device.empty()},
                       {"first_seen", h.first_seen},
                       {"last_seen", h.last_seen},
                       {"protocols", h.protocols},
                       {"peers", h.peers}});
    }
    respond(json_response(json::object{{"hosts", std::move(out)}}));
  });

  server.route("GET", "/v1/devices/{}/flows", [this](Request& r, Responder respond) {
    Result<int64_t> hours = query_int(r, "hours", 24 * 7, 1, 24 * 365);
    if (!hours) return respond(error_response(hours.error()));
    Result<std::vector<store::FlowRecord>> flows =
        store_.flows(r.path_params[0], now_ms() - hours.value() * 3600 * 1000);
    if (!flows) return respond(error_response(flows.error()));
    json::array out;
    for (const store::FlowRecord& f : flows.value()) {
      out.push_back(
          json::object{{"dir", f.key.dir},
                       {"protocol", observe::protocol_name(f.key.protocol)},
                       {"peer", f.key.peer},
                       {"port", f.key.port},
                       {"rule", f.rule.empty() ? json::value(nullptr) : json::value(f.rule)},
                       {"first_seen", f.first_seen},
                       {"last_seen", f.last_seen},
                       {"count", f.count}});
    }
    respond(json_response(json::object{{"device", r.path_params[0]}, {"flows", std::move(out)}}));
  });

  server.route("GET", "/v1/devices/{}/proposal", [this](Request& r, Responder respond) {
    Result<int64_t> hours = query_int(r, "hours", 24 * 7, 1, 24 * 365);
    if (!hours) return respond(error_response(hours.error()));
    Result<policy::ActivePolicy> active = policy_.active();
    if (!active) return respond(error_response(active.error()));
    const int64_t since = now_ms() - hours.value() * 3600 * 1000;
    Result<std::vector<store::FlowRecord>> flows = store_.flows(r.path_params[0], since);
    if (!flows) return respond(error_response(flows.error()));
    Result<std::vector<store::FlowApp>> apps = store_.flow_apps(r.path_params[0], since);
    if (!apps) return respond(error_response(apps.error()));
    Result<policy::Proposal> p = policy::propose_rules(active.value().document, r.path_params[0],
                                                       flows.value(), apps.value());
    if (!p) return respond(error_response(p.error()));
    respond(json_response(json::object{{"device", p.value().device},
                                       {"rules_added", p.value().rules_added},
                                       {"policy", json::parse(p.value().document)},
                                       {"diff", p.value().diff},
                                       {"text", policy::diff_text(p.value().diff)}}));
  });

  server.route("GET", "/v1/dataplane/stats", [this](Request&, Responder respond) {
    Result<std::string> stats = link_.stats();
    if (!stats) return respond(error_response(stats.error()));
    json::error_code ec;
    json::value v = json::parse(stats.value(), ec);
    if (ec || !v.is_object())
      return respond(
          error_response(Error{"dataplane", "unreadable statistics from the dataplane"}));
    v.as_object().erase("ok");
    respond(json_response(v));
  });
}

Response ControlApi::events_after(int64_t after, int64_t limit) {
  Result<std::vector<store::StoredEvent>> events = store_.events(after, limit);
  if (!events) return error_response(events.error());
  json::array out;
  int64_t last = after;
  for (const store::StoredEvent& e : events.value()) {
    json::error_code ec;
    json::value v = json::parse(e.json, ec);
    if (ec || !v.is_object()) continue;
    v.as_object()["id"] = e.id;
    out.push_back(std::move(v));
    last = e.id;
  }
  return json_response(json::object{{"events", std::move(out)}, {"last_id", last}});
}

// GET /v1/events?after=ID&limit=N&wait=S: events after ID; with wait, a long poll that
// answers as soon as there is one, or empty after S seconds.
void ControlApi::get_events(Request& r, Responder respond) {
  Result<int64_t> after = query_int(r, "after", 0, 0, INT64_MAX);
  if (!after) return respond(error_response(after.error()));
  Result<int64_t> limit = query_int(r, "limit", 1000, 1, 10000);
  if (!limit) return respond(error_response(limit.error()));
  Result<int64_t> wait = query_int(r, "wait", 0, 0, 60);
  if (!wait) return respond(error_response(wait.error()));
  if (r.query.count("after") == 0 && r.query.count("wait") == 0) {
    // Without a position: the newest `limit` events.
    Result<int64_t> last = store_.last_event_id();
    if (!last) return respond(error_response(last.error()));
    return respond(events_after(std::max<int64_t>(0, last.value() - limit.value()), limit.value()));
  }
  Result<int64_t> newest = store_.last_event_id();
  if (!newest) return respond(error_response(newest.error()));
  if (newest.value() > after.value() || wait.value() == 0)
    return respond(events_after(after.value(), limit.value()));
  auto timer = std::make_unique<boost::asio::steady_timer>(io_, std::chrono::seconds(wait.value()));
  waiters_.push_back(EventWaiter{after.value(), limit.value(), std::move(respond), nullptr});
  auto it = std::prev(waiters_.end());
  timer->async_wait([this, it](boost::system::error_code ec) {
    if (ec) return;  // cancelled: answered by on_events
    Responder done = std::move(it->respond);
    const int64_t a = it->after, l = it->limit;
    waiters_.erase(it);
    done(events_after(a, l));
  });
  it->timer = std::move(timer);
}

void ControlApi::add_appliance_endpoint(json::object& o) const {
  if (!management_) return;
  if (std::optional<std::string> e = management_->appliance_endpoint())
    o["appliance_endpoint"] = *e;
}

int64_t ControlApi::wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void ControlApi::on_events(const std::vector<std::string>& events) {
  Result<observe::Ingested> ingested = observer_.ingest(events, now_ms());
  if (!ingested) return;
  std::vector<std::string> log = std::move(ingested.value().log);
  Result<std::optional<std::string>> alert = guardrail_.check(ingested.value().drops, now_ms());
  if (alert && alert.value()) log.push_back(*alert.value());
  log_events(log);
}

void ControlApi::log_events(const std::vector<std::string>& events) {
  if (events.empty()) return;
  if (Status s = store_.add_events(events); !s) return;
  for (const std::string& e : events) {
    json::error_code ec;
    const json::value v = json::parse(e, ec);
    if (!ec && v.is_object()) syslog_.submit(v.as_object());
  }
  std::list<EventWaiter> ready;
  ready.swap(waiters_);
  for (EventWaiter& w : ready) {
    w.timer->cancel();
    w.respond(events_after(w.after, w.limit));
  }
}

}  // namespace cordon::control::api
