#include "control/api/update_routes.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

namespace cordon::control::api {
namespace json = boost::json;

void install_update_routes(HttpServer& server, update::UpdateService& updates, store::Store& store) {
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
}

}  // namespace cordon::control::api
