#include "control/api/update_routes.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>

#include "control/update/backup.h"

namespace cordon::control::api {
namespace json = boost::json;

namespace {
void audit(store::Store& store, const store::Actor& actor, const std::string& action,
           const std::string& outcome, const std::string& detail) {
  store::AuditRecord a;
  a.actor = actor;
  a.action = action;
  a.target = "configuration";
  a.outcome = outcome;
  a.detail = detail;
  (void)store.audit(a);
}
}  // namespace

void install_update_routes(HttpServer& server, update::UpdateService& updates,
                           store::Store& store) {
  server.route("GET", "/v1/update", [&updates](Request&, Responder respond) {
    respond(json_response(updates.status()));
  });

  server.route("POST", "/v1/update", [&updates](Request& r, Responder respond) {
    auto file = r.query.find("file");
    Status started = file != r.query.end() ? updates.install_file(file->second, r.actor)
                                           : updates.upload(r.body, r.actor);
    if (!started) {
      respond(error_response(started.error()));
      return;
    }
    respond(json_response(updates.status(), 202));
  });

  server.route("POST", "/v1/update/mark-good", [&updates](Request& r, Responder respond) {
    Status marked = updates.mark_good(r.actor);
    respond(marked ? json_response(updates.status()) : error_response(marked.error()));
  });

  // Body {"version": "X", "reason": "..."}: one install of X below the version floor.
  server.route("POST", "/v1/update/allow-downgrade", [&updates](Request& r, Responder respond) {
    json::error_code ec;
    const json::value body = json::parse(r.body, ec);
    if (ec || !body.is_object())
      return respond(error_response(Error{"invalid", "the body must be a JSON object", ""}));
    std::string version, reason;
    for (const auto& [key, value] : body.as_object()) {
      const std::string k(key);
      if (k != "version" && k != "reason")
        return respond(error_response(Error{"invalid", "unknown field", "/" + k}));
      if (!value.is_string())
        return respond(error_response(Error{"invalid", "must be a string", "/" + k}));
      (k == "version" ? version : reason) = std::string(value.as_string());
    }
    if (!body.as_object().contains("version"))
      return respond(error_response(Error{"invalid", "required", "/version"}));
    if (!body.as_object().contains("reason"))
      return respond(error_response(Error{"invalid", "required", "/reason"}));
    auto allowed = updates.allow_downgrade(version, reason, r.actor);
    respond(allowed ? json_response(allowed.value()) : error_response(allowed.error()));
  });

  server.route("GET", "/v1/update/history", [&store](Request&, Responder respond) {
    json::array steps;
    int64_t after = 0;
    for (;;) {
      auto page = store.audit_entries(after, 1000);
      if (!page) {
        respond(error_response(page.error()));
        return;
      }
      for (const store::AuditEntry& e : page.value()) {
        after = e.seq;
        if (e.record.action.rfind("update.", 0) != 0) continue;
        steps.push_back(json::object{{"seq", e.seq},
                                     {"at", e.at},
                                     {"actor", e.record.actor.name},
                                     {"step", e.record.action},
                                     {"outcome", e.record.outcome},
                                     {"detail", e.record.detail}});
        if (steps.size() > 200) steps.erase(steps.begin());
      }
      if (page.value().size() < 1000) break;
    }
    respond(json_response(json::object{{"steps", std::move(steps)}}));
  });

  server.route("GET", "/v1/backup", [&updates, &store](Request& r, Responder respond) {
    auto key = update::load_or_create_backup_key(updates.options().backup_key_file);
    if (!key) return respond(error_response(key.error()));
    auto backup = update::export_backup(store, key.value(), updates.booted_version());
    if (!backup) return respond(error_response(backup.error()));
    audit(store, r.actor, "backup.export", "ok", "sha256 " + store::sha256_hex(backup.value()));
    json::error_code ec;
    respond(json_response(json::parse(backup.value(), ec)));
  });

  server.route("POST", "/v1/backup/restore", [&updates, &store](Request& r, Responder respond) {
    auto key = update::load_or_create_backup_key(updates.options().backup_key_file);
    if (!key) return respond(error_response(key.error()));
    auto restored = update::restore_backup_settings(store, r.body, key.value());
    if (!restored) {
      audit(store, r.actor, "backup.restore", "refused: " + restored.error().message, "");
      return respond(error_response(restored.error()));
    }
    const update::BackupContents& c = restored.value();
    json::array names;
    for (const auto& [k, v] : c.settings) names.push_back(json::value(k));
    audit(
        store, r.actor, "backup.restore", "ok",
        "backup of " + c.created_at + " (firmware " + c.firmware_version + "), settings restored");
    json::object out{
        {"restored_settings", std::move(names)},
        {"created_at", c.created_at},
        {"firmware_version", c.firmware_version},
        {"note",
         "settings take effect when controld next starts; apply the policy with POST /v1/policy"}};
    out["policy"] = c.policy_version ? json::value(json::object{{"version", *c.policy_version},
                                                                {"document", c.policy_document}})
                                     : json::value(nullptr);
    respond(json_response(out));
  });
}

}  // namespace cordon::control::api
