#include "control/policy/lifecycle.h"

#include <boost/json.hpp>
#include <charconv>
#include <map>
#include <sstream>

#include "dataplane/engine/compiled_policy.h"
#include "dataplane/engine/policy_document.h"

namespace cordon::control::policy {
namespace json = boost::json;
namespace {

constexpr const char* kConfirmKey = "policy.confirm";  // "<version> <previous> <deadline ms>"

int64_t to_ms(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::optional<int64_t> parse_int(std::string_view s) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

struct ConfirmState {
  int64_t version = 0;
  int64_t previous = 0;
  int64_t deadline_ms = 0;
};

std::optional<ConfirmState> parse_confirm(const std::string& text) {
  std::istringstream in(text);
  std::string a, b, c;
  in >> a >> b >> c;
  const auto v = parse_int(a), p = parse_int(b), d = parse_int(c);
  if (!v || !p || !d) return std::nullopt;
  return ConfirmState{*v, *p, *d};
}

// Objects keyed by their "name" (devices, rules) or "id" (patches).
std::map<std::string, json::object> by_key(const json::value* list, const char* key) {
  std::map<std::string, json::object> out;
  if (!list || !list->is_array()) return out;
  for (const json::value& item : list->as_array()) {
    if (!item.is_object()) continue;
    const json::value* k = item.as_object().if_contains(key);
    if (k && k->is_string()) out[std::string(k->as_string())] = item.as_object();
  }
  return out;
}

// Added / removed / changed entries of two keyed lists.
json::object diff_lists(const json::value* from, const json::value* to, const char* key) {
  const auto a = by_key(from, key);
  const auto b = by_key(to, key);
  json::array added, removed, changed;
  for (const auto& [name, obj] : b) {
    const auto it = a.find(name);
    if (it == a.end()) {
      added.push_back(obj);
    } else if (it->second != obj) {
      changed.push_back(json::object{{"name", name}, {"from", it->second}, {"to", obj}});
    }
  }
  for (const auto& [name, obj] : a)
    if (!b.count(name)) removed.push_back(obj);
  json::object out;
  if (!added.empty()) out["added"] = std::move(added);
  if (!removed.empty()) out["removed"] = std::move(removed);
  if (!changed.empty()) out["changed"] = std::move(changed);
  return out;
}

json::value parse_or_empty(const std::string& text) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return json::object{};
  return v;
}

std::string rule_line(const json::object& r) {
  std::string s = json::value_to<std::string>(r.at("name"));
  s += " (" + json::serialize(r) + ")";
  return s;
}

}  // namespace

Result<std::string> validate_policy(const std::string& text) {
  engine::PolicyParseResult parsed = engine::parse_policy(text);
  if (!parsed.document) {
    std::vector<Error> details;
    for (const engine::PolicyError& e : parsed.errors)
      details.emplace_back("invalid", e.message, e.path);
    const std::string first = parsed.errors.empty() ? "" : parsed.errors[0].to_string();
    return Error{
        "invalid",
        "the policy has " + std::to_string(parsed.errors.size()) + " error(s); first: " + first,
        parsed.errors.empty() ? "" : parsed.errors[0].path, std::move(details)};
  }
  // Compiling catches what only the compiler knows (table limits, Hyperscan patterns).
  engine::CompileResult compiled = engine::compile_policy(*parsed.document, 1, 1);
  if (!compiled.policy) {
    std::vector<Error> details;
    for (const engine::PolicyError& e : compiled.errors)
      details.emplace_back("invalid", e.message, e.path);
    const std::string first = compiled.errors.empty() ? "" : compiled.errors[0].to_string();
    return Error{"invalid", "the policy cannot be compiled: " + first,
                 compiled.errors.empty() ? "" : compiled.errors[0].path, std::move(details)};
  }
  return engine::to_json(*parsed.document);
}

json::value diff_documents(const std::string& from, const std::string& to) {
  const json::value a = parse_or_empty(from);
  const json::value b = parse_or_empty(to);
  const json::object& ao = a.as_object();
  const json::object& bo = b.as_object();
  json::object out;
  const json::value* ua = ao.if_contains("unknown_devices");
  const json::value* ub = bo.if_contains("unknown_devices");
  if ((ua ? *ua : json::value()) != (ub ? *ub : json::value()))
    out["unknown_devices"] = json::object{{"from", ua ? *ua : nullptr}, {"to", ub ? *ub : nullptr}};

  // Devices: added and removed whole; changed ones field by field, rules by name.
  const auto da = by_key(ao.if_contains("devices"), "name");
  const auto db = by_key(bo.if_contains("devices"), "name");
  json::array devices;
  for (const auto& [name, dev] : db) {
    const auto it = da.find(name);
    if (it == da.end()) {
      devices.push_back(json::object{{"device", name}, {"change", "added"}, {"to", dev}});
      continue;
    }
    if (it->second == dev) continue;
    json::object d{{"device", name}, {"change", "changed"}};
    json::object fields;
    for (const char* f : {"mac", "ip", "mode", "deny_action", "patches"}) {
      const json::value* x = it->second.if_contains(f);
      const json::value* y = dev.if_contains(f);
      if ((x ? *x : json::value()) != (y ? *y : json::value()))
        fields[f] = json::object{{"from", x ? *x : nullptr}, {"to", y ? *y : nullptr}};
    }
    if (!fields.empty()) d["fields"] = std::move(fields);
    json::object rules =
        diff_lists(it->second.if_contains("rules"), dev.if_contains("rules"), "name");
    if (!rules.empty()) d["rules"] = std::move(rules);
    devices.push_back(std::move(d));
  }
  for (const auto& [name, dev] : da)
    if (!db.count(name))
      devices.push_back(json::object{{"device", name}, {"change", "removed"}, {"from", dev}});
  if (!devices.empty()) out["devices"] = std::move(devices);
  json::object patches = diff_lists(ao.if_contains("patches"), bo.if_contains("patches"), "id");
  if (!patches.empty()) out["patches"] = std::move(patches);
  return out;
}

std::string diff_text(const json::value& diff) {
  std::ostringstream out;
  const json::object& d = diff.as_object();
  if (d.empty()) return "no differences\n";
  if (const json::value* u = d.if_contains("unknown_devices"))
    out << "unknown devices: " << json::serialize(u->at("from")) << " -> "
        << json::serialize(u->at("to")) << "\n";
  if (const json::value* devices = d.if_contains("devices")) {
    for (const json::value& v : devices->as_array()) {
      const json::object& dev = v.as_object();
      const std::string name = json::value_to<std::string>(dev.at("device"));
      const std::string change = json::value_to<std::string>(dev.at("change"));
      if (change == "added") {
        out << "device " << name << ": added\n";
        continue;
      }
      if (change == "removed") {
        out << "device " << name << ": removed\n";
        continue;
      }
      out << "device " << name << ": changed\n";
      if (const json::value* fields = dev.if_contains("fields"))
        for (const auto& [field, ft] : fields->as_object())
          out << "  " << std::string(field) << ": " << json::serialize(ft.at("from")) << " -> "
              << json::serialize(ft.at("to")) << "\n";
      if (const json::value* rules = dev.if_contains("rules")) {
        const json::object& r = rules->as_object();
        if (const json::value* a = r.if_contains("added"))
          for (const json::value& x : a->as_array())
            out << "  + rule " << rule_line(x.as_object()) << "\n";
        if (const json::value* a = r.if_contains("removed"))
          for (const json::value& x : a->as_array())
            out << "  - rule " << rule_line(x.as_object()) << "\n";
        if (const json::value* a = r.if_contains("changed"))
          for (const json::value& x : a->as_array()) {
            out << "  ~ rule " << json::value_to<std::string>(x.at("name")) << "\n";
            out << "      was " << json::serialize(x.at("from")) << "\n";
            out << "      now " << json::serialize(x.at("to")) << "\n";
          }
      }
    }
  }
  if (const json::value* p = d.if_contains("patches")) {
    const json::object& r = p->as_object();
    for (const char* kind : {"added", "removed", "changed"})
      if (const json::value* a = r.if_contains(kind))
        out << "patches " << kind << ": " << a->as_array().size() << "\n";
  }
  return out.str();
}

Result<ActivePolicy> PolicyService::active() {
  Result<std::optional<int64_t>> v = store_.active_version();
  if (!v) return v.error();
  if (!v.value()) return ActivePolicy{};
  Result<std::optional<store::PolicyVersion>> row = store_.version(*v.value());
  if (!row) return row.error();
  if (!row.value())
    return Error{"io", "the active version " + std::to_string(*v.value()) + " is missing"};
  return ActivePolicy{row.value()->version, row.value()->sha256, row.value()->document};
}

Status PolicyService::recover() {
  Result<std::optional<int64_t>> pending = store_.pending_version();
  if (!pending) return pending.error();
  if (pending.value()) {
    const int64_t version = *pending.value();
    Result<int64_t> enforced = link_.version();
    if (!enforced)
      return enforced.error().context("recovering the interrupted apply of version " +
                                      std::to_string(version));
    Result<std::optional<store::PolicyVersion>> row = store_.version(version);
    if (!row) return row.error();
    const std::string hash = row.value() ? row.value()->sha256 : "";
    const store::Actor system{"controld", "local"};
    if (enforced.value() == version) {
      if (Status s = store_.commit_version(
              version, {system, "policy.apply", "policy/" + std::to_string(version), "ok", "", hash,
                        "completed after a restart: the dataplane had installed it"});
          !s)
        return s;
    } else {
      if (Status s = store_.abandon_version(
              version, {system, "policy.apply", "policy/" + std::to_string(version),
                        "failed: interrupted before the dataplane installed it", "", hash, ""});
          !s)
        return s;
    }
  }
  return reconcile();
}

Status PolicyService::reconcile() {
  Result<ActivePolicy> current = active();
  if (!current) return current.error();
  if (current.value().version == 0) return ok();
  Result<int64_t> enforced = link_.version();
  if (!enforced) return enforced.error();
  if (enforced.value() == current.value().version) return ok();
  if (enforced.value() < current.value().version) {
    // The dataplane restarted without (or with older) state: give it the active version.
    return link_.apply(current.value().document, current.value().version);
  }
  // The dataplane enforces a version controld never committed (applied around it):
  // controld's active version wins, installed under a new, higher number.
  Result<Applied> again =
      install(current.value().document, {"controld", "local"}, "policy.reassert",
              "the dataplane enforced version " + std::to_string(enforced.value()) +
                  " unknown to controld");
  if (!again) return again.error();
  return ok();
}

Result<Applied> PolicyService::install(const std::string& canonical, const store::Actor& actor,
                                       const std::string& action, const std::string& comment) {
  Result<ActivePolicy> previous = active();
  if (!previous) return previous.error();
  // Versions only grow, in controld and in the dataplane (which refuses lower ones).
  Result<int64_t> enforced = link_.version();
  if (!enforced) return enforced.error().context("the dataplane is not reachable; nothing changed");
  Result<int64_t> version = store_.begin_version(canonical, actor, comment, enforced.value() + 1);
  if (!version) return version.error();
  const std::string hash = store::sha256_hex(canonical);
  const std::string target = "policy/" + std::to_string(version.value());
  checkpoint("recorded");
  if (Status pushed = link_.apply(canonical, version.value()); !pushed) {
    if (Status s = store_.abandon_version(
            version.value(), {actor, action, target, "failed: " + pushed.error().message,
                              previous.value().sha256, hash, comment});
        !s)
      return s.error();
    return pushed.error().context("installing version " + std::to_string(version.value()) +
                                  "; nothing changed");
  }
  checkpoint("pushed");
  if (Status s = store_.commit_version(
          version.value(), {actor, action, target, "ok", previous.value().sha256, hash, comment});
      !s)
    return s.error();
  checkpoint("committed");
  return Applied{version.value(), hash, std::nullopt};
}

Result<Applied> PolicyService::apply(const std::string& text, const store::Actor& actor,
                                     const std::string& comment,
                                     std::optional<int> confirm_within_s) {
  if (confirm_within_s && (*confirm_within_s < 10 || *confirm_within_s > kMaxConfirmSeconds))
    return Error{
        "invalid",
        "confirm_within must be between 10 and " + std::to_string(kMaxConfirmSeconds) + " seconds",
        "/confirm_within"};
  Result<std::string> canonical = validate_policy(text);
  if (!canonical) {
    (void)store_.audit({actor, "policy.apply", "policy", "refused: " + canonical.error().message,
                        "", "", comment});
    return canonical.error();
  }
  Result<ActivePolicy> previous = active();
  if (!previous) return previous.error();
  Result<Applied> applied = install(canonical.value(), actor, "policy.apply", comment);
  if (!applied) return applied;
  if (confirm_within_s && previous.value().version != 0) {
    const Clock::time_point deadline = Clock::now() + std::chrono::seconds(*confirm_within_s);
    if (Status s = store_.set_setting(kConfirmKey, std::to_string(applied.value().version) + " " +
                                                       std::to_string(previous.value().version) +
                                                       " " + std::to_string(to_ms(deadline)));
        !s)
      return s.error();
    applied.value().confirm_by = deadline;
  } else {
    // A plain apply supersedes any provisional one before it.
    if (Status s = store_.clear_setting(kConfirmKey); !s) return s.error();
  }
  return applied;
}

Result<Applied> PolicyService::rollback(int64_t to_version, const store::Actor& actor,
                                        const std::string& comment, const std::string& action) {
  Result<std::optional<store::PolicyVersion>> row = store_.version(to_version);
  if (!row) return row.error();
  if (!row.value() || row.value()->status != "applied")
    return Error{"not_found", "no applied policy version " + std::to_string(to_version),
                 "/version"};
  if (Status s = store_.clear_setting(kConfirmKey); !s) return s.error();
  return install(row.value()->document, actor, action,
                 comment.empty() ? "rollback to version " + std::to_string(to_version) : comment);
}

Status PolicyService::confirm(const store::Actor& actor) {
  Result<std::optional<std::string>> pending = store_.setting(kConfirmKey);
  if (!pending) return pending.error();
  if (!pending.value()) return Error{"conflict", "no apply is waiting for confirmation"};
  const std::optional<ConfirmState> st = parse_confirm(*pending.value());
  if (Status s = store_.clear_setting(kConfirmKey); !s) return s;
  Result<int64_t> a =
      store_.audit({actor, "policy.confirm", "policy/" + std::to_string(st ? st->version : 0), "ok",
                    "", "", ""});
  if (!a) return a.error();
  return ok();
}

std::optional<Clock::time_point> PolicyService::confirm_deadline() {
  Result<std::optional<std::string>> pending = store_.setting(kConfirmKey);
  if (!pending || !pending.value()) return std::nullopt;
  const std::optional<ConfirmState> st = parse_confirm(*pending.value());
  if (!st) return std::nullopt;
  return Clock::time_point(std::chrono::milliseconds(st->deadline_ms));
}

Result<std::optional<int64_t>> PolicyService::revert_if_unconfirmed(Clock::time_point now) {
  Result<std::optional<std::string>> pending = store_.setting(kConfirmKey);
  if (!pending) return pending.error();
  if (!pending.value()) return std::optional<int64_t>{};
  const std::optional<ConfirmState> st = parse_confirm(*pending.value());
  if (!st) {
    if (Status s = store_.clear_setting(kConfirmKey); !s) return s.error();
    return std::optional<int64_t>{};
  }
  if (to_ms(now) < st->deadline_ms) return std::optional<int64_t>{};
  Result<Applied> back = rollback(
      st->previous, {"controld", "local"},
      "automatic revert: version " + std::to_string(st->version) + " was not confirmed in time",
      "policy.revert");
  if (!back) return back.error();
  return std::optional<int64_t>{st->previous};
}

}  // namespace cordon::control::policy
