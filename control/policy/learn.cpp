#include "control/policy/learn.h"

#include <boost/json.hpp>
#include <map>
#include <set>
#include <tuple>

#include "control/policy/lifecycle.h"

namespace cordon::control::policy {
namespace json = boost::json;
namespace {

constexpr size_t kGroupAt = 4;  // addresses in one /24 before it becomes a /24 rule

// "10.50.0.20" -> "10.50.0"; "" for anything that is not dotted IPv4.
std::string ipv4_prefix24(const std::string& ip) {
  const size_t last = ip.rfind('.');
  if (last == std::string::npos || ip.find(':') != std::string::npos) return "";
  return ip.substr(0, last);
}

// The application-layer constraints of a learned TCP rule: what its connections carried
// (dataplane learn mode, store::FlowApp), as the policy's "app" object; null when nothing
// was seen. DICOM wins over HL7 should a port have carried both (it cannot, in practice).
json::value learned_app(const std::vector<store::FlowApp>& apps, const std::string& dir,
                        int64_t port, const std::set<std::string>& peers) {
  // The Verification SOP class comes with C-ECHO, which every DICOM rule allows anyway.
  constexpr const char* kVerification = "1.2.840.10008.1.1";
  std::map<std::string, std::set<std::string>> fields;
  for (const store::FlowApp& a : apps) {
    if (a.key.protocol != 6 || a.key.dir != dir || a.key.port != port || !peers.count(a.key.peer))
      continue;
    if (a.field == "dicom.sop_class" && a.value == kVerification) continue;
    fields[a.field].insert(a.value);
  }
  auto list = [&](const char* field) {
    json::array out;
    for (const std::string& v : fields[field]) out.emplace_back(v);
    return out;
  };
  if (fields.count("dicom.calling_ae") || fields.count("dicom.command")) {
    json::object dicom;
    for (const auto& [field, key] :
         {std::pair{"dicom.calling_ae", "calling_ae"}, std::pair{"dicom.called_ae", "called_ae"},
          std::pair{"dicom.command", "commands"}, std::pair{"dicom.sop_class", "sop_classes"}}) {
      if (json::array values = list(field); !values.empty()) dicom[key] = std::move(values);
    }
    return json::object{{"dicom", std::move(dicom)}};
  }
  if (fields.count("hl7.message_type"))
    return json::object{{"hl7", json::object{{"message_types", list("hl7.message_type")}}}};
  return nullptr;
}

}  // namespace

Result<Proposal> propose_rules(const std::string& active_document, const std::string& device,
                               const std::vector<store::FlowRecord>& flows,
                               const std::vector<store::FlowApp>& apps) {
  json::error_code ec;
  json::value doc = json::parse(active_document, ec);
  if (ec || !doc.is_object()) return Error{"conflict", "there is no active policy to extend"};
  json::object* dev = nullptr;
  size_t device_index = 0;
  if (json::value* devices = doc.as_object().if_contains("devices");
      devices && devices->is_array()) {
    for (size_t i = 0; i < devices->as_array().size(); ++i) {
      json::value& d = devices->as_array()[i];
      if (d.is_object() && d.as_object().contains("name") && d.as_object().at("name").is_string() &&
          d.as_object().at("name").as_string() == device) {
        dev = &d.as_object();
        device_index = i;
      }
    }
  }
  if (!dev) return Error{"not_found", "no device named " + device + " in the active policy"};
  json::value* rules_value = dev->if_contains("rules");
  if (!rules_value || !rules_value->is_array()) (*dev)["rules"] = json::array{};
  json::array& rules = dev->at("rules").as_array();
  std::set<std::string> names;
  for (const json::value& r : rules)
    if (r.is_object() && r.as_object().contains("name"))
      names.insert(json::value_to<std::string>(r.at("name")));

  // (dir, protocol, port) -> peers, for connections no rule allowed.
  std::map<std::tuple<std::string, int64_t, int64_t>, std::set<std::string>> groups;
  for (const store::FlowRecord& f : flows) {
    if (f.key.device != device || !f.rule.empty() || f.key.peer.empty()) continue;
    if (f.key.protocol != 6 && f.key.protocol != 17 && f.key.protocol != 1 && f.key.protocol != 58)
      continue;
    groups[{f.key.dir, f.key.protocol, f.key.port}].insert(f.key.peer);
  }
  Proposal p;
  p.device = device;
  for (const auto& [group, peers] : groups) {
    const auto& [dir, protocol, port] = group;
    std::map<std::string, std::vector<std::string>> by_prefix;
    for (const std::string& peer : peers) by_prefix[ipv4_prefix24(peer)].push_back(peer);
    // Each rule's peer, with the addresses it stands for.
    std::vector<std::pair<std::string, std::set<std::string>>> cidrs;
    for (const auto& [prefix, members] : by_prefix) {
      if (!prefix.empty() && members.size() >= kGroupAt) {
        cidrs.emplace_back(prefix + ".0/24", std::set<std::string>(members.begin(), members.end()));
      } else {
        for (const std::string& m : members)
          cidrs.emplace_back(m + (m.find(':') != std::string::npos ? "/128" : "/32"),
                             std::set<std::string>{m});
      }
    }
    const std::string proto = protocol == 6 ? "tcp" : protocol == 17 ? "udp" : "icmp";
    for (const auto& [cidr, members] : cidrs) {
      std::string base = "learned-" + dir + "-" + proto + (port ? "-" + std::to_string(port) : "");
      std::string name = base;
      for (int n = 2; names.count(name); ++n) name = base + "-" + std::to_string(n);
      names.insert(name);
      json::object rule{{"name", name}, {"dir", dir}, {"proto", proto}, {"peer", cidr}};
      if (port != 0 && proto != "icmp") rule["dport"] = port;
      if (proto == "tcp") {
        if (json::value app = learned_app(apps, dir, port, members); !app.is_null())
          rule["app"] = std::move(app);
      }
      rules.push_back(std::move(rule));
      ++p.rules_added;
    }
  }
  // The candidate goes through the same validation as any apply. A value the device used
  // that a policy cannot hold (an AE title with a control character, a malformed UID)
  // costs its rule the "app" constraints it was learned with, not the whole proposal.
  Result<std::string> candidate = validate_policy(json::serialize(doc));
  const std::string rules_path = "devices[" + std::to_string(device_index) + "].rules[";
  for (size_t attempt = 0; !candidate && attempt < rules.size(); ++attempt) {
    // e.g. "devices[0].rules[5].app.dicom.calling_ae[0]"
    const std::string& path = candidate.error().path;
    if (path.rfind(rules_path, 0) != 0) break;
    size_t end = 0;
    const size_t index = std::stoul(path.substr(rules_path.size()), &end);
    if (path.compare(rules_path.size() + end, 5, "].app") != 0 || index >= rules.size()) break;
    json::object& rule = rules[index].as_object();
    if (!json::value_to<std::string>(rule.at("name")).starts_with("learned-")) break;
    rule.erase("app");
    candidate = validate_policy(json::serialize(doc));
  }
  if (!candidate) return candidate.error().context("the proposal is not a valid policy");
  Result<std::string> active = validate_policy(active_document);
  if (!active) return active.error();
  p.document = candidate.value();
  p.diff = diff_documents(active.value(), p.document);
  return p;
}

}  // namespace cordon::control::policy
