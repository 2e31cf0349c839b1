// An in-memory dataplane for control-plane unit tests: it validates like the real one
// (versions must grow) and can be told to be unreachable or to refuse.
#pragma once

#include <string>

#include "control/dataplane_link/link.h"

namespace cordon::control::testing {

class FakeDataplaneLink final : public dataplane_link::DataplaneLink {
 public:
  Status apply(const std::string& document, int64_t version) override {
    ++apply_calls;
    if (unreachable) return Error{"dataplane", "fake dataplane: unreachable"};
    if (refuse) return Error{"invalid", "fake dataplane: refused", "/devices"};
    if (version <= enforced_version)
      return Error{"invalid", "fake dataplane: version not above the active one"};
    enforced_version = version;
    enforced_document = document;
    return ok();
  }
  Result<int64_t> version() override {
    if (unreachable) return Error{"dataplane", "fake dataplane: unreachable"};
    return enforced_version;
  }
  Result<std::string> stats() override {
    if (unreachable) return Error{"dataplane", "fake dataplane: unreachable"};
    return std::string(R"({"ok":true,"version":)") + std::to_string(enforced_version) + "}";
  }
  Status set_vendor_sessions(const std::string& sessions_json) override {
    ++vendor_session_pushes;
    if (unreachable) return Error{"dataplane", "fake dataplane: unreachable"};
    vendor_sessions = sessions_json;
    return ok();
  }
  // A restart without state: enforces nothing.
  void restart_empty() {
    enforced_version = 0;
    enforced_document.clear();
    vendor_sessions.clear();
  }

  bool unreachable = false;
  bool refuse = false;
  int apply_calls = 0;
  int64_t enforced_version = 0;
  std::string enforced_document;
  int vendor_session_pushes = 0;
  std::string vendor_sessions;  // the last JSON array pushed; "" = none since the start
};

}  // namespace cordon::control::testing
