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

#include "dataplane/engine/engine.h"
#include "dataplane/engine/policy_document.h"

namespace cordon::dataplane {

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

  uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  // Readable from any thread (telemetry).
  const std::atomic<uint64_t>& version_counter() const { return version_; }
  const std::optional<engine::PolicyDocument>& document() const { return document_; }

 private:
  bool persist(const std::string& json, uint64_t version, std::string& error) const;

  engine::Engine& engine_;
  std::string state_dir_;
  std::atomic<uint64_t> version_{0};
  std::optional<engine::PolicyDocument> document_;
};

}  // namespace cordon::dataplane
