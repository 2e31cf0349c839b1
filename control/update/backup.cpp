#include "control/update/backup.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
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

}  // namespace

Result<std::string> load_or_create_backup_key(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT) {
    unsigned char key[kKeyBytes];
    if (RAND_bytes(key, sizeof key) != 1) return Error{"io", "no randomness for the backup key"};
    const std::string tmp = path + ".new";
    const int out = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0) return Error{"io", "cannot create " + tmp + ": " + std::strerror(errno)};
    const bool written =
        write(out, key, sizeof key) == static_cast<ssize_t>(sizeof key) && fsync(out) == 0;
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
  if (fd < 0)
    return Error{"io", "cannot read the backup key " + path + ": " + std::strerror(errno)};
  std::string key(kKeyBytes, '\0');
  const ssize_t n = read(fd, key.data(), key.size());
  close(fd);
  if (n != static_cast<ssize_t>(kKeyBytes))
    return Error{"io", "the backup key " + path + " is not 32 bytes"};
  return key;
}

Result<std::string> export_backup(store::Store& store, const std::string& key,
                                  const std::string& firmware_version) {
  json::object payload{{"created_at", store::now_rfc3339()},
                       {"firmware_version", firmware_version}};
  auto active = store.active_version();
  if (!active) return active.error();
  payload["policy"] = nullptr;
  if (active.value()) {
    auto v = store.version(*active.value());
    if (!v) return v.error();
    if (v.value())
      payload["policy"] =
          json::object{{"version", v.value()->version}, {"document", v.value()->document}};
  }
  json::object settings;
  for (const std::string& k : kBackupSettings) {
    auto s = store.setting(k);
    if (!s) return s.error();
    if (s.value()) settings[k] = *s.value();
  }
  payload["settings"] = std::move(settings);
  const std::string body = json::serialize(payload);
  return json::serialize(json::object{
      {"format", kFormat}, {"payload", body}, {"hmac_sha256", backup_hmac(key, body)}});
}

Result<BackupContents> restore_backup_settings(store::Store& store, const std::string& text_in,
                                               const std::string& key) {
  auto c = verify_backup(text_in, key);
  if (!c) return c.error();
  for (const auto& [k, value] : c.value().settings) {
    if (Status s = store.set_setting(k, value); !s)
      return s.error().context("restoring setting " + k);
  }
  return c;
}

}  // namespace cordon::control::update
