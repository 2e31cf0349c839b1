#include "control/update/webd_probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace cordon::control::update {

namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};
struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};

std::string ssl_error() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return "connection closed";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Non-blocking connect with a deadline, then blocking with send/receive timeouts.
Result<int> connect_with_timeout(const HttpsProbeTarget& t) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, t.host.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(t.port);
    len = sizeof *a4;
  } else if (inet_pton(AF_INET6, t.host.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(t.port);
    len = sizeof *a6;
  } else {
    return Error{"invalid", "'" + t.host + "' is not an IP address"};
  }
  const int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Error{"io", std::string("socket: ") + std::strerror(errno)};
  Fd guard{fd};
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (errno != EINPROGRESS) return Error{"unavailable", std::strerror(errno)};
    pollfd p{fd, POLLOUT, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(t.timeout.count()));
    if (ready == 0) return Error{"unavailable", "no answer within the timeout"};
    int err = 0;
    socklen_t el = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (ready < 0 || err != 0) return Error{"unavailable", std::strerror(ready < 0 ? errno : err)};
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(t.timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((t.timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  guard.fd = -1;
  return fd;
}

}  // namespace

Result<HttpsProbeTarget> parse_probe_url(const std::string& url) {
  const std::string scheme = "https://";
  if (url.rfind(scheme, 0) != 0) return Error{"invalid", "must start with https://", ""};
  std::string rest = url.substr(scheme.size());
  HttpsProbeTarget t;
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    t.path = rest.substr(slash);
    rest = rest.substr(0, slash);
  }
  std::string port;
  if (!rest.empty() && rest[0] == '[') {
    const size_t close = rest.find(']');
    if (close == std::string::npos) return Error{"invalid", "unclosed [ in the address", ""};
    t.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return Error{"invalid", "expected :PORT after ]", ""};
      port = rest.substr(close + 2);
    }
  } else {
    const size_t colon = rest.find(':');
    t.host = rest.substr(0, colon);
    if (colon != std::string::npos) port = rest.substr(colon + 1);
  }
  in6_addr a6{};
  in_addr a4{};
  if (inet_pton(AF_INET, t.host.c_str(), &a4) != 1 && inet_pton(AF_INET6, t.host.c_str(), &a6) != 1)
    return Error{"invalid", "the host must be an IP address, not '" + t.host + "'", ""};
  if (!port.empty()) {
    unsigned p = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc{} || end != port.data() + port.size() || p == 0 || p > 65535)
      return Error{"invalid", "'" + port + "' is not a port", ""};
    t.port = static_cast<uint16_t>(p);
  } else {
    t.port = 443;
  }
  return t;
}

Status probe_https(const HttpsProbeTarget& t) {
  const std::string where = "https://" + t.host + ":" + std::to_string(t.port) + t.path;
  auto fd = connect_with_timeout(t);
  if (!fd) return Error{"self_test", "webd at " + where + ": connect: " + fd.error().message};
  Fd sock{fd.value()};

  std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return Error{"io", "webd probe: no TLS context: " + ssl_error()};
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (!t.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), t.ca_file.c_str(), nullptr) != 1)
      return Error{"io", "webd probe: cannot load " + t.ca_file + ": " + ssl_error()};
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  }
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx.get()));
  if (!ssl) return Error{"io", "webd probe: " + ssl_error()};
  SSL_set_fd(ssl.get(), sock.fd);
  ERR_clear_error();
  if (SSL_connect(ssl.get()) != 1)
    return Error{"self_test", "webd at " + where + ": TLS handshake failed: " + ssl_error()};

  const std::string request =
      "GET " + t.path + " HTTP/1.1\r\nHost: " + t.host +
      "\r\nUser-Agent: cordon-update-self-test\r\nConnection: close\r\n\r\n";
  if (SSL_write(ssl.get(), request.data(), static_cast<int>(request.size())) <= 0)
    return Error{"self_test", "webd at " + where + ": sending the request: " + ssl_error()};
  std::string head;
  char buf[4096];
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < 65536) {
    const int n = SSL_read(ssl.get(), buf, sizeof buf);
    if (n <= 0) break;
    head.append(buf, static_cast<size_t>(n));
  }
  const size_t end = head.find("\r\n\r\n");
  if (end == std::string::npos)
    return Error{"self_test", "webd at " + where + ": no complete HTTP answer"};
  head.resize(end + 2);
  // "HTTP/1.1 200 OK"
  const size_t sp = head.find(' ');
  const std::string status = sp == std::string::npos ? "" : head.substr(sp + 1, 3);
  if (head.rfind("HTTP/1.", 0) != 0 || status != "200") {
    return Error{"self_test", "webd at " + where + ": GET " + t.path + " answered '" +
                                  head.substr(0, head.find("\r\n")) + "', not 200"};
  }
  const std::string headers = lower(head);
  for (const char* name : {"strict-transport-security", "content-security-policy",
                           "x-content-type-options", "x-frame-options"}) {
    if (headers.find("\r\n" + std::string(name) + ":") == std::string::npos)
      return Error{"self_test",
                   "webd at " + where + ": the answer lacks the security header " + name};
  }
  SSL_shutdown(ssl.get());
  return ok();
}

Status SelfTestChain::run() {
  for (SelfTest* step : steps_) {
    if (Status s = step->run(); !s) return s;
  }
  return ok();
}

Status WebdSelfTest::run() {
  return probe_https(target_);
}

}  // namespace cordon::control::update
