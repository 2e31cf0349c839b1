#include "control/observe/observer.h"

#include <boost/json.hpp>

namespace cordon::control::observe {
namespace json = boost::json;
namespace {

std::string text(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

int64_t number(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_number() ? v->to_number<int64_t>() : 0;
}

}  // namespace

std::string protocol_name(int64_t p) {
  switch (p) {
    case 6:
      return "tcp";
    case 17:
      return "udp";
    case 1:
      return "icmp";
    case 58:
      return "icmpv6";
    case 0:
      return "arp/other";
    default:
      return "ip-" + std::to_string(p);
  }
}

store::FlowKey flow_key(const json::object& e) {
  store::FlowKey k;
  k.device = text(e, "device");
  k.dir = text(e, "dir");
  k.protocol = number(e, "protocol");
  const bool from_device = text(e, "ingress") == "device";
  k.peer = from_device ? text(e, "dst") : text(e, "src");
  // The service port is the responder's: the peer's when the device opened the flow.
  const bool peer_responds = k.dir == "out";
  if (k.protocol == 6 || k.protocol == 17) {
    k.port = peer_responds == from_device ? number(e, "dst_port") : number(e, "src_port");
  }
  return k;
}

std::vector<std::pair<std::string, std::string>> app_fields(std::string_view detail) {
  // "dicom-ae CALLING\CALLED", "dicom-command NAME\SOP_CLASS", "hl7-message TYPE"
  // (dataplane/engine/events.h). Anything else is ignored: the dataplane is trusted, but
  // an unknown form must not become a rule.
  const size_t space = detail.find(' ');
  if (space == std::string_view::npos) return {};
  const std::string_view what = detail.substr(0, space);
  const std::string_view rest = detail.substr(space + 1);
  const size_t sep = rest.find('\\');
  const std::string_view first = rest.substr(0, sep);
  const std::string_view second =
      sep == std::string_view::npos ? std::string_view() : rest.substr(sep + 1);
  std::vector<std::pair<std::string, std::string>> out;
  auto add = [&](const char* field, std::string_view value) {
    if (!value.empty()) out.emplace_back(field, std::string(value));
  };
  if (what == "dicom-ae" && sep != std::string_view::npos) {
    add("dicom.calling_ae", first);
    add("dicom.called_ae", second);
  } else if (what == "dicom-command" && sep != std::string_view::npos) {
    add("dicom.command", first);
    add("dicom.sop_class", second);
  } else if (what == "hl7-message" && sep == std::string_view::npos) {
    add("hl7.message_type", first);
  }
  return out;
}

std::string describe(const store::FlowKey& k) {
  std::string s = protocol_name(k.protocol) + (k.dir == "out" ? " out to " : " in from ") + k.peer;
  if (k.port != 0) s += " port " + std::to_string(k.port);
  return s;
}

Result<Ingested> Observer::ingest(const std::vector<std::string>& events, int64_t now_ms) {
  Ingested out;
  Result<store::Transaction> txn = store_.transaction();
  if (!txn) return txn.error();
  for (const std::string& line : events) {
    json::error_code ec;
    json::value v = json::parse(line, ec);
    if (ec || !v.is_object()) continue;
    const json::object& e = v.as_object();
    const std::string kind = text(e, "kind");
    const store::FlowKey key = flow_key(e);
    // Discovery: whatever is seen coming in on a device port.
    if (text(e, "ingress") == "device" && !text(e, "src_mac").empty()) {
      if (Status s = store_.record_host(text(e, "src_mac"), text(e, "src"), key.device,
                                        protocol_name(key.protocol), key.peer);
          !s)
        return s.error();
    }
    if (kind == "app-observed") {
      // Learning material, not an alert: kept with the flow records, not in the event log.
      if (key.device.empty()) continue;
      for (auto& [field, value] : app_fields(text(e, "detail"))) {
        if (Status s = store_.record_flow_app(store::FlowApp{key, field, value}, now_ms); !s)
          return s.error();
      }
      continue;
    }
    if (kind == "flow-observed") {
      if (!key.device.empty()) {
        if (Status s = store_.record_flow(key, text(e, "rule"), now_ms); !s) return s.error();
      }
      // In learn mode a flow without a rule is what enforce mode would refuse: log it.
      if (text(e, "reason") == "none") continue;
    }
    if (kind == "drop") out.drops.push_back(e);
    out.log.push_back(line);
  }
  if (Status s = txn.value().commit(); !s) return s.error();
  return out;
}

}  // namespace cordon::control::observe
