// The policy lifecycle of cordon-controld: every change is a version; apply is
// validate -> compile -> record as pending -> push to the dataplane -> acknowledged ->
// committed, and a failure at any step changes nothing anywhere. Rollback re-applies an
// earlier version's document as a new version. An apply may be provisional: unless
// confirmed in time, it reverts to the version before it.
//
// Crash consistency: the pending marker is written before the push and cleared in the
// same transaction that makes the new version active. recover() at start asks the
// dataplane which version it enforces: the pending one (the push got through: commit
// it) or another (abandon it and make the dataplane enforce the active version). So
// controld and the dataplane never disagree for longer than a restart.
//
// Threads: one PolicyService per controld, used only from the control thread; that
// thread handles one request at a time, which serialises concurrent applies.
#pragma once

#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "control/common/result.h"
#include "control/dataplane_link/link.h"
#include "control/store/store.h"

namespace cordon::control::policy {

using Clock = std::chrono::system_clock;

struct Applied {
  int64_t version = 0;
  std::string sha256;
  std::optional<Clock::time_point> confirm_by;  // set for a provisional apply
};

struct ActivePolicy {
  int64_t version = 0;  // 0: none yet
  std::string sha256;
  std::string document;  // canonical JSON, empty when none
};

// Parses and validates `text` (the engine's own validation) and compiles it, the same
// checks the dataplane makes. On failure the Error holds every problem in `details`,
// each with its JSON path. On success: the canonical JSON.
Result<std::string> validate_policy(const std::string& text);

// A readable per-device comparison of two canonical documents (JSON for the API).
boost::json::value diff_documents(const std::string& from, const std::string& to);
std::string diff_text(const boost::json::value& diff);

class PolicyService {
 public:
  static constexpr int kMaxConfirmSeconds = 3600;
  PolicyService(store::Store& store, dataplane_link::DataplaneLink& link)
      : store_(store), link_(link) {}

  // At start: finishes or abandons an apply a crash interrupted, then reconciles.
  Status recover();
  // Makes the dataplane enforce the active version if it does not (it restarted with
  // no or other state). Called at start and periodically.
  Status reconcile();

  Result<Applied> apply(const std::string& text, const store::Actor& actor,
                        const std::string& comment, std::optional<int> confirm_within_s);
  // `action` is what the audit log records: "policy.rollback" when an operator asks,
  // "policy.revert" when controld itself goes back (confirmation timeout, guardrail).
  Result<Applied> rollback(int64_t to_version, const store::Actor& actor,
                           const std::string& comment,
                           const std::string& action = "policy.rollback");
  Status confirm(const store::Actor& actor);
  // Reverts a provisional apply whose confirmation deadline has passed. Returns the
  // version reverted to, if it reverted.
  Result<std::optional<int64_t>> revert_if_unconfirmed(Clock::time_point now);

  Result<ActivePolicy> active();
  std::optional<Clock::time_point> confirm_deadline();

  // Called at each step of an install: "recorded" (pending version stored), "pushed"
  // (the dataplane acknowledged), "committed" (active in the store). The crash tests
  // kill controld at each (cordon-controld --crash-at STEP).
  void set_checkpoint(std::function<void(std::string_view step)> checkpoint) {
    checkpoint_ = std::move(checkpoint);
  }

 private:
  // The shared tail of apply and rollback: record pending, push, commit or abandon.
  Result<Applied> install(const std::string& canonical, const store::Actor& actor,
                          const std::string& action, const std::string& comment);

  void checkpoint(std::string_view step) {
    if (checkpoint_) checkpoint_(step);
  }

  store::Store& store_;
  dataplane_link::DataplaneLink& link_;
  std::function<void(std::string_view)> checkpoint_;
};

}  // namespace cordon::control::policy
