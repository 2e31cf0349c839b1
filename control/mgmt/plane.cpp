#include "control/mgmt/plane.h"

#include <boost/json.hpp>

namespace cordon::control::mgmt {
namespace json = boost::json;
namespace {
constexpr const char* kSettingsKey = "management";
}

Result<nft::ManagementFirewallSettings> ManagementPlane::settings() {
  if (settings_) return *settings_;
  Result<std::optional<std::string>> stored = store_.setting(kSettingsKey);
  if (!stored) return stored.error();
  if (!stored.value()) return Error{"not_found", "no management settings"};
  json::error_code ec;
  const json::value v = json::parse(*stored.value(), ec);
  if (ec) return Error{"io", "stored management settings are unreadable"};
  return nft::parse_settings(v);
}

Status ManagementPlane::install(const nft::ManagementFirewallSettings& s) {
  const nft::TableSpec wanted = spec(s);
  if (Status st = firewall_.apply_table(wanted); !st)
    return st.error().context("installing the management firewall");
  if (Status st = nft::verify(firewall_, wanted); !st)
    return st.error().context("reading the management firewall back");
  settings_ = s;
  return ok();
}

Status ManagementPlane::start(const std::optional<nft::ManagementFirewallSettings>& initial) {
  Result<std::optional<std::string>> stored = store_.setting(kSettingsKey);
  if (!stored) return stored.error();
  if (!stored.value()) {
    if (!initial) return Error{"not_found", "no management settings stored and none given"};
    if (Status st = store_.set_setting(kSettingsKey, json::serialize(nft::to_json(*initial))); !st)
      return st;
  }
  Result<nft::ManagementFirewallSettings> s = settings();
  if (!s) return s.error();
  return install(s.value());
}

Status ManagementPlane::change(const nft::ManagementFirewallSettings& s,
                               const store::Actor& actor) {
  // The caller's own connection must survive the change (origin "unix" is local).
  if (actor.origin != "unix" && actor.origin != "local" && !nft::admits(s, actor.origin)) {
    (void)store_.audit({actor, "settings.management", "management",
                        "refused: would lock out " + actor.origin, "", "", ""});
    return Error{"conflict",
                 "refused: your own address " + actor.origin +
                     " is not in the new admin networks, so the change would lock you out",
                 "/admin_networks"};
  }
  Result<nft::ManagementFirewallSettings> before = settings();
  const std::string before_text = before ? json::serialize(nft::to_json(before.value())) : "";
  const std::string after_text = json::serialize(nft::to_json(s));
  if (Status st = install(s); !st) {
    // Put the previous table back: a failed change changes nothing.
    if (before) (void)install(before.value());
    return st;
  }
  if (Status st = store_.set_setting(kSettingsKey, after_text); !st) return st;
  Result<int64_t> a =
      store_.audit({actor, "settings.management", "management", "ok",
                    store::sha256_hex(before_text), store::sha256_hex(after_text), after_text});
  if (!a) return a.error();
  return ok();
}

Result<std::vector<std::string>> ManagementPlane::differences() {
  if (!settings_)
    return Error{"not_found", "the management firewall is not managed by this controld"};
  Result<nft::TableDescription> actual = firewall_.read_table();
  if (!actual) return actual.error();
  return nft::compare(nft::describe_intended(spec(*settings_)), actual.value());
}

Result<bool> ManagementPlane::reassert() {
  Result<std::vector<std::string>> diff = differences();
  if (!diff) return diff.error();
  if (diff.value().empty()) return false;
  if (Status st = install(*settings_); !st) return st.error();
  return true;
}

}  // namespace cordon::control::mgmt
