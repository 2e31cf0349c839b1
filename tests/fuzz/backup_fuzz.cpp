// Fuzz target: configuration backups (untrusted bytes from POST /v1/backup/restore).
// The input is tried twice: as a whole backup under a fixed key (envelope, format,
// HMAC), and as the payload behind a valid HMAC (what an authentic but malformed
// backup would reach). Checks, beyond "no crash, no sanitizer report": a rejection is
// an "invalid" error with a message and a path that is empty or starts with '/'; a
// whole backup is never accepted without an hmac_sha256 field.
#include <cstddef>
#include <cstdint>
#include <string>

#include "control/update/backup.h"

namespace {

void check_error(const cordon::control::Error& e) {
  if (e.code != "invalid" || e.message.empty()) __builtin_trap();
  if (!e.path.empty() && e.path.front() != '/') __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace update = cordon::control::update;
  const std::string key(32, 'k');
  const std::string input(reinterpret_cast<const char*>(data), size);
  auto whole = update::verify_backup(input, key);
  if (!whole) check_error(whole.error());
  // Accepted only with the MAC of its own payload under the key.
  if (whole && input.find("\"hmac_sha256\"") == std::string::npos) __builtin_trap();
  auto payload = update::parse_backup_payload(input);
  if (!payload) check_error(payload.error());
  return 0;
}
