// Configuration backup and restore with an integrity check. A backup is JSON:
//   {"format":"cordon.backup/v1","payload":"<JSON text>","hmac_sha256":"<hex>"}
// where the payload holds the active policy (version, document), the configuration
// settings (syslog export, management firewall, guardrail) and the firmware version, and
// the HMAC-SHA256 over the payload's exact bytes uses a 32-byte key kept in the state
// dir (backup.key, mode 0600, made on first use). So a backup restores only on an
// appliance holding the same key (the same one, or one whose state dir was restored
// with it), and any changed byte is refused before anything is parsed or written.
//
// Threads: control thread (the store's).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "control/common/result.h"
#include "control/store/store.h"

namespace cordon::control::update {

// The settings a backup carries: configuration, not runtime markers.
inline const std::vector<std::string> kBackupSettings = {"syslog", "management", "guardrail"};

struct BackupContents {
  std::string created_at;
  std::string firmware_version;
  std::optional<int64_t> policy_version;
  std::string policy_document;                                // "" when no policy was active
  std::vector<std::pair<std::string, std::string>> settings;  // key, JSON text
};

// Reads the key, creating it (random, 0600) if there is none.
Result<std::string> load_or_create_backup_key(const std::string& path);

Result<std::string> export_backup(store::Store& store, const std::string& key,
                                  const std::string& firmware_version);

// Checks the envelope and the HMAC (constant time), then the payload. Untrusted input.
Result<BackupContents> verify_backup(const std::string& text, const std::string& key);

// The payload of an authentic backup (verify_backup checks the HMAC first).
Result<BackupContents> parse_backup_payload(const std::string& payload);
// HMAC-SHA256 of `payload` under `key`, lower-case hex.
std::string backup_hmac(const std::string& key, const std::string& payload);

// Verifies, then writes the backup's settings into the store (all checked before the
// first write). The policy is returned in `contents` for the policy API to apply.
Result<BackupContents> restore_backup_settings(store::Store& store, const std::string& text,
                                               const std::string& key);

}  // namespace cordon::control::update
