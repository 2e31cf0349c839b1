#include "dataplane/engine/inspection.h"

#include "dataplane/engine/patches/catalog.h"

namespace cordon::engine {
namespace {

uint8_t catalog_bit_of(std::string_view id) {
  if (id == "smb1-block") return catalog_bit::smb1_block;
  if (id == "ms17-010") return catalog_bit::ms17_010;
  if (id == "cve-2019-0708") return catalog_bit::cve_2019_0708;
  if (id == "dicom-pdu-sanity") return catalog_bit::dicom_pdu_sanity;
  return 0;
}

bool in(const PortRange& ports, uint16_t port) {
  return port >= ports.first && port <= ports.last;
}

}  // namespace

std::unique_ptr<InspectionPolicy> InspectionPolicy::compile(const PolicyDocument& document,
                                                            uint32_t worker_slots,
                                                            std::vector<PolicyError>& errors) {
  auto policy = std::make_unique<InspectionPolicy>();
  policy->patches_ = document.patches;
  policy->signatures_ = SignatureSet::compile(document.patches, worker_slots, errors);
  if (!policy->signatures_) return nullptr;
  for (const Device& d : document.devices) {
    DeviceInspection di;
    di.learn = d.mode == DeviceMode::learn;
    for (const std::string& id : d.patches) {
      di.catalog |= catalog_bit_of(id);
      for (size_t i = 0; i < document.patches.size(); ++i) {
        if (document.patches[i].id == id) di.patches |= uint64_t{1} << i;
      }
    }
    policy->devices_.push_back(di);
  }
  return policy;
}

InspectionPlan InspectionPolicy::plan(uint32_t device, const Rule* rule, Direction dir,
                                      uint16_t dport) const noexcept {
  InspectionPlan p;
  const DeviceInspection& d = devices_[device];
  if (rule != nullptr && rule->hl7) p.inspectors |= inspector::hl7;
  // DICOM: on rules with DICOM constraints, and wherever the sanity patch is on for the
  // DICOM ports (104, and 11112 which PS3.15 registers for DICOM without TLS).
  if (rule != nullptr && rule->dicom) p.inspectors |= inspector::dicom;
  const bool dicom_port = dport == 104 || dport == 11112;
  if ((d.catalog & catalog_bit::dicom_pdu_sanity) != 0 && dicom_port)
    p.inspectors |= inspector::dicom;
  // Learn mode follows the registered DICOM and HL7/MLLP ports (2575) to see the AE titles,
  // commands, SOP classes and message types the proposal should allow.
  if (d.learn && dicom_port) p.inspectors |= inspector::dicom;
  if (d.learn && dport == 2575) p.inspectors |= inspector::hl7;
  for (uint64_t bits = d.patches; bits != 0; bits &= bits - 1) {
    const auto i = static_cast<uint32_t>(__builtin_ctzll(bits));
    const PolicyPatch& patch = patches_[i];
    if (patch.proto == Protocol::tcp && patch.dir == dir && in(patch.dport, dport)) {
      p.signature_mask |= uint64_t{1} << i;
    }
  }
  if (p.signature_mask != 0) p.inspectors |= inspector::signatures;
  constexpr uint8_t smb_patches = catalog_bit::smb1_block | catalog_bit::ms17_010;
  if ((d.catalog & smb_patches) != 0 && (dport == 139 || dport == 445)) {
    p.inspectors |= inspector::smb;
  }
  if ((d.catalog & catalog_bit::cve_2019_0708) != 0 && dport == 3389)
    p.inspectors |= inspector::rdp;
  p.catalog = d.catalog;
  return p;
}

InspectionPool::InspectionPool(uint32_t capacity)
    : slots_(std::make_unique<InspectionSlot[]>(capacity)),
      owners_(std::make_unique<Owner[]>(capacity)),
      free_(std::make_unique<uint32_t[]>(capacity)),
      free_count_(capacity) {
  for (uint32_t i = 0; i < capacity; ++i) free_[i] = capacity - 1 - i;
}

uint32_t InspectionPool::acquire(uint32_t flow) noexcept {
  if (free_count_ == 0) return kNone;
  const uint32_t index = free_[--free_count_];
  Owner& owner = owners_[index];
  owner.flow = flow;
  owner.half_open = true;
  owner.newer = kNone;
  owner.older = half_open_newest_;
  if (half_open_newest_ != kNone) owners_[half_open_newest_].newer = index;
  half_open_newest_ = index;
  if (half_open_oldest_ == kNone) half_open_oldest_ = index;
  InspectionSlot& s = slots_[index];
  s.plan = {};
  s.stream[0].reset();
  s.stream[1].reset();
  s.hl7 = hl7::Parser{};
  s.dicom = dicom::Parser{};
  s.rdp = rdp::Parser{};  // SMB parsers are set up with their transport by the engine
  return index;
}

void InspectionPool::release(uint32_t index) noexcept {
  unlink(index);
  owners_[index].flow = kNone;
  free_[free_count_++] = index;
}

void InspectionPool::unlink(uint32_t index) noexcept {
  Owner& owner = owners_[index];
  if (!owner.half_open) return;
  if (owner.newer != kNone) {
    owners_[owner.newer].older = owner.older;
  } else {
    half_open_newest_ = owner.older;
  }
  if (owner.older != kNone) {
    owners_[owner.older].newer = owner.newer;
  } else {
    half_open_oldest_ = owner.newer;
  }
  owner.half_open = false;
  owner.newer = owner.older = kNone;
}

}  // namespace cordon::engine
