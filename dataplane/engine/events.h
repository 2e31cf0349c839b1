// Events: what the engine reports about individual packets and flows (drops, would-drops
// in monitor mode, flows observed in learn mode). Never carries payload bytes: only
// addresses, ports, names and reasons (no patient data can leak through an event).
//
// Threads: one EventRing per worker. push() is called only by that worker; pop() only by
// the single control thread that drains events. Lock-free (rte_ring, SP/SC), bounded:
// when full, push() fails and the worker counts the event as suppressed.
#pragma once

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string_view>

#include "dataplane/engine/packet.h"
#include "dataplane/engine/policy_document.h"
#include "dataplane/engine/verdict.h"

namespace cordon::engine {

enum class EventKind : uint8_t {
  drop,           // enforced: the packet was dropped
  would_drop,     // monitor/learn mode: forwarded, but enforce mode would have dropped it
  flow_observed,  // a new flow the device took part in (learn mode, or EngineConfig::record_flows)
  app_observed,   // learn mode: what a flow carried at the application layer, in `detail`:
                  // "dicom-ae CALLING CALLED", "dicom-command C-STORE SOP_CLASS_UID",
                  // "hl7-message ORU^R01" (names and identifiers only, never payload data)
};

std::string_view to_string(EventKind kind);

struct Event {
  uint64_t time_ns = 0;
  uint64_t policy_version = 0;
  IpAddress src_ip;
  IpAddress dst_ip;
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  EventKind kind = EventKind::drop;
  DropReason reason = DropReason::none;
  Side ingress = Side::device;
  uint8_t protocol = 0;  // IP protocol; 0 for ARP and non-IP
  Direction dir = Direction::out;
  char device[64] = {};  // device name, "" when unknown
  char rule[64] = {};    // matching rule, "" when none
  // What inspection found, e.g. "called AE title not allowed: ARCHIVE" or
  // "patch ms17-010 (MS17-010, CVE-2017-0144)"; "" otherwise. Never payload bytes.
  char detail[128] = {};
  MacAddress src_mac;

  void set_device(std::string_view name) { copy(device, name); }
  void set_rule(std::string_view name) { copy(rule, name); }
  void set_detail(std::string_view text) { copy(detail, text); }

 private:
  template <size_t N>
  static void copy(char (&dst)[N], std::string_view src) {
    const size_t n = src.size() < sizeof dst - 1 ? src.size() : sizeof dst - 1;
    std::memcpy(dst, src.data(), n);
    dst[n] = '\0';
  }
};
static_assert(sizeof(Event) % 4 == 0, "rte_ring element size must be a multiple of 4");

class EventRing {
 public:
  explicit EventRing(uint32_t capacity_pow2);
  ~EventRing() { std::free(ring_); }
  EventRing(const EventRing&) = delete;
  EventRing& operator=(const EventRing&) = delete;

  // Owning worker only.
  bool push(const Event& e) noexcept {
    return rte_ring_sp_enqueue_bulk_elem(ring_, &e, sizeof(Event), 1, nullptr) == 1;
  }
  // Control thread only. Returns how many events were written to `out`.
  size_t pop(std::span<Event> out) noexcept {
    return rte_ring_sc_dequeue_burst_elem(ring_, out.data(), sizeof(Event),
                                          static_cast<unsigned>(out.size()), nullptr);
  }

 private:
  rte_ring* ring_ = nullptr;
};

}  // namespace cordon::engine
