#include <algorithm>

#include "control/nft/firewall_backend.h"

namespace cordon::control::nft {

Status verify(FirewallBackend& backend, const TableSpec& spec) {
  auto actual = backend.read_table();
  if (!actual) return actual.error().context("reading back the management table");
  const auto diff = compare(describe_intended(spec), actual.value());
  if (diff.empty()) return ok();
  std::string message = "management table differs from what was intended:";
  for (const auto& d : diff) message += "\n  " + d;
  return Error{"mismatch", message, ""};
}

FakeFirewallBackend::FakeFirewallBackend(Clock now) : now_(std::move(now)) {}

void FakeFirewallBackend::expire() {
  const auto t = now_();
  std::erase_if(grants_, [&](const Grant& g) { return g.expires <= t; });
}

Status FakeFirewallBackend::apply_table(const TableSpec& spec) {
  if (auto v = validate(spec); !v) return v;
  if (fail_next_apply) {
    Error e = *fail_next_apply;
    fail_next_apply.reset();
    return e;
  }
  settings_ = spec.settings;
  management_peers_ = spec.management_peers;
  grants_.clear();
  for (const auto& g : spec.vendor_access) grants_.push_back({g.element, now_() + g.timeout});
  ++applies;
  return ok();
}

Result<TableDescription> FakeFirewallBackend::read_table() {
  if (!settings_) return TableDescription{};
  expire();
  TableSpec current{*settings_, {}, management_peers_};
  const auto t = now_();
  for (const auto& g : grants_) {
    current.vendor_access.push_back(
        {g.element, std::chrono::duration_cast<std::chrono::milliseconds>(g.expires - t)});
  }
  return describe_intended(current);
}

Status FakeFirewallBackend::add_vendor_access(const std::vector<VendorAccessElement>& elements,
                                              std::chrono::milliseconds timeout) {
  if (elements.empty()) return Error{"invalid", "no vendor access elements given", ""};
  if (timeout.count() <= 0 || timeout > kMaxVendorTimeout) {
    return Error{"invalid", "timeout must be 1 ms .. 8 h", ""};
  }
  if (!settings_) return Error{"not_found", "table inet cordon_mgmt does not exist", ""};
  expire();
  for (const auto& e : elements) {
    std::erase_if(grants_, [&](const Grant& g) { return g.element == e; });
  }
  if (grants_.size() + elements.size() > kMaxVendorElements) {
    return Error{"invalid", "too many vendor access elements", ""};
  }
  for (const auto& e : elements) grants_.push_back({e, now_() + timeout});
  return ok();
}

Status FakeFirewallBackend::remove_vendor_access(const std::vector<VendorAccessElement>& elements) {
  if (elements.empty()) return Error{"invalid", "no vendor access elements given", ""};
  if (!settings_) return Error{"not_found", "table inet cordon_mgmt does not exist", ""};
  for (const auto& e : elements) {
    std::erase_if(grants_, [&](const Grant& g) { return g.element == e; });
  }
  return ok();
}

Status FakeFirewallBackend::delete_table() {
  settings_.reset();
  grants_.clear();
  return ok();
}

}  // namespace cordon::control::nft
