// Runs one end-to-end packet case (tests/packets/<case>/, see README.md there): compiles
// its policy.json, pushes every frame of frames.pcap through the engine in order, one frame
// per batch, and compares each verdict and every event with expected.json. Prints a
// readable diff and exits 1 on any difference, 2 when the case itself cannot be read.
//
// Side of a frame: a frame whose source MAC is the MAC of a device of the policy arrived on
// the device side; every other frame on the network side.
#include <boost/json.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "dataplane/engine/engine.h"

namespace json = boost::json;
using namespace cordon::engine;

namespace {

struct Frame {
  uint64_t time_ns = 0;
  std::vector<uint8_t> bytes;
};

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A classic pcap file (not pcapng): 24-byte global header, then 16-byte record headers
// each followed by the captured bytes. Either byte order, microsecond or nanosecond
// timestamps, link type Ethernet only.
std::vector<Frame> read_pcap(const std::filesystem::path& path) {
  const std::string data = read_file(path);
  const auto fail = [&](const std::string& what) {
    throw std::runtime_error(path.string() + ": " + what);
  };
  if (data.size() < 24) fail("shorter than a pcap global header (24 bytes)");
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  const auto le32 = [](const uint8_t* b) {
    return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
  };
  const auto be32 = [](const uint8_t* b) {
    return uint32_t{b[3]} | uint32_t{b[2]} << 8 | uint32_t{b[1]} << 16 | uint32_t{b[0]} << 24;
  };
  bool big_endian = false;
  bool nanoseconds = false;
  const uint32_t magic = le32(p);
  if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d) {
    nanoseconds = magic == 0xa1b23c4d;
  } else if (be32(p) == 0xa1b2c3d4 || be32(p) == 0xa1b23c4d) {
    big_endian = true;
    nanoseconds = be32(p) == 0xa1b23c4d;
  } else {
    char text[96];
    std::snprintf(text, sizeof text,
                  "not a pcap file (magic %02x %02x %02x %02x; pcapng is not supported)", p[0],
                  p[1], p[2], p[3]);
    fail(text);
  }
  const auto u32 = [&](size_t at) { return big_endian ? be32(p + at) : le32(p + at); };
  const auto u16 = [&](size_t at) {
    return big_endian ? static_cast<uint32_t>(p[at] << 8 | p[at + 1])
                      : static_cast<uint32_t>(p[at] | p[at + 1] << 8);
  };
  if (u16(4) != 2) fail("pcap major version " + std::to_string(u16(4)) + ", expected 2");
  const uint32_t snaplen = u32(16);
  const uint32_t linktype = u32(20);
  if (linktype != 1) fail("link type " + std::to_string(linktype) + ", expected 1 (Ethernet)");
  std::vector<Frame> frames;
  size_t at = 24;
  while (at < data.size()) {
    const size_t number = frames.size() + 1;
    if (data.size() - at < 16) fail("record " + std::to_string(number) + ": truncated header");
    const uint32_t seconds = u32(at);
    const uint32_t fraction = u32(at + 4);
    const uint32_t captured = u32(at + 8);
    const uint32_t original = u32(at + 12);
    if (captured > 262144 || (snaplen != 0 && captured > snaplen) || original < captured) {
      fail("record " + std::to_string(number) + ": impossible lengths (captured " +
           std::to_string(captured) + ", original " + std::to_string(original) + ")");
    }
    if (captured != original) fail("record " + std::to_string(number) + ": frame was cut");
    at += 16;
    if (data.size() - at < captured) fail("record " + std::to_string(number) + ": truncated data");
    Frame f;
    f.time_ns = uint64_t{seconds} * 1'000'000'000 +
                (nanoseconds ? uint64_t{fraction} : uint64_t{fraction} * 1000);
    f.bytes.assign(p + at, p + at + captured);
    frames.push_back(std::move(f));
    at += captured;
  }
  return frames;
}

std::string_view action_label(Action a) {
  switch (a) {
    case Action::forward:
      return "forward";
    case Action::drop:
      return "drop";
    case Action::drop_and_reset:
      return "drop_and_reset";
    case Action::drop_and_reset_both:
      return "drop_and_reset_both";
  }
  return "?";
}

json::object event_json(const Event& e, size_t frame) {
  json::object o;
  o["frame"] = frame;
  o["kind"] = to_string(e.kind);
  o["reason"] = label(e.reason);
  o["detail"] = e.detail;
  o["device"] = e.device;
  o["rule"] = e.rule;
  o["ingress"] = e.ingress == Side::device ? "device" : "network";
  o["src"] = e.src_ip.to_string();
  o["dst"] = e.dst_ip.to_string();
  o["src_port"] = e.src_port;
  o["dst_port"] = e.dst_port;
  return o;
}

// Every field of `expected` equal in `actual`.
bool subset(const json::object& expected, const json::object& actual, std::string& why) {
  for (const auto& [key, value] : expected) {
    const json::value* have = actual.if_contains(key);
    if (have == nullptr) {
      why = "no field \"" + std::string(key) + "\"";
      return false;
    }
    // Numbers compare by value whatever their JSON type (int64 vs uint64).
    const bool equal = value.is_number() && have->is_number()
                           ? value.to_number<double>() == have->to_number<double>()
                           : value == *have;
    if (!equal) {
      why = std::string(key) + ": expected " + json::serialize(value) + ", got " +
            json::serialize(*have);
      return false;
    }
  }
  return true;
}

int run(const std::filesystem::path& dir) {
  // --- the case ---
  const PolicyParseResult parsed = parse_policy(read_file(dir / "policy.json"));
  if (!parsed.document) {
    std::cerr << dir.string() << "/policy.json is invalid:\n";
    for (const PolicyError& e : parsed.errors) std::cerr << "  " << e.to_string() << "\n";
    return 2;
  }
  const json::value expected_doc = json::parse(read_file(dir / "expected.json"));
  const json::object& expected = expected_doc.as_object();
  const std::vector<Frame> frames = read_pcap(dir / "frames.pcap");
  std::set<MacAddress> device_macs;
  for (const Device& d : parsed.document->devices) device_macs.insert(d.mac);

  struct Expectation {
    std::string action = "forward";
    std::string reason;  // empty: not checked
    bool would_drop = false;
  };
  std::vector<Expectation> want(frames.size());
  for (const json::value& v : expected.at("verdicts").as_array()) {
    const json::object& o = v.as_object();
    const auto frame = o.at("frame").to_number<size_t>();
    if (frame < 1 || frame > frames.size()) {
      std::cerr << "expected.json: frame " << frame << " not in frames.pcap (" << frames.size()
                << " frames)\n";
      return 2;
    }
    Expectation& e = want[frame - 1];
    e.action = json::value_to<std::string>(o.at("action"));
    if (const json::value* r = o.if_contains("reason")) e.reason = json::value_to<std::string>(*r);
    if (const json::value* w = o.if_contains("would_drop")) e.would_drop = w->as_bool();
  }

  // --- the run ---
  EngineConfig config;
  config.flows_per_worker = 1024;
  config.inspected_flows_per_worker = 64;
  config.event_ring_size = 1024;
  Engine engine(config);
  CompileResult compiled = compile_policy(*parsed.document, 1, 1);
  if (!compiled.errors.empty()) {
    std::cerr << dir.string() << "/policy.json does not compile:\n";
    for (const PolicyError& e : compiled.errors) std::cerr << "  " << e.to_string() << "\n";
    return 2;
  }
  engine.publish(std::move(compiled.policy));

  // The first differences say what went wrong; a dropped connection's later frames repeat it.
  constexpr int kMaxReported = 20;
  int differences = 0;
  json::array events;
  std::vector<Event> batch(64);
  for (size_t i = 0; i < frames.size(); ++i) {
    const Frame& f = frames[i];
    MacAddress source;
    if (f.bytes.size() >= 12) std::memcpy(source.bytes.data(), f.bytes.data() + 6, 6);
    const Side side = device_macs.contains(source) ? Side::device : Side::network;
    const PacketView view{f.bytes.data(), static_cast<uint32_t>(f.bytes.size()), side};
    Verdict v;
    engine.worker(0).process({&view, 1}, {&v, 1}, f.time_ns);
    for (size_t n; (n = engine.poll_events(batch)) > 0;) {
      for (size_t k = 0; k < n; ++k) events.push_back(event_json(batch[k], i + 1));
    }
    const Expectation& e = want[i];
    const bool ok =
        action_label(v.action) == e.action &&
        (e.reason.empty() ? e.action != "forward" || v.reason == DropReason::none || v.would_drop
                          : label(v.reason) == e.reason) &&
        v.would_drop == e.would_drop;
    if (!ok && ++differences > kMaxReported) {
      if (differences == kMaxReported + 1) std::cout << "... (further frame differences omitted)\n";
    } else if (!ok) {
      std::cout << "frame " << (i + 1) << " (" << (side == Side::device ? "device" : "network")
                << " side): expected " << e.action << (e.reason.empty() ? "" : " ") << e.reason
                << (e.would_drop ? " (would drop)" : "") << ", got " << action_label(v.action)
                << " " << label(v.reason) << (v.would_drop ? " (would drop)" : "") << "\n";
    }
  }
  engine.worker(0).go_idle();

  const json::array& want_events = expected.at("events").as_array();
  for (size_t k = 0; k < std::max(want_events.size(), events.size()); ++k) {
    if (k >= events.size()) {
      ++differences;
      std::cout << "event " << (k + 1) << ": missing, expected " << json::serialize(want_events[k])
                << "\n";
      continue;
    }
    if (k >= want_events.size()) {
      ++differences;
      std::cout << "event " << (k + 1) << ": unexpected " << json::serialize(events[k]) << "\n";
      continue;
    }
    std::string why;
    if (!subset(want_events[k].as_object(), events[k].as_object(), why)) {
      ++differences;
      std::cout << "event " << (k + 1) << ": " << why << "\n  expected "
                << json::serialize(want_events[k]) << "\n  got      " << json::serialize(events[k])
                << "\n";
    }
  }
  const std::string description = expected.contains("description")
                                      ? json::value_to<std::string>(expected.at("description"))
                                      : "";
  std::cout << dir.filename().string() << ": " << description << "\n"
            << frames.size() << " frames, " << events.size() << " events: "
            << (differences == 0 ? "PASS" : std::to_string(differences) + " difference(s), FAIL")
            << "\n";
  return differences == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: run_case <tests/packets/case-directory>\n";
    return 2;
  }
  try {
    return run(argv[1]);
  } catch (const std::exception& e) {
    std::cerr << "run_case: " << e.what() << "\n";
    return 2;
  }
}
