// The classification benchmark's workload: generated per-device allowlists, a trace of
// 5-tuples, a brute-force reference verdict for every tuple, and the timed engine loop.
// Shared by cordon_bench_classify (engine vs rte_acl) and cordon_bench_engine_v3 (the
// same engine loop built for another ISA). Everything is deterministic for a given seed.
// See bench/README.md for the choices made here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/engine/compiled_policy.h"
#include "dataplane/engine/packet.h"
#include "dataplane/engine/policy_document.h"

namespace cordon::bench {

inline constexpr uint32_t kRulesPerDevice = 50;
inline constexpr uint32_t kTraceSize = 65536;
inline constexpr uint64_t kDefaultSeed = 0xC0'2D0Eu;

// Small deterministic PRNG (splitmix64): identical output on every compiler and build,
// so the ISA variants and dpdk-test-acl see exactly the same rules and trace.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n), n > 0.
  uint32_t below(uint32_t n) { return static_cast<uint32_t>(((next() >> 32) * n) >> 32); }
  // Uniform in [lo, hi].
  uint32_t between(uint32_t lo, uint32_t hi) { return lo + below(hi - lo + 1); }
  uint32_t percent() { return below(100); }

 private:
  uint64_t state_;
};

// One 5-tuple of the trace, as the engine sees a new connection. Addresses in host order.
struct TraceTuple {
  uint32_t device_ip = 0;  // the protected device's address (may belong to no device)
  uint32_t peer_ip = 0;
  uint16_t sport = 0;
  uint16_t dport = 0;
  engine::Direction dir = engine::Direction::out;
  engine::Protocol proto = engine::Protocol::tcp;
  // src/dst on the wire: out = device -> peer, in = peer -> device.
  uint32_t src_ip() const { return dir == engine::Direction::out ? device_ip : peer_ip; }
  uint32_t dst_ip() const { return dir == engine::Direction::out ? peer_ip : device_ip; }
  uint8_t ip_proto() const { return proto == engine::Protocol::tcp ? 6 : 17; }
};

// The engine's input for one tuple, pre-built as the decoder would hand it over: the
// device's address, the peer, dport, direction, protocol (classify_burst's query).
using EngineInput = engine::CompiledPolicy::ClassifyQuery;

struct Workload {
  uint32_t rule_count = 0;
  uint32_t device_count = 0;
  engine::PolicyDocument document;
  std::vector<uint32_t> rule_offset;  // per device: global id of its rule 0
  std::vector<TraceTuple> trace;
  std::vector<EngineInput> engine_input;
  std::vector<int32_t> expected;  // per tuple: global rule id of the first match, or -1
  uint32_t expected_hits = 0;
  // Mean, over tuples of known devices, of the distinct peer prefix lengths among the rules
  // of that device, direction and protocol whose port range holds the tuple's dport: the
  // number of hash probes the engine's classify() makes (compiled_policy.h).
  double mean_prefix_probes = 0;
};

uint32_t device_ip(uint32_t device_index);
// Generates `rule_count` rules (rule_count / kRulesPerDevice devices) and the trace.
Workload make_workload(uint32_t rule_count, uint64_t seed);

uint64_t read_tsc();
// Context switches (voluntary + involuntary) of the calling thread so far.
uint64_t context_switches();

// Cycles measured over the kept chunks of a timed run.
struct Timing {
  uint64_t cycles = 0;
  uint64_t packets = 0;
  uint64_t discarded_chunks = 0;
  double per_packet() const { return packets == 0 ? 0.0 : double(cycles) / double(packets); }
};

// Tuples are timed in chunks of kChunk with rdtsc. A chunk during which the thread was
// switched out (getrusage, read outside the timed region) is discarded, since its rdtsc
// span includes another task's time, and timing goes on round the trace until `passes`
// traces' worth of tuples were kept (or 20 times as many chunks were tried). This keeps
// the figures usable on a shared, loaded machine; the report says how many chunks were
// dropped.
inline constexpr size_t kChunk = 1024;
template <class Body>
Timing time_chunks(size_t n, uint32_t passes, Body&& body) {
  Timing t;
  const uint64_t wanted = uint64_t{passes} * n;
  const uint64_t max_tries = 20 * ((wanted + kChunk - 1) / kChunk);
  size_t begin = 0;
  for (uint64_t tries = 0; t.packets < wanted && tries < max_tries; ++tries) {
    const size_t end = begin + kChunk < n ? begin + kChunk : n;
    const uint64_t switches = context_switches();
    const uint64_t t0 = read_tsc();
    body(begin, end);
    const uint64_t t1 = read_tsc();
    if (context_switches() == switches) {
      t.cycles += t1 - t0;
      t.packets += end - begin;
    } else {
      ++t.discarded_chunks;
    }
    begin = end == n ? 0 : end;
  }
  return t;
}

// How the timed loop calls the engine: classify_burst over bursts of kEngineBurst tuples
// (the same burst size as rte_acl_classify here), or device_by_ip + classify per tuple,
// which is what the engine's worker does today for the first packet of a flow.
enum class EngineCalls { burst, one_by_one };
inline constexpr size_t kEngineBurst = 64;

// Runs the engine's classification (device lookup + rule lookup) over the whole trace
// `passes` times. `out[i]` gets the device-local rule index or -1.
Timing time_engine(const engine::CompiledPolicy& policy, const Workload& w, uint32_t passes,
                   std::vector<int32_t>& out, EngineCalls calls = EngineCalls::burst);
// Classifies every tuple once, both ways (classify_burst and device_by_ip + classify), and
// returns the number of tuples where either one's global rule id differs from the
// reference; the first few are described in `report`.
uint32_t verify_engine(const engine::CompiledPolicy& policy, const Workload& w,
                       std::vector<std::string>& report);

std::string ipv4_to_string(uint32_t host_order);
std::string describe(const Workload& w, uint32_t tuple_index);

struct Stats {
  double median = 0;
  double min = 0;
  double max = 0;
};
Stats stats_of(std::vector<double> samples);

}  // namespace cordon::bench
