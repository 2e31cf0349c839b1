// DryRunReport as JSON (the API) and as text (cordonctl), see docs/policy-lifecycle.md.
#include <boost/json.hpp>

#include <cstdio>
#include <ctime>
#include <sstream>

#include "control/policy/dry_run.h"

namespace cordon::control::policy {

namespace json = boost::json;

namespace {

std::string_view reason_label(engine::DropReason reason) {
  return engine::label(reason);
}

std::string_view reason_description(engine::DropReason reason) {
  return engine::kDropReasonDescriptions[static_cast<size_t>(reason)];
}

json::value mode_json(const std::optional<engine::DeviceMode>& mode) {
  if (!mode) return nullptr;
  return json::string(engine::to_string(*mode));
}

json::object counts_json(const PolicyCounts& c) {
  return {{"forwarded", c.forwarded}, {"reported", c.reported}, {"dropped", c.dropped}};
}

json::value difference_json(const std::optional<Difference>& d) {
  if (!d) return nullptr;
  return json::object{{"packets", d->packets},
                      {"first_frame", d->first_frame},
                      {"treatment", to_string(d->treatment)},
                      {"reason", reason_label(d->reason)},
                      {"reason_description", reason_description(d->reason)},
                      {"rule", d->rule},
                      {"detail", d->detail}};
}

json::object flow_json(const FlowReport& f, bool of_device) {
  json::object o{{"protocol", f.protocol},
                 {"initiator", f.initiator.to_string()},
                 {"responder", f.responder.to_string()},
                 {"port", f.port},
                 {"connections", f.connections},
                 {"packets", f.packets},
                 {"bytes", f.bytes},
                 {"active", counts_json(f.active)},
                 {"candidate", counts_json(f.candidate)},
                 {"stricter", difference_json(f.stricter)},
                 {"looser", difference_json(f.looser)}};
  // "out": the device opened it; "in": opened to the device (the rules' "dir").
  if (of_device) {
    o["direction"] = f.device_initiated ? "out" : "in";
  } else {
    o["direction"] = nullptr;
  }
  return o;
}

json::object device_json(const DeviceReport& d) {
  const bool of_device = !d.name.empty();
  json::array blocked;
  for (const FlowReport& f : d.newly_blocked) blocked.push_back(flow_json(f, of_device));
  json::array allowed;
  for (const FlowReport& f : d.newly_allowed) allowed.push_back(flow_json(f, of_device));
  return {{"name", of_device ? json::value(d.name) : json::value(nullptr)},
          {"active_mode", mode_json(d.active_mode)},
          {"candidate_mode", mode_json(d.candidate_mode)},
          {"packets", d.packets},
          {"flows", d.flows},
          {"unchanged_flows", d.unchanged_flows},
          {"newly_blocked", std::move(blocked)},
          {"newly_blocked_total", d.newly_blocked_total},
          {"newly_allowed", std::move(allowed)},
          {"newly_allowed_total", d.newly_allowed_total}};
}

std::string utc(uint64_t ns) {
  const auto seconds = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
  char millis[8];
  std::snprintf(millis, sizeof millis, ".%03u", static_cast<unsigned>(ns / 1'000'000 % 1000));
  return std::string(text) + millis;
}

std::string plural(uint64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

std::string_view mode_meaning(engine::DeviceMode mode) {
  switch (mode) {
    case engine::DeviceMode::enforce:
      return "enforce: traffic the policy does not allow is dropped";
    case engine::DeviceMode::monitor:
      return "monitor: everything is forwarded; what enforce mode would drop is reported";
    case engine::DeviceMode::learn:
      return "learn: everything is forwarded; flows are recorded to propose rules, and what "
             "enforce mode would drop is reported";
  }
  return "";
}

std::string mode_line(const DeviceReport& d) {
  if (!d.active_mode && d.candidate_mode) {
    return "new in the candidate, mode " + std::string(engine::to_string(*d.candidate_mode));
  }
  if (d.active_mode && !d.candidate_mode) {
    return "removed by the candidate (was " + std::string(engine::to_string(*d.active_mode)) +
           "): its traffic is treated as an unknown device's";
  }
  if (d.active_mode && d.candidate_mode && *d.active_mode != *d.candidate_mode) {
    return "mode " + std::string(engine::to_string(*d.active_mode)) + " -> " +
           std::string(engine::to_string(*d.candidate_mode));
  }
  return d.candidate_mode ? "mode " + std::string(engine::to_string(*d.candidate_mode)) : "";
}

std::string counts_text(const PolicyCounts& c) {
  std::string s = std::to_string(c.forwarded) + " forwarded";
  if (c.reported > 0) s += " (" + std::to_string(c.reported) + " reported as would-drop)";
  return s + ", " + std::to_string(c.dropped) + " dropped";
}

void flow_text(std::ostringstream& out, const FlowReport& f, const Difference& d, bool of_device,
               bool candidate_stricter) {
  out << "    - " << f.protocol << " " << f.initiator.to_string() << " -> "
      << f.responder.to_string();
  if (f.port != 0) out << " port " << f.port;
  if (of_device)
    out << (f.device_initiated ? " (opened by the device)" : " (opened to the device)");
  out << ", " << plural(f.connections, "connection", "connections") << ", "
      << plural(f.packets, "packet", "packets") << "\n";
  const std::string_view by = candidate_stricter ? "candidate" : "active policy";
  out << "      " << plural(d.packets, "packet", "packets") << " from frame " << d.first_frame
      << (d.treatment == Treatment::dropped
              ? " dropped by the " + std::string(by)
              : " forwarded but reported as would-drop by the " + std::string(by))
      << ", reason " << reason_label(d.reason) << ": " << reason_description(d.reason) << "\n";
  if (!d.rule.empty() || !d.detail.empty()) {
    out << "      ";
    if (!d.rule.empty()) out << "rule \"" << d.rule << "\"" << (d.detail.empty() ? "" : ": ");
    out << d.detail << "\n";
  }
  out << "      active policy: " << counts_text(f.active)
      << "; candidate: " << counts_text(f.candidate) << "\n";
}

void device_text(std::ostringstream& out, const DeviceReport& d) {
  const bool of_device = !d.name.empty();
  if (of_device) {
    out << "Device " << d.name;
    const std::string mode = mode_line(d);
    if (!mode.empty()) out << " (" << mode << ")";
    out << "\n";
  } else {
    out << "Traffic of no device in either policy\n";
  }
  if (d.packets == 0) {
    out << "  no traffic in the capture\n\n";
    return;
  }
  out << "  " << plural(d.packets, "packet", "packets") << ", " << plural(d.flows, "flow", "flows")
      << ", " << d.unchanged_flows << " unchanged\n";
  if (d.newly_blocked_total > 0) {
    out << "  BLOCKED (or reported) by the candidate, passed today: "
        << plural(d.newly_blocked_total, "flow", "flows") << "\n";
    for (const FlowReport& f : d.newly_blocked) flow_text(out, f, *f.stricter, of_device, true);
    if (d.newly_blocked.size() < d.newly_blocked_total) {
      out << "    ... and " << d.newly_blocked_total - d.newly_blocked.size() << " more\n";
    }
  }
  if (d.newly_allowed_total > 0) {
    out << "  PASSED by the candidate, blocked (or reported) today: "
        << plural(d.newly_allowed_total, "flow", "flows") << "\n";
    for (const FlowReport& f : d.newly_allowed) flow_text(out, f, *f.looser, of_device, false);
    if (d.newly_allowed.size() < d.newly_allowed_total) {
      out << "    ... and " << d.newly_allowed_total - d.newly_allowed.size() << " more\n";
    }
  }
  if (d.newly_blocked_total == 0 && d.newly_allowed_total == 0) {
    out << "  no change: every flow is treated as today\n";
  }
  out << "\n";
}

}  // namespace

json::value to_json(const DryRunReport& r) {
  const DryRunTotals& t = r.totals;
  json::array devices;
  for (const DeviceReport& d : r.devices) devices.push_back(device_json(d));
  json::object unknown{{"active", r.active_unknown_devices
                                      ? json::value(engine::to_string(*r.active_unknown_devices))
                                      : json::value(nullptr)},
                       {"candidate", engine::to_string(r.candidate_unknown_devices)}};
  return json::object{{"pcap", r.pcap},
                      {"active_installed", r.active_installed},
                      {"unknown_devices", std::move(unknown)},
                      {"totals",
                       {{"packets", t.packets},
                        {"bytes", t.bytes},
                        {"first_time_ns", t.first_time_ns},
                        {"last_time_ns", t.last_time_ns},
                        {"flows", t.flows},
                        {"unchanged_flows", t.unchanged_flows},
                        {"newly_blocked_flows", t.newly_blocked_flows},
                        {"newly_allowed_flows", t.newly_allowed_flows},
                        {"unclaimed_packets", t.unclaimed_packets},
                        {"undecodable_packets", t.undecodable_packets},
                        {"active", counts_json(t.active)},
                        {"candidate", counts_json(t.candidate)}}},
                      {"devices", std::move(devices)},
                      {"unclaimed", device_json(r.unclaimed)}};
}

std::string to_text(const DryRunReport& r) {
  const DryRunTotals& t = r.totals;
  std::ostringstream out;
  out << "Dry-run of the candidate policy against " << r.pcap << "\n";
  out << "  " << plural(t.packets, "packet", "packets") << ", " << plural(t.bytes, "byte", "bytes");
  if (t.packets > 0) out << ", " << utc(t.first_time_ns) << " to " << utc(t.last_time_ns) << " UTC";
  out << "\n  " << plural(t.flows, "flow", "flows") << ": " << t.unchanged_flows << " unchanged, "
      << t.newly_blocked_flows << " blocked or reported by the candidate, " << t.newly_allowed_flows
      << " passed by the candidate\n";
  if (!r.active_installed) {
    out << "  No policy is active: today the appliance drops every packet (fail closed).\n";
  }
  out << "  Packets: active policy " << counts_text(t.active) << "; candidate "
      << counts_text(t.candidate) << "\n";
  if (t.unclaimed_packets > 0) {
    out << "  " << plural(t.unclaimed_packets, "packet belongs", "packets belong")
        << " to no device of either policy (unknown devices: active "
        << (r.active_unknown_devices ? engine::to_string(*r.active_unknown_devices) : "-")
        << ", candidate " << engine::to_string(r.candidate_unknown_devices) << ")\n";
  }
  if (t.undecodable_packets > 0) {
    out << "  " << plural(t.undecodable_packets, "packet is", "packets are")
        << " malformed or IP fragments: dropped under any policy\n";
  }
  out << "\n";
  for (const DeviceReport& d : r.devices) device_text(out, d);
  if (r.unclaimed.packets > 0) device_text(out, r.unclaimed);
  out << "Modes:\n";
  for (const auto mode :
       {engine::DeviceMode::enforce, engine::DeviceMode::monitor, engine::DeviceMode::learn}) {
    out << "  " << mode_meaning(mode) << "\n";
  }
  out << "Frames are numbered from 1 in capture order; a frame whose source MAC is a device's "
         "came from the device port.\n";
  return out.str();
}

}  // namespace cordon::control::policy
