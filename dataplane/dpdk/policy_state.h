// PolicyState: the policy a dataplane enforces, and its persistence in the state dir.
//
// Threads: control thread only (the one that owns Engine::publish).
// The last applied policy is written to STATE_DIR/policy.json (canonical JSON) and
// STATE_DIR/policy.version atomically (write, fsync, rename, fsync dir), only after the
// engine enforces it. At start it is loaded again and enforced before anything else.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/dpdk/vendor_sessions.h"
#include "dataplane/engine/engine.h"
#include "dataplane/engine/policy_document.h"

namespace cordon::dataplane {

// Files in the state dir. write_file_durably writes PATH.tmp (mode 0600), syncs it and
// renames it over PATH: the file is whole or not there; fsync_dir then makes the rename
// itself durable. read_file: nullopt when the file cannot be opened.
bool write_file_durably(const std::string& path, const std::string& content, std::string& error);
void fsync_dir(const std::string& dir);
std::optional<std::string> read_file(const std::string& path);

struct ApplyResult {
  bool ok = false;
  uint64_t version = 0;
  std::vector<engine::PolicyError> errors;
};

class PolicyState {
 public:
  PolicyState(engine::Engine& engine, std::string state_dir);

  // Parses, validates, compiles and publishes `json`; once the engine enforces it,
  // persists it. version 0 = the active version + 1. An invalid document or a version
  // not above the active one changes nothing.
  ApplyResult apply(std::string_view json, uint64_t version = 0);
  // Loads the persisted policy, if any. Returns an error string when the state exists but
  // cannot be used (then nothing is enforced: fail closed).
  std::optional<std::string> restore();
  bool has_policy() const { return document_.has_value(); }

  // Replaces the vendor sessions by `sessions` minus those expired at `now_unix_ms`, and
  // publishes the policy with them unless they are the ones already enforced (controld
  // pushes the same list every second: that must not re-check every flow each time).
  // Returns whether it published; errors only when the merged policy does not compile
  // (then nothing changed).
  ApplyResult set_vendor_sessions(std::vector<VendorSession> sessions, int64_t now_unix_ms);
  // Drops the sessions expired at `now_unix_ms` and, if there were any, publishes the
  // policy without them. Returns how many ended.
  size_t expire_vendor_sessions(int64_t now_unix_ms);
  const std::vector<VendorSession>& vendor_sessions() const { return sessions_; }

  uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  // Readable from any thread (telemetry).
  const std::atomic<uint64_t>& version_counter() const { return version_; }
  const std::optional<engine::PolicyDocument>& document() const { return document_; }

 private:
  bool persist(const std::string& json, uint64_t version, std::string& error) const;
  // Compiles `document` plus sessions_ as `version`.
  engine::CompileResult compile(const engine::PolicyDocument& document, uint64_t version) const;

  engine::Engine& engine_;
  std::string state_dir_;
  std::atomic<uint64_t> version_{0};
  std::optional<engine::PolicyDocument> document_;
  std::vector<VendorSession> sessions_;  // enforced (when there is a policy), none expired
};

}  // namespace cordon::dataplane
