// Flow keys from events, the clinical guardrail and learn-mode proposals, against a real
// store and lifecycle with a fake dataplane.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "control/observe/observer.h"
#include "control/policy/guardrail.h"
#include "control/policy/learn.h"
#include "control/policy/lifecycle.h"
#include "tests/unit/control/fake_dataplane_link.h"
#include "tests/unit/control/test_support.h"

namespace cordon::control {
namespace {
namespace json = boost::json;

using testing::example;
using testing::lab_without;

// An event as the dataplane writes it (dataplane/dpdk/control.cpp event_json).
json::object event(const std::string& kind, const std::string& ingress, const std::string& dir,
                   const std::string& src, int src_port, const std::string& dst, int dst_port,
                   int64_t version, const std::string& reason = "none",
                   const std::string& rule = "") {
  return json::object{{"kind", kind},
                      {"reason", reason},
                      {"device", "ct-1"},
                      {"rule", rule},
                      {"ingress", ingress},
                      {"dir", dir},
                      {"protocol", 6},
                      {"src_mac", ingress == "device" ? "02:c0:4d:00:00:10" : "02:00:00:00:00:99"},
                      {"src", src},
                      {"dst", dst},
                      {"src_port", src_port},
                      {"dst_port", dst_port},
                      {"policy_version", version}};
}

TEST(FlowKey, IsTheSameForEveryPacketOfAFlow) {
  // ct-1 (10.50.0.10) opened a connection to pacs:104.
  const auto a =
      observe::flow_key(event("drop", "device", "out", "10.50.0.10", 40000, "10.50.0.20", 104, 1));
  const auto b =
      observe::flow_key(event("drop", "network", "out", "10.50.0.20", 104, "10.50.0.10", 40000, 1));
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.peer, "10.50.0.20");
  EXPECT_EQ(a.port, 104);
  // An inbound one: the attacker to ct-1:445.
  const auto c =
      observe::flow_key(event("drop", "network", "in", "10.50.0.66", 5555, "10.50.0.10", 445, 1));
  const auto d =
      observe::flow_key(event("drop", "device", "in", "10.50.0.10", 445, "10.50.0.66", 5555, 1));
  EXPECT_EQ(c, d);
  EXPECT_EQ(c.peer, "10.50.0.66");
  EXPECT_EQ(c.port, 445);
  EXPECT_EQ(observe::describe(c), "tcp in from 10.50.0.66 port 445");
}

class GuardrailTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_.emplace(store::Store::open(dir_.str()).value());
    policy_.emplace(*store_, dataplane_);
    guardrail_.emplace(*store_, *policy_);
    observer_.emplace(*store_);
  }
  // Applies like the API does: the guardrail watches every operator apply.
  int64_t apply(const std::string& doc) {
    const int64_t before = policy_->active().value().version;
    const policy::Applied a = policy_->apply(doc, {"alice", "unix"}, "", std::nullopt).value();
    EXPECT_TRUE(guardrail_->watch(a.version, before, now_).ok());
    return a.version;
  }
  void ingest(const std::vector<json::object>& events) {
    std::vector<std::string> lines;
    for (const auto& e : events) lines.push_back(json::serialize(e));
    ingested_ = observer_->ingest(lines, now_).value();
  }
  std::optional<std::string> check() { return guardrail_->check(ingested_.drops, now_).value(); }
  void set(const std::string& settings) {
    ASSERT_TRUE(guardrail_
                    ->set_settings(policy::parse_guardrail(json::parse(settings)).value(),
                                   {"alice", "unix"})
                    .ok());
  }
  // ct-1 worked with pacs:104, ris:2575 and a second pacs port under version 1.
  void worked_before() {
    const int64_t v = policy_->active().value().version;
    ingest({event("flow-observed", "device", "out", "10.50.0.10", 40000, "10.50.0.20", 104, v,
                  "none", "store-to-pacs"),
            event("flow-observed", "device", "out", "10.50.0.10", 40001, "10.50.0.30", 2575, v,
                  "none", "results"),
            event("flow-observed", "device", "out", "10.50.0.10", 40002, "10.50.0.20", 11112, v,
                  "none", "x")});
  }

  testing::ScratchDir dir_{"cordon-guardrail"};
  testing::FakeDataplaneLink dataplane_;
  std::optional<store::Store> store_;
  std::optional<policy::PolicyService> policy_;
  std::optional<policy::Guardrail> guardrail_;
  std::optional<observe::Observer> observer_;
  observe::Ingested ingested_;
  int64_t now_ = 1'800'000'000'000;
};

TEST_F(GuardrailTest, AppObservationsAreStoredWithTheirFlowAndNotLogged) {
  apply(example("learn.json"));
  json::object ae =
      event("app-observed", "device", "out", "10.50.0.10", 40000, "10.50.0.20", 104, 2);
  ae["detail"] = "dicom-ae CT1\\PACS";
  // The acceptor's bytes come from the network side: still the same flow.
  json::object command =
      event("app-observed", "network", "out", "10.50.0.20", 104, "10.50.0.10", 40000, 2);
  command["detail"] = "dicom-command C-STORE\\1.2.840.10008.5.1.4.1.1.2";
  json::object junk = ae;
  junk["detail"] = "dicom-ae";
  ingest({ae, command, junk, ae});
  EXPECT_TRUE(ingested_.log.empty());
  const auto apps = store_->flow_apps("ct-1", 0).value();
  ASSERT_EQ(apps.size(), 4u);
  const store::FlowKey key{"ct-1", "out", 6, "10.50.0.20", 104};
  std::vector<std::pair<std::string, std::string>> fields;
  for (const store::FlowApp& a : apps) {
    EXPECT_EQ(a.key, key);
    fields.emplace_back(a.field, a.value);
  }
  EXPECT_EQ(fields, (std::vector<std::pair<std::string, std::string>>{
                        {"dicom.called_ae", "PACS"},
                        {"dicom.calling_ae", "CT1"},
                        {"dicom.command", "C-STORE"},
                        {"dicom.sop_class", "1.2.840.10008.5.1.4.1.1.2"}}));
}

TEST_F(GuardrailTest, FlowRecordsAreAggregatedNotLogged) {
  apply(example("lab.json"));
  worked_before();
  worked_before();
  EXPECT_TRUE(ingested_.log.empty());
  const auto flows = store_->flows("ct-1", 0).value();
  ASSERT_EQ(flows.size(), 3u);
  EXPECT_EQ(flows[0].count, 2);
  const auto hosts = store_->hosts().value();
  ASSERT_EQ(hosts.size(), 1u);
  EXPECT_EQ(hosts[0].mac, "02:c0:4d:00:00:10");
  EXPECT_EQ(hosts[0].device, "ct-1");
  EXPECT_EQ(hosts[0].protocols, "tcp");
  EXPECT_EQ(hosts[0].peers, "10.50.0.20,10.50.0.30");
}

TEST_F(GuardrailTest, DropsOfFlowsThatWorkedRevertTheApplyAndRaiseAnAlert) {
  set(R"({"threshold":2})");
  const int64_t good = apply(example("lab.json"));
  worked_before();
  const std::string good_doc = policy_->active().value().document;
  const int64_t bad = apply(lab_without("store-to-pacs"));
  ingest({event("drop", "device", "out", "10.50.0.10", 40100, "10.50.0.20", 104, bad,
                "no-matching-rule")});
  EXPECT_EQ(check(), std::nullopt);  // one flow: under the threshold
  ingest({event("drop", "device", "out", "10.50.0.10", 40101, "10.50.0.20", 104, bad,
                "no-matching-rule"),  // same flow again
          event("drop", "device", "out", "10.50.0.10", 40102, "10.50.0.20", 11112, bad,
                "no-matching-rule")});
  const std::optional<std::string> alert = check();
  ASSERT_TRUE(alert.has_value());
  const json::object a = json::parse(*alert).as_object();
  EXPECT_EQ(a.at("kind").as_string(), "guardrail-revert");
  EXPECT_EQ(a.at("device").as_string(), "ct-1");
  const std::string detail(a.at("detail").as_string());
  EXPECT_NE(detail.find("tcp out to 10.50.0.20 port 104"), std::string::npos) << detail;
  EXPECT_NE(detail.find("port 11112"), std::string::npos) << detail;
  EXPECT_NE(detail.find("reverted to version " + std::to_string(good)), std::string::npos)
      << detail;
  EXPECT_EQ(policy_->active().value().document, good_doc);
  EXPECT_EQ(dataplane_.enforced_document, good_doc);
  EXPECT_EQ(store_->audit_entries(0, 100).value().back().record.action, "policy.revert");
  EXPECT_EQ(check(), std::nullopt);  // the watch ended with the revert
}

TEST_F(GuardrailTest, ARestartDuringTheWindowKeepsWhatWasCounted) {
  set(R"({"threshold":2})");
  const int64_t good = apply(example("lab.json"));
  worked_before();
  const int64_t bad = apply(lab_without("store-to-pacs"));
  ingest({event("drop", "device", "out", "10.50.0.10", 40100, "10.50.0.20", 104, bad,
                "no-matching-rule")});
  EXPECT_EQ(check(), std::nullopt);  // one of two
  // controld restarts: a new Guardrail over the same store.
  guardrail_.emplace(*store_, *policy_);
  ingest({event("drop", "device", "out", "10.50.0.10", 40102, "10.50.0.20", 11112, bad,
                "no-matching-rule")});
  const std::optional<std::string> alert = check();
  ASSERT_TRUE(alert.has_value());
  const std::string detail(json::parse(*alert).as_object().at("detail").as_string());
  EXPECT_NE(detail.find("port 104"), std::string::npos) << detail;
  EXPECT_NE(detail.find("port 11112"), std::string::npos) << detail;
  EXPECT_NE(detail.find("reverted to version " + std::to_string(good)), std::string::npos);
}

TEST_F(GuardrailTest, ANewApplyStartsTheCountAgain) {
  set(R"({"threshold":2})");
  apply(example("lab.json"));
  worked_before();
  int64_t bad = apply(lab_without("store-to-pacs"));
  ingest({event("drop", "device", "out", "10.50.0.10", 40100, "10.50.0.20", 104, bad,
                "no-matching-rule")});
  EXPECT_EQ(check(), std::nullopt);
  bad = apply(lab_without("store-to-pacs"));  // the operator applies again: a new watch
  ingest({event("drop", "device", "out", "10.50.0.10", 40102, "10.50.0.20", 11112, bad,
                "no-matching-rule")});
  EXPECT_EQ(check(), std::nullopt);  // one of two for this version
  EXPECT_EQ(policy_->active().value().version, bad);
}

TEST_F(GuardrailTest, DropsOfFlowsNeverSeenDoNotCount) {
  set(R"({"threshold":1})");
  apply(example("lab.json"));
  worked_before();
  const int64_t bad = apply(lab_without("ntp"));
  ingest({event("drop", "network", "in", "10.50.0.66", 5555, "10.50.0.10", 445, bad,
                "no-matching-rule")});
  EXPECT_EQ(check(), std::nullopt);
  EXPECT_EQ(policy_->active().value().version, bad);
}

TEST_F(GuardrailTest, FlowsSeenLongerAgoThanTheLookbackDoNotCount) {
  set(R"({"threshold":1,"lookback_hours":1})");
  apply(example("lab.json"));
  worked_before();
  now_ += 2 * 3600 * 1000;
  const int64_t bad = apply(lab_without("store-to-pacs"));
  ingest({event("drop", "device", "out", "10.50.0.10", 40100, "10.50.0.20", 104, bad,
                "no-matching-rule")});
  EXPECT_EQ(check(), std::nullopt);
}

TEST_F(GuardrailTest, OffForADeviceOrAfterTheWindow) {
  set(R"({"threshold":1,"devices":{"ct-1":false}})");
  apply(example("lab.json"));
  worked_before();
  int64_t bad = apply(lab_without("store-to-pacs"));
  ingest({event("drop", "device", "out", "10.50.0.10", 40100, "10.50.0.20", 104, bad,
                "no-matching-rule")});
  EXPECT_EQ(check(), std::nullopt);

  set(R"({"threshold":1,"window_seconds":60})");
  apply(example("lab.json"));
  bad = apply(lab_without("store-to-pacs"));
  now_ += 61 * 1000;
  ingest({event("drop", "device", "out", "10.50.0.10", 40100, "10.50.0.20", 104, bad,
                "no-matching-rule")});
  EXPECT_EQ(check(), std::nullopt);
  EXPECT_EQ(policy_->active().value().version, bad);
}

TEST_F(GuardrailTest, MonitorModeDevicesAreNotGuardedByDefault) {
  set(R"({"threshold":1})");
  apply(example("lab.json"));
  worked_before();
  json::value monitor = json::parse(lab_without("store-to-pacs"));
  monitor.at("devices").as_array()[0].as_object()["mode"] = "monitor";
  const int64_t v = apply(json::serialize(monitor));
  ingest({event("drop", "device", "out", "10.50.0.10", 40100, "10.50.0.20", 104, v,
                "no-matching-rule")});
  EXPECT_EQ(check(), std::nullopt);
}

TEST(GuardrailSettings, BadSettingsAreRefusedWithTheirPath) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"threshold":0})", "/threshold"},
      {R"({"threshold":"3"})", "/threshold"},
      {R"({"window_seconds":5})", "/window_seconds"},
      {R"({"lookback_hours":100000})", "/lookback_hours"},
      {R"({"devices":{"ct-1":"yes"}})", "/devices/ct-1"},
      {R"({"devices":[]})", "/devices"},
      {R"({"enforce_mode_default":1})", "/enforce_mode_default"},
      {R"({"thresold":3})", "/thresold"},
  };
  for (const auto& [text, path] : cases) {
    Result<policy::GuardrailSettings> s = policy::parse_guardrail(json::parse(text));
    ASSERT_FALSE(s.ok()) << text;
    EXPECT_EQ(s.error().path, path) << text;
  }
  EXPECT_FALSE(policy::parse_guardrail(json::parse("[]")).ok());
  const auto good =
      policy::parse_guardrail(json::parse(R"({"threshold":5,"devices":{"ct-1":true}})")).value();
  EXPECT_EQ(good.threshold, 5);
  EXPECT_TRUE(good.devices.at("ct-1"));
}

TEST(LearnProposal, ProposesMinimalRulesGroupingPeers) {
  const std::string active = policy::validate_policy(example("lab.json")).value();
  std::vector<store::FlowRecord> flows;
  auto add = [&](const std::string& dir, int64_t proto, const std::string& peer, int64_t port,
                 const std::string& rule = "") {
    flows.push_back(store::FlowRecord{{"ct-1", dir, proto, peer, port}, rule, "", "", 0, 1});
  };
  for (int host = 1; host <= 5; ++host)
    add("out", 6, "10.60.7." + std::to_string(host), 443);  // -> one /24
  add("out", 17, "10.50.0.1", 514);                         // -> a host rule
  add("in", 1, "10.50.0.40", 0);                            // icmp, no port
  add("out", 6, "10.50.0.20", 104, "store-to-pacs");        // already allowed: not proposed
  const policy::Proposal p = policy::propose_rules(active, "ct-1", flows).value();
  EXPECT_EQ(p.rules_added, 3u);
  const std::string text = policy::diff_text(p.diff);
  EXPECT_NE(text.find("10.60.7.0/24"), std::string::npos) << text;
  EXPECT_NE(text.find("10.50.0.1/32"), std::string::npos) << text;
  EXPECT_NE(text.find("10.50.0.40/32"), std::string::npos) << text;
  EXPECT_EQ(text.find("10.60.7.3"), std::string::npos) << text;
  // The candidate is a valid policy in its own right.
  EXPECT_TRUE(policy::validate_policy(p.document).ok());
  EXPECT_EQ(policy::propose_rules(active, "nope", flows).error().code, "not_found");
}

TEST(LearnProposal, TcpRulesCarryTheDicomAndHl7TheirConnectionsUsed) {
  const std::string active = policy::validate_policy(example("lab.json")).value();
  const store::FlowKey archive{"ct-1", "out", 6, "10.70.0.5", 11112};
  const store::FlowKey ris{"ct-1", "out", 6, "10.70.0.6", 2575};
  const store::FlowKey web{"ct-1", "out", 6, "10.70.0.7", 443};
  const std::vector<store::FlowRecord> flows{
      {archive, "", "", "", 0, 3}, {ris, "", "", "", 0, 2}, {web, "", "", "", 0, 1}};
  const std::vector<store::FlowApp> apps{
      {archive, "dicom.calling_ae", "CT1"},
      {archive, "dicom.called_ae", "ARCHIVE"},
      {archive, "dicom.command", "C-STORE"},
      {archive, "dicom.command", "C-ECHO"},
      {archive, "dicom.sop_class", "1.2.840.10008.5.1.4.1.1.2"},
      {archive, "dicom.sop_class", "1.2.840.10008.1.1"},  // Verification: goes with C-ECHO
      {ris, "hl7.message_type", "ORU^R01"},
      {{"ct-1", "out", 6, "10.70.0.99", 11112}, "dicom.calling_ae", "OTHER"},  // no such flow
  };
  const policy::Proposal p = policy::propose_rules(active, "ct-1", flows, apps).value();
  EXPECT_EQ(p.rules_added, 3u);
  const json::value doc = json::parse(p.document);
  std::map<std::string, json::value> learned;
  for (const json::value& r : doc.at("devices").at(0).at("rules").as_array())
    learned[json::value_to<std::string>(r.at("peer"))] = r;
  EXPECT_EQ(learned["10.70.0.5/32"].at("app"),
            json::parse(R"({"dicom":{"calling_ae":["CT1"],"called_ae":["ARCHIVE"],
                            "commands":["C-ECHO","C-STORE"],
                            "sop_classes":["1.2.840.10008.5.1.4.1.1.2"]}})"));
  EXPECT_EQ(learned["10.70.0.6/32"].at("app"),
            json::parse(R"({"hl7":{"message_types":["ORU^R01"]}})"));
  EXPECT_FALSE(learned["10.70.0.7/32"].as_object().contains("app"));
}

TEST(LearnProposal, AValueNoPolicyCanHoldCostsTheRuleItsAppNotTheProposal) {
  const std::string active = policy::validate_policy(example("lab.json")).value();
  const store::FlowKey archive{"ct-1", "out", 6, "10.70.0.5", 104};
  const std::vector<store::FlowRecord> flows{{archive, "", "", "", 0, 1}};
  const std::vector<store::FlowApp> apps{{archive, "dicom.calling_ae", "A\x01B"},
                                         {archive, "dicom.command", "C-STORE"}};
  const policy::Proposal p = policy::propose_rules(active, "ct-1", flows, apps).value();
  EXPECT_EQ(p.rules_added, 1u);
  const json::value doc = json::parse(p.document);
  for (const json::value& r : doc.at("devices").at(0).at("rules").as_array()) {
    if (r.at("peer") == "10.70.0.5/32") {
      EXPECT_FALSE(r.as_object().contains("app")) << r;
    }
  }
}

TEST(Observer, AppObservationsAreRecordedWithTheirFlowNotLogged) {
  EXPECT_EQ(observe::app_fields("dicom-ae CT1\\PACS"),
            (std::vector<std::pair<std::string, std::string>>{{"dicom.calling_ae", "CT1"},
                                                              {"dicom.called_ae", "PACS"}}));
  EXPECT_EQ(observe::app_fields("hl7-message ORU^R01"),
            (std::vector<std::pair<std::string, std::string>>{{"hl7.message_type", "ORU^R01"}}));
  EXPECT_TRUE(observe::app_fields("dicom-ae no-separator").empty());
  EXPECT_TRUE(observe::app_fields("something else").empty());
  EXPECT_TRUE(observe::app_fields("").empty());
}

}  // namespace
}  // namespace cordon::control
