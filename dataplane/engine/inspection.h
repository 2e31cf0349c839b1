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
//
// A connection takes its slot at its SYN, so that the responder's first sequence number
// is known, but one whose handshake has not completed yet (half-open) holds it only
// until the pool runs out: the slots of half-open connections are kept in the order they
// were taken, and the engine reclaims the oldest for a new connection (its flow is
// ended). A SYN flood on an inspected port thus cannot take every slot from connections
// that complete their handshake, as the flow table's eviction protects established flows.
class InspectionPool {
 public:
  static constexpr uint32_t kNone = ~uint32_t{0};
  explicit InspectionPool(uint32_t capacity);
  // A slot for the half-open connection in flow entry `flow`; kNone when exhausted.
  uint32_t acquire(uint32_t flow) noexcept;
  void release(uint32_t index) noexcept;
  // The connection's handshake completed: its slot is no longer reclaimable.
  void established(uint32_t index) noexcept { unlink(index); }
  // The slot taken longest ago by a connection still half-open, or kNone.
  uint32_t oldest_half_open() const noexcept { return half_open_oldest_; }
  uint32_t flow_of(uint32_t index) const noexcept { return owners_[index].flow; }
  InspectionSlot& operator[](uint32_t index) { return slots_[index]; }

 private:
  struct Owner {
    uint32_t flow = kNone;   // flow entry holding the slot
    uint32_t newer = kNone;  // half-open list neighbours (kNone at the ends)
    uint32_t older = kNone;
    bool half_open = false;
  };
  void unlink(uint32_t index) noexcept;

  std::unique_ptr<InspectionSlot[]> slots_;
  std::unique_ptr<Owner[]> owners_;
  std::unique_ptr<uint32_t[]> free_;
  uint32_t free_count_;
  uint32_t half_open_newest_ = kNone;
  uint32_t half_open_oldest_ = kNone;
};

}  // namespace cordon::engine
