// cordon-webd's request handling from raw bytes: Beast's parser with webd's limits, then
// the App's routing, session, CSRF, role and static-file checks, TOTP and certificate
// endpoints, the header-only upload check (App::body_permit: a refusal is an error status, a
// permit only for POST /api/v1/update), and the WebSocket upgrade check (App::events_socket)
// on every request. "@S@" and "@C@"
// in the input stand for a live admin session id and its CSRF token, so that authorised paths are
// reached too. Forwarded calls go to a socket that does not exist (503).
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "webui/auth/accounts.h"
#include "webui/routes/app.h"
#include "webui/server/tls.h"

namespace {
namespace http = boost::beast::http;
using namespace cordon::webui;

struct World {
  World() {
    dir =
        std::filesystem::temp_directory_path() / ("cordon-webd-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auth::Accounts::Options options;
    options.pwhash_ops = 1;
    options.pwhash_memory = 8192;
    accounts.emplace(auth::Accounts::open((dir / "webd.db").string(), options).value());
    (void)accounts->create_user("admin", "a long enough password", auth::Role::admin);
    auto login = accounts->login("admin", "a long enough password", "127.0.0.1").value();
    session_id = login.session_id;
    csrf = login.session.csrf_token;
    client.emplace(io, (dir / "no-controld.sock").string());
    const std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
    if (!server::ensure_self_signed(cert, key, {"DNS:localhost"})) __builtin_trap();
    certificates.emplace(cert, key, true);
    if (!certificates->load()) __builtin_trap();
    app.emplace(routes::App::Options{std::string(CORDON_SOURCE_DIR) + "/webui/app",
                                     {"https://127.0.0.1:8443"},
                                     dir / "setup-token",
                                     &*certificates},
                *accounts, *client);
  }
  ~World() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::filesystem::path dir;
  boost::asio::io_context io;
  std::optional<auth::Accounts> accounts;
  std::optional<routes::ControldClient> client;
  std::optional<server::CertificateStore> certificates;
  std::optional<routes::App> app;
  std::string session_id, csrf;
};

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World world;
  std::string input(reinterpret_cast<const char*>(data), size);
  replace_all(input, "@S@", world.session_id);
  replace_all(input, "@C@", world.csrf);
  http::request_parser<http::string_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(1 << 20);
  parser.eager(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(input), ec);
  if (!ec && !parser.is_done()) parser.put_eof(ec);
  if (ec || !parser.is_done()) return 0;
  const routes::App::BodyPermit permit = world.app->body_permit(parser.get());
  if (permit.refusal && (permit.refusal->result_int() < 400 || permit.refusal->result_int() > 599))
    __builtin_trap();
  if (permit.upload &&
      (permit.refusal ||
       !routes::App::is_upload(
           parser.get().method(),
           std::string_view(parser.get().target()).substr(0, parser.get().target().find('?')))))
    __builtin_trap();  // only the upload endpoint may get the large body limit
  auto upgrade = world.app->events_socket(parser.get());
  if (auto* refusal = std::get_if<routes::HttpResponse>(&upgrade))
    if (refusal->result_int() < 400 || refusal->result_int() > 599) __builtin_trap();
  bool answered = false;
  world.app->handle(parser.get(), "192.0.2.1", [&](routes::HttpResponse res) {
    answered = true;
    if (res.result_int() < 200 || res.result_int() > 599) __builtin_trap();
  });
  world.io.restart();
  world.io.run();
  if (!answered) __builtin_trap();  // every request gets exactly one answer
  return 0;
}
