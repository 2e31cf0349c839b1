// cordonctl: command-line client of cordon-controld's control API (HTTP/1.1 + JSON on
// a unix socket; control/api/openapi.yaml). The socket is --socket PATH, else
// $CORDON_SOCKET, else the first of /run/cordon/controld.sock and
// /run/cordon-lab/controld.sock that exists.
//
// Exit status: 0 done; 1 refused or failed (the reason on stderr, each input error
// with its JSON path); 2 usage.
#include <openssl/evp.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;

namespace {

constexpr const char* kUsage =
    "usage: cordonctl [--socket PATH] COMMAND\n"
    "  policy apply FILE [--comment TEXT] [--confirm-within SECONDS]\n"
    "                           apply FILE; exit 0 once the dataplane enforces it. With\n"
    "                           --confirm-within, it reverts unless `policy confirm` follows\n"
    "  policy confirm           keep a provisional apply\n"
    "  policy validate FILE     check FILE without applying it\n"
    "  policy dry-run FILE [--pcap PCAP | --recorded DURATION] [--json]\n"
    "                           what FILE would block (and allow) per device compared with the\n"
    "                           active policy: PCAP replayed, or the connections recorded in the\n"
    "                           last DURATION (e.g. 30m, 24h, 7d; default 24h)\n"
    "  policy get               the active policy (JSON) and its version\n"
    "  policy history           every version: who, when, why\n"
    "  policy show VERSION      one version's document\n"
    "  policy diff A [B]        what changes from version A to B (default: the active one)\n"
    "  policy rollback VERSION [--comment TEXT]\n"
    "                           make VERSION's document active again (as a new version)\n"
    "  discovery                every MAC/IP seen on a device port; whether a policy covers it\n"
    "  device flows NAME        the kinds of connection NAME took part in (flow records)\n"
    "  device proposal NAME [--output FILE]\n"
    "                           rules learned from NAME's flows, as a diff (and a policy file)\n"
    "  settings syslog get      the syslog export target and its counters\n"
    "  settings syslog set FILE replace the target (JSON: enabled, host, port, transport\n"
    "                           udp|tcp|tls, format rfc5424|cef, ca_file, server_name)\n"
    "  settings management get | set FILE | verify\n"
    "                           the host firewall's settings (admin networks, ports), or\n"
    "                           compare the kernel's table with the intended one\n"
    "  wireguard                the appliance's WireGuard public key, endpoint and peers\n"
    "  management-peer list     remote-management peers (WireGuard; HTTPS through the tunnel)\n"
    "  management-peer add --name NAME --key PUBKEY --address TUNNEL_ADDRESS\n"
    "                           let an admin's WireGuard key reach the web UI through the\n"
    "                           tunnel from TUNNEL_ADDRESS (e.g. 10.99.0.200)\n"
    "  management-peer remove NAME\n"
    "                           end that peer's access (its tunnel and HTTPS)\n"
    "  vendor list              open vendor access sessions with their time left\n"
    "  vendor create --key PUBKEY --device NAME --port PORT [--port PORT]... --duration SECONDS\n"
    "                           let one vendor key reach one device's ports for a while\n"
    "  vendor revoke ID         end a session now (its open connections are cut)\n"
    "  guardrail get            the clinical guardrail's settings\n"
    "  guardrail set FILE       replace them (JSON)\n"
    "  stats                    dataplane counters by reason and device (JSON)\n"
    "  events [--follow] [--json]  alerts and drops, one per line\n"
    "  audit [--json]           the audit log\n"
    "  audit verify             check the audit log's hash chain\n"
    "  update upload BUNDLE     send a firmware bundle (.raucb); waits until it is installed\n"
    "                           or refused, and says why\n"
    "  update status            state, progress, slots, versions, last result (JSON)\n"
    "  update mark-good         commit the booted trial slot by hand\n"
    "  update allow-downgrade VERSION --reason TEXT\n"
    "                           allow one install of an older VERSION (audited, single\n"
    "                           use, expires in 24 h; the bundle must still be signed)\n";

struct Failure {
  std::string message;
};

std::string socket_path(const std::optional<std::string>& flag) {
  if (flag) return *flag;
  if (const char* env = std::getenv("CORDON_SOCKET")) return env;
  for (const char* candidate : {"/run/cordon/controld.sock", "/run/cordon-lab/controld.sock"}) {
    if (std::filesystem::exists(candidate)) return candidate;
  }
  return "/run/cordon/controld.sock";
}

struct Reply {
  unsigned status = 0;
  json::value body;
};

class Client {
 public:
  explicit Client(std::string path) : path_(std::move(path)) {}

  Reply call(http::verb method, const std::string& target,
             const std::optional<json::value>& body = {}, const std::string* octets = nullptr) {
    asio::local::stream_protocol::socket socket(io_);
    beast::error_code ec;
    socket.connect(asio::local::stream_protocol::endpoint(path_), ec);
    if (ec) {
      throw Failure{"cannot connect to " + path_ + ": " + ec.message() +
                    " (is cordon-controld running? set CORDON_SOCKET or --socket)"};
    }
    http::request<http::string_body> req(method, target, 11);
    req.set(http::field::host, "controld");
    req.set(http::field::user_agent, "cordonctl");
    if (body) {
      req.set(http::field::content_type, "application/json");
      req.body() = json::serialize(*body);
    } else if (octets) {
      req.set(http::field::content_type, "application/octet-stream");
      req.body() = *octets;
    }
    req.prepare_payload();
    http::write(socket, req, ec);
    if (ec) throw Failure{"sending the request: " + ec.message()};
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(256ull << 20);
    http::read(socket, buffer, parser, ec);
    if (ec) throw Failure{"reading the answer: " + ec.message()};
    Reply reply;
    reply.status = parser.get().result_int();
    json::error_code jec;
    reply.body = json::parse(parser.get().body(), jec);
    if (jec) throw Failure{"controld answered something that is not JSON"};
    return reply;
  }

 private:
  std::string path_;
  asio::io_context io_;
};

// Prints an API error: the message, then every detail with its path.
int print_error(const Reply& r, const std::string& prefix) {
  const json::value* e = r.body.is_object() ? r.body.as_object().if_contains("error") : nullptr;
  if (!e || !e->is_object()) {
    std::cerr << "cordonctl: " << prefix << "HTTP " << r.status << "\n";
    return 1;
  }
  const json::object& o = e->as_object();
  auto str = [](const json::object& obj, const char* k) {
    const json::value* v = obj.if_contains(k);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  };
  const json::value* details = o.if_contains("details");
  if (details && details->is_array() && !details->as_array().empty()) {
    std::cerr << "cordonctl: " << prefix << str(o, "message") << "\n";
    for (const json::value& d : details->as_array()) {
      const std::string path = str(d.as_object(), "path");
      std::cerr << "  " << (path.empty() ? "" : path + ": ") << str(d.as_object(), "message")
                << "\n";
    }
  } else {
    const std::string path = str(o, "path");
    std::cerr << "cordonctl: " << prefix << (path.empty() ? "" : path + ": ") << str(o, "message")
              << "\n";
  }
  return 1;
}

// Pretty printer for JSON output (Boost.JSON serialises compactly).
void pretty(std::ostream& os, const json::value& v, int indent = 0) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  if (v.is_object() && !v.as_object().empty()) {
    const auto& o = v.as_object();
    os << "{\n";
    size_t i = 0;
    for (const auto& [k, val] : o) {
      os << pad << "  " << json::serialize(json::value(k)) << ": ";
      pretty(os, val, indent + 2);
      os << (++i < o.size() ? ",\n" : "\n");
    }
    os << pad << "}";
  } else if (v.is_array() && !v.as_array().empty()) {
    const auto& a = v.as_array();
    os << "[\n";
    for (size_t i = 0; i < a.size(); ++i) {
      os << pad << "  ";
      pretty(os, a[i], indent + 2);
      os << (i + 1 < a.size() ? ",\n" : "\n");
    }
    os << pad << "]";
  } else {
    os << json::serialize(v);
  }
}

std::string field(const json::object& e, const char* key) {
  const json::value* v = e.if_contains(key);
  if (v == nullptr || v->is_null()) return std::string();
  return v->is_string() ? std::string(v->as_string()) : json::serialize(*v);
}

// The lines that tell a WireGuard peer where the appliance's end of its tunnel is.
void print_appliance_side(const json::object& o) {
  std::cout << "appliance public key " << field(o, "appliance_public_key") << "\n";
  if (o.contains("appliance_endpoint"))
    std::cout << "appliance endpoint " << field(o, "appliance_endpoint") << "\n";
}

std::string event_text(const json::object& e) {
  std::string text = field(e, "time") + " " + field(e, "kind") + " " + field(e, "reason");
  text += " device=" + (field(e, "device").empty() ? std::string("-") : field(e, "device"));
  if (!field(e, "rule").empty()) text += " rule=" + field(e, "rule");
  if (!field(e, "src").empty()) {
    text += " " + field(e, "src") +
            (field(e, "src_port").empty() ? "" : ":" + field(e, "src_port")) + " -> " +
            field(e, "dst") + (field(e, "dst_port").empty() ? "" : ":" + field(e, "dst_port"));
  }
  text += " proto=" + field(e, "protocol") + " from=" + field(e, "ingress");
  if (!field(e, "detail").empty()) text += " (" + field(e, "detail") + ")";
  return text;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Failure{"cannot read " + path};
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Options after the positional arguments: --name VALUE pairs from `allowed`.
std::optional<std::vector<std::pair<std::string, std::string>>> flags(
    const std::vector<std::string>& args, size_t from,
    std::initializer_list<std::string_view> allowed) {
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = from; i < args.size(); i += 2) {
    bool known = false;
    for (std::string_view a : allowed) known = known || a == args[i];
    if (!known || i + 1 >= args.size()) return std::nullopt;
    out.emplace_back(args[i], args[i + 1]);
  }
  return out;
}

std::optional<int64_t> number(const std::string& s) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// "90" (seconds), "30m", "24h", "7d".
std::optional<int64_t> duration_seconds(const std::string& s) {
  if (s.empty()) return std::nullopt;
  int64_t unit = 1;
  std::string digits = s;
  switch (s.back()) {
    case 's':
      unit = 1;
      digits.pop_back();
      break;
    case 'm':
      unit = 60;
      digits.pop_back();
      break;
    case 'h':
      unit = 3600;
      digits.pop_back();
      break;
    case 'd':
      unit = 86400;
      digits.pop_back();
      break;
    default:
      break;
  }
  const auto n = number(digits);
  if (!n || *n <= 0 || *n > 90 * 86400 / unit) return std::nullopt;
  return *n * unit;
}

int policy_command(Client& c, const std::vector<std::string>& args) {
  const std::string& sub = args.size() > 1 ? args[1] : "";
  if (sub == "apply" && args.size() >= 3) {
    auto opts = flags(args, 3, {"--comment", "--confirm-within"});
    if (!opts) return (std::cerr << kUsage, 2);
    json::object body{{"document", read_file(args[2])}};
    for (const auto& [k, v] : *opts) {
      if (k == "--comment") body["comment"] = v;
      if (k == "--confirm-within") {
        const auto n = number(v);
        if (!n) return (std::cerr << "cordonctl: --confirm-within takes seconds\n", 2);
        body["confirm_within"] = *n;
      }
    }
    const Reply r = c.call(http::verb::post, "/v1/policy", json::value(body));
    if (r.status != 201) return print_error(r, args[2] + " was not applied, nothing changed: ");
    const json::object& o = r.body.as_object();
    std::cout << "applied policy version " << field(o, "version") << "\n";
    if (o.contains("confirm_by_unix_ms"))
      std::cout << "provisional: it reverts unless `cordonctl policy confirm` arrives in time\n";
    return 0;
  }
  if (sub == "confirm" && args.size() == 2) {
    const Reply r = c.call(http::verb::post, "/v1/policy/confirm", json::value(json::object{}));
    if (r.status != 200) return print_error(r, "");
    std::cout << "confirmed\n";
    return 0;
  }
  if (sub == "validate" && args.size() == 3) {
    const Reply r = c.call(http::verb::post, "/v1/policy/validate",
                           json::value(json::object{{"document", read_file(args[2])}}));
    if (r.status != 200) return print_error(r, args[2] + ": ");
    std::cout << args[2] << " is valid\n";
    return 0;
  }
  if (sub == "dry-run" && args.size() >= 3) {
    std::vector<std::string> rest(args.begin() + 3, args.end());
    bool as_json = false;
    if (!rest.empty() && rest.back() == "--json") {
      as_json = true;
      rest.pop_back();
    }
    std::vector<std::string> shifted = {"", "", ""};
    shifted.insert(shifted.end(), rest.begin(), rest.end());
    auto opts = flags(shifted, 3, {"--pcap", "--recorded"});
    if (!opts || opts->size() > 1) return (std::cerr << kUsage, 2);
    json::object body{{"document", read_file(args[2])}};
    int64_t recorded = 24 * 3600;
    for (const auto& [k, v] : *opts) {
      if (k == "--pcap") {
        const std::string bytes = read_file(v);
        std::string b64(4 * ((bytes.size() + 2) / 3) + 1, '\0');
        const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                                      reinterpret_cast<const unsigned char*>(bytes.data()),
                                      static_cast<int>(bytes.size()));
        b64.resize(static_cast<size_t>(n));
        body["pcap_base64"] = std::move(b64);
      } else {
        const auto d = duration_seconds(v);
        if (!d)
          return (std::cerr << "cordonctl: --recorded takes a duration such as 30m, 24h or 7d\n",
                  2);
        recorded = *d;
      }
    }
    if (!body.contains("pcap_base64")) body["recorded_seconds"] = recorded;
    const Reply r = c.call(http::verb::post, "/v1/policy/dry-run", json::value(body));
    if (r.status != 200) return print_error(r, "dry-run of " + args[2] + ": ");
    if (as_json) {
      pretty(std::cout, r.body.at("report"));
      std::cout << "\n";
    } else {
      std::cout << field(r.body.as_object(), "text");
    }
    return 0;
  }
  if (sub == "get" && args.size() == 2) {
    const Reply r = c.call(http::verb::get, "/v1/policy");
    if (r.status != 200) return print_error(r, "");
    const json::object& o = r.body.as_object();
    pretty(std::cout, json::object{{"version", o.at("version")}, {"policy", o.at("policy")}});
    std::cout << "\n";
    return 0;
  }
  if (sub == "history" && args.size() == 2) {
    const Reply r = c.call(http::verb::get, "/v1/policy/versions");
    if (r.status != 200) return print_error(r, "");
    const json::object& o = r.body.as_object();
    const std::string active = field(o, "active");
    for (const json::value& v : o.at("versions").as_array()) {
      const json::object& e = v.as_object();
      std::cout << (field(e, "version") == active ? "* " : "  ") << field(e, "version") << "  "
                << field(e, "created_at") << "  " << field(e, "status") << "  "
                << field(e, "author") << "  " << field(e, "comment") << "\n";
    }
    return 0;
  }
  if (sub == "show" && args.size() == 3) {
    const Reply r = c.call(http::verb::get, "/v1/policy/versions/" + args[2]);
    if (r.status != 200) return print_error(r, "");
    pretty(std::cout, r.body);
    std::cout << "\n";
    return 0;
  }
  if (sub == "diff" && (args.size() == 3 || args.size() == 4)) {
    const std::string to = args.size() == 4 ? args[3] : "active";
    if (!number(args[2]) || (to != "active" && !number(to))) return (std::cerr << kUsage, 2);
    const Reply r = c.call(http::verb::get, "/v1/policy/diff?from=" + args[2] + "&to=" + to);
    if (r.status != 200) return print_error(r, "");
    std::cout << field(r.body.as_object(), "text");
    return 0;
  }
  if (sub == "rollback" && args.size() >= 3) {
    auto opts = flags(args, 3, {"--comment"});
    const auto version = number(args[2]);
    if (!opts || !version) return (std::cerr << kUsage, 2);
    json::object body{{"version", *version}};
    for (const auto& [k, v] : *opts) body["comment"] = v;
    const Reply r = c.call(http::verb::post, "/v1/policy/rollback", json::value(body));
    if (r.status != 201) return print_error(r, "rollback refused, nothing changed: ");
    std::cout << "rolled back: version " << args[2] << " is active again as version "
              << field(r.body.as_object(), "version") << "\n";
    return 0;
  }
  std::cerr << kUsage;
  return 2;
}

int events_command(Client& c, const std::vector<std::string>& args) {
  bool follow = false;
  bool as_json = false;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--follow") {
      follow = true;
    } else if (args[i] == "--json") {
      as_json = true;
    } else {
      std::cerr << kUsage;
      return 2;
    }
  }
  auto print = [&](const json::array& events) {
    for (const json::value& e : events) {
      json::object o = e.as_object();
      o.erase("id");
      o.erase("run");
      o.erase("seq");
      std::cout << (as_json ? json::serialize(o) : event_text(o)) << "\n";
    }
    std::cout.flush();
  };
  Reply r = c.call(http::verb::get, "/v1/events?limit=1000");
  if (r.status != 200) return print_error(r, "");
  print(r.body.at("events").as_array());
  if (!follow) return 0;
  int64_t last = r.body.at("last_id").to_number<int64_t>();
  for (;;) {  // long polls: each answers as soon as there are new events
    r = c.call(http::verb::get, "/v1/events?after=" + std::to_string(last) + "&wait=30");
    if (r.status != 200) return print_error(r, "");
    print(r.body.at("events").as_array());
    last = r.body.at("last_id").to_number<int64_t>();
    if (!std::cout) return 0;  // the reader went away
  }
}

int audit_command(Client& c, const std::vector<std::string>& args) {
  if (args.size() == 2 && args[1] == "verify") {
    const Reply r = c.call(http::verb::get, "/v1/audit/verify");
    if (r.status != 200) return print_error(r, "");
    const json::object& o = r.body.as_object();
    if (o.at("intact").as_bool()) {
      std::cout << "audit log intact: " << field(o, "entries") << " entries, hash chain verified\n";
      return 0;
    }
    std::cout << "audit log TAMPERED at entry " << field(o, "first_bad_seq") << ": "
              << field(o, "problem") << "\n";
    return 1;
  }
  const bool as_json = args.size() == 2 && args[1] == "--json";
  if (args.size() != 1 && !as_json) return (std::cerr << kUsage, 2);
  int64_t after = 0;
  for (;;) {
    const Reply r =
        c.call(http::verb::get, "/v1/audit?after=" + std::to_string(after) + "&limit=1000");
    if (r.status != 200) return print_error(r, "");
    const json::array& entries = r.body.at("entries").as_array();
    if (entries.empty()) return 0;
    for (const json::value& v : entries) {
      const json::object& e = v.as_object();
      if (as_json) {
        std::cout << json::serialize(e) << "\n";
      } else {
        std::cout << field(e, "seq") << "  " << field(e, "at") << "  " << field(e, "actor") << "@"
                  << field(e, "origin") << "  " << field(e, "action") << " " << field(e, "target")
                  << "  " << field(e, "outcome")
                  << (field(e, "detail").empty() ? "" : "  (" + field(e, "detail") + ")") << "\n";
      }
      after = e.at("seq").to_number<int64_t>();
    }
  }
}

int device_command(Client& c, const std::vector<std::string>& args) {
  if (args.size() >= 3 && args[1] == "flows" && args.size() == 3) {
    const Reply r = c.call(http::verb::get, "/v1/devices/" + args[2] + "/flows");
    if (r.status != 200) return print_error(r, "");
    for (const json::value& v : r.body.at("flows").as_array()) {
      const json::object& f = v.as_object();
      std::cout << field(f, "protocol") << " " << field(f, "dir") << " "
                << (field(f, "dir") == "out" ? "to " : "from ") << field(f, "peer")
                << (field(f, "port") == "0" ? "" : " port " + field(f, "port"))
                << "  rule=" << (field(f, "rule").empty() ? "(none)" : field(f, "rule"))
                << "  flows=" << field(f, "count") << "  last=" << field(f, "last_seen") << "\n";
    }
    return 0;
  }
  if (args.size() >= 3 && args[1] == "proposal") {
    auto opts = flags(args, 3, {"--output"});
    if (!opts) return (std::cerr << kUsage, 2);
    const Reply r = c.call(http::verb::get, "/v1/devices/" + args[2] + "/proposal");
    if (r.status != 200) return print_error(r, "");
    std::cout << field(r.body.as_object(), "rules_added") << " rule(s) proposed for " << args[2]
              << "\n"
              << field(r.body.as_object(), "text");
    for (const auto& [k, v] : *opts) {
      std::ofstream out(v, std::ios::binary | std::ios::trunc);
      pretty(out, r.body.at("policy"));
      out << "\n";
      if (!out) throw Failure{"cannot write " + v};
      std::cout << "candidate policy written to " << v << " (review, dry-run, then apply)\n";
    }
    return 0;
  }
  std::cerr << kUsage;
  return 2;
}

// cordonctl update ...: the firmware update API (/v1/update, docs/update-flow.md).
int update_command(Client& c, const std::vector<std::string>& args) {
  if (args.size() == 2 && args[1] == "status") {
    const Reply r = c.call(http::verb::get, "/v1/update");
    if (r.status != 200) return print_error(r, "");
    pretty(std::cout, r.body);
    std::cout << "\n";
    return 0;
  }
  if (args.size() == 2 && args[1] == "mark-good") {
    const Reply r = c.call(http::verb::post, "/v1/update/mark-good");
    if (r.status != 200) return print_error(r, "");
    std::cout << "committed " << field(r.body.as_object(), "booted_version") << "\n";
    return 0;
  }
  if (args.size() == 5 && args[1] == "allow-downgrade" && args[3] == "--reason") {
    const Reply r = c.call(http::verb::post, "/v1/update/allow-downgrade",
                           json::value(json::object{{"version", args[2]}, {"reason", args[4]}}));
    if (r.status != 200) return print_error(r, "");
    std::cout << "one install of " << field(r.body.as_object(), "version")
              << " below the version floor is allowed until "
              << field(r.body.as_object(), "expires_at") << "\n";
    return 0;
  }
  if (args.size() == 3 && args[1] == "upload") {
    const std::string bundle = read_file(args[2]);
    Reply r = c.call(http::verb::post, "/v1/update", std::nullopt, &bundle);
    if (r.status != 202) return print_error(r, args[2] + ": ");
    // The install runs in controld; follow its progress until it is decided.
    std::string shown;
    for (;;) {
      const json::object& o = r.body.as_object();
      const std::string state = field(o, "state");
      const json::object& p = o.at("progress").as_object();
      const std::string line =
          std::to_string(p.at("percent").as_int64()) + "% " + field(p, "message");
      if (state == "installing" && line != shown) std::cout << (shown = line) << "\n";
      if (state != "installing") {
        const json::value& last = o.at("last_result");
        if (state == "awaiting-reboot") {
          std::cout << "installed " << field(o.at("pending").as_object(), "to_version")
                    << " into the inactive slot; reboot to try it (it is kept only if its "
                       "self-test passes)\n";
          return 0;
        }
        if (last.is_object() && field(last.as_object(), "outcome") == "rejected") {
          std::cerr << "cordonctl: " << args[2]
                    << ": refused: " << field(last.as_object(), "reason") << "\n";
          return 1;
        }
        std::cerr << "cordonctl: update ended in state " << state << "\n";
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));  // polling the API's progress
      r = c.call(http::verb::get, "/v1/update");
      if (r.status != 200) return print_error(r, "");
    }
  }
  std::cerr << kUsage;
  return 2;
}

int run(std::vector<std::string> args) {
  std::optional<std::string> socket_flag;
  if (args.size() >= 2 && args[0] == "--socket") {
    socket_flag = args[1];
    args.erase(args.begin(), args.begin() + 2);
  }
  if (args.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  Client c(socket_path(socket_flag));
  if (args[0] == "policy") return policy_command(c, args);
  if (args[0] == "events") return events_command(c, args);
  if (args[0] == "audit") return audit_command(c, args);
  if (args[0] == "update") return update_command(c, args);
  if (args[0] == "device") return device_command(c, args);
  if (args[0] == "discovery" && args.size() == 1) {
    const Reply r = c.call(http::verb::get, "/v1/discovery");
    if (r.status != 200) return print_error(r, "");
    for (const json::value& v : r.body.at("hosts").as_array()) {
      const json::object& h = v.as_object();
      std::cout << field(h, "mac") << "  " << (field(h, "ip").empty() ? "-" : field(h, "ip"))
                << "  "
                << (h.at("covered").as_bool() ? "device " + field(h, "device")
                                              : std::string("NOT COVERED by any policy"))
                << "  protocols=" << field(h, "protocols") << "  peers=" << field(h, "peers")
                << "  first=" << field(h, "first_seen") << "  last=" << field(h, "last_seen")
                << "\n";
    }
    return 0;
  }
  if (args[0] == "settings" && args.size() == 3 && args[1] == "syslog" && args[2] == "get") {
    const Reply r = c.call(http::verb::get, "/v1/settings/syslog");
    if (r.status != 200) return print_error(r, "");
    pretty(std::cout, r.body);
    std::cout << "\n";
    return 0;
  }
  if (args[0] == "settings" && args.size() == 4 && args[1] == "syslog" && args[2] == "set") {
    json::error_code ec;
    const json::value body = json::parse(read_file(args[3]), ec);
    if (ec) throw Failure{args[3] + " is not JSON: " + ec.message()};
    const Reply r = c.call(http::verb::put, "/v1/settings/syslog", body);
    if (r.status != 200) return print_error(r, args[3] + ": ");
    std::cout << "syslog export settings replaced\n";
    return 0;
  }
  if (args[0] == "settings" && args.size() >= 3 && args[1] == "management") {
    if (args[2] == "get" && args.size() == 3) {
      const Reply r = c.call(http::verb::get, "/v1/settings/management");
      if (r.status != 200) return print_error(r, "");
      pretty(std::cout, r.body);
      std::cout << "\n";
      return 0;
    }
    if (args[2] == "verify" && args.size() == 3) {
      const Reply r = c.call(http::verb::get, "/v1/settings/management/verify");
      if (r.status != 200) return print_error(r, "");
      if (r.body.at("matches").as_bool()) {
        std::cout << "the kernel's table inet cordon_mgmt matches the intended one\n";
        return 0;
      }
      std::cout << "the kernel's table inet cordon_mgmt DIFFERS from the intended one:\n";
      for (const json::value& d : r.body.at("differences").as_array())
        std::cout << "  " << d.as_string() << "\n";
      return 1;
    }
    if (args[2] == "set" && args.size() == 4) {
      json::error_code ec;
      const json::value body = json::parse(read_file(args[3]), ec);
      if (ec) throw Failure{args[3] + " is not JSON: " + ec.message()};
      const Reply r = c.call(http::verb::put, "/v1/settings/management", body);
      if (r.status != 200) return print_error(r, args[3] + ": ");
      std::cout << "management settings replaced; the firewall is installed and verified\n";
      return 0;
    }
  }
  if (args[0] == "wireguard" && args.size() == 1) {
    const Reply r = c.call(http::verb::get, "/v1/wireguard");
    if (r.status != 200) return print_error(r, "");
    pretty(std::cout, r.body);
    std::cout << "\n";
    return 0;
  }
  if (args[0] == "management-peer" && args.size() == 2 && args[1] == "list") {
    const Reply r = c.call(http::verb::get, "/v1/management-peers");
    if (r.status != 200) return print_error(r, "");
    for (const json::value& v : r.body.at("peers").as_array()) {
      const json::object& o = v.as_object();
      std::cout << field(o, "name") << "  tunnel " << field(o, "tunnel_address") << "  key "
                << field(o, "public_key");
      if (o.contains("latest_handshake_unix"))
        std::cout << "  handshake " << field(o, "latest_handshake_unix");
      // Peers added by a build before these were recorded have neither.
      if (o.contains("added_at"))
        std::cout << "  added " << field(o, "added_at") << " by " << field(o, "added_by");
      std::cout << "\n";
    }
    return 0;
  }
  if (args[0] == "management-peer" && args.size() == 3 && args[1] == "remove") {
    const Reply r = c.call(http::verb::delete_, "/v1/management-peers/" + args[2]);
    if (r.status != 200) return print_error(r, "");
    std::cout << "management peer " << args[2] << " removed\n";
    return 0;
  }
  if (args[0] == "management-peer" && args.size() >= 2 && args[1] == "add") {
    auto opts = flags(args, 2, {"--name", "--key", "--address"});
    if (!opts) return (std::cerr << kUsage, 2);
    json::object body;
    for (const auto& [k, v] : *opts) {
      if (k == "--name") body["name"] = v;
      if (k == "--key") body["public_key"] = v;
      if (k == "--address") body["tunnel_address"] = v;
    }
    const Reply r = c.call(http::verb::post, "/v1/management-peers", json::value(body));
    if (r.status != 201) return print_error(r, "management peer refused: ");
    const json::object& o = r.body.as_object();
    std::cout << "management peer " << field(o, "name") << ": tunnel address "
              << field(o, "tunnel_address") << " reaches the web UI through the tunnel\n";
    print_appliance_side(o);
    return 0;
  }
  if (args[0] == "vendor" && args.size() == 2 && args[1] == "list") {
    const Reply r = c.call(http::verb::get, "/v1/vendor-sessions");
    if (r.status != 200) return print_error(r, "");
    for (const json::value& v : r.body.at("sessions").as_array()) {
      const json::object& o = v.as_object();
      std::cout << field(o, "id") << "  " << field(o, "device") << " (" << field(o, "device_ip")
                << ") ports " << field(o, "ports") << "  tunnel " << field(o, "tunnel_address")
                << "  " << field(o, "seconds_left") << " s left  by " << field(o, "created_by")
                << "  key " << field(o, "public_key") << "\n";
    }
    return 0;
  }
  if (args[0] == "vendor" && args.size() == 3 && args[1] == "revoke") {
    if (!number(args[2])) return (std::cerr << kUsage, 2);
    const Reply r = c.call(http::verb::delete_, "/v1/vendor-sessions/" + args[2]);
    if (r.status != 200) return print_error(r, "");
    std::cout << "vendor session " << args[2] << " revoked\n";
    return 0;
  }
  if (args[0] == "vendor" && args.size() >= 2 && args[1] == "create") {
    auto opts = flags(args, 2, {"--key", "--device", "--port", "--duration"});
    if (!opts) return (std::cerr << kUsage, 2);
    json::object body;
    json::array ports;
    for (const auto& [k, v] : *opts) {
      if (k == "--key") body["public_key"] = v;
      if (k == "--device") body["device"] = v;
      if (k == "--port" || k == "--duration") {
        const auto n = number(v);
        if (!n) return (std::cerr << "cordonctl: " << k << " takes a number\n", 2);
        if (k == "--port")
          ports.push_back(*n);
        else
          body["duration_seconds"] = *n;
      }
    }
    body["ports"] = std::move(ports);
    const Reply r = c.call(http::verb::post, "/v1/vendor-sessions", json::value(body));
    if (r.status != 201) return print_error(r, "vendor session refused: ");
    const json::object& o = r.body.as_object();
    std::cout << "vendor session " << field(o, "id") << ": tunnel address "
              << field(o, "tunnel_address") << ", reaches " << field(o, "device_ip") << " ports "
              << field(o, "ports") << " for " << field(o, "seconds_left") << " s\n";
    print_appliance_side(o);
    return 0;
  }
  if (args[0] == "guardrail" && args.size() == 2 && args[1] == "get") {
    const Reply r = c.call(http::verb::get, "/v1/guardrail");
    if (r.status != 200) return print_error(r, "");
    pretty(std::cout, r.body);
    std::cout << "\n";
    return 0;
  }
  if (args[0] == "guardrail" && args.size() == 3 && args[1] == "set") {
    json::error_code ec;
    const json::value body = json::parse(read_file(args[2]), ec);
    if (ec) throw Failure{args[2] + " is not JSON: " + ec.message()};
    const Reply r = c.call(http::verb::put, "/v1/guardrail", body);
    if (r.status != 200) return print_error(r, args[2] + ": ");
    std::cout << "guardrail settings replaced\n";
    return 0;
  }
  if (args[0] == "stats" && args.size() == 1) {
    const Reply r = c.call(http::verb::get, "/v1/dataplane/stats");
    if (r.status != 200) return print_error(r, "");
    pretty(std::cout, r.body);
    std::cout << "\n";
    return 0;
  }
  std::cerr << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const Failure& f) {
    std::cerr << "cordonctl: " << f.message << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "cordonctl: " << e.what() << "\n";
    return 1;
  }
}
