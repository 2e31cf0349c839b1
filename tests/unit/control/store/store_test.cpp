#include "control/store/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <string>

namespace cordon::control::store {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cordon-store-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Store open() {
    Result<Store> s = Store::open(dir_.string());
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return std::move(s).value();
  }

  // Raw SQL on the database file, as an attacker with file access would do.
  void raw(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "controld.db").c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    const std::string message = err ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << message;
  }
  int raw_rc(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open((dir_ / "controld.db").c_str(), &db), SQLITE_OK);
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
    sqlite3_close(db);
    return rc;
  }

  AuditRecord record(const std::string& action) {
    return AuditRecord{{"uid:0(root)", "unix"}, action, "policy", "ok", "", "", "detail"};
  }

  std::filesystem::path dir_;
};

TEST_F(StoreTest, VersionsGoFromPendingToActiveAndSurviveReopening) {
  {
    Store s = open();
    Result<int64_t> v = s.begin_version(R"({"a":1})", {"alice", "unix"}, "first");
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v.value(), 1);
    EXPECT_EQ(s.pending_version().value(), std::optional<int64_t>(1));
    EXPECT_EQ(s.active_version().value(), std::nullopt);
    ASSERT_TRUE(s.commit_version(1, record("policy.apply")).ok());
    EXPECT_EQ(s.pending_version().value(), std::nullopt);
    EXPECT_EQ(s.active_version().value(), std::optional<int64_t>(1));
  }
  Store s = open();  // a restart: everything acknowledged is still there
  EXPECT_EQ(s.active_version().value(), std::optional<int64_t>(1));
  const auto row = s.version(1).value();
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->author, "alice");
  EXPECT_EQ(row->comment, "first");
  EXPECT_EQ(row->status, "applied");
  EXPECT_EQ(row->sha256, sha256_hex(R"({"a":1})"));
}

TEST_F(StoreTest, VersionNumbersStartAboveAMinimumAndOnlyGrow) {
  Store s = open();
  EXPECT_EQ(s.begin_version("{}", {"a", "u"}, "", 7).value(), 7);
  ASSERT_TRUE(s.abandon_version(7, record("policy.apply")).ok());
  EXPECT_EQ(s.begin_version("{}", {"a", "u"}, "", 1).value(), 8);
  const auto history = s.history(10).value();
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].version, 8);  // newest first
  EXPECT_EQ(history[1].status, "abandoned");
}

TEST_F(StoreTest, AuditChainVerifiesWhenUntouched) {
  Store s = open();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(s.audit(record("a" + std::to_string(i))).ok());
  const AuditVerification v = s.verify_audit().value();
  EXPECT_TRUE(v.intact) << v.problem;
  EXPECT_EQ(v.entries, 5);
}

TEST_F(StoreTest, AuditLogRefusesUpdateAndDeleteThroughSql) {
  {
    Store s = open();
    ASSERT_TRUE(s.audit(record("x")).ok());
  }
  EXPECT_NE(raw_rc("UPDATE audit SET detail = 'changed'"), SQLITE_OK);
  EXPECT_NE(raw_rc("DELETE FROM audit"), SQLITE_OK);
}

TEST_F(StoreTest, AuditVerifyFindsAnAlteredEntry) {
  {
    Store s = open();
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(s.audit(record("a")).ok());
  }
  raw("DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'mallory' WHERE seq = 2");
  Store s = open();
  const AuditVerification v = s.verify_audit().value();
  EXPECT_FALSE(v.intact);
  EXPECT_EQ(v.first_bad_seq, 2);
  EXPECT_NE(v.problem.find("altered"), std::string::npos);
}

TEST_F(StoreTest, AuditVerifyFindsAnEntryRemovedFromTheMiddle) {
  {
    Store s = open();
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(s.audit(record("a")).ok());
  }
  raw("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 3");
  Store s = open();
  const AuditVerification v = s.verify_audit().value();
  EXPECT_FALSE(v.intact);
  EXPECT_EQ(v.first_bad_seq, 3);
  EXPECT_NE(v.problem.find("missing"), std::string::npos);
}

TEST_F(StoreTest, AuditVerifyFindsEntriesRemovedFromTheEnd) {
  {
    Store s = open();
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(s.audit(record("a")).ok());
  }
  raw("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 4");
  Store s = open();
  const AuditVerification v = s.verify_audit().value();
  EXPECT_FALSE(v.intact);
  EXPECT_NE(v.problem.find("end"), std::string::npos);
}

TEST_F(StoreTest, AuditVerifyFindsARehashedForgery) {
  // Rewriting an entry and its own hash still breaks the link from the next entry.
  {
    Store s = open();
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(s.audit(record("a")).ok());
  }
  raw("DROP TRIGGER audit_no_update; UPDATE audit SET hash = 'forged' WHERE seq = 1");
  Store s = open();
  const AuditVerification v = s.verify_audit().value();
  EXPECT_FALSE(v.intact);
  EXPECT_LE(v.first_bad_seq, 2);
}

TEST_F(StoreTest, EventsAreKeptUpToTheRetentionLimit) {
  Store s = open();
  s.set_event_retention(3);
  ASSERT_TRUE(s.add_events({R"({"n":1})", R"({"n":2})"}).ok());
  ASSERT_TRUE(s.add_events({R"({"n":3})", R"({"n":4})", R"({"n":5})"}).ok());
  const auto events = s.events(0, 100).value();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events.front().json, R"({"n":3})");
  EXPECT_EQ(s.last_event_id().value(), 5);
  EXPECT_EQ(s.events(4, 100).value().size(), 1u);
}

TEST_F(StoreTest, VendorSessionPortsSurviveReopeningAndADamagedRowIsReported) {
  {
    Store s = open();
    VendorSession v;
    v.public_key = "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd28=";
    v.device = "ct-1";
    v.device_ip = "10.50.0.10";
    v.ports = {104, 443, 65535};
    v.tunnel_address = "10.99.0.2";
    v.expires_ms = 4'000'000'000'000;
    ASSERT_TRUE(s.add_vendor_session(v, record("vendor.create")).ok());
  }
  {
    Store s = open();
    const std::vector<VendorSession> open_sessions = s.open_vendor_sessions().value();
    ASSERT_EQ(open_sessions.size(), 1u);
    EXPECT_EQ(open_sessions[0].ports, (std::vector<uint16_t>{104, 443, 65535}));
  }
  // A row whose ports are not ports is an error naming the session, not a crash or a guess.
  for (const char* damaged : {"104,,443", "104,x", "", "0", "65536", "104,", " 104", "-1"}) {
    raw(std::string("UPDATE vendor_sessions SET ports = '") + damaged + "' WHERE id = 1");
    Store s = open();
    Result<std::vector<VendorSession>> r = s.open_vendor_sessions();
    ASSERT_FALSE(r.ok()) << damaged;
    EXPECT_EQ(r.error().code, "io");
    EXPECT_NE(r.error().message.find("vendor session 1"), std::string::npos) << r.error().message;
  }
}

TEST_F(StoreTest, ANewerSchemaIsRefusedNotDamaged) {
  { Store s = open(); }
  raw("INSERT INTO schema_version (version) VALUES (99)");
  Result<Store> s = Store::open(dir_.string());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("newer"), std::string::npos);
}

TEST_F(StoreTest, AnUnreadableStateDirIsAClearError) {
  std::filesystem::create_directories(dir_);
  std::filesystem::create_directory(dir_ / "controld.db");  // a directory where the file goes
  Result<Store> s = Store::open(dir_.string());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "io");
}

}  // namespace
}  // namespace cordon::control::store
