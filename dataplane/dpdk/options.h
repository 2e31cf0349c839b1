// Command-line options of cordon-dataplane that follow the EAL arguments ("--").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cordon::dataplane {

struct PortPair {
  std::string device_port;  // DPDK device name (e.g. net_af_packet0) or port id
  std::string network_port;
  // Optional kernel-facing service port (DPDK net_tap) joined to the device segment:
  // its frames are judged as network-side traffic for the pair and go to the device
  // port; device frames addressed to its MAC (and broadcasts) go to it. Empty: none.
  std::string service_port;
};

struct Options {
  std::vector<PortPair> pairs;
  std::string control_socket = "/run/cordon/dataplane.sock";
  std::string state_dir = "/var/lib/cordon/dataplane";
  std::optional<std::string> initial_policy;
  uint32_t flows_per_worker = 262144;
  uint32_t inspected_flows_per_worker = 2048;
  uint32_t mbufs = 0;            // mbuf pool size; 0 = enough for the rings and caches
  uint32_t idle_sleep_us = 100;  // sleep of an idle worker between polls; 0 = busy poll
  // Per-packet residence time histograms (latency_histogram.h), for benchmarks; off
  // costs nothing (the worker loop without stamping is a separate instantiation).
  bool latency_histogram = false;
};

// Parses argv (after the EAL's "--"). On error returns nullopt and sets `error`.
std::optional<Options> parse_options(int argc, char** argv, std::string& error);
std::string usage();

}  // namespace cordon::dataplane
