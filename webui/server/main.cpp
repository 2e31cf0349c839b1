// cordon-webd: the HTTPS management console's server (docs/webui.md).
//
//   cordon-webd --state-dir DIR --app-dir DIR --controld-socket PATH
//               [--listen ADDR] [--port N] [--origin https://HOST:PORT]... [--san IP:x|DNS:y]...
//               [--cert FILE --key FILE] [--user NAME] [--max-connections N] [--read-timeout S]
//               [--max-upload-mib N] (a firmware bundle, admins only; default 256)
//
// First start: with no --cert/--key, a self-signed EC P-256 certificate is made in the
// state directory (key 0600); with no user yet, a one-time setup token is written to
// <state-dir>/setup-token, needed by POST /api/v1/setup.
//
// The port: the management settings' https_port, which controld's host firewall admits,
// read from controld before binding; when it changes, webd exits (status 3) so that its
// supervisor starts it again on the new one. --port is for a controld that guards no host
// firewall (and tests); a --port other than the settings' is refused.
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <functional>
#include <iostream>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "control/update/systemd_notify.h"
#include "webui/auth/accounts.h"
#include "webui/routes/app.h"
#include "webui/routes/controld_client.h"
#include "webui/server/https_server.h"
#include "webui/server/tls.h"

namespace {
namespace fs = std::filesystem;
using namespace cordon::webui;

int usage(const std::string& why) {
  std::cerr
      << "cordon-webd: " << why << "\n"
      << "usage: cordon-webd --state-dir DIR --app-dir DIR --controld-socket PATH [--listen ADDR]\n"
         "                   [--port N] [--origin URL]... [--san IP:x|DNS:y]... [--cert FILE --key "
         "FILE]\n"
         "                   [--user NAME] [--max-connections N] [--read-timeout SECONDS]\n"
         "                   [--max-upload-mib N]\n";
  return 2;
}

// Gives the state directory to `pw` and drops root for good.
bool drop_privileges(const passwd& pw, const fs::path& state_dir) {
  std::error_code ec;
  if (::chown(state_dir.c_str(), pw.pw_uid, pw.pw_gid) != 0) return false;
  for (const auto& entry : fs::recursive_directory_iterator(state_dir, ec))
    if (::lchown(entry.path().c_str(), pw.pw_uid, pw.pw_gid) != 0) return false;
  if (::setgroups(0, nullptr) != 0 || ::setgid(pw.pw_gid) != 0 || ::setuid(pw.pw_uid) != 0)
    return false;
  return ::setuid(0) != 0;  // must not be able to come back
}

// Exit status when the settings' https_port moved: the supervisor restarts webd there.
constexpr int kExitPortMoved = 3;
constexpr std::chrono::seconds kSettingsPollInterval{5};

// The https_port of controld's management settings, from its reply to GET
// /v1/settings/management; nullopt when controld guards no host firewall (404) or gave
// no usable answer, with the reason in `why`.
std::optional<uint16_t> https_port_of(const routes::ControldReply& reply, std::string& why) {
  if (reply.status == 0) {
    why = "controld not reachable: " + reply.error;
    return std::nullopt;
  }
  if (reply.status == 404) {
    why = "controld guards no host firewall";
    return std::nullopt;
  }
  boost::system::error_code ec;
  const boost::json::value doc = boost::json::parse(reply.body, ec);
  const boost::json::object* settings = ec ? nullptr : doc.if_object();
  const boost::json::value* port = settings ? settings->if_contains("https_port") : nullptr;
  if (reply.status != 200 || port == nullptr || !port->is_int64() || port->as_int64() < 1 ||
      port->as_int64() > 65535) {
    why = "controld's management settings: HTTP " + std::to_string(reply.status) + " " +
          reply.body.substr(0, 200);
    return std::nullopt;
  }
  return static_cast<uint16_t>(port->as_int64());
}

void read_https_port(routes::ControldClient& controld,
                     std::function<void(std::optional<uint16_t>, std::string)> done) {
  controld.forward("GET", "/v1/settings/management", "", "", "",
                   [done = std::move(done)](routes::ControldReply reply) {
                     std::string why;
                     std::optional<uint16_t> port = https_port_of(reply, why);
                     done(port, why);
                   });
}

}  // namespace

int main(int argc, char** argv) {
  std::string state_dir, app_dir, controld_socket, cert, key, run_as;
  server::HttpsServer::Options server_options;
  std::set<std::string> origins;
  std::vector<std::string> sans;
  bool port_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) return {};
      return argv[++i];
    };
    if (arg == "--state-dir")
      state_dir = value();
    else if (arg == "--app-dir")
      app_dir = value();
    else if (arg == "--controld-socket")
      controld_socket = value();
    else if (arg == "--listen")
      server_options.address = value();
    else if (arg == "--port") {
      const std::string v = value();
      char* end = nullptr;
      const unsigned long port = std::strtoul(v.c_str(), &end, 10);
      if (v.empty() || *end || port > 65535) return usage("bad --port " + v);
      server_options.port = static_cast<uint16_t>(port);
      port_given = true;
    } else if (arg == "--max-connections") {
      const std::string v = value();
      char* end = nullptr;
      const unsigned long n = std::strtoul(v.c_str(), &end, 10);
      if (v.empty() || *end || n == 0 || n > 10000) return usage("bad --max-connections " + v);
      server_options.max_connections = n;
    } else if (arg == "--read-timeout") {
      const std::string v = value();
      char* end = nullptr;
      const unsigned long n = std::strtoul(v.c_str(), &end, 10);
      if (v.empty() || *end || n == 0 || n > 3600) return usage("bad --read-timeout " + v);
      server_options.read_timeout = std::chrono::seconds(n);
    } else if (arg == "--max-upload-mib") {
      const std::string v = value();
      char* end = nullptr;
      const unsigned long n = std::strtoul(v.c_str(), &end, 10);
      if (v.empty() || *end || n == 0 || n > 4096) return usage("bad --max-upload-mib " + v);
      server_options.max_upload = static_cast<uint64_t>(n) << 20;
    } else if (arg == "--origin")
      origins.insert(value());
    else if (arg == "--san")
      sans.push_back(value());
    else if (arg == "--cert")
      cert = value();
    else if (arg == "--key")
      key = value();
    else if (arg == "--user")
      run_as = value();
    else
      return usage("unknown argument " + arg);
  }
  if (state_dir.empty() || app_dir.empty() || controld_socket.empty())
    return usage("--state-dir, --app-dir and --controld-socket are required");
  if (cert.empty() != key.empty()) return usage("--cert and --key go together");
  const bool root = ::geteuid() == 0;
  if (root && run_as.empty())
    return usage("started as root: name the unprivileged account with --user");
  passwd pw{};
  passwd* found = nullptr;
  char pwbuf[4096];
  if (!run_as.empty() &&
      (getpwnam_r(run_as.c_str(), &pw, pwbuf, sizeof pwbuf, &found) != 0 || !found))
    return usage("no such user " + run_as);
  boost::asio::io_context io(1);
  // The port the host firewall admits, before anything is bound (the io_context runs only
  // this request here). A short timeout: controld answers this from memory.
  routes::ControldClient settings_reader(io, controld_socket, std::chrono::seconds(5));
  std::optional<uint16_t> settings_port;
  std::string no_settings_why;
  read_https_port(settings_reader, [&](std::optional<uint16_t> port, std::string why) {
    settings_port = port;
    no_settings_why = std::move(why);
  });
  io.run();
  io.restart();
  if (settings_port && port_given && *settings_port != server_options.port)
    return usage("--port " + std::to_string(server_options.port) +
                 ", but the management settings' https_port is " + std::to_string(*settings_port) +
                 " and the host firewall admits only that: leave --port out");
  if (settings_port) {
    server_options.port = *settings_port;
  } else if (!port_given) {
    std::cerr << "cordon-webd: no https_port from controld (" << no_settings_why
              << "); listening on " << server_options.port
              << " until it answers, then on its https_port\n";
  }
  if (origins.empty()) {
    const bool v6 = server_options.address.find(':') != std::string::npos;
    origins.insert("https://" + (v6 ? "[" + server_options.address + "]" : server_options.address) +
                   ":" + std::to_string(server_options.port));
  }
  if (sans.empty()) {
    sans.push_back("DNS:localhost");
    if (server_options.address != "0.0.0.0" && server_options.address != "::")
      sans.push_back("IP:" + server_options.address);
  }
  ::signal(SIGPIPE, SIG_IGN);
  ::umask(077);  // the database holds password hashes, the state dir a private key

  std::error_code ec;
  fs::create_directories(state_dir, ec);
  fs::permissions(state_dir, fs::perms::owner_all, ec);
  const bool own_certificate = cert.empty();  // uploads may replace it (not --cert/--key)
  if (cert.empty()) {
    cert = (fs::path(state_dir) / "webd-cert.pem").string();
    key = (fs::path(state_dir) / "webd-key.pem").string();
    if (auto s = server::ensure_self_signed(cert, key, sans); !s) {
      std::cerr << "cordon-webd: certificate: " << s.error().message << "\n";
      return 1;
    }
  }
  server::CertificateStore certificates(cert, key, own_certificate);
  if (auto s = certificates.load(); !s) {  // read before privileges go
    std::cerr << "cordon-webd: " << s.error().message << "\n";
    return 1;
  }

  // Bound first (a port below 1024 needs root), then root is dropped before any request
  // is read and before the database is opened.
  std::unique_ptr<server::HttpsServer> https;
  routes::ControldClient controld(io, controld_socket);
  std::optional<auth::Accounts> accounts;
  std::optional<routes::App> app;
  // Database and App.
  auto open_accounts = [&]() -> bool {
    auto opened = auth::Accounts::open((fs::path(state_dir) / "webd.db").string());
    if (!opened) {
      std::cerr << "cordon-webd: " << opened.error().message << "\n";
      return false;
    }
    accounts.emplace(std::move(opened.value()));
    app.emplace(
        routes::App::Options{app_dir, origins, fs::path(state_dir) / "setup-token", &certificates},
        *accounts, controld);
    return true;
  };
  // The database is opened before the drop; its files are then handed to the account
  // with the rest of the state directory.
  if (!open_accounts()) return 1;
  https = std::make_unique<server::HttpsServer>(io, certificates, *app, server_options);
  if (auto s = https->listen(); !s) {
    std::cerr << "cordon-webd: " << s.error().message << "\n";
    return 1;
  }
  if (root && !drop_privileges(pw, state_dir)) {
    std::cerr << "cordon-webd: cannot drop privileges to " << run_as << "\n";
    return 1;
  }
  if (const std::string token_file = app->prepare_setup(); !token_file.empty())
    std::cerr << "cordon-webd: no user yet: the one-time setup token is in " << token_file << "\n";
  std::cerr << "cordon-webd: listening on https://" << server_options.address << ":"
            << https->port() << " as uid " << ::getuid() << "\n";

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) { io.stop(); });
  // Under systemd (Type=notify, WatchdogSec=): ready now; pings from this io_context, which
  // serves every request, so a hung server stops them and is restarted.
  cordon::control::update::SystemdNotifier systemd(io);
  systemd.ready("serving https://" + server_options.address + ":" + std::to_string(https->port()));
  systemd.start_watchdog();

  // Following the settings: when https_port moves (an admin on the appliance's console
  // changed it; the web cannot), webd exits and is started again there.
  int exit_status = 0;
  boost::asio::steady_timer settings_poll(io);
  std::function<void()> poll_settings = [&] {
    settings_poll.expires_after(kSettingsPollInterval);
    settings_poll.async_wait([&](const boost::system::error_code& cancelled) {
      if (cancelled) return;
      read_https_port(settings_reader, [&](std::optional<uint16_t> port, std::string) {
        if (port && *port != https->port()) {
          std::cerr << "cordon-webd: the management settings' https_port is now " << *port
                    << ": exiting to be started again on it\n";
          exit_status = kExitPortMoved;
          io.stop();
          return;
        }
        poll_settings();
      });
    });
  };
  if (!port_given) poll_settings();
  io.run();
  return exit_status;
}
