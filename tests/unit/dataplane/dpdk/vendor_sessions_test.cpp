// Vendor sessions in the dataplane: the vendor_sessions request, the rules it adds to the
// device's policy, and the cut of open connections at revoke and at expiry.
#include "dataplane/dpdk/vendor_sessions.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>

#include "dataplane/dpdk/control.h"
#include "tests/unit/dataplane/engine/frames.h"

namespace cordon::dataplane {
namespace {
namespace json = boost::json;
using testing::Bytes;
using testing::FrameBuilder;
namespace tcp_flag = engine::tcp_flag;

constexpr const char* kPolicy = R"({"schema":"cordon.policy/v1","devices":[
  {"name":"ct-1","mac":"02:c0:4d:00:00:10","ip":["10.50.0.10"],
   "rules":[{"name":"store","dir":"out","proto":"tcp","peer":"10.50.0.20/32","dport":104}]}]})";
constexpr const char* kDeviceMac = "02:c0:4d:00:00:10";
constexpr const char* kServiceMac = "02:c0:4d:00:02:fa";
constexpr int64_t kNow = 1'800'000'000'000;  // the handler's wall clock (ms)

json::object session(int64_t id, const char* device, std::initializer_list<int> ports,
                     int64_t expires, const char* address = "10.50.0.250") {
  json::array p;
  for (int port : ports) p.push_back(port);
  return json::object{{"id", id},
                      {"service_address", address},
                      {"device", device},
                      {"ports", std::move(p)},
                      {"expires_unix_ms", expires}};
}

class VendorSessionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cordon-vendor-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    engine_ = std::make_unique<engine::Engine>(engine::EngineConfig{});
    state_ = std::make_unique<PolicyState>(*engine_, dir_.string());
    handler_ = std::make_unique<ControlHandler>(*engine_, *state_, [this] { return now_ms_; });
    ASSERT_TRUE(call({{"cmd", "apply"}, {"document", kPolicy}}).at("ok").as_bool());
  }
  void TearDown() override {
    handler_.reset();
    state_.reset();
    engine_.reset();
    std::filesystem::remove_all(dir_);
  }

  json::object call(const json::object& request) {
    engine_->worker(0).go_idle();  // publish() waits for online workers
    return json::parse(handler_->handle(json::serialize(request))).as_object();
  }
  json::object push(json::array sessions) {
    return call({{"cmd", "vendor_sessions"}, {"sessions", std::move(sessions)}});
  }

  // A frame from the service port (network side) or from the device.
  engine::Verdict from_service(const std::string& src, uint16_t sport, uint16_t dport,
                               uint8_t flags, const std::string& dst = "10.50.0.10") {
    return judge(FrameBuilder()
                     .eth(kServiceMac, kDeviceMac)
                     .ipv4(src, dst)
                     .tcp(sport, dport, flags, 1000, flags & tcp_flag::ack ? 5001 : 0)
                     .build(),
                 engine::Side::network);
  }
  engine::Verdict from_device(uint16_t sport, uint16_t dport, uint8_t flags) {
    return judge(FrameBuilder()
                     .eth(kDeviceMac, kServiceMac)
                     .ipv4("10.50.0.10", "10.50.0.250")
                     .tcp(sport, dport, flags, 5000, 1001)
                     .build(),
                 engine::Side::device);
  }
  engine::Verdict judge(const Bytes& frame, engine::Side side) {
    const engine::PacketView view{frame.data(), static_cast<uint32_t>(frame.size()), side};
    engine::Verdict verdict;
    engine_->worker(0).process({&view, 1}, {&verdict, 1}, ++clock_ns_);
    return verdict;
  }
  // SYN, SYN-ACK, ACK of a connection service address:40000 -> device:104.
  void handshake(uint16_t sport = 40000) {
    ASSERT_EQ(from_service("10.50.0.250", sport, 104, tcp_flag::syn).action,
              engine::Action::forward);
    ASSERT_EQ(from_device(104, sport, tcp_flag::syn | tcp_flag::ack).action,
              engine::Action::forward);
    ASSERT_EQ(from_service("10.50.0.250", sport, 104, tcp_flag::ack).action,
              engine::Action::forward);
  }

  std::filesystem::path dir_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<PolicyState> state_;
  std::unique_ptr<ControlHandler> handler_;
  int64_t now_ms_ = kNow;
  uint64_t clock_ns_ = 1'000'000'000;
};

TEST_F(VendorSessionsTest, WithoutASessionTheServiceAddressIsRefused) {
  const engine::Verdict v = from_service("10.50.0.250", 40000, 104, tcp_flag::syn);
  EXPECT_EQ(v.action, engine::Action::drop);
  EXPECT_EQ(v.reason, engine::DropReason::no_matching_rule);
}

TEST_F(VendorSessionsTest, ASessionAllowsExactlyItsDeviceAndPortsFromTheServiceAddress) {
  const json::object r = push({session(7, "ct-1", {104, 11112}, kNow + 60'000)});
  ASSERT_TRUE(r.at("ok").as_bool()) << json::serialize(r);
  ASSERT_EQ(r.at("sessions").as_array().size(), 1u);

  handshake();
  EXPECT_EQ(from_service("10.50.0.250", 40001, 11112, tcp_flag::syn).action,
            engine::Action::forward);
  // Another port, another source, another destination: refused.
  EXPECT_EQ(from_service("10.50.0.250", 40002, 22, tcp_flag::syn).action, engine::Action::drop);
  EXPECT_EQ(from_service("10.50.0.66", 40003, 104, tcp_flag::syn).action, engine::Action::drop);
  EXPECT_EQ(from_service("10.50.0.250", 40004, 104, tcp_flag::syn, "10.50.0.20").action,
            engine::Action::drop);
  // The device cannot open connections to the service address either.
  EXPECT_EQ(from_device(40005, 22, tcp_flag::syn).action, engine::Action::drop);

  // The device's own rules keep their indices; the session's come after them.
  const engine::CompiledDevice& device = engine_->active()->device(0);
  ASSERT_EQ(device.rules.size(), 1u + 4u);  // 2 ports x tcp/udp
  EXPECT_EQ(device.rules[0].name, "store");
  EXPECT_EQ(device.rules[1].name, "vendor-session-7");

  // get shows the policy without them, and the sessions separately.
  const json::object got = call({{"cmd", "get"}});
  EXPECT_EQ(got.at("policy").at("devices").as_array()[0].at("rules").as_array().size(), 1u);
  EXPECT_EQ(got.at("vendor_sessions").as_array().size(), 1u);
}

TEST_F(VendorSessionsTest, RevokeCutsAnOpenConnectionAtItsNextPacket) {
  ASSERT_TRUE(push({session(7, "ct-1", {104}, kNow + 60'000)}).at("ok").as_bool());
  handshake();
  EXPECT_EQ(from_service("10.50.0.250", 40000, 104, tcp_flag::ack | tcp_flag::psh).action,
            engine::Action::forward);

  ASSERT_TRUE(push(json::array{}).at("ok").as_bool());
  // A vendor segment that still reaches the dataplane (the firewall normally answers it
  // itself) is reset back to the vendor and on to the device.
  const engine::Verdict v = from_service("10.50.0.250", 40000, 104, tcp_flag::ack);
  EXPECT_EQ(v.action, engine::Action::drop_and_reset_both);
  EXPECT_EQ(v.reason, engine::DropReason::policy_revoked);
  // The device's side of it too (a fresh packet of the cut flow finds no flow).
  EXPECT_EQ(from_device(104, 40000, tcp_flag::ack).action, engine::Action::drop);
}

TEST_F(VendorSessionsTest, ExpiryEndsTheSessionWithoutControld) {
  ASSERT_TRUE(push({session(7, "ct-1", {104}, kNow + 5'000)}).at("ok").as_bool());
  handshake();
  now_ms_ = kNow + 4'999;
  EXPECT_EQ(handler_->expire_vendor_sessions(), 0u);
  EXPECT_EQ(from_service("10.50.0.250", 40000, 104, tcp_flag::ack).action, engine::Action::forward);
  now_ms_ = kNow + 5'000;
  engine_->worker(0).go_idle();
  EXPECT_EQ(handler_->expire_vendor_sessions(), 1u);
  EXPECT_TRUE(state_->vendor_sessions().empty());
  const engine::Verdict v = from_service("10.50.0.250", 40000, 104, tcp_flag::ack);
  EXPECT_EQ(v.action, engine::Action::drop_and_reset_both);
  EXPECT_EQ(v.reason, engine::DropReason::policy_revoked);
  // A session pushed again after its expiry is not taken.
  const json::object r = push({session(7, "ct-1", {104}, kNow + 5'000)});
  ASSERT_TRUE(r.at("ok").as_bool());
  EXPECT_TRUE(r.at("sessions").as_array().empty());
}

// The device's end of a cut vendor connection gets a reset whatever its deny_action (the
// policy's is the default, drop): its next segment is answered with a reset back to it.
TEST_F(VendorSessionsTest, RevokeResetsTheDevicesEndOfTheCutConnection) {
  ASSERT_EQ(engine_->active()->device(0).deny_action, engine::DenyAction::drop);
  ASSERT_TRUE(push({session(7, "ct-1", {104}, kNow + 60'000)}).at("ok").as_bool());
  handshake();
  ASSERT_TRUE(push(json::array{}).at("ok").as_bool());

  const engine::Verdict v = from_device(104, 40000, tcp_flag::ack | tcp_flag::psh);
  EXPECT_EQ(v.action, engine::Action::drop_and_reset);
  EXPECT_EQ(v.reason, engine::DropReason::policy_revoked);
  // One reset: the cut flow is gone, its later segments are dropped without one.
  EXPECT_EQ(from_device(104, 40000, tcp_flag::ack).action, engine::Action::drop);
}

TEST_F(VendorSessionsTest, ExpiryResetsTheDevicesEndOfTheCutConnection) {
  ASSERT_TRUE(push({session(7, "ct-1", {104}, kNow + 5'000)}).at("ok").as_bool());
  handshake();
  now_ms_ = kNow + 5'000;
  engine_->worker(0).go_idle();
  ASSERT_EQ(handler_->expire_vendor_sessions(), 1u);
  const engine::Verdict v = from_device(104, 40000, tcp_flag::ack);
  EXPECT_EQ(v.action, engine::Action::drop_and_reset);
  EXPECT_EQ(v.reason, engine::DropReason::policy_revoked);
}

// A reset is never answered with a reset.
TEST_F(VendorSessionsTest, ADeviceResetOfACutConnectionIsDroppedWithoutAnswer) {
  ASSERT_TRUE(push({session(7, "ct-1", {104}, kNow + 60'000)}).at("ok").as_bool());
  handshake();
  ASSERT_TRUE(push(json::array{}).at("ok").as_bool());
  const engine::Verdict v = from_device(104, 40000, tcp_flag::rst | tcp_flag::ack);
  EXPECT_EQ(v.action, engine::Action::drop);
  EXPECT_EQ(v.reason, engine::DropReason::policy_revoked);
}

// Ending one session moves the rules of the sessions after it; a connection of a session
// that goes on keeps passing, and is still reset toward the device when its own session
// ends. A connection of the device's own rules cut by a policy change is not a vendor's:
// no reset (deny_action drop).
TEST_F(VendorSessionsTest, TheResetFollowsTheSessionWhenItsRulesMove) {
  ASSERT_TRUE(
      push({session(7, "ct-1", {11112}, kNow + 60'000), session(8, "ct-1", {104}, kNow + 60'000)})
          .at("ok")
          .as_bool());
  handshake();  // port 104: session 8's rule, after session 7's
  ASSERT_TRUE(push({session(8, "ct-1", {104}, kNow + 60'000)}).at("ok").as_bool());
  EXPECT_EQ(from_device(104, 40000, tcp_flag::ack).action, engine::Action::forward);
  ASSERT_TRUE(push(json::array{}).at("ok").as_bool());
  EXPECT_EQ(from_device(104, 40000, tcp_flag::ack).action, engine::Action::drop_and_reset);

  // The device's own rule "store" (out to pacs:104), then a policy without it.
  const auto to_pacs = [this](uint8_t flags) {
    return judge(FrameBuilder()
                     .eth(kDeviceMac, "02:c0:4d:00:00:20")
                     .ipv4("10.50.0.10", "10.50.0.20")
                     .tcp(41000, 104, flags, 7000, flags & tcp_flag::ack ? 9001 : 0)
                     .build(),
                 engine::Side::device);
  };
  ASSERT_EQ(to_pacs(tcp_flag::syn).action, engine::Action::forward);
  ASSERT_TRUE(call({{"cmd", "apply"}, {"document", R"({"schema":"cordon.policy/v1","devices":[
  {"name":"ct-1","mac":"02:c0:4d:00:00:10","ip":["10.50.0.10"],"rules":[]}]})"}})
                  .at("ok")
                  .as_bool());
  const engine::Verdict v = to_pacs(tcp_flag::syn);
  EXPECT_EQ(v.action, engine::Action::drop);
  EXPECT_EQ(v.reason, engine::DropReason::policy_revoked);
}

TEST_F(VendorSessionsTest, TheSameListAgainDoesNotRepublish) {
  ASSERT_TRUE(push({session(7, "ct-1", {104}, kNow + 60'000)}).at("ok").as_bool());
  const uint64_t epoch = engine_->active()->epoch();
  ASSERT_TRUE(push({session(7, "ct-1", {104}, kNow + 60'000)}).at("ok").as_bool());
  EXPECT_EQ(engine_->active()->epoch(), epoch);
  ASSERT_TRUE(push({session(7, "ct-1", {104}, kNow + 90'000)}).at("ok").as_bool());
  EXPECT_GT(engine_->active()->epoch(), epoch);  // renewed: a new list
}

TEST_F(VendorSessionsTest, SessionsSurviveANewPolicyVersionAndFollowTheirDevice) {
  ASSERT_TRUE(push({session(7, "ct-1", {104}, kNow + 60'000),
                    session(8, "not-in-policy", {104}, kNow + 60'000)})
                  .at("ok")
                  .as_bool());
  ASSERT_TRUE(call({{"cmd", "apply"}, {"document", kPolicy}}).at("ok").as_bool());
  EXPECT_EQ(engine_->active()->version(), 2u);
  handshake();
  EXPECT_EQ(engine_->active()->device(0).rules.size(), 1u + 2u);
}

TEST_F(VendorSessionsTest, BadRequestsAreRefusedWithTheirPathAndChangeNothing) {
  ASSERT_TRUE(push({session(7, "ct-1", {104}, kNow + 60'000)}).at("ok").as_bool());
  const uint64_t epoch = engine_->active()->epoch();
  const auto first_error = [&](json::array sessions) {
    const json::object r = push(std::move(sessions));
    EXPECT_FALSE(r.at("ok").as_bool());
    return std::string(r.at("errors").as_array()[0].at("path").as_string());
  };
  EXPECT_EQ(first_error({session(9, "ct-1", {0}, kNow + 1)}), "sessions[0].ports[0]");
  EXPECT_EQ(first_error({session(9, "ct-1", {104}, kNow + 1, "10.50.0.300")}),
            "sessions[0].service_address");
  EXPECT_EQ(first_error({session(9, "ct-1", {104}, kNow + 1), session(9, "ct-1", {104}, kNow)}),
            "sessions[1].id");
  EXPECT_EQ(first_error({session(9, "", {104}, kNow + 1)}), "sessions[0].device");
  EXPECT_EQ(first_error({json::object{{"id", 1}, {"bogus", true}}}), "sessions[0].bogus");
  json::object no_ports = session(9, "ct-1", {104}, kNow + 1);
  no_ports["ports"] = json::array{};
  EXPECT_EQ(first_error({no_ports}), "sessions[0].ports");
  const json::object r = call({{"cmd", "vendor_sessions"}, {"sessions", "all"}});
  EXPECT_FALSE(r.at("ok").as_bool());
  EXPECT_EQ(engine_->active()->epoch(), epoch);
  ASSERT_EQ(state_->vendor_sessions().size(), 1u);
  EXPECT_EQ(state_->vendor_sessions()[0].id, 7);
}

}  // namespace
}  // namespace cordon::dataplane
