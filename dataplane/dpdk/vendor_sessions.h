// Vendor sessions as the dataplane enforces them (docs/management-plane.md, "Vendor
// path"): controld pushes the active sessions ({"cmd":"vendor_sessions"}); each lets the
// service address (where controld source-translates the vendor's tunnel traffic, on the
// kernel-facing service port) open connections to one device on a list of ports until
// its expiry.
//
// Sessions become rules of their device, appended after the device's own rules, in the
// policy the engine enforces (with_vendor_sessions): the worker's per-packet path is the
// same as for any rule, and ending a session publishes the policy without them, so the
// engine's re-check of every flow under a new policy epoch drops the next packet of a
// connection the session had opened (DropReason::policy_revoked).
//
// Plain values and functions; any thread.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/engine/packet.h"
#include "dataplane/engine/policy_document.h"

namespace cordon::dataplane {

inline constexpr size_t kMaxVendorSessions = 253;  // one per tunnel address (.2 to .254)
inline constexpr size_t kMaxVendorSessionPorts = 16;

struct VendorSession {
  int64_t id = 0;
  engine::IpAddress service_address;
  std::string device;  // a device name of the policy; a session for another is inactive
  std::vector<uint16_t> ports;
  int64_t expires_unix_ms = 0;  // wall clock (CLOCK_REALTIME), as controld's store keeps it
  bool operator==(const VendorSession&) const = default;
};

// Parses the "sessions" array of a vendor_sessions request. Every error has its path
// ("sessions[1].ports[0]"); on any error `out` is left empty.
std::vector<engine::PolicyError> parse_vendor_sessions(const boost::json::value& sessions,
                                                       std::vector<VendorSession>& out);
boost::json::value to_json(const std::vector<VendorSession>& sessions);

// The rule name of a session's rules ("vendor-session-7"); events and flow records name it.
std::string vendor_rule_name(int64_t id);

// `document` with, for every session of `sessions` whose device it has, one inbound TCP
// and one inbound UDP rule per port from the service address (/32 or /128). The device's
// own rules keep their indices (the session rules come after them).
engine::PolicyDocument with_vendor_sessions(const engine::PolicyDocument& document,
                                            const std::vector<VendorSession>& sessions);

}  // namespace cordon::dataplane
