// The DPDK shell around the engine: ports, mbuf pool, worker lcores, telemetry.
// Only this folder includes DPDK's port/mbuf/EAL headers (DESIGN §5).
//
// Threads: Shell is built and torn down by the main thread; run_worker() runs on each
// worker lcore (the main lcore included); everything that touches Engine's control side
// runs on the control thread started by main.cpp.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/dpdk/latency_histogram.h"
#include "dataplane/dpdk/options.h"
#include "dataplane/engine/engine.h"
#include "dataplane/engine/tcp_reset.h"

struct rte_mempool;
struct rte_mbuf;

namespace cordon::dataplane {

inline constexpr uint16_t kNoServicePort = 0xffff;

struct PairPorts {
  uint16_t device_port;
  uint16_t network_port;
  // Kernel-facing service port joined to the device segment (options.h), or
  // kNoServicePort; service_mac is its MAC (what the kernel interface sends from).
  uint16_t service_port = kNoServicePort;
  uint64_t service_mac = 0;  // the 6 bytes as read from the frame, in the low 48 bits
};

// Written by its worker only (engine::bump: a plain add, no locked instruction per
// burst), read by the control thread.
struct alignas(64) ShellCounters {
  std::atomic<uint64_t> rx{0};
  std::atomic<uint64_t> tx{0};
  std::atomic<uint64_t> tx_failed{0};  // forwarded by the engine but not accepted by the NIC
  std::atomic<uint64_t> resets_sent{0};
  std::atomic<uint64_t> multi_segment_dropped{0};
  std::atomic<uint64_t> service_rx{0};  // frames from service ports
  std::atomic<uint64_t> service_tx{0};  // frames to service ports (broadcast copies too)
  std::atomic<uint64_t> loops{0};       // turns of the worker loop (the service watchdog)
};

class Shell {
 public:
  // Resolves and starts every port of `options.pairs`; throws std::runtime_error with a
  // clear message on a missing port or too little memory.
  Shell(const Options& options, uint32_t workers);
  ~Shell();

  // Worker lcore body: polls the pairs assigned to worker `index` until `stop`.
  void run_worker(uint32_t index, engine::Engine& engine, const std::atomic<bool>& stop);
  const std::vector<PairPorts>& pairs() const { return pairs_; }
  const ShellCounters& counters(uint32_t worker) const { return counters_[worker]; }
  uint32_t workers() const { return static_cast<uint32_t>(counters_.size()); }
  // Worker `worker`'s residence-time histogram, or null without --latency-histogram on.
  const LatencyHistogram* latency(uint32_t worker) const {
    return latency_ ? &latency_[worker] : nullptr;
  }

 private:
  void start_port(uint16_t port);
  // The worker loop; with kStampLatency it reads the TSC after each RX burst and before
  // its TX and counts the difference for every forwarded packet of the burst.
  template <bool kStampLatency>
  void poll(uint32_t index, engine::Engine& engine, const std::atomic<bool>& stop);
  // Sends the forwarded frames of one burst that came in on `pair`'s device port: to the
  // service port those addressed to its MAC, to both the broadcasts and multicasts (a
  // copy for the service port), the rest to the network port.
  void send_from_device(const PairPorts& pair, rte_mbuf** frames, uint16_t count,
                        ShellCounters& counters);
  using ResetBuilder = size_t (*)(const uint8_t*, const engine::DecodedPacket&, uint8_t*,
                                  size_t) noexcept;
  rte_mbuf* make_reset(const uint8_t* frame, const engine::DecodedPacket& decoded,
                       ResetBuilder build);

  std::vector<PairPorts> pairs_;
  std::vector<ShellCounters> counters_;
  rte_mempool* pool_ = nullptr;
  uint32_t idle_sleep_us_;
  std::unique_ptr<LatencyHistogram[]> latency_;  // one per worker, or null
};

// Registers /cordon/stats, /cordon/version and /cordon/latency (residence-time bucket
// counts summed over the workers, with the TSC rate and each bucket's upper bound in
// cycles) with DPDK telemetry (dpdk-telemetry.py).
// The callbacks read counters only (no engine control calls).
void register_telemetry(engine::Engine& engine, Shell& shell,
                        const std::atomic<uint64_t>& policy_version);

}  // namespace cordon::dataplane
