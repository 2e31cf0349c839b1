// Fuzz target: management-plane settings, WireGuard peers and remote-management peers (untrusted
// JSON from the API), and the dataplane's vendor session list (its control socket). Checks, beyond
// "no crash, no sanitizer report":
//   * a rejection is an "invalid" error with a message and a JSON path that starts with
//     '/' or is empty (the whole document);
//   * accepted input survives to_json -> parse unchanged.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <boost/json.hpp>

#include "control/nft/settings.h"
#include "control/wireguard/peer.h"
#include "dataplane/dpdk/vendor_sessions.h"

namespace {

void check_error(const cordon::control::Error& e) {
  if (e.code != "invalid" || e.message.empty()) __builtin_trap();
  if (!e.path.empty() && e.path.front() != '/') __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace nft = cordon::control::nft;
  namespace wg = cordon::control::wireguard;
  boost::system::error_code ec;
  const boost::json::value v =
      boost::json::parse(std::string_view(reinterpret_cast<const char*>(data), size), ec);
  if (ec) return 0;

  if (auto s = nft::parse_settings(v); s.ok()) {
    auto again = nft::parse_settings(nft::to_json(s.value()));
    if (!again.ok() || !(again.value() == s.value())) __builtin_trap();
  } else {
    check_error(s.error());
  }
  if (auto p = wg::parse_peer(v, "/peer"); p.ok()) {
    auto again = wg::parse_peer(wg::to_json(p.value()));
    if (!again.ok() || !(again.value() == p.value())) __builtin_trap();
  } else {
    check_error(p.error());
  }
  if (auto m = wg::parse_management_peer(v, "/peer"); m.ok()) {
    auto again = wg::parse_management_peer(wg::to_json(m.value()));
    if (!again.ok() || !(again.value() == m.value())) __builtin_trap();
  } else {
    check_error(m.error());
  }
  if (auto m = wg::parse_stored_management_peer(v, "/0"); m.ok()) {
    auto again = wg::parse_stored_management_peer(wg::to_json(m.value()));
    if (!again.ok() || !(again.value() == m.value())) __builtin_trap();
  } else {
    check_error(m.error());
  }
  if (auto d = wg::parse_duration(v, "/duration"); !d.ok()) check_error(d.error());

  // Vendor sessions: every error has a path; an accepted list survives to_json -> parse.
  std::vector<cordon::dataplane::VendorSession> sessions;
  const auto errors = cordon::dataplane::parse_vendor_sessions(v, sessions);
  for (const auto& e : errors) {
    if (e.path.empty() || e.message.empty()) __builtin_trap();
  }
  if (errors.empty()) {
    std::vector<cordon::dataplane::VendorSession> again;
    if (!cordon::dataplane::parse_vendor_sessions(cordon::dataplane::to_json(sessions), again)
             .empty() ||
        again != sessions) {
      __builtin_trap();
    }
  }
  return 0;
}
