// Fuzzes Engine::restore_flows, the reader of the flow snapshot a dataplane leaves in its
// state dir at shutdown. Invariants: bad bytes give an error and restore nothing; good ones
// restore flows that the engine saves again, and that snapshot restores the same flows.
//
// Input: one mode byte, then the snapshot. Mode odd: the target appends the right checksum,
// so the fuzzer reaches the checks behind it (it could not find a CRC-32 itself); even:
// the bytes as they are, checksum included.
#include <boost/crc.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "dataplane/engine/engine.h"

namespace {

constexpr std::string_view kLayout = "fuzz";
constexpr uint64_t kNowNs = 10'000'000'000;
// The seeds (corpus/flow_snapshot) were saved one second before this.
constexpr uint64_t kWallNs = 1'800'000'001'000'000'000;

std::unique_ptr<cordon::engine::Engine> make_engine() {
  cordon::engine::EngineConfig config;
  config.workers = 2;
  config.flows_per_worker = 64;
  config.inspected_flows_per_worker = 1;
  config.event_ring_size = 16;
  return std::make_unique<cordon::engine::Engine>(config);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string input(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((data[0] & 1) != 0) {
    boost::crc_32_type crc;
    crc.process_bytes(input.data(), input.size());
    const uint32_t sum = crc.checksum();
    input.append(reinterpret_cast<const char*>(&sum), sizeof sum);
  }
  const std::string_view bytes(input);
  auto engine = make_engine();
  const cordon::engine::FlowRestore first = engine->restore_flows(bytes, kLayout, kNowNs, kWallNs);
  const cordon::engine::FlowSnapshot saved = engine->save_flows(kLayout, kNowNs, kWallNs);
  if (!first.error.empty()) {
    if (first.restored != 0 || saved.flows != 0) __builtin_trap();  // nothing partial
    return 0;
  }
  if (saved.flows != first.restored) __builtin_trap();
  auto again = make_engine();
  const cordon::engine::FlowRestore second =
      again->restore_flows(saved.bytes, kLayout, kNowNs, kWallNs);
  if (!second.error.empty() || second.restored != first.restored || second.expired != 0) {
    __builtin_trap();
  }
  return 0;
}
