#include "control/policy/guardrail.h"

#include <boost/json.hpp>
#include <sstream>

#include "control/observe/observer.h"

namespace cordon::control::policy {
namespace json = boost::json;
namespace {

constexpr const char* kSettingsKey = "guardrail";
constexpr const char* kWatchKey = "guardrail.watch";  // "<version> <previous> <since ms>"
// {"version": V, "devices": {"ct-1": ["tcp out to ... port 104", ...]}}
constexpr const char* kCountedKey = "guardrail.counted";

Result<int64_t> bounded(const json::object& o, const char* key, int64_t fallback, int64_t min,
                        int64_t max) {
  const json::value* v = o.if_contains(key);
  if (!v) return fallback;
  if (!v->is_int64() || v->as_int64() < min || v->as_int64() > max)
    return Error{"invalid",
                 "must be an integer from " + std::to_string(min) + " to " + std::to_string(max),
                 std::string("/") + key};
  return v->as_int64();
}

}  // namespace

Result<GuardrailSettings> parse_guardrail(const json::value& v) {
  if (!v.is_object()) return Error{"invalid", "must be an object", ""};
  const json::object& o = v.as_object();
  for (const auto& [key, value] : o) {
    if (key != "enforce_mode_default" && key != "threshold" && key != "window_seconds" &&
        key != "lookback_hours" && key != "devices")
      return Error{"invalid", "unknown field", "/" + std::string(key)};
  }
  GuardrailSettings s;
  if (const json::value* d = o.if_contains("enforce_mode_default")) {
    if (!d->is_bool()) return Error{"invalid", "must be true or false", "/enforce_mode_default"};
    s.enforce_mode_default = d->as_bool();
  }
  Result<int64_t> threshold = bounded(o, "threshold", s.threshold, 1, 1000);
  if (!threshold) return threshold.error();
  Result<int64_t> window = bounded(o, "window_seconds", s.window_seconds, 10, 86400);
  if (!window) return window.error();
  Result<int64_t> lookback = bounded(o, "lookback_hours", s.lookback_hours, 1, 24 * 30);
  if (!lookback) return lookback.error();
  s.threshold = threshold.value();
  s.window_seconds = window.value();
  s.lookback_hours = lookback.value();
  if (const json::value* d = o.if_contains("devices")) {
    if (!d->is_object())
      return Error{"invalid", "must map device names to true or false", "/devices"};
    for (const auto& [name, on] : d->as_object()) {
      if (!on.is_bool() || name.empty() || name.size() > 63)
        return Error{"invalid", "must be true or false for a device name",
                     "/devices/" + std::string(name)};
      s.devices[std::string(name)] = on.as_bool();
    }
  }
  return s;
}

json::value guardrail_json(const GuardrailSettings& s) {
  json::object devices;
  for (const auto& [name, on] : s.devices) devices[name] = on;
  return json::object{{"enforce_mode_default", s.enforce_mode_default},
                      {"threshold", s.threshold},
                      {"window_seconds", s.window_seconds},
                      {"lookback_hours", s.lookback_hours},
                      {"devices", std::move(devices)}};
}

Result<GuardrailSettings> Guardrail::settings() {
  Result<std::optional<std::string>> stored = store_.setting(kSettingsKey);
  if (!stored) return stored.error();
  if (!stored.value()) return GuardrailSettings{};
  json::error_code ec;
  json::value v = json::parse(*stored.value(), ec);
  if (ec) return Error{"io", "stored guardrail settings are unreadable"};
  return parse_guardrail(v);
}

Status Guardrail::set_settings(const GuardrailSettings& s, const store::Actor& actor) {
  Result<GuardrailSettings> before = settings();
  const std::string before_text = before ? json::serialize(guardrail_json(before.value())) : "";
  const std::string after_text = json::serialize(guardrail_json(s));
  if (Status st = store_.set_setting(kSettingsKey, after_text); !st) return st;
  Result<int64_t> a =
      store_.audit({actor, "guardrail.settings", "guardrail", "ok", store::sha256_hex(before_text),
                    store::sha256_hex(after_text), after_text});
  if (!a) return a.error();
  return ok();
}

Status Guardrail::watch(int64_t version, int64_t previous, int64_t now_ms) {
  if (Status st = store_.clear_setting(kCountedKey); !st) return st;
  if (previous == 0) return store_.clear_setting(kWatchKey);  // nothing to go back to
  return store_.set_setting(kWatchKey, std::to_string(version) + " " + std::to_string(previous) +
                                           " " + std::to_string(now_ms));
}

std::optional<Guardrail::Watch> Guardrail::watching() {
  Result<std::optional<std::string>> w = store_.setting(kWatchKey);
  if (!w || !w.value()) return std::nullopt;
  std::istringstream in(*w.value());
  Watch watch;
  if (!(in >> watch.version >> watch.previous >> watch.since_ms)) return std::nullopt;
  return watch;
}

Result<Guardrail::Broken> Guardrail::counted(int64_t version) {
  Result<std::optional<std::string>> stored = store_.setting(kCountedKey);
  if (!stored) return stored.error();
  Broken broken;
  if (!stored.value()) return broken;
  json::error_code ec;
  const json::value v = json::parse(*stored.value(), ec);
  // Written only by save_counted; anything else (or a count for another version) is stale.
  if (ec || !v.is_object()) return broken;
  const json::value* counted_version = v.as_object().if_contains("version");
  const json::value* devices = v.as_object().if_contains("devices");
  if (!counted_version || !counted_version->is_int64() || counted_version->as_int64() != version ||
      !devices || !devices->is_object())
    return broken;
  for (const auto& [device, flows] : devices->as_object()) {
    if (!flows.is_array()) continue;
    for (const json::value& f : flows.as_array())
      if (f.is_string()) broken[std::string(device)].insert(std::string(f.as_string()));
  }
  return broken;
}

Status Guardrail::save_counted(int64_t version, const Broken& broken) {
  json::object devices;
  for (const auto& [device, flows] : broken) {
    json::array list;
    for (const std::string& f : flows) list.emplace_back(f);
    devices[device] = std::move(list);
  }
  return store_.set_setting(
      kCountedKey, json::serialize(json::object{{"version", version}, {"devices", devices}}));
}

bool Guardrail::enabled_for(const GuardrailSettings& s, const std::string& device,
                            const std::string& document) {
  if (const auto it = s.devices.find(device); it != s.devices.end()) return it->second;
  if (!s.enforce_mode_default) return false;
  json::error_code ec;
  const json::value doc = json::parse(document, ec);
  if (ec || !doc.is_object()) return false;
  const json::value* devices = doc.as_object().if_contains("devices");
  if (!devices || !devices->is_array()) return false;
  for (const json::value& d : devices->as_array()) {
    if (!d.is_object()) continue;
    const json::value* name = d.as_object().if_contains("name");
    const json::value* mode = d.as_object().if_contains("mode");
    if (name && name->is_string() && name->as_string() == device)
      return !mode || (mode->is_string() && mode->as_string() == "enforce");
  }
  return false;
}

Result<std::optional<std::string>> Guardrail::check(const std::vector<json::object>& drops,
                                                    int64_t now_ms) {
  const std::optional<Watch> w = watching();
  if (!w) return std::optional<std::string>{};
  Result<GuardrailSettings> s = settings();
  if (!s) return s.error();
  if (now_ms > w->since_ms + s.value().window_seconds * 1000) {
    // The window closed.
    if (Status st = store_.clear_setting(kWatchKey); !st) return st.error();
    if (Status st = store_.clear_setting(kCountedKey); !st) return st.error();
    return std::optional<std::string>{};
  }
  Result<ActivePolicy> active = policy_.active();
  if (!active) return active.error();
  if (active.value().version != w->version) return std::optional<std::string>{};
  const int64_t since = now_ms - s.value().lookback_hours * 3600 * 1000;
  Result<Broken> counted_so_far = counted(w->version);
  if (!counted_so_far) return counted_so_far.error();
  Broken& broken = counted_so_far.value();
  for (const json::object& drop : drops) {
    const json::value* version = drop.if_contains("policy_version");
    if (!version || !version->is_number() || version->to_number<int64_t>() != w->version) continue;
    const store::FlowKey key = observe::flow_key(drop);
    if (key.device.empty() || !enabled_for(s.value(), key.device, active.value().document))
      continue;
    Result<std::optional<store::FlowRecord>> seen = store_.recent_flow(key, since);
    if (!seen) return seen.error();
    if (!seen.value()) continue;  // not something that worked recently
    std::set<std::string>& flows = broken[key.device];
    if (!flows.insert(observe::describe(key)).second) continue;  // counted before
    if (static_cast<int64_t>(flows.size()) < s.value().threshold) {
      if (Status st = save_counted(w->version, broken); !st) return st.error();
      continue;
    }

    std::string list;
    for (const std::string& f : flows) list += (list.empty() ? "" : "; ") + f;
    const std::string why = "guardrail: after version " + std::to_string(w->version) + ", device " +
                            key.device + " lost " + std::to_string(flows.size()) +
                            " connection(s) that worked in the last " +
                            std::to_string(s.value().lookback_hours) + " h (" + list +
                            "); reverted to version " + std::to_string(w->previous);
    if (Status st = store_.clear_setting(kWatchKey); !st) return st.error();
    if (Status st = store_.clear_setting(kCountedKey); !st) return st.error();
    Result<Applied> back =
        policy_.rollback(w->previous, {"controld", "guardrail"}, why, "policy.revert");
    if (!back) return back.error().context("guardrail revert");
    json::object alert{{"time", store::now_rfc3339()},
                       {"kind", "guardrail-revert"},
                       {"reason", "clinical-guardrail"},
                       {"device", key.device},
                       {"detail", why},
                       {"policy_version", back.value().version}};
    return std::optional<std::string>{json::serialize(alert)};
  }
  return std::optional<std::string>{};
}

}  // namespace cordon::control::policy
