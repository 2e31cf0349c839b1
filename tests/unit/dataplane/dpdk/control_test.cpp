// The dataplane's control protocol and policy persistence, without sockets or EAL.
#include "dataplane/dpdk/control.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>

namespace cordon::dataplane {
namespace {
namespace json = boost::json;

constexpr const char* kPolicy = R"({"schema":"cordon.policy/v1","devices":[
  {"name":"ct-1","mac":"02:c0:4d:00:00:10","ip":["10.50.0.10"],
   "rules":[{"name":"store","dir":"out","proto":"tcp","peer":"10.50.0.20/32","dport":104}]}]})";

class ControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cordon-control-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  json::object call(ControlHandler& h, const json::object& request) {
    return json::parse(h.handle(json::serialize(request))).as_object();
  }

  std::filesystem::path dir_;
  engine::EngineConfig config_;
};

TEST_F(ControlTest, ApplyGetAndVersions) {
  engine::Engine engine(config_);
  PolicyState state(engine, dir_.string());
  ControlHandler h(engine, state);

  json::object r = call(h, {{"cmd", "get"}});
  EXPECT_EQ(r.at("version").to_number<uint64_t>(), 0u);
  EXPECT_TRUE(r.at("policy").is_null());

  r = call(h, {{"cmd", "apply"}, {"document", kPolicy}});
  ASSERT_TRUE(r.at("ok").as_bool()) << json::serialize(r);
  EXPECT_EQ(r.at("version").to_number<uint64_t>(), 1u);
  EXPECT_EQ(engine.active()->version(), 1u);

  r = call(h, {{"cmd", "apply"}, {"document", kPolicy}, {"version", 7}});
  EXPECT_EQ(r.at("version").to_number<uint64_t>(), 7u);
  // Versions only go forward.
  r = call(h, {{"cmd", "apply"}, {"document", kPolicy}, {"version", 5}});
  EXPECT_FALSE(r.at("ok").as_bool());
  EXPECT_EQ(engine.active()->version(), 7u);

  r = call(h, {{"cmd", "get"}});
  EXPECT_EQ(r.at("version").to_number<uint64_t>(), 7u);
  EXPECT_EQ(r.at("policy").at("devices").as_array()[0].at("name").as_string(), "ct-1");
}

TEST_F(ControlTest, InvalidPolicyChangesNothingAndListsEveryError) {
  engine::Engine engine(config_);
  PolicyState state(engine, dir_.string());
  ControlHandler h(engine, state);
  ASSERT_TRUE(call(h, {{"cmd", "apply"}, {"document", kPolicy}}).at("ok").as_bool());
  const std::string persisted_before = [&] {
    std::ifstream in(dir_ / "policy.json");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();

  const json::object r =
      call(h, {{"cmd", "apply"}, {"document", R"({"schema":"cordon.policy/v1","devices":[
      {"name":"ct-1","mac":"nope","ip":["10.50.0.300"]}]})"}});
  EXPECT_FALSE(r.at("ok").as_bool());
  const json::array& errors = r.at("errors").as_array();
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].at("path").as_string(), "devices[0].mac");
  EXPECT_EQ(errors[1].at("path").as_string(), "devices[0].ip[0]");
  EXPECT_EQ(engine.active()->version(), 1u);
  std::ifstream in(dir_ / "policy.json");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), persisted_before);
}

TEST_F(ControlTest, PersistedPolicyIsRestoredByTheNextStart) {
  {
    engine::Engine engine(config_);
    PolicyState state(engine, dir_.string());
    ASSERT_TRUE(state.apply(kPolicy, 3).ok);
  }
  engine::Engine engine(config_);
  PolicyState state(engine, dir_.string());
  EXPECT_FALSE(state.restore().has_value());
  ASSERT_TRUE(state.has_policy());
  EXPECT_EQ(state.version(), 3u);
  EXPECT_EQ(engine.active()->version(), 3u);
  EXPECT_EQ(engine.active()->device(0).name, "ct-1");
}

TEST_F(ControlTest, CorruptPersistedPolicyIsAnErrorNotAnEmptyPolicy) {
  std::ofstream(dir_ / "policy.json") << "3\n{\"schema\":";
  engine::Engine engine(config_);
  PolicyState state(engine, dir_.string());
  const auto error = state.restore();
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->find("persisted policy is invalid"), std::string::npos);
  EXPECT_EQ(engine.active(), nullptr);  // fail closed: nothing enforced means nothing passes
}

TEST_F(ControlTest, BadRequestsGetClearErrors) {
  engine::Engine engine(config_);
  PolicyState state(engine, dir_.string());
  ControlHandler h(engine, state);
  auto message = [&](std::string_view line) {
    const json::object r = json::parse(h.handle(line)).as_object();
    EXPECT_FALSE(r.at("ok").as_bool());
    return std::string(r.at("errors").as_array()[0].at("message").as_string());
  };
  EXPECT_EQ(message("not json"), "request is not a JSON object");
  EXPECT_EQ(message("[]"), "request is not a JSON object");
  EXPECT_EQ(message(R"({"cmd":1})"), "cmd: missing or not a string");
  EXPECT_EQ(message(R"({"cmd":"reboot"})"), "cmd: unknown command");
  EXPECT_EQ(message(R"({"cmd":"apply"})"), "document: missing or not a string");
  EXPECT_EQ(message(R"({"cmd":"apply","document":"{}","version":-1})"),
            "version: not a positive integer");
}

TEST_F(ControlTest, StatsReportCountersByReasonLabel) {
  engine::Engine engine(config_);
  PolicyState state(engine, dir_.string());
  ControlHandler h(engine, state);
  const json::object r = json::parse(h.stats_json()).as_object();
  EXPECT_EQ(r.at("packets").to_number<uint64_t>(), 0u);
  EXPECT_TRUE(r.at("dropped").as_object().contains("no-matching-rule"));
  EXPECT_TRUE(r.at("dropped").as_object().contains("spoofed-source"));
}

}  // namespace
}  // namespace cordon::dataplane
