#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <boost/json.hpp>

#include "control/update/backup.h"

// The parsing half of backup.h, apart from the store so the fuzz target
// (tests/fuzz/backup_fuzz.cpp) can compile it in.
namespace cordon::control::update {
namespace json = boost::json;

namespace {

constexpr const char* kFormat = "cordon.backup/v1";

std::string hex(const unsigned char* data, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 15];
  }
  return out;
}

std::string text(const json::object& o, const char* k) {
  const json::value* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

}  // namespace

std::string backup_hmac(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return hex(mac, len);
}

Result<BackupContents> verify_backup(const std::string& text_in, const std::string& key) {
  json::error_code ec;
  json::value v = json::parse(text_in, ec);
  if (ec || !v.is_object()) return Error{"invalid", "a backup is a JSON object", ""};
  const json::object& env = v.as_object();
  if (text(env, "format") != kFormat) {
    return Error{"invalid", std::string("not a backup of format ") + kFormat, "/format"};
  }
  const json::value* payload_v = env.if_contains("payload");
  if (!payload_v || !payload_v->is_string())
    return Error{"invalid", "the payload is missing", "/payload"};
  const std::string payload(payload_v->as_string());
  const std::string mac = text(env, "hmac_sha256");
  const std::string expected = backup_hmac(key, payload);
  if (mac.size() != expected.size() ||
      CRYPTO_memcmp(mac.data(), expected.data(), mac.size()) != 0) {
    return Error{
        "invalid",
        "the backup's integrity check failed: it was changed, or made with another appliance's key",
        "/hmac_sha256"};
  }
  // Authentic from here on; still checked, as a bug could have written it.
  return parse_backup_payload(payload);
}

Result<BackupContents> parse_backup_payload(const std::string& payload) {
  json::error_code ec;
  json::value p = json::parse(payload, ec);
  if (ec || !p.is_object()) return Error{"invalid", "the payload is not a JSON object", "/payload"};
  const json::object& o = p.as_object();
  BackupContents c;
  c.created_at = text(o, "created_at");
  c.firmware_version = text(o, "firmware_version");
  if (const json::value* pol = o.if_contains("policy"); pol && pol->is_object()) {
    const json::value* ver = pol->as_object().if_contains("version");
    if (!ver || !ver->is_int64())
      return Error{"invalid", "the policy has no version", "/payload/policy/version"};
    c.policy_version = ver->as_int64();
    c.policy_document = text(pol->as_object(), "document");
  }
  if (const json::value* s = o.if_contains("settings"); s && s->is_object()) {
    for (const auto& [k, val] : s->as_object()) {
      const std::string name(k);
      bool known = false;
      for (const std::string& allowed : kBackupSettings) known = known || allowed == name;
      if (!known) return Error{"invalid", "unknown setting " + name, "/payload/settings/" + name};
      if (!val.is_string())
        return Error{"invalid", "setting " + name + " is not text", "/payload/settings/" + name};
      c.settings.emplace_back(name, std::string(val.as_string()));
    }
  }
  return c;
}

}  // namespace cordon::control::update
