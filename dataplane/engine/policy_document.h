// The policy document, schema `cordon.policy/v1` (DESIGN.md §3, schema/policy-v1.schema.json):
// the parsed, validated form. A PolicyDocument that parse_policy() returns is valid as a
// whole; an invalid document yields only errors. Plain values; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/engine/packet.h"

namespace cordon::engine {

inline constexpr std::string_view kPolicySchemaId = "cordon.policy/v1";

// Limits of a document (docs/policy.md). Exceeding one is an error, so that reading and
// compiling any accepted document takes bounded time and memory.
inline constexpr size_t kMaxPolicyBytes = size_t{16} << 20;  // whole document
inline constexpr size_t kMaxPolicyDepth = 32;                // nested arrays/objects
inline constexpr size_t kMaxDevices = 4096;
inline constexpr size_t kMaxDeviceIps = 16;
inline constexpr size_t kMaxRulesTotal = 200000;       // summed over all devices
inline constexpr size_t kMaxPatchContentBytes = 1024;  // match.content, after decoding
inline constexpr size_t kMaxPatchRegexChars = 1024;
// Errors listed per document; one more entry says the list was cut.
inline constexpr size_t kMaxPolicyErrors = 1000;

enum class DeviceMode : uint8_t { enforce, monitor, learn };
// What happens to frames of MAC/IP addresses that no device owns.
enum class UnknownDevices : uint8_t { drop, monitor, forward };
enum class Direction : uint8_t { out, in };  // out: the device opens; in: opened to the device
enum class Protocol : uint8_t { tcp, udp, icmp };
// What a device's rule set does with a new connection that no rule allows.
enum class DenyAction : uint8_t { drop, reset };
enum class PatchAction : uint8_t { drop, reset, alert };

struct PortRange {
  uint16_t first = 0;
  uint16_t last = 65535;
  bool operator==(const PortRange&) const = default;
};

// Empty lists mean "any" (DESIGN §3: omitted constraints are not enforced).
struct DicomConstraints {
  std::vector<std::string> calling_ae;
  std::vector<std::string> called_ae;
  std::vector<std::string> commands;  // C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET, N-*
  std::vector<std::string> sop_classes;
  bool operator==(const DicomConstraints&) const = default;
};

struct Hl7Constraints {
  std::vector<std::string> message_types;  // "ORU^R01"
  std::vector<std::string> sending_facilities;
  bool operator==(const Hl7Constraints&) const = default;
};

struct Rule {
  std::string name;
  Direction dir = Direction::out;
  Protocol proto = Protocol::tcp;
  Cidr peer;
  PortRange dport;  // TCP/UDP only; absent in the document = any port
  std::optional<DicomConstraints> dicom;
  std::optional<Hl7Constraints> hl7;
  // Set only on the rules a vendor session adds (dataplane/dpdk/vendor_sessions.h), never
  // from a document: a TCP connection such a rule admitted is reset toward the device
  // too when it is cut (whatever the device's deny_action), so the device does not hold
  // a dead connection open after the session ended.
  bool vendor_session = false;
  bool operator==(const Rule&) const = default;
};

struct Device {
  std::string name;
  MacAddress mac;
  std::vector<IpAddress> ips;
  DeviceMode mode = DeviceMode::enforce;
  DenyAction deny_action = DenyAction::drop;
  std::vector<Rule> rules;
  std::vector<std::string> patches;  // ids from the built-in catalog or the policy's patches
  bool operator==(const Device&) const = default;
};

struct PatchMatch {
  std::string content;  // raw bytes ("|0d 0a|" hex escapes already decoded); empty = none
  std::optional<uint32_t> offset;
  std::optional<uint32_t> depth;
  std::optional<std::string> regex;
  bool operator==(const PatchMatch&) const = default;
};

// A patch defined by the policy itself (top-level "patches").
struct PolicyPatch {
  std::string id;
  std::string cve;  // empty = none
  Direction dir = Direction::in;
  Protocol proto = Protocol::tcp;
  PortRange dport;
  PatchMatch match;
  PatchAction action = PatchAction::drop;
  bool operator==(const PolicyPatch&) const = default;
};

struct PolicyDocument {
  UnknownDevices unknown_devices = UnknownDevices::drop;
  std::vector<Device> devices;
  std::vector<PolicyPatch> patches;
  bool operator==(const PolicyDocument&) const = default;
};

// One thing wrong with a document: where (a JSON path such as
// "devices[2].rules[0].peer", empty for the whole document) and what.
struct PolicyError {
  std::string path;
  std::string message;
  std::string to_string() const { return path.empty() ? message : path + ": " + message; }
};

struct PolicyParseResult {
  std::optional<PolicyDocument> document;  // set only when errors is empty
  std::vector<PolicyError> errors;         // every error found, in document order
};

// Parses and validates a whole document: JSON syntax, the schema, and semantics
// (duplicate or overlapping device MACs/IPs, duplicate names, unknown patch ids, ...).
// Never throws; bounded work for any input.
PolicyParseResult parse_policy(std::string_view json);

// Serialises a valid document back to canonical JSON (parse_policy(to_json(d)) == d).
std::string to_json(const PolicyDocument& document);

// The document's spelling of each enum value ("enforce", "in", "tcp", ...).
std::string_view to_string(DeviceMode mode);
std::string_view to_string(Direction dir);
std::string_view to_string(Protocol proto);
std::string_view to_string(UnknownDevices unknown);
std::string_view to_string(DenyAction action);
std::string_view to_string(PatchAction action);

}  // namespace cordon::engine
