// cordon-controld: owns Cordon's state, serves the control API on a unix socket and
// keeps the dataplane enforcing the active policy version (DESIGN.md section 1).
//
//   cordon-controld --state-dir DIR --socket PATH --dataplane-socket PATH
//                   [--trusted-uid UID]... [--socket-mode OCTAL] [--socket-group NAME]
//                   [--management-settings FILE]   manage the host firewall (nftables);
//                                                  FILE: the settings until changed by API
//                   [--wireguard-interface NAME --wireguard-address 10.99.0.1/24]
//                                               WireGuard for vendor sessions and management
//                                               peers (needs the management firewall; its
//                                               port is the settings' wireguard_port)
//                   [--update-bundle-dir DIR [--max-bundle-bytes N]
//                    [--update-rejection-file FILE] [--update-reboot-command CMD]
//                    [--update-webd-url https://ADDR:PORT/ [--update-webd-ca FILE]]]
//                                               firmware updates through RAUC (D-Bus)
//                   [--crash-at STEP]   (crash tests only) SIGKILL at STEP: a policy
//                                       apply's recorded|pushed|committed, or an update
//                                       step (UpdateService::kCrashPoints: upload, verify,
//                                       installed, trial-boot, self-test, mark-good)
//
// One control thread runs everything (API, store, policy lifecycle, periodic checks);
// the dataplane event feed reads on its own thread and posts events to it.
#include <grp.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/parse.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "control/api/http_server.h"
#include "control/api/routes.h"
#include "control/api/update_routes.h"
#include "control/dataplane_link/link.h"
#include "control/mgmt/plane.h"
#include "control/mgmt/vendor.h"
#include "control/nft/firewall_backend.h"
#include "control/policy/lifecycle.h"
#include "control/store/store.h"
#include "control/update/rauc_dbus_backend.h"
#include "control/update/self_test.h"
#include "control/update/service.h"
#include "control/update/systemd_notify.h"
#include "control/update/webd_probe.h"
#include "control/wireguard/keys.h"
#include "control/wireguard/wireguard_backend.h"

namespace {

using namespace cordon::control;

struct Options {
  std::string state_dir;
  std::string socket;
  std::string dataplane_socket;
  std::set<uint32_t> trusted_uids;
  unsigned socket_mode = 0660;
  std::string crash_at;  // fault injection for the crash tests: SIGKILL at this step
  std::optional<uint32_t> socket_gid;
  std::string management_settings;
  std::string wireguard_interface;
  std::string wireguard_address;
  std::string update_bundle_dir;
  uint64_t max_bundle_bytes = 512ull << 20;
  std::string update_rejection_file;
  std::string update_reboot_command;
  std::string update_webd_url;  // the self-test probes webd here (off when empty)
  std::string update_webd_ca;
};

void usage() {
  std::cerr << "usage: cordon-controld --state-dir DIR --socket PATH --dataplane-socket PATH\n"
               "                       [--trusted-uid UID]... [--socket-mode OCTAL]\n";
}

bool parse_options(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) {
      std::cerr << "cordon-controld: " << arg << " needs a value\n";
      return false;
    }
    const std::string value = argv[++i];
    if (arg == "--state-dir") {
      o.state_dir = value;
    } else if (arg == "--socket") {
      o.socket = value;
    } else if (arg == "--dataplane-socket") {
      o.dataplane_socket = value;
    } else if (arg == "--wireguard-interface") {
      o.wireguard_interface = value;
    } else if (arg == "--wireguard-address") {
      o.wireguard_address = value;
    } else if (arg == "--socket-group") {
      const group* g = ::getgrnam(value.c_str());
      if (!g) {
        std::cerr << "cordon-controld: --socket-group: no group " << value << "\n";
        return false;
      }
      o.socket_gid = g->gr_gid;
    } else if (arg == "--update-bundle-dir") {
      o.update_bundle_dir = value;
    } else if (arg == "--update-rejection-file") {
      o.update_rejection_file = value;
    } else if (arg == "--update-reboot-command") {
      o.update_reboot_command = value;
    } else if (arg == "--update-webd-url") {
      if (Result<update::HttpsProbeTarget> t = update::parse_probe_url(value); !t) {
        std::cerr << "cordon-controld: --update-webd-url: " << t.error().message << "\n";
        return false;
      }
      o.update_webd_url = value;
    } else if (arg == "--update-webd-ca") {
      o.update_webd_ca = value;
    } else if (arg == "--max-bundle-bytes") {
      const auto [end, ec] =
          std::from_chars(value.data(), value.data() + value.size(), o.max_bundle_bytes);
      if (ec != std::errc{} || end != value.data() + value.size() || o.max_bundle_bytes == 0) {
        std::cerr << "cordon-controld: --max-bundle-bytes: a number of bytes\n";
        return false;
      }
    } else if (arg == "--management-settings") {
      o.management_settings = value;
    } else if (arg == "--crash-at") {
      const auto& update_steps = update::UpdateService::kCrashPoints;
      if (value != "recorded" && value != "pushed" && value != "committed" &&
          std::find(update_steps.begin(), update_steps.end(), value) == update_steps.end()) {
        std::cerr << "cordon-controld: --crash-at: one of recorded, pushed, committed, upload, "
                     "verify, installed, trial-boot, self-test, mark-good\n";
        return false;
      }
      o.crash_at = value;
    } else if (arg == "--trusted-uid" || arg == "--socket-mode") {
      unsigned n = 0;
      const int base = arg == "--socket-mode" ? 8 : 10;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n, base);
      if (ec != std::errc{} || end != value.data() + value.size()) {
        std::cerr << "cordon-controld: " << arg << ": not a number: " << value << "\n";
        return false;
      }
      if (arg == "--trusted-uid")
        o.trusted_uids.insert(n);
      else
        o.socket_mode = n;
    } else {
      std::cerr << "cordon-controld: unknown option " << arg << "\n";
      return false;
    }
  }
  if (o.state_dir.empty() || o.socket.empty() || o.dataplane_socket.empty()) {
    usage();
    return false;
  }
  return true;
}

void log(const std::string& line) {
  std::cerr << "cordon-controld: " << line << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!parse_options(argc, argv, options)) return 2;

  Result<store::Store> opened = store::Store::open(options.state_dir);
  if (!opened) {
    log("cannot open state: " + opened.error().message);
    return 1;
  }
  store::Store& store = opened.value();
  dataplane_link::SocketDataplaneLink link(options.dataplane_socket);
  policy::PolicyService policy(store, link);
  if (!options.crash_at.empty()) {
    policy.set_checkpoint([step = options.crash_at](std::string_view at) {
      if (at == step) ::raise(SIGKILL);  // stands in for a power cut at this step
    });
  }

  boost::asio::io_context io;
  // The API body limit must let a firmware bundle through when updates are enabled.
  const uint64_t max_body = options.update_bundle_dir.empty()
                                ? (64ull << 20)
                                : std::max<uint64_t>(64ull << 20, options.max_bundle_bytes);
  api::HttpServer server(io, {options.socket, options.socket_mode, options.socket_gid,
                              options.trusted_uids, max_body});
  api::ControlApi control_api(io, store, policy, link);
  control_api.install(server);
  control_api.start();

  // The host firewall, when asked to manage it: asserted and read back before the API
  // opens, so the appliance is never reachable without it.
  nft::NftablesBackend firewall;
  link::RtnetlinkBackend service_links;
  std::optional<mgmt::ManagementPlane> management;
  if (!options.management_settings.empty()) {
    std::ifstream in(options.management_settings);
    std::ostringstream text;
    text << in.rdbuf();
    boost::json::error_code ec;
    const boost::json::value v = boost::json::parse(text.str(), ec);
    Result<nft::ManagementFirewallSettings> initial =
        ec ? Result<nft::ManagementFirewallSettings>(Error{"invalid", "not JSON: " + ec.message()})
           : nft::parse_settings(v);
    if (!initial) {
      log(options.management_settings + ": " + initial.error().path + " " +
          initial.error().message);
      return 1;
    }
    management.emplace(store, firewall);
    if (Status s = management->start(initial.value()); !s) {
      log("management firewall: " + s.error().message);
      return 1;
    }
    control_api.set_management(&*management);
    log("management firewall installed and verified (table inet cordon_mgmt)");
    // The service port's address (vendor path): checked now, after settings changes and
    // every second (the dataplane recreates the interface when it restarts).
    management->set_service_port(&service_links,
                                 [&control_api](const std::vector<std::string>& events) {
                                   for (const std::string& e : events) log("service port: " + e);
                                   control_api.log_events(events);
                                 });
  }

  // WireGuard: the appliance's key pair (made on first start, private key 0600 in the
  // state dir, never exported) and the tunnel interface for vendor sessions.
  wireguard::WgToolBackend wireguard_backend;
  std::optional<mgmt::VendorAccess> vendors;
  if (!options.wireguard_interface.empty()) {
    if (!management) {
      log("--wireguard-interface needs --management-settings (vendor access is enforced by the "
          "firewall)");
      return 1;
    }
    const std::string key_file = options.state_dir + "/wireguard.key";
    Result<std::string> public_key = wireguard::ensure_private_key(key_file);
    if (!public_key) {
      log("WireGuard key: " + public_key.error().message);
      return 1;
    }
    // The interface, on the settings' port; remote-management peers (stored) join it (their
    // HTTPS rule is already in the table).
    if (Status s = management->set_wireguard(
            &wireguard_backend,
            {options.wireguard_interface, 0, key_file, options.wireguard_address},
            public_key.value());
        !s) {
      if (!management->tunnel_network()) {
        log(s.error().message);
        return 1;
      }
      log("management peers: " + s.error().message);
    }
    const std::string address =
        options.wireguard_address.substr(0, options.wireguard_address.find('/'));
    vendors.emplace(store, wireguard_backend, firewall, policy,
                    address.substr(0, address.rfind('.')));
    vendors->set_management_peers([&management] { return management->peers(); });
    management->set_grants([&vendors] { return vendors->grants(api::ControlApi::wall_ms()); });
    // The dataplane admits the sessions' traffic from the service address on svc0.
    vendors->set_dataplane(&link, [&management] {
      Result<nft::ManagementFirewallSettings> s = management->settings();
      return s ? s.value().vendor_service_address : std::string();
    });
    if (Status s = vendors->restore(api::ControlApi::wall_ms()); !s)
      log("restoring vendor sessions: " + s.error().message);
    if (Status s = vendors->push_to_dataplane(api::ControlApi::wall_ms()); !s)
      log("vendor sessions: " + s.error().message + " (retried every second)");
    control_api.set_vendor_access(&*vendors, &wireguard_backend, public_key.value());
    log("WireGuard " + options.wireguard_interface + " up; public key " + public_key.value());
  }

  // Recovery first: an apply interrupted by a crash is finished or abandoned before
  // any new request is taken. If the dataplane is not up yet, the periodic check
  // below retries.
  bool recovered = false;
  if (Status s = policy.recover(); s) {
    recovered = true;
  } else {
    log("recovery waits for the dataplane: " + s.error().message);
  }
  // Firmware updates (docs/update-flow.md): RAUC over D-Bus, the slot's self-test.
  std::optional<update::RaucDbusBackend> updater;
  std::optional<update::CommandSelfTest> self_test;
  std::optional<update::WebdSelfTest> webd_test;
  std::optional<update::SelfTestChain> self_tests;
  std::optional<update::UpdateService> updates;
  if (!options.update_bundle_dir.empty()) {
    updater.emplace(update::RaucDbusBackend::Options{});
    self_test.emplace(std::vector<std::string>{"/usr/lib/cordon/update-self-test", "/"},
                      std::vector<std::string>{"CORDON_API_SOCKET=" + options.socket},
                      std::chrono::seconds(180));
    std::vector<update::SelfTest*> steps{&*self_test};
    if (!options.update_webd_url.empty()) {
      // The slot's checks first, then the web console over HTTPS.
      update::HttpsProbeTarget target = update::parse_probe_url(options.update_webd_url).value();
      target.ca_file = options.update_webd_ca;
      webd_test.emplace(target);
      steps.push_back(&*webd_test);
    }
    self_tests.emplace(steps);
    update::UpdateService::Options uo;
    uo.bundle_dir = options.update_bundle_dir;
    uo.max_bundle_bytes = options.max_bundle_bytes;
    if (!options.update_rejection_file.empty()) uo.rejection_file = options.update_rejection_file;
    if (!options.update_reboot_command.empty())
      uo.reboot_command = {"/bin/sh", "-c", options.update_reboot_command};
    uo.backup_key_file = options.state_dir + "/backup.key";
    // admin_downgrade_allowance of /etc/cordon/update.conf (build-disk-image.sh).
    uo.downgrade_allowance_file = options.update_bundle_dir + "/admin-downgrade-allowance";
    updates.emplace(*updater, *self_tests, store, uo,
                    [&io](std::function<void()> f) { boost::asio::post(io, std::move(f)); });
    // Update steps join the event log: the long poll and the syslog export see them.
    updates->set_event_sink(
        [&control_api](const std::vector<std::string>& events) { control_api.log_events(events); });
    if (!options.crash_at.empty()) {
      updates->set_checkpoint([step = options.crash_at](std::string_view at) {
        if (at == step) ::raise(SIGKILL);  // stands in for a power cut at this step
      });
    }
    api::install_update_routes(server, *updates, store);
  }
  if (Status s = server.listen(); !s) {
    log(s.error().message);
    return 1;
  }
  if (updates) {
    if (Status s = updates->on_boot(); !s) log("update after boot: " + s.error().message);
  }
  log("serving the control API on " + options.socket);
  // systemd (Type=notify, WatchdogSec=): ready now; alive while this loop runs.
  update::SystemdNotifier notifier(io);
  notifier.ready("serving the control API on " + options.socket);
  notifier.start_watchdog();
  if (notifier.interval().count() > 0)
    log("watchdog: WATCHDOG=1 every " + std::to_string(notifier.interval().count() / 1000) + " ms");

  // Events: the feed thread batches them and posts each batch to the control thread.
  std::mutex pending_mutex;
  std::vector<std::string> pending;
  bool posted = false;
  dataplane_link::EventFeed feed(options.dataplane_socket, [&](const std::string& event) {
    std::lock_guard lock(pending_mutex);
    pending.push_back(event);
    if (posted) return;
    posted = true;
    boost::asio::post(io, [&] {
      std::vector<std::string> batch;
      {
        std::lock_guard inner(pending_mutex);
        batch.swap(pending);
        posted = false;
      }
      control_api.on_events(batch);
    });
  });
  feed.start();

  // Once a second: revert an unconfirmed provisional apply, and make sure the dataplane
  // enforces the active version (it may have restarted).
  boost::asio::steady_timer tick(io);
  uint64_t ticks = 0;
  bool vendor_push_failing = false;  // logged when it starts and stops failing
  std::function<void()> schedule = [&] {
    tick.expires_after(std::chrono::seconds(1));
    tick.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      if (management) management->check_service_port();
      if (!recovered) {
        recovered = static_cast<bool>(policy.recover());
        if (recovered) log("recovered: the dataplane is reachable");
      } else {
        Result<std::optional<int64_t>> reverted =
            policy.revert_if_unconfirmed(policy::Clock::now());
        if (!reverted) {
          log("automatic revert failed, will retry: " + reverted.error().message);
        } else if (reverted.value()) {
          log("reverted to version " + std::to_string(*reverted.value()) +
              ": the apply was not confirmed in time");
        }
        if (Status s = policy.reconcile(); !s) log("dataplane check: " + s.error().message);
        if (vendors) {
          Result<int> ended = vendors->expire(api::ControlApi::wall_ms());
          if (!ended)
            log("vendor session expiry: " + ended.error().message);
          else if (ended.value() > 0)
            log(std::to_string(ended.value()) + " vendor session(s) expired");
          // Idempotent in the dataplane; restores the sessions of a restarted dataplane.
          Status pushed = vendors->push_to_dataplane(api::ControlApi::wall_ms());
          if (!pushed && !vendor_push_failing) log("vendor sessions: " + pushed.error().message);
          if (pushed && vendor_push_failing) log("vendor sessions: the dataplane has them again");
          vendor_push_failing = !pushed;
        }
        if (management && ++ticks % 10 == 0) {
          Result<bool> again = management->reassert();
          if (!again)
            log("management firewall check: " + again.error().message);
          else if (again.value())
            log("management firewall differed from the intended table: re-installed");
        }
      }
      schedule();
    });
  };
  schedule();

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code, int) { io.stop(); });
  io.run();
  log("stopped");
  return 0;
}
