// The /v1 control API of cordon-controld (control/api/openapi.yaml describes it).
//
// Threads: control thread only (the io_context's), like the store and the services it
// calls; new events are handed in with on_events() on that thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "control/api/http_server.h"
#include "control/dataplane_link/link.h"
#include "control/export/syslog.h"
#include "control/mgmt/plane.h"
#include "control/mgmt/vendor.h"
#include "control/observe/observer.h"
#include "control/policy/guardrail.h"
#include "control/policy/lifecycle.h"
#include "control/store/store.h"

namespace cordon::control::api {

class ControlApi {
 public:
  ControlApi(boost::asio::io_context& io, store::Store& store, policy::PolicyService& policy,
             dataplane_link::DataplaneLink& link)
      : io_(io),
        store_(store),
        policy_(policy),
        link_(link),
        observer_(store),
        guardrail_(store, policy) {}
  ~ControlApi();
  // The management firewall, when this controld manages it (else the routes say so).
  void set_management(mgmt::ManagementPlane* plane) { management_ = plane; }
  // WireGuard and vendor sessions, when configured.
  void set_vendor_access(mgmt::VendorAccess* vendors, wireguard::WireGuardBackend* wireguard,
                         std::string public_key) {
    vendors_ = vendors;
    wireguard_ = wireguard;
    wireguard_public_key_ = std::move(public_key);
  }
  // Loads stored settings that take effect at start (the syslog target).
  void start();
  void install(HttpServer& server);

  // Takes a batch of events from the dataplane: flow records and discovery, the event
  // log, the guardrail; answers the long polls waiting for events.
  void on_events(const std::vector<std::string>& events);
  // Adds controld's own events (alerts) to the log.
  void log_events(const std::vector<std::string>& events);

 private:
  struct EventWaiter {
    int64_t after;
    int64_t limit;
    Responder respond;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };
  void get_events(Request& request, Responder respond);
  void dry_run(Request& request, Responder respond);
  Response events_after(int64_t after, int64_t limit);
  static int64_t now_ms() { return wall_ms(); }
  // Adds "appliance_endpoint" (what a WireGuard peer dials) to `o` when the management
  // settings name it.
  void add_appliance_endpoint(boost::json::object& o) const;

 public:
  static int64_t wall_ms();  // milliseconds since the epoch

 private:
  boost::asio::io_context& io_;
  store::Store& store_;
  policy::PolicyService& policy_;
  dataplane_link::DataplaneLink& link_;
  observe::Observer observer_;
  policy::Guardrail guardrail_;
  std::list<EventWaiter> waiters_;
  export_::SyslogExporter syslog_;
  mgmt::ManagementPlane* management_ = nullptr;
  mgmt::VendorAccess* vendors_ = nullptr;
  wireguard::WireGuardBackend* wireguard_ = nullptr;
  std::string wireguard_public_key_;
  // One dry-run at a time, on its own thread (a large capture takes seconds); the
  // answer is posted back to the control thread.
  std::thread dry_run_thread_;
  bool dry_run_busy_ = false;
};

}  // namespace cordon::control::api
