// Engine: a batch of packet views in, a batch of verdicts (and events) out.
//
// Threads:
//  * The control thread (one at a time) constructs the Engine, calls publish(),
//    poll_events() and read_counters(), and destroys it after the workers stopped.
//  * Worker i (one thread per index) calls worker(i).process(), go_idle() and wake().
//    A worker never allocates, locks or throws in process().
//
// Policy publication (DESIGN §2): publish() swaps one atomic pointer; workers load it
// once per batch and report a quiescent state (rte_rcu_qsbr) after every batch. The
// old policy is freed only when every online worker has passed a quiescent state
// since the swap, so no batch is ever judged by a mix of two policies and no worker
// can touch freed tables. An idle worker goes offline (go_idle) so it does not hold
// up reclamation, and comes back online (wake) before its next batch.
//
// Each flow remembers the epoch of the policy it was admitted under. The first packet
// of a flow seen under a newer policy re-checks the flow against it, so a tightened
// policy also cuts live connections.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/engine/compiled_policy.h"
#include "dataplane/engine/counters.h"
#include "dataplane/engine/decode.h"
#include "dataplane/engine/events.h"
#include "dataplane/engine/flow_table.h"
#include "dataplane/engine/inspection.h"
#include "dataplane/engine/packet.h"
#include "dataplane/engine/verdict.h"

struct rte_rcu_qsbr;

namespace cordon::engine {

struct FlowTimeouts {
  uint64_t tcp_handshake_ns = 30'000'000'000;       // SYN sent / SYN-ACK seen
  uint64_t tcp_established_ns = 7'200'000'000'000;  // 2 h: idle DICOM associations
  uint64_t tcp_closing_ns = 120'000'000'000;
  uint64_t tcp_closed_ns = 10'000'000'000;
  uint64_t udp_unreplied_ns = 30'000'000'000;
  uint64_t udp_replied_ns = 120'000'000'000;
  uint64_t icmp_ns = 30'000'000'000;
};

struct EngineConfig {
  uint32_t workers = 1;
  uint32_t flows_per_worker = 65536;
  uint32_t inspected_flows_per_worker = 2048;  // TCP flows followed byte by byte (~20 KiB each)
  uint32_t event_ring_size = 4096;             // per worker, power of two
  uint32_t events_per_second = 2000;           // per worker; the rest are counted as suppressed
  // Also report every new flow a rule allows, in every mode (flow_observed), not only in
  // learn mode: controld's flow records (clinical guardrail, discovery) need them.
  bool record_flows = false;
  FlowTimeouts timeouts;
};

// Engine::save_flows's result: the snapshot and how many flows it holds.
struct FlowSnapshot {
  std::string bytes;
  uint64_t flows = 0;
};

// What Engine::restore_flows did: how many flows it restored and how many had expired
// meanwhile, or why it restored none.
struct FlowRestore {
  uint64_t restored = 0;
  uint64_t expired = 0;
  std::string error;  // empty on success
};

class Engine;
struct AppObservations;  // engine.cpp: learn mode's application-layer findings

class Worker {
 public:
  // Owning worker thread only. `verdicts` must be at least as long as `packets`.
  // `now_ns` is a monotonic clock the caller reads once per batch.
  void process(std::span<const PacketView> packets, std::span<Verdict> verdicts,
               uint64_t now_ns) noexcept;
  // Owning worker thread only: stop / resume taking part in policy reclamation.
  void go_idle() noexcept;
  void wake() noexcept;

  const WorkerCounters& counters() const { return counters_; }

 private:
  friend class Engine;
  Worker(Engine& engine, uint32_t index);

  // process() works on stages of up to kStage packets: it decodes them all and hashes
  // their flow keys, prefetches the flow-table buckets, then the Flow entries, and only
  // then judges them one by one in order (so their cache misses overlap instead of being
  // paid one packet at a time). The lookups themselves happen in judge(), in order, so a
  // packet sees every flow its predecessors in the batch created or ended.
  static constexpr size_t kStage = 32;
  struct Prepared;  // a decoded packet and its flow key, defined in engine.cpp
  struct Context;   // per-packet scratch, defined in engine.cpp
  static void prepare(const PacketView& packet, Prepared& out) noexcept;
  // The stage's packets that would open a flow and whose key is absent from the table
  // (FlowTable::kAbsent) are classified together: classify_burst overlaps the misses that
  // one classify() per new flow would pay in turn. judge_new_flow takes the result
  // (Prepared::classified_*) when its device is the one the packet is judged for.
  void add_new_flow_query(const PacketView& packet, const Prepared& p, size_t index,
                          size_t slot) noexcept;
  void classify_new_flows(const CompiledPolicy& policy, size_t count) noexcept;
  static int32_t lookup_device(const PacketView& packet, const Prepared& p,
                               const CompiledPolicy& policy) noexcept;
  Verdict judge(const PacketView& packet, const Prepared& prepared, const CompiledPolicy* policy,
                uint64_t now_ns) noexcept;
  Verdict judge_arp(Context& c) noexcept;
  Verdict judge_ip(Context& c) noexcept;
  Verdict judge_icmp_error(Context& c) noexcept;
  Verdict judge_new_flow(Context& c, const FlowKey& key, uint16_t dport) noexcept;
  Verdict track_tcp(Context& c, Flow& flow, bool from_initiator) noexcept;
  bool start_inspection(Context& c, Flow& flow) noexcept;
  Verdict inspect(Context& c, Flow& flow, bool from_initiator) noexcept;
  bool feed_inspectors(Context& c, InspectionSlot& slot, const TcpStream& stream,
                       bool from_initiator, int32_t rule, const uint8_t* data,
                       size_t length) noexcept;
  Verdict inspection_violation(Context& c, Flow& flow, DropReason reason) noexcept;
  void report_observations(Context& c, InspectionSlot& slot, AppObservations& observations,
                           int32_t rule) noexcept;
  void release_inspection(Flow& flow) noexcept;
  bool revalidate(Context& c, Flow& flow) noexcept;
  bool reclassify(Context& c, Flow& flow) noexcept;
  Verdict forward(Context& c) noexcept;
  // Drops (enforce) or reports (monitor/learn) by the device's mode. `report` = false
  // counts without an event (for the follow-up packets of something already reported).
  Verdict deny(Context& c, DropReason reason, bool report = true) noexcept;
  // Drops a packet of a flow whose vendor session ended, with a reset toward the device.
  Verdict cut_vendor_flow(Context& c) noexcept;
  Verdict unknown_device(Context& c) noexcept;
  void emit(Context& c, EventKind kind, DropReason reason, int32_t rule) noexcept;

  Engine& engine_;
  uint32_t index_;
  FlowTable flows_;
  std::unique_ptr<Prepared[]> prepared_;  // kStage entries
  // classify_new_flows's queries, their results and the stage index of each query's packet.
  std::array<CompiledPolicy::ClassifyQuery, kStage> new_flow_queries_;
  std::array<CompiledPolicy::ClassifyResult, kStage> new_flow_results_;
  std::array<uint8_t, kStage> new_flow_packets_{};
  InspectionPool inspections_;
  std::unique_ptr<uint8_t[]> scan_buffer_;  // overlap + one chunk, for signature scans
  EventRing events_;
  WorkerCounters counters_;
  // Event rate limit: a token bucket refilled from now_ns.
  uint64_t event_tokens_;
  uint64_t event_refill_ns_ = 0;
  bool online_ = false;
};

// Totals across workers, attributed to devices by name so they survive policy changes.
struct DeviceTotals {
  uint64_t forwarded_packets = 0;
  uint64_t forwarded_bytes = 0;
  uint64_t new_flows = 0;
  uint64_t dropped[kDropReasonCount] = {};
  uint64_t would_drop[kDropReasonCount] = {};
};

struct CounterSnapshot {
  uint64_t packets = 0;
  uint64_t forwarded = 0;
  uint64_t dropped[kDropReasonCount] = {};
  uint64_t events_suppressed = 0;
  uint64_t flows_active = 0;   // entries in the flow tables now
  uint64_t flows_evicted = 0;  // pushed out by new flows (never established ones)
  uint64_t flows_expired = 0;  // timed out
  std::map<std::string, DeviceTotals> devices;
};

class Engine {
 public:
  explicit Engine(const EngineConfig& config);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  Worker& worker(uint32_t index) { return *workers_[index]; }
  uint32_t worker_count() const { return static_cast<uint32_t>(workers_.size()); }
  const EngineConfig& config() const { return config_; }

  // Control thread. Makes `policy` the one every following batch is judged by, then
  // waits until no worker can still use the previous one and frees it (folding its
  // per-device counters into the running totals). The policy's counter slots must
  // match worker_count(). Returns the epoch assigned to it.
  uint64_t publish(std::unique_ptr<CompiledPolicy> policy);
  // Control thread. The active policy (nullptr before the first publish).
  const CompiledPolicy* active() const { return active_.load(std::memory_order_acquire); }

  // Control thread. Moves up to out.size() pending events into `out`; returns how many.
  size_t poll_events(std::span<Event> out) noexcept;
  // Control thread. Sum of all counters so far.
  CounterSnapshot read_counters() const;

  // Flows across a restart of the dataplane (flow_snapshot.cpp, docs/operations.md), so
  // that an orderly restart (an update, a reconfiguration) does not stall every connection
  // through the appliance on segments no flow table knows.
  //
  // Control thread, with no worker running. The flows that can resume: live, not blocked,
  // not inspected (their reassembly and inspector state is not kept, and an inspected
  // connection cannot resume uninspected). `layout` names what maps flows to workers (the
  // port pairs); `now_ns` is the workers' monotonic clock, `wall_ns` the real-time clock.
  FlowSnapshot save_flows(std::string_view layout, uint64_t now_ns, uint64_t wall_ns) const;
  // Control thread, with no worker running and every flow table empty. Checks the whole
  // snapshot before it inserts anything: one that is damaged, from another layout or worker
  // count, from the future, or with more flows than a table holds changes nothing and says
  // why. Flows whose idle timeout ran out while the dataplane was down are left out. A
  // restored flow belongs to no policy: its first packet re-checks it against the active
  // one, as after a policy change, so it lives on only if that policy still allows it.
  FlowRestore restore_flows(std::string_view snapshot, std::string_view layout, uint64_t now_ns,
                            uint64_t wall_ns);

 private:
  friend class Worker;
  void fold_counters(const CompiledPolicy& retired);

  EngineConfig config_;
  rte_rcu_qsbr* qsbr_ = nullptr;
  std::atomic<const CompiledPolicy*> active_{nullptr};
  std::unique_ptr<const CompiledPolicy> owned_;  // the same object as active_
  uint64_t next_epoch_ = 1;
  uint32_t next_event_ring_ = 0;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::map<std::string, DeviceTotals> retired_totals_;
};

}  // namespace cordon::engine
