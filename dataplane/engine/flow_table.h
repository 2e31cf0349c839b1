// FlowTable: the stateful connection table of one worker.
//
// Threads: owned by exactly one worker; not shared, not locked. Both directions of a
// flow map to one entry because keys are oriented by side (device address/port vs peer
// address/port), not by sender. Everything is allocated in the constructor: find,
// insert, erase, touch and expire never allocate (the hash map is reserved for the full
// capacity, so it never rehashes).
//
// Eviction protects established flows: entries live on one of three LRU lists by
// class. When the table is full, a new flow evicts the least recently used closing flow,
// else the least recently used embryonic flow (half-open TCP, unanswered UDP, ICMP);
// established flows are never evicted for new ones, so a SYN flood cannot push out a
// running DICOM transfer.
#pragma once

#include <boost/unordered/unordered_flat_map.hpp>
#include <cstdint>
#include <cstring>
#include <memory>

#include "dataplane/engine/packet.h"
#include "dataplane/engine/policy_document.h"

namespace cordon::engine {

// Oriented flow key: addresses and ports of the device end and the peer end.
struct FlowKey {
  std::array<uint8_t, 16> device_ip{};
  std::array<uint8_t, 16> peer_ip{};
  uint16_t device_port = 0;  // for ICMP echo: the identifier, in both ports
  uint16_t peer_port = 0;
  uint16_t vlan = 0;  // outer VLAN id, 0 when untagged
  uint8_t protocol = 0;
  uint8_t family = 0;
  // Five 64-bit compares instead of a memcmp call: this runs for every packet
  // (bench/README.md, part 2 profile).
  bool operator==(const FlowKey& other) const noexcept {
    uint64_t a[5];
    uint64_t b[5];
    std::memcpy(a, this, sizeof a);
    std::memcpy(b, &other, sizeof b);
    return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4])) == 0;
  }
};
static_assert(sizeof(FlowKey) == 40, "FlowKey is compared as five words; no padding");

struct FlowKeyHash {
  size_t operator()(const FlowKey& k) const noexcept;
};

enum class TcpState : uint8_t {
  none,          // UDP/ICMP pseudo-flows
  syn_sent,      // initiator's SYN seen
  syn_received,  // responder's SYN-ACK seen
  established,   // initiator's ACK of the SYN-ACK seen
  closing,       // a FIN seen from at least one end
  closed,        // RST seen, or both FINs acknowledged: only late ACK/RST/FIN pass
};

enum class FlowClass : uint8_t { embryonic = 0, established = 1, closing = 2 };

inline constexpr uint32_t kNoFlow = ~uint32_t{0};

struct Flow {
  FlowKey key;
  uint64_t expires_ns = 0;
  uint64_t policy_epoch = 0;     // epoch of the policy it was admitted (or re-checked) under
  uint64_t packets[2] = {0, 0};  // by ingress side
  uint64_t bytes[2] = {0, 0};
  uint32_t lru_prev = kNoFlow;
  uint32_t lru_next = kNoFlow;
  int32_t rule = -1;  // rule index in the admitting policy's device; -1: admitted unmatched
  Direction dir = Direction::out;  // out: the device initiated
  TcpState tcp = TcpState::none;
  FlowClass flow_class = FlowClass::embryonic;
  uint8_t fin_seen = 0;           // bit per Side that sent a FIN
  bool replied = false;           // the responder has sent at least one packet
  bool enforced = false;          // admitted while its device was in enforce mode
  bool blocked = false;           // ended by inspection: every later segment is dropped
  uint32_t inspection = kNoFlow;  // index of its InspectionSlot, kNoFlow when not inspected
  bool in_use = false;
};

class FlowTable {
 public:
  // `on_erase(context, flow)` runs for every entry that leaves the table (erase, expiry,
  // eviction), so per-flow resources held elsewhere are returned.
  using EraseHook = void (*)(void* context, Flow& flow) noexcept;
  explicit FlowTable(uint32_t capacity, EraseHook on_erase = nullptr, void* context = nullptr);

  // The live flow with this key, or nullptr. An entry past its expiry is removed and
  // reported as absent.
  Flow* find(const FlowKey& key, uint64_t now_ns) noexcept;
  // A new entry for `key` (which must not be present), in class embryonic. Evicts as
  // described above when full; nullptr when every entry is established.
  Flow* insert(const FlowKey& key) noexcept;
  void erase(Flow* flow) noexcept;
  // Marks `flow` most recently used, moves it to `cls`'s list, sets its expiry.
  void touch(Flow* flow, FlowClass cls, uint64_t expires_ns) noexcept;
  // Removes up to `budget` expired entries from the cold ends of the lists.
  uint32_t expire(uint64_t now_ns, uint32_t budget) noexcept;

  uint32_t size() const { return size_; }
  uint32_t capacity() const { return capacity_; }
  uint32_t evictions() const { return evictions_; }
  uint32_t count(FlowClass cls) const { return lists_[static_cast<int>(cls)].count; }
  size_t bucket_count() const { return index_.bucket_count(); }  // tests: proves no rehash

 private:
  struct List {
    uint32_t head = kNoFlow;  // most recently used
    uint32_t tail = kNoFlow;  // least recently used
    uint32_t count = 0;
  };
  void unlink(uint32_t index) noexcept;
  void push_head(uint32_t index) noexcept;
  uint32_t index_of(const Flow* flow) const { return static_cast<uint32_t>(flow - flows_.get()); }

  uint32_t capacity_;
  EraseHook on_erase_;
  void* erase_context_;
  uint32_t size_ = 0;
  uint32_t evictions_ = 0;
  std::unique_ptr<Flow[]> flows_;
  std::unique_ptr<uint32_t[]> free_;  // stack of free entry indices
  uint32_t free_count_ = 0;
  List lists_[3];
  boost::unordered_flat_map<FlowKey, uint32_t, FlowKeyHash> index_;
};

}  // namespace cordon::engine
