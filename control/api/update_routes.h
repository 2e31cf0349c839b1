// The firmware update API (docs/update-flow.md), on controld's HTTP server:
//   POST /v1/update              body: the bundle's bytes (application/octet-stream);
//                                starts the install, answers 202 with the status
//   POST /v1/update?file=NAME    the same for a bundle already in the bundle dir (a plain
//                                file name; never a client-chosen path)
//   GET  /v1/update              state, progress, booted/primary slot, slots, versions,
//                                the update in flight, the last result
//   GET  /v1/update/history      the update steps of the audit log, newest last
//   POST /v1/update/mark-good    commit the booted trial slot by hand (audited)
//   GET  /v1/backup              a configuration backup (policy, settings), HMAC-signed
//                                with the state dir's key (audited)
//   POST /v1/backup/restore      body: a backup; verified (a changed byte is refused,
//                                nothing written), its settings restored (audited); the
//                                policy is returned for the policy API to apply
//
// Threads: control thread only (the io_context's), like the server and the service.
#pragma once

#include "control/api/http_server.h"
#include "control/store/store.h"
#include "control/update/service.h"

namespace cordon::control::api {

void install_update_routes(HttpServer& server, update::UpdateService& updates, store::Store& store);

}  // namespace cordon::control::api
