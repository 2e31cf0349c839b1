#include "dataplane/dpdk/options.h"

#include <gtest/gtest.h>

namespace cordon::dataplane {
namespace {

std::optional<Options> parse(std::vector<std::string> args, std::string& error) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return parse_options(static_cast<int>(argv.size()), argv.data(), error);
}

TEST(Options, ParsesPairsAndPaths) {
  std::string error;
  auto o = parse({"--pair", "net_af_packet0:net_af_packet1", "--pair", "0000:03:00.0,0000:03:00.1",
                  "--control-socket", "/tmp/x.sock", "--state-dir", "/tmp/s", "--policy", "p.json",
                  "--flows-per-worker", "1024"},
                 error);
  ASSERT_TRUE(o) << error;
  ASSERT_EQ(o->pairs.size(), 2u);
  EXPECT_EQ(o->pairs[0].device_port, "net_af_packet0");
  EXPECT_EQ(o->pairs[0].network_port, "net_af_packet1");
  EXPECT_EQ(o->pairs[1].device_port, "0000:03:00.0");
  EXPECT_EQ(o->pairs[1].network_port, "0000:03:00.1");
  EXPECT_EQ(o->control_socket, "/tmp/x.sock");
  EXPECT_EQ(o->initial_policy, "p.json");
  EXPECT_EQ(o->flows_per_worker, 1024u);
}

TEST(Options, AServicePortBelongsToThePairBeforeIt) {
  std::string error;
  auto o = parse({"--pair", "a:b", "--pair", "c:d", "--service-port", "net_tap0"}, error);
  ASSERT_TRUE(o) << error;
  EXPECT_EQ(o->pairs[0].service_port, "");
  EXPECT_EQ(o->pairs[1].service_port, "net_tap0");
  EXPECT_FALSE(parse({"--service-port", "net_tap0", "--pair", "a:b"}, error));
  EXPECT_EQ(error, "--service-port: must follow the --pair it belongs to");
  EXPECT_FALSE(parse({"--pair", "a:b", "--service-port", "t0", "--service-port", "t1"}, error));
  EXPECT_EQ(error, "--service-port: the pair a:b already has one");
}

TEST(Options, LatencyHistogramIsOffUnlessAskedFor) {
  std::string error;
  auto o = parse({"--pair", "a:b"}, error);
  ASSERT_TRUE(o) << error;
  EXPECT_FALSE(o->latency_histogram);
  o = parse({"--pair", "a:b", "--latency-histogram", "on"}, error);
  ASSERT_TRUE(o) << error;
  EXPECT_TRUE(o->latency_histogram);
  o = parse({"--pair", "a:b", "--latency-histogram", "off"}, error);
  ASSERT_TRUE(o) << error;
  EXPECT_FALSE(o->latency_histogram);
  EXPECT_FALSE(parse({"--pair", "a:b", "--latency-histogram", "yes"}, error));
  EXPECT_EQ(error, "--latency-histogram: expected on or off, got yes");
}

TEST(Options, RejectsBadArgumentsWithAReason) {
  std::string error;
  EXPECT_FALSE(parse({}, error));
  EXPECT_EQ(error, "at least one --pair is required");
  EXPECT_FALSE(parse({"--pair", "onlyone"}, error));
  EXPECT_NE(error.find("expected DEVICE_PORT:NETWORK_PORT"), std::string::npos);
  EXPECT_FALSE(parse({"--pair", "a:b", "--flows-per-worker", "12x"}, error));
  EXPECT_NE(error.find("not a number"), std::string::npos);
  EXPECT_FALSE(parse({"--pair", "a:b", "--inspected-flows-per-worker", "65536"}, error));
  EXPECT_EQ(error, "--inspected-flows-per-worker: at most 65535");
  EXPECT_FALSE(parse({"--pair", "a:b", "--frobnicate", "1"}, error));
  EXPECT_EQ(error, "unknown option --frobnicate");
  EXPECT_FALSE(parse({"--pair"}, error));
  EXPECT_EQ(error, "--pair: missing value");
}

}  // namespace
}  // namespace cordon::dataplane
