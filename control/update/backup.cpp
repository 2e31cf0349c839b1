#include "control/update/backup.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>

namespace cordon::control::update {
namespace json = boost::json;

namespace {

constexpr const char* kFormat = "cordon.backup/v1";
constexpr size_t kKeyBytes = 32;

std::string hex(const unsigned char* data, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 15];
  }
  return out;
}

std::string hmac_hex(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return hex(mac, len);
}

std::string text(const json::object& o, const char* k) {
  const json::value* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

}  // namespace

Result<std::string> load_or_create_backup_key(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT) {
    unsigned char key[kKeyBytes];
    if (RAND_bytes(key, sizeof key) != 1) return Error{"io", "no randomness for the backup key"};
    const std::string tmp = path + ".new";
    const int out = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0) return Error{"io", "cannot create " + tmp + ": " + std::strerror(errno)};
    const bool written = write(out, key, sizeof key) == static_cast<ssize_t>(sizeof key) && fsync(out) == 0;
    close(out);
    OPENSSL_cleanse(key, sizeof key);
    // link() does not replace: a key made meanwhile by someone else wins.
    if (!written || (link(tmp.c_str(), path.c_str()) != 0 && errno != EEXIST)) {
      unlink(tmp.c_str());
      return Error{"io", "cannot write the backup key " + path};
    }
    unlink(tmp.c_str());
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  }
  if (fd < 0) return Error{"io", "cannot read the backup key " + path + ": " + std::strerror(errno)};
  std::string key(kKeyBytes, '\0');
  const ssize_t n = read(fd, key.data(), key.size());
  close(fd);
  if (n != static_cast<ssize_t>(kKeyBytes)) return Error{"io", "the backup key " + path + " is not 32 bytes"};
  return key;
}

Result<std::string> export_backup(store::Store& store, const std::string& key,
                                  const std::string& firmware_version) {
  json::object payload{{"created_at", store::now_rfc3339()}, {"firmware_version", firmware_version}};
  auto active = store.active_version();
  if (!active) return active.error();
  payload["policy"] = nullptr;
  if (active.value()) {
    auto v = store.version(*active.value());
    if (!v) return v.error();
    if (v.value()) payload["policy"] = json::object{{"version", v.value()->version}, {"document", v.value()->document}};
  }
  json::object settings;
  for (const std::string& k : kBackupSettings) {
    auto s = store.setting(k);
    if (!s) return s.error();
    if (s.value()) settings[k] = *s.value();
  }
  payload["settings"] = std::move(settings);
  const std::string body = json::serialize(payload);
  return json::serialize(json::object{{"format", kFormat}, {"payload", body}, {"hmac_sha256", hmac_hex(key, body)}});
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
  if (!payload_v || !payload_v->is_string()) return Error{"invalid", "the payload is missing", "/payload"};
  const std::string payload(payload_v->as_string());
  const std::string mac = text(env, "hmac_sha256");
  const std::string expected = hmac_hex(key, payload);
  if (mac.size() != expected.size() || CRYPTO_memcmp(mac.data(), expected.data(), mac.size()) != 0) {
    return Error{"invalid",
                 "the backup's integrity check failed: it was changed, or made with another appliance's key",
                 "/hmac_sha256"};
  }
  // Authentic from here on; still checked, as a bug could have written it.
  json::value p = json::parse(payload, ec);
  if (ec || !p.is_object()) return Error{"invalid", "the payload is not a JSON object", "/payload"};
  const json::object& o = p.as_object();
  BackupContents c;
  c.created_at = text(o, "created_at");
  c.firmware_version = text(o, "firmware_version");
  if (const json::value* pol = o.if_contains("policy"); pol && pol->is_object()) {
    const json::value* ver = pol->as_object().if_contains("version");
    if (!ver || !ver->is_int64()) return Error{"invalid", "the policy has no version", "/payload/policy/version"};
    c.policy_version = ver->as_int64();
    c.policy_document = text(pol->as_object(), "document");
  }
  if (const json::value* s = o.if_contains("settings"); s && s->is_object()) {
    for (const auto& [k, val] : s->as_object()) {
      const std::string name(k);
      bool known = false;
      for (const std::string& allowed : kBackupSettings) known = known || allowed == name;
      if (!known) return Error{"invalid", "unknown setting " + name, "/payload/settings/" + name};
      if (!val.is_string()) return Error{"invalid", "setting " + name + " is not text", "/payload/settings/" + name};
      c.settings.emplace_back(name, std::string(val.as_string()));
    }
  }
  return c;
}

Result<BackupContents> restore_backup_settings(store::Store& store, const std::string& text_in,
                                               const std::string& key) {
  auto c = verify_backup(text_in, key);
  if (!c) return c.error();
  for (const auto& [k, value] : c.value().settings) {
    if (Status s = store.set_setting(k, value); !s) return s.error().context("restoring setting " + k);
  }
  return c;
}

}  // namespace cordon::control::update
