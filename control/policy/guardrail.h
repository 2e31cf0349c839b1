// The clinical guardrail: after an apply, if connections that the previous version
// allowed, and that were seen in the last day (flow records), start being dropped, the
// change has probably broken clinical work. When that happens for `threshold` distinct
// kinds of connection of one device within `window_seconds` of the apply, controld
// reverts to the previous version and raises an alert naming the device and flows.
//
// On by default for devices in enforce mode; per device it can be turned on or off.
// The settings live in the store ("guardrail") and are validated like policy.
// The watch and what has been counted since the apply are both persisted in the store, so
// a controld restart during the window carries on counting where it stopped.
//
// Threads: control thread only.
#pragma once

#include <boost/json/fwd.hpp>
#include <boost/json/object.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "control/common/result.h"
#include "control/policy/lifecycle.h"
#include "control/store/store.h"

namespace cordon::control::policy {

struct GuardrailSettings {
  bool enforce_mode_default = true;     // on for enforce-mode devices unless listed below
  int64_t threshold = 3;                // distinct previously-allowed flows dropped
  int64_t window_seconds = 300;         // after the apply
  int64_t lookback_hours = 24;          // "seen recently"
  std::map<std::string, bool> devices;  // per-device override
};

Result<GuardrailSettings> parse_guardrail(const boost::json::value& v);
boost::json::value guardrail_json(const GuardrailSettings& s);

class Guardrail {
 public:
  Guardrail(store::Store& store, PolicyService& policy) : store_(store), policy_(policy) {}

  Result<GuardrailSettings> settings();
  Status set_settings(const GuardrailSettings& s, const store::Actor& actor);

  // After an operator's apply or rollback from `previous` to `version`.
  Status watch(int64_t version, int64_t previous, int64_t now_ms);
  // Enforced drops since the last call. When it reverts, returns the alert event (JSON).
  Result<std::optional<std::string>> check(const std::vector<boost::json::object>& drops,
                                           int64_t now_ms);

 private:
  struct Watch {
    int64_t version = 0;
    int64_t previous = 0;
    int64_t since_ms = 0;
  };
  // Device -> described flows dropped since the apply of `version`.
  using Broken = std::map<std::string, std::set<std::string>>;
  std::optional<Watch> watching();
  Result<Broken> counted(int64_t version);
  Status save_counted(int64_t version, const Broken& broken);
  bool enabled_for(const GuardrailSettings& s, const std::string& device,
                   const std::string& document);

  store::Store& store_;
  PolicyService& policy_;
};

}  // namespace cordon::control::policy
