#include "control/export/syslog.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <string>

namespace cordon::control::export_ {
namespace {
namespace json = boost::json;

json::object drop_event() {
  return json::object{{"time", "2026-11-27T23:24:10.438894Z"},
                      {"kind", "drop"},
                      {"reason", "no-matching-rule"},
                      {"device", "ct-1"},
                      {"rule", ""},
                      {"ingress", "network"},
                      {"dir", "in"},
                      {"protocol", 6},
                      {"src_mac", "02:c0:4d:00:00:66"},
                      {"src", "10.50.0.66"},
                      {"dst", "10.50.0.10"},
                      {"src_port", 5555},
                      {"dst_port", 445},
                      {"policy_version", 3}};
}

TEST(SyslogFormat, Rfc5424HeaderStructuredDataAndMessage) {
  const std::string m = format_rfc5424(drop_event(), "cordon-1");
  // local4.warning = 20 * 8 + 4
  EXPECT_EQ(m.rfind("<164>1 2026-11-27T23:24:10.438894Z cordon-1 cordon - drop [cordon@32473 ", 0),
            0u)
      << m;
  EXPECT_NE(m.find(R"(device="ct-1")"), std::string::npos) << m;
  EXPECT_NE(m.find(R"(dst_port="445")"), std::string::npos) << m;
  EXPECT_EQ(m.find("rule="), std::string::npos) << "empty fields are left out: " << m;
  EXPECT_NE(m.find("] drop no-matching-rule device=ct-1 10.50.0.66:5555 -> 10.50.0.10:445"),
            std::string::npos)
      << m;
}

TEST(SyslogFormat, StructuredDataValuesAreEscaped) {
  json::object e = drop_event();
  e["detail"] = R"(called AE title not allowed: A"B]C\D)";
  const std::string m = format_rfc5424(e, "h");
  EXPECT_NE(m.find(R"(detail="called AE title not allowed: A\"B\]C\\D")"), std::string::npos) << m;
  EXPECT_EQ(m.rfind("<163>", 0), 0u) << "an inspection finding is an error: " << m;
}

TEST(SyslogFormat, CefHeaderAndExtensionEscaping) {
  json::object e = drop_event();
  e["detail"] = "a=b|c\\d\nnext";
  const std::string m = format_cef(e, "cordon-1");
  const size_t at =
      m.find("CEF:0|Cordon|Cordon appliance|1|no-matching-rule|drop no-matching-rule|");
  ASSERT_NE(at, std::string::npos) << m;
  EXPECT_NE(m.find("rt=1795821850438"), std::string::npos) << m;
  EXPECT_NE(m.find("src=10.50.0.66 spt=5555 dst=10.50.0.10 dpt=445 proto=6"), std::string::npos)
      << m;
  EXPECT_NE(m.find("cs1Label=device cs1=ct-1"), std::string::npos) << m;
  EXPECT_NE(m.find(R"(msg=a\=b|c\\d\nnext)"), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos);
}

// Firmware update steps (control/update/service.cpp) as the exporter sends them.
json::object update_event(const std::string& step, const std::string& outcome) {
  return json::object{{"time", "2026-11-28T02:30:00Z"},
                      {"kind", "update"},
                      {"step", step},
                      {"outcome", outcome},
                      {"detail", "marked the booted slot good"},
                      {"actor", "controld"},
                      {"version", "1.1.0"}};
}

TEST(SyslogFormat, UpdateStepsCarryStepOutcomeAndVersion) {
  const std::string m = format_rfc5424(update_event("update.commit", "ok"), "cordon-1");
  // local4.notice = 20 * 8 + 5: a commit is no error.
  EXPECT_EQ(m.rfind("<165>1 2026-11-28T02:30:00Z cordon-1 cordon - update [cordon@32473 ", 0), 0u)
      << m;
  EXPECT_NE(m.find(R"(step="update.commit" outcome="ok" version="1.1.0" actor="controld")"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("] update update.commit ok version=1.1.0 (marked the booted slot good)"),
            std::string::npos)
      << m;

  // A refusal, a failed self-test and a rollback are errors (local4.err = 163).
  for (const std::string outcome : {"refused: Verify error: certificate has expired",
                                    "failed: self-test: the dataplane exited (code 1)"}) {
    const std::string r = format_rfc5424(update_event("update.install", outcome), "h");
    EXPECT_EQ(r.rfind("<163>", 0), 0u) << r;
    EXPECT_NE(r.find("outcome=\"" + outcome + "\""), std::string::npos) << r;
  }

  // The service port's events (control/mgmt/service_port.cpp): configured is a notice
  // (local4.notice = 165), missing a warning (164), a refused step an error (163).
  for (const auto& [state, pri] : {std::pair{"configured", "<165>"}, std::pair{"missing", "<164>"},
                                   std::pair{"error", "<163>"}}) {
    const json::object e{{"time", "2026-11-28T02:30:00Z"},
                         {"kind", "service-port"},
                         {"interface", "svc0"},
                         {"state", state},
                         {"detail", "10.50.0.250/24; added 10.50.0.250/24"}};
    const std::string r = format_rfc5424(e, "h");
    EXPECT_EQ(r.rfind(pri, 0), 0u) << r;
  }

  const std::string c =
      format_cef(update_event("update.rollback", "failed: its trial boots ran out"), "cordon-1");
  EXPECT_NE(c.find("CEF:0|Cordon|Cordon appliance|1|update.rollback|update update.rollback "
                   "failed: its trial boots ran out|7|"),
            std::string::npos)
      << c;
  EXPECT_NE(c.find("cs3Label=firmwareVersion cs3=1.1.0 suser=controld outcome=failed: its trial "
                   "boots ran out msg=marked the booted slot good"),
            std::string::npos)
      << c;
}

TEST(SyslogSettings, BadSettingsNameTheirField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"enabled":true})", "/host"},
      {R"({"enabled":true,"host":"collector.example"})", "/host"},
      {R"({"host":"10.60.0.5","port":0})", "/port"},
      {R"({"host":"10.60.0.5","transport":"sctp"})", "/transport"},
      {R"({"host":"10.60.0.5","format":"json"})", "/format"},
      {R"({"host":"10.60.0.5","transport":"tls"})", "/ca_file"},
      {R"({"host":"10.60.0.5","colour":1})", "/colour"},
  };
  for (const auto& [text, path] : cases) {
    Result<SyslogSettings> s = parse_syslog_settings(json::parse(text));
    ASSERT_FALSE(s.ok()) << text;
    EXPECT_EQ(s.error().path, path) << text;
  }
  EXPECT_TRUE(parse_syslog_settings(
                  json::parse(R"({"enabled":true,"host":"::1","port":6514,"transport":"tcp"})"))
                  .ok());
}

// A collector on the loopback: returns (fd, port).
std::pair<int, uint16_t> listen_on_loopback(int type) {
  const int fd = ::socket(AF_INET, type, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  if (type == SOCK_STREAM) ::listen(fd, 4);
  return {fd, ntohs(a.sin_port)};
}

std::string read_some(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) != 1) return {};
  char buf[8192];
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

TEST(SyslogExporter, SendsOneDatagramPerEventOverUdp) {
  auto [fd, port] = listen_on_loopback(SOCK_DGRAM);
  SyslogExporter exporter;
  exporter.configure(
      parse_syslog_settings(
          json::parse(R"({"enabled":true,"host":"127.0.0.1","port":)" + std::to_string(port) + "}"))
          .value());
  exporter.submit(drop_event());
  const std::string got = read_some(fd, 10000);
  EXPECT_EQ(got.rfind("<164>1 ", 0), 0u) << got;
  ::close(fd);
}

TEST(SyslogExporter, FramesWithOctetCountsOverTcpAndReconnects) {
  auto [fd, port] = listen_on_loopback(SOCK_STREAM);
  SyslogExporter exporter;
  exporter.configure(
      parse_syslog_settings(
          json::parse(
              R"({"enabled":true,"host":"127.0.0.1","transport":"tcp","format":"cef","port":)" +
              std::to_string(port) + "}"))
          .value());
  exporter.submit(drop_event());
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1);
  const int conn = ::accept(fd, nullptr, nullptr);
  const std::string got = read_some(conn, 10000);
  const size_t space = got.find(' ');
  ASSERT_NE(space, std::string::npos) << got;
  EXPECT_EQ(std::stoul(got.substr(0, space)), got.size() - space - 1) << got;
  EXPECT_NE(got.find("CEF:0|Cordon|"), std::string::npos) << got;
  ::close(conn);  // the collector restarts: the next event comes on a new connection
  exporter.submit(drop_event());
  exporter.submit(drop_event());
  ASSERT_EQ(::poll(&p, 1, 15000), 1);
  const int again = ::accept(fd, nullptr, nullptr);
  EXPECT_NE(read_some(again, 10000).find("CEF:0|"), std::string::npos);
  ::close(again);
  ::close(fd);
}

TEST(SyslogExporter, DisabledSendsNothing) {
  SyslogExporter exporter;
  exporter.submit(drop_event());
  EXPECT_EQ(exporter.stats().sent, 0u);
}

}  // namespace
}  // namespace cordon::control::export_
