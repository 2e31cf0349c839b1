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

}  // namespace

Result<Proposal> propose_rules(const std::string& active_document, const std::string& device,
                               const std::vector<store::FlowRecord>& flows) {
  json::error_code ec;
  json::value doc = json::parse(active_document, ec);
  if (ec || !doc.is_object()) return Error{"conflict", "there is no active policy to extend"};
  json::object* dev = nullptr;
  if (json::value* devices = doc.as_object().if_contains("devices");
      devices && devices->is_array()) {
    for (json::value& d : devices->as_array())
      if (d.is_object() && d.as_object().contains("name") && d.as_object().at("name").is_string() &&
          d.as_object().at("name").as_string() == device)
        dev = &d.as_object();
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
    std::vector<std::string> cidrs;
    for (const auto& [prefix, members] : by_prefix) {
      if (!prefix.empty() && members.size() >= kGroupAt) {
        cidrs.push_back(prefix + ".0/24");
      } else {
        for (const std::string& m : members)
          cidrs.push_back(m + (m.find(':') != std::string::npos ? "/128" : "/32"));
      }
    }
    const std::string proto = protocol == 6 ? "tcp" : protocol == 17 ? "udp" : "icmp";
    for (const std::string& cidr : cidrs) {
      std::string base = "learned-" + dir + "-" + proto + (port ? "-" + std::to_string(port) : "");
      std::string name = base;
      for (int n = 2; names.count(name); ++n) name = base + "-" + std::to_string(n);
      names.insert(name);
      json::object rule{{"name", name}, {"dir", dir}, {"proto", proto}, {"peer", cidr}};
      if (port != 0 && proto != "icmp") rule["dport"] = port;
      rules.push_back(std::move(rule));
      ++p.rules_added;
    }
  }
  // The candidate goes through the same validation as any apply.
  Result<std::string> candidate = validate_policy(json::serialize(doc));
  if (!candidate) return candidate.error().context("the proposal is not a valid policy");
  Result<std::string> active = validate_policy(active_document);
  if (!active) return active.error();
  p.document = candidate.value();
  p.diff = diff_documents(active.value(), p.document);
  return p;
}

}  // namespace cordon::control::policy
