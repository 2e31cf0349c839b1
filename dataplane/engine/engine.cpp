#include "dataplane/engine/engine.h"

#include "dataplane/engine/patches/catalog.h"

#include <rte_rcu_qsbr.h>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace cordon::engine {

std::string_view to_string(EventKind kind) {
  switch (kind) {
    case EventKind::drop:
      return "drop";
    case EventKind::would_drop:
      return "would-drop";
    case EventKind::flow_observed:
      return "flow-observed";
    case EventKind::app_observed:
      return "app-observed";
  }
  return "unknown";
}

EventRing::EventRing(uint32_t capacity_pow2) {
  const ssize_t size = rte_ring_get_memsize_elem(sizeof(Event), capacity_pow2);
  if (size < 0) throw std::invalid_argument("event ring size must be a power of two");
  ring_ =
      static_cast<rte_ring*>(std::aligned_alloc(64, (static_cast<size_t>(size) + 63) / 64 * 64));
  if (ring_ == nullptr) throw std::bad_alloc();
  // RING_F_EXACT_SZ is not used: capacity_pow2 - 1 events fit, which is plenty.
  if (rte_ring_init(ring_, "cordon-events", capacity_pow2, RING_F_SP_ENQ | RING_F_SC_DEQ) != 0) {
    std::free(ring_);
    throw std::runtime_error("rte_ring_init failed");
  }
}

// ---------------------------------------------------------------------------------------
// Worker

struct Worker::Prepared {
  DecodedPacket d;
  DropReason malformed = DropReason::none;  // what decode() returned
  bool has_key = false;  // an IP packet of a flow (TCP, UDP, ICMP echo): key and hash are set
  FlowKey key;
  uint64_t hash = 0;                       // flow_key_hash(key)
  uint8_t flow_hint = FlowTable::kNoHint;  // from FlowTable::prefetch_flow, for find()
  // From classify_new_flows: the device that owns the packet's device-side address and the
  // rule it matched; kNoDevice when the packet was not classified ahead.
  int32_t classified_device = kNoDevice;
  int32_t classified_rule = kNoRule;
};

struct Worker::Context {
  Context(const PacketView& p, const CompiledPolicy& pol, uint64_t now_ns,
          const Prepared& pre) noexcept
      : packet(p), policy(pol), now(now_ns), d(pre.d), prepared(pre) {
    detail[0] = '\0';
  }
  const PacketView& packet;
  const CompiledPolicy& policy;
  uint64_t now;
  const DecodedPacket& d;
  const Prepared& prepared;
  int32_t device = kNoDevice;
  Direction dir = Direction::out;  // of the connection this packet belongs to
  // What inspection found, for the event (a C string; only detail[0] is set per packet:
  // clearing all of it for every packet was measurable).
  char detail[128];
  int32_t rule = kNoRule;                               // the flow's rule, once it is known
  DropReason finding = DropReason::none;                // why an inspector refused bytes
  Action finding_action = Action::drop_and_reset_both;  // what ends the connection
  // forward() has counted this packet: a would-drop in monitor or learn mode forwards it,
  // and the packet may then go on to a later forward() (one count per packet).
  bool forward_counted = false;
};

namespace {

bool is_link_local_or_unspecified_v6(const IpAddress& a) {
  if (a.family != 6) return false;
  if (a.bytes[0] == 0xfe && (a.bytes[1] & 0xc0) == 0x80) return true;
  for (uint8_t b : a.bytes) {
    if (b != 0) return false;
  }
  return true;
}

// Link-local IPv6 control traffic an IPv6 device needs: neighbour solicitation and
// advertisement (hop limit 255) both ways; multicast listener queries (MLD, hop limit 1)
// both ways, and the device's own listener reports and dones toward the routers. Other
// hosts' reports and dones are addressed to the routers, so none passes toward a device.
// None of them can have been routed. Router solicitations/advertisements and redirects
// are not passed.
bool is_link_local_control(const DecodedPacket& d, Side ingress) {
  if (d.protocol != ip_protocol::icmpv6) return false;
  const uint8_t t = d.icmp_type;
  if (t == 135 || t == 136) return d.hop_limit == 255;
  if (t == 130) return d.hop_limit == 1;
  if (t == 131 || t == 132 || t == 143) return ingress == Side::device && d.hop_limit == 1;
  return false;
}

std::optional<Protocol> policy_protocol(uint8_t ip_proto) {
  switch (ip_proto) {
    case ip_protocol::tcp:
      return Protocol::tcp;
    case ip_protocol::udp:
      return Protocol::udp;
    case ip_protocol::icmp:
    case ip_protocol::icmpv6:
      return Protocol::icmp;
    default:
      return std::nullopt;
  }
}

FlowKey make_key(const IpAddress& device_ip, const IpAddress& peer_ip, uint16_t device_port,
                 uint16_t peer_port, uint8_t protocol, uint16_t vlan) {
  FlowKey k;
  k.device_ip = device_ip.bytes;
  k.peer_ip = peer_ip.bytes;
  // The last five fields as one 8-byte store: the hash and the key compare read them as
  // one word, and five small stores would not forward to that load (a stall per packet).
  const uint64_t tail = uint64_t{device_port} | uint64_t{peer_port} << 16 | uint64_t{vlan} << 32 |
                        uint64_t{protocol} << 48 | uint64_t{device_ip.family} << 56;
  static_assert(offsetof(FlowKey, device_port) == 32 && offsetof(FlowKey, peer_port) == 34 &&
                offsetof(FlowKey, vlan) == 36 && offsetof(FlowKey, protocol) == 38 &&
                offsetof(FlowKey, family) == 39);
  std::memcpy(reinterpret_cast<uint8_t*>(&k) + 32, &tail, sizeof tail);
  return k;
}

// The oriented key of the flow an IP packet belongs to (device end, peer end; ICMP echo:
// the identifier as both ports).
FlowKey flow_key_of(const DecodedPacket& d, bool from_device) {
  const IpAddress& device_ip = from_device ? d.src_ip : d.dst_ip;
  const IpAddress& peer_ip = from_device ? d.dst_ip : d.src_ip;
  uint16_t device_port = from_device ? d.src_port : d.dst_port;
  uint16_t peer_port = from_device ? d.dst_port : d.src_port;
  if (d.protocol == ip_protocol::icmp || d.protocol == ip_protocol::icmpv6) {
    device_port = peer_port = d.icmp_echo_id;
  }
  return make_key(device_ip, peer_ip, device_port, peer_port, d.protocol, d.vlan_ids[0]);
}

// Data in a SYN or SYN-ACK (TCP Fast Open) would reach the receiver before the stream it
// belongs to is set up for inspection, so an inspected connection refuses it; a Fast Open
// client then sends its data after the handshake.
bool carries_handshake_data(const DecodedPacket& d) noexcept {
  return (d.tcp_flags & tcp_flag::syn) != 0 && d.payload_length > 0;
}

// A packet that may open a flow: a SYN without ACK, UDP, an ICMP echo request. judge_new_flow
// refuses the others; process() classifies the likely new flows among these ahead.
bool may_open_flow(const DecodedPacket& d) noexcept {
  if (d.protocol == ip_protocol::tcp) {
    return (d.tcp_flags & (tcp_flag::syn | tcp_flag::ack)) == tcp_flag::syn;
  }
  return d.protocol == ip_protocol::udp || d.icmp_is_echo_request;
}

// TCP sequence numbers (RFC 9293 §3.4): arithmetic modulo 2^32. True when `a` lies in
// [low, high] going forward round the circle from `low`.
bool sequence_within(uint32_t a, uint32_t low, uint32_t high) noexcept {
  return a - low <= high - low;
}
// True when `a` comes after `b` (RFC 1982).
bool sequence_after(uint32_t a, uint32_t b) noexcept {
  return static_cast<int32_t>(a - b) > 0;
}
// How far a segment's sequence number may lie beyond what a side is known to have sent, or
// before what the other side has acknowledged: the larger of the receiver's largest
// advertised window (scaled) and the largest window a receiver advertises without window
// scaling. A sender may have that much in flight, so segments lost before the appliance
// (the later ones arrive first), or retransmitted after their acknowledgement, stay inside
// it; a blind guess at an unscaled connection is 1 in 2^16.
constexpr uint32_t kSequenceSlack = 65535;
uint32_t sequence_slack(const TcpSequence& sequence, unsigned receiver) noexcept {
  return std::max(kSequenceSlack, sequence.max_window[receiver]);
}
// The window a segment advertises. A SYN's is never scaled; the others' are by the shift
// their sender's SYN offered, once both SYNs did.
uint32_t advertised_window(const TcpSequence& sequence, unsigned sender,
                           const DecodedPacket& d) noexcept {
  const uint8_t shift = sequence.window_shift[sender];
  if ((d.tcp_flags & tcp_flag::syn) != 0 || shift == TcpSequence::kNoWindowScale) {
    return d.tcp_window;
  }
  return uint32_t{d.tcp_window} << shift;
}
// A side's SYN starts its numbers: the SYN takes one, and data it carries (TCP Fast Open,
// on connections that are not inspected) counts as sent, so its answer may acknowledge it.
// It also offers the side's window scale, or none.
void start_sequence(TcpSequence& sequence, Side side, const DecodedPacket& d) noexcept {
  const auto s = static_cast<unsigned>(side);
  sequence.acked[s] = d.tcp_seq + 1;
  sequence.end[s] = d.tcp_seq + 1 + d.payload_length;
  sequence.max_window[s] = d.tcp_window;
  sequence.window_shift[s] =
      d.tcp_window_scale_offered ? d.tcp_window_shift : TcpSequence::kNoWindowScale;
}
// The SYN-ACK settles window scaling: both sides scale, or neither.
void settle_window_scale(TcpSequence& sequence) noexcept {
  if (sequence.window_shift[0] == TcpSequence::kNoWindowScale ||
      sequence.window_shift[1] == TcpSequence::kNoWindowScale) {
    sequence.window_shift[0] = sequence.window_shift[1] = 0;
  }
}

}  // namespace

Worker::Worker(Engine& engine, uint32_t index)
    : engine_(engine),
      index_(index),
      flows_(
          engine.config_.flows_per_worker,
          [](void* worker, Flow& flow) noexcept {
            static_cast<Worker*>(worker)->release_inspection(flow);
          },
          this),
      prepared_(std::make_unique<Prepared[]>(kStage)),
      inspections_(engine.config_.inspected_flows_per_worker),
      scan_buffer_(std::make_unique<uint8_t[]>(SignatureSet::kOverlap + 65536)),
      events_(engine.config_.event_ring_size),
      event_tokens_(engine.config_.events_per_second) {}

void Worker::go_idle() noexcept {
  if (!online_) return;
  rte_rcu_qsbr_thread_offline(engine_.qsbr_, index_);
  online_ = false;
}

void Worker::wake() noexcept {
  if (online_) return;
  rte_rcu_qsbr_thread_online(engine_.qsbr_, index_);
  online_ = true;
}

void Worker::process(std::span<const PacketView> packets, std::span<Verdict> verdicts,
                     uint64_t now_ns) noexcept {
  wake();
  // One policy for the whole batch: loaded once, held until the quiescent report below.
  const CompiledPolicy* policy = engine_.active_.load(std::memory_order_acquire);
  for (size_t base = 0; base < packets.size(); base += kStage) {
    const size_t n = std::min(kStage, packets.size() - base);
    // Stage 1: decode, hash the flow keys, prefetch their buckets.
    for (size_t i = 0; i < n; ++i) {
      Prepared& p = prepared_[i];
      prepare(packets[base + i], p);
      if (p.has_key) flows_.prefetch_bucket(p.hash);
    }
    // Stage 2: prefetch the Flow entries the buckets point to and keep where in the bucket
    // each was found, for find() to check first. A packet that would open a flow and whose
    // key is absent from the table is queued for stage 3. (Not every packet without a
    // candidate in its home bucket: a few established flows overflowed to a later one.)
    size_t new_flows = 0;
    for (size_t i = 0; i < n; ++i) {
      Prepared& p = prepared_[i];
      p.flow_hint = p.has_key ? flows_.prefetch_flow(p.hash) : FlowTable::kNoHint;
      if (p.flow_hint == FlowTable::kAbsent && may_open_flow(p.d)) {
        add_new_flow_query(packets[base + i], p, i, new_flows++);
      }
    }
    // Stage 3: classify the likely new flows together.
    if (new_flows > 0 && policy != nullptr) classify_new_flows(*policy, new_flows);
    // Stage 4: judge in order. The worker's packet and forward counts are added once per
    // stage (drops, rare, per packet).
    uint64_t forwarded = 0;
    for (size_t i = 0; i < n; ++i) {
      const Verdict v = judge(packets[base + i], prepared_[i], policy, now_ns);
      if (v.action == Action::forward) {
        ++forwarded;
      } else {
        bump(counters_.dropped[static_cast<size_t>(v.reason)]);
      }
      verdicts[base + i] = v;
    }
    bump(counters_.packets, n);
    bump(counters_.forwarded, forwarded);
  }
  bump(counters_.flows_expired, flows_.expire(now_ns, 32));
  // Copied once per batch: the table keeps the running count, the worker only publishes it.
  counters_.flows_evicted.store(flows_.evictions(), std::memory_order_relaxed);
  counters_.flows_active.store(flows_.size(), std::memory_order_relaxed);
  rte_rcu_qsbr_quiescent(engine_.qsbr_, index_);
}

void Worker::add_new_flow_query(const PacketView& packet, const Prepared& p, size_t index,
                                size_t slot) noexcept {
  // As judge_ip and judge_new_flow ask: the device's address and the peer's, and the
  // destination port, which is the peer's for `out` and the device's for `in`.
  const bool from_device = packet.ingress == Side::device;
  CompiledPolicy::ClassifyQuery& q = new_flow_queries_[slot];
  q.device = from_device ? p.d.src_ip : p.d.dst_ip;
  q.peer = from_device ? p.d.dst_ip : p.d.src_ip;
  q.dport = p.d.dst_port;
  q.dir = from_device ? Direction::out : Direction::in;
  q.proto = *policy_protocol(p.d.protocol);
  new_flow_packets_[slot] = static_cast<uint8_t>(index);
}

void Worker::classify_new_flows(const CompiledPolicy& policy, size_t count) noexcept {
  policy.classify_burst({new_flow_queries_.data(), count}, {new_flow_results_.data(), count});
  for (size_t k = 0; k < count; ++k) {
    Prepared& p = prepared_[new_flow_packets_[k]];
    p.classified_device = new_flow_results_[k].device;
    p.classified_rule = new_flow_results_[k].rule;
  }
}

// The device a packet belongs to, when no flow of the active policy names it (judge_ip):
// by source MAC for every frame from the device side (malformed ones too: their drop is
// counted for the device), by destination address (ARP: target address) for well-formed IP
// and ARP frames from the network side.
int32_t Worker::lookup_device(const PacketView& packet, const Prepared& p,
                              const CompiledPolicy& policy) noexcept {
  if (packet.ingress == Side::device) return policy.device_by_mac(p.d.src_mac);
  if (p.malformed != DropReason::none) return kNoDevice;
  if (p.d.l3 == L3Kind::arp) return policy.device_by_ip(p.d.arp.target_ip);
  if (p.d.l3 == L3Kind::ipv4 || p.d.l3 == L3Kind::ipv6) return policy.device_by_ip(p.d.dst_ip);
  return kNoDevice;
}

void Worker::prepare(const PacketView& packet, Prepared& out) noexcept {
  out.malformed = decode(packet.data, packet.length, out.d);
  out.classified_device = kNoDevice;
  const DecodedPacket& d = out.d;
  out.has_key = false;
  if (out.malformed != DropReason::none || (d.l3 != L3Kind::ipv4 && d.l3 != L3Kind::ipv6)) return;
  const bool icmp = d.protocol == ip_protocol::icmp || d.protocol == ip_protocol::icmpv6;
  if (icmp ? !(d.icmp_is_echo_request || d.icmp_is_echo_reply)
           : d.protocol != ip_protocol::tcp && d.protocol != ip_protocol::udp) {
    return;
  }
  out.key = flow_key_of(d, packet.ingress == Side::device);
  out.hash = flow_key_hash(out.key);
  out.has_key = true;
}

Verdict Worker::judge(const PacketView& packet, const Prepared& prepared,
                      const CompiledPolicy* policy, uint64_t now_ns) noexcept {
  if (policy == nullptr) return Verdict{Action::drop, DropReason::no_policy, false};
  Context c(packet, *policy, now_ns, prepared);
  // Malformed frames are dropped in every mode: monitor and learn forward what the
  // policy would refuse, never what the engine could not inspect.
  const DropReason malformed = prepared.malformed;
  if (malformed != DropReason::none) {
    if (packet.ingress == Side::device) c.device = lookup_device(packet, prepared, *policy);
    if (c.device != kNoDevice) {
      bump(policy->counters(index_, c.device).dropped[static_cast<size_t>(malformed)]);
      emit(c, EventKind::drop, malformed, kNoRule);
    }
    return Verdict{Action::drop, malformed, false};
  }
  if (c.d.l3 == L3Kind::arp) return judge_arp(c);
  return judge_ip(c);
}

Verdict Worker::judge_arp(Context& c) noexcept {
  const ArpHeader& arp = c.d.arp;
  if (c.packet.ingress == Side::device) {
    c.device = lookup_device(c.packet, c.prepared, c.policy);  // by source MAC
    if (c.device == kNoDevice) return unknown_device(c);
    // A device may announce only its own addresses (0.0.0.0 is an address probe).
    const bool probe = arp.sender_ip == IpAddress::v4(0);
    if (arp.sender_mac != c.d.src_mac ||
        !(probe || c.policy.owns(static_cast<uint32_t>(c.device), arp.sender_ip))) {
      return deny(c, DropReason::spoofed_arp);
    }
    return forward(c);
  }
  // From the network only ARP about a device's address reaches the device segment.
  c.device = lookup_device(c.packet, c.prepared, c.policy);  // by ARP target address
  if (c.device == kNoDevice) return unknown_device(c);
  return forward(c);
}

Verdict Worker::judge_ip(Context& c) noexcept {
  const DecodedPacket& d = c.d;
  const bool from_device = c.packet.ingress == Side::device;
  // The flow first. One admitted under the active policy names its device, which owns the
  // key's device address (one address, one owner): a packet to that address is the
  // device's, and one from it is, when it comes from the device's MAC, which is all
  // anti-spoofing asks. So the packets of known flows need no device lookup; every other
  // packet is looked up and checked below.
  Flow* flow = nullptr;
  if (c.prepared.has_key) {
    flow = flows_.find(c.prepared.key, c.prepared.hash, c.prepared.flow_hint, c.now);
  }
  if (flow != nullptr && flow->policy_epoch == static_cast<uint32_t>(c.policy.epoch()) &&
      (!from_device || c.policy.device_has_mac(flow->device(), d.src_mac))) {
    c.device = static_cast<int32_t>(flow->device());
  } else {
    c.device = lookup_device(c.packet, c.prepared, c.policy);
    if (from_device) {
      if (c.device == kNoDevice) return unknown_device(c);
      if (!c.policy.owns(static_cast<uint32_t>(c.device), d.src_ip)) {
        if (is_link_local_control(d, Side::device) && is_link_local_or_unspecified_v6(d.src_ip)) {
          return forward(c);
        }
        return deny(c, DropReason::spoofed_source);
      }
    } else if (c.device == kNoDevice) {
      if (is_link_local_control(d, Side::network) && d.dst_ip.bytes[0] == 0xff) {
        return forward(c);
      }
      return unknown_device(c);
    }
    // The packets without a flow key (prepare()): ICMP other than echo, other protocols.
    if (!c.prepared.has_key) {
      if (d.protocol != ip_protocol::icmp && d.protocol != ip_protocol::icmpv6) {
        return deny(c, DropReason::unsupported_ip_protocol);
      }
      if (d.icmp_is_error) return judge_icmp_error(c);
      if (is_link_local_control(d, c.packet.ingress)) return forward(c);
      return deny(c, DropReason::icmp_type_not_allowed);
    }
  }

  // prepare() made the key of every packet that gets here (TCP, UDP, ICMP echo).
  const FlowKey& key = c.prepared.key;
  const uint16_t device_port = key.device_port;
  const uint16_t peer_port = key.peer_port;
  const Protocol proto = *policy_protocol(d.protocol);
  if (flow == nullptr) {
    c.dir = from_device ? Direction::out : Direction::in;
    return judge_new_flow(c, key, c.dir == Direction::out ? peer_port : device_port);
  }
  c.dir = flow->dir;
  const bool vendor_flow = flow->vendor_session;  // revalidate() reclassifies the flow
  if (!revalidate(c, *flow)) {
    if (c.policy.device(c.device).mode == DeviceMode::enforce) {
      flows_.erase(flow);
      if (vendor_flow) return cut_vendor_flow(c);
      return deny(c, DropReason::policy_revoked);
    }
    deny(c, DropReason::policy_revoked);  // records the would-drop; the flow goes on
  }

  c.rule = flow->rule();
  const bool from_initiator = from_device == (flow->dir == Direction::out);
  if (proto == Protocol::tcp) {
    if (flow->tcp == TcpState::closed && (d.tcp_flags & tcp_flag::syn) != 0 &&
        (d.tcp_flags & tcp_flag::ack) == 0 && from_initiator) {
      // A new connection reusing the ports of a closed one: judged afresh.
      flows_.erase(flow);
      return judge_new_flow(c, key, c.dir == Direction::out ? peer_port : device_port);
    }
    if (flow->blocked) return deny(c, DropReason::flow_blocked, /*report=*/false);
    // In monitor and learn mode a would-drop is reported and the segment goes on through
    // the state machine (its flags still count); its verdict names the first reason.
    Verdict reported{Action::forward, DropReason::none, false};
    if (flow->inspection != kNoInspection && carries_handshake_data(d)) {
      reported = deny(c, DropReason::tcp_handshake_data);
      if (reported.action != Action::forward) return reported;
    }
    if (flow->inspection != kNoInspection && (d.tcp_flags & tcp_flag::urg) != 0) {
      // A receiver may take the byte an urgent pointer marks out of the stream (sockets
      // without SO_OOBINLINE): the inspectors would then judge bytes the application never
      // reads as one stream ("/.%2" "X" "e/"), an evasion. Nothing inspected uses urgent
      // data, so the connection is ended (monitor: no longer inspected).
      const Verdict ended = inspection_violation(c, *flow, DropReason::tcp_urgent_data);
      if (ended.action != Action::forward) return ended;
      if (!reported.would_drop) reported = ended;
    }
    const Verdict v = track_tcp(c, *flow, from_initiator);
    if (v.action != Action::forward) return v;
    if (!reported.would_drop) reported = v;
    if (flow->inspection != kNoInspection && d.payload_length > 0) {
      const Verdict inspected = inspect(c, *flow, from_initiator);
      if (inspected.action != Action::forward) return inspected;
      if (!reported.would_drop) reported = inspected;
    }
    if (reported.would_drop) return reported;
  } else {
    // UDP/ICMP echo: the initiator sends requests, the responder replies.
    if (proto == Protocol::icmp && d.icmp_is_echo_request != from_initiator) {
      return deny(c, DropReason::icmp_type_not_allowed);
    }
    if (!from_initiator && !flow->replied) flow->replied = true;  // no store: see FlowTable::touch
    const FlowTimeouts& t = engine_.config_.timeouts;
    const uint64_t timeout = proto == Protocol::icmp ? t.icmp_ns
                             : flow->replied         ? t.udp_replied_ns
                                                     : t.udp_unreplied_ns;
    flows_.touch(
        flow,
        flow->replied && proto == Protocol::udp ? FlowClass::established : FlowClass::embryonic,
        c.now + timeout);
  }
  return forward(c);
}

// True when the active policy allows `flow`. Inline for the packets of flows admitted
// under the active policy (nearly all); reclassify() re-checks the others.
inline bool Worker::revalidate(Context& c, Flow& flow) noexcept {
  if (flow.policy_epoch != static_cast<uint32_t>(c.policy.epoch())) [[unlikely]] {
    return reclassify(c, flow);
  }
  return flow.rule() != kNoRule || !flow.enforced;
}

// Re-checks a flow admitted under an older policy. True when the active policy still
// allows it (the flow then belongs to the active epoch).
bool Worker::reclassify(Context& c, Flow& flow) noexcept {
  const auto epoch = static_cast<uint32_t>(c.policy.epoch());
  const std::optional<Protocol> proto = policy_protocol(flow.key.protocol);
  IpAddress peer;
  peer.family = flow.key.family;
  peer.bytes = flow.key.peer_ip;
  const uint16_t dport = flow.dir == Direction::out ? flow.key.peer_port : flow.key.device_port;
  const int32_t rule =
      c.policy.classify(static_cast<uint32_t>(c.device), flow.dir, *proto, peer, dport);
  flow.set_rule(rule);
  flow.set_device(static_cast<uint32_t>(c.device));
  flow.policy_epoch = epoch;
  flow.enforced = c.policy.device(c.device).mode == DeviceMode::enforce;
  // Session rules move when an earlier session ends: the flag follows the new rule.
  flow.vendor_session = rule != kNoRule && c.policy.device(c.device).rules[rule].vendor_session;
  if (*proto == Protocol::tcp) {
    const CompiledDevice& dev = c.policy.device(c.device);
    const InspectionPlan plan =
        c.policy.inspection().plan(static_cast<uint32_t>(c.device),
                                   rule == kNoRule ? nullptr : &dev.rules[rule], flow.dir, dport);
    if (flow.inspection != kNoInspection) {
      // Inspectors already running keep their state; the new policy decides which apply.
      InspectionSlot& slot = inspections_[flow.inspection];
      if ((plan.inspectors & ~slot.plan.inspectors) != 0) return !flow.enforced;
      slot.plan = plan;
    } else if (plan.inspectors != 0) {
      // Its bytes so far were never inspected: it cannot become an inspected flow midway.
      return !flow.enforced;
    }
  }
  return flow.rule() != kNoRule || !flow.enforced;
}

Verdict Worker::judge_new_flow(Context& c, const FlowKey& key, uint16_t dport) noexcept {
  const DecodedPacket& d = c.d;
  const Protocol proto = *policy_protocol(d.protocol);
  // Without a flow, TCP other than a SYN and ICMP other than an echo request.
  if (!may_open_flow(d)) {
    return deny(
        c, proto == Protocol::tcp ? DropReason::tcp_no_flow : DropReason::icmp_type_not_allowed);
  }
  const CompiledDevice& dev = c.policy.device(c.device);
  const IpAddress& peer = c.packet.ingress == Side::device ? d.dst_ip : d.src_ip;
  const int32_t rule =
      c.prepared.classified_device == c.device  // never kNoDevice here
          ? c.prepared.classified_rule
          : c.policy.classify(static_cast<uint32_t>(c.device), c.dir, proto, peer, dport);
  if (rule == kNoRule && dev.mode == DeviceMode::enforce) {
    return deny(c, DropReason::no_matching_rule);
  }

  Flow* flow = flows_.insert(key);
  if (flow == nullptr) return deny(c, DropReason::flow_table_full);
  flow->dir = c.dir;
  flow->set_rule(rule);
  flow->set_device(static_cast<uint32_t>(c.device));
  flow->policy_epoch = static_cast<uint32_t>(c.policy.epoch());
  flow->enforced = dev.mode == DeviceMode::enforce;
  flow->vendor_session = rule != kNoRule && dev.rules[rule].vendor_session;
  const FlowTimeouts& t = engine_.config_.timeouts;
  uint64_t timeout = t.icmp_ns;
  if (proto == Protocol::tcp) {
    flow->tcp = TcpState::syn_sent;
    timeout = t.tcp_handshake_ns;
    TcpSequence& sequence = flows_.sequence(flow);
    sequence = TcpSequence{};
    start_sequence(sequence, c.packet.ingress, d);
  } else if (proto == Protocol::udp) {
    timeout = t.udp_unreplied_ns;
  }
  flows_.touch(flow, FlowClass::embryonic, c.now + timeout);
  if (proto == Protocol::tcp && !start_inspection(c, *flow)) {
    flows_.erase(flow);
    return deny(c, DropReason::inspection_table_full);
  }
  // Monitor and learn mode: a would-drop of the first segment is reported, the flow stays.
  Verdict reported{Action::forward, DropReason::none, false};
  if (flow->inspection != kNoInspection && carries_handshake_data(d)) {
    // Not admitted: the client's retransmission without data opens it (RFC 7413 §4.2.2).
    reported = deny(c, DropReason::tcp_handshake_data);
    if (reported.action != Action::forward) {
      flows_.erase(flow);
      return reported;
    }
  }

  DeviceCounters& counters = c.policy.counters(index_, static_cast<uint32_t>(c.device));
  bump(counters.new_flows);
  if (dev.mode == DeviceMode::learn) {
    emit(c, EventKind::flow_observed,
         rule == kNoRule ? DropReason::no_matching_rule : DropReason::none, rule);
    if (rule == kNoRule)
      bump(counters.would_drop[static_cast<size_t>(DropReason::no_matching_rule)]);
  } else if (rule == kNoRule) {
    // Monitor mode: recorded once per flow; its later packets pass without new events.
    bump(counters.would_drop[static_cast<size_t>(DropReason::no_matching_rule)]);
    emit(c, EventKind::would_drop, DropReason::no_matching_rule, kNoRule);
  } else if (engine_.config_.record_flows) {
    emit(c, EventKind::flow_observed, DropReason::none, rule);
  }
  if (rule == kNoRule) return Verdict{forward(c).action, DropReason::no_matching_rule, true};
  if (reported.would_drop) return reported;
  return forward(c);
}

// TCP state machine for an existing flow. The states follow flags and which end sent
// them; sequence numbers decide only whether a segment may change them. A reset or FIN
// counts when it lies in the window the flow's TcpSequence describes, and the handshake's
// answer must acknowledge the SYN: the hospital LAN is not trusted, and a host on it that
// forged its peer's address could otherwise end (or, with FINs, shorten the life of) any
// connection whose ports it guessed, where the device's own stack would have ignored
// the segment. Data segments are not refused by sequence number; those implausible for
// the window do not move it.
Verdict Worker::track_tcp(Context& c, Flow& flow, bool from_initiator) noexcept {
  const DecodedPacket& d = c.d;
  const uint8_t flags = d.tcp_flags;
  const bool syn = (flags & tcp_flag::syn) != 0;
  const bool ack = (flags & tcp_flag::ack) != 0;
  const bool rst = (flags & tcp_flag::rst) != 0;
  const bool fin = (flags & tcp_flag::fin) != 0;
  const auto sender = static_cast<unsigned>(c.packet.ingress);
  const unsigned receiver = sender ^ 1u;
  const uint8_t side_bit = static_cast<uint8_t>(1u << sender);
  TcpSequence& sequence = flows_.sequence(&flow);
  // Where this side's segments may plausibly start: from the slack before what the other
  // side acknowledged to the slack past what this side sent.
  const uint32_t slack = sequence_slack(sequence, receiver);
  const bool plausible =
      sequence_within(d.tcp_seq, sequence.acked[sender] - slack, sequence.end[sender] + slack);
  // An answer to the SYN acknowledges it, and perhaps its data (TCP Fast Open).
  const bool acknowledges_syn =
      ack && sequence_within(d.tcp_ack, sequence.acked[receiver], sequence.end[receiver]);
  bool valid = true;

  if (rst) {
    // The answer to a SYN (connection refused) acknowledges it (RFC 9293 §3.10.7.3); any
    // other reset starts at or after what the receiver has acknowledged.
    const bool in_window =
        flow.tcp == TcpState::syn_sent && !from_initiator
            ? acknowledges_syn
            : sequence_within(d.tcp_seq, sequence.acked[sender], sequence.end[sender] + slack);
    if (!in_window) return deny(c, DropReason::tcp_out_of_window);
    flow.tcp = TcpState::closed;
  } else {
    if (fin && !plausible) return deny(c, DropReason::tcp_out_of_window);
    switch (flow.tcp) {
      case TcpState::syn_sent:
        if (from_initiator) {
          valid = syn && !ack;  // retransmitted SYN
          if (valid) start_sequence(sequence, c.packet.ingress, d);
        } else if (syn && ack) {
          if (!acknowledges_syn) return deny(c, DropReason::tcp_out_of_window);
          flow.tcp = TcpState::syn_received;
          start_sequence(sequence, c.packet.ingress, d);
          settle_window_scale(sequence);
          if (flow.inspection != kNoInspection) {
            inspections_[flow.inspection].stream[1].start(d.tcp_seq + 1);
          }
        } else {
          valid = false;
        }
        break;
      case TcpState::syn_received:
        if (from_initiator) {
          if (syn && !ack) break;  // retransmitted SYN
          valid = ack && !syn;
          if (valid) {
            flow.tcp = TcpState::established;
            if (flow.inspection != kNoInspection) inspections_.established(flow.inspection);
          }
        } else {
          if (syn && !acknowledges_syn) return deny(c, DropReason::tcp_out_of_window);
          valid = ack;  // retransmitted SYN-ACK
        }
        break;
      case TcpState::established:
      case TcpState::closing:
        valid = !syn;
        break;
      case TcpState::closed:
        // Late segments of a finished connection: acknowledgements only, no data.
        valid = !syn && c.d.payload_length == 0;
        break;
      case TcpState::none:
        valid = false;
        break;
    }
    if (valid && fin && (flow.tcp == TcpState::established || flow.tcp == TcpState::closing)) {
      flow.fin_seen = (flow.fin_seen | side_bit) & 3u;
      flow.tcp = TcpState::closing;
    } else if (valid && flow.tcp == TcpState::closing && flow.fin_seen == 3 && ack && !fin) {
      flow.tcp = TcpState::closed;  // the last ACK of both FINs
    }
  }
  if (!valid) return deny(c, DropReason::tcp_invalid_state);
  if (!rst) {
    // What this side has sent and the window it offers (a plausible segment only: a forged
    // one far ahead would widen the window), and what it acknowledges of the other side
    // (never past what that side sent).
    const uint32_t segment_end = d.tcp_seq + d.payload_length + (syn ? 1u : 0u) + (fin ? 1u : 0u);
    if (plausible) {
      if (sequence_after(segment_end, sequence.end[sender])) sequence.end[sender] = segment_end;
      sequence.max_window[sender] =
          std::max(sequence.max_window[sender], advertised_window(sequence, sender, d));
    }
    if (ack && sequence_after(d.tcp_ack, sequence.acked[receiver]) &&
        !sequence_after(d.tcp_ack, sequence.end[receiver])) {
      sequence.acked[receiver] = d.tcp_ack;
    }
  }

  const FlowTimeouts& t = engine_.config_.timeouts;
  switch (flow.tcp) {
    case TcpState::established:
      flows_.touch(&flow, FlowClass::established, c.now + t.tcp_established_ns);
      break;
    case TcpState::closing:
      flows_.touch(&flow, FlowClass::closing, c.now + t.tcp_closing_ns);
      break;
    case TcpState::closed:
      flows_.touch(&flow, FlowClass::closing, c.now + t.tcp_closed_ns);
      break;
    default:
      flows_.touch(&flow, FlowClass::embryonic, c.now + t.tcp_handshake_ns);
      break;
  }
  if (!from_initiator && !flow.replied) flow.replied = true;  // no store: see FlowTable::touch
  return Verdict{Action::forward, DropReason::none, false};
}

Verdict Worker::judge_icmp_error(Context& c) noexcept {
  const QuotedPacket& q = c.d.quoted;
  const bool from_device = c.packet.ingress == Side::device;
  // The quoted packet travelled the other way: from the network, it is one the device sent.
  const IpAddress& device_ip = from_device ? q.dst : q.src;
  const IpAddress& peer_ip = from_device ? q.src : q.dst;
  const uint16_t device_port = from_device ? q.dst_port : q.src_port;
  const uint16_t peer_port = from_device ? q.src_port : q.dst_port;
  if (!policy_protocol(q.protocol) || !c.policy.owns(static_cast<uint32_t>(c.device), device_ip)) {
    return deny(c, DropReason::icmp_error_unrelated);
  }
  Flow* flow = flows_.find(
      make_key(device_ip, peer_ip, device_port, peer_port, q.protocol, c.d.vlan_ids[0]), c.now);
  if (flow == nullptr) return deny(c, DropReason::icmp_error_unrelated);
  c.dir = flow->dir;
  if (!revalidate(c, *flow)) return deny(c, DropReason::icmp_error_unrelated);
  if (q.protocol == ip_protocol::tcp) {
    // An error about a TCP segment quotes one still in flight, from what its receiver
    // acknowledged to what its sender sent (RFC 5927 §4.1; one below, for the SYN). A
    // forged error, e.g. a "host unreachable" that an old stack takes as the end of its
    // connection, must guess that window.
    const auto quoted_sender = static_cast<unsigned>(from_device ? Side::network : Side::device);
    const TcpSequence& sequence = flows_.sequence(flow);
    if (!sequence_within(q.tcp_seq, sequence.acked[quoted_sender] - 1,
                         sequence.end[quoted_sender])) {
      return deny(c, DropReason::icmp_error_unrelated);
    }
  }
  return forward(c);
}

Verdict Worker::unknown_device(Context& c) noexcept {
  // Only the device side reports events: a new MAC behind the appliance is worth
  // knowing about (discovery); ARP and traffic for other LAN hosts is not, and it is
  // counted under a reason of its own.
  const bool report = c.packet.ingress == Side::device;
  const DropReason reason = report ? DropReason::unknown_device : DropReason::not_for_a_device;
  switch (c.policy.unknown_devices()) {
    case UnknownDevices::forward:
      return Verdict{Action::forward, DropReason::none, false};
    case UnknownDevices::monitor:
      if (report) emit(c, EventKind::would_drop, reason, kNoRule);
      return Verdict{Action::forward, reason, true};
    case UnknownDevices::drop:
      break;
  }
  if (report) emit(c, EventKind::drop, reason, kNoRule);
  return Verdict{Action::drop, reason, false};
}

Verdict Worker::deny(Context& c, DropReason reason, bool report) noexcept {
  const CompiledDevice& dev = c.policy.device(c.device);
  DeviceCounters& counters = c.policy.counters(index_, static_cast<uint32_t>(c.device));
  if (dev.mode != DeviceMode::enforce) {
    bump(counters.would_drop[static_cast<size_t>(reason)]);
    if (report) emit(c, EventKind::would_drop, reason, kNoRule);
    Verdict v = forward(c);
    v.reason = reason;
    v.would_drop = true;
    return v;
  }
  bump(counters.dropped[static_cast<size_t>(reason)]);
  if (report) emit(c, EventKind::drop, reason, kNoRule);
  // Besides refused and revoked connections, a segment of a connection the appliance does
  // not know (its flow lost in a crash, or idle past its timeout) is answered as the
  // device's own stack would answer a segment for no connection (RFC 9293 §3.10.7.1): both
  // ends then fail fast and reconnect, instead of retransmitting into a silent drop until
  // their own timeouts (docs/reliability.md).
  const bool refused_connection = reason == DropReason::no_matching_rule ||
                                  reason == DropReason::policy_revoked ||
                                  reason == DropReason::tcp_no_flow;
  if (refused_connection && dev.deny_action == DenyAction::reset &&
      c.d.protocol == ip_protocol::tcp && (c.d.tcp_flags & tcp_flag::rst) == 0) {
    return Verdict{Action::drop_and_reset, reason, false};
  }
  return Verdict{Action::drop, reason, false};
}

// A TCP connection admitted only by a vendor session that has ended (revoked or expired:
// the policy without its rules was published) is reset at both ends, whatever the
// device's deny_action: the device must not hold a dead association (a DICOM SCP waits
// for its own timeout, minutes to hours) after the vendor's access ended.
//
// The cut happens at the flow's next packet, like every policy_revoked cut. In practice
// that is the device's: the vendor's segments stop in the appliance's firewall, which
// answers them with a reset itself (docs/management-plane.md). A device segment gets a
// reset back to the device (the vendor's end is the firewall's); a vendor segment that
// still arrives gets one back to the vendor and one on to the device. Resetting the
// device proactively at revoke would need each flow's sequence numbers (not tracked; a
// reset outside the receive window is ignored) and a frame built without a packet to
// answer, by every worker, idle ones included: not worth a per-packet cost.
Verdict Worker::cut_vendor_flow(Context& c) noexcept {
  Verdict v = deny(c, DropReason::policy_revoked);
  if (c.d.protocol == ip_protocol::tcp && (c.d.tcp_flags & tcp_flag::rst) == 0) {
    v.action =
        c.packet.ingress == Side::device ? Action::drop_and_reset : Action::drop_and_reset_both;
  }
  return v;
}

Verdict Worker::forward(Context& c) noexcept {
  if (c.device != kNoDevice && !c.forward_counted) {
    c.forward_counted = true;
    ForwardCounters& counters = c.policy.forward_counters(index_, static_cast<uint32_t>(c.device));
    bump(counters.packets);
    bump(counters.bytes, c.packet.length);
  }
  return Verdict{Action::forward, DropReason::none, false};
}

void Worker::emit(Context& c, EventKind kind, DropReason reason, int32_t rule) noexcept {
  // Token bucket: events_per_second, with a burst of the same size.
  const uint64_t rate = engine_.config_.events_per_second;
  if (c.now > event_refill_ns_) {
    const uint64_t elapsed = c.now - event_refill_ns_;
    const uint64_t refill = elapsed >= 1'000'000'000 ? rate : elapsed * rate / 1'000'000'000;
    if (refill > 0) {
      event_tokens_ = std::min(rate, event_tokens_ + refill);
      event_refill_ns_ = c.now;
    }
  }
  if (event_tokens_ == 0) {
    bump(counters_.events_suppressed);
    return;
  }
  --event_tokens_;

  Event e;
  e.time_ns = c.now;
  e.policy_version = c.policy.version();
  e.kind = kind;
  e.reason = reason;
  e.ingress = c.packet.ingress;
  e.dir = c.dir;
  e.src_mac = c.d.src_mac;
  if (c.d.l3 == L3Kind::arp) {
    e.src_ip = c.d.arp.sender_ip;
    e.dst_ip = c.d.arp.target_ip;
  } else if (c.d.l3 != L3Kind::none) {
    e.src_ip = c.d.src_ip;
    e.dst_ip = c.d.dst_ip;
    e.protocol = c.d.protocol;
    e.src_port = c.d.src_port;
    e.dst_port = c.d.dst_port;
  }
  e.set_detail(c.detail);
  if (c.device != kNoDevice) {
    const CompiledDevice& dev = c.policy.device(c.device);
    e.set_device(dev.name);
    if (rule == kNoRule) rule = c.rule;
    if (rule != kNoRule) e.set_rule(dev.rules[rule].name);
  }
  if (!events_.push(e)) bump(counters_.events_suppressed);
}

// ---------------------------------------------------------------------------------------
// Inspection of TCP streams

// Learn mode: what the DICOM and HL7 inspectors saw in one chunk of a flow, collected
// while they parse and reported as app_observed events afterwards. The texts are names
// and identifiers (AE titles, command names, UIDs, message types), never data. A
// backslash separates fields: DICOM AE titles cannot contain one.
struct AppObservations {
  static constexpr uint32_t kMax = 8;
  char text[kMax][128];
  uint32_t count = 0;

  void dicom_association(std::string_view calling, std::string_view called) noexcept {
    add("dicom-ae %.*s\\%.*s", calling, called);
  }
  void dicom_command(std::string_view command, std::string_view sop_class) noexcept {
    add("dicom-command %.*s\\%.*s", command, sop_class);
  }
  void hl7_message(std::string_view type) noexcept { add("hl7-message %.*s%.*s", type, ""); }

 private:
  void add(const char* format, std::string_view a, std::string_view b) noexcept {
    if (count == kMax) return;
    std::snprintf(text[count++], sizeof text[0], format, static_cast<int>(a.size()), a.data(),
                  static_cast<int>(b.size()), b.data());
  }
};

namespace {

// Checks each HL7 message of an inspected flow against its rule's constraints.
class Hl7RuleCheck final : public hl7::Observer {
 public:
  Hl7RuleCheck(const Hl7Constraints* rule, char (&detail)[128], AppObservations* observations)
      : rule_(rule), detail_(detail), observations_(observations) {}
  hl7::Decision on_message(std::string_view type, std::string_view,
                           std::string_view facility) noexcept override {
    if (observations_ != nullptr) observations_->hl7_message(type);
    if (rule_ == nullptr) return hl7::Decision::accept;
    if (!rule_->message_types.empty() && !type_listed(rule_->message_types, type)) {
      std::snprintf(detail_, sizeof detail_, "HL7 message type not allowed: %.*s",
                    static_cast<int>(type.size()), type.data());
      return hl7::Decision::reject;
    }
    if (!rule_->sending_facilities.empty() && !listed(rule_->sending_facilities, facility)) {
      std::snprintf(detail_, sizeof detail_, "HL7 sending facility not allowed: %.*s",
                    static_cast<int>(facility.size()), facility.data());
      return hl7::Decision::reject;
    }
    return hl7::Decision::accept;
  }

 private:
  static bool listed(const std::vector<std::string>& list, std::string_view value) {
    for (const std::string& item : list) {
      if (item == value) return true;
    }
    return false;
  }
  // "ORU^R01" allows exactly that; "ORU" allows every ORU trigger event (docs/policy.md).
  static bool type_listed(const std::vector<std::string>& list, std::string_view type) {
    for (const std::string& item : list) {
      if (item == type) return true;
      if (item.find('^') == std::string::npos && type.size() > item.size() &&
          type.substr(0, item.size()) == item && type[item.size()] == '^') {
        return true;
      }
    }
    return false;
  }
  const Hl7Constraints* rule_;
  char (&detail_)[128];
  AppObservations* observations_;
};

// Checks the facts of a DICOM association against its rule's constraints. Only protocol
// metadata is ever compared or reported: AE titles, SOP class UIDs, command names.
class DicomRuleCheck final : public dicom::Observer {
 public:
  DicomRuleCheck(const DicomConstraints* rule, char (&detail)[128], AppObservations* observations)
      : rule_(rule), detail_(detail), observations_(observations) {}

  dicom::Action on_associate_request(std::string_view calling, std::string_view called,
                                     uint32_t) noexcept override {
    if (observations_ != nullptr) observations_->dicom_association(calling, called);
    if (rule_ == nullptr) return dicom::Action::proceed;
    if (!rule_->calling_ae.empty() && !listed(rule_->calling_ae, calling)) {
      return refuse("calling AE title not allowed", calling);
    }
    if (!rule_->called_ae.empty() && !listed(rule_->called_ae, called)) {
      return refuse("called AE title not allowed", called);
    }
    return dicom::Action::proceed;
  }

  // Proposals are not judged: standard SCUs (storescu) propose every storage class they
  // know. What is used is judged, in on_command.
  dicom::Action on_command(const dicom::Command& command) noexcept override {
    if (dicom::is_response(command.command_field)) return dicom::Action::proceed;
    const std::string_view name = dicom::command_name(command.command_field);
    if (observations_ != nullptr) observations_->dicom_command(name, command.sop_class_uid);
    if (rule_ == nullptr) return dicom::Action::proceed;
    if (!rule_->commands.empty() && !listed(rule_->commands, name)) {
      return refuse("command not allowed", name);
    }
    // The Verification SOP class comes with C-ECHO, whatever the storage classes allowed.
    constexpr std::string_view kVerification = "1.2.840.10008.1.1";
    const bool echo = command.sop_class_uid == kVerification && name == "C-ECHO";
    if (!rule_->sop_classes.empty() && !command.sop_class_uid.empty() && !echo &&
        !listed(rule_->sop_classes, command.sop_class_uid)) {
      return refuse("SOP class not allowed", command.sop_class_uid);
    }
    return dicom::Action::proceed;
  }

 private:
  dicom::Action refuse(const char* what, std::string_view value) {
    std::snprintf(detail_, sizeof detail_, "DICOM %s: %.*s", what, static_cast<int>(value.size()),
                  value.data());
    return dicom::Action::stop;
  }
  static bool listed(const std::vector<std::string>& list, std::string_view value) {
    for (const std::string& item : list) {
      if (item == value) return true;
    }
    return false;
  }
  const DicomConstraints* rule_;
  char (&detail_)[128];
  AppObservations* observations_;
};

// The SMB virtual patches: the specific MS17-010 indicators first, so that the alert names
// the CVE even when all SMBv1 is blocked too.
class SmbPatchCheck final : public smb::Observer {
 public:
  SmbPatchCheck(uint8_t catalog, char (&detail)[128]) : catalog_(catalog), detail_(detail) {}
  smb::Decision on_message(const smb::Message& m) noexcept override {
    if ((catalog_ & catalog_bit::ms17_010) != 0 && (m.indicators & smb::indicator::ms17_010)) {
      const char* what =
          (m.indicators & smb::indicator::doublepulsar_request) ? "DoublePulsar request"
          : (m.indicators & smb::indicator::doublepulsar_reply) ? "DoublePulsar reply"
                                                                : "EternalBlue transaction";
      std::snprintf(detail_, sizeof detail_, "patch ms17-010 (MS17-010, CVE-2017-0144): %s", what);
      return smb::Decision::reject;
    }
    // A client's SMB1 NEGOTIATE that also offers SMB 2.x dialects (Windows 7 and later
    // start this way) is let through: the server must answer in SMB2, and an SMB1 answer
    // is itself refused.
    const bool smb2_upgrade =
        m.command == smb::smb1_command::negotiate && !m.reply && m.smb2_dialects_offered;
    if ((catalog_ & catalog_bit::smb1_block) != 0 && m.dialect == smb::Dialect::smb1 &&
        !smb2_upgrade) {
      std::snprintf(detail_, sizeof detail_, "patch smb1-block (MS17-010): SMBv1 %s command 0x%02x",
                    m.reply ? "reply" : "request", m.command);
      matched = "smb1-block";
      return smb::Decision::reject;
    }
    return smb::Decision::accept;
  }
  std::string_view matched;  // the patch that refused, for its default action

 private:
  uint8_t catalog_;
  char (&detail_)[128];
};

// What a built-in patch does when it matches: its catalog default (patches/catalog.h).
Action catalog_action(std::string_view id) noexcept {
  const CatalogPatch* patch = find_catalog_patch(id);
  return patch != nullptr && patch->default_action == PatchAction::drop
             ? Action::drop
             : Action::drop_and_reset_both;
}

// BlueKeep: an MCS Connect Initial asking for the MS_T120 channel. The parser decides what
// counts as asking (rdp.h: a channel name starting with MS_T120 in any case, or the bytes
// anywhere in the Connect Initial); it is checked after every channel and at the end.
class RdpPatchCheck final : public rdp::Observer {
 public:
  explicit RdpPatchCheck(char (&detail)[128]) : detail_(detail) {}
  rdp::Decision on_channel(std::string_view, const rdp::Facts& facts) noexcept override {
    return check(facts);
  }
  rdp::Decision on_connect_initial(const rdp::Facts& facts) noexcept override {
    return check(facts);
  }

 private:
  rdp::Decision check(const rdp::Facts& facts) {
    if (!facts.ms_t120_requested) return rdp::Decision::accept;
    std::snprintf(detail_, sizeof detail_,
                  "patch cve-2019-0708 (CVE-2019-0708): MS_T120 channel requested");
    return rdp::Decision::reject;
  }
  char (&detail_)[128];
};

}  // namespace

// Decides, for a new TCP connection, whether and how it is inspected. False when it must
// be inspected but no slot is free (the caller refuses the connection: fail closed).
bool Worker::start_inspection(Context& c, Flow& flow) noexcept {
  const CompiledDevice& dev = c.policy.device(c.device);
  const uint16_t dport = flow.dir == Direction::out ? flow.key.peer_port : flow.key.device_port;
  const InspectionPlan plan = c.policy.inspection().plan(
      static_cast<uint32_t>(c.device), flow.rule() == kNoRule ? nullptr : &dev.rules[flow.rule()],
      flow.dir, dport);
  if (plan.inspectors == 0) return true;
  const uint32_t entry = flows_.index_of(&flow);
  uint32_t slot = inspections_.acquire(entry);
  if (slot == InspectionPool::kNone) {
    // None free: the oldest half-open connection gives its slot up and ends (InspectionPool).
    const uint32_t oldest = inspections_.oldest_half_open();
    if (oldest == InspectionPool::kNone) return false;
    flows_.evict(&flows_.at(inspections_.flow_of(oldest)));  // releases the slot
    slot = inspections_.acquire(entry);
  }
  flow.inspection = static_cast<uint16_t>(slot);  // slots < kMaxInspectedFlows (Engine)
  InspectionSlot& s = inspections_[slot];
  s.plan = plan;
  s.observed_count = 0;
  s.stream[0].start(c.d.tcp_seq + 1);  // the initiator's SYN
  const smb::Transport transport =
      dport == 139 ? smb::Transport::netbios : smb::Transport::direct_tcp;
  s.smb[0] = smb::Parser(transport);
  s.smb[1] = smb::Parser(transport);
  return true;
}

void Worker::release_inspection(Flow& flow) noexcept {
  if (flow.inspection == kNoInspection) return;
  inspections_.release(flow.inspection);
  flow.inspection = kNoInspection;
}

Verdict Worker::inspect(Context& c, Flow& flow, bool from_initiator) noexcept {
  InspectionSlot& slot = inspections_[flow.inspection];
  TcpStream& stream = slot.stream[from_initiator ? 0 : 1];
  if (!stream.started()) return deny(c, DropReason::tcp_invalid_state);
  auto sink = [&](const uint8_t* data, size_t length) {
    return feed_inspectors(c, slot, stream, from_initiator, flow.rule(), data, length);
  };
  switch (
      stream.accept(c.d.tcp_seq, c.packet.data + c.d.payload_offset, c.d.payload_length, sink)) {
    case StreamResult::ok:
      return Verdict{Action::forward, DropReason::none, false};
    case StreamResult::limit:
      // Not an attack by itself: the sender retransmits once the gap is filled.
      return deny(c, DropReason::tcp_reassembly_limit);
    case StreamResult::conflict:
      std::snprintf(c.detail, sizeof c.detail, "retransmitted bytes differ from the first copy");
      return inspection_violation(c, flow, DropReason::tcp_overlap_conflict);
    case StreamResult::refused:
      break;
  }
  return inspection_violation(c, flow, c.finding);
}

bool Worker::feed_inspectors(Context& c, InspectionSlot& slot, const TcpStream& stream,
                             bool from_initiator, int32_t rule, const uint8_t* data,
                             size_t length) noexcept {
  auto refuse = [&](DropReason reason) {
    c.finding = reason;
    return false;
  };
  const CompiledDevice& dev = c.policy.device(c.device);
  AppObservations observations;
  AppObservations* observe = dev.mode == DeviceMode::learn ? &observations : nullptr;
  if ((slot.plan.inspectors & inspector::dicom) != 0) {
    const DicomConstraints* constraints =
        rule == kNoRule || !dev.rules[rule].dicom ? nullptr : &*dev.rules[rule].dicom;
    DicomRuleCheck check(constraints, c.detail, observe);
    const dicom::Error e = slot.dicom.feed(
        from_initiator ? dicom::Side::requestor : dicom::Side::acceptor, data, length, check);
    report_observations(c, slot, observations, rule);
    if (e == dicom::Error::rejected_by_policy) return refuse(DropReason::app_not_allowed);
    if (e != dicom::Error::ok) {
      const std::string_view what = dicom::error_name(e);
      // A flow inspected only for the sanity patch reports the patch; a DICOM rule's
      // flow that stops being DICOM breaks the rule.
      const bool patch_only = constraints == nullptr;
      std::snprintf(c.detail, sizeof c.detail, "%s%.*s: %s",
                    patch_only ? "patch dicom-pdu-sanity (PS3.8): " : "malformed DICOM: ",
                    static_cast<int>(what.size()), what.data(), slot.dicom.detail());
      if (patch_only) c.finding_action = catalog_action("dicom-pdu-sanity");
      return refuse(patch_only ? DropReason::virtual_patch : DropReason::app_malformed);
    }
  }
  if ((slot.plan.inspectors & inspector::smb) != 0) {
    SmbPatchCheck check(slot.plan.catalog, c.detail);
    const smb::Result r = slot.smb[from_initiator ? 0 : 1].feed(data, length, check);
    if (r == smb::Result::rejected_by_policy) {
      c.finding_action = catalog_action(check.matched);
      return refuse(DropReason::virtual_patch);
    }
    if (r != smb::Result::ok) {
      const std::string_view what = smb::to_string(r);
      std::snprintf(c.detail, sizeof c.detail, "malformed SMB: %.*s", static_cast<int>(what.size()),
                    what.data());
      return refuse(DropReason::app_malformed);
    }
  }
  if (!from_initiator) return true;  // the other rules and patches concern the initiator's bytes
  if ((slot.plan.inspectors & inspector::rdp) != 0) {
    RdpPatchCheck check(c.detail);
    const rdp::Result r = slot.rdp.feed(data, length, check);
    if (r == rdp::Result::rejected_by_policy) {
      c.finding_action = catalog_action("cve-2019-0708");
      return refuse(DropReason::virtual_patch);
    }
    if (r != rdp::Result::ok) {
      const std::string_view what = rdp::to_string(r);
      std::snprintf(c.detail, sizeof c.detail, "malformed RDP: %.*s", static_cast<int>(what.size()),
                    what.data());
      return refuse(DropReason::app_malformed);
    }
  }
  if ((slot.plan.inspectors & inspector::hl7) != 0) {
    const Hl7Constraints* constraints =
        rule == kNoRule || !dev.rules[rule].hl7 ? nullptr : &*dev.rules[rule].hl7;
    Hl7RuleCheck check(constraints, c.detail, observe);
    const hl7::Result r = slot.hl7.feed(data, length, check);
    report_observations(c, slot, observations, rule);
    if (r == hl7::Result::rejected_by_policy) return refuse(DropReason::app_not_allowed);
    if (r != hl7::Result::ok) {
      const std::string_view what = hl7::to_string(r);
      std::snprintf(c.detail, sizeof c.detail, "malformed HL7/MLLP: %.*s",
                    static_cast<int>(what.size()), what.data());
      return refuse(DropReason::app_malformed);
    }
  }
  if ((slot.plan.inspectors & inspector::signatures) != 0) {
    // Scan the new bytes together with the ones just before them, so that matches
    // spanning chunks are found (signatures.h).
    const uint32_t overlap = std::min(stream.tail_length(), SignatureSet::kOverlap);
    const SignatureSet& signatures = c.policy.inspection().signatures();
    for (size_t done = 0; done < length;) {
      const size_t chunk = std::min<size_t>(length - done, 65536);
      uint8_t* window = scan_buffer_.get();
      // The overlap comes from the stream's tail for the first piece, from the previous
      // piece afterwards.
      const uint8_t* before =
          done == 0 ? stream.tail() + stream.tail_length() - overlap : data + done - overlap;
      std::memcpy(window, before, overlap);
      std::memcpy(window + overlap, data + done, chunk);
      const int32_t patch =
          signatures.scan(index_, window, overlap + chunk, overlap,
                          uint64_t{stream.delivered()} + done - overlap, slot.plan.signature_mask);
      if (patch >= 0) {
        const PolicyPatch& p = c.policy.inspection().patch(static_cast<uint32_t>(patch));
        std::snprintf(c.detail, sizeof c.detail, "patch %s%s%s%s", p.id.c_str(),
                      p.cve.empty() ? "" : " (", p.cve.c_str(), p.cve.empty() ? "" : ")");
        if (p.action == PatchAction::alert) {
          // Alert-only patches report and let the bytes pass.
          emit(c, EventKind::would_drop, DropReason::virtual_patch, kNoRule);
          c.detail[0] = '\0';
        } else {
          c.finding_action =
              p.action == PatchAction::reset ? Action::drop_and_reset_both : Action::drop;
          return refuse(DropReason::virtual_patch);
        }
      }
      done += chunk;
    }
  }
  return true;
}

// Learn mode: each observation once per flow (up to InspectionSlot::kMaxObserved kinds),
// as an app_observed event; the detail a check may have written is kept.
void Worker::report_observations(Context& c, InspectionSlot& slot, AppObservations& observations,
                                 int32_t rule) noexcept {
  if (observations.count == 0) return;
  char kept[sizeof c.detail];
  std::memcpy(kept, c.detail, sizeof kept);
  for (uint32_t i = 0; i < observations.count; ++i) {
    const std::string_view text(observations.text[i]);
    uint64_t hash = 14695981039346656037ull;  // FNV-1a
    for (const char ch : text) hash = (hash ^ static_cast<uint8_t>(ch)) * 1099511628211ull;
    bool seen = false;
    for (uint32_t j = 0; j < slot.observed_count && !seen; ++j) seen = slot.observed[j] == hash;
    if (seen || slot.observed_count == InspectionSlot::kMaxObserved) continue;
    slot.observed[slot.observed_count++] = hash;
    std::memcpy(c.detail, text.data(), text.size() + 1);
    emit(c, EventKind::app_observed, DropReason::none, rule);
  }
  observations.count = 0;
  std::memcpy(c.detail, kept, sizeof kept);
}

// An inspected connection broke a rule or matched a patch: in enforce mode the segment is
// dropped and the connection ended at both ends; in monitor/learn mode it is reported
// once and no longer inspected.
Verdict Worker::inspection_violation(Context& c, Flow& flow, DropReason reason) noexcept {
  if (c.policy.device(c.device).mode != DeviceMode::enforce) {
    release_inspection(flow);
    return deny(c, reason);
  }
  flow.blocked = true;
  deny(c, reason);
  return Verdict{c.finding_action, reason, false};
}

// ---------------------------------------------------------------------------------------
// Engine

Engine::Engine(const EngineConfig& config) : config_(config) {
  if (config.workers == 0) throw std::invalid_argument("engine needs at least one worker");
  if (config.inspected_flows_per_worker > kMaxInspectedFlows) {
    throw std::invalid_argument("at most 65535 inspected flows per worker");
  }
  const size_t size = rte_rcu_qsbr_get_memsize(config.workers);
  qsbr_ = static_cast<rte_rcu_qsbr*>(std::aligned_alloc(64, (size + 63) / 64 * 64));
  if (qsbr_ == nullptr) throw std::bad_alloc();
  if (rte_rcu_qsbr_init(qsbr_, config.workers) != 0) {
    std::free(qsbr_);
    throw std::runtime_error("rte_rcu_qsbr_init failed");
  }
  for (uint32_t i = 0; i < config.workers; ++i) {
    rte_rcu_qsbr_thread_register(qsbr_, i);  // registered offline until the first batch
    workers_.push_back(std::unique_ptr<Worker>(new Worker(*this, i)));
  }
}

Engine::~Engine() {
  std::free(qsbr_);
}

uint64_t Engine::publish(std::unique_ptr<CompiledPolicy> policy) {
  if (policy->worker_slots() != worker_count()) {
    throw std::invalid_argument("policy compiled for a different number of workers");
  }
  policy->epoch_ = next_epoch_++;
  const uint64_t epoch = policy->epoch_;
  std::unique_ptr<const CompiledPolicy> retired = std::move(owned_);
  owned_ = std::move(policy);
  active_.store(owned_.get(), std::memory_order_release);
  // Wait until every online worker has finished the batch it may have started with the
  // old pointer; offline (idle) workers hold no reference and are not waited for. This is
  // rte_rcu_qsbr_synchronize, except that the control thread yields its core while it
  // waits instead of spinning: it shares cores with the workers it is waiting for.
  const uint64_t token = rte_rcu_qsbr_start(qsbr_);
  while (rte_rcu_qsbr_check(qsbr_, token, false) == 0) std::this_thread::yield();
  if (retired) fold_counters(*retired);
  return epoch;
}

namespace {

void add_device_counters(DeviceTotals& totals, const CompiledPolicy& policy, uint32_t device) {
  for (uint32_t w = 0; w < policy.worker_slots(); ++w) {
    const ForwardCounters& f = policy.forward_counters(w, device);
    totals.forwarded_packets += f.packets.load(std::memory_order_relaxed);
    totals.forwarded_bytes += f.bytes.load(std::memory_order_relaxed);
    const DeviceCounters& c = policy.counters(w, device);
    totals.new_flows += c.new_flows.load(std::memory_order_relaxed);
    for (size_t r = 0; r < kDropReasonCount; ++r) {
      totals.dropped[r] += c.dropped[r].load(std::memory_order_relaxed);
      totals.would_drop[r] += c.would_drop[r].load(std::memory_order_relaxed);
    }
  }
}

}  // namespace

void Engine::fold_counters(const CompiledPolicy& retired) {
  for (uint32_t dev = 0; dev < retired.device_count(); ++dev) {
    add_device_counters(retired_totals_[retired.device(dev).name], retired, dev);
  }
}

size_t Engine::poll_events(std::span<Event> out) noexcept {
  size_t total = 0;
  for (size_t n = 0; n < workers_.size() && total < out.size(); ++n) {
    Worker& w = *workers_[next_event_ring_];
    next_event_ring_ = (next_event_ring_ + 1) % static_cast<uint32_t>(workers_.size());
    total += w.events_.pop(out.subspan(total));
  }
  return total;
}

CounterSnapshot Engine::read_counters() const {
  CounterSnapshot s;
  s.devices = retired_totals_;
  for (const auto& w : workers_) {
    const WorkerCounters& c = w->counters_;
    s.packets += c.packets.load(std::memory_order_relaxed);
    s.forwarded += c.forwarded.load(std::memory_order_relaxed);
    s.events_suppressed += c.events_suppressed.load(std::memory_order_relaxed);
    s.flows_active += c.flows_active.load(std::memory_order_relaxed);
    s.flows_evicted += c.flows_evicted.load(std::memory_order_relaxed);
    s.flows_expired += c.flows_expired.load(std::memory_order_relaxed);
    for (size_t r = 0; r < kDropReasonCount; ++r) {
      s.dropped[r] += c.dropped[r].load(std::memory_order_relaxed);
    }
  }
  if (const CompiledPolicy* p = active()) {
    for (uint32_t dev = 0; dev < p->device_count(); ++dev) {
      add_device_counters(s.devices[p->device(dev).name], *p, dev);
    }
  }
  return s;
}

}  // namespace cordon::engine
