#include "control/policy/lifecycle.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/unit/control/fake_dataplane_link.h"
#include "tests/unit/control/test_support.h"

namespace cordon::control::policy {
namespace {
namespace json = boost::json;

using testing::example;
using testing::lab_without;

class LifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_.emplace(store::Store::open(dir_.str()).value());
    service_.emplace(*store_, dataplane_);
  }

  int64_t active_version() { return service_->active().value().version; }
  size_t audit_count() { return store_->audit_entries(0, 1000).value().size(); }

  testing::ScratchDir dir_{"cordon-lifecycle"};
  testing::FakeDataplaneLink dataplane_;
  std::optional<store::Store> store_;
  std::optional<PolicyService> service_;
  const store::Actor alice_{"alice", "unix"};
};

TEST_F(LifecycleTest, ApplyInstallsRecordsAndAudits) {
  Result<Applied> a = service_->apply(example("lab.json"), alice_, "go live", std::nullopt);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a.value().version, 1);
  EXPECT_EQ(dataplane_.enforced_version, 1);
  EXPECT_EQ(active_version(), 1);
  // What is stored and pushed is the canonical form, identical in both places.
  EXPECT_EQ(dataplane_.enforced_document, service_->active().value().document);
  const auto audit = store_->audit_entries(0, 10).value();
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].record.action, "policy.apply");
  EXPECT_EQ(audit[0].record.actor.name, "alice");
  EXPECT_EQ(audit[0].record.after_hash, a.value().sha256);
}

TEST_F(LifecycleTest, AnInvalidDocumentChangesNothingAndListsEveryError) {
  ASSERT_TRUE(service_->apply(example("lab.json"), alice_, "", std::nullopt).ok());
  const int calls = dataplane_.apply_calls;
  json::value broken = json::parse(example("lab.json"));
  broken.at("devices").as_array()[0].as_object()["mac"] = "02:c0:4d:00:00";
  broken.at("devices").as_array()[0].at("rules").as_array()[0].as_object()["peer"] =
      "10.50.0.300/32";
  Result<Applied> a = service_->apply(json::serialize(broken), alice_, "", std::nullopt);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code, "invalid");
  ASSERT_GE(a.error().details.size(), 2u);
  std::string paths;
  for (const Error& e : a.error().details) paths += e.path + " ";
  EXPECT_NE(paths.find("devices[0].mac"), std::string::npos) << paths;
  EXPECT_NE(paths.find("devices[0].rules[0].peer"), std::string::npos) << paths;
  EXPECT_EQ(dataplane_.apply_calls, calls);  // never reached the dataplane
  EXPECT_EQ(active_version(), 1);
  EXPECT_EQ(store_->history(10).value().size(), 1u);  // no version recorded
  const auto audit = store_->audit_entries(0, 10).value();
  EXPECT_EQ(audit.back().record.outcome.rfind("refused", 0), 0u);  // the attempt is audited
}

TEST_F(LifecycleTest, NotJsonAtAllIsRefused) {
  Result<Applied> a = service_->apply("{not json", alice_, "", std::nullopt);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code, "invalid");
  EXPECT_EQ(active_version(), 0);
}

TEST_F(LifecycleTest, ADataplaneFailureLeavesTheActiveVersion) {
  ASSERT_TRUE(service_->apply(example("lab.json"), alice_, "", std::nullopt).ok());
  dataplane_.refuse = true;
  Result<Applied> a = service_->apply(lab_without("ntp"), alice_, "", std::nullopt);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().message.find("nothing changed"), std::string::npos);
  EXPECT_EQ(active_version(), 1);
  EXPECT_EQ(dataplane_.enforced_version, 1);
  EXPECT_EQ(store_->version(2).value()->status, "abandoned");
  EXPECT_EQ(store_->pending_version().value(), std::nullopt);
}

TEST_F(LifecycleTest, AnUnreachableDataplaneRecordsNothing) {
  dataplane_.unreachable = true;
  Result<Applied> a = service_->apply(example("lab.json"), alice_, "", std::nullopt);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code, "dataplane");
  EXPECT_EQ(store_->history(10).value().size(), 0u);
}

TEST_F(LifecycleTest, RollbackReappliesAnOldDocumentAsANewVersion) {
  ASSERT_TRUE(service_->apply(example("lab.json"), alice_, "", std::nullopt).ok());
  const std::string v1 = service_->active().value().document;
  ASSERT_TRUE(service_->apply(lab_without("ntp"), alice_, "", std::nullopt).ok());
  Result<Applied> back = service_->rollback(1, alice_, "");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back.value().version, 3);
  EXPECT_EQ(service_->active().value().document, v1);
  EXPECT_EQ(dataplane_.enforced_document, v1);
  EXPECT_EQ(store_->audit_entries(0, 10).value().back().record.action, "policy.rollback");
}

TEST_F(LifecycleTest, RollbackToAnUnknownOrAbandonedVersionIsRefused) {
  ASSERT_TRUE(service_->apply(example("lab.json"), alice_, "", std::nullopt).ok());
  EXPECT_EQ(service_->rollback(42, alice_, "").error().code, "not_found");
  dataplane_.refuse = true;
  ASSERT_FALSE(service_->apply(lab_without("ntp"), alice_, "", std::nullopt).ok());
  dataplane_.refuse = false;
  EXPECT_EQ(service_->rollback(2, alice_, "").error().code, "not_found");
  EXPECT_EQ(active_version(), 1);
}

TEST_F(LifecycleTest, AnUnconfirmedApplyRevertsAfterItsDeadline) {
  ASSERT_TRUE(service_->apply(example("lab.json"), alice_, "", std::nullopt).ok());
  const std::string v1 = service_->active().value().document;
  Result<Applied> a = service_->apply(lab_without("ntp"), alice_, "", 30);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(a.value().confirm_by.has_value());
  // Before the deadline nothing happens.
  EXPECT_EQ(service_->revert_if_unconfirmed(Clock::now()).value(), std::nullopt);
  EXPECT_EQ(active_version(), 2);
  const auto reverted =
      service_->revert_if_unconfirmed(*a.value().confirm_by + std::chrono::seconds(1));
  ASSERT_TRUE(reverted.ok());
  EXPECT_EQ(reverted.value(), std::optional<int64_t>(1));
  EXPECT_EQ(service_->active().value().document, v1);
  EXPECT_EQ(dataplane_.enforced_document, v1);
  EXPECT_EQ(service_->confirm_deadline(), std::nullopt);
}

TEST_F(LifecycleTest, AConfirmedApplyStays) {
  ASSERT_TRUE(service_->apply(example("lab.json"), alice_, "", std::nullopt).ok());
  Result<Applied> a = service_->apply(lab_without("ntp"), alice_, "", 30);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(service_->confirm(alice_).ok());
  EXPECT_EQ(service_->revert_if_unconfirmed(*a.value().confirm_by + std::chrono::hours(1)).value(),
            std::nullopt);
  EXPECT_EQ(active_version(), 2);
  EXPECT_EQ(service_->confirm(alice_).error().code, "conflict");  // nothing left to confirm
}

TEST_F(LifecycleTest, TheConfirmationDeadlineSurvivesARestart) {
  ASSERT_TRUE(service_->apply(example("lab.json"), alice_, "", std::nullopt).ok());
  Result<Applied> a = service_->apply(lab_without("ntp"), alice_, "", 30);
  ASSERT_TRUE(a.ok());
  service_.reset();
  store_.reset();
  store_.emplace(store::Store::open(dir_.str()).value());
  service_.emplace(*store_, dataplane_);
  ASSERT_TRUE(service_->recover().ok());
  EXPECT_EQ(
      service_->revert_if_unconfirmed(*a.value().confirm_by + std::chrono::seconds(1)).value(),
      std::optional<int64_t>(1));
}

TEST_F(LifecycleTest, ConfirmWindowOutOfRangeIsRefused) {
  Result<Applied> a = service_->apply(example("lab.json"), alice_, "", 5);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().path, "/confirm_within");
  EXPECT_EQ(dataplane_.apply_calls, 0);
}

// Crash between recording the pending version and the dataplane's acknowledgement:
// the restart asks the dataplane which one it has.
TEST_F(LifecycleTest, RecoveryCommitsAPendingVersionTheDataplaneInstalled) {
  ASSERT_TRUE(service_->apply(example("lab.json"), alice_, "", std::nullopt).ok());
  const std::string doc = lab_without("ntp");
  const int64_t v = store_->begin_version(doc, alice_, "", 2).value();  // crashed here...
  ASSERT_TRUE(dataplane_.apply(doc, v).ok());                           // ...after the push
  ASSERT_TRUE(service_->recover().ok());
  EXPECT_EQ(active_version(), v);
  EXPECT_EQ(store_->pending_version().value(), std::nullopt);
}

TEST_F(LifecycleTest, RecoveryAbandonsAPendingVersionTheDataplaneNeverGot) {
  ASSERT_TRUE(service_->apply(example("lab.json"), alice_, "", std::nullopt).ok());
  const int64_t v = store_->begin_version(lab_without("ntp"), alice_, "", 2).value();
  ASSERT_TRUE(service_->recover().ok());
  EXPECT_EQ(active_version(), 1);
  EXPECT_EQ(store_->version(v).value()->status, "abandoned");
  EXPECT_EQ(dataplane_.enforced_version, 1);
}

TEST_F(LifecycleTest, ReconcileRepushesAfterTheDataplaneLostItsState) {
  ASSERT_TRUE(service_->apply(example("lab.json"), alice_, "", std::nullopt).ok());
  dataplane_.restart_empty();
  ASSERT_TRUE(service_->reconcile().ok());
  EXPECT_EQ(dataplane_.enforced_version, 1);
  EXPECT_EQ(dataplane_.enforced_document, service_->active().value().document);
}

TEST_F(LifecycleTest, VersionsStayAboveWhatTheDataplaneAlreadyHas) {
  ASSERT_TRUE(dataplane_.apply(example("lab.json"), 5).ok());  // e.g. its start-up policy
  Result<Applied> a = service_->apply(example("lab.json"), alice_, "", std::nullopt);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a.value().version, 6);
}

TEST(PolicyDiff, NamesChangedRulesPerDevice) {
  const std::string from = validate_policy(example("lab.json")).value();
  const std::string to = validate_policy(lab_without("ntp")).value();
  const json::value diff = diff_documents(from, to);
  const json::object& device = diff.at("devices").as_array()[0].as_object();
  EXPECT_EQ(device.at("device").as_string(), "ct-1");
  EXPECT_EQ(device.at("change").as_string(), "changed");
  const json::array& removed = device.at("rules").at("removed").as_array();
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].at("name").as_string(), "ntp");
  const std::string text = diff_text(diff);
  EXPECT_NE(text.find("device ct-1: changed"), std::string::npos) << text;
  EXPECT_NE(text.find("- rule ntp"), std::string::npos) << text;
  EXPECT_EQ(diff_text(diff_documents(from, from)), "no differences\n");
}

TEST(PolicyDiff, AddedAndRemovedDevices) {
  const std::string a = validate_policy(example("lab.json")).value();
  const std::string b = validate_policy(example("multi-device.json")).value();
  const std::string text = diff_text(diff_documents(a, b));
  EXPECT_NE(text.find("added"), std::string::npos) << text;
}

}  // namespace
}  // namespace cordon::control::policy

namespace cordon::control::policy {
namespace {

// Every example we ship must be accepted by an apply, not only by the JSON Schema
// (multi-device.json once had an unbounded regex that only the compiler refuses).
TEST(ShippedExamples, EveryExamplePolicyPassesApplyValidation) {
  size_t checked = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(CORDON_SOURCE_DIR) + "/examples/policies")) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path());
    std::ostringstream text;
    text << in.rdbuf();
    Result<std::string> v = validate_policy(text.str());
    EXPECT_TRUE(v.ok()) << entry.path() << ": " << (v.ok() ? "" : v.error().message);
    ++checked;
  }
  EXPECT_GE(checked, 5u);
}

}  // namespace
}  // namespace cordon::control::policy
