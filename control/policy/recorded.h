// Dry-run against recorded traffic: turns controld's flow records into a capture of one
// opening packet per recorded kind of connection (a TCP SYN, a UDP datagram, an ICMP
// echo request), addressed from and to the devices of the active policy, so that
// dry_run_pcap_bytes() judges them with the exact engine code.
//
// What this can and cannot answer: address, protocol, port and direction rules exactly;
// not application-layer constraints (DICOM AE titles, HL7 types, patches), because flow
// records hold no payload — a capture (--pcap) is needed for those.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "control/common/result.h"
#include "control/store/store.h"
#include "dataplane/engine/policy_document.h"

namespace cordon::control::policy {

struct RecordedCapture {
  std::string pcap;      // classic pcap, Ethernet
  uint64_t packets = 0;  // one per flow record used
  uint64_t skipped = 0;  // records of devices the active policy no longer has, or unparsable
};

RecordedCapture capture_from_flow_records(const engine::PolicyDocument& active,
                                          const std::vector<store::FlowRecord>& flows);

}  // namespace cordon::control::policy
