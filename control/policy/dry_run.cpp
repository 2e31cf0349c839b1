#include "control/policy/dry_run.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <set>
#include <tuple>
#include <utility>

#include "dataplane/engine/compiled_policy.h"
#include "dataplane/engine/decode.h"
#include "dataplane/engine/engine.h"

namespace cordon::control::policy {

namespace {

using engine::CompiledPolicy;
using engine::DecodedPacket;
using engine::DropReason;
using engine::Engine;
using engine::Event;
using engine::EventKind;
using engine::IpAddress;
using engine::L3Kind;
using engine::MacAddress;
using engine::PolicyDocument;
using engine::Side;
using engine::Verdict;

// What one policy did with one packet, with what the engine's event said about it.
struct PacketOutcome {
  Treatment treatment = Treatment::forwarded;
  DropReason reason = DropReason::none;
  bool explained = false;  // an event of the packet gave the reason (rule, detail)
  std::string rule;        // from the event; "" when it named none
  std::string detail;      // from the event
};

// One engine judging the capture with one policy (or none), on one single-threaded
// worker, as tests/packets/run_case.cpp drives it.
class Replay {
 public:
  Replay(const PolicyDocument* document, const DryRunOptions& options, Error& error,
         const std::string& which) {
    engine::EngineConfig config;
    config.workers = 1;
    config.flows_per_worker = options.flows;
    config.inspected_flows_per_worker = options.inspected_flows;
    config.event_ring_size = 64;  // drained after every packet, which raises one or two
    // The dataplane limits events per second of wall time; a replay reads the reason of
    // every packet from the events, so none may be suppressed however dense the capture.
    config.events_per_second = 1u << 30;
    engine_ = std::make_unique<Engine>(config);
    if (document == nullptr) return;  // no policy: the engine drops everything (no-policy)
    engine::CompileResult compiled = engine::compile_policy(*document, 1, 1);
    if (!compiled.errors.empty()) {
      const engine::PolicyError& first = compiled.errors.front();
      error = Error{"invalid", which + " policy does not compile: " + first.message, first.path};
      return;
    }
    engine_->publish(std::move(compiled.policy));
    policy_ = engine_->active();
  }

  ~Replay() { engine_->worker(0).go_idle(); }
  Replay(const Replay&) = delete;
  Replay& operator=(const Replay&) = delete;

  const CompiledPolicy* policy() const { return policy_; }

  PacketOutcome judge(const engine::PacketView& view, uint64_t now_ns) {
    Verdict verdict;
    engine_->worker(0).process({&view, 1}, {&verdict, 1}, now_ns);
    PacketOutcome out;
    out.reason = verdict.reason;
    if (verdict.action != engine::Action::forward) {
      out.treatment = Treatment::dropped;
    } else if (verdict.would_drop) {
      out.treatment = Treatment::reported;
    }
    // The event of this packet that explains the verdict. An alert-only patch reports a
    // would-drop on a packet it forwards: that counts as reported too.
    bool matched = false;
    for (size_t n; (n = engine_->poll_events(events_)) > 0;) {
      for (size_t i = 0; i < n && !matched; ++i) {
        const Event& e = events_[i];
        if (out.treatment == Treatment::forwarded && e.kind == EventKind::would_drop) {
          out.treatment = Treatment::reported;
          out.reason = e.reason;
        }
        const EventKind wanted =
            out.treatment == Treatment::dropped ? EventKind::drop : EventKind::would_drop;
        if (out.treatment != Treatment::forwarded && e.kind == wanted && e.reason == out.reason) {
          out.explained = true;
          out.rule = e.rule;
          out.detail = e.detail;
          matched = true;
        }
      }
    }
    return out;
  }

 private:
  std::unique_ptr<Engine> engine_;
  const CompiledPolicy* policy_ = nullptr;
  std::array<Event, 16> events_;
};

// A connection in both directions, endpoints in a fixed order.
struct ConnKey {
  uint16_t protocol = 0;  // IP protocol; kArp for ARP
  uint16_t vlan = 0;
  IpAddress a;
  uint16_t a_port = 0;
  IpAddress b;
  uint16_t b_port = 0;
  auto operator<=>(const ConnKey&) const = default;
};
constexpr uint16_t kArp = 256;

ConnKey conn_key(uint16_t protocol, uint16_t vlan, const IpAddress& x, uint16_t x_port,
                 const IpAddress& y, uint16_t y_port) {
  if (std::tie(y, y_port) < std::tie(x, x_port)) return {protocol, vlan, y, y_port, x, x_port};
  return {protocol, vlan, x, x_port, y, y_port};
}

// A flow of the report: device, protocol, initiator, responder, responder port.
struct FlowKey {
  std::string device;
  uint16_t protocol = 0;
  IpAddress initiator;
  IpAddress responder;
  uint16_t port = 0;
  auto operator<=>(const FlowKey&) const = default;
};

struct FlowState {
  FlowReport report;
  std::string rule[2];  // the rule each policy (active, candidate) admits it by; "" none
};

std::string protocol_name(uint16_t protocol) {
  switch (protocol) {
    case engine::ip_protocol::tcp:
      return "tcp";
    case engine::ip_protocol::udp:
      return "udp";
    case engine::ip_protocol::icmp:
      return "icmp";
    case engine::ip_protocol::icmpv6:
      return "icmpv6";
    case kArp:
      return "arp";
    default:
      return "ip-" + std::to_string(protocol);
  }
}

// The device of `policy` a frame belongs to, found as the engine finds it: by source MAC
// on the device side, by destination IP (ARP: target IP) on the network side.
int32_t device_of(const CompiledPolicy* policy, const DecodedPacket& d, Side side) {
  if (policy == nullptr) return engine::kNoDevice;
  if (side == Side::device) return policy->device_by_mac(d.src_mac);
  return policy->device_by_ip(d.l3 == L3Kind::arp ? d.arp.target_ip : d.dst_ip);
}

// The rule of `policy` that admits a new connection, as the engine classifies it.
std::string admitting_rule(const CompiledPolicy* policy, int32_t device, uint16_t protocol,
                           bool device_initiated, const IpAddress& peer, uint16_t port) {
  if (policy == nullptr || device == engine::kNoDevice) return "";
  engine::Protocol proto;
  if (protocol == engine::ip_protocol::tcp) {
    proto = engine::Protocol::tcp;
  } else if (protocol == engine::ip_protocol::udp) {
    proto = engine::Protocol::udp;
  } else if (protocol == engine::ip_protocol::icmp || protocol == engine::ip_protocol::icmpv6) {
    proto = engine::Protocol::icmp;
  } else {
    return "";
  }
  const auto index = static_cast<uint32_t>(device);
  const int32_t rule = policy->classify(
      index, device_initiated ? engine::Direction::out : engine::Direction::in, proto, peer, port);
  return rule == engine::kNoRule ? "" : policy->device(index).rules[rule].name;
}

void count(PolicyCounts& counts, Treatment t) {
  if (t == Treatment::dropped) {
    ++counts.dropped;
  } else {
    ++counts.forwarded;
    if (t == Treatment::reported) ++counts.reported;
  }
}

// Records that `strict` treated a packet more strictly than the other policy did.
void record(std::optional<Difference>& difference, const PacketOutcome& strict,
            const std::string& admitting_rule, uint64_t frame) {
  if (!difference) {
    difference.emplace();
    difference->first_frame = frame;
    difference->treatment = strict.treatment;
    difference->reason = strict.reason;
    // The event names the rule when the drop concerns one (inspection findings); a packet
    // without an event (a connection's later segments) falls back to the flow's rule.
    difference->rule = strict.explained ? strict.rule : admitting_rule;
    difference->detail = strict.detail;
  }
  ++difference->packets;
}

class DryRun {
 public:
  DryRun(const PolicyDocument* active, const PolicyDocument& candidate,
         const DryRunOptions& options)
      : active_doc_(active), candidate_doc_(candidate), options_(options) {}

  // `open` returns the capture's reader; `name` is what the report calls the capture.
  template <class Open>
  Result<DryRunReport> run(const std::string& name, Open open) {
    Error error;
    Replay active(active_doc_, options_, error, "active");
    if (!error.code.empty()) return error;
    Replay candidate(&candidate_doc_, options_, error, "candidate");
    if (!error.code.empty()) return error;
    replays_[0] = &active;
    replays_[1] = &candidate;
    for (const PolicyDocument* doc : {active_doc_, &candidate_doc_}) {
      if (doc == nullptr) continue;
      for (const engine::Device& d : doc->devices) device_macs_.insert(d.mac);
    }

    Result<PcapReader> opened = open();
    if (!opened) return opened.error();
    PcapReader& reader = opened.value();
    report_.pcap = name;
    uint64_t now = 0;
    PcapFrame frame;
    for (;;) {
      Result<bool> more = reader.next(frame);
      if (!more) return more.error();
      if (!more.value()) break;
      // The engine's clock must not go back; a capture merged from several may.
      now = std::max(now, frame.time_ns);
      replay(frame, now);
    }
    finish();
    return std::move(report_);
  }

 private:
  void replay(const PcapFrame& frame, uint64_t now) {
    DryRunTotals& totals = report_.totals;
    if (totals.packets == 0) totals.first_time_ns = frame.time_ns;
    totals.last_time_ns = frame.time_ns;
    ++totals.packets;
    totals.bytes += frame.bytes.size();

    DecodedPacket d;
    const DropReason malformed =
        engine::decode(frame.bytes.data(), static_cast<uint32_t>(frame.bytes.size()), d);
    MacAddress source;
    if (frame.bytes.size() >= 12) std::memcpy(source.bytes.data(), frame.bytes.data() + 6, 6);
    const Side side = device_macs_.contains(source) ? Side::device : Side::network;
    const engine::PacketView view{frame.bytes.data(), static_cast<uint32_t>(frame.bytes.size()),
                                  side};
    const PacketOutcome outcome[2] = {replays_[0]->judge(view, now), replays_[1]->judge(view, now)};
    count(totals.active, outcome[0].treatment);
    count(totals.candidate, outcome[1].treatment);
    if (malformed != DropReason::none) {
      ++totals.undecodable_packets;  // dropped in every mode, by any policy
      return;
    }

    FlowState& flow = flow_of(d, side);
    FlowReport& r = flow.report;
    ++r.packets;
    r.bytes += frame.bytes.size();
    count(r.active, outcome[0].treatment);
    count(r.candidate, outcome[1].treatment);
    if (outcome[1].treatment > outcome[0].treatment) {
      record(r.stricter, outcome[1], flow.rule[1], frame.number);
    } else if (outcome[1].treatment < outcome[0].treatment) {
      record(r.looser, outcome[0], flow.rule[0], frame.number);
    }
  }

  // The flow a decoded frame belongs to; creates it (and its connection) on first sight.
  FlowState& flow_of(const DecodedPacket& d, Side side) {
    const bool arp = d.l3 == L3Kind::arp;
    const uint16_t protocol = arp ? kArp : d.protocol;
    const uint16_t vlan = d.vlan_ids[0];
    IpAddress src = arp ? d.arp.sender_ip : d.src_ip;
    IpAddress dst = arp ? d.arp.target_ip : d.dst_ip;
    uint16_t src_port = d.src_port;
    uint16_t dst_port = d.dst_port;
    const bool icmp =
        protocol == engine::ip_protocol::icmp || protocol == engine::ip_protocol::icmpv6;
    if (icmp) src_port = dst_port = d.icmp_echo_id;  // echo identifier (0 for other types)

    if (icmp && d.icmp_is_error) {
      // An ICMP error belongs to the connection of the packet it quotes, when known.
      const engine::QuotedPacket& q = d.quoted;
      const auto it = conns_.find(conn_key(q.protocol, vlan, q.src, q.src_port, q.dst, q.dst_port));
      if (it != conns_.end()) return flows_[it->second];
    }
    const ConnKey conn = conn_key(protocol, vlan, src, src_port, dst, dst_port);
    if (const auto it = conns_.find(conn); it != conns_.end()) return flows_[it->second];

    // The initiator sends a connection's first packet; a capture that starts with the
    // answer (SYN-ACK, echo reply, ARP reply) names its receiver.
    const bool answer = (protocol == engine::ip_protocol::tcp &&
                         (d.tcp_flags & (engine::tcp_flag::syn | engine::tcp_flag::ack)) ==
                             (engine::tcp_flag::syn | engine::tcp_flag::ack)) ||
                        (icmp && d.icmp_is_echo_reply) || (arp && d.arp.operation == 2);
    if (answer) {
      std::swap(src, dst);
      std::swap(src_port, dst_port);
    }
    const bool device_initiated = (side == Side::device) != answer;
    const int32_t device[2] = {device_of(replays_[0]->policy(), d, side),
                               device_of(replays_[1]->policy(), d, side)};
    // Named as in the candidate when it has the device, else as in the active policy.
    std::string name;
    for (const int i : {1, 0}) {
      if (name.empty() && device[i] != engine::kNoDevice) {
        name = replays_[i]->policy()->device(static_cast<uint32_t>(device[i])).name;
      }
    }
    const bool ported =
        protocol == engine::ip_protocol::tcp || protocol == engine::ip_protocol::udp;
    FlowKey key{name, protocol, src, dst, ported ? dst_port : uint16_t{0}};
    auto [it, created] = flow_index_.try_emplace(std::move(key), flows_.size());
    if (created) {
      FlowState state;
      state.report.protocol = protocol_name(protocol);
      state.report.initiator = src;
      state.report.responder = dst;
      state.report.port = it->first.port;
      state.report.device_initiated = !name.empty() && device_initiated;
      const IpAddress& peer = device_initiated ? dst : src;
      // ICMP echo rules have no port; only echo requests open a flow (the engine's rule).
      if (!icmp || d.icmp_is_echo_request || d.icmp_is_echo_reply) {
        for (const int i : {0, 1}) {
          state.rule[i] = admitting_rule(replays_[i]->policy(), device[i], protocol,
                                         device_initiated, peer, dst_port);
        }
      }
      flows_.push_back(std::move(state));
    }
    ++flows_[it->second].report.connections;
    conns_.emplace(conn, it->second);
    return flows_[it->second];
  }

  void finish() {
    std::map<std::string, DeviceReport> devices;
    const auto add = [&](const PolicyDocument* doc, bool is_candidate) {
      if (doc == nullptr) return;
      for (const engine::Device& d : doc->devices) {
        DeviceReport& r = devices[d.name];
        r.name = d.name;
        (is_candidate ? r.candidate_mode : r.active_mode) = d.mode;
      }
    };
    add(active_doc_, false);
    add(&candidate_doc_, true);
    report_.active_installed = active_doc_ != nullptr;
    if (active_doc_ != nullptr) report_.active_unknown_devices = active_doc_->unknown_devices;
    report_.candidate_unknown_devices = candidate_doc_.unknown_devices;

    DryRunTotals& totals = report_.totals;
    // flow_index_ is ordered by device, protocol, initiator, responder and port.
    for (const auto& [key, index] : flow_index_) {
      FlowReport& flow = flows_[index].report;
      DeviceReport& device = key.device.empty() ? report_.unclaimed : devices[key.device];
      device.packets += flow.packets;
      ++device.flows;
      ++totals.flows;
      if (key.device.empty()) totals.unclaimed_packets += flow.packets;
      if (!flow.stricter && !flow.looser) {
        ++device.unchanged_flows;
        ++totals.unchanged_flows;
        continue;
      }
      if (flow.stricter) {
        ++device.newly_blocked_total;
        ++totals.newly_blocked_flows;
        if (device.newly_blocked.size() < options_.max_listed_flows) {
          device.newly_blocked.push_back(flow);
        }
      }
      if (flow.looser) {
        ++device.newly_allowed_total;
        ++totals.newly_allowed_flows;
        if (device.newly_allowed.size() < options_.max_listed_flows) {
          device.newly_allowed.push_back(flow);
        }
      }
    }
    for (auto& [name, device] : devices) report_.devices.push_back(std::move(device));
  }

  const PolicyDocument* active_doc_;
  const PolicyDocument& candidate_doc_;
  const DryRunOptions& options_;
  Replay* replays_[2] = {nullptr, nullptr};  // active, candidate
  std::set<MacAddress> device_macs_;
  std::map<ConnKey, size_t> conns_;       // -> index in flows_
  std::map<FlowKey, size_t> flow_index_;  // -> index in flows_
  std::vector<FlowState> flows_;
  DryRunReport report_;
};

}  // namespace

std::string_view to_string(Treatment treatment) {
  switch (treatment) {
    case Treatment::forwarded:
      return "forwarded";
    case Treatment::reported:
      return "reported";
    case Treatment::dropped:
      return "dropped";
  }
  return "unknown";
}

namespace {

template <class Open>
Result<DryRunReport> dry_run(const engine::PolicyDocument* active,
                             const engine::PolicyDocument& candidate, const std::string& name,
                             const DryRunOptions& options, Open open) {
  try {
    return DryRun(active, candidate, options).run(name, open);
  } catch (const std::bad_alloc&) {
    return Error{"too_large", "dry-run: out of memory replaying pcap " + name, ""};
  } catch (const std::exception& e) {
    // The engine's constructor rejects impossible sizes by exception.
    return Error{"invalid", std::string("dry-run: ") + e.what(), ""};
  }
}

}  // namespace

Result<DryRunReport> dry_run_pcap(const engine::PolicyDocument* active,
                                  const engine::PolicyDocument& candidate,
                                  const std::string& pcap_path, const DryRunOptions& options) {
  return dry_run(active, candidate, pcap_path, options,
                 [&] { return PcapReader::open(pcap_path, options.limits); });
}

Result<DryRunReport> dry_run_pcap_bytes(const engine::PolicyDocument* active,
                                        const engine::PolicyDocument& candidate,
                                        std::string_view pcap, const std::string& name,
                                        const DryRunOptions& options) {
  return dry_run(active, candidate, name, options,
                 [&] { return PcapReader::open_memory(pcap, name, options.limits); });
}

}  // namespace cordon::control::policy
