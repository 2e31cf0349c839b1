// Policy dry-run ("validate before install", docs/policy-lifecycle.md#dry-run): replays a
// capture through the exact engine code (cordon_engine) twice, once with the active policy
// and once with a candidate, and reports per device which flows the candidate would block
// that the active policy lets through, and the reverse.
//
// Every verdict comes from an engine::Engine: decode, device lookup, flow tracking, rules,
// TCP reassembly, DICOM/HL7/SMB/RDP inspection and virtual patches, with the capture's
// timestamps as the engine's clock. This module only chooses the side each frame arrived
// on, groups frames into flows for the report, and compares the two runs.
//
// Threads: dry_run_pcap() is a plain function; it owns its engines and may run on any
// thread, concurrently with other calls. It takes time proportional to the capture and
// memory bounded by DryRunOptions.
#pragma once

#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/common/result.h"
#include "control/policy/pcap_reader.h"
#include "dataplane/engine/packet.h"
#include "dataplane/engine/policy_document.h"
#include "dataplane/engine/verdict.h"

namespace cordon::control::policy {

struct DryRunOptions {
  PcapLimits limits;
  // Table sizes of each of the two replay engines (the engine's defaults).
  uint32_t flows = 65536;
  uint32_t inspected_flows = 2048;  // ~20 KiB each
  // Changed flows listed per device and list; the rest are only counted.
  size_t max_listed_flows = 1000;
};

// How one policy treated one packet, ranked from most to least permissive.
enum class Treatment : uint8_t {
  forwarded = 0,  // passed
  reported = 1,   // passed, but recorded as a would-drop (device in monitor or learn mode,
                  // unknown_devices "monitor", or an alert-only patch)
  dropped = 2,
};

// Packets of one flow under one policy.
struct PolicyCounts {
  uint64_t forwarded = 0;  // including reported
  uint64_t reported = 0;
  uint64_t dropped = 0;
};

// Why one policy is stricter than the other on a flow: the stricter policy's verdict on
// the first packet the two policies treat differently.
struct Difference {
  uint64_t packets = 0;      // packets the stricter policy treats more strictly
  uint64_t first_frame = 0;  // number of the first such frame in the capture (from 1)
  Treatment treatment = Treatment::dropped;  // by the stricter policy, on that frame
  engine::DropReason reason = engine::DropReason::none;
  std::string rule;    // the stricter policy's rule the flow matched; "" when none
  std::string detail;  // what inspection found (AE title, HL7 type, patch and CVE); or ""
};

// A flow: every connection of one device with the same protocol, initiator, responder
// and responder port, both directions together. "Connections" are the distinct
// 5-tuples (source ports, ICMP echo identifiers) seen.
struct FlowReport {
  std::string protocol;         // "tcp", "udp", "icmp", "icmpv6", "arp" or "ip-<number>"
  engine::IpAddress initiator;  // for ARP: the sender of the first ARP message
  engine::IpAddress responder;
  uint16_t port = 0;              // TCP/UDP responder port; 0 otherwise
  bool device_initiated = false;  // the device opened it ("out" rules), else "in"
  uint64_t connections = 0;
  uint64_t packets = 0;
  uint64_t bytes = 0;
  PolicyCounts active;
  PolicyCounts candidate;
  std::optional<Difference> stricter;  // set when the candidate is stricter on some packet
  std::optional<Difference> looser;    // set when the active policy is stricter on some packet
};

struct DeviceReport {
  std::string name;  // "" for traffic that no device of either policy claims
  std::optional<engine::DeviceMode> active_mode;     // nullopt: not in the active policy
  std::optional<engine::DeviceMode> candidate_mode;  // nullopt: not in the candidate
  uint64_t packets = 0;
  uint64_t flows = 0;
  uint64_t unchanged_flows = 0;
  // Flows on which the candidate is stricter: would drop (or, for a monitor/learn device,
  // report) packets that the active policy passes. The ones listed first, by flow.
  std::vector<FlowReport> newly_blocked;
  uint64_t newly_blocked_total = 0;  // including the ones not listed (max_listed_flows)
  // Flows on which the candidate is more permissive than the active policy.
  std::vector<FlowReport> newly_allowed;
  uint64_t newly_allowed_total = 0;
};

struct DryRunTotals {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t first_time_ns = 0;  // timestamps of the first and last frame
  uint64_t last_time_ns = 0;
  uint64_t flows = 0;
  uint64_t unchanged_flows = 0;
  uint64_t newly_blocked_flows = 0;  // a flow with both kinds of difference counts in both
  uint64_t newly_allowed_flows = 0;
  uint64_t unclaimed_packets = 0;    // no device of either policy sent or receives them
  uint64_t undecodable_packets = 0;  // malformed frames and IP fragments: dropped by both
  PolicyCounts active;
  PolicyCounts candidate;
};

struct DryRunReport {
  std::string pcap;               // the path replayed
  bool active_installed = false;  // false: no active policy, the dataplane drops everything
  std::optional<engine::UnknownDevices> active_unknown_devices;
  engine::UnknownDevices candidate_unknown_devices = engine::UnknownDevices::drop;
  std::vector<DeviceReport> devices;  // every device of either policy, by name
  DeviceReport unclaimed;             // traffic of no device (name "")
  DryRunTotals totals;
};

// Replays every frame of the capture at `pcap_path` (pcap or pcapng, Ethernet) through
// one engine with `active` (nullptr: no policy installed, which the engine drops as
// no-policy, fail closed) and one with `candidate`, and compares them. Both documents
// must come from engine::parse_policy (valid).
// Side of a frame: a frame whose source MAC is the MAC of a device of either policy
// arrived on the device port; every other frame on the network port.
// Errors: "io" (cannot open), "invalid" (not an Ethernet capture, damaged, frames cut by
// a snap length; or a policy that does not compile, with its path), "too_large" (more
// packets or bytes than options.limits).
Result<DryRunReport> dry_run_pcap(const engine::PolicyDocument* active,
                                  const engine::PolicyDocument& candidate,
                                  const std::string& pcap_path, const DryRunOptions& options = {});

// The same for a capture held in memory, e.g. the body of an API request, so that
// controld never has to open a path a client names; `name` labels the report and errors.
Result<DryRunReport> dry_run_pcap_bytes(const engine::PolicyDocument* active,
                                        const engine::PolicyDocument& candidate,
                                        std::string_view pcap, const std::string& name,
                                        const DryRunOptions& options = {});

// For the API: the report as JSON (docs/policy-lifecycle.md#dry-run lists the fields).
boost::json::value to_json(const DryRunReport& report);
// For `cordonctl policy dry-run`: the report for a clinical engineer, plain text.
std::string to_text(const DryRunReport& report);

std::string_view to_string(Treatment treatment);

}  // namespace cordon::control::policy
