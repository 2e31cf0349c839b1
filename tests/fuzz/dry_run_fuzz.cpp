// Fuzz target for the policy dry-run (control/policy): arbitrary bytes as a capture file
// (pcap or pcapng, read by libpcap), replayed through two engines with two small fixed
// policies. Bad input must come back as an Error; a good one as a report whose totals
// add up and that renders as JSON and text. A violation traps so the fuzzer keeps it.
#include <sys/mman.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <string>

#include "control/policy/dry_run.h"

namespace {

using cordon::control::policy::DeviceReport;
using cordon::control::policy::DryRunOptions;
using cordon::control::policy::DryRunReport;
using cordon::engine::PolicyDocument;

void require(bool condition) {
  if (!condition) __builtin_trap();
}

// The lab's device (DESIGN §4) with DICOM and HL7 rules and catalog patches; the
// candidate narrows the AE titles and message types, drops the SMB and ping rules, adds
// patches (one of the policy's own), a learn-mode device, and monitors unknown devices.
constexpr const char* kActive = R"({
  "schema": "cordon.policy/v1", "unknown_devices": "drop",
  "devices": [{"name": "ct-1", "mac": "02:c0:4d:00:00:10", "ip": ["10.50.0.10"],
    "mode": "enforce",
    "rules": [
      {"name": "store-to-pacs", "dir": "out", "proto": "tcp", "peer": "10.50.0.20/32",
       "dport": 104, "app": {"dicom": {"called_ae": ["PACS", "ARCHIVE"]}}},
      {"name": "results", "dir": "out", "proto": "tcp", "peer": "10.50.0.30/32",
       "dport": 2575, "app": {"hl7": {"message_types": ["ORU^R01", "ADT^A01"]}}},
      {"name": "smb", "dir": "in", "proto": "tcp", "peer": "10.50.0.0/24", "dport": 445},
      {"name": "web", "dir": "in", "proto": "tcp", "peer": "10.50.0.0/24", "dport": 80},
      {"name": "ping", "dir": "in", "proto": "icmp", "peer": "10.50.0.0/24"}],
    "patches": ["smb1-block", "dicom-pdu-sanity"]}],
  "patches": []})";

constexpr const char* kCandidate = R"({
  "schema": "cordon.policy/v1", "unknown_devices": "monitor",
  "devices": [{"name": "ct-1", "mac": "02:c0:4d:00:00:10", "ip": ["10.50.0.10"],
    "mode": "enforce",
    "rules": [
      {"name": "store-to-pacs", "dir": "out", "proto": "tcp", "peer": "10.50.0.20/32",
       "dport": 104, "app": {"dicom": {"calling_ae": ["CT1"], "called_ae": ["PACS"],
                                       "commands": ["C-ECHO", "C-STORE"]}}},
      {"name": "results", "dir": "out", "proto": "tcp", "peer": "10.50.0.30/32",
       "dport": 2575, "app": {"hl7": {"message_types": ["ORU^R01"]}}},
      {"name": "web", "dir": "in", "proto": "tcp", "peer": "10.50.0.0/24", "dport": 80}],
    "patches": ["smb1-block", "ms17-010", "cve-2019-0708", "dicom-pdu-sanity",
                "local-http-traversal"]},
   {"name": "mr-2", "mac": "02:c0:4d:00:00:11", "ip": ["10.50.0.11"], "mode": "learn",
    "rules": []}],
  "patches": [{"id": "local-http-traversal", "cve": "CVE-2021-41773", "dir": "in",
               "proto": "tcp", "dport": 80, "match": {"content": "/.%2e/"},
               "action": "drop"}]})";

const PolicyDocument& parsed(const char* json) {
  auto parse = [](const char* text) {
    cordon::engine::PolicyParseResult r = cordon::engine::parse_policy(text);
    require(r.document.has_value());
    return *r.document;
  };
  static const PolicyDocument active = parse(kActive);
  static const PolicyDocument candidate = parse(kCandidate);
  return json == kActive ? active : candidate;
}

uint64_t flows_of(const DeviceReport& d) {
  require(d.unchanged_flows <= d.flows);
  require(d.newly_blocked.size() <= d.newly_blocked_total);
  require(d.newly_allowed.size() <= d.newly_allowed_total);
  for (const auto& f : d.newly_blocked) require(f.stricter.has_value() && f.stricter->packets > 0);
  for (const auto& f : d.newly_allowed) require(f.looser.has_value() && f.looser->packets > 0);
  return d.flows;
}

void check(const DryRunReport& r) {
  const auto& t = r.totals;
  require(t.active.forwarded + t.active.dropped == t.packets);
  require(t.candidate.forwarded + t.candidate.dropped == t.packets);
  require(t.active.reported <= t.active.forwarded);
  uint64_t flows = flows_of(r.unclaimed);
  for (const DeviceReport& d : r.devices) flows += flows_of(d);
  require(flows == t.flows);
  require(t.unchanged_flows <= t.flows);
  require(t.unclaimed_packets + t.undecodable_packets <= t.packets);
  const std::string json = boost::json::serialize(to_json(r));
  require(boost::json::parse(json).is_object());
  require(!to_text(r).empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (size_t{1} << 20)) return 0;
  // The dry-run reads a file by path: the input goes to an anonymous in-memory file.
  const int fd = memfd_create("dry-run-fuzz", MFD_CLOEXEC);
  require(fd >= 0);
  for (size_t done = 0; done < size;) {
    const ssize_t n = write(fd, data + done, size - done);
    require(n > 0);
    done += static_cast<size_t>(n);
  }
  DryRunOptions options;
  // Small tables: building the engines dominates the time of one input.
  options.flows = 64;
  options.inspected_flows = 4;
  options.limits.max_packets = 4096;
  options.max_listed_flows = 8;
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  const auto result =
      cordon::control::policy::dry_run_pcap(&parsed(kActive), parsed(kCandidate), path, options);
  if (result) {
    check(result.value());
  } else {
    require(!result.error().code.empty() && !result.error().message.empty());
  }
  close(fd);
  return 0;
}
