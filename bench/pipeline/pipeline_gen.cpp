// cordon_bench_pipeline_gen: the input files of `bench/run.sh pipeline` (bench/README.md,
// "Part 2"). From the classifier benchmark's workload (bench/workload.cpp, same seed, so the
// same rules as its 10k row) it writes into --out:
//
//   policy.json     the rule set as a cordon.policy/v1 document (cordon-dataplane --policy)
//   l3fwd-v4.rules  the same rules for DPDK's l3fwd --lookup=acl: one "R" (route) line per
//                   rule, in the same order, all routed to port 1 (the net_null port);
//                   no "@" (deny) lines: what no route matches is dropped, as the engine
//                   drops what no rule allows
//   l3fwd-v6.rules  one IPv6 route l3fwd insists on (it needs a route in each file); no
//                   IPv6 frame is ever sent
//   flows-64.pcap   one frame per flow, 60 bytes captured = 64-byte Ethernet frames on
//                   the wire with the FCS
//   flows-imix.pcap the same flows, simple IMIX 7:4:1 of 64/594/1518-byte frames
//   flows-64-half0.pcap, flows-64-half1.pcap  flows-64.pcap's frames split in two (even
//                   and odd flows), one per port pair for the runs with 2 worker cores
//   policy-b.json   the policy the swap benchmark replaces policy.json with (bench/netns):
//                   every device's rules in reverse order under new names, plus one rule
//                   per device that no frame matches; every flow is checked to be allowed
//                   by both, so no packet's verdict may change across the swap
//   flows-swap.pcap flows-64.pcap's frames with, after every 100th, one frame from an
//                   address no device owns (10.254.x.y, a device's MAC): dropped under
//                   both policies as spoofed. meta.json says how many and where
//   tcp-syn.pcap, tcp-synack.pcap, tcp-ack-64.pcap  --flows TCP flows (of the TCP `out`
//                   rules, drawn like the UDP flows below): each flow's SYN, the peer's
//                   SYN-ACK, and one 64-byte ACK of the device that completes the handshake
//                   and, repeated on every later pass, is an in-window segment of an
//                   established connection (the same sequence and acknowledgement numbers:
//                   a duplicate ACK, which TCP allows any number of). All three in the same
//                   flow order. The SYN and SYN-ACK pcaps are played once, on a second port
//                   pair that cordon-dataplane's worker polls before the ACK stream's pair
//                   (bench/pipeline/pipeline.py, "tcp"), so every flow is established by
//                   its SYN-ACK's burst before its first ACK arrives
//   meta.json       counts and checks, read by bench/pipeline/pipeline.py
//
// With --pcaps=64 only policy.json, flows-64.pcap and meta.json are written (part 6, the
// flow-table scale runs of bench/scale/scale.py, at 10k to 1M flows).
//
// With --flood-table=T (part 6, the flood) it writes policy.json and, instead of the above:
//   flood-dev.pcap      the device port's pcap: first one frame of each of N established
//                       flows (N = --flood-established, default T/2), then F = --flood-factor
//                       (default 10) x T frames of F distinct new flows with the established
//                       flows' further frames spread evenly among them (--flood-repeats,
//                       default 2, frames per established flow per pass)
//   flood-replies.pcap  one reply (network -> device) per established flow, in the same
//                       order, played once on the network port: it makes them replied UDP
//                       flows, the class the flow table never evicts for new flows
//   meta.json           counts, and which devices carry the established flows (even
//                       device indexes) and which the new ones (odd), so the per-device
//                       counters tell the two apart
//
// Flows are UDP, device -> network: each picks a random UDP `out` rule of the workload
// (weighting devices by how many such rules they have), a peer inside the rule's CIDR
// (inside 10.0.0.0/8 for 0.0.0.0/0 rules) and a destination port inside its range; source
// MAC and IP are the device's own, so anti-spoofing passes. Why UDP: with net_null as the
// network port nothing ever answers, and a TCP flow whose SYN-ACK never comes stays in
// SYN-sent, where the engine drops the initiator's data and ACKs (tcp-invalid-state); a
// UDP flow is admitted by its first packet and every later packet is a flow-table hit.
// Every flow is checked to be allowed by the compiled policy (the generator fails if not),
// and 5-tuples are distinct. The TCP pcaps above add the per-segment sequence tracking
// that TCP flows take (Worker::track_tcp, the TcpSequence beside each Flow entry).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "bench/workload.h"
#include "dataplane/engine/compiled_policy.h"
#include "dataplane/engine/policy_document.h"

namespace {

using cordon::bench::ipv4_to_string;
using cordon::bench::Rng;
using cordon::engine::Direction;
using cordon::engine::IpAddress;
using cordon::engine::Protocol;

struct Flow {
  uint32_t device = 0;
  uint32_t src = 0;  // host order
  uint32_t dst = 0;
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint32_t global_rule = 0;
};

uint32_t prefix_mask(unsigned length) {
  return length == 0 ? 0 : ~uint32_t{0} << (32 - length);
}

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}

uint16_t fold(uint32_t sum) {
  while ((sum >> 16) != 0) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}
uint32_t add_words(const uint8_t* p, size_t n, uint32_t sum) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t{p[i]} << 8) | p[i + 1];
  if ((n & 1) != 0) sum += uint32_t{p[n - 1]} << 8;
  return sum;
}

// The Ethernet and IPv4 headers of a frame of `length` bytes (without FCS) whose IP packet
// is `ip_len` bytes (less than the frame's rest when the frame is padded to 60): from the
// device (`device_mac`) to the gateway, or with `reply` the other way round (peer ->
// device, addresses and ports swapped in `f`). Returns the frame and `f` as sent.
std::vector<uint8_t> make_ip_frame(const Flow& flow, const cordon::engine::MacAddress& device_mac,
                                   uint32_t length, uint16_t ip_len, uint8_t protocol,
                                   uint16_t ip_id, bool reply, Flow& f) {
  std::vector<uint8_t> b(length, 0);
  static const uint8_t gateway[6] = {0x02, 0x00, 0x00, 0xff, 0xff, 0xfe};
  std::memcpy(b.data() + (reply ? 6 : 0), gateway, 6);
  std::memcpy(b.data() + (reply ? 0 : 6), device_mac.bytes.data(), 6);
  f = flow;
  if (reply) {
    std::swap(f.src, f.dst);
    std::swap(f.sport, f.dport);
  }
  put16(b.data() + 12, 0x0800);
  uint8_t* ip = b.data() + 14;
  ip[0] = 0x45;
  put16(ip + 2, ip_len);
  put16(ip + 4, ip_id);
  put16(ip + 6, 0x4000);  // DF, not a fragment
  ip[8] = 64;
  ip[9] = protocol;
  put32(ip + 12, f.src);
  put32(ip + 16, f.dst);
  put16(ip + 10, static_cast<uint16_t>(~fold(add_words(ip, 20, 0))));
  return b;
}

// One Ethernet/IPv4/UDP frame of `length` bytes (without FCS), checksums filled in, as
// make_ip_frame.
std::vector<uint8_t> make_frame(const Flow& flow, const cordon::engine::MacAddress& device_mac,
                                uint32_t length, uint16_t ip_id, bool reply = false) {
  const auto ip_len = static_cast<uint16_t>(length - 14);
  Flow f;
  std::vector<uint8_t> b = make_ip_frame(flow, device_mac, length, ip_len, 17, ip_id, reply, f);
  uint8_t* ip = b.data() + 14;
  uint8_t* udp = ip + 20;
  const auto udp_len = static_cast<uint16_t>(ip_len - 20);
  put16(udp, f.sport);
  put16(udp + 2, f.dport);
  put16(udp + 4, udp_len);
  for (uint32_t i = 8; i < udp_len; ++i) udp[i] = static_cast<uint8_t>(i);  // payload
  uint32_t sum = add_words(ip + 12, 8, 0) + 17 + udp_len;
  uint16_t c = static_cast<uint16_t>(~fold(add_words(udp, udp_len, sum)));
  put16(udp + 6, c == 0 ? 0xffff : c);
  return b;
}

// One 60-byte Ethernet/IPv4/TCP frame without payload (a 40-byte IP packet, 6 bytes of
// Ethernet padding), no TCP options, as make_ip_frame.
constexpr uint8_t kTcpSyn = 0x02;
constexpr uint8_t kTcpAck = 0x10;
std::vector<uint8_t> make_tcp_frame(const Flow& flow, const cordon::engine::MacAddress& device_mac,
                                    uint16_t ip_id, bool reply, uint8_t flags, uint32_t seq,
                                    uint32_t ack) {
  Flow f;
  std::vector<uint8_t> b = make_ip_frame(flow, device_mac, 60, 40, 6, ip_id, reply, f);
  uint8_t* tcp = b.data() + 14 + 20;
  put16(tcp, f.sport);
  put16(tcp + 2, f.dport);
  put32(tcp + 4, seq);
  put32(tcp + 8, ack);
  tcp[12] = 5 << 4;  // 20-byte header
  tcp[13] = flags;
  put16(tcp + 14, 65535);  // window: no scale option, so unscaled
  const uint32_t sum = add_words(b.data() + 14 + 12, 8, 0) + 6 + 20;
  put16(tcp + 16, static_cast<uint16_t>(~fold(add_words(tcp, 20, sum))));
  return b;
}

class PcapWriter {
 public:
  explicit PcapWriter(const std::string& path) : out_(path, std::ios::binary) {
    const uint32_t header[6] = {0xa1b2c3d4u, 0x00040002u, 0, 0, 65535, 1};  // v2.4, Ethernet
    out_.write(reinterpret_cast<const char*>(header), sizeof header);
  }
  void write(const std::vector<uint8_t>& frame) {
    const auto len = static_cast<uint32_t>(frame.size());
    const uint32_t rec[4] = {1'700'000'000u + static_cast<uint32_t>(count_ / 1'000'000),
                             static_cast<uint32_t>(count_ % 1'000'000), len, len};
    out_.write(reinterpret_cast<const char*>(rec), sizeof rec);
    out_.write(reinterpret_cast<const char*>(frame.data()), len);
    ++count_;
    bytes_ += len;
  }
  bool ok() const { return static_cast<bool>(out_); }
  uint64_t bytes() const { return bytes_; }

 private:
  std::ofstream out_;
  uint64_t count_ = 0;
  uint64_t bytes_ = 0;
};

std::string arg_value(int argc, char** argv, const std::string& name, const std::string& def) {
  const std::string prefix = "--" + name + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]).rfind(prefix, 0) == 0) return std::string(argv[i] + prefix.size());
  }
  return def;
}

int fail(const std::string& message) {
  std::cerr << "cordon_bench_pipeline_gen: " << message << "\n";
  return 1;
}

using FlowSet = std::set<std::tuple<uint32_t, uint32_t, uint16_t, uint16_t>>;

// The `out` rules of `protocol`, as (device, rule index in the device).
std::vector<std::pair<uint32_t, uint32_t>> out_rules(const cordon::engine::PolicyDocument& doc,
                                                     Protocol protocol) {
  std::vector<std::pair<uint32_t, uint32_t>> rules;
  for (uint32_t d = 0; d < doc.devices.size(); ++d) {
    const auto& rs = doc.devices[d].rules;
    for (uint32_t i = 0; i < rs.size(); ++i) {
      if (rs[i].dir == Direction::out && rs[i].proto == protocol) rules.emplace_back(d, i);
    }
  }
  return rules;
}

// Appends `count` distinct flows (distinct from every flow in `seen` too) of the
// `candidates` rules to `flows`; each one is checked to be allowed by the compiled policy.
bool generate_flows(const cordon::bench::Workload& w, const cordon::engine::CompiledPolicy& policy,
                    const std::vector<std::pair<uint32_t, uint32_t>>& candidates, Protocol protocol,
                    uint32_t count, Rng& rng, FlowSet& seen, std::vector<Flow>& flows,
                    std::string& error) {
  const size_t target = flows.size() + count;
  flows.reserve(target);
  while (flows.size() < target) {
    const auto [d, i] = candidates[rng.below(static_cast<uint32_t>(candidates.size()))];
    const cordon::engine::Rule& r = w.document.devices[d].rules[i];
    Flow f;
    f.device = d;
    f.src = cordon::bench::device_ip(d);
    const unsigned plen = r.peer.prefix_length;
    const uint32_t host = static_cast<uint32_t>(rng.next());
    f.dst = plen == 0 ? (0x0A000000u | (host & 0x00FFFFFFu))
                      : (r.peer.network.v4_host_order() | (host & ~prefix_mask(plen)));
    f.dport =
        static_cast<uint16_t>(rng.between(std::max<uint32_t>(r.dport.first, 1), r.dport.last));
    f.sport = static_cast<uint16_t>(rng.between(1024, 65535));
    if (!seen.emplace(f.src, f.dst, f.sport, f.dport).second) continue;
    const int32_t dev = policy.device_by_ip(IpAddress::v4(f.src));
    const int32_t rule = dev < 0 ? cordon::engine::kNoRule
                                 : policy.classify(static_cast<uint32_t>(dev), Direction::out,
                                                   protocol, IpAddress::v4(f.dst), f.dport);
    if (dev != static_cast<int32_t>(d) || rule == cordon::engine::kNoRule || rule > int32_t(i)) {
      error = "flow " + std::to_string(flows.size()) + " is not allowed by its rule";
      return false;
    }
    f.global_rule = w.rule_offset[d] + static_cast<uint32_t>(rule);
    flows.push_back(f);
  }
  return true;
}

// --flood-table=T: the flood pcaps (header comment). Established flows on even devices, new
// ones on odd devices, so each device's counters belong to one kind only.
int write_flood(const std::string& out, const cordon::bench::Workload& w,
                const cordon::engine::CompiledPolicy& policy,
                const std::vector<std::pair<uint32_t, uint32_t>>& candidates, uint32_t table,
                int argc, char** argv) {
  const auto established = static_cast<uint32_t>(
      std::stoul(arg_value(argc, argv, "flood-established", std::to_string(table / 2))));
  const auto factor =
      static_cast<uint32_t>(std::stoul(arg_value(argc, argv, "flood-factor", "10")));
  const auto repeats =
      static_cast<uint32_t>(std::stoul(arg_value(argc, argv, "flood-repeats", "2")));
  if (established == 0 || established >= table || factor == 0 || repeats < 2) {
    return fail("--flood-established must be in [1, T), --flood-factor >= 1, --flood-repeats >= 2");
  }
  std::vector<std::pair<uint32_t, uint32_t>> even;
  std::vector<std::pair<uint32_t, uint32_t>> odd;
  for (const auto& c : candidates) (c.first % 2 == 0 ? even : odd).push_back(c);
  if (even.empty() || odd.empty()) return fail("the workload has too few devices for a flood");
  Rng rng(cordon::bench::kDefaultSeed ^ 0xF100'D000ULL ^ table);
  FlowSet seen;
  std::vector<Flow> kept;
  std::vector<Flow> fresh;
  std::string error;
  const uint32_t new_flows = factor * table;
  if (!generate_flows(w, policy, even, Protocol::udp, established, rng, seen, kept, error) ||
      !generate_flows(w, policy, odd, Protocol::udp, new_flows, rng, seen, fresh, error)) {
    return fail(error);
  }
  const auto& devices = w.document.devices;
  PcapWriter dev(out + "/flood-dev.pcap");
  PcapWriter replies(out + "/flood-replies.pcap");
  uint16_t id = 0;
  // First every established flow's first frame, in order: the replies come in the same order
  // on the other port, and the worker polls the device port first, so every flow exists
  // before its reply arrives.
  for (const Flow& f : kept) {
    dev.write(make_frame(f, devices[f.device].mac, 60, id++));
    replies.write(make_frame(f, devices[f.device].mac, 60, id, true));
  }
  // Then the new flows with the established flows' further frames spread evenly among them.
  const uint64_t spread = uint64_t{established} * (repeats - 1);
  uint64_t next_kept = 0;
  for (uint64_t n = 0; n < new_flows; ++n) {
    while (next_kept < spread && next_kept * new_flows <= n * spread) {
      const Flow& f = kept[next_kept % established];
      dev.write(make_frame(f, devices[f.device].mac, 60, id++));
      ++next_kept;
    }
    const Flow& f = fresh[n];
    dev.write(make_frame(f, devices[f.device].mac, 60, id++));
  }
  for (; next_kept < spread; ++next_kept) {
    const Flow& f = kept[next_kept % established];
    dev.write(make_frame(f, devices[f.device].mac, 60, id++));
  }
  if (!dev.ok() || !replies.ok()) return fail("cannot write the flood pcaps");

  std::set<uint32_t> kept_devices;
  std::set<uint32_t> fresh_devices;
  for (const Flow& f : kept) kept_devices.insert(f.device);
  for (const Flow& f : fresh) fresh_devices.insert(f.device);
  auto names = [&](const std::set<uint32_t>& ds) {
    std::string s = "[";
    for (uint32_t d : ds) s += (s.size() > 1 ? ",\"" : "\"") + devices[d].name + "\"";
    return s + "]";
  };
  const uint64_t frames = uint64_t{established} * repeats + new_flows;
  std::ofstream m(out + "/meta.json");
  m << "{\"rules\":" << w.rule_count << ",\"devices\":" << w.device_count
    << ",\"flood\":{\"table\":" << table << ",\"established\":" << established
    << ",\"new_flows\":" << new_flows << ",\"factor\":" << factor << ",\"repeats\":" << repeats
    << ",\"frames\":" << frames << ",\"established_frames\":" << uint64_t{established} * repeats
    << ",\"replies\":" << established << ",\"established_devices\":" << names(kept_devices)
    << ",\"new_flow_devices\":" << names(fresh_devices) << "},\"frames\":" << frames
    << ",\"seed\":" << cordon::bench::kDefaultSeed << ",\"all_flows_allowed\":true}\n";
  if (!m) return fail("cannot write meta.json");
  std::cerr << "cordon_bench_pipeline_gen: flood: table " << table << ", " << established
            << " established flows on " << kept_devices.size() << " devices, " << new_flows
            << " new flows on " << fresh_devices.size() << " devices, " << frames
            << " frames per pass -> " << out << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--help") {
      std::cout << "usage: cordon_bench_pipeline_gen --out=DIR [--rules=10000] [--flows=100000]\n"
                   "         [--pcaps=all|64] [--flood-table=T [--flood-established=N]\n"
                   "         [--flood-factor=10] [--flood-repeats=2]]\n";
      return 0;
    }
  }
  const std::string out = arg_value(argc, argv, "out", "");
  const auto rules = static_cast<uint32_t>(std::stoul(arg_value(argc, argv, "rules", "10000")));
  const auto flow_count =
      static_cast<uint32_t>(std::stoul(arg_value(argc, argv, "flows", "100000")));
  const std::string pcaps = arg_value(argc, argv, "pcaps", "all");
  const auto flood_table =
      static_cast<uint32_t>(std::stoul(arg_value(argc, argv, "flood-table", "0")));
  if (out.empty()) return fail("--out=DIR is required");
  if (pcaps != "all" && pcaps != "64") return fail("--pcaps: all or 64, got " + pcaps);
  const bool only_64 = pcaps == "64";

  const cordon::bench::Workload w =
      cordon::bench::make_workload(rules, cordon::bench::kDefaultSeed);
  const cordon::engine::PolicyDocument& doc = w.document;

  // The policy document, checked by the parser the dataplane uses.
  const std::string json = cordon::engine::to_json(doc);
  {
    const cordon::engine::PolicyParseResult parsed = cordon::engine::parse_policy(json);
    if (!parsed.errors.empty()) {
      return fail("generated policy does not parse: " + parsed.errors.front().to_string());
    }
    std::ofstream f(out + "/policy.json");
    f << json << "\n";
    if (!f) return fail("cannot write " + out + "/policy.json");
  }
  cordon::engine::CompileResult compiled = cordon::engine::compile_policy(doc, 1, 1);
  if (!compiled.policy) return fail("generated policy does not compile");
  const cordon::engine::CompiledPolicy& policy = *compiled.policy;

  // l3fwd ACL rule files: "R" route lines, in global rule order (l3fwd gives line k the
  // priority RTE_ACL_MAX_PRIORITY - k: first match wins, like the engine).
  {
    std::ofstream f(out + "/l3fwd-v4.rules");
    for (const cordon::engine::Device& d : doc.devices) {
      const uint32_t dev_ip = d.ips.front().v4_host_order();
      for (const cordon::engine::Rule& r : d.rules) {
        const uint32_t peer = r.peer.network.v4_host_order();
        const unsigned plen = r.peer.prefix_length;
        const bool out_rule = r.dir == Direction::out;
        f << 'R' << ipv4_to_string(out_rule ? dev_ip : peer) << '/' << (out_rule ? 32 : plen) << ' '
          << ipv4_to_string(out_rule ? peer : dev_ip) << '/' << (out_rule ? plen : 32)
          << " 0 : 65535 " << r.dport.first << " : " << r.dport.last << ' '
          << (r.proto == Protocol::tcp ? 6 : 17) << "/0xff 1\n";
      }
    }
    std::ofstream f6(out + "/l3fwd-v6.rules");
    f6 << "R2001:db8:0:0:0:0:0:1/128 2001:db8:0:0:0:0:0:2/128 0 : 65535 0 : 65535 17/0xff 1\n";
    if (!f || !f6) return fail("cannot write the l3fwd rule files");
  }

  // The flows.
  const std::vector<std::pair<uint32_t, uint32_t>> candidates = out_rules(doc, Protocol::udp);
  if (candidates.empty()) return fail("the workload has no UDP out rule");
  if (flood_table > 0) return write_flood(out, w, policy, candidates, flood_table, argc, argv);
  Rng rng(cordon::bench::kDefaultSeed ^ 0x9197'0000ULL ^ flow_count);
  FlowSet seen;
  std::vector<Flow> flows;
  std::vector<uint32_t> flows_per_device(doc.devices.size(), 0);
  std::string error;
  if (!generate_flows(w, policy, candidates, Protocol::udp, flow_count, rng, seen, flows, error)) {
    return fail(error);
  }
  for (const Flow& f : flows) ++flows_per_device[f.device];

  if (only_64) {
    PcapWriter p64(out + "/flows-64.pcap");
    for (size_t n = 0; n < flows.size(); ++n) {
      const Flow& f = flows[n];
      p64.write(make_frame(f, doc.devices[f.device].mac, 60, static_cast<uint16_t>(n)));
    }
    if (!p64.ok()) return fail("cannot write flows-64.pcap");
    const auto devices_with_flows = static_cast<uint32_t>(std::count_if(
        flows_per_device.begin(), flows_per_device.end(), [](uint32_t c) { return c > 0; }));
    std::ofstream m(out + "/meta.json");
    m << "{\"rules\":" << w.rule_count << ",\"devices\":" << w.device_count
      << ",\"udp_out_rules\":" << candidates.size() << ",\"flows\":" << flows.size()
      << ",\"devices_with_flows\":" << devices_with_flows << ",\"frames\":" << flows.size()
      << ",\"seed\":" << cordon::bench::kDefaultSeed
      << ",\"pcap_64\":{\"frame_bytes\":60,\"wire_bytes\":64,\"bytes\":" << p64.bytes()
      << "},\"all_flows_allowed\":true}\n";
    if (!m) return fail("cannot write meta.json");
    std::cerr << "cordon_bench_pipeline_gen: " << flows.size()
              << " UDP flows (64-byte pcap only) -> " << out << "\n";
    return 0;
  }

  PcapWriter p64(out + "/flows-64.pcap");
  PcapWriter pimix(out + "/flows-imix.pcap");
  PcapWriter halves[2] = {PcapWriter(out + "/flows-64-half0.pcap"),
                          PcapWriter(out + "/flows-64-half1.pcap")};
  uint32_t imix_counts[3] = {0, 0, 0};
  static const uint32_t kImix[3] = {60, 590, 1514};  // + 4-byte FCS: 64, 594, 1518
  for (size_t n = 0; n < flows.size(); ++n) {
    const Flow& f = flows[n];
    const auto& mac = doc.devices[f.device].mac;
    const std::vector<uint8_t> frame64 = make_frame(f, mac, 60, static_cast<uint16_t>(n));
    p64.write(frame64);
    halves[n % 2].write(frame64);
    const uint32_t k = rng.below(12);
    const uint32_t cls = k < 7 ? 0 : k < 11 ? 1 : 2;
    ++imix_counts[cls];
    pimix.write(make_frame(f, mac, kImix[cls], static_cast<uint16_t>(n)));
  }
  if (!p64.ok() || !pimix.ok() || !halves[0].ok() || !halves[1].ok()) {
    return fail("cannot write the pcaps");
  }

  // Policy B for the swap under load: same allowlist, different rules and rule order.
  cordon::engine::PolicyDocument doc_b = doc;
  for (cordon::engine::Device& d : doc_b.devices) {
    std::reverse(d.rules.begin(), d.rules.end());
    for (cordon::engine::Rule& r : d.rules) r.name = "b-" + r.name;
    cordon::engine::Rule extra;
    extra.name = "b-unused";
    extra.dir = Direction::out;
    extra.proto = Protocol::tcp;
    extra.peer = cordon::engine::Cidr{IpAddress::v4(0x0AFFFF01u), 32};  // 10.255.255.1
    extra.dport = {9, 9};
    d.rules.push_back(extra);
  }
  {
    const std::string json_b = cordon::engine::to_json(doc_b);
    if (!cordon::engine::parse_policy(json_b).errors.empty())
      return fail("policy B does not parse");
    cordon::engine::CompileResult compiled_b = cordon::engine::compile_policy(doc_b, 2, 1);
    if (!compiled_b.policy) return fail("policy B does not compile");
    for (const Flow& f : flows) {
      const int32_t dev = compiled_b.policy->device_by_ip(IpAddress::v4(f.src));
      if (dev < 0 ||
          compiled_b.policy->classify(static_cast<uint32_t>(dev), Direction::out, Protocol::udp,
                                      IpAddress::v4(f.dst), f.dport) == cordon::engine::kNoRule) {
        return fail("a flow is not allowed by policy B");
      }
    }
    std::ofstream f(out + "/policy-b.json");
    f << json_b << "\n";
    if (!f) return fail("cannot write " + out + "/policy-b.json");
  }
  // The swap trace: the allowed frames, and after every 100th one frame from a source
  // address no device owns (dropped under both policies).
  uint32_t spoofed = 0;
  {
    PcapWriter swap(out + "/flows-swap.pcap");
    for (size_t n = 0; n < flows.size(); ++n) {
      const Flow& f = flows[n];
      swap.write(make_frame(f, doc.devices[f.device].mac, 60, static_cast<uint16_t>(n)));
      if (n % 100 == 99) {
        Flow bad = f;
        bad.src = 0x0AFE0000u | static_cast<uint32_t>(n & 0xffff);  // 10.254.x.y
        swap.write(make_frame(bad, doc.devices[f.device].mac, 60, static_cast<uint16_t>(n)));
        ++spoofed;
      }
    }
    if (!swap.ok()) return fail("cannot write flows-swap.pcap");
  }

  // The TCP pcaps (header comment): as many flows, of the TCP `out` rules.
  const std::vector<std::pair<uint32_t, uint32_t>> tcp_candidates = out_rules(doc, Protocol::tcp);
  if (tcp_candidates.empty()) return fail("the workload has no TCP out rule");
  std::vector<Flow> tcp_flows;
  {
    Rng tcp_rng(cordon::bench::kDefaultSeed ^ 0x7C90'0000ULL ^ flow_count);
    FlowSet tcp_seen;
    if (!generate_flows(w, policy, tcp_candidates, Protocol::tcp, flow_count, tcp_rng, tcp_seen,
                        tcp_flows, error)) {
      return fail(error);
    }
    PcapWriter syn(out + "/tcp-syn.pcap");
    PcapWriter synack(out + "/tcp-synack.pcap");
    PcapWriter ack(out + "/tcp-ack-64.pcap");
    for (size_t n = 0; n < tcp_flows.size(); ++n) {
      const Flow& f = tcp_flows[n];
      const auto& mac = doc.devices[f.device].mac;
      const auto id = static_cast<uint16_t>(n);
      const auto initiator_seq = static_cast<uint32_t>(tcp_rng.next());
      const auto responder_seq = static_cast<uint32_t>(tcp_rng.next());
      syn.write(make_tcp_frame(f, mac, id, false, kTcpSyn, initiator_seq, 0));
      synack.write(
          make_tcp_frame(f, mac, id, true, kTcpSyn | kTcpAck, responder_seq, initiator_seq + 1));
      ack.write(make_tcp_frame(f, mac, id, false, kTcpAck, initiator_seq + 1, responder_seq + 1));
    }
    if (!syn.ok() || !synack.ok() || !ack.ok()) return fail("cannot write the TCP pcaps");
  }
  std::set<uint32_t> tcp_devices;
  for (const Flow& f : tcp_flows) tcp_devices.insert(f.device);

  std::set<uint32_t> distinct_rules;
  for (const Flow& f : flows) distinct_rules.insert(f.global_rule);
  const auto devices_with_flows = static_cast<uint32_t>(std::count_if(
      flows_per_device.begin(), flows_per_device.end(), [](uint32_t c) { return c > 0; }));
  std::ofstream m(out + "/meta.json");
  m << "{\"rules\":" << w.rule_count << ",\"devices\":" << w.device_count
    << ",\"udp_out_rules\":" << candidates.size() << ",\"flows\":" << flows.size()
    << ",\"devices_with_flows\":" << devices_with_flows
    << ",\"rules_hit_by_flows\":" << distinct_rules.size() << ",\"frames\":" << flows.size()
    << ",\"seed\":" << cordon::bench::kDefaultSeed
    << ",\"pcap_64\":{\"frame_bytes\":60,\"wire_bytes\":64,\"bytes\":" << p64.bytes() << "}"
    << ",\"pcap_imix\":{\"frames_60\":" << imix_counts[0] << ",\"frames_590\":" << imix_counts[1]
    << ",\"frames_1514\":" << imix_counts[2] << ",\"bytes\":" << pimix.bytes()
    << ",\"mean_wire_bytes\":" << double(pimix.bytes() + 4 * flows.size()) / double(flows.size())
    << "}"
    << ",\"swap_pcap\":{\"frames\":" << flows.size() + spoofed << ",\"spoofed\":" << spoofed
    << ",\"spoofed_every\":101,\"spoofed_offset\":100}"
    << ",\"tcp\":{\"flows\":" << tcp_flows.size() << ",\"tcp_out_rules\":" << tcp_candidates.size()
    << ",\"devices_with_flows\":" << tcp_devices.size() << ",\"frames\":" << tcp_flows.size() << "}"
    << ",\"all_flows_allowed\":true}\n";
  if (!m) return fail("cannot write meta.json");
  std::cerr << "cordon_bench_pipeline_gen: " << w.rule_count << " rules, " << w.device_count
            << " devices, " << flows.size() << " UDP flows from " << devices_with_flows
            << " devices over " << distinct_rules.size() << " rules -> " << out << "\n";
  return 0;
}
