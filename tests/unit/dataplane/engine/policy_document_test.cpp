// Policy documents (DESIGN.md §3, docs/policy.md): the contract example, every error class
// with its exact path and message, round trips, limits and hostile input.
#include "dataplane/engine/policy_document.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace cordon::engine {
namespace {

// The example of DESIGN.md §3, verbatim.
constexpr std::string_view kSection3 = R"({
  "schema": "cordon.policy/v1",
  "unknown_devices": "drop",
  "devices": [
    {
      "name": "ct-1",
      "mac": "02:c0:4d:00:00:10",
      "ip": ["10.50.0.10"],
      "mode": "enforce",
      "rules": [
        {"name": "store-to-pacs", "dir": "out", "proto": "tcp",
         "peer": "10.50.0.20/32", "dport": 104,
         "app": {"dicom": {"calling_ae": ["CT1"], "called_ae": ["PACS"],
                           "commands": ["C-ECHO", "C-STORE"],
                           "sop_classes": ["1.2.840.10008.5.1.4.1.1.2"]}}},
        {"name": "results", "dir": "out", "proto": "tcp",
         "peer": "10.50.0.30/32", "dport": 2575,
         "app": {"hl7": {"message_types": ["ORU^R01"]}}},
        {"name": "ntp", "dir": "out", "proto": "udp", "peer": "10.50.0.1/32", "dport": 123},
        {"name": "biomed-ping", "dir": "in", "proto": "icmp", "peer": "10.50.0.0/24"}
      ],
      "patches": ["smb1-block", "ms17-010", "cve-2019-0708", "dicom-pdu-sanity"]
    }
  ],
  "patches": [
    {"id": "local-http-traversal", "cve": "CVE-2021-41773", "dir": "in",
     "proto": "tcp", "dport": 80, "match": {"content": "/.%2e/"}, "action": "drop"}
  ]
})";

IpAddress ip(std::string_view text) {
  return IpAddress::parse(text).value();
}
Cidr cidr(std::string_view text) {
  return Cidr::parse(text).value();
}
MacAddress mac(std::string_view text) {
  return MacAddress::parse(text).value();
}

PolicyDocument section3_expected() {
  Rule store{.name = "store-to-pacs",
             .dir = Direction::out,
             .proto = Protocol::tcp,
             .peer = cidr("10.50.0.20/32"),
             .dport = {104, 104},
             .dicom = DicomConstraints{.calling_ae = {"CT1"},
                                       .called_ae = {"PACS"},
                                       .commands = {"C-ECHO", "C-STORE"},
                                       .sop_classes = {"1.2.840.10008.5.1.4.1.1.2"}},
             .hl7 = std::nullopt};
  Rule results{.name = "results",
               .dir = Direction::out,
               .proto = Protocol::tcp,
               .peer = cidr("10.50.0.30/32"),
               .dport = {2575, 2575},
               .dicom = std::nullopt,
               .hl7 = Hl7Constraints{.message_types = {"ORU^R01"}, .sending_facilities = {}}};
  Rule ntp{.name = "ntp",
           .dir = Direction::out,
           .proto = Protocol::udp,
           .peer = cidr("10.50.0.1/32"),
           .dport = {123, 123},
           .dicom = std::nullopt,
           .hl7 = std::nullopt};
  Rule ping{.name = "biomed-ping",
            .dir = Direction::in,
            .proto = Protocol::icmp,
            .peer = cidr("10.50.0.0/24"),
            .dport = {0, 65535},
            .dicom = std::nullopt,
            .hl7 = std::nullopt};
  Device ct{.name = "ct-1",
            .mac = mac("02:c0:4d:00:00:10"),
            .ips = {ip("10.50.0.10")},
            .mode = DeviceMode::enforce,
            .deny_action = DenyAction::drop,
            .rules = {store, results, ntp, ping},
            .patches = {"smb1-block", "ms17-010", "cve-2019-0708", "dicom-pdu-sanity"}};
  PolicyPatch traversal{.id = "local-http-traversal",
                        .cve = "CVE-2021-41773",
                        .dir = Direction::in,
                        .proto = Protocol::tcp,
                        .dport = {80, 80},
                        .match = {.content = "/.%2e/",
                                  .offset = std::nullopt,
                                  .depth = std::nullopt,
                                  .regex = std::nullopt},
                        .action = PatchAction::drop};
  return PolicyDocument{
      .unknown_devices = UnknownDevices::drop, .devices = {ct}, .patches = {traversal}};
}

std::vector<std::string> error_strings(const PolicyParseResult& result) {
  std::vector<std::string> out;
  for (const PolicyError& e : result.errors) out.push_back(e.to_string());
  return out;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += "  " + l + "\n";
  return out;
}

// A parse either yields a document and no errors, or errors and no document.
void expect_consistent(const PolicyParseResult& result) {
  EXPECT_EQ(result.document.has_value(), result.errors.empty()) << joined(error_strings(result));
}

PolicyDocument parse_ok(std::string_view text) {
  const PolicyParseResult result = parse_policy(text);
  EXPECT_TRUE(result.errors.empty()) << joined(error_strings(result));
  EXPECT_TRUE(result.document.has_value());
  return result.document.value_or(PolicyDocument{});
}

std::filesystem::path source_dir() {
  return CORDON_SOURCE_DIR;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// --- the contract example ------------------------------------------------------------

TEST(PolicyDocument, Section3ExampleParsesToExpectedStructure) {
  EXPECT_EQ(parse_ok(kSection3), section3_expected());
}

// DESIGN.md §4: the lab's sample policy protects `modality` (ct-1, 10.50.0.10,
// 02:c0:4d:00:00:10) and holds at least the store-to-pacs rule of §3. The lab may narrow
// other rules of §3 for its own tests (its biomed-ping peer is narrower), so only the
// contract parts are compared; the full §3 example is checked above.
TEST(PolicyDocument, LabPolicyHoldsTheContractPartsOfSection3) {
  const std::string text = read_file(source_dir() / "examples/policies/lab.json");
  ASSERT_FALSE(text.empty());
  const PolicyDocument lab = parse_ok(text);
  const PolicyDocument contract = section3_expected();
  ASSERT_EQ(lab.devices.size(), 1u);
  const Device& device = lab.devices[0];
  EXPECT_EQ(device.name, "ct-1");
  EXPECT_EQ(device.mac, contract.devices[0].mac);
  EXPECT_EQ(device.ips, contract.devices[0].ips);
  EXPECT_EQ(device.mode, DeviceMode::enforce);
  EXPECT_EQ(device.patches, contract.devices[0].patches);
  ASSERT_FALSE(device.rules.empty());
  EXPECT_EQ(device.rules[0], contract.devices[0].rules[0]);  // store-to-pacs
  EXPECT_EQ(lab.unknown_devices, UnknownDevices::drop);
}

TEST(PolicyDocument, EveryExampleIsValidAndRoundTrips) {
  size_t examples = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(source_dir() / "examples/policies")) {
    if (entry.path().extension() != ".json") continue;
    SCOPED_TRACE(entry.path().string());
    const PolicyDocument doc = parse_ok(read_file(entry.path()));
    EXPECT_FALSE(doc.devices.empty());
    const std::string canonical = to_json(doc);
    EXPECT_EQ(parse_ok(canonical), doc);
    EXPECT_EQ(to_json(parse_ok(canonical)), canonical);
    ++examples;
  }
  EXPECT_GE(examples, 5u);
}

TEST(PolicyDocument, DefaultsOfOptionalFields) {
  const PolicyDocument doc = parse_ok(R"({"schema": "cordon.policy/v1", "devices": [
      {"name": "d", "mac": "02:00:00:00:00:01", "ip": ["10.0.0.1"]}]})");
  ASSERT_EQ(doc.devices.size(), 1u);
  EXPECT_EQ(doc.unknown_devices, UnknownDevices::drop);
  EXPECT_EQ(doc.devices[0].mode, DeviceMode::enforce);
  EXPECT_EQ(doc.devices[0].deny_action, DenyAction::drop);
  EXPECT_TRUE(doc.devices[0].rules.empty());
  EXPECT_TRUE(doc.devices[0].patches.empty());
  EXPECT_TRUE(doc.patches.empty());
}

TEST(PolicyDocument, EmptyDeviceListIsValid) {
  const PolicyDocument doc = parse_ok(R"({"schema": "cordon.policy/v1", "devices": []})");
  EXPECT_TRUE(doc.devices.empty());
}

TEST(PolicyDocument, DeviceMayNamePolicyPatchDefinedAfterIt) {
  const PolicyDocument doc = parse_ok(R"({"schema": "cordon.policy/v1", "devices": [
      {"name": "d", "mac": "02:00:00:00:00:01", "ip": ["10.0.0.1"], "patches": ["mine"]}],
    "patches": [{"id": "mine", "dir": "in", "proto": "udp", "match": {"regex": "x"}}]})");
  ASSERT_EQ(doc.devices.size(), 1u);
  EXPECT_EQ(doc.devices[0].patches, std::vector<std::string>{"mine"});
  ASSERT_EQ(doc.patches.size(), 1u);
  EXPECT_EQ(doc.patches[0].action, PatchAction::drop);
  EXPECT_EQ(doc.patches[0].dport, PortRange{});
}

TEST(PolicyDocument, PortForms) {
  const PolicyDocument doc = parse_ok(R"({"schema": "cordon.policy/v1", "devices": [
      {"name": "d", "mac": "02:00:00:00:00:01", "ip": ["10.0.0.1"], "rules": [
        {"name": "one", "dir": "out", "proto": "tcp", "peer": "10.0.0.0/8", "dport": 65535},
        {"name": "range", "dir": "out", "proto": "udp", "peer": "10.0.0.0/8", "dport": "1-1024"},
        {"name": "any", "dir": "in", "proto": "tcp", "peer": "0.0.0.0/0"},
        {"name": "v6-host", "dir": "in", "proto": "tcp", "peer": "2001:db8::1"}]}]})");
  ASSERT_EQ(doc.devices.size(), 1u);
  const auto& rules = doc.devices[0].rules;
  ASSERT_EQ(rules.size(), 4u);
  EXPECT_EQ(rules[0].dport, (PortRange{65535, 65535}));
  EXPECT_EQ(rules[1].dport, (PortRange{1, 1024}));
  EXPECT_EQ(rules[2].dport, PortRange{});
  EXPECT_EQ(rules[2].peer, cidr("0.0.0.0/0"));
  EXPECT_EQ(rules[3].peer.prefix_length, 128);
}

// --- errors: one document snippet, the exact errors ------------------------------------

std::string with_top(std::string_view fields) {
  return R"({"schema": "cordon.policy/v1", )" + std::string(fields) + "}";
}
std::string with_device(std::string_view device) {
  return with_top(R"("devices": [)" + std::string(device) + "]");
}
std::string with_device_fields(std::string_view fields) {
  return with_device(R"({"name": "d", "mac": "02:00:00:00:00:01", "ip": ["10.0.0.1"], )" +
                     std::string(fields) + "}");
}
std::string with_rule(std::string_view rule) {
  return with_device_fields(R"("rules": [)" + std::string(rule) + "]");
}
std::string with_tcp_rule_fields(std::string_view fields) {
  return with_rule(R"({"name": "r", "dir": "out", "proto": "tcp", "peer": "10.0.0.2", )" +
                   std::string(fields) + "}");
}
std::string with_app(std::string_view app) {
  return with_tcp_rule_fields(R"("dport": 104, "app": )" + std::string(app));
}
std::string with_patch(std::string_view patch) {
  return with_top(R"("devices": [], "patches": [)" + std::string(patch) + "]");
}
std::string with_patch_fields(std::string_view fields) {
  return with_patch(R"({"id": "p", "dir": "in", "proto": "tcp", )" + std::string(fields) + "}");
}

struct ErrorCase {
  std::string name;
  std::string document;
  std::vector<std::string> errors;
};

void PrintTo(const ErrorCase& c, std::ostream* os) {
  *os << c.name;
}

class PolicyErrors : public testing::TestWithParam<ErrorCase> {};

TEST_P(PolicyErrors, ReportsExactPathAndMessage) {
  const ErrorCase& c = GetParam();
  const PolicyParseResult result = parse_policy(c.document);
  expect_consistent(result);
  EXPECT_EQ(error_strings(result), c.errors) << c.document;
}

const std::string kR = "devices[0].rules[0]";
const std::string kApp = kR + ".app";
const std::string kDicom = kApp + ".dicom";
const std::string kHl7 = kApp + ".hl7";
const std::string kUid =
    "not a UID (digits and dots, at most 64 characters, no empty component, no leading zero)";
const std::string kAe = "not an AE title (1-16 printable ASCII characters, no backslash)";

std::vector<ErrorCase> top_level_cases() {
  return {
      {"root_not_object", "[]", {"expected a JSON object"}},
      {"schema_missing", R"({"devices": []})", {"schema: required field missing"}},
      {"schema_wrong",
       R"({"schema": "cordon.policy/v2", "devices": []})",
       {"schema: expected \"cordon.policy/v1\""}},
      {"schema_not_string", R"({"schema": 1, "devices": []})", {"schema: expected a string"}},
      {"devices_missing",
       with_top(R"("unknown_devices": "drop")"),
       {"devices: required field missing"}},
      {"devices_not_array", with_top(R"("devices": {})"), {"devices: expected an array"}},
      {"unknown_devices_bad",
       with_top(R"("unknown_devices": "allow", "devices": [])"),
       {"unknown_devices: expected one of: drop, monitor, forward"}},
      {"patches_not_array",
       with_top(R"("devices": [], "patches": "none")"),
       {"patches: expected an array"}},
      {"unknown_top_field",
       with_top(R"("device": [], "devices": [])"),
       {"device: unknown field (expected one of: schema, unknown_devices, devices, patches)"}},
      {"odd_key_is_quoted",
       with_top(R"("de.vices": [], "devices": [])"),
       {R"(["de.vices"]: unknown field (expected one of: schema, unknown_devices, devices, )"
        R"(patches))"}},
  };
}

std::vector<ErrorCase> device_cases() {
  const std::string d = "devices[0]";
  return {
      {"device_not_object", with_device(R"("ct")"), {d + ": expected an object"}},
      {"device_unknown_field",
       with_device_fields(R"("nmae": "x")"),
       {d + ".nmae: unknown field (expected one of: name, mac, ip, mode, deny_action, rules, "
            "patches)"}},
      {"device_all_missing",
       with_device("{}"),
       {d + ".name: required field missing", d + ".mac: required field missing",
        d + ".ip: required field missing"}},
      {"name_empty",
       with_device(R"({"name": "", "mac": "02:00:00:00:00:01", "ip": ["10.0.0.1"]})"),
       {d + ".name: must not be empty"}},
      {"name_charset",
       with_device(R"({"name": "ct 1", "mac": "02:00:00:00:00:01", "ip": ["10.0.0.1"]})"),
       {d + ".name: invalid character (allowed: A-Z a-z 0-9 . _ -)"}},
      {"name_too_long",
       with_device(R"({"name": ")" + std::string(64, 'a') +
                   R"(", "mac": "02:00:00:00:00:01", "ip": ["10.0.0.1"]})"),
       {d + ".name: longer than 63 characters"}},
      {"mac_bad",
       with_device(R"({"name": "d", "mac": "02:00:00:00:01", "ip": ["10.0.0.1"]})"),
       {d + ".mac: not a MAC address (expected xx:xx:xx:xx:xx:xx)"}},
      {"mac_multicast",
       with_device(R"({"name": "d", "mac": "01:00:5e:00:00:01", "ip": ["10.0.0.1"]})"),
       {d + ".mac: multicast MAC address"}},
      {"mac_broadcast",
       with_device(R"({"name": "d", "mac": "ff:ff:ff:ff:ff:ff", "ip": ["10.0.0.1"]})"),
       {d + ".mac: multicast MAC address"}},
      {"mac_zero",
       with_device(R"({"name": "d", "mac": "00:00:00:00:00:00", "ip": ["10.0.0.1"]})"),
       {d + ".mac: all-zero MAC address"}},
      {"ip_not_array",
       with_device(R"({"name": "d", "mac": "02:00:00:00:00:01", "ip": "10.0.0.1"})"),
       {d + ".ip: expected an array"}},
      {"ip_empty",
       with_device(R"({"name": "d", "mac": "02:00:00:00:00:01", "ip": []})"),
       {d + ".ip: must list at least one address"}},
      {"ip_bad_addresses",
       with_device(R"({"name": "d", "mac": "02:00:00:00:00:01", "ip": [
           "10.0.0.1/32", "224.0.0.1", "127.0.0.1", "0.0.0.0", "255.255.255.255", "::1", "::",
           "ff02::1", "::ffff:10.0.0.1", 7, "10.0.0.1\u0000x"]})"),
       {d + ".ip[0]: not an IP address", d + ".ip[1]: multicast address",
        d + ".ip[2]: loopback address", d + ".ip[3]: unspecified address",
        d + ".ip[4]: broadcast address", d + ".ip[5]: loopback address",
        d + ".ip[6]: unspecified address", d + ".ip[7]: multicast address",
        d + ".ip[8]: IPv4-mapped IPv6 address (write the IPv4 address)",
        d + ".ip[9]: expected a string", d + ".ip[10]: not an IP address"}},
      {"ip_repeated",
       with_device(R"({"name": "d", "mac": "02:00:00:00:00:01", "ip": ["10.0.0.1", "10.0.0.1"]})"),
       {d + ".ip[1]: duplicate address (also devices[0].ip[0])"}},
      {"mode_bad",
       with_device_fields(R"("mode": "block")"),
       {d + ".mode: expected one of: enforce, monitor, learn"}},
      {"mode_not_string",
       with_device_fields(R"("mode": 1)"),
       {d + ".mode: expected one of: enforce, monitor, learn"}},
      {"deny_action_bad",
       with_device_fields(R"("deny_action": "reject")"),
       {d + ".deny_action: expected one of: drop, reset"}},
      {"rules_not_array", with_device_fields(R"("rules": {})"), {d + ".rules: expected an array"}},
      {"patch_unknown",
       with_device_fields(R"("patches": ["smb1-block", "smb2-block"])"),
       {d + ".patches[1]: unknown patch id (neither built in nor in the policy's patches)"}},
      {"patch_repeated",
       with_device_fields(R"("patches": ["ms17-010", "ms17-010"])"),
       {d + ".patches[1]: duplicate value (also devices[0].patches[0])"}},
      {"patch_not_string",
       with_device_fields(R"("patches": [1])"),
       {d + ".patches[0]: expected a string"}},
  };
}

std::vector<ErrorCase> cross_device_cases() {
  return {
      {"duplicate_device_name",
       with_top(R"("devices": [
         {"name": "ct", "mac": "02:00:00:00:00:01", "ip": ["10.0.0.1"]},
         {"name": "ct", "mac": "02:00:00:00:00:02", "ip": ["10.0.0.2"]}])"),
       {"devices[1].name: duplicate device name (also devices[0].name)"}},
      {"duplicate_mac",
       with_top(R"("devices": [
         {"name": "a", "mac": "02:00:00:00:00:01", "ip": ["10.0.0.1"]},
         {"name": "b", "mac": "02:00:00:00:00:01", "ip": ["10.0.0.2"]}])"),
       {"devices[1].mac: duplicate MAC address (also devices[0].mac)"}},
      {"duplicate_mac_other_case",
       with_top(R"("devices": [
         {"name": "a", "mac": "02:aa:00:00:00:01", "ip": ["10.0.0.1"]},
         {"name": "b", "mac": "02:AA:00:00:00:01", "ip": ["10.0.0.2"]}])"),
       {"devices[1].mac: duplicate MAC address (also devices[0].mac)"}},
      {"overlapping_addresses",
       with_top(R"("devices": [
         {"name": "a", "mac": "02:00:00:00:00:01", "ip": ["10.0.0.1", "2001:db8::1"]},
         {"name": "b", "mac": "02:00:00:00:00:02", "ip": ["10.0.0.2", "2001:DB8:0::1"]}])"),
       {"devices[1].ip[1]: overlapping device addresses (also devices[0].ip[1])"}},
  };
}

std::vector<ErrorCase> rule_cases() {
  return {
      {"rule_not_object", with_rule(R"("r")"), {kR + ": expected an object"}},
      {"rule_all_missing",
       with_rule("{}"),
       {kR + ".name: required field missing", kR + ".dir: required field missing",
        kR + ".proto: required field missing", kR + ".peer: required field missing"}},
      {"rule_unknown_field",
       with_tcp_rule_fields(R"("dports": 80)"),
       {kR + ".dports: unknown field (expected one of: name, dir, proto, peer, dport, app)"}},
      {"rule_name_charset",
       with_rule(R"({"name": "a/b", "dir": "out", "proto": "tcp", "peer": "10.0.0.2"})"),
       {kR + ".name: invalid character (allowed: A-Z a-z 0-9 . _ -)"}},
      {"rule_duplicate_name",
       with_device_fields(R"("rules": [
         {"name": "r", "dir": "out", "proto": "tcp", "peer": "10.0.0.2"},
         {"name": "r", "dir": "in", "proto": "udp", "peer": "10.0.0.3"}])"),
       {"devices[0].rules[1].name: duplicate rule name (also devices[0].rules[0].name)"}},
      {"same_rule_name_in_two_devices_is_fine",
       with_top(R"("devices": [
         {"name": "a", "mac": "02:00:00:00:00:01", "ip": ["10.0.0.1"],
          "rules": [{"name": "r", "dir": "out", "proto": "icmp", "peer": "10.0.0.9"}]},
         {"name": "b", "mac": "02:00:00:00:00:02", "ip": ["10.0.0.2"],
          "rules": [{"name": "r", "dir": "out", "proto": "icmp", "peer": "10.0.0.9"}]}])"),
       {}},
      {"dir_bad",
       with_rule(R"({"name": "r", "dir": "both", "proto": "tcp", "peer": "10.0.0.2"})"),
       {kR + ".dir: expected one of: in, out"}},
      {"proto_bad",
       with_rule(R"({"name": "r", "dir": "in", "proto": "sctp", "peer": "10.0.0.2"})"),
       {kR + ".proto: expected one of: tcp, udp, icmp"}},
      {"peer_host_bits",
       with_rule(R"({"name": "r", "dir": "in", "proto": "tcp", "peer": "10.50.0.1/24"})"),
       {kR + ".peer: host bits set (the network is 10.50.0.0/24)"}},
      {"peer_host_bits_v6",
       with_rule(R"({"name": "r", "dir": "in", "proto": "tcp", "peer": "2001:db8::1/64"})"),
       {kR + ".peer: host bits set (the network is 2001:db8::/64)"}},
      {"peer_not_cidr",
       with_rule(R"({"name": "r", "dir": "in", "proto": "tcp", "peer": "10.0.0.0/33"})"),
       {kR + ".peer: not a CIDR"}},
      {"peer_garbage",
       with_rule(R"({"name": "r", "dir": "in", "proto": "tcp", "peer": "pacs"})"),
       {kR + ".peer: not a CIDR"}},
      {"peer_not_string",
       with_rule(R"({"name": "r", "dir": "in", "proto": "tcp", "peer": 10})"),
       {kR + ".peer: expected a string"}},
      {"dport_on_icmp",
       with_rule(R"({"name": "r", "dir": "in", "proto": "icmp", "peer": "10.0.0.2", "dport": 8})"),
       {kR + ".dport: not allowed for icmp rules"}},
      {"dport_zero",
       with_tcp_rule_fields(R"("dport": 0)"),
       {kR + ".dport: port out of range (1-65535)"}},
      {"dport_too_big",
       with_tcp_rule_fields(R"("dport": 65536)"),
       {kR + ".dport: port out of range (1-65535)"}},
      {"dport_negative",
       with_tcp_rule_fields(R"("dport": -80)"),
       {kR + ".dport: port out of range (1-65535)"}},
      {"dport_huge",
       with_tcp_rule_fields(R"("dport": 18446744073709551615)"),
       {kR + ".dport: port out of range (1-65535)"}},
      {"dport_fraction",
       with_tcp_rule_fields(R"("dport": 80.5)"),
       {kR + ".dport: expected a port (integer 1-65535) or a range \"LO-HI\""}},
      {"dport_bool",
       with_tcp_rule_fields(R"("dport": true)"),
       {kR + ".dport: expected a port (integer 1-65535) or a range \"LO-HI\""}},
      {"dport_string_single",
       with_tcp_rule_fields(R"("dport": "80")"),
       {kR + ".dport: not a port range (expected \"LO-HI\", e.g. \"8000-8099\")"}},
      {"dport_leading_zero",
       with_tcp_rule_fields(R"("dport": "080-90")"),
       {kR + ".dport: not a port range (expected \"LO-HI\", e.g. \"8000-8099\")"}},
      {"dport_spaces",
       with_tcp_rule_fields(R"("dport": "80 - 90")"),
       {kR + ".dport: not a port range (expected \"LO-HI\", e.g. \"8000-8099\")"}},
      {"dport_range_reversed",
       with_tcp_rule_fields(R"("dport": "90-80")"),
       {kR + ".dport: empty port range (LO > HI)"}},
      {"dport_range_zero",
       with_tcp_rule_fields(R"("dport": "0-80")"),
       {kR + ".dport: port out of range (1-65535)"}},
      {"dport_range_too_big",
       with_tcp_rule_fields(R"("dport": "80-70000")"),
       {kR + ".dport: port out of range (1-65535)"}},
  };
}

std::vector<ErrorCase> app_cases() {
  return {
      {"app_on_udp",
       with_rule(R"({"name": "r", "dir": "out", "proto": "udp", "peer": "10.0.0.2",
                     "app": {"hl7": {}}})"),
       {kApp + ": only allowed on tcp rules"}},
      {"app_on_udp_still_checked",
       with_rule(R"({"name": "r", "dir": "out", "proto": "udp", "peer": "10.0.0.2",
                     "app": {"hl7": {"message_types": []}}})"),
       {kApp + ": only allowed on tcp rules",
        kHl7 + ".message_types: empty list (omit the field to allow any)"}},
      {"app_not_object", with_app("[]"), {kApp + ": expected an object"}},
      {"app_empty", with_app("{}"), {kApp + ": expected exactly one of: dicom, hl7"}},
      {"app_both",
       with_app(R"({"dicom": {}, "hl7": {}})"),
       {kApp + ": expected exactly one of: dicom, hl7"}},
      {"app_unknown",
       with_app(R"({"smb": {}})"),
       {kApp + ".smb: unknown field (expected one of: dicom, hl7)",
        kApp + ": expected exactly one of: dicom, hl7"}},
      {"dicom_not_object", with_app(R"({"dicom": true})"), {kDicom + ": expected an object"}},
      {"dicom_unknown_field",
       with_app(R"({"dicom": {"called_aet": ["PACS"]}})"),
       {kDicom + ".called_aet: unknown field (expected one of: calling_ae, called_ae, commands, "
                 "sop_classes)"}},
      {"dicom_empty_list",
       with_app(R"({"dicom": {"calling_ae": []}})"),
       {kDicom + ".calling_ae: empty list (omit the field to allow any)"}},
      {"dicom_list_not_array",
       with_app(R"({"dicom": {"called_ae": "PACS"}})"),
       {kDicom + ".called_ae: expected an array"}},
      {"ae_titles",
       with_app(R"({"dicom": {"called_ae": [" PACS", "PACS ", "    ", "", "ABCDEFGHIJKLMNOPQ",
                                            "A\\B", "A\tB", "ÄRZTE", 5, "MY PACS", "PACS"]}})"),
       {kDicom + ".called_ae[0]: leading or trailing spaces (not significant in AE titles; "
                 "remove them)",
        kDicom + ".called_ae[1]: leading or trailing spaces (not significant in AE titles; "
                 "remove them)",
        kDicom + ".called_ae[2]: only spaces", kDicom + ".called_ae[3]: " + kAe,
        kDicom + ".called_ae[4]: " + kAe, kDicom + ".called_ae[5]: " + kAe,
        kDicom + ".called_ae[6]: " + kAe, kDicom + ".called_ae[7]: " + kAe,
        kDicom + ".called_ae[8]: expected a string"}},
      {"ae_duplicate",
       with_app(R"({"dicom": {"calling_ae": ["CT1", "CT2", "CT1"]}})"),
       {kDicom + ".calling_ae[2]: duplicate value (also " + kDicom + ".calling_ae[0])"}},
      {"commands",
       with_app(R"({"dicom": {"commands": ["C-ECHO", "c-store", "C-PUSH", "N-EVENT-REPORT"]}})"),
       {kDicom + ".commands[1]: unknown DIMSE command (expected one of: C-ECHO, C-STORE, "
                 "C-FIND, C-MOVE, C-GET, N-EVENT-REPORT, N-GET, N-SET, N-ACTION, N-CREATE, "
                 "N-DELETE)",
        kDicom + ".commands[2]: unknown DIMSE command (expected one of: C-ECHO, C-STORE, "
                 "C-FIND, C-MOVE, C-GET, N-EVENT-REPORT, N-GET, N-SET, N-ACTION, N-CREATE, "
                 "N-DELETE)"}},
      {"sop_classes",
       with_app(R"({"dicom": {"sop_classes": ["1.2.840.10008.1.1", "1.02.3", "1..2", "1.2.",
           ".1", "1.2a", "", "0.0.1", ")" +
                std::string(31, '1') + "." + std::string(32, '2') + R"(", ")" +
                std::string(31, '1') + "." + std::string(33, '2') + R"("]}})"),
       {kDicom + ".sop_classes[1]: " + kUid, kDicom + ".sop_classes[2]: " + kUid,
        kDicom + ".sop_classes[3]: " + kUid, kDicom + ".sop_classes[4]: " + kUid,
        kDicom + ".sop_classes[5]: " + kUid, kDicom + ".sop_classes[6]: " + kUid,
        kDicom + ".sop_classes[9]: " + kUid}},
      {"hl7_unknown_field",
       with_app(R"({"hl7": {"message_type": ["ADT"]}})"),
       {kHl7 + ".message_type: unknown field (expected one of: message_types, "
               "sending_facilities)"}},
      {"hl7_message_types",
       with_app(R"({"hl7": {"message_types": ["ADT", "ORU^R01", "oru^r01", "ORU^", "ORUX",
                                              "OR", "ORU R01", "ADT^A01^ADT_A01"]}})"),
       {kHl7 + ".message_types[2]: not an HL7 message type (e.g. ADT or ORU^R01)",
        kHl7 + ".message_types[3]: not an HL7 message type (e.g. ADT or ORU^R01)",
        kHl7 + ".message_types[4]: not an HL7 message type (e.g. ADT or ORU^R01)",
        kHl7 + ".message_types[5]: not an HL7 message type (e.g. ADT or ORU^R01)",
        kHl7 + ".message_types[6]: not an HL7 message type (e.g. ADT or ORU^R01)",
        kHl7 + ".message_types[7]: not an HL7 message type (e.g. ADT or ORU^R01)"}},
      {"hl7_facilities",
       with_app(R"({"hl7": {"sending_facilities": ["CHEM LAB", "", "A|B", "A^B", "A~B",
           "A\\B", "A&B", "A\rB", ")" +
                std::string(227, 'x') + R"(", ")" + std::string(228, 'x') + R"("]}})"),
       {kHl7 + ".sending_facilities[1]: must not be empty",
        kHl7 + ".sending_facilities[2]: contains an HL7 delimiter (| ^ ~ \\ &) or a control "
               "character",
        kHl7 + ".sending_facilities[3]: contains an HL7 delimiter (| ^ ~ \\ &) or a control "
               "character",
        kHl7 + ".sending_facilities[4]: contains an HL7 delimiter (| ^ ~ \\ &) or a control "
               "character",
        kHl7 + ".sending_facilities[5]: contains an HL7 delimiter (| ^ ~ \\ &) or a control "
               "character",
        kHl7 + ".sending_facilities[6]: contains an HL7 delimiter (| ^ ~ \\ &) or a control "
               "character",
        kHl7 + ".sending_facilities[7]: contains an HL7 delimiter (| ^ ~ \\ &) or a control "
               "character",
        kHl7 + ".sending_facilities[9]: longer than 227 characters"}},
  };
}

std::vector<ErrorCase> patch_cases() {
  const std::string p = "patches[0]";
  return {
      {"patch_not_object", with_patch("7"), {p + ": expected an object"}},
      {"patch_all_missing",
       with_patch("{}"),
       {p + ".id: required field missing", p + ".dir: required field missing",
        p + ".proto: required field missing", p + ".match: required field missing"}},
      {"patch_unknown_field",
       with_patch_fields(R"("match": {"regex": "x"}, "severity": 1)"),
       {p + ".severity: unknown field (expected one of: id, cve, dir, proto, dport, match, "
            "action)"}},
      {"patch_id_builtin",
       with_patch(R"({"id": "ms17-010", "dir": "in", "proto": "tcp", "match": {"regex": "x"}})"),
       {p + ".id: collides with a built-in patch id"}},
      {"patch_id_charset",
       with_patch(R"({"id": "my patch", "dir": "in", "proto": "tcp", "match": {"regex": "x"}})"),
       {p + ".id: invalid character (allowed: A-Z a-z 0-9 . _ -)"}},
      {"patch_id_duplicate",
       with_top(R"("devices": [], "patches": [
         {"id": "p", "dir": "in", "proto": "tcp", "match": {"regex": "x"}},
         {"id": "p", "dir": "in", "proto": "udp", "match": {"regex": "y"}}])"),
       {"patches[1].id: duplicate patch id (also patches[0].id)"}},
      {"patch_cve",
       with_patch_fields(R"("cve": "CVE-21-4177", "match": {"regex": "x"})"),
       {p + ".cve: not a CVE id (expected CVE-YYYY-NNNN)"}},
      {"patch_cve_short",
       with_patch_fields(R"("cve": "CVE-2021-417", "match": {"regex": "x"})"),
       {p + ".cve: not a CVE id (expected CVE-YYYY-NNNN)"}},
      {"patch_proto_icmp",
       with_patch(R"({"id": "p", "dir": "in", "proto": "icmp", "match": {"regex": "x"}})"),
       {p + ".proto: expected one of: tcp, udp"}},
      {"patch_dport",
       with_patch_fields(R"("dport": 0, "match": {"regex": "x"})"),
       {p + ".dport: port out of range (1-65535)"}},
      {"patch_action",
       with_patch_fields(R"("match": {"regex": "x"}, "action": "block")"),
       {p + ".action: expected one of: drop, reset, alert"}},
      {"patch_reset_udp",
       with_patch(R"({"id": "p", "dir": "in", "proto": "udp", "match": {"regex": "x"},
                      "action": "reset"})"),
       {p + ".action: reset needs proto tcp"}},
      {"match_not_object",
       with_patch_fields(R"("match": "x")"),
       {p + ".match: expected an object"}},
      {"match_empty", with_patch_fields(R"("match": {})"), {p + ".match: needs content or regex"}},
      {"match_unknown_field",
       with_patch_fields(R"("match": {"contents": "x"})"),
       {p + ".match.contents: unknown field (expected one of: content, offset, depth, regex)",
        p + ".match: needs content or regex"}},
      {"content_empty",
       with_patch_fields(R"("match": {"content": ""})"),
       {p + ".match.content: must not be empty"}},
      {"content_unterminated",
       with_patch_fields(R"("match": {"content": "a|0d 0a"})"),
       {p + ".match.content: unterminated |hex| block"}},
      {"content_bad_hex",
       with_patch_fields(R"("match": {"content": "|0d 0g|"})"),
       {p + ".match.content: invalid |hex| block (pairs of hex digits, optionally separated by "
            "spaces)"}},
      {"content_odd_hex",
       with_patch_fields(R"("match": {"content": "|0d 0|"})"),
       {p + ".match.content: invalid |hex| block (pairs of hex digits, optionally separated by "
            "spaces)"}},
      {"content_empty_hex",
       with_patch_fields(R"("match": {"content": "a| |b"})"),
       {p + ".match.content: empty |hex| block"}},
      {"content_bad_escape",
       with_patch_fields(R"("match": {"content": "a\\nb"})"),
       {p + ".match.content: invalid escape (only \\| and \\\\; write other bytes as |hex|)"}},
      {"content_too_long",
       with_patch_fields(R"("match": {"content": ")" + std::string(1025, 'A') + R"("})"),
       {p + ".match.content: longer than 1024 bytes (after decoding)"}},
      {"offset_without_content",
       with_patch_fields(R"("match": {"regex": "x", "offset": 4})"),
       {p + ".match.offset: needs content"}},
      {"offset_range",
       with_patch_fields(R"("match": {"content": "x", "offset": 65536})"),
       {p + ".match.offset: out of range (0-65535)"}},
      {"offset_type",
       with_patch_fields(R"("match": {"content": "x", "offset": "4"})"),
       {p + ".match.offset: expected an integer"}},
      {"depth_zero",
       with_patch_fields(R"("match": {"content": "x", "depth": 0})"),
       {p + ".match.depth: out of range (1-65535)"}},
      {"depth_shorter_than_content",
       with_patch_fields(R"("match": {"content": "|00 01 02|", "depth": 2})"),
       {p + ".match.depth: shorter than content (it could never match)"}},
      {"regex_empty",
       with_patch_fields(R"("match": {"regex": ""})"),
       {p + ".match.regex: must not be empty"}},
      {"regex_too_long",
       with_patch_fields(R"("match": {"regex": ")" + std::string(1025, 'a') + R"("})"),
       {p + ".match.regex: longer than 1024 characters"}},
  };
}

std::vector<ErrorCase> all_cases() {
  std::vector<ErrorCase> out;
  for (auto cases : {top_level_cases(), device_cases(), cross_device_cases(), rule_cases(),
                     app_cases(), patch_cases()}) {
    out.insert(out.end(), cases.begin(), cases.end());
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Table, PolicyErrors, testing::ValuesIn(all_cases()),
                         [](const testing::TestParamInfo<ErrorCase>& param_info) {
                           return param_info.param.name;
                         });

TEST(PolicyDocument, ReportsEveryErrorOfADocument) {
  // Nine independent mistakes spread over the document; each must be listed.
  const PolicyParseResult result = parse_policy(R"({
    "schema": "cordon.policy/v1",
    "unknown_devices": "allow",
    "devices": [
      {"name": "ct-1", "mac": "02:c0:4d:00:00:10", "ip": ["10.50.0.10"], "mode": "enforce",
       "rules": [
         {"name": "store", "dir": "out", "proto": "tcp", "peer": "10.50.0.20/24", "dport": 104},
         {"name": "store", "dir": "out", "proto": "udp", "peer": "10.50.0.1", "dport": 0}
       ],
       "patches": ["smb1-block", "no-such-patch"]},
      {"name": "ct-1", "mac": "02:c0:4d:00:00:11", "ip": ["10.50.0.10"], "mode": "guard"}
    ],
    "patches": [{"id": "x", "dir": "in", "proto": "tcp", "match": {}}]
  })");
  EXPECT_FALSE(result.document.has_value());
  EXPECT_EQ(error_strings(result),
            (std::vector<std::string>{
                "unknown_devices: expected one of: drop, monitor, forward",
                "devices[0].rules[0].peer: host bits set (the network is 10.50.0.0/24)",
                "devices[0].rules[1].name: duplicate rule name (also devices[0].rules[0].name)",
                "devices[0].rules[1].dport: port out of range (1-65535)",
                "devices[0].patches[1]: unknown patch id (neither built in nor in the policy's "
                "patches)",
                "devices[1].name: duplicate device name (also devices[0].name)",
                "devices[1].ip[0]: overlapping device addresses (also devices[0].ip[0])",
                "devices[1].mode: expected one of: enforce, monitor, learn",
                "patches[0].match: needs content or regex",
            }));
}

// --- JSON syntax -----------------------------------------------------------------------

TEST(PolicyDocument, MalformedJsonIsOneErrorWithLineAndColumn) {
  struct Case {
    std::string_view text;
    std::string_view prefix;  // the message continues with Boost.JSON's description
  };
  const Case cases[] = {
      {"", "invalid JSON at line 1, column 1: "},
      {"{", "invalid JSON at line 1, column 2: "},
      {"{\n  \"schema\": \"cordon.policy/v1\",\n  \"devices\": [,]\n}",
       "invalid JSON at line 3, column 15: "},
      {"{\"schema\": \"cordon.policy/v1\", \"devices\": []} x",
       "invalid JSON at line 1, column 47: "},
      {"{\"schema\": \"cordon.policy/v1\", \"devices\": [],}",
       "invalid JSON at line 1, column 46: "},
      {"// comment\n{}", "invalid JSON at line 1, column 1: "},
      {"{\"schema\": \"cordon.policy/v1\xff\", \"devices\": []}",
       "invalid JSON at line 1, column 29: "},
      {"{\"schema\": 'cordon.policy/v1', \"devices\": []}", "invalid JSON at line 1, column 12: "},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.text));
    const PolicyParseResult result = parse_policy(c.text);
    EXPECT_FALSE(result.document.has_value());
    ASSERT_EQ(result.errors.size(), 1u) << joined(error_strings(result));
    EXPECT_EQ(result.errors[0].path, "");
    EXPECT_EQ(result.errors[0].message.substr(0, c.prefix.size()), c.prefix);
    EXPECT_GT(result.errors[0].message.size(), c.prefix.size());
  }
}

TEST(PolicyDocument, DuplicateKeysAreErrorsWithTheirPath) {
  const PolicyParseResult result = parse_policy(R"({
    "schema": "cordon.policy/v1",
    "devices": [
      {"name": "a", "mac": "02:00:00:00:00:01", "ip": ["10.0.0.1"]},
      {"name": "b", "mac": "02:00:00:00:00:02", "ip": ["10.0.0.2"], "mode": "enforce",
       "rules": [{"name": "r", "dir": "out", "proto": "tcp", "peer": "10.0.0.3",
                  "app": {"dicom": {"called_ae": ["A"], "called_ae": ["B"]}}}],
       "mode": "learn"}
    ],
    "schema": "cordon.policy/v1"
  })");
  EXPECT_FALSE(result.document.has_value());
  EXPECT_EQ(error_strings(result), (std::vector<std::string>{
                                       "devices[1].rules[0].app.dicom.called_ae: duplicate key",
                                       "devices[1].mode: duplicate key",
                                       "schema: duplicate key",
                                   }));
}

TEST(PolicyDocument, DuplicateKeyWithEscapesIsStillADuplicate) {
  // "\u006eame" is "name": the comparison is on decoded keys.
  const PolicyParseResult result = parse_policy(with_device(
      R"({"name": "d", "\u006eame": "e", "mac": "02:00:00:00:00:01", "ip": ["10.0.0.1"]})"));
  EXPECT_EQ(error_strings(result), std::vector<std::string>{"devices[0].name: duplicate key"});
}

TEST(PolicyDocument, HostileKeysAreQuotedAndCutInPaths) {
  const std::string long_key(1000, 'k');
  const PolicyParseResult result =
      parse_policy(with_top(R"("devices": [], ")" + long_key + R"(": 1, "a\"b\u0001": 2)"));
  EXPECT_EQ(error_strings(result),
            (std::vector<std::string>{
                "[\"" + std::string(64, 'k') +
                    "...\"]: unknown field (expected one of: schema, unknown_devices, devices, "
                    "patches)",
                R"(["a\"b\u0001"]: unknown field (expected one of: schema, unknown_devices, )"
                R"(devices, patches))",
            }));
}

// --- limits ----------------------------------------------------------------------------

std::string device_json(size_t i, std::string_view extra = "") {
  // Distinct names, MACs and addresses for any i < 65536.
  char buf[160];
  std::snprintf(buf, sizeof buf,
                R"({"name": "d%zu", "mac": "02:00:00:00:%02zx:%02zx", "ip": ["10.%zu.%zu.1"])", i,
                (i >> 8) & 0xFF, i & 0xFF, (i >> 8) & 0xFF, i & 0xFF);
  return std::string(buf) + std::string(extra) + "}";
}

std::string devices_document(size_t n) {
  std::string devices;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) devices += ",";
    devices += device_json(i);
  }
  return with_top(R"("devices": [)" + devices + "]");
}

TEST(PolicyDocument, DeviceLimit) {
  const PolicyParseResult at_limit = parse_policy(devices_document(kMaxDevices));
  EXPECT_TRUE(at_limit.errors.empty()) << joined(error_strings(at_limit));
  ASSERT_TRUE(at_limit.document.has_value());
  EXPECT_EQ(at_limit.document->devices.size(), kMaxDevices);

  const PolicyParseResult over = parse_policy(devices_document(kMaxDevices + 1));
  EXPECT_EQ(error_strings(over), std::vector<std::string>{"devices: too many devices: 4097, "
                                                          "at most 4096"});
}

TEST(PolicyDocument, AddressLimitPerDevice) {
  std::string ips;
  for (size_t i = 1; i <= kMaxDeviceIps + 1; ++i) {
    ips += (i > 1 ? ", \"10.0.0." : "\"10.0.0.") + std::to_string(i) + "\"";
  }
  const PolicyParseResult result = parse_policy(
      with_device(R"({"name": "d", "mac": "02:00:00:00:00:01", "ip": [)" + ips + "]}"));
  EXPECT_EQ(error_strings(result),
            std::vector<std::string>{"devices[0].ip: too many addresses: 17, at most 16"});
}

std::string rules_json(size_t n) {
  std::string rules;
  rules.reserve(n * 64);
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) rules += ",";
    rules += R"({"name":"r)" + std::to_string(i) +
             R"(","dir":"out","proto":"icmp","peer":"10.0.0.0/8"})";
  }
  return rules;
}

TEST(PolicyDocument, RuleLimitCountsAllDevices) {
  const size_t half = kMaxRulesTotal / 2;
  const std::string exact =
      with_top(R"("devices": [)" + device_json(0, R"(, "rules": [)" + rules_json(half) + "]") +
               "," + device_json(1, R"(, "rules": [)" + rules_json(half) + "]") + "]");
  const PolicyParseResult at_limit = parse_policy(exact);
  EXPECT_TRUE(at_limit.errors.empty()) << joined(error_strings(at_limit));

  const std::string over =
      with_top(R"("devices": [)" + device_json(0, R"(, "rules": [)" + rules_json(half) + "]") +
               "," + device_json(1, R"(, "rules": [)" + rules_json(half + 1) + "]") + "]");
  EXPECT_EQ(error_strings(parse_policy(over)),
            std::vector<std::string>{"devices: too many rules in total: 200001, at most 200000"});
}

TEST(PolicyDocument, DocumentSizeLimit) {
  std::string big = with_top(R"("devices": [], "patches": [])");
  big.insert(big.size() - 1, std::string(kMaxPolicyBytes - big.size(), ' '));
  ASSERT_EQ(big.size(), kMaxPolicyBytes);
  EXPECT_TRUE(parse_policy(big).document.has_value());

  big.insert(big.size() - 1, " ");
  EXPECT_EQ(error_strings(parse_policy(big)),
            std::vector<std::string>{"document too large: 16777217 bytes, at most 16777216"});
}

TEST(PolicyDocument, NestingLimit) {
  auto nested = [](size_t depth) {
    // The root object is level 1; the unknown field holds depth - 1 nested arrays.
    return R"({"schema": "cordon.policy/v1", "devices": [], "x": )" + std::string(depth - 1, '[') +
           std::string(depth - 1, ']') + "}";
  };
  EXPECT_EQ(error_strings(parse_policy(nested(kMaxPolicyDepth))),
            std::vector<std::string>{
                "x: unknown field (expected one of: schema, unknown_devices, devices, patches)"});
  const PolicyParseResult too_deep = parse_policy(nested(kMaxPolicyDepth + 1));
  ASSERT_EQ(too_deep.errors.size(), 1u);
  EXPECT_EQ(too_deep.errors[0].message,
            "invalid JSON at line 1, column 83: nested deeper than 32 levels");
}

TEST(PolicyDocument, ErrorListIsCut) {
  std::string ips;
  for (size_t i = 0; i < 3000; ++i) ips += (i > 0 ? ",1" : "1");
  const PolicyParseResult result = parse_policy(
      with_device(R"({"name": "d", "mac": "02:00:00:00:00:01", "ip": [)" + ips + "]}"));
  ASSERT_EQ(result.errors.size(), kMaxPolicyErrors + 1);
  EXPECT_EQ(result.errors.back().to_string(), "too many errors; only the first 1000 are listed");
  EXPECT_FALSE(result.document.has_value());
}

// --- serialisation ---------------------------------------------------------------------

TEST(PolicyDocument, CanonicalJson) {
  const PolicyDocument doc = parse_ok(R"({"devices": [{"ip": ["2001:DB8::0:1", "10.0.0.1"],
      "mac": "02:AB:00:00:00:01", "name": "d", "rules": [
        {"peer": "10.0.0.0/8", "proto": "tcp", "dir": "out", "name": "r", "dport": "80-80"},
        {"peer": "10.0.0.9", "proto": "udp", "dir": "in", "name": "s", "dport": "1-1024"},
        {"peer": "10.0.0.9", "proto": "tcp", "dir": "in", "name": "t",
         "app": {"dicom": {"commands": ["C-ECHO"]}}}]}],
    "patches": [{"match": {"depth": 9, "content": "a|7C|\\|\\\\|0D 0a ff|b\""}, "proto": "tcp",
                 "dir": "in", "id": "p"}],
    "schema": "cordon.policy/v1"})");
  EXPECT_EQ(to_json(doc),
            R"({"schema":"cordon.policy/v1","unknown_devices":"drop","devices":[{"name":"d",)"
            R"("mac":"02:ab:00:00:00:01","ip":["2001:db8::1","10.0.0.1"],"mode":"enforce",)"
            R"("deny_action":"drop","rules":[{"name":"r","dir":"out","proto":"tcp",)"
            R"("peer":"10.0.0.0/8","dport":80},{"name":"s","dir":"in","proto":"udp",)"
            R"("peer":"10.0.0.9/32","dport":"1-1024"},{"name":"t","dir":"in","proto":"tcp",)"
            R"("peer":"10.0.0.9/32","app":{"dicom":{"commands":["C-ECHO"]}}}],"patches":[]}],)"
            R"("patches":[{"id":"p","dir":"in","proto":"tcp","match":{"content":)"
            R"("a|7c 7c 5c 0d 0a ff|b\"","depth":9},"action":"drop"}]})");
  ASSERT_EQ(doc.patches.size(), 1u);
  EXPECT_EQ(doc.patches[0].match.content, std::string("a||\\\r\n\xff"
                                                      "b\""));
}

TEST(PolicyDocument, RoundTripOfEveryFieldAndValue) {
  PolicyDocument doc = section3_expected();
  doc.unknown_devices = UnknownDevices::forward;
  Device& d = doc.devices[0];
  d.mode = DeviceMode::learn;
  d.deny_action = DenyAction::reset;
  d.ips.push_back(ip("fe80::1"));
  d.rules[1].hl7->sending_facilities = {"LAB ONE", "Ünïcode"};
  d.rules.push_back(Rule{.name = "range",
                         .dir = Direction::in,
                         .proto = Protocol::udp,
                         .peer = cidr("2001:db8::/32"),
                         .dport = {5000, 5099},
                         .dicom = std::nullopt,
                         .hl7 = std::nullopt});
  d.rules.push_back(Rule{.name = "dicom-any",
                         .dir = Direction::out,
                         .proto = Protocol::tcp,
                         .peer = cidr("10.0.0.0/8"),
                         .dport = {},
                         .dicom = DicomConstraints{},
                         .hl7 = std::nullopt});
  doc.devices.push_back(Device{.name = "second",
                               .mac = mac("02:00:00:00:00:02"),
                               .ips = {ip("10.1.0.1")},
                               .mode = DeviceMode::monitor,
                               .deny_action = DenyAction::drop,
                               .rules = {},
                               .patches = {"local-http-traversal", "other"}});
  std::string every_byte;
  for (int b = 0; b < 256; ++b) every_byte += static_cast<char>(b);
  doc.patches.push_back(PolicyPatch{
      .id = "other",
      .cve = "",
      .dir = Direction::out,
      .proto = Protocol::udp,
      .dport = {},
      .match = {.content = every_byte, .offset = 0, .depth = 65535, .regex = "^GET \\x2f"},
      .action = PatchAction::alert});
  const std::string text = to_json(doc);
  EXPECT_EQ(parse_ok(text), doc) << text;
}

TEST(PolicyDocument, EnumSpellings) {
  EXPECT_EQ(to_string(DeviceMode::learn), "learn");
  EXPECT_EQ(to_string(Direction::in), "in");
  EXPECT_EQ(to_string(Protocol::icmp), "icmp");
  EXPECT_EQ(to_string(UnknownDevices::forward), "forward");
  EXPECT_EQ(to_string(DenyAction::reset), "reset");
  EXPECT_EQ(to_string(PatchAction::alert), "alert");
}

// --- robustness ------------------------------------------------------------------------

TEST(PolicyDocument, EveryTruncationIsAnErrorNeverACrash) {
  for (size_t n = 0; n < kSection3.size(); ++n) {
    const PolicyParseResult result = parse_policy(kSection3.substr(0, n));
    ASSERT_FALSE(result.document.has_value()) << n;
    ASSERT_FALSE(result.errors.empty()) << n;
  }
}

TEST(PolicyDocument, RandomMutationsGiveADocumentOrErrors) {
  std::mt19937 rng(20240521);  // fixed seed: a failure reproduces
  const std::string base(kSection3);
  size_t valid = 0;
  for (int round = 0; round < 4000; ++round) {
    std::string text = base;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % text.size();
      switch (rng() % 3) {
        case 0:
          text[at] = static_cast<char>(rng() % 256);
          break;
        case 1:
          text.erase(at, 1 + rng() % 8);
          break;
        default:
          text.insert(at, text.substr(rng() % text.size(), 1 + rng() % 16));
          break;
      }
      if (text.empty()) text = "{";
    }
    const PolicyParseResult result = parse_policy(text);
    ASSERT_EQ(result.document.has_value(), result.errors.empty()) << text;
    if (result.document) {
      ++valid;
      ASSERT_EQ(parse_ok(to_json(*result.document)), *result.document) << text;
    }
  }
  // Some mutations (inside strings) keep the document valid; the round trip ran on them.
  EXPECT_GT(valid, 0u);
}

}  // namespace
}  // namespace cordon::engine
