// Signatures: the policy's own virtual patches (`patches[].match`: content with optional
// offset/depth, and/or a regex), compiled with Hyperscan into one block-mode database per
// policy version.
//
// Streams are scanned chunk by chunk as the reassembler delivers them. Each scan covers
// the chunk plus the last kOverlap bytes delivered before it, and every pattern's match
// width is bounded by kOverlap + 1 at compile time, so a match split across chunks (or
// segments, or delivered out of order) is found exactly as in one buffer; matches lying
// wholly in the overlap were reported by the previous scan and are ignored.
//
// Threads: compile on the control thread; scan() is const and may run on every worker at
// once, each with its own scratch (scratch(worker)).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/engine/policy_document.h"

struct hs_database;
struct hs_scratch;

namespace cordon::engine {

class SignatureSet {
 public:
  static constexpr uint32_t kOverlap = 1024;
  static constexpr size_t kMaxPatches = 64;  // one bit each in a flow's signature mask

  // Compiles `patches` (all of the policy's own patches, indexed as in the document).
  // Errors name the patch by its JSON path.
  static std::unique_ptr<SignatureSet> compile(const std::vector<PolicyPatch>& patches,
                                               uint32_t worker_slots,
                                               std::vector<PolicyError>& errors);
  ~SignatureSet();

  // Scans `window` (whose first `overlap` bytes were scanned before and whose first byte
  // is at stream offset `window_offset`) for the patches in `mask`. Returns the index of
  // the first patch that matches, or -1. Any worker, with its own slot.
  int32_t scan(uint32_t worker, const uint8_t* window, size_t length, size_t overlap,
               uint64_t window_offset, uint64_t mask) const noexcept;

  bool empty() const { return database_ == nullptr; }

 private:
  struct Pattern {
    uint32_t patch;  // index into the policy's patches
    bool is_content;
    uint32_t length;  // content length (for offset checks)
    std::optional<uint32_t> offset;
    std::optional<uint32_t> depth;
  };
  SignatureSet() = default;

  hs_database* database_ = nullptr;
  std::vector<hs_scratch*> scratch_;  // one per worker slot
  std::vector<Pattern> patterns_;     // by Hyperscan expression id
};

}  // namespace cordon::engine
