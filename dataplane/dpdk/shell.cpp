#include "dataplane/dpdk/shell.h"

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_telemetry.h>

#include <unistd.h>
#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "dataplane/dpdk/clock.h"
#include "dataplane/engine/tcp_reset.h"

namespace cordon::dataplane {
namespace {

constexpr uint16_t kBurst = 32;
constexpr uint16_t kRxDescriptors = 1024;
constexpr uint16_t kTxDescriptors = 1024;
constexpr uint32_t kIdlePollsBeforeSleep = 1000;

uint16_t resolve_port(const std::string& name) {
  uint16_t port = 0;
  if (rte_eth_dev_get_port_by_name(name.c_str(), &port) == 0) return port;
  auto [p, ec] = std::from_chars(name.data(), name.data() + name.size(), port);
  if (ec == std::errc{} && p == name.data() + name.size() && rte_eth_dev_is_valid_port(port)) {
    return port;
  }
  throw std::runtime_error("no DPDK port named '" + name + "' (check --vdev / -a arguments)");
}

uint64_t mac_key(const uint8_t* mac) {
  uint64_t key = 0;
  std::memcpy(&key, mac, 6);
  return key;
}

// Sends `count` frames on `port`; what the NIC does not take is counted and freed.
uint16_t send_all(uint16_t port, rte_mbuf** frames, uint16_t count, ShellCounters& counters) {
  if (count == 0) return 0;
  const uint16_t sent = rte_eth_tx_burst(port, 0, frames, count);
  if (sent < count) {
    engine::bump(counters.tx_failed, count - sent);
    rte_pktmbuf_free_bulk(frames + sent, count - sent);
  }
  return sent;
}

void send_resets(uint16_t port, rte_mbuf** resets, uint16_t count, ShellCounters& counters) {
  if (count == 0) return;
  const uint16_t sent = rte_eth_tx_burst(port, 0, resets, count);
  engine::bump(counters.resets_sent, sent);
  if (sent < count) rte_pktmbuf_free_bulk(resets + sent, count - sent);
}

}  // namespace

// A reset frame built by `build` (engine/tcp_reset.h) in a new mbuf, or null.
rte_mbuf* Shell::make_reset(const uint8_t* frame, const engine::DecodedPacket& decoded,
                            ResetBuilder build) {
  rte_mbuf* r = rte_pktmbuf_alloc(pool_);
  if (r == nullptr) return nullptr;
  const size_t len = build(frame, decoded, rte_pktmbuf_mtod(r, uint8_t*), rte_pktmbuf_tailroom(r));
  if (len == 0) {
    rte_pktmbuf_free(r);
    return nullptr;
  }
  r->data_len = static_cast<uint16_t>(len);
  r->pkt_len = static_cast<uint32_t>(len);
  return r;
}

Shell::Shell(const Options& options, uint32_t workers)
    : counters_(workers), idle_sleep_us_(options.idle_sleep_us) {
  if (options.latency_histogram) latency_ = std::make_unique<LatencyHistogram[]>(workers);
  for (const PortPair& p : options.pairs) {
    PairPorts ports{resolve_port(p.device_port), resolve_port(p.network_port)};
    if (ports.device_port == ports.network_port) {
      throw std::runtime_error("--pair " + p.device_port + ":" + p.network_port +
                               ": a port cannot be paired with itself");
    }
    if (!p.service_port.empty()) {
      ports.service_port = resolve_port(p.service_port);
      if (ports.service_port == ports.device_port || ports.service_port == ports.network_port) {
        throw std::runtime_error("--service-port " + p.service_port +
                                 ": already a port of its --pair");
      }
      rte_ether_addr mac{};
      if (rte_eth_macaddr_get(ports.service_port, &mac) != 0) {
        throw std::runtime_error("--service-port " + p.service_port + ": cannot read its MAC");
      }
      ports.service_mac = mac_key(mac.addr_bytes);
    }
    for (const PairPorts& other : pairs_) {
      for (uint16_t used : {other.device_port, other.network_port, other.service_port}) {
        if (used == kNoServicePort) continue;
        if (used == ports.device_port || used == ports.network_port || used == ports.service_port) {
          throw std::runtime_error("port used in two --pair / --service-port options");
        }
      }
    }
    pairs_.push_back(ports);
  }
  // Every port holds its RX ring full and may have its TX ring full; each lcore caches.
  uint32_t ports = 0;
  for (const PairPorts& p : pairs_) ports += p.service_port == kNoServicePort ? 2 : 3;
  // A port that holds frames itself (net_pcap with infinite_rx keeps its whole capture in
  // mbufs) needs more: --mbufs.
  const uint32_t needed = ports * (kRxDescriptors + kTxDescriptors) + workers * (256 + 4 * kBurst);
  const uint32_t mbufs = std::max(needed, options.mbufs);
  pool_ = rte_pktmbuf_pool_create("cordon_mbufs", mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                  static_cast<int>(rte_socket_id()));
  if (pool_ == nullptr) {
    throw std::runtime_error(
        "cannot allocate " + std::to_string(mbufs) +
        " mbufs: too little memory (raise -m or add hugepages): " + rte_strerror(rte_errno));
  }
  for (const PairPorts& p : pairs_) {
    start_port(p.device_port);
    start_port(p.network_port);
    if (p.service_port != kNoServicePort) start_port(p.service_port);
  }
}

Shell::~Shell() {
  if (latency_) {
    const double ns_per_cycle = 1e9 / static_cast<double>(rte_get_tsc_hz());
    for (uint32_t w = 0; w < workers(); ++w) {
      std::array<uint64_t, LatencyHistogram::kBuckets> counts{};
      uint64_t total = 0;
      for (uint32_t b = 0; b < LatencyHistogram::kBuckets; ++b) {
        counts[b] = latency_[w].count(b);
        total += counts[b];
      }
      auto ns = [&](double f) {
        return static_cast<double>(latency_percentile(counts, f)) * ns_per_cycle;
      };
      std::fprintf(stderr,
                   "cordon-dataplane: worker %u residence time: %" PRIu64
                   " packets, p50 %.0f ns, p99 %.0f ns, p99.9 %.0f ns, max %.0f ns\n",
                   w, total, ns(0.5), ns(0.99), ns(0.999), ns(1.0));
    }
  }
  for (const PairPorts& p : pairs_) {
    for (uint16_t port : {p.device_port, p.network_port, p.service_port}) {
      if (port == kNoServicePort) continue;
      rte_eth_dev_stop(port);
      rte_eth_dev_close(port);
    }
  }
  rte_mempool_free(pool_);
}

void Shell::start_port(uint16_t port) {
  rte_eth_dev_info info{};
  if (rte_eth_dev_info_get(port, &info) != 0) {
    throw std::runtime_error("port " + std::to_string(port) + ": cannot read device info");
  }
  // One RX and one TX queue: each pair is polled by exactly one worker, so both
  // directions of every flow meet in that worker's flow table (docs/threading.md).
  rte_eth_conf conf{};
  if (rte_eth_dev_configure(port, 1, 1, &conf) != 0) {
    throw std::runtime_error("port " + std::to_string(port) + ": configure failed");
  }
  uint16_t rx = kRxDescriptors;
  uint16_t tx = kTxDescriptors;
  rte_eth_dev_adjust_nb_rx_tx_desc(port, &rx, &tx);
  const int socket = rte_eth_dev_socket_id(port);
  const auto sock = static_cast<unsigned>(socket < 0 ? 0 : socket);
  if (rte_eth_rx_queue_setup(port, 0, rx, sock, nullptr, pool_) != 0 ||
      rte_eth_tx_queue_setup(port, 0, tx, sock, nullptr) != 0) {
    throw std::runtime_error("port " + std::to_string(port) + ": queue setup failed");
  }
  // A bump in the wire must see every frame, whatever its destination MAC.
  rte_eth_promiscuous_enable(port);
  rte_eth_allmulticast_enable(port);
  if (rte_eth_dev_start(port) != 0) {
    throw std::runtime_error("port " + std::to_string(port) + ": start failed");
  }
}

void Shell::send_from_device(const PairPorts& pair, rte_mbuf** frames, uint16_t count,
                             ShellCounters& counters) {
  rte_mbuf* network[kBurst];
  rte_mbuf* service[kBurst];
  uint16_t to_network = 0;
  uint16_t to_service = 0;
  for (uint16_t i = 0; i < count; ++i) {
    const uint8_t* dst = rte_pktmbuf_mtod(frames[i], const uint8_t*);
    if (mac_key(dst) == pair.service_mac) {
      service[to_service++] = frames[i];
      continue;
    }
    if ((dst[0] & 1) != 0) {
      // Broadcast/multicast (ARP requests for the service address): a copy for the
      // service port, from the pool (no heap allocation).
      if (rte_mbuf* copy = rte_pktmbuf_copy(frames[i], pool_, 0, UINT32_MAX)) {
        service[to_service++] = copy;
      }
    }
    network[to_network++] = frames[i];
  }
  const uint16_t to_service_sent = send_all(pair.service_port, service, to_service, counters);
  engine::bump(counters.service_tx, to_service_sent);
  engine::bump(counters.tx,
               send_all(pair.network_port, network, to_network, counters) + to_service_sent);
}

void Shell::run_worker(uint32_t index, engine::Engine& engine, const std::atomic<bool>& stop) {
  if (latency_) {
    poll<true>(index, engine, stop);
  } else {
    poll<false>(index, engine, stop);
  }
}

template <bool kStampLatency>
void Shell::poll(uint32_t index, engine::Engine& engine, const std::atomic<bool>& stop) {
  engine::Worker& worker = engine.worker(index);
  ShellCounters& counters = counters_[index];
  std::vector<PairPorts> mine;
  for (size_t i = index; i < pairs_.size(); i += counters_.size()) mine.push_back(pairs_[i]);

  rte_mbuf* rx[kBurst];
  rte_mbuf* tx[kBurst];
  rte_mbuf* back[kBurst];
  rte_mbuf* onward[kBurst];
  engine::PacketView views[kBurst];
  engine::Verdict verdicts[kBurst];
  uint32_t idle_polls = 0;

  while (!stop.load(std::memory_order_relaxed)) {
    engine::bump(counters.loops);
    bool busy = false;
    for (const PairPorts& pair : mine) {
      // Sources: the device port, the network port and, if any, the service port, whose
      // frames the engine judges exactly like the network port's.
      for (int source = 0; source < 3; ++source) {
        const bool from_service = source == 2;
        if (from_service && pair.service_port == kNoServicePort) continue;
        const engine::Side side = source == 0 ? engine::Side::device : engine::Side::network;
        const uint16_t in = source == 0   ? pair.device_port
                            : source == 1 ? pair.network_port
                                          : pair.service_port;
        const uint16_t out = side == engine::Side::device ? pair.network_port : pair.device_port;
        const uint16_t n = rte_eth_rx_burst(in, 0, rx, kBurst);
        if (n == 0) continue;
        [[maybe_unused]] uint64_t received_tsc = 0;
        if constexpr (kStampLatency) received_tsc = rte_rdtsc();
        busy = true;
        engine::bump(counters.rx, n);
        if (from_service) engine::bump(counters.service_rx, n);
        for (uint16_t i = 0; i < n; ++i) {
          // Scattered frames are not inspected piecewise: the engine sees only the first
          // segment, so a multi-segment frame is judged as truncated and dropped.
          views[i] =
              engine::PacketView{rte_pktmbuf_mtod(rx[i], const uint8_t*), rx[i]->data_len, side};
          if (rx[i]->nb_segs > 1) {
            engine::bump(counters.multi_segment_dropped);
          }
        }
        worker.process({views, n}, {verdicts, n}, monotonic_ns());

        uint16_t forward = 0;
        uint16_t back_count = 0;
        uint16_t onward_count = 0;
        for (uint16_t i = 0; i < n; ++i) {
          if (verdicts[i].action == engine::Action::forward && rx[i]->nb_segs == 1) {
            tx[forward++] = rx[i];
            continue;
          }
          if (verdicts[i].action == engine::Action::drop_and_reset ||
              verdicts[i].action == engine::Action::drop_and_reset_both) {
            engine::DecodedPacket decoded;
            if (engine::decode(views[i].data, views[i].length, decoded) ==
                engine::DropReason::none) {
              if (rte_mbuf* r = make_reset(views[i].data, decoded, engine::build_tcp_reset)) {
                back[back_count++] = r;
              }
              if (verdicts[i].action == engine::Action::drop_and_reset_both) {
                if (rte_mbuf* r =
                        make_reset(views[i].data, decoded, engine::build_tcp_reset_onward)) {
                  onward[onward_count++] = r;
                }
              }
            }
          }
          rte_pktmbuf_free(rx[i]);
        }
        if constexpr (kStampLatency) {
          if (forward > 0) latency_[index].record(rte_rdtsc() - received_tsc, forward);
        }
        if (side == engine::Side::device && pair.service_port != kNoServicePort) {
          send_from_device(pair, tx, forward, counters);
        } else {
          engine::bump(counters.tx, send_all(out, tx, forward, counters));
        }
        // Resets back to the sender leave by the port the refused segment came in on;
        // onward resets continue to the receiver.
        send_resets(in, back, back_count, counters);
        send_resets(out, onward, onward_count, counters);
      }
    }
    if (busy) {
      idle_polls = 0;
      continue;
    }
    // Idle: go offline for policy reclamation and, after a while, sleep briefly instead
    // of spinning (an appliance with spare cores can set --idle-sleep-us 0).
    if (++idle_polls >= kIdlePollsBeforeSleep && idle_sleep_us_ > 0) {
      worker.go_idle();
      usleep(idle_sleep_us_);
    } else {
      rte_pause();
    }
  }
  worker.go_idle();
}

// ---------------------------------------------------------------------------------------
// Telemetry

namespace {
engine::Engine* g_engine = nullptr;
Shell* g_shell = nullptr;
const std::atomic<uint64_t>* g_version = nullptr;

int telemetry_stats(const char*, const char*, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  uint64_t rx = 0, tx = 0, tx_failed = 0, resets = 0, service_rx = 0, service_tx = 0;
  for (uint32_t w = 0; w < g_shell->workers(); ++w) {
    rx += g_shell->counters(w).rx.load(std::memory_order_relaxed);
    tx += g_shell->counters(w).tx.load(std::memory_order_relaxed);
    tx_failed += g_shell->counters(w).tx_failed.load(std::memory_order_relaxed);
    resets += g_shell->counters(w).resets_sent.load(std::memory_order_relaxed);
    service_rx += g_shell->counters(w).service_rx.load(std::memory_order_relaxed);
    service_tx += g_shell->counters(w).service_tx.load(std::memory_order_relaxed);
  }
  rte_tel_data_add_dict_u64(d, "policy_version", g_version->load());
  rte_tel_data_add_dict_u64(d, "rx", rx);
  rte_tel_data_add_dict_u64(d, "tx", tx);
  rte_tel_data_add_dict_u64(d, "tx_failed", tx_failed);
  rte_tel_data_add_dict_u64(d, "resets_sent", resets);
  rte_tel_data_add_dict_u64(d, "service_rx", service_rx);
  rte_tel_data_add_dict_u64(d, "service_tx", service_tx);
  uint64_t dropped[engine::kDropReasonCount] = {};
  uint64_t packets = 0, flows_active = 0, flows_evicted = 0, flows_expired = 0;
  for (uint32_t w = 0; w < g_engine->worker_count(); ++w) {
    const engine::WorkerCounters& c = g_engine->worker(w).counters();
    packets += c.packets.load(std::memory_order_relaxed);
    flows_active += c.flows_active.load(std::memory_order_relaxed);
    flows_evicted += c.flows_evicted.load(std::memory_order_relaxed);
    flows_expired += c.flows_expired.load(std::memory_order_relaxed);
    for (size_t r = 0; r < engine::kDropReasonCount; ++r) {
      dropped[r] += c.dropped[r].load(std::memory_order_relaxed);
    }
  }
  rte_tel_data_add_dict_u64(d, "packets", packets);
  rte_tel_data_add_dict_u64(d, "flows_active", flows_active);
  rte_tel_data_add_dict_u64(d, "flows_evicted", flows_evicted);
  rte_tel_data_add_dict_u64(d, "flows_expired", flows_expired);
  for (size_t r = 1; r < engine::kDropReasonCount; ++r) {
    // Telemetry names allow only [A-Za-z0-9_]: "no-matching-rule" -> "dropped_no_matching_rule".
    std::string key = "dropped_" + std::string(engine::kDropReasonLabels[r]);
    std::replace(key.begin(), key.end(), '-', '_');
    rte_tel_data_add_dict_u64(d, key.c_str(), dropped[r]);
  }
  return 0;
}

// Bucket counts summed over the workers. Buckets above the highest non-empty one are left
// out (the arrays stay short); "upper_cycles"[i] is the largest value bucket i holds.
int telemetry_latency(const char*, const char*, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  const bool enabled = g_shell->latency(0) != nullptr;
  rte_tel_data_add_dict_u64(d, "enabled", enabled ? 1 : 0);
  rte_tel_data_add_dict_u64(d, "tsc_hz", rte_get_tsc_hz());
  if (!enabled) return 0;
  std::array<uint64_t, LatencyHistogram::kBuckets> counts{};
  uint32_t used = 0;
  for (uint32_t w = 0; w < g_shell->workers(); ++w) {
    for (uint32_t b = 0; b < LatencyHistogram::kBuckets; ++b) {
      counts[b] += g_shell->latency(w)->count(b);
      if (counts[b] != 0 && b + 1 > used) used = b + 1;
    }
  }
  rte_tel_data* bounds = rte_tel_data_alloc();
  rte_tel_data* values = rte_tel_data_alloc();
  if (bounds == nullptr || values == nullptr) {
    rte_tel_data_free(bounds);
    rte_tel_data_free(values);
    return -ENOMEM;
  }
  rte_tel_data_start_array(bounds, RTE_TEL_U64_VAL);
  rte_tel_data_start_array(values, RTE_TEL_U64_VAL);
  for (uint32_t b = 0; b < used; ++b) {
    rte_tel_data_add_array_u64(bounds, LatencyHistogram::upper_bound(b));
    rte_tel_data_add_array_u64(values, counts[b]);
  }
  rte_tel_data_add_dict_container(d, "upper_cycles", bounds, 0);
  rte_tel_data_add_dict_container(d, "packets", values, 0);
  return 0;
}
}  // namespace

void register_telemetry(engine::Engine& engine, Shell& shell,
                        const std::atomic<uint64_t>& policy_version) {
  g_engine = &engine;
  g_shell = &shell;
  g_version = &policy_version;
  rte_telemetry_register_cmd("/cordon/latency", telemetry_latency,
                             "Cordon residence-time histogram (--latency-histogram on): TSC "
                             "rate, bucket upper bounds in cycles, packets per bucket");
  rte_telemetry_register_cmd("/cordon/stats", telemetry_stats,
                             "Cordon dataplane counters: rx, tx, drops by reason, policy version");
}

}  // namespace cordon::dataplane
