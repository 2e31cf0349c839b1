// cordon-webd's parsers of uploaded and typed secrets: the certificate upload check
// (PEM chain and key, split at "@@KEY@@" in the input) and base32 (TOTP secrets) with
// the TOTP code check. Base32 must round-trip: what decodes re-encodes to bytes that
// decode to the same.
#include <cstddef>
#include <cstdint>
#include <string>

#include "webui/auth/totp.h"
#include "webui/server/tls.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find("@@KEY@@");
  const std::string chain = input.substr(0, split);
  const std::string key = split == std::string::npos ? "" : input.substr(split + 7);
  // A fixed time inside the corpus certificates' validity, so runs are repeatable.
  (void)cordon::webui::server::check_certificate(chain, key, 1800000000);

  if (auto decoded = cordon::webui::auth::base32_decode(input)) {
    const std::string again = cordon::webui::auth::base32_encode(*decoded);
    if (cordon::webui::auth::base32_decode(again) != decoded) __builtin_trap();
    (void)cordon::webui::auth::totp_match(*decoded, input.substr(0, 6), 1800000000, -1);
  }
  return 0;
}
