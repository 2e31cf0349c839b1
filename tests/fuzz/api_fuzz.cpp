// controld's control API from untrusted bytes: the first line is "METHOD TARGET", the
// rest the body. The request goes through the real route table (ControlApi on an
// HttpServer that is not listening) with a SQLite store in a scratch directory and an
// in-memory dataplane, so every handler's parsing and validation of paths, queries and
// JSON bodies is reached. Beast's own HTTP parser is not ours and is left out, and so is
// POST /v1/policy/dry-run, which runs on a thread of its own and has its own target
// (fuzz_dry_run).
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "control/api/http_server.h"
#include "control/api/routes.h"
#include "control/policy/lifecycle.h"
#include "control/store/store.h"
#include "tests/unit/control/fake_dataplane_link.h"

namespace {
using namespace cordon::control;

struct World {
  World() {
    // /dev/shm: the store syncs every commit, which on a disk would make each run slow.
    const std::filesystem::path base =
        std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
    dir = base / ("cordon-api-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    store.emplace(store::Store::open((dir / "state").string()).value());
    policy.emplace(*store, dataplane);
    api::HttpServer::Options options;
    options.socket_path = (dir / "unused.sock").string();
    server.emplace(io, options);
    control.emplace(io, *store, *policy, dataplane);
    control->install(*server);
  }
  ~World() {
    control.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::filesystem::path dir;
  boost::asio::io_context io;
  testing::FakeDataplaneLink dataplane;
  std::optional<store::Store> store;
  std::optional<policy::PolicyService> policy;
  std::optional<api::HttpServer> server;
  std::optional<api::ControlApi> control;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World world;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t line_end = input.find('\n');
  const std::string_view line = input.substr(0, line_end);
  const size_t space = line.find(' ');
  if (space == std::string_view::npos) return 0;
  api::Request request;
  request.method = std::string(line.substr(0, space));
  api::parse_target(line.substr(space + 1), request);
  if (request.path == "/v1/policy/dry-run") return 0;
  if (line_end != std::string_view::npos) request.body = std::string(input.substr(line_end + 1));
  request.actor = store::Actor{"fuzz", "local"};
  // Long polls (events) answer later, from the io_context, when their timer fires.
  world.server->dispatch(request, [](api::Response response) {
    if (response.status < 200 || response.status > 599) __builtin_trap();
  });
  world.io.restart();
  world.io.poll();
  return 0;
}
