// UpdateService with the fake backend (boot counting as in the lab) and a scripted
// self-test: the good path, every refusal changing nothing, the self-test failure that
// falls back, trial boots running out, and what the audit log and events record.
#include "control/update/service.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "control/update/fake_backend.h"

namespace cordon::control::update {
namespace {
namespace json = boost::json;
namespace fs = std::filesystem;

class ScriptedSelfTest final : public SelfTest {
 public:
  std::optional<std::string> failure;
  int runs = 0;
  Status run() override {
    ++runs;
    if (failure) return Error{"self_test", *failure};
    return ok();
  }
};

void write(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
}

class UpdateServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cordon-update-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    store_.emplace(store::Store::open((dir_ / "state").string()).value());
    options_.bundle_dir = (dir_ / "bundles").string();
    options_.max_bundle_bytes = 4096;
    options_.rejection_file = (dir_ / "last-rejection").string();
    options_.release_file = (dir_ / "cordon-release").string();
    options_.boot_id_file = (dir_ / "boot_id").string();
    options_.reboot_command = {"/bin/sh", "-c", "echo reboot >> " + (dir_ / "reboots").string()};
    boot("1.0.0");
    make_service();
  }
  void TearDown() override {
    service_.reset();
    fs::remove_all(dir_);
  }
  void make_service() {
    service_.reset();
    // The worker's store writes run on its own thread here; the tests touch the store
    // and the backend only after join(), which orders them.
    service_.emplace(backend_, self_test_, *store_, options_, [](std::function<void()> f) { f(); });
  }
  // A new boot: new boot id, the booted slot's version in the release file.
  void boot(const std::string& version) {
    write(dir_ / "boot_id", "boot-" + std::to_string(++boots_) + "\n");
    write(dir_ / "cordon-release", "NAME=Cordon\nVERSION=" + version + "\n");
  }
  void reboot() {
    const std::string bootname = backend_.reboot();
    for (const auto& [name, slot] : backend_.slot_table) {
      if (slot.bootname == bootname) boot(slot.version);
    }
  }
  std::vector<store::AuditEntry> audit() { return store_->audit_entries(0, 1000).value(); }
  std::vector<std::string> audit_lines() {
    std::vector<std::string> out;
    for (const auto& e : audit()) out.push_back(e.record.action + " " + e.record.outcome);
    return out;
  }
  json::object status() { return service_->status(); }
  std::string last(const char* field) {
    json::object s = status();
    const json::value& v = s["last_result"];
    return v.is_object() ? std::string(v.as_object().at(field).as_string()) : std::string("<none>");
  }
  bool has_line(const std::string& prefix) {
    for (const auto& l : audit_lines()) {
      if (l.rfind(prefix, 0) == 0) return true;
    }
    return false;
  }
  int reboots() {
    std::ifstream in(dir_ / "reboots");
    int n = 0;
    for (std::string l; std::getline(in, l);) ++n;
    return n;
  }

  fs::path dir_;
  int boots_ = 0;
  std::optional<store::Store> store_;
  FakeUpdateBackend backend_;
  ScriptedSelfTest self_test_;
  UpdateService::Options options_;
  std::optional<UpdateService> service_;
};

TEST_F(UpdateServiceTest, AGoodBundleInstallsTrialBootsPassesItsSelfTestAndIsCommitted) {
  ASSERT_TRUE(service_->upload("bundle bytes", {"uid:0(root)", "unix"}).ok());
  service_->join();
  ASSERT_EQ(backend_.installed_paths.size(), 1u);
  EXPECT_FALSE(fs::exists(backend_.installed_paths[0]))
      << "the uploaded bundle is removed after the install";
  json::object s = status();
  EXPECT_EQ(s["state"], "awaiting-reboot");
  EXPECT_EQ(s["primary_slot"], "rootfs.1");
  EXPECT_EQ(s["pending"].as_object()["phase"], "installed");
  EXPECT_EQ(s["pending"].as_object()["to_version"], "1.1.0");
  EXPECT_EQ(s["pending"].as_object()["from_slot"], "A");

  reboot();
  ASSERT_EQ(backend_.booted_slot().value(), "B");
  make_service();  // controld starts again in the new boot
  ASSERT_TRUE(service_->on_boot().ok());
  service_->join();
  EXPECT_EQ(self_test_.runs, 1);
  EXPECT_EQ(backend_.marks, std::vector<std::string>{"good booted"});
  EXPECT_TRUE(backend_.slot_table["rootfs.1"].committed);
  s = status();
  EXPECT_TRUE(s["pending"].is_null());
  EXPECT_EQ(s["state"], "idle");
  EXPECT_EQ(s["booted_version"], "1.1.0");
  EXPECT_EQ(last("outcome"), "committed");
  EXPECT_EQ(last("version"), "1.1.0");

  const std::vector<std::string> expected{"update.upload ok", "update.install ok",
                                          "update.trial_boot ok", "update.self_test ok",
                                          "update.commit ok"};
  EXPECT_EQ(audit_lines(), expected);
  EXPECT_EQ(audit()[0].record.actor.name, "uid:0(root)");
  EXPECT_TRUE(store_->verify_audit().value().intact);
  // One event per step (audited or not), with the version where one is known.
  auto events = store_->events(0, 100).value();
  std::vector<std::string> steps;
  for (const auto& e : events) {
    json::object o = json::parse(e.json).as_object();
    steps.push_back(std::string(o["step"].as_string()) + " " +
                    std::string(o["outcome"].as_string()));
  }
  EXPECT_EQ(steps, (std::vector<std::string>{
                       "update.upload ok", "update.installing ok", "update.verified ok",
                       "update.install ok", "update.rebooting awaiting-reboot",
                       "update.trial_boot ok", "update.self_test ok", "update.commit ok"}));
  json::object commit = json::parse(events.back().json).as_object();
  EXPECT_EQ(commit["kind"], "update");
  EXPECT_EQ(commit["step"], "update.commit");
  EXPECT_EQ(commit["version"], "1.1.0");

  // Nothing is left in flight: a later boot does nothing more.
  reboot();
  make_service();
  ASSERT_TRUE(service_->on_boot().ok());
  service_->join();
  EXPECT_EQ(self_test_.runs, 1);
  EXPECT_EQ(audit().size(), expected.size());
}

TEST_F(UpdateServiceTest, ABundleThePreInstallHandlerRejectsChangesNothingAndSaysWhy) {
  backend_.install_error = "Pre-install handler error: Child process exited with code 1";
  backend_.during_install = [this] {
    write(dir_ / "last-rejection", "version 0.9.0 is below the version floor 1.0.0\n");
  };
  ASSERT_TRUE(service_->upload("bundle", {"alice", "web"}).ok());
  service_->join();
  const auto slots_before = FakeUpdateBackend().slot_table;
  EXPECT_EQ(backend_.slot_table["rootfs.1"].version, slots_before.at("rootfs.1").version);
  EXPECT_EQ(backend_.order, (std::vector<std::string>{"rootfs.0", "rootfs.1"}));
  EXPECT_TRUE(backend_.marks.empty());
  json::object s = status();
  EXPECT_EQ(s["state"], "idle");
  EXPECT_TRUE(s["pending"].is_null());
  EXPECT_EQ(last("outcome"), "rejected");
  EXPECT_EQ(last("reason"),
            "Pre-install handler error: Child process exited with code 1: version 0.9.0 is below "
            "the version floor 1.0.0");
  EXPECT_EQ(audit_lines().back(),
            "update.install refused: Pre-install handler error: Child process exited with code 1: "
            "version 0.9.0 is "
            "below the version floor 1.0.0");
  EXPECT_FALSE(fs::exists(dir_ / "bundles" / "upload.raucb"));

  // The next bundle is not blocked by the refused one.
  backend_.install_error.reset();
  backend_.during_install = nullptr;
  ASSERT_TRUE(service_->upload("bundle", {"alice", "web"}).ok());
  service_->join();
  EXPECT_EQ(status()["state"], "awaiting-reboot");
}

TEST_F(UpdateServiceTest, ASignatureErrorIsReportedAsRaucSaysItWithoutAStaleHandlerReason) {
  backend_.install_error = "signature verification failed: CMS routines::verification failure";
  backend_.during_install = [this] { write(dir_ / "last-rejection", "an older rejection\n"); };
  ASSERT_TRUE(service_->upload("bundle", {"alice", "web"}).ok());
  service_->join();
  EXPECT_EQ(last("reason"), "signature verification failed: CMS routines::verification failure");
  EXPECT_EQ(backend_.slot_table["rootfs.1"].version, "");
}

TEST_F(UpdateServiceTest, ABundleOverTheSizeCapIsRefusedUnwritten) {
  Status s = service_->upload(std::string(4097, 'x'), {"alice", "web"});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "too_large");
  EXPECT_EQ(s.error().message, "the bundle is 4097 bytes, over the limit of 4096 bytes");
  EXPECT_TRUE(backend_.installed_paths.empty());
  EXPECT_FALSE(fs::exists(dir_ / "bundles" / "upload.raucb"));
  EXPECT_EQ(audit_lines().back(), "update.upload refused: " + s.error().message);
  EXPECT_TRUE(status()["pending"].is_null());

  Status empty = service_->upload("", {"alice", "web"});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, "invalid");
  EXPECT_TRUE(backend_.installed_paths.empty());
}

TEST_F(UpdateServiceTest, OnlyPlainFileNamesInTheBundleDirAreInstalled) {
  fs::create_directories(dir_ / "bundles");
  write(dir_ / "outside.raucb", "bundle");
  fs::create_symlink(dir_ / "outside.raucb", dir_ / "bundles" / "link.raucb");
  for (const std::string name : {"../outside.raucb", "/etc/passwd", ".hidden", "", "link.raucb"}) {
    Status s = service_->install_file(name, {"alice", "web"});
    ASSERT_FALSE(s.ok()) << name;
    EXPECT_EQ(s.error().code, "invalid") << name;
    EXPECT_EQ(s.error().path, "/file") << name;
  }
  Status missing = service_->install_file("nope.raucb", {"alice", "web"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "not_found");
  write(dir_ / "bundles" / "big.raucb", std::string(5000, 'x'));
  EXPECT_EQ(service_->install_file("big.raucb", {"alice", "web"}).error().code, "too_large");
  EXPECT_TRUE(backend_.installed_paths.empty());

  write(dir_ / "bundles" / "v1.1.raucb", "bundle");
  ASSERT_TRUE(service_->install_file("v1.1.raucb", {"alice", "web"}).ok());
  service_->join();
  EXPECT_EQ(backend_.installed_paths,
            std::vector<std::string>{(dir_ / "bundles" / "v1.1.raucb").string()});
}

TEST_F(UpdateServiceTest, ASecondUpdateWaitsUntilTheFirstIsDecided) {
  ASSERT_TRUE(service_->upload("bundle", {"alice", "web"}).ok());
  service_->join();
  Status again = service_->upload("bundle 2", {"alice", "web"});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, "conflict");
  EXPECT_EQ(backend_.installed_paths.size(), 1u);
  // controld restarting in the same boot does not mistake that for the trial boot.
  make_service();
  ASSERT_TRUE(service_->on_boot().ok());
  service_->join();
  EXPECT_EQ(self_test_.runs, 0);
  EXPECT_EQ(status()["state"], "awaiting-reboot");
}

TEST_F(UpdateServiceTest, AFailedSelfTestMarksTheSlotBadRebootsAndTheRollbackIsReported) {
  ASSERT_TRUE(service_->upload("bundle", {"alice", "web"}).ok());
  service_->join();
  reboot();
  ASSERT_EQ(backend_.booted_slot().value(), "B");
  self_test_.failure = "case app-hl7-oru-passes: frame 4 dropped, expected forward";
  make_service();
  ASSERT_TRUE(service_->on_boot().ok());
  service_->join();
  EXPECT_EQ(backend_.marks, std::vector<std::string>{"bad booted"});
  EXPECT_EQ(reboots(), 1);
  EXPECT_EQ(status()["pending"].as_object()["phase"], "self-test-failed");
  EXPECT_TRUE(has_line("update.self_test failed: case app-hl7-oru-passes"));
  EXPECT_TRUE(has_line("update.fallback ok"));

  reboot();  // the bootloader skips the bad slot
  ASSERT_EQ(backend_.booted_slot().value(), "A");
  make_service();
  ASSERT_TRUE(service_->on_boot().ok());
  service_->join();
  EXPECT_EQ(self_test_.runs, 1);
  json::object s = status();
  EXPECT_TRUE(s["pending"].is_null());
  EXPECT_EQ(s["booted_version"], "1.0.0");
  EXPECT_EQ(last("outcome"), "rolled_back");
  EXPECT_EQ(last("version"), "1.1.0");
  EXPECT_EQ(last("reason"), "case app-hl7-oru-passes: frame 4 dropped, expected forward");
  EXPECT_EQ(audit_lines().back(),
            "update.rollback failed: case app-hl7-oru-passes: frame 4 dropped, expected forward");
  EXPECT_TRUE(backend_.slot_table["rootfs.0"].committed);
  EXPECT_TRUE(backend_.slot_table["rootfs.1"].bad);
}

TEST_F(UpdateServiceTest, ASlotThatFailedItsSelfTestIsNotTestedAgainIfTheRebootDidNotHappen) {
  options_.reboot_command = {"/bin/false"};
  make_service();
  ASSERT_TRUE(service_->upload("bundle", {"alice", "web"}).ok());
  service_->join();
  reboot();
  self_test_.failure = "validation case app-dicom-store-passes: frame 7 dropped";
  make_service();
  ASSERT_TRUE(service_->on_boot().ok());
  service_->join();
  EXPECT_TRUE(has_line("update.fallback ok"));
  ASSERT_EQ(backend_.booted_slot().value(), "B");  // the reboot command failed
  // controld restarts in the same boot; a self-test would pass now, but is not run.
  self_test_.failure.reset();
  make_service();
  ASSERT_TRUE(service_->on_boot().ok());
  service_->join();
  EXPECT_EQ(self_test_.runs, 1);
  EXPECT_EQ(backend_.marks, (std::vector<std::string>{"bad booted", "bad booted"}));
  EXPECT_FALSE(backend_.slot_table["rootfs.1"].committed);
  EXPECT_EQ(status()["pending"].as_object()["phase"], "self-test-failed");
}

TEST_F(UpdateServiceTest, ANewSlotThatNeverComesUpFallsBackWhenItsTrialBootsRunOut) {
  ASSERT_TRUE(service_->upload("bundle", {"alice", "web"}).ok());
  service_->join();
  // Three trial boots in which controld never got to the self-test (a hang, a crash).
  for (int i = 0; i < 3; ++i) {
    reboot();
    ASSERT_EQ(backend_.booted_slot().value(), "B") << i;
  }
  reboot();
  ASSERT_EQ(backend_.booted_slot().value(), "A");
  make_service();
  ASSERT_TRUE(service_->on_boot().ok());
  service_->join();
  EXPECT_EQ(self_test_.runs, 0);
  EXPECT_EQ(last("outcome"), "rolled_back");
  EXPECT_EQ(last("reason"), "the new slot did not come up (its trial boots ran out)");
  EXPECT_TRUE(status()["pending"].is_null());
}

TEST_F(UpdateServiceTest, MarkGoodByHandCommitsOnlyATrialBoot) {
  Status nothing = service_->mark_good({"alice", "web"});
  ASSERT_FALSE(nothing.ok());
  EXPECT_EQ(nothing.error().code, "conflict");
  ASSERT_TRUE(service_->upload("bundle", {"alice", "web"}).ok());
  service_->join();
  EXPECT_EQ(service_->mark_good({"alice", "web"}).error().code, "conflict")
      << "not before the reboot";
  reboot();
  make_service();
  ASSERT_TRUE(service_->mark_good({"alice", "web"}).ok());
  EXPECT_EQ(backend_.marks, std::vector<std::string>{"good booted"});
  EXPECT_EQ(last("outcome"), "committed");
  EXPECT_EQ(audit_lines().back(), "update.commit ok");
  EXPECT_EQ(audit().back().record.actor.name, "alice");
}

// controld killed (SIGKILL, a power cut) at each step leaves a store that the next
// start resolves to one consistent outcome. The store is what survived; the fake
// backend is where RAUC got to.
class KilledUpdateTest : public UpdateServiceTest {
 protected:
  // The store as a service killed right after it recorded the start of an install.
  void killed_after_upload() {
    ASSERT_TRUE(store_
                    ->set_setting("update.pending",
                                  R"({"phase":"installing","from_slot":"A","from_version":"1.0.0",)"
                                  R"("boot_id":"boot-1","bundle_sha256":"x","bundle_bytes":6})")
                    .ok());
  }
};

TEST_F(KilledUpdateTest, KilledBeforeRaucInstalledNothingComesBackOnTheOldSlotAndSaysSo) {
  killed_after_upload();
  reboot();
  ASSERT_EQ(backend_.booted_slot().value(), "A");
  make_service();
  ASSERT_TRUE(service_->on_boot().ok());
  service_->join();
  EXPECT_EQ(self_test_.runs, 0);
  EXPECT_TRUE(backend_.marks.empty());
  EXPECT_EQ(last("outcome"), "interrupted");
  EXPECT_EQ(last("reason"), "the install was interrupted before it completed");
  EXPECT_TRUE(status()["pending"].is_null());
  // And a new update can start.
  ASSERT_TRUE(service_->upload("bundle", {"alice", "web"}).ok());
  service_->join();
  EXPECT_EQ(status()["state"], "awaiting-reboot");
}

TEST_F(KilledUpdateTest, KilledAfterRaucInstalledTheTrialBootIsStillSelfTestedAndCommitted) {
  killed_after_upload();
  ASSERT_TRUE(backend_.install("/gone", nullptr).ok());  // RAUC finished on its own
  reboot();
  ASSERT_EQ(backend_.booted_slot().value(), "B");
  make_service();
  ASSERT_TRUE(service_->on_boot().ok());
  service_->join();
  EXPECT_EQ(self_test_.runs, 1);
  EXPECT_EQ(backend_.marks, std::vector<std::string>{"good booted"});
  EXPECT_EQ(last("outcome"), "committed");
  EXPECT_EQ(last("version"), "1.1.0");
}

TEST_F(KilledUpdateTest, APartialUploadLeftByACrashIsRemovedAndReportedAndARetryWorks) {
  // The crash point "upload": half of the bundle in the upload file, nothing recorded.
  fs::create_directories(options_.bundle_dir);
  write(fs::path(options_.bundle_dir) / ".upload.part", "half a bu");
  reboot();
  make_service();
  ASSERT_TRUE(service_->on_boot().ok());
  EXPECT_FALSE(fs::exists(fs::path(options_.bundle_dir) / ".upload.part"));
  EXPECT_EQ(last("outcome"), "interrupted");
  EXPECT_NE(last("reason").find("upload was interrupted"), std::string::npos) << last("reason");
  EXPECT_EQ(audit_lines().back().rfind("update.upload failed: the upload was interrupted", 0), 0u)
      << audit_lines().back();
  EXPECT_TRUE(status()["pending"].is_null());
  EXPECT_TRUE(backend_.installed_paths.empty());
  ASSERT_TRUE(service_->upload("bundle", {"alice", "web"}).ok());
  service_->join();
  EXPECT_EQ(status()["state"], "awaiting-reboot");
}

TEST_F(KilledUpdateTest, EveryCrashPointIsReachedInFlowOrder) {
  // The hook sees each named step once, in order, on the good path (the crash tests
  // SIGKILL at one of them).
  std::vector<std::string> reached;
  std::mutex mu;
  auto hook = [&](std::string_view at) {
    std::lock_guard lock(mu);
    reached.emplace_back(at);
  };
  service_->set_checkpoint(hook);
  ASSERT_TRUE(service_->upload("bundle bytes", {"alice", "web"}).ok());
  service_->join();
  reboot();
  make_service();
  service_->set_checkpoint(hook);
  ASSERT_TRUE(service_->on_boot().ok());
  service_->join();
  EXPECT_EQ(last("outcome"), "committed");
  EXPECT_EQ(reached, (std::vector<std::string>{"upload", "verify", "installed", "trial-boot",
                                               "self-test", "mark-good"}));
  EXPECT_EQ(reached.size(), UpdateService::kCrashPoints.size());
}

TEST_F(UpdateServiceTest, UpdateEventsGoToTheEventSinkWhenOneIsSet) {
  std::vector<std::string> sunk;
  service_->set_event_sink([&](const std::vector<std::string>& events) {
    sunk.insert(sunk.end(), events.begin(), events.end());
  });
  backend_.install_error = "Verify error: unable to get local issuer certificate";
  ASSERT_TRUE(service_->upload("bundle", {"alice", "web"}).ok());
  service_->join();
  ASSERT_EQ(sunk.size(), 3u);
  EXPECT_TRUE(store_->events(0, 100).value().empty()) << "the sink owns the events";
  json::object refused = json::parse(sunk.back()).as_object();
  EXPECT_EQ(refused["kind"], "update");
  EXPECT_EQ(refused["step"], "update.install");
  EXPECT_EQ(refused["outcome"], "refused: Verify error: unable to get local issuer certificate");
}

TEST_F(UpdateServiceTest, ADowngradeAllowanceIsWrittenForTheHandlerAndAudited) {
  options_.downgrade_allowance_file = (dir_ / "admin-downgrade-allowance").string();
  make_service();
  const auto before = std::chrono::system_clock::now();
  auto allowed = service_->allow_downgrade("1.0.0", "ticket 4711: 1.1.0 breaks the PACS link",
                                           {"alice", "web"});
  ASSERT_TRUE(allowed.ok()) << allowed.error().message;
  EXPECT_EQ(allowed.value()["version"], "1.0.0");
  EXPECT_EQ(allowed.value()["single_use"], true);
  std::ifstream in(options_.downgrade_allowance_file);
  std::string line1, line2;
  std::getline(in, line1);
  std::getline(in, line2);
  EXPECT_EQ(line1, "version=1.0.0");
  ASSERT_EQ(line2.rfind("expires=", 0), 0u);
  const int64_t expires = std::stoll(line2.substr(8));
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(before.time_since_epoch()).count();
  EXPECT_GE(expires, now + 24 * 3600);
  EXPECT_LE(expires, now + 24 * 3600 + 60);
  struct stat st {};
  ASSERT_EQ(::stat(options_.downgrade_allowance_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const auto entry = audit().back();
  EXPECT_EQ(entry.record.action, "update.allow_downgrade");
  EXPECT_EQ(entry.record.outcome, "ok");
  EXPECT_EQ(entry.record.actor.name, "alice");
  EXPECT_NE(entry.record.detail.find("ticket 4711"), std::string::npos);
}

TEST_F(UpdateServiceTest, ABadDowngradeRequestIsRefusedWithItsPathAndWritesNothing) {
  options_.downgrade_allowance_file = (dir_ / "admin-downgrade-allowance").string();
  make_service();
  for (const std::string bad : {"", "latest", "1.0.0\nexpires=99999999999", "../1.0", "1 0"}) {
    auto r = service_->allow_downgrade(bad, "why", {"alice", "web"});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().path, "/version") << bad;
  }
  auto no_reason = service_->allow_downgrade("1.0.0", "", {"alice", "web"});
  ASSERT_FALSE(no_reason.ok());
  EXPECT_EQ(no_reason.error().path, "/reason");
  EXPECT_FALSE(fs::exists(options_.downgrade_allowance_file));
  EXPECT_TRUE(audit().empty());

  options_.downgrade_allowance_file.clear();
  make_service();
  auto unconfigured = service_->allow_downgrade("1.0.0", "why", {"alice", "web"});
  ASSERT_FALSE(unconfigured.ok());
  EXPECT_EQ(unconfigured.error().code, "unavailable");
}

}  // namespace
}  // namespace cordon::control::update
