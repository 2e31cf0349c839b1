// The policy dry-run against the end-to-end packet cases (tests/packets/): each case has a
// capture, a policy and the verdicts the engine must give, so the flows the dry-run
// reports can be checked against what the case says, frame by frame.
#include "control/policy/dry_run.h"

#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <boost/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>
#include "dataplane/engine/decode.h"
#include "tests/unit/dataplane/engine/frames.h"

namespace cordon::control::policy {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using engine::DeviceMode;
using engine::DropReason;
using engine::PolicyDocument;

const fs::path kCases = fs::path(CORDON_SOURCE_DIR) / "tests/packets";

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

PolicyDocument case_policy(const std::string& name) {
  const engine::PolicyParseResult parsed =
      engine::parse_policy(slurp(kCases / name / "policy.json"));
  if (!parsed.document) throw std::runtime_error(name + ": invalid policy.json");
  return *parsed.document;
}

std::string case_pcap(const std::string& name) {
  return (kCases / name / "frames.pcap").string();
}

json::object case_expected(const std::string& name) {
  return json::parse(slurp(kCases / name / "expected.json")).as_object();
}

// The same policy without app constraints and without patches: lets every frame of the
// refused cases through.
PolicyDocument relaxed(PolicyDocument doc) {
  for (engine::Device& d : doc.devices) {
    d.patches.clear();
    for (engine::Rule& r : d.rules) {
      r.dicom.reset();
      r.hl7.reset();
    }
  }
  return doc;
}

PolicyDocument with_mode(PolicyDocument doc, DeviceMode mode) {
  for (engine::Device& d : doc.devices) d.mode = mode;
  return doc;
}

struct Frame {
  pcap_pkthdr header;
  std::vector<uint8_t> bytes;
};

std::vector<Frame> read_frames(const std::string& path) {
  char errbuf[PCAP_ERRBUF_SIZE];
  pcap_t* p =
      pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (p == nullptr) throw std::runtime_error(errbuf);
  std::vector<Frame> frames;
  pcap_pkthdr* h;
  const u_char* data;
  while (pcap_next_ex(p, &h, &data) == 1) frames.push_back({*h, {data, data + h->caplen}});
  pcap_close(p);
  return frames;
}

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/dry-run-test-XXXXXX";
    path_ = mkdtemp(pattern);
  }
  ~TempDir() { fs::remove_all(path_); }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

void write_frames(const fs::path& path, const std::vector<Frame>& frames) {
  pcap_t* dead =
      pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 65535, PCAP_TSTAMP_PRECISION_NANO);
  pcap_dumper_t* out = pcap_dump_open(dead, path.c_str());
  ASSERT_NE(out, nullptr) << pcap_geterr(dead);
  for (const Frame& f : frames)
    pcap_dump(reinterpret_cast<u_char*>(out), &f.header, f.bytes.data());
  pcap_dump_close(out);
  pcap_close(dead);
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// Engines sized for the small captures of the cases (the defaults take ~40 MiB each).
DryRunOptions small() {
  DryRunOptions options;
  options.flows = 1024;
  options.inspected_flows = 64;
  return options;
}

DryRunReport run_ok(const PolicyDocument* active, const PolicyDocument& candidate,
                    const std::string& pcap, const DryRunOptions& options = small()) {
  Result<DryRunReport> r = dry_run_pcap(active, candidate, pcap, options);
  if (!r) throw std::runtime_error(r.error().message);
  return std::move(r).value();
}

Error run_error(const std::string& pcap, DryRunOptions options = small()) {
  const PolicyDocument policy = case_policy("app-dicom-echo-passes");
  Result<DryRunReport> r = dry_run_pcap(&policy, policy, pcap, options);
  if (r) throw std::runtime_error(pcap + ": expected an error");
  std::cout << "rejected as expected: " << r.error().code << ": " << r.error().message << "\n";
  return r.error();
}

const DeviceReport& device(const DryRunReport& r, const std::string& name) {
  for (const DeviceReport& d : r.devices) {
    if (d.name == name) return d;
  }
  throw std::runtime_error("no device " + name + " in the report");
}

// ---------------------------------------------------------------------------------------

TEST(DryRun, IdenticalPoliciesChangeNothing) {
  for (const char* name :
       {"app-dicom-called-ae-refused", "app-hl7-adt-refused", "ms17-010-eternalblue-nt-trans",
        "policy-patch-alert-forwards", "app-dicom-store-passes"}) {
    SCOPED_TRACE(name);
    const PolicyDocument policy = case_policy(name);
    const DryRunReport r = run_ok(&policy, policy, case_pcap(name), DryRunOptions{});
    EXPECT_EQ(r.totals.packets, read_frames(case_pcap(name)).size());
    EXPECT_GT(r.totals.flows, 0u);
    EXPECT_EQ(r.totals.unchanged_flows, r.totals.flows);
    EXPECT_EQ(r.totals.newly_blocked_flows, 0u);
    EXPECT_EQ(r.totals.newly_allowed_flows, 0u);
    EXPECT_EQ(r.totals.active.dropped, r.totals.candidate.dropped);
    EXPECT_EQ(r.totals.active.forwarded, r.totals.candidate.forwarded);
    const DeviceReport& ct = device(r, "ct-1");
    EXPECT_EQ(ct.packets, r.totals.packets);
    EXPECT_TRUE(ct.newly_blocked.empty());
    EXPECT_TRUE(ct.newly_allowed.empty());
  }
}

// Each refused case: the candidate is the case's policy, the active one the same without
// app constraints and patches. The one changed flow must be reported with exactly the
// frames, reason and detail the case expects of the engine.
TEST(DryRun, StricterCandidateReportsTheFlowsItBlocks) {
  for (const char* name :
       {"app-dicom-called-ae-refused", "app-dicom-calling-ae-refused", "app-dicom-command-refused",
        "app-dicom-sop-class-refused", "app-hl7-adt-refused", "ms17-010-eternalblue-nt-trans",
        "policy-patch-content"}) {
    SCOPED_TRACE(name);
    const PolicyDocument candidate = case_policy(name);
    const PolicyDocument active = relaxed(candidate);
    const DryRunReport r = run_ok(&active, candidate, case_pcap(name));
    const json::object expected = case_expected(name);
    const json::array& verdicts = expected.at("verdicts").as_array();
    ASSERT_FALSE(verdicts.empty());
    const json::object& first = verdicts.front().as_object();

    EXPECT_EQ(r.totals.newly_blocked_flows, 1u);
    EXPECT_EQ(r.totals.newly_allowed_flows, 0u);
    EXPECT_EQ(r.totals.active.dropped, 0u);
    EXPECT_EQ(r.totals.candidate.dropped, verdicts.size());
    const DeviceReport& ct = device(r, "ct-1");
    ASSERT_EQ(ct.newly_blocked.size(), 1u);
    EXPECT_EQ(ct.newly_blocked_total, 1u);
    EXPECT_EQ(ct.unchanged_flows + 1, ct.flows);
    const FlowReport& f = ct.newly_blocked.front();
    ASSERT_TRUE(f.stricter);
    EXPECT_FALSE(f.looser);
    EXPECT_EQ(f.protocol, "tcp");
    EXPECT_EQ(f.active.dropped, 0u);
    EXPECT_EQ(f.candidate.dropped, verdicts.size());
    EXPECT_EQ(f.stricter->packets, verdicts.size());
    EXPECT_EQ(f.stricter->first_frame, first.at("frame").to_number<uint64_t>());
    EXPECT_EQ(f.stricter->treatment, Treatment::dropped);
    EXPECT_EQ(engine::label(f.stricter->reason), first.at("reason").as_string());
    EXPECT_EQ(f.stricter->detail,
              expected.at("events").as_array().front().as_object().at("detail").as_string());
  }
}

TEST(DryRun, DicomCalledAeTitleChangeShowsTheBlockedFlow) {
  const std::string name = "app-dicom-called-ae-refused";
  const PolicyDocument candidate = case_policy(name);  // called_ae: PACS only
  PolicyDocument active = candidate;
  active.devices[0].rules[0].dicom->called_ae.push_back("ARCHIVE");
  const DryRunReport r = run_ok(&active, candidate, case_pcap(name));
  const DeviceReport& ct = device(r, "ct-1");
  ASSERT_EQ(ct.newly_blocked.size(), 1u);
  const FlowReport& f = ct.newly_blocked.front();
  EXPECT_EQ(f.initiator.to_string(), "10.50.0.10");
  EXPECT_EQ(f.responder.to_string(), "10.50.0.20");
  EXPECT_EQ(f.port, 104);
  EXPECT_TRUE(f.device_initiated);
  EXPECT_EQ(f.connections, 1u);
  EXPECT_EQ(f.packets, read_frames(case_pcap(name)).size());
  EXPECT_EQ(f.stricter->reason, DropReason::app_not_allowed);
  EXPECT_EQ(f.stricter->rule, "store-to-pacs");
  EXPECT_EQ(f.stricter->detail, "DICOM called AE title not allowed: ARCHIVE");

  // The other way round: the candidate lets the association through again.
  const DryRunReport back = run_ok(&candidate, active, case_pcap(name));
  const DeviceReport& ct_back = device(back, "ct-1");
  EXPECT_TRUE(ct_back.newly_blocked.empty());
  ASSERT_EQ(ct_back.newly_allowed.size(), 1u);
  const FlowReport& g = ct_back.newly_allowed.front();
  ASSERT_TRUE(g.looser);
  EXPECT_EQ(g.looser->reason, DropReason::app_not_allowed);
  EXPECT_EQ(g.looser->first_frame, 4u);
  EXPECT_EQ(g.candidate.dropped, 0u);

  // The text for the clinical engineer and the JSON for the API say the same.
  const std::string text = to_text(r);
  std::cout << text;  // what cordonctl prints, for the reader of the test log
  for (const char* needle :
       {"Device ct-1", "tcp 10.50.0.10 -> 10.50.0.20 port 104", "reason app-not-allowed",
        "rule \"store-to-pacs\"", "DICOM called AE title not allowed: ARCHIVE", "from frame 4"}) {
    EXPECT_NE(text.find(needle), std::string::npos) << needle << " not in\n" << text;
  }
  const json::value j = to_json(r);
  const json::object& flow = j.at("devices").at(0).at("newly_blocked").at(0).as_object();
  EXPECT_EQ(flow.at("stricter").at("reason").as_string(), "app-not-allowed");
  EXPECT_EQ(flow.at("direction").as_string(), "out");
  EXPECT_EQ(flow.at("port").to_number<int>(), 104);
  EXPECT_TRUE(flow.at("looser").is_null());
  EXPECT_EQ(j.at("totals").at("newly_blocked_flows").to_number<int>(), 1);
}

TEST(DryRun, MonitorModeReportsInsteadOfBlocking) {
  const std::string name = "app-dicom-called-ae-refused";
  const PolicyDocument enforce = case_policy(name);
  const PolicyDocument monitor = with_mode(enforce, DeviceMode::monitor);
  const PolicyDocument active = relaxed(enforce);

  // Relaxed -> monitor: the candidate still forwards, but reports the association.
  const DryRunReport r = run_ok(&active, monitor, case_pcap(name));
  const DeviceReport& ct = device(r, "ct-1");
  EXPECT_EQ(ct.candidate_mode, DeviceMode::monitor);
  ASSERT_EQ(ct.newly_blocked.size(), 1u);
  const FlowReport& f = ct.newly_blocked.front();
  EXPECT_EQ(f.stricter->treatment, Treatment::reported);
  EXPECT_EQ(f.stricter->reason, DropReason::app_not_allowed);
  EXPECT_EQ(f.candidate.dropped, 0u);
  EXPECT_GT(f.candidate.reported, 0u);
  EXPECT_NE(to_text(r).find("reported as would-drop"), std::string::npos);

  // Enforce -> monitor: what enforce drops today passes with the candidate.
  const DryRunReport back = run_ok(&enforce, monitor, case_pcap(name));
  const DeviceReport& ct_back = device(back, "ct-1");
  EXPECT_EQ(ct_back.active_mode, DeviceMode::enforce);
  ASSERT_EQ(ct_back.newly_allowed.size(), 1u);
  EXPECT_EQ(ct_back.newly_allowed.front().looser->treatment, Treatment::dropped);
  EXPECT_TRUE(ct_back.newly_blocked.empty());
}

TEST(DryRun, NoActivePolicyDropsEverything) {
  const std::string name = "app-dicom-echo-passes";
  const PolicyDocument candidate = case_policy(name);
  const DryRunReport r = run_ok(nullptr, candidate, case_pcap(name));
  EXPECT_FALSE(r.active_installed);
  EXPECT_EQ(r.totals.active.dropped, r.totals.packets);
  EXPECT_EQ(r.totals.candidate.dropped, 0u);
  EXPECT_EQ(r.totals.newly_allowed_flows, r.totals.flows);
  const DeviceReport& ct = device(r, "ct-1");
  EXPECT_FALSE(ct.active_mode);
  ASSERT_FALSE(ct.newly_allowed.empty());
  for (const FlowReport& f : ct.newly_allowed) {
    EXPECT_EQ(f.looser->reason, DropReason::no_policy);
    EXPECT_EQ(f.looser->packets, f.packets);
  }
  EXPECT_NE(to_text(r).find("No policy is active"), std::string::npos);
}

TEST(DryRun, RemovedDeviceBecomesUnknown) {
  const std::string name = "app-dicom-echo-passes";
  const PolicyDocument active = case_policy(name);
  PolicyDocument candidate = active;
  candidate.devices.clear();
  const DryRunReport r = run_ok(&active, candidate, case_pcap(name));
  const DeviceReport& ct = device(r, "ct-1");
  EXPECT_EQ(ct.active_mode, DeviceMode::enforce);
  EXPECT_FALSE(ct.candidate_mode);
  ASSERT_FALSE(ct.newly_blocked.empty());
  EXPECT_EQ(ct.newly_blocked_total, ct.flows);
  for (const FlowReport& f : ct.newly_blocked) {
    EXPECT_EQ(f.stricter->reason, DropReason::unknown_device);
  }
}

// Grouping for every protocol: ARP request and reply, a UDP exchange, two pings (two
// connections of one flow), a capture that starts at a SYN-ACK, and a frame of no device.
TEST(DryRun, GroupsFramesIntoFlows) {
  using testing::FrameBuilder;
  namespace tcp_flag = engine::tcp_flag;
  const std::string ct_mac = "02:c0:4d:00:00:10";
  const std::string gw_mac = "02:00:00:00:00:01";
  const std::vector<testing::Bytes> built = {
      FrameBuilder()
          .eth(ct_mac, "ff:ff:ff:ff:ff:ff")
          .arp(1, ct_mac, "10.50.0.10", "00:00:00:00:00:00", "10.50.0.1")
          .build(),
      FrameBuilder().eth(gw_mac, ct_mac).arp(2, gw_mac, "10.50.0.1", ct_mac, "10.50.0.10").build(),
      FrameBuilder().eth(ct_mac, gw_mac).ipv4("10.50.0.10", "10.50.0.1").udp(40123, 123).build(),
      FrameBuilder().eth(gw_mac, ct_mac).ipv4("10.50.0.1", "10.50.0.10").udp(123, 40123).build(),
      FrameBuilder()
          .eth(gw_mac, ct_mac)
          .ipv4("10.50.0.5", "10.50.0.10")
          .icmp_echo_request(7)
          .build(),
      FrameBuilder().eth(ct_mac, gw_mac).ipv4("10.50.0.10", "10.50.0.5").icmp_echo_reply(7).build(),
      FrameBuilder()
          .eth(gw_mac, ct_mac)
          .ipv4("10.50.0.5", "10.50.0.10")
          .icmp_echo_request(8)
          .build(),
      FrameBuilder().eth(ct_mac, gw_mac).ipv4("10.50.0.10", "10.50.0.5").icmp_echo_reply(8).build(),
      FrameBuilder()
          .eth(ct_mac, gw_mac)
          .ipv4("10.50.0.10", "10.50.0.20")
          .tcp(104, 50000, static_cast<uint8_t>(tcp_flag::syn | tcp_flag::ack))
          .build(),
      FrameBuilder()
          .eth("02:00:00:00:00:30", "02:00:00:00:00:40")
          .ipv4("10.50.0.30", "10.50.0.40")
          .udp(514, 514)
          .build(),
  };
  std::vector<Frame> frames;
  for (size_t i = 0; i < built.size(); ++i) {
    pcap_pkthdr h{};
    h.ts.tv_sec = 1'767'225'600;
    h.ts.tv_usec = static_cast<suseconds_t>(i * 1'000'000);  // ns: 1 ms apart
    h.caplen = h.len = static_cast<uint32_t>(built[i].size());
    frames.push_back({h, built[i]});
  }
  TempDir dir;
  write_frames(dir / "mixed.pcap", frames);

  const auto policy = [](bool ping) {
    std::string rules = R"({"name": "ntp", "dir": "out", "proto": "udp", "peer": "10.50.0.1/32",
                            "dport": 123})";
    if (ping)
      rules += R"(, {"name": "ping", "dir": "in", "proto": "icmp", "peer": "10.50.0.0/24"})";
    const std::string text = R"({"schema": "cordon.policy/v1", "devices": [{"name": "ct-1",
        "mac": "02:c0:4d:00:00:10", "ip": ["10.50.0.10"], "rules": [)" +
                             rules + "]}]}";
    engine::PolicyParseResult parsed = engine::parse_policy(text);
    if (!parsed.document) throw std::runtime_error(parsed.errors.front().to_string());
    return *parsed.document;
  };
  const PolicyDocument active = policy(true);
  const PolicyDocument candidate = policy(false);
  const DryRunReport r = run_ok(&active, candidate, (dir / "mixed.pcap").string());

  EXPECT_EQ(r.totals.packets, frames.size());
  EXPECT_EQ(r.totals.flows, 5u);
  EXPECT_EQ(r.totals.unchanged_flows, 4u);
  EXPECT_EQ(r.totals.unclaimed_packets, 1u);
  EXPECT_EQ(r.unclaimed.flows, 1u);
  const DeviceReport& ct = device(r, "ct-1");
  EXPECT_EQ(ct.packets, frames.size() - 1);
  EXPECT_EQ(ct.flows, 4u);  // arp, udp/123, icmp, tcp/104
  ASSERT_EQ(ct.newly_blocked.size(), 1u);
  EXPECT_TRUE(ct.newly_allowed.empty());
  const FlowReport& ping = ct.newly_blocked.front();
  EXPECT_EQ(ping.protocol, "icmp");
  EXPECT_EQ(ping.initiator.to_string(), "10.50.0.5");
  EXPECT_EQ(ping.responder.to_string(), "10.50.0.10");
  EXPECT_FALSE(ping.device_initiated);
  EXPECT_EQ(ping.port, 0);
  EXPECT_EQ(ping.connections, 2u);
  EXPECT_EQ(ping.packets, 4u);
  EXPECT_EQ(ping.active.forwarded, 4u);
  EXPECT_EQ(ping.candidate.dropped, 4u);
  EXPECT_EQ(ping.stricter->packets, 4u);
  EXPECT_EQ(ping.stricter->first_frame, 5u);
  EXPECT_EQ(ping.stricter->reason, DropReason::no_matching_rule);

  // Against no policy, every flow the policy passes is listed: the grouping of the others.
  const DryRunReport fresh = run_ok(nullptr, active, (dir / "mixed.pcap").string());
  const DeviceReport& all = device(fresh, "ct-1");
  ASSERT_EQ(all.newly_allowed.size(), 3u);  // the SYN-ACK without a handshake stays dropped
  EXPECT_EQ(all.newly_allowed[0].protocol, "icmp");
  EXPECT_EQ(all.newly_allowed[1].protocol, "udp");
  EXPECT_EQ(all.newly_allowed[1].initiator.to_string(), "10.50.0.10");
  EXPECT_EQ(all.newly_allowed[1].port, 123);
  EXPECT_TRUE(all.newly_allowed[1].device_initiated);
  EXPECT_EQ(all.newly_allowed[1].packets, 2u);
  EXPECT_EQ(all.newly_allowed[2].protocol, "arp");
  EXPECT_EQ(all.newly_allowed[2].initiator.to_string(), "10.50.0.10");
  EXPECT_EQ(all.newly_allowed[2].responder.to_string(), "10.50.0.1");
  EXPECT_EQ(all.newly_allowed[2].packets, 2u);
  EXPECT_EQ(all.unchanged_flows, 1u);
}

// The side of a frame is chosen by its source MAC alone: when the candidate binds the
// device to another address, the device's frames are judged as spoofed, as on the wire.
TEST(DryRun, ReaddressedDeviceIsSpoofing) {
  const std::string name = "app-dicom-echo-passes";
  const PolicyDocument active = case_policy(name);
  PolicyDocument candidate = active;
  candidate.devices[0].ips = {*engine::IpAddress::parse("10.50.0.99")};
  const DryRunReport r = run_ok(&active, candidate, case_pcap(name));
  const DeviceReport& ct = device(r, "ct-1");
  ASSERT_EQ(ct.newly_blocked.size(), 1u);
  const FlowReport& f = ct.newly_blocked.front();
  EXPECT_EQ(f.stricter->reason, DropReason::spoofed_source);
  EXPECT_EQ(f.stricter->first_frame, 1u);
  EXPECT_EQ(f.stricter->rule, "");
  // The device's own frames are dropped as spoofed; the replies to 10.50.0.10 as traffic
  // of an unknown device.
  EXPECT_EQ(f.candidate.dropped, f.packets);
}

// Traffic no device claims follows unknown_devices.
TEST(DryRun, UnclaimedTrafficFollowsUnknownDevices) {
  const std::string name = "app-dicom-echo-passes";
  PolicyDocument active = case_policy(name);
  active.devices.clear();
  PolicyDocument candidate = active;
  candidate.unknown_devices = engine::UnknownDevices::forward;
  const DryRunReport r = run_ok(&active, candidate, case_pcap(name));
  EXPECT_TRUE(r.devices.empty());
  EXPECT_EQ(r.totals.unclaimed_packets, r.totals.packets);
  EXPECT_EQ(r.unclaimed.packets, r.totals.packets);
  EXPECT_EQ(r.unclaimed.newly_allowed_total, r.unclaimed.flows);
  ASSERT_FALSE(r.unclaimed.newly_allowed.empty());
  // A capture does not say which port a frame came in on: the dry run takes frames from a
  // MAC of a device of either policy as the device side's, and with no device at all
  // every frame is the network side's, for no device.
  for (const FlowReport& f : r.unclaimed.newly_allowed) {
    EXPECT_EQ(f.looser->reason, DropReason::not_for_a_device) << f.protocol << " " << f.port;
  }
  EXPECT_TRUE(to_json(r).at("unclaimed").at("name").is_null());
}

// The capture's timestamps are the engine's clock: a connection idle for longer than the
// established-TCP timeout (2 h) is forgotten, and its next segment has no flow.
TEST(DryRun, CaptureTimestampsDriveFlowTimeouts) {
  const std::string name = "app-dicom-echo-passes";
  const PolicyDocument candidate = case_policy(name);
  std::vector<Frame> frames = read_frames(case_pcap(name));
  ASSERT_GT(frames.size(), 4u);
  for (size_t i = 3; i < frames.size(); ++i) frames[i].header.ts.tv_sec += 3 * 3600;
  TempDir dir;
  write_frames(dir / "idle.pcap", frames);

  const DryRunReport on_time = run_ok(nullptr, candidate, case_pcap(name));
  EXPECT_EQ(on_time.totals.candidate.dropped, 0u);
  const DryRunReport idle = run_ok(nullptr, candidate, (dir / "idle.pcap").string());
  EXPECT_GT(idle.totals.candidate.dropped, 0u);
}

// pcapng written by hand (libpcap writes only pcap): the same frames, the same report.
TEST(DryRun, ReadsPcapng) {
  const std::string name = "app-dicom-called-ae-refused";
  std::string ng;
  const auto u32 = [&](uint32_t v) { ng.append(reinterpret_cast<const char*>(&v), 4); };
  const auto u16 = [&](uint16_t v) { ng.append(reinterpret_cast<const char*>(&v), 2); };
  u32(0x0A0D0D0A), u32(28), u32(0x1A2B3C4D), u16(1), u16(0), u32(0xffffffff), u32(0xffffffff),
      u32(28);                                       // section header
  u32(1), u32(20), u16(1), u16(0), u32(0), u32(20);  // interface: Ethernet, microseconds
  for (const Frame& f : read_frames(case_pcap(name))) {
    const uint64_t us =
        uint64_t(f.header.ts.tv_sec) * 1'000'000 + uint64_t(f.header.ts.tv_usec) / 1000;
    const auto padded = static_cast<uint32_t>((f.bytes.size() + 3) / 4 * 4);
    u32(6), u32(32 + padded), u32(0), u32(uint32_t(us >> 32)), u32(uint32_t(us)),
        u32(uint32_t(f.bytes.size())), u32(uint32_t(f.bytes.size()));
    ng.append(reinterpret_cast<const char*>(f.bytes.data()), f.bytes.size());
    ng.append(padded - f.bytes.size(), '\0');
    u32(32 + padded);
  }
  TempDir dir;
  write_bytes(dir / "frames.pcapng", ng);
  const PolicyDocument candidate = case_policy(name);
  const PolicyDocument active = relaxed(candidate);
  const DryRunReport from_pcap = run_ok(&active, candidate, case_pcap(name));
  const DryRunReport from_ng = run_ok(&active, candidate, (dir / "frames.pcapng").string());
  EXPECT_EQ(from_ng.totals.packets, from_pcap.totals.packets);
  EXPECT_EQ(from_ng.totals.newly_blocked_flows, 1u);
  const json::value a = to_json(from_pcap);
  json::value b = to_json(from_ng);
  b.as_object()["pcap"] = a.at("pcap");
  EXPECT_EQ(a, b);
}

// A capture in memory (an uploaded body) gives the report the file gives.
TEST(DryRun, ReadsCaptureFromMemory) {
  const std::string name = "app-hl7-adt-refused";
  const PolicyDocument candidate = case_policy(name);
  const PolicyDocument active = relaxed(candidate);
  const std::string bytes = slurp(case_pcap(name));
  Result<DryRunReport> from_memory =
      dry_run_pcap_bytes(&active, candidate, bytes, "upload.pcap", small());
  ASSERT_TRUE(from_memory) << from_memory.error().message;
  EXPECT_EQ(from_memory.value().pcap, "upload.pcap");
  EXPECT_EQ(from_memory.value().totals.newly_blocked_flows, 1u);
  json::value a = to_json(run_ok(&active, candidate, case_pcap(name)));
  a.as_object()["pcap"] = "upload.pcap";
  EXPECT_EQ(a, to_json(from_memory.value()));

  for (const std::string& bad : {std::string(), bytes.substr(0, bytes.size() - 3),
                                 std::string("not a capture at all, not even close")}) {
    Result<DryRunReport> r = dry_run_pcap_bytes(&active, candidate, bad, "upload.pcap", small());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "invalid");
    EXPECT_EQ(r.error().message.rfind("pcap upload.pcap: ", 0), 0u) << r.error().message;
  }
}

TEST(DryRun, BadCapturesAreErrors) {
  TempDir dir;
  const std::string good = slurp(case_pcap("app-dicom-echo-passes"));
  std::string header = good.substr(0, 24);  // little-endian pcap global header

  EXPECT_EQ(run_error((dir / "missing.pcap").string()).code, "io");
  EXPECT_EQ(run_error((dir / ".").string()).code, "invalid");  // a directory

  write_bytes(dir / "empty.pcap", "");
  write_bytes(dir / "text.pcap", "this is not a capture, just text that is long enough\n");
  write_bytes(dir / "truncated-header.pcap", good.substr(0, 10));
  write_bytes(dir / "truncated-record.pcap", good.substr(0, 24 + 16 + 20));
  for (const char* file :
       {"empty.pcap", "text.pcap", "truncated-header.pcap", "truncated-record.pcap"}) {
    const Error e = run_error((dir / file).string());
    EXPECT_EQ(e.code, "invalid") << file;
    EXPECT_NE(e.message.find((dir / file).string()), std::string::npos) << e.message;
  }
  EXPECT_NE(run_error((dir / "truncated-record.pcap").string()).message.find("record 1"),
            std::string::npos);

  std::string raw = good;
  raw[20] = 101;  // LINKTYPE_RAW (IP without Ethernet)
  write_bytes(dir / "raw.pcap", raw);
  EXPECT_NE(run_error((dir / "raw.pcap").string()).message.find("only Ethernet"),
            std::string::npos);

  std::string absurd = header;
  const uint32_t record[4] = {0, 0, 0xffffffffu, 0xffffffffu};
  absurd.append(reinterpret_cast<const char*>(record), sizeof record);
  write_bytes(dir / "absurd.pcap", absurd);
  EXPECT_EQ(run_error((dir / "absurd.pcap").string()).code, "invalid");

  std::vector<Frame> frames = read_frames(case_pcap("app-dicom-echo-passes"));
  frames[1].header.len += 100;  // captured shorter than on the wire
  write_frames(dir / "cut.pcap", frames);
  EXPECT_NE(run_error((dir / "cut.pcap").string()).message.find("record 2: only"),
            std::string::npos);
}

TEST(DryRun, LimitsAreErrors) {
  const std::string pcap = case_pcap("app-dicom-echo-passes");
  const size_t frames = read_frames(pcap).size();
  DryRunOptions few_packets = small();
  few_packets.limits.max_packets = frames - 1;
  const Error packets = run_error(pcap, few_packets);
  EXPECT_EQ(packets.code, "too_large");
  EXPECT_NE(packets.message.find("more than " + std::to_string(frames - 1) + " packets"),
            std::string::npos);
  DryRunOptions few_bytes = small();
  few_bytes.limits.max_bytes = 100;
  EXPECT_EQ(run_error(pcap, few_bytes).code, "too_large");
  DryRunOptions exact = small();
  exact.limits.max_packets = frames;
  const PolicyDocument policy = case_policy("app-dicom-echo-passes");
  EXPECT_TRUE(dry_run_pcap(&policy, policy, pcap, exact));
}

TEST(DryRun, ListsAreCappedButCounted) {
  const std::string name = "app-dicom-echo-passes";
  const PolicyDocument candidate = case_policy(name);
  DryRunOptions options = small();
  options.max_listed_flows = 0;
  const DryRunReport r = run_ok(nullptr, candidate, case_pcap(name), options);
  const DeviceReport& ct = device(r, "ct-1");
  EXPECT_TRUE(ct.newly_allowed.empty());
  EXPECT_EQ(ct.newly_allowed_total, ct.flows);
  EXPECT_NE(to_text(r).find("... and " + std::to_string(ct.flows) + " more"), std::string::npos);
}

}  // namespace
}  // namespace cordon::control::policy
