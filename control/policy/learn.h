// Learn mode: from the flow records of a device, propose the smallest rule set that
// allows what it was seen doing, as a candidate policy and its diff against the active
// one, for an operator to review, edit, dry-run and apply. Nothing is applied here.
//
// Peers are grouped into a /24 (IPv4) when at least 4 addresses of the same /24 use the
// same service; otherwise each gets a host rule. Connections an existing rule already
// allowed are not proposed again. A TCP rule carries the DICOM AE titles, commands and
// SOP classes, or the HL7 message types, its connections were seen to use.
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <vector>

#include "control/common/result.h"
#include "control/store/store.h"

namespace cordon::control::policy {

struct Proposal {
  std::string device;
  std::string document;     // the candidate policy (canonical JSON)
  boost::json::value diff;  // diff_documents(active, candidate)
  size_t rules_added = 0;
};

// `apps`: what the device's connections carried at the application layer (DICOM AE
// titles, commands and SOP classes; HL7 message types); a learned TCP rule gets them as
// its "app" constraints.
Result<Proposal> propose_rules(const std::string& active_document, const std::string& device,
                               const std::vector<store::FlowRecord>& flows,
                               const std::vector<store::FlowApp>& apps = {});

}  // namespace cordon::control::policy
