// The self-test's webd probe: a chain of self-tests stops at a failing webd probe (fake
// probe); the real HTTPS probe against `openssl s_server -HTTP` (a TLS server answering
// with a prepared HTTP response) accepts 200 with the security headers and names what
// is wrong otherwise; nothing listening fails the probe.
#include "control/update/webd_probe.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace cordon::control::update {
namespace {
namespace fs = std::filesystem;

class ScriptedStep final : public SelfTest {
 public:
  explicit ScriptedStep(std::optional<std::string> failure) : failure_(std::move(failure)) {}
  int runs = 0;
  Status run() override {
    ++runs;
    if (failure_) return Error{"self_test", *failure_};
    return ok();
  }

 private:
  std::optional<std::string> failure_;
};

TEST(SelfTestChain, AFailingWebdProbeFailsTheSelfTestAfterTheSlotChecksPassed) {
  ScriptedStep slot(std::nullopt);
  ScriptedStep webd(std::string("webd at https://127.0.0.1:8443/: connect: Connection refused"));
  ScriptedStep never(std::nullopt);
  SelfTestChain chain({&slot, &webd, &never});
  Status s = chain.run();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "webd at https://127.0.0.1:8443/: connect: Connection refused");
  EXPECT_EQ(slot.runs, 1);
  EXPECT_EQ(never.runs, 0);
  ScriptedStep webd_ok(std::nullopt);
  EXPECT_TRUE(SelfTestChain({&slot, &webd_ok}).run().ok());
}

TEST(ProbeUrl, ParsesAddressesAndRefusesNames) {
  auto v4 = parse_probe_url("https://10.60.0.1:8443/");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4.value().host, "10.60.0.1");
  EXPECT_EQ(v4.value().port, 8443);
  EXPECT_EQ(v4.value().path, "/");
  auto v6 = parse_probe_url("https://[::1]:9443/x");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6.value().host, "::1");
  EXPECT_EQ(v6.value().port, 9443);
  EXPECT_EQ(v6.value().path, "/x");
  EXPECT_FALSE(parse_probe_url("http://10.0.0.1/").ok());
  EXPECT_FALSE(parse_probe_url("https://webd.local:8443/").ok());
  EXPECT_FALSE(parse_probe_url("https://10.0.0.1:0/").ok());
  EXPECT_FALSE(parse_probe_url("https://10.0.0.1:99999/").ok());
}

// `openssl s_server -HTTP` in a scratch dir: GET /NAME answers the file NAME verbatim.
class TlsServer {
 public:
  explicit TlsServer(const fs::path& dir) {
    const std::string gen =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
        "-nodes -subj /CN=127.0.0.1 -days 1 -keyout " +
        (dir / "key.pem").string() + " -out " + (dir / "cert.pem").string() + " 2>/dev/null";
    if (std::system(gen.c_str()) != 0) return;
    int out[2];
    if (::pipe(out) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::dup2(out[1], 2);
      ::close(out[0]);
      if (::chdir(dir.c_str()) != 0) ::_exit(127);
      ::execlp("openssl", "openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", "cert.pem",
               "-key", "key.pem", "-HTTP", nullptr);
      ::_exit(127);
    }
    ::close(out[1]);
    // "ACCEPT 127.0.0.1:PORT" once it listens (the read blocks until then).
    FILE* f = ::fdopen(out[0], "r");
    char line[256];
    while (f && std::fgets(line, sizeof line, f)) {
      unsigned p = 0;
      if (std::sscanf(line, "ACCEPT 127.0.0.1:%u", &p) == 1) {
        port_ = static_cast<uint16_t>(p);
        break;
      }
    }
    out_ = f;
  }
  ~TlsServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_) std::fclose(out_);
  }
  uint16_t port() const { return port_; }

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  FILE* out_ = nullptr;
};

class WebdProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cordon-webd-probe-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string headers =
        "Strict-Transport-Security: max-age=63072000\r\n"
        "Content-Security-Policy: default-src 'self'\r\n"
        "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n";
    std::ofstream(dir_ / "good") << "HTTP/1.0 200 OK\r\n"
                                 << headers << "Content-Length: 2\r\n\r\nok";
    std::ofstream(dir_ / "bare") << "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";
    std::ofstream(dir_ / "down") << "HTTP/1.0 503 Service Unavailable\r\n" << headers << "\r\n";
    server_.emplace(dir_);
    ASSERT_NE(server_->port(), 0) << "openssl s_server did not start";
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }
  HttpsProbeTarget target(const std::string& path) {
    HttpsProbeTarget t;
    t.host = "127.0.0.1";
    t.port = server_->port();
    t.path = path;
    return t;
  }
  fs::path dir_;
  std::optional<TlsServer> server_;
};

TEST_F(WebdProbeTest, TwoHundredWithTheSecurityHeadersPasses) {
  Status s = probe_https(target("/good"));
  EXPECT_TRUE(s.ok()) << s.error().message;
  // Verified against the CA (here the self-signed certificate itself) as well.
  HttpsProbeTarget verified = target("/good");
  verified.ca_file = (dir_ / "cert.pem").string();
  Status v = WebdSelfTest(verified).run();
  EXPECT_TRUE(v.ok()) << v.error().message;
}

TEST_F(WebdProbeTest, MissingHeadersOrAnotherStatusFailWithTheReason) {
  Status bare = probe_https(target("/bare"));
  ASSERT_FALSE(bare.ok());
  EXPECT_NE(bare.error().message.find("lacks the security header strict-transport-security"),
            std::string::npos)
      << bare.error().message;
  Status down = probe_https(target("/down"));
  ASSERT_FALSE(down.ok());
  EXPECT_NE(down.error().message.find("answered 'HTTP/1.0 503 Service Unavailable', not 200"),
            std::string::npos)
      << down.error().message;
}

TEST_F(WebdProbeTest, AnUntrustedCertificateFailsTheHandshakeWhenACaIsGiven) {
  std::ofstream(dir_ / "other.pem") << "";
  const std::string gen =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
      "-nodes -subj /CN=other -days 1 -keyout " +
      (dir_ / "o.key").string() + " -out " + (dir_ / "other.pem").string() + " 2>/dev/null";
  ASSERT_EQ(std::system(gen.c_str()), 0);
  HttpsProbeTarget t = target("/good");
  t.ca_file = (dir_ / "other.pem").string();
  Status s = probe_https(t);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("TLS handshake failed"), std::string::npos) << s.error().message;
}

TEST(WebdProbe, NothingListeningFailsTheProbe) {
  // A port that was just free: bound, then closed.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  HttpsProbeTarget t;
  t.host = "127.0.0.1";
  t.port = ntohs(a.sin_port);
  Status s = WebdSelfTest(t).run();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("connect: Connection refused"), std::string::npos)
      << s.error().message;
}

}  // namespace
}  // namespace cordon::control::update
