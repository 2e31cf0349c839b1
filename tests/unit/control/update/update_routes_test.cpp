// The /v1/update routes over a real unix socket, with UpdateService on the fake backend,
// and `cordonctl update ...` against them.
#include "control/api/update_routes.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "control/api/routes.h"
#include "control/policy/lifecycle.h"
#include "control/update/fake_backend.h"
#include "tests/unit/control/fake_dataplane_link.h"

namespace cordon::control::api {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace fs = std::filesystem;

class PassingSelfTest final : public update::SelfTest {
 public:
  Status run() override { return ok(); }
};

struct Reply {
  unsigned status = 0;
  json::value body;
};

class UpdateRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cordon-update-api-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "boot_id") << "boot-1\n";
    std::ofstream(dir_ / "cordon-release") << "VERSION=1.0.0\n";
    store_.emplace(store::Store::open((dir_ / "state").string()).value());
    update::UpdateService::Options o;
    o.bundle_dir = (dir_ / "bundles").string();
    o.max_bundle_bytes = 1000;
    o.rejection_file = (dir_ / "last-rejection").string();
    o.release_file = (dir_ / "cordon-release").string();
    o.boot_id_file = (dir_ / "boot_id").string();
    o.backup_key_file = (dir_ / "backup.key").string();
    o.downgrade_allowance_file = (dir_ / "admin-downgrade-allowance").string();
    // Configuration to back up: a policy version and a setting.
    const int64_t v =
        store_->begin_version(R"({"schema":"cordon.policy/v1"})", {"alice", "web"}, "").value();
    ASSERT_TRUE(
        store_
            ->commit_version(
                v, store::AuditRecord{{"alice", "web"}, "policy.apply", "policy", "ok", "", "", ""})
            .ok());
    ASSERT_TRUE(store_->set_setting("syslog", R"({"target":"udp://10.0.0.9:514"})").ok());
    service_.emplace(backend_, self_test_, *store_, o,
                     [this](std::function<void()> f) { asio::post(io_, std::move(f)); });
    server_.emplace(
        io_, HttpServer::Options{(dir_ / "api.sock").string(), 0600, std::nullopt, {}, 1 << 20, 8});
    install_update_routes(*server_, *service_, *store_);
    // The rest of the API, with the update events going into its event log (as main).
    policy_.emplace(*store_, dataplane_);
    api_.emplace(io_, *store_, *policy_, dataplane_);
    api_->install(*server_);
    service_->set_event_sink(
        [this](const std::vector<std::string>& events) { api_->log_events(events); });
    ASSERT_TRUE(server_->listen().ok());
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    service_->join();
    io_.stop();
    thread_.join();
    service_.reset();
    fs::remove_all(dir_);
  }

  Reply call(http::verb method, const std::string& target, const std::string& body = "") {
    asio::io_context io;
    asio::local::stream_protocol::socket socket(io);
    socket.connect((dir_ / "api.sock").string());
    http::request<http::string_body> req(method, target, 11);
    req.set(http::field::host, "controld");
    req.body() = body;
    req.prepare_payload();
    beast::error_code ec;
    http::write(socket, req, ec);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(socket, buffer, res, ec);
    Reply r;
    if (ec) return r;
    r.status = res.result_int();
    json::error_code jec;
    r.body = json::parse(res.body(), jec);
    return r;
  }
  // Polls GET /v1/update until `state` (deadline 10 s).
  json::object wait_for_state(const std::string& state) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      Reply r = call(http::verb::get, "/v1/update");
      if (r.status == 200 && r.body.at("state") == state.c_str()) return r.body.as_object();
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "no state " << state << ": " << json::serialize(r.body);
        return {};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  // Runs `f` on the server's thread and waits (the store belongs to that thread).
  template <class F>
  void on_server(F f) {
    std::promise<void> done;
    asio::post(io_, [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }
  std::string syslog_setting() {
    std::string out;
    on_server([&] { out = store_->setting("syslog").value().value_or("<none>"); });
    return out;
  }
  std::string cordonctl(const std::string& args, int* rc) {
    const fs::path exe = fs::read_symlink("/proc/self/exe").parent_path() / "cordonctl";
    const std::string cmd =
        exe.string() + " --socket " + (dir_ / "api.sock").string() + " " + args + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[512];
    while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    *rc = WEXITSTATUS(pclose(p));
    return out;
  }

  fs::path dir_;
  asio::io_context io_;
  update::FakeUpdateBackend backend_;
  PassingSelfTest self_test_;
  std::optional<store::Store> store_;
  std::optional<update::UpdateService> service_;
  testing::FakeDataplaneLink dataplane_;
  std::optional<policy::PolicyService> policy_;
  std::optional<ControlApi> api_;
  std::optional<HttpServer> server_;
  std::thread thread_;
};

TEST_F(UpdateRoutesTest, UploadShowsProgressToAwaitingRebootAndTheHistory) {
  Reply r = call(http::verb::post, "/v1/update", "bundle bytes");
  ASSERT_EQ(r.status, 202u) << json::serialize(r.body);
  json::object s = wait_for_state("awaiting-reboot");
  EXPECT_EQ(s["pending"].as_object()["to_version"], "1.1.0");
  EXPECT_EQ(s["booted_slot"], "A");
  EXPECT_EQ(s["primary_slot"], "rootfs.1");
  EXPECT_EQ(s["progress"].as_object()["percent"], 100);
  ASSERT_EQ(s["slots"].as_array().size(), 2u);

  Reply again = call(http::verb::post, "/v1/update", "bundle bytes");
  EXPECT_EQ(again.status, 409u);
  Reply h = call(http::verb::get, "/v1/update/history");
  ASSERT_EQ(h.status, 200u);
  std::vector<std::string> steps;
  for (const auto& e : h.body.at("steps").as_array()) {
    steps.push_back(std::string(e.at("step").as_string()) + " " +
                    std::string(e.at("outcome").as_string()));
  }
  EXPECT_EQ(steps,
            (std::vector<std::string>{
                "update.upload ok", "update.install ok",
                "update.upload refused: an installed update awaits its reboot (or a commit)"}));
}

TEST_F(UpdateRoutesTest, ADowngradeAllowanceThroughTheApiAndCordonctlIsWrittenAndAudited) {
  const fs::path file = dir_ / "admin-downgrade-allowance";
  for (const auto& [body, path] : std::vector<std::pair<std::string, std::string>>{
           {R"({"reason":"x"})", "/version"},
           {R"({"version":"1.0.0"})", "/reason"},
           {R"({"version":1,"reason":"x"})", "/version"},
           {R"({"version":"1.0.0","reason":"x","forever":true})", "/forever"},
           {R"({"version":"latest","reason":"x"})", "/version"}}) {
    Reply r = call(http::verb::post, "/v1/update/allow-downgrade", body);
    EXPECT_EQ(r.status, 400u) << body;
    EXPECT_EQ(r.body.at("error").at("path"), path.c_str()) << body;
  }
  EXPECT_FALSE(fs::exists(file)) << "a refused request writes nothing";

  Reply r = call(http::verb::post, "/v1/update/allow-downgrade",
                 R"({"version":"0.9.0","reason":"1.0.0 breaks the modality"})");
  ASSERT_EQ(r.status, 200u) << json::serialize(r.body);
  EXPECT_EQ(r.body.at("version"), "0.9.0");
  std::ifstream in(file);
  std::string first;
  std::getline(in, first);
  EXPECT_EQ(first, "version=0.9.0");

  int rc = -1;
  const std::string out =
      cordonctl("update allow-downgrade 0.8.0 --reason 'vendor ticket 12'", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("one install of 0.8.0 below the version floor is allowed until"),
            std::string::npos)
      << out;
  std::ifstream again(file);
  std::getline(again, first);
  EXPECT_EQ(first, "version=0.8.0") << "a new allowance replaces the last";
  Reply h = call(http::verb::get, "/v1/update/history");
  const auto& steps = h.body.at("steps").as_array();
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[1].at("step"), "update.allow_downgrade");
  EXPECT_NE(std::string(steps[1].at("detail").as_string()).find("vendor ticket 12"),
            std::string::npos);
}

TEST_F(UpdateRoutesTest, UpdateStepsWakeTheEventLongPoll) {
  Reply first = call(http::verb::get, "/v1/events");
  ASSERT_EQ(first.status, 200u);
  const int64_t last = first.body.at("last_id").as_int64();
  auto waiting = std::async(std::launch::async, [&] {
    return call(http::verb::get, "/v1/events?after=" + std::to_string(last) + "&wait=30");
  });
  while (server_->connections() < 1) std::this_thread::yield();
  ASSERT_EQ(call(http::verb::post, "/v1/update", "bundle bytes").status, 202u);
  Reply woke = waiting.get();
  ASSERT_EQ(woke.status, 200u);
  ASSERT_FALSE(woke.body.at("events").as_array().empty());
  EXPECT_EQ(woke.body.at("events").as_array()[0].at("kind"), "update");
  EXPECT_EQ(woke.body.at("events").as_array()[0].at("step"), "update.upload");
  wait_for_state("awaiting-reboot");
  // All of them, in order, in GET /v1/events.
  std::vector<std::string> steps;
  const Reply all = call(http::verb::get, "/v1/events");
  for (const auto& e : all.body.at("events").as_array())
    steps.push_back(std::string(e.at("step").as_string()));
  EXPECT_EQ(steps,
            (std::vector<std::string>{"update.upload", "update.installing", "update.verified",
                                      "update.install", "update.rebooting"}));
}

TEST_F(UpdateRoutesTest, BadRequestsGetAClearErrorAndChangeNothing) {
  Reply big = call(http::verb::post, "/v1/update", std::string(1001, 'x'));
  EXPECT_EQ(big.status, 413u);
  EXPECT_EQ(big.body.at("error").at("message"),
            "the bundle is 1001 bytes, over the limit of 1000 bytes");
  Reply path = call(http::verb::post, "/v1/update?file=..%2Fetc%2Fpasswd");
  EXPECT_EQ(path.status, 400u) << json::serialize(path.body);
  EXPECT_EQ(path.body.at("error").at("path"), "/file");
  Reply dots = call(http::verb::post, "/v1/update?file=../x");
  EXPECT_EQ(dots.status, 400u);
  Reply good = call(http::verb::post, "/v1/update/mark-good");
  EXPECT_EQ(good.status, 409u);
  EXPECT_TRUE(backend_.installed_paths.empty());
  EXPECT_TRUE(call(http::verb::get, "/v1/update").body.at("pending").is_null());
}

TEST_F(UpdateRoutesTest, CordonctlUploadsFollowsAndReportsRefusals) {
  std::ofstream(dir_ / "good.raucb") << "bundle";
  int rc = -1;
  std::string out = cordonctl("update upload " + (dir_ / "good.raucb").string(), &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("installed 1.1.0 into the inactive slot; reboot to try it"), std::string::npos)
      << out;
  out = cordonctl("update status", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("awaiting-reboot"), std::string::npos) << out;
}

TEST_F(UpdateRoutesTest, CordonctlSaysWhyABundleWasRefused) {
  backend_.install_error =
      "Compatible mismatch: Expected 'cordon-appliance-x86_64' but bundle manifest has 'x'";
  std::ofstream(dir_ / "bad.raucb") << "bundle";
  int rc = -1;
  std::string out = cordonctl("update upload " + (dir_ / "bad.raucb").string(), &rc);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("refused: Compatible mismatch"), std::string::npos) << out;
}

TEST_F(UpdateRoutesTest, ABackupRestoresTheSettingsAndCarriesThePolicy) {
  Reply backup = call(http::verb::get, "/v1/backup");
  ASSERT_EQ(backup.status, 200u) << json::serialize(backup.body);
  EXPECT_EQ(backup.body.at("format"), "cordon.backup/v1");
  EXPECT_EQ(fs::status(dir_ / "backup.key").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  on_server([&] { ASSERT_TRUE(store_->set_setting("syslog", R"({"target":"changed"})").ok()); });

  Reply restored = call(http::verb::post, "/v1/backup/restore", json::serialize(backup.body));
  ASSERT_EQ(restored.status, 200u) << json::serialize(restored.body);
  EXPECT_EQ(syslog_setting(), R"({"target":"udp://10.0.0.9:514"})");
  EXPECT_EQ(restored.body.at("restored_settings"), json::parse(R"(["syslog"])"));
  EXPECT_EQ(restored.body.at("policy").at("version"), 1);
  EXPECT_EQ(restored.body.at("policy").at("document"), R"({"schema":"cordon.policy/v1"})");
  EXPECT_EQ(restored.body.at("firmware_version"), "1.0.0");
}

TEST_F(UpdateRoutesTest, ATamperedBackupIsRefusedAndChangesNothing) {
  Reply backup = call(http::verb::get, "/v1/backup");
  ASSERT_EQ(backup.status, 200u);
  on_server([&] { ASSERT_TRUE(store_->set_setting("syslog", R"({"target":"current"})").ok()); });
  std::string payload(backup.body.at("payload").as_string());
  const auto at = payload.find("10.0.0.9");
  ASSERT_NE(at, std::string::npos);
  payload[at + 7] = '8';  // point the syslog export elsewhere
  json::object tampered = backup.body.as_object();
  tampered["payload"] = payload;
  Reply r = call(http::verb::post, "/v1/backup/restore", json::serialize(tampered));
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.body.at("error").at("path"), "/hmac_sha256");
  EXPECT_EQ(syslog_setting(), R"({"target":"current"})");

  // A backup with the MAC recomputed under another key is refused the same way.
  fs::remove(dir_ / "backup.key");
  Reply other = call(http::verb::post, "/v1/backup/restore", json::serialize(backup.body));
  EXPECT_EQ(other.status, 400u);
  EXPECT_EQ(syslog_setting(), R"({"target":"current"})");
  Reply junk = call(http::verb::post, "/v1/backup/restore", "not json");
  EXPECT_EQ(junk.status, 400u);

  std::vector<std::string> outcomes;
  on_server([&] {
    auto entries = store_->audit_entries(0, 100);
    ASSERT_TRUE(entries.ok());
    for (const auto& e : entries.value()) {
      if (e.record.action.rfind("backup.", 0) == 0)
        outcomes.push_back(e.record.action + " " + e.record.outcome.substr(0, 8));
    }
  });
  EXPECT_EQ(outcomes,
            (std::vector<std::string>{"backup.export ok", "backup.restore refused:",
                                      "backup.restore refused:", "backup.restore refused:"}));
}

}  // namespace
}  // namespace cordon::control::api
