#include "dataplane/dpdk/options.h"

#include <charconv>
#include <string_view>

namespace cordon::dataplane {

std::string usage() {
  return "usage: cordon-dataplane [EAL options] -- --pair DEVICE_PORT:NETWORK_PORT\n"
         "         [--service-port PORT] [--pair ... [--service-port PORT]]...\n"
         "         [--control-socket PATH] [--state-dir DIR] [--policy FILE]\n"
         "         [--flows-per-worker N] [--inspected-flows-per-worker N] [--idle-sleep-us N]\n"
         "         [--mbufs N] [--latency-histogram on|off]\n"
         "  DEVICE_PORT, NETWORK_PORT: DPDK port names or ids; separate PCI names with ','\n"
         "  (e.g. --pair 0000:03:00.0,0000:03:00.1)\n"
         "  --service-port: a kernel-facing port (e.g. net_tap0) joined to the device segment\n"
         "  of the --pair before it (the vendor path, docs/management-plane.md)\n"
         "  --latency-histogram on: count each packet's time from RX to TX in log buckets\n"
         "  (telemetry /cordon/latency, a summary at exit); for benchmarks, off by default\n";
}

std::optional<Options> parse_options(int argc, char** argv, std::string& error) {
  Options o;
  auto number = [&](std::string_view flag, std::string_view text, uint32_t& out) {
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    if (ec != std::errc{} || p != text.data() + text.size()) {
      error = std::string(flag) + ": not a number: " + std::string(text);
      return false;
    }
    return true;
  };
  for (int i = 0; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) {
      error = std::string(flag) + ": missing value";
      return std::nullopt;
    }
    const std::string_view value = argv[++i];
    if (flag == "--pair") {
      // PCI names contain ':' themselves: pairs of them are written with ','.
      const size_t comma = value.find(',');
      const size_t split = comma != std::string_view::npos ? comma : value.find(':');
      if (split == std::string_view::npos || split == 0 || split + 1 == value.size()) {
        error = "--pair: expected DEVICE_PORT:NETWORK_PORT, got " + std::string(value);
        return std::nullopt;
      }
      o.pairs.push_back(
          {std::string(value.substr(0, split)), std::string(value.substr(split + 1)), {}});
    } else if (flag == "--service-port") {
      if (o.pairs.empty()) {
        error = "--service-port: must follow the --pair it belongs to";
        return std::nullopt;
      }
      if (!o.pairs.back().service_port.empty()) {
        error = "--service-port: the pair " + o.pairs.back().device_port + ":" +
                o.pairs.back().network_port + " already has one";
        return std::nullopt;
      }
      o.pairs.back().service_port = value;
    } else if (flag == "--control-socket") {
      o.control_socket = value;
    } else if (flag == "--state-dir") {
      o.state_dir = value;
    } else if (flag == "--policy") {
      o.initial_policy = std::string(value);
    } else if (flag == "--flows-per-worker") {
      if (!number(flag, value, o.flows_per_worker)) return std::nullopt;
      if (o.flows_per_worker < 64) {
        error = "--flows-per-worker: at least 64";
        return std::nullopt;
      }
    } else if (flag == "--inspected-flows-per-worker") {
      if (!number(flag, value, o.inspected_flows_per_worker)) return std::nullopt;
      if (o.inspected_flows_per_worker > 65535) {
        error = "--inspected-flows-per-worker: at most 65535";
        return std::nullopt;
      }
    } else if (flag == "--mbufs") {
      if (!number(flag, value, o.mbufs)) return std::nullopt;
    } else if (flag == "--idle-sleep-us") {
      if (!number(flag, value, o.idle_sleep_us)) return std::nullopt;
    } else if (flag == "--latency-histogram") {
      if (value != "on" && value != "off") {
        error = "--latency-histogram: expected on or off, got " + std::string(value);
        return std::nullopt;
      }
      o.latency_histogram = value == "on";
    } else {
      error = "unknown option " + std::string(flag);
      return std::nullopt;
    }
  }
  if (o.pairs.empty()) {
    error = "at least one --pair is required";
    return std::nullopt;
  }
  return o;
}

}  // namespace cordon::dataplane
