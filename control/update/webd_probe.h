// The self-test's check that the web console answers (docs/update-flow.md): an HTTPS
// probe of webd, a TLS handshake and `GET /` answered 200 with the console's security
// headers (Strict-Transport-Security, Content-Security-Policy, X-Content-Type-Options,
// X-Frame-Options: what webui/routes/app.cpp sets on every answer). A new slot whose
// webd does not come up, or serves without its headers, is not committed.
//
// Threads: no shared state; run() is called on UpdateService's worker thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "control/common/result.h"
#include "control/update/self_test.h"

namespace cordon::control::update {

struct HttpsProbeTarget {
  std::string host;  // an IPv4 or IPv6 address (no DNS on the appliance)
  uint16_t port = 8443;
  std::string path = "/";
  // The CA that signed webd's certificate; empty: the certificate is not verified (the
  // probe checks that webd serves, on the appliance's own address, not who it is).
  std::string ca_file;
  std::chrono::milliseconds timeout{5000};  // for connect, handshake and the answer each
};

// "https://10.60.0.1:8443/" or "https://[::1]:8443/path" -> a target.
Result<HttpsProbeTarget> parse_probe_url(const std::string& url);

// ok, or which part failed: connect, TLS handshake, status, a missing header.
Status probe_https(const HttpsProbeTarget& target);

// Runs each self-test in order; the first failure is the result.
class SelfTestChain final : public SelfTest {
 public:
  explicit SelfTestChain(std::vector<SelfTest*> steps) : steps_(std::move(steps)) {}
  Status run() override;

 private:
  std::vector<SelfTest*> steps_;
};

class WebdSelfTest final : public SelfTest {
 public:
  explicit WebdSelfTest(HttpsProbeTarget target) : target_(std::move(target)) {}
  Status run() override;

 private:
  HttpsProbeTarget target_;
};

}  // namespace cordon::control::update
