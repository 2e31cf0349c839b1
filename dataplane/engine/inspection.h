// Inspection: which TCP flows are followed byte by byte, by which inspectors, and their
// per-flow state.
//
// InspectionPolicy is compiled with a policy (control thread) and immutable afterwards:
// per device, the built-in catalog patches it enables and the policy patches it uses,
// plus the policy's signature database. InspectionSlot is one inspected flow's state,
// kept in a fixed pool per worker (owned by that worker, never allocated per packet).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/engine/inspect/dicom.h"
#include "dataplane/engine/inspect/hl7.h"
#include "dataplane/engine/inspect/rdp.h"
#include "dataplane/engine/inspect/signatures.h"
#include "dataplane/engine/inspect/smb.h"
#include "dataplane/engine/policy_document.h"
#include "dataplane/engine/stream.h"

namespace cordon::engine {

// Built-in catalog patches (patches/catalog.h), one bit each.
namespace catalog_bit {
inline constexpr uint8_t smb1_block = 1;
inline constexpr uint8_t ms17_010 = 2;
inline constexpr uint8_t cve_2019_0708 = 4;
inline constexpr uint8_t dicom_pdu_sanity = 8;
}  // namespace catalog_bit

// Inspectors a flow runs, one bit each.
namespace inspector {
inline constexpr uint8_t hl7 = 1;
inline constexpr uint8_t signatures = 2;
inline constexpr uint8_t dicom = 4;
inline constexpr uint8_t smb = 8;   // smb1-block, ms17-010
inline constexpr uint8_t rdp = 16;  // cve-2019-0708
}  // namespace inspector

struct InspectionPlan {
  uint8_t inspectors = 0;
  uint8_t catalog = 0;          // catalog patches that apply to this flow
  uint64_t signature_mask = 0;  // policy patches (bit = index in the document) that apply
};

class InspectionPolicy {
 public:
  // Control thread. Errors name the offending patch.
  static std::unique_ptr<InspectionPolicy> compile(const PolicyDocument& document,
                                                   uint32_t worker_slots,
                                                   std::vector<PolicyError>& errors);

  // What a new TCP connection of `device` needs: `rule` is the matched rule (or null),
  // `dir` the connection's direction, `dport` its destination port. Any thread.
  InspectionPlan plan(uint32_t device, const Rule* rule, Direction dir,
                      uint16_t dport) const noexcept;

  const SignatureSet& signatures() const { return *signatures_; }
  const PolicyPatch& patch(uint32_t index) const { return patches_[index]; }

 private:
  struct DeviceInspection {
    uint8_t catalog = 0;
    uint64_t patches = 0;
    bool learn = false;  // learn mode: DICOM and HL7 are followed to report what they carry
  };
  std::vector<DeviceInspection> devices_;
  std::vector<PolicyPatch> patches_;
  std::unique_ptr<SignatureSet> signatures_;
};

// The state of one inspected connection. Streams are indexed by who sends: 0 = the
// initiator, 1 = the responder.
struct InspectionSlot {
  InspectionPlan plan;
  TcpStream stream[2];
  hl7::Parser hl7;      // the initiator's messages
  dicom::Parser dicom;  // both directions: initiator = association requestor
  smb::Parser smb[2];   // by sender, like the streams
  rdp::Parser rdp;      // the client's (initiator's) bytes
  // Learn mode: hashes of the observations already reported for this flow, so that a
  // long association storing thousands of images reports each command/class once.
  static constexpr uint32_t kMaxObserved = 16;
  uint64_t observed[kMaxObserved] = {};
  uint32_t observed_count = 0;
};

// Fixed pool of inspection slots of one worker.
class InspectionPool {
 public:
  static constexpr uint32_t kNone = ~uint32_t{0};
  explicit InspectionPool(uint32_t capacity);
  uint32_t acquire() noexcept;  // kNone when exhausted
  void release(uint32_t index) noexcept;
  InspectionSlot& operator[](uint32_t index) { return slots_[index]; }

 private:
  std::unique_ptr<InspectionSlot[]> slots_;
  std::unique_ptr<uint32_t[]> free_;
  uint32_t free_count_;
};

}  // namespace cordon::engine
