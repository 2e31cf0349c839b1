// Drives controld's UpdateService against the update lab (update-lab.sh): the real
// RAUC on the lab's private bus, the self-test of the booted slot's image, the lab's
// reboot as the fallback reboot. One process per step, as controld would run across
// reboots; the state (store) persists in STATE_DIR. Prints the update status as JSON.
//
//   update_driver LAB_DIR STATE_DIR install BUNDLE   upload, wait for the install
//   update_driver LAB_DIR STATE_DIR boot             on_boot: self-test, commit or fall back
//   update_driver LAB_DIR STATE_DIR status
//   update_driver LAB_DIR STATE_DIR history          the update steps of the audit log
//   update_driver LAB_DIR STATE_DIR events           the update events of the event store
//                                                    (what GET /v1/events serves)
//   update_driver LAB_DIR STATE_DIR allow-downgrade VERSION REASON
// With CORDON_WEBD_URL set, the self-test also probes webd there (--update-webd-url).
// Before the command, `--crash-at STEP` SIGKILLs the driver at that step of the flow
// (UpdateService::kCrashPoints), standing in for a power cut, as controld's --crash-at.
#include <boost/json.hpp>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>

#include "control/update/rauc_dbus_backend.h"
#include "control/update/service.h"
#include "control/update/webd_probe.h"

namespace json = boost::json;
using namespace cordon::control;

namespace {

// The control thread's queue: the worker posts store writes here; main runs them.
struct Queue {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> tasks;
  void post(std::function<void()> f) {
    {
      std::lock_guard lock(mu);
      tasks.push_back(std::move(f));
    }
    cv.notify_one();
  }
  // Runs posted tasks until the service is idle and nothing is left.
  void run_until_idle(update::UpdateService& service) {
    for (;;) {
      std::unique_lock lock(mu);
      cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return !tasks.empty(); });
      while (!tasks.empty()) {
        auto f = std::move(tasks.front());
        tasks.pop_front();
        lock.unlock();
        f();
        lock.lock();
      }
      lock.unlock();
      if (!service.busy()) return;
    }
  }
};

int fail(const Error& e) {
  std::cerr << "update_driver: " << e.code << ": " << e.message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: update_driver LAB_DIR STATE_DIR install BUNDLE|boot|status|history\n";
    return 2;
  }
  const std::string lab = argv[1], state = argv[2];
  std::string crash_at;
  int arg = 3;
  if (std::string(argv[arg]) == "--crash-at" && argc > arg + 2) {
    crash_at = argv[arg + 1];
    arg += 2;
  }
  const std::string cmd = argv[arg];
  argv += arg - 3;  // the command's arguments at argv[4...]
  argc -= arg - 3;
  auto store = store::Store::open(state);
  if (!store) return fail(store.error());

  update::RaucDbusBackend backend(
      {"unix:path=" + lab + "/bus.sock", std::chrono::seconds(300), std::chrono::seconds(30)});
  update::CommandSelfTest self_test({lab + "/root/usr/lib/cordon/update-self-test", lab + "/root"},
                                    {}, std::chrono::seconds(180));
  // CORDON_WEBD_URL: the self-test also probes webd there, as controld's
  // --update-webd-url.
  std::vector<update::SelfTest*> checks{&self_test};
  std::optional<update::WebdSelfTest> webd_test;
  if (const char* url = std::getenv("CORDON_WEBD_URL")) {
    auto target = update::parse_probe_url(url);
    if (!target) return fail(target.error());
    webd_test.emplace(target.value());
    checks.push_back(&*webd_test);
  }
  update::SelfTestChain self_tests(checks);
  update::UpdateService::Options options;
  options.bundle_dir = state + "/bundles";
  options.rejection_file = lab + "/data/last-rejection";
  options.release_file = lab + "/root/etc/cordon-release";
  options.boot_id_file = lab + "/rauc.pid";  // every lab reboot restarts RAUC
  options.downgrade_allowance_file = lab + "/data/admin-downgrade-allowance";
  options.reboot_command = {CORDON_SOURCE_DIR "/tests/update/update-lab.sh", "reboot", lab};
  if (const char* cap = std::getenv("MAX_BUNDLE_BYTES"))
    options.max_bundle_bytes = std::stoull(cap);
  Queue queue;
  update::UpdateService service(backend, self_tests, store.value(), options,
                                [&queue](std::function<void()> f) { queue.post(std::move(f)); });
  const store::Actor actor{"uid:0(root)", "update_driver"};
  if (!crash_at.empty()) {
    service.set_checkpoint([crash_at](std::string_view at) {
      if (at == crash_at) ::raise(SIGKILL);  // a power cut at this step
    });
  }

  if (cmd == "install" && argc == 5) {
    std::ifstream in(argv[4], std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    if (Status s = service.upload(bytes.str(), actor); !s) return fail(s.error());
    queue.run_until_idle(service);
  } else if (cmd == "boot") {
    if (Status s = service.on_boot(); !s) return fail(s.error());
    queue.run_until_idle(service);
  } else if (cmd == "allow-downgrade" && argc == 6) {
    auto allowed = service.allow_downgrade(argv[4], argv[5], actor);
    if (!allowed) return fail(allowed.error());
    std::cout << json::serialize(allowed.value()) << "\n";
    return 0;
  } else if (cmd == "events") {
    auto events = store.value().events(0, 100000);
    if (!events) return fail(events.error());
    json::array out;
    for (const auto& e : events.value()) {
      json::error_code ec;
      json::value v = json::parse(e.json, ec);
      if (!ec && v.is_object() && v.as_object().contains("kind") &&
          v.as_object().at("kind") == "update")
        out.push_back(v);
    }
    std::cout << json::serialize(out) << "\n";
    return 0;
  } else if (cmd == "history") {
    auto entries = store.value().audit_entries(0, 10000);
    if (!entries) return fail(entries.error());
    json::array steps;
    for (const auto& e : entries.value()) {
      steps.push_back(json::object{
          {"step", e.record.action}, {"outcome", e.record.outcome}, {"detail", e.record.detail}});
    }
    std::cout << json::serialize(steps) << "\n";
    return 0;
  } else if (cmd != "status") {
    std::cerr << "update_driver: unknown command " << cmd << "\n";
    return 2;
  }
  service.join();
  std::cout << json::serialize(service.status()) << "\n";
  return 0;
}
