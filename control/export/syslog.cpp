#include "control/export/syslog.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace cordon::control::export_ {
namespace json = boost::json;
namespace {

constexpr size_t kQueueLimit = 10000;
constexpr int kFacilityLocal4 = 20;
constexpr int kConnectTimeoutMs = 3000;

std::string text(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  if (!v || v->is_null()) return {};
  return v->is_string() ? std::string(v->as_string()) : json::serialize(*v);
}

// Syslog severity of an event: what a SOC would page on first.
int severity(const json::object& e) {
  const std::string kind = text(e, "kind");
  const std::string reason = text(e, "reason");
  if (kind == "guardrail-revert") return 1;  // alert
  if (kind == "update") {                    // firmware update steps (control/update)
    const std::string outcome = text(e, "outcome");
    const bool failed = outcome.rfind("failed", 0) == 0 || outcome.rfind("refused", 0) == 0;
    return failed ? 3 : 5;  // error: a rejected bundle, a failed self-test, a rollback
  }
  if (kind == "service-port") {  // the vendor path's interface (control/mgmt/service_port)
    const std::string state = text(e, "state");
    return state == "configured" ? 5 : state == "missing" ? 4 : 3;
  }
  if (reason.rfind("patch", 0) == 0 || !text(e, "detail").empty())
    return 3;                    // error: a patch or inspection hit
  if (kind == "drop") return 4;  // warning
  return 5;                      // notice
}

int cef_severity(int syslog_severity) {
  switch (syslog_severity) {
    case 1:
      return 9;
    case 3:
      return 7;
    case 4:
      return 5;
    default:
      return 3;
  }
}

std::string summary(const json::object& e) {
  std::string s = text(e, "kind") + " " + text(e, "reason");
  if (!text(e, "step").empty()) s += text(e, "step") + " " + text(e, "outcome");
  if (!text(e, "version").empty()) s += " version=" + text(e, "version");
  if (!text(e, "device").empty()) s += " device=" + text(e, "device");
  if (!text(e, "src").empty()) {
    s += " " + text(e, "src") + (text(e, "src_port").empty() ? "" : ":" + text(e, "src_port")) +
         " -> " + text(e, "dst") + (text(e, "dst_port").empty() ? "" : ":" + text(e, "dst_port"));
  }
  if (!text(e, "detail").empty()) s += " (" + text(e, "detail") + ")";
  return s;
}

std::string sd_escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '"' || c == '\\' || c == ']') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

std::string cef_header_escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '|' || c == '\\') out.push_back('\\');
    if (c == '\n' || c == '\r') c = ' ';
    out.push_back(c);
  }
  return out;
}

std::string cef_ext_escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '=' || c == '\\') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '\r') continue;
    out.push_back(c);
  }
  return out;
}

// "2026-11-27T23:24:10.438894Z" -> milliseconds since the epoch (0 when unreadable).
int64_t epoch_ms(const std::string& t) {
  std::tm tm{};
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  char rest[32] = {};
  if (std::sscanf(t.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%31s", &year, &month, &day, &hour, &minute,
                  &second, rest) < 6)
    return 0;
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  int64_t ms = static_cast<int64_t>(timegm(&tm)) * 1000;
  if (rest[0] == '.') {
    int64_t frac = 0;
    int digits = 0;
    for (const char* p = rest + 1; *p >= '0' && *p <= '9' && digits < 3; ++p, ++digits)
      frac = frac * 10 + (*p - '0');
    for (; digits < 3; ++digits) frac *= 10;
    ms += frac;
  }
  return ms;
}

std::string header(int sev, const std::string& time, const std::string& hostname,
                   const std::string& msgid) {
  return "<" + std::to_string(kFacilityLocal4 * 8 + sev) + ">1 " + (time.empty() ? "-" : time) +
         " " + (hostname.empty() ? "-" : hostname) + " cordon - " + (msgid.empty() ? "-" : msgid) +
         " ";
}

}  // namespace

Result<SyslogSettings> parse_syslog_settings(const json::value& v) {
  if (!v.is_object()) return Error{"invalid", "must be an object", ""};
  const json::object& o = v.as_object();
  SyslogSettings s;
  for (const auto& [key, value] : o) {
    const std::string k(key);
    const std::string path = "/" + k;
    if (k == "enabled") {
      if (!value.is_bool()) return Error{"invalid", "must be true or false", path};
      s.enabled = value.as_bool();
    } else if (k == "host") {
      if (!value.is_string()) return Error{"invalid", "must be an IP address", path};
      s.host = std::string(value.as_string());
      in6_addr a6{};
      in_addr a4{};
      if (inet_pton(AF_INET, s.host.c_str(), &a4) != 1 &&
          inet_pton(AF_INET6, s.host.c_str(), &a6) != 1)
        return Error{
            "invalid",
            "must be an IPv4 or IPv6 address (no names: the appliance does not depend on DNS)",
            path};
    } else if (k == "port") {
      if (!value.is_int64() || value.as_int64() < 1 || value.as_int64() > 65535)
        return Error{"invalid", "must be a port from 1 to 65535", path};
      s.port = static_cast<uint16_t>(value.as_int64());
    } else if (k == "transport") {
      if (!value.is_string() ||
          (value.as_string() != "udp" && value.as_string() != "tcp" && value.as_string() != "tls"))
        return Error{"invalid", "must be udp, tcp or tls", path};
      s.transport = std::string(value.as_string());
    } else if (k == "format") {
      if (!value.is_string() || (value.as_string() != "rfc5424" && value.as_string() != "cef"))
        return Error{"invalid", "must be rfc5424 or cef", path};
      s.format = std::string(value.as_string());
    } else if (k == "ca_file" || k == "server_name") {
      if (!value.is_string() || value.as_string().size() > 4096)
        return Error{"invalid", "must be a string", path};
      (k == "ca_file" ? s.ca_file : s.server_name) = std::string(value.as_string());
    } else {
      return Error{"invalid", "unknown field", path};
    }
  }
  if (s.enabled && s.host.empty()) return Error{"invalid", "required when enabled", "/host"};
  if (s.transport == "tls" && s.ca_file.empty())
    return Error{"invalid", "TLS needs the CA that signed the collector's certificate", "/ca_file"};
  return s;
}

json::value syslog_settings_json(const SyslogSettings& s) {
  return json::object{{"enabled", s.enabled},        {"host", s.host},     {"port", s.port},
                      {"transport", s.transport},    {"format", s.format}, {"ca_file", s.ca_file},
                      {"server_name", s.server_name}};
}

std::string format_rfc5424(const json::object& e, const std::string& hostname) {
  std::string sd = "[cordon@32473";
  for (const char* key :
       {"device", "rule", "reason", "dir", "ingress", "protocol", "src", "src_port", "dst",
        "dst_port", "src_mac", "policy_version", "step", "outcome", "version", "actor", "detail"}) {
    const std::string v = text(e, key);
    if (!v.empty()) sd += std::string(" ") + key + "=\"" + sd_escape(v) + "\"";
  }
  sd += "]";
  return header(severity(e), text(e, "time"), hostname, text(e, "kind")) + sd + " " + summary(e);
}

std::string format_cef(const json::object& e, const std::string& hostname) {
  const int sev = severity(e);
  // Signature ID and name: the reason of a traffic event, the step of an update event.
  const std::string signature = text(e, "reason").empty() ? text(e, "step") : text(e, "reason");
  std::string name = text(e, "kind") + " " + signature;
  if (!text(e, "outcome").empty()) name += " " + text(e, "outcome");
  std::string cef = "CEF:0|Cordon|Cordon appliance|1|" + cef_header_escape(signature) + "|" +
                    cef_header_escape(name) + "|" + std::to_string(cef_severity(sev)) + "|";
  std::string ext;
  auto add = [&](const std::string& key, const std::string& value) {
    if (value.empty()) return;
    if (!ext.empty()) ext.push_back(' ');
    ext += key + "=" + cef_ext_escape(value);
  };
  const int64_t rt = epoch_ms(text(e, "time"));
  if (rt != 0) add("rt", std::to_string(rt));
  add("dvchost", hostname);
  add("act", text(e, "kind") == "drop" ? "blocked" : text(e, "kind"));
  add("src", text(e, "src"));
  add("spt", text(e, "src_port"));
  add("dst", text(e, "dst"));
  add("dpt", text(e, "dst_port"));
  add("proto", text(e, "protocol"));
  add("smac", text(e, "src_mac"));
  add("cs1Label", text(e, "device").empty() ? "" : "device");
  add("cs1", text(e, "device"));
  add("cs2Label", text(e, "rule").empty() ? "" : "rule");
  add("cs2", text(e, "rule"));
  add("cs3Label", text(e, "version").empty() ? "" : "firmwareVersion");
  add("cs3", text(e, "version"));
  add("suser", text(e, "actor"));
  add("outcome", text(e, "outcome"));
  add("msg", text(e, "detail"));
  return header(sev, text(e, "time"), hostname, text(e, "kind")) + cef + ext;
}

SyslogExporter::SyslogExporter() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) == 0) hostname_ = name;
  thread_ = std::thread([this] { run(); });
}

SyslogExporter::~SyslogExporter() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  disconnect();
}

void SyslogExporter::configure(const SyslogSettings& settings) {
  {
    std::lock_guard lock(mutex_);
    settings_ = settings;
    ++generation_;
    stats_.last_error.clear();
  }
  wake_.notify_all();
}

void SyslogExporter::submit(const json::object& event) {
  {
    std::lock_guard lock(mutex_);
    if (!settings_.enabled) return;
    const std::string message =
        settings_.format == "cef" ? format_cef(event, hostname_) : format_rfc5424(event, hostname_);
    if (queue_.size() >= kQueueLimit) {
      queue_.pop_front();
      ++stats_.dropped;
    }
    queue_.push_back(message);
  }
  wake_.notify_all();
}

SyslogStats SyslogExporter::stats() {
  std::lock_guard lock(mutex_);
  return stats_;
}

void SyslogExporter::disconnect() {
  if (ssl_) {
    SSL_shutdown(static_cast<SSL*>(ssl_));
    SSL_free(static_cast<SSL*>(ssl_));
    ssl_ = nullptr;
  }
  if (ssl_ctx_) {
    SSL_CTX_free(static_cast<SSL_CTX*>(ssl_ctx_));
    ssl_ctx_ = nullptr;
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void SyslogExporter::run() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) break;
    const std::string message = queue_.front();
    lock.unlock();
    const bool sent = send(message);
    lock.lock();
    if (sent) {
      if (!queue_.empty() && queue_.front() == message) queue_.pop_front();
      ++stats_.sent;
    } else {
      // The collector is unreachable: keep the messages (bounded) and retry in a second,
      // or at once when reconfigured.
      const uint64_t generation = generation_;
      wake_.wait_for(lock, std::chrono::seconds(1),
                     [&] { return stop_ || generation_ != generation; });
    }
  }
}

bool SyslogExporter::send(const std::string& message) {
  SyslogSettings s;
  uint64_t generation = 0;
  {
    std::lock_guard lock(mutex_);
    s = settings_;
    generation = generation_;
  }
  auto fail = [&](const std::string& why) {
    disconnect();
    std::lock_guard lock(mutex_);
    stats_.last_error = why;
    return false;
  };
  if (generation != connected_generation_) disconnect();
  if (fd_ < 0) {
    sockaddr_storage addr{};
    socklen_t len = 0;
    auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
    if (inet_pton(AF_INET, s.host.c_str(), &a4->sin_addr) == 1) {
      a4->sin_family = AF_INET;
      a4->sin_port = htons(s.port);
      len = sizeof *a4;
    } else if (inet_pton(AF_INET6, s.host.c_str(), &a6->sin6_addr) == 1) {
      a6->sin6_family = AF_INET6;
      a6->sin6_port = htons(s.port);
      len = sizeof *a6;
    } else {
      return fail("bad collector address " + s.host);
    }
    const bool udp = s.transport == "udp";
    fd_ = ::socket(addr.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC | SOCK_NONBLOCK,
                   0);
    if (fd_ < 0) return fail(std::string("socket: ") + std::strerror(errno));
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
      if (errno != EINPROGRESS) return fail(std::string("connect: ") + std::strerror(errno));
      pollfd p{fd_, POLLOUT, 0};
      int err = 0;
      socklen_t err_len = sizeof err;
      if (::poll(&p, 1, kConnectTimeoutMs) != 1 ||
          ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &err_len) != 0 || err != 0)
        return fail("cannot connect to " + s.host + ":" + std::to_string(s.port) +
                    (err ? std::string(": ") + std::strerror(err) : ""));
    }
    // Blocking from here on, with a send timeout, on the sender thread only.
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (s.transport == "tls") {
      SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
      ssl_ctx_ = ctx;
      SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
      if (SSL_CTX_load_verify_locations(ctx, s.ca_file.c_str(), nullptr) != 1)
        return fail("cannot read the collector's CA " + s.ca_file);
      SSL* ssl = SSL_new(ctx);
      ssl_ = ssl;
      const std::string name = s.server_name.empty() ? s.host : s.server_name;
      SSL_set1_host(ssl, name.c_str());
      in6_addr ignored{};
      if (inet_pton(AF_INET, name.c_str(), &ignored) != 1 &&
          inet_pton(AF_INET6, name.c_str(), &ignored) != 1)
        SSL_set_tlsext_host_name(ssl, name.c_str());
      SSL_set_fd(ssl, fd_);
      if (SSL_connect(ssl) != 1) {
        const unsigned long e = ERR_get_error();
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        ERR_clear_error();
        return fail(std::string("TLS handshake with the collector failed: ") + buf);
      }
    }
    connected_generation_ = generation;
  }
  // Stream transports frame each message with its length (RFC 6587 / RFC 5425).
  const std::string wire =
      s.transport == "udp" ? message : std::to_string(message.size()) + " " + message;
  size_t done = 0;
  while (done < wire.size()) {
    ssize_t n;
    if (ssl_) {
      n = SSL_write(static_cast<SSL*>(ssl_), wire.data() + done,
                    static_cast<int>(wire.size() - done));
      if (n <= 0) return fail("TLS write to the collector failed");
    } else {
      n = ::send(fd_, wire.data() + done, wire.size() - done, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail(std::string("send: ") + std::strerror(errno));
      }
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace cordon::control::export_
