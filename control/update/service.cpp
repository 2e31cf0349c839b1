#include "control/update/service.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <future>
#include <memory>
#include <sstream>

namespace cordon::control::update {
namespace json = boost::json;

namespace {

constexpr const char* kPending = "update.pending";
constexpr const char* kLastResult = "update.last_result";
const store::Actor kSystem{"controld", "update"};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string text(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// Writes `data` to a new file at `path` (0600) and syncs it. `halfway` runs when half
// of the bytes are written (the crash tests' "upload" point). On failure the file is
// removed.
Status write_file_synced(const std::string& path, const std::string& data,
                         const std::function<void()>& halfway = {}) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Error{"io", "cannot create " + path + ": " + std::strerror(errno)};
  auto write_range = [&](size_t from, size_t to) -> Status {
    while (from < to) {
      const ssize_t n = write(fd, data.data() + from, to - from);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Error{"io", "cannot write " + path + ": " + std::strerror(errno)};
      from += static_cast<size_t>(n);
    }
    return ok();
  };
  Status written = write_range(0, data.size() / 2);
  if (written && halfway) halfway();
  if (written) written = write_range(data.size() / 2, data.size());
  if (written && fsync(fd) != 0) written = Error{"io", "cannot sync " + path};
  close(fd);
  if (!written) unlink(path.c_str());
  return written;
}

// A version an allowance may name: Debian-ordered (dpkg), as the version floor compares.
bool valid_version(const std::string& v) {
  if (v.empty() || v.size() > 64 || v[0] < '0' || v[0] > '9') return false;
  for (char c : v) {
    const bool allowed = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                         (c >= 'A' && c <= 'Z') || c == '.' || c == '+' || c == '~' || c == '-';
    if (!allowed) return false;
  }
  return true;
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

UpdateService::UpdateService(UpdateBackend& backend, SelfTest& self_test, store::Store& store,
                             Options options, Post post)
    : backend_(backend),
      self_test_(self_test),
      store_(store),
      options_(std::move(options)),
      post_(std::move(post)) {}

UpdateService::~UpdateService() {
  join();
}

void UpdateService::join() {
  if (worker_.joinable()) worker_.join();
}

bool UpdateService::busy() {
  std::lock_guard lock(mu_);
  return busy_;
}

void UpdateService::set_state(const std::string& state, int percent, const std::string& message) {
  std::lock_guard lock(mu_);
  state_ = state;
  percent_ = percent;
  message_ = message;
}

std::string UpdateService::booted_version() const {
  std::istringstream in(read_file(options_.release_file));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VERSION=", 0) == 0) return line.substr(8);
  }
  return {};
}

std::string UpdateService::boot_id() const {
  return trim(read_file(options_.boot_id_file));
}

Result<std::optional<json::object>> UpdateService::pending() {
  auto raw = store_.setting(kPending);
  if (!raw) return raw.error();
  if (!raw.value()) return std::optional<json::object>();
  json::error_code ec;
  json::value v = json::parse(*raw.value(), ec);
  if (ec || !v.is_object()) return Error{"io", "the stored update.pending is not a JSON object"};
  return std::optional<json::object>(std::move(v.as_object()));
}

std::string UpdateService::rejection_reason(const std::string& rauc_error) const {
  // RAUC 1.8 reports a failing handler only as "Pre-install handler error: Child process
  // exited with code 1"; the handler's own reason is in the rejection file.
  if (rauc_error.find("handler error") == std::string::npos) return rauc_error;
  const std::string why = trim(read_file(options_.rejection_file));
  return why.empty() ? rauc_error : rauc_error + ": " + why;
}

void UpdateService::record(const std::string& step, const std::string& outcome,
                           const std::string& detail, const store::Actor& actor,
                           const std::string& version) {
  store::AuditRecord a;
  a.actor = actor;
  a.action = step;
  a.target = "firmware";
  a.outcome = outcome;
  a.detail = detail;
  (void)store_.audit(a);  // a failed write shows in verify_audit; the step itself went on
  event(step, outcome, detail, actor, version);
}

void UpdateService::event(const std::string& step, const std::string& outcome,
                          const std::string& detail, const store::Actor& actor,
                          const std::string& version) {
  json::object e{{"time", store::now_rfc3339()}, {"kind", "update"}, {"step", step},
                 {"outcome", outcome},           {"detail", detail}, {"actor", actor.name}};
  if (!version.empty()) e["version"] = version;
  std::vector<std::string> events{json::serialize(e)};
  if (event_sink_)
    event_sink_(events);
  else
    (void)store_.add_events(events);
}

void UpdateService::post_record(const std::string& step, const std::string& outcome,
                                const std::string& detail, const store::Actor& actor,
                                const std::string& version) {
  post_([this, step, outcome, detail, actor, version] {
    record(step, outcome, detail, actor, version);
  });
}

void UpdateService::set_last_result(const std::string& outcome, const std::string& version,
                                    const std::string& reason) {
  json::object r{
      {"outcome", outcome}, {"version", version}, {"reason", reason}, {"at", store::now_rfc3339()}};
  (void)store_.set_setting(kLastResult, json::serialize(r));
}

Status UpdateService::upload(const std::string& bundle, const store::Actor& actor) {
  if (bundle.size() > options_.max_bundle_bytes) {
    Error e{"too_large", "the bundle is " + std::to_string(bundle.size()) +
                             " bytes, over the limit of " +
                             std::to_string(options_.max_bundle_bytes) + " bytes"};
    record("update.upload", "refused: " + e.message, "", actor);
    return e;
  }
  if (bundle.empty()) {
    record("update.upload", "refused: empty bundle", "", actor);
    return Error{"invalid", "the bundle is empty"};
  }
  if (busy()) return Error{"conflict", "an update step is running"};
  if (mkdir(options_.bundle_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Error{"io", "cannot create " + options_.bundle_dir + ": " + std::strerror(errno)};
  }
  // Written under a dot name first (install_file never takes one), renamed once synced:
  // a crash leaves either no bundle or a partial file that on_boot removes.
  const std::string part = options_.bundle_dir + "/.upload.part";
  const std::string path = options_.bundle_dir + "/upload.raucb";
  if (Status s = write_file_synced(part, bundle, [this] { checkpoint("upload"); }); !s)
    return s.error();
  if (rename(part.c_str(), path.c_str()) != 0) {
    unlink(part.c_str());
    return Error{"io", "cannot rename " + part + ": " + std::strerror(errno)};
  }
  Status started = start_install(path, store::sha256_hex(bundle), bundle.size(), actor);
  if (!started) unlink(path.c_str());
  return started;
}

Status UpdateService::install_file(const std::string& name, const store::Actor& actor) {
  if (name.empty() || name.find('/') != std::string::npos || name[0] == '.') {
    return Error{"invalid",
                 "a bundle is named by a plain file name in the bundle dir, not '" + name + "'",
                 "/file"};
  }
  const std::string path = options_.bundle_dir + "/" + name;
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0)
    return Error{"not_found", "no bundle " + name + " in the bundle dir", "/file"};
  if (!S_ISREG(st.st_mode)) return Error{"invalid", name + " is not a regular file", "/file"};
  if (static_cast<uint64_t>(st.st_size) > options_.max_bundle_bytes) {
    Error e{"too_large",
            name + " is " + std::to_string(st.st_size) + " bytes, over the limit of " +
                std::to_string(options_.max_bundle_bytes) + " bytes",
            "/file"};
    record("update.upload", "refused: " + e.message, name, actor);
    return e;
  }
  if (busy()) return Error{"conflict", "an update step is running"};
  return start_install(path, store::sha256_hex(read_file(path)), static_cast<uint64_t>(st.st_size),
                       actor);
}

Status UpdateService::start_install(const std::string& path, const std::string& sha256,
                                    uint64_t size, const store::Actor& actor) {
  auto p = pending();
  if (!p) return p.error();
  if (p.value()) {
    const bool same_boot = text(*p.value(), "boot_id") == boot_id();
    Error e{"conflict", same_boot ? "an installed update awaits its reboot (or a commit)"
                                  : "the previous update's trial boot has not been evaluated yet"};
    record("update.upload", "refused: " + e.message, "sha256 " + sha256, actor);
    return e;
  }
  auto booted = backend_.booted_slot();
  if (!booted) return booted.error().context("asking the updater which slot booted");
  json::object pend{{"phase", "installing"},
                    {"from_slot", booted.value()},
                    {"from_version", booted_version()},
                    {"boot_id", boot_id()},
                    {"bundle_sha256", sha256},
                    {"bundle_bytes", size},
                    {"started_at", store::now_rfc3339()},
                    {"actor", actor.name}};
  if (Status s = store_.set_setting(kPending, json::serialize(pend)); !s) return s.error();
  record("update.upload", "ok", "bundle sha256 " + sha256 + ", " + std::to_string(size) + " bytes",
         actor);
  event("update.installing", "ok", "RAUC verifies and installs the bundle", actor);
  if (!options_.rejection_file.empty()) unlink(options_.rejection_file.c_str());
  join();
  {
    std::lock_guard lock(mu_);
    busy_ = true;
    state_ = "installing";
    percent_ = 0;
    message_ = "starting";
  }
  worker_ = std::thread([this, path, actor] { install_worker(path, actor); });
  return ok();
}

void UpdateService::install_worker(std::string path, store::Actor actor) {
  bool first_progress = true;
  Status installed = backend_.install(path, [this, &first_progress](const Progress& p) {
    if (first_progress) checkpoint("verify");  // RAUC has taken the bundle and checks it
    first_progress = false;
    set_state("installing", p.percent, p.message);
  });
  unlink(path.c_str());  // RAUC has copied what it needs into the slot
  if (!installed) {
    const std::string reason = rejection_reason(installed.error().message);
    set_state("idle", 0, "");
    post_([this, reason, actor] {
      (void)store_.clear_setting(kPending);
      record("update.install", "refused: " + reason, "nothing was written to the running slot",
             actor);
      set_last_result("rejected", "", reason);
      std::lock_guard lock(mu_);
      busy_ = false;
    });
    return;
  }
  std::string to_slot, to_bootname, to_version;
  if (auto primary = backend_.primary_slot()) to_slot = primary.value();
  if (auto slots = backend_.slots()) {
    for (const SlotInfo& s : slots.value()) {
      if (s.name == to_slot) {
        to_bootname = s.bootname;
        to_version = s.bundle_version;
      }
    }
  }
  post_([this, actor, to_slot, to_bootname, to_version] {
    // The state changes with the stored record, so no reader sees "awaiting-reboot"
    // without the pending update's target.
    set_state("awaiting-reboot", 100, "installed into " + to_slot + "; reboot to try it");
    if (auto p = pending(); p && p.value()) {
      json::object pend = *p.value();
      pend["phase"] = "installed";
      pend["to_slot"] = to_slot;
      pend["to_bootname"] = to_bootname;
      pend["to_version"] = to_version;
      (void)store_.set_setting(kPending, json::serialize(pend));
    }
    event("update.verified", "ok",
          "RAUC verified the signature, certificate chain and compatible; the pre-install "
          "handler the version floor and size",
          actor, to_version);
    record("update.install", "ok",
           "installed into " + to_slot + " (" + to_bootname + "), primary for a trial boot", actor,
           to_version);
    event("update.rebooting", "awaiting-reboot",
          "reboot to try " + to_slot + " (" + to_bootname + ")", kSystem, to_version);
    checkpoint("installed");
    std::lock_guard lock(mu_);
    busy_ = false;
  });
}

void UpdateService::clean_interrupted_upload() {
  const std::string part = options_.bundle_dir + "/.upload.part";
  struct stat st {};
  if (lstat(part.c_str(), &st) != 0) return;
  unlink(part.c_str());
  const std::string reason = "the upload was interrupted before the bundle was complete (" +
                             std::to_string(st.st_size) + " bytes written)";
  record("update.upload", "failed: " + reason, "removed the partial upload", kSystem);
  set_last_result("interrupted", "", reason);
}

Status UpdateService::on_boot() {
  clean_interrupted_upload();
  auto p = pending();
  if (!p) return p.error();
  // An uploaded bundle is RAUC's only while the update that wrote it is in this boot.
  if (!p.value() || text(*p.value(), "boot_id") != boot_id())
    unlink((options_.bundle_dir + "/upload.raucb").c_str());
  if (!p.value()) return ok();
  json::object pend = *p.value();
  if (text(pend, "boot_id") == boot_id()) {
    // controld restarted within the boot that installed: still waiting for the reboot.
    if (text(pend, "phase") == "installed")
      set_state("awaiting-reboot", 100, "reboot to try the new slot");
    return ok();
  }
  auto booted = backend_.booted_slot();
  if (!booted) return booted.error().context("asking the updater which slot booted");
  const std::string version = text(pend, "to_version");
  if (booted.value() == text(pend, "from_slot")) {
    // The previous slot runs again: the new one failed its self-test, used up its
    // trial boots, or the install never finished.
    const std::string phase = text(pend, "phase");
    std::string reason = text(pend, "reason");
    if (reason.empty()) {
      reason = phase == "installing" ? "the install was interrupted before it completed"
                                     : "the new slot did not come up (its trial boots ran out)";
    }
    const std::string outcome = phase == "installing" ? "interrupted" : "rolled_back";
    (void)store_.clear_setting(kPending);
    record("update.rollback", "failed: " + reason,
           "running " + booted.value() + " (" + booted_version() + ") again", kSystem, version);
    set_last_result(outcome, version, reason);
    set_state("idle", 0, "");
    return ok();
  }
  join();
  {
    std::lock_guard lock(mu_);
    busy_ = true;
    state_ = "self-test";
    percent_ = 0;
    message_ = "self-test of slot " + booted.value();
  }
  record("update.trial_boot", "ok",
         "booted " + booted.value() + " (" + booted_version() + ") for a trial", kSystem,
         booted_version());
  checkpoint("trial-boot");
  worker_ = std::thread([this, pend] { self_test_worker(pend); });
  return ok();
}

void UpdateService::self_test_worker(json::object pend) {
  const std::string version = booted_version();
  // A slot that already failed its self-test in this boot (controld restarted before the
  // fallback reboot happened) is not tested again: a second, lucky run must not commit it.
  Status tested = text(pend, "phase") == "self-test-failed"
                      ? Status(Error{"self_test", text(pend, "reason")})
                      : self_test_.run();
  if (tested) checkpoint("self-test");
  Status marked = tested ? backend_.mark("good", "booted") : tested;
  if (marked) {
    checkpoint("mark-good");
    set_state("idle", 0, "");
    post_([this, version] {
      (void)store_.clear_setting(kPending);
      record("update.self_test", "ok", "", kSystem, version);
      record("update.commit", "ok", "marked the booted slot good", kSystem, version);
      set_last_result("committed", version, "");
      std::lock_guard lock(mu_);
      busy_ = false;
    });
    return;
  }
  const std::string reason =
      tested ? "marking the slot good failed: " + marked.error().message : tested.error().message;
  // The reason must be stored before the reboot: the next boot reports it.
  auto stored = std::make_shared<std::promise<void>>();
  std::future<void> stored_done = stored->get_future();
  post_([this, pend, reason, version, stored]() mutable {
    pend["phase"] = "self-test-failed";
    pend["reason"] = reason;
    (void)store_.set_setting(kPending, json::serialize(pend));
    record("update.self_test", "failed: " + reason, "", kSystem, version);
    stored->set_value();
  });
  // Not forever: a control thread that is gone must not keep the fallback from happening.
  stored_done.wait_for(std::chrono::seconds(30));
  Status bad = backend_.mark("bad", "booted");
  set_state("rebooting", 0, "falling back to the previous slot");
  post_([this, version] {
    event("update.rebooting", "ok", "falling back to the previous slot", kSystem, version);
  });
  std::string reboot_outcome = "no reboot command; waiting for the watchdog or the operator";
  if (!options_.reboot_command.empty()) {
    auto r = run_command(options_.reboot_command, {}, std::chrono::seconds(120));
    reboot_outcome = r && r.value().exit_code == 0
                         ? "reboot requested"
                         : "reboot command failed: " + (r ? r.value().output : r.error().message);
  }
  post_([this, bad, reboot_outcome, version] {
    record("update.fallback", bad ? "ok" : "failed: " + bad.error().message,
           "marked the booted slot bad; " + reboot_outcome, kSystem, version);
    std::lock_guard lock(mu_);
    busy_ = false;
  });
}

Status UpdateService::mark_good(const store::Actor& actor) {
  if (busy()) return Error{"conflict", "an update step is running"};
  auto p = pending();
  if (!p) return p.error();
  if (!p.value() || text(*p.value(), "boot_id") == boot_id()) {
    record("update.mark_good", "refused: no trial boot awaits a commit", "", actor);
    return Error{"conflict", "no trial boot awaits a commit"};
  }
  auto booted = backend_.booted_slot();
  if (!booted) return booted.error();
  if (booted.value() == text(*p.value(), "from_slot")) {
    record("update.mark_good", "refused: the previous slot is running", "", actor);
    return Error{"conflict", "the previous slot is running, not the new one"};
  }
  if (Status s = backend_.mark("good", "booted"); !s) {
    record("update.mark_good", "failed: " + s.error().message, "", actor);
    return s;
  }
  const std::string version = booted_version();
  (void)store_.clear_setting(kPending);
  record("update.commit", "ok", "marked the booted slot good by hand", actor, version);
  set_last_result("committed", version, "");
  set_state("idle", 0, "");
  return ok();
}

Result<json::object> UpdateService::allow_downgrade(const std::string& version,
                                                    const std::string& reason,
                                                    const store::Actor& actor) {
  if (options_.downgrade_allowance_file.empty())
    return Error{"unavailable", "downgrade allowances are not configured on this appliance"};
  if (!valid_version(version)) {
    return Error{"invalid",
                 "must be a firmware version (starts with a digit; letters, digits, . + ~ -; at "
                 "most 64 characters)",
                 "/version"};
  }
  if (reason.empty() || reason.size() > 500)
    return Error{"invalid", "must say why (1 to 500 characters)", "/reason"};
  const auto now = std::chrono::system_clock::now();
  const auto expires = now + options_.downgrade_allowance_ttl;
  const int64_t expires_epoch =
      std::chrono::duration_cast<std::chrono::seconds>(expires.time_since_epoch()).count();
  // One allowance at a time: a new one replaces the last (atomically, by rename).
  const std::string tmp = options_.downgrade_allowance_file + ".tmp";
  Status written = write_file_synced(
      tmp, "version=" + version + "\nexpires=" + std::to_string(expires_epoch) + "\n");
  if (written && rename(tmp.c_str(), options_.downgrade_allowance_file.c_str()) != 0) {
    written = Error{
        "io", "cannot write " + options_.downgrade_allowance_file + ": " + std::strerror(errno)};
    unlink(tmp.c_str());
  }
  if (!written) {
    record("update.allow_downgrade", "failed: " + written.error().message, reason, actor, version);
    return written.error();
  }
  const std::string until = rfc3339(expires);
  record("update.allow_downgrade", "ok",
         "one install of " + version + " below the version floor, until " + until + ": " + reason,
         actor, version);
  return json::object{{"version", version}, {"expires_at", until}, {"single_use", true}};
}

json::object UpdateService::status() {
  json::object out;
  {
    std::lock_guard lock(mu_);
    out["state"] = state_;
    out["progress"] = json::object{{"percent", percent_}, {"message", message_}};
  }
  out["booted_version"] = booted_version();
  out["max_bundle_bytes"] = options_.max_bundle_bytes;
  if (auto b = backend_.booted_slot()) out["booted_slot"] = b.value();
  if (auto pr = backend_.primary_slot()) out["primary_slot"] = pr.value();
  if (auto slots = backend_.slots()) {
    json::array arr;
    for (const SlotInfo& s : slots.value()) {
      arr.push_back(json::object{{"name", s.name},
                                 {"bootname", s.bootname},
                                 {"state", s.state},
                                 {"boot_status", s.boot_status},
                                 {"bundle_version", s.bundle_version},
                                 {"installed_at", s.installed_at}});
    }
    out["slots"] = std::move(arr);
  } else {
    out["backend_error"] = slots.error().message;
  }
  auto p = pending();
  out["pending"] = p && p.value() ? json::value(*p.value()) : json::value(nullptr);
  auto last = store_.setting(kLastResult);
  json::value last_v = nullptr;
  if (last && last.value()) {
    json::error_code ec;
    last_v = json::parse(*last.value(), ec);
    if (ec) last_v = nullptr;
  }
  out["last_result"] = last_v;
  return out;
}

}  // namespace cordon::control::update
