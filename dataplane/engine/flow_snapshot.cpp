// Engine::save_flows and Engine::restore_flows: the flow tables across a restart.
//
// The snapshot is a file the dataplane writes into its own state dir at an orderly
// shutdown and reads back once at its next start; it never leaves the machine. It is
// still parsed as untrusted bytes (fuzz target fuzz_flow_snapshot): a damaged or stale
// file must not put a flow into a table that no packet could have made.
//
// Layout, native byte order (the same machine writes and reads it; read in another order
// the version would not match):
//   header  magic "CORDONFLOWS\0" (12), version u32, workers u32, wall_ns u64,
//           layout length u32, layout bytes, flow count u64
//   flows   count records of kRecordSize bytes (write_record)
//   trailer CRC-32 of everything before it, u32
#include <boost/crc.hpp>

#include <algorithm>
#include <cstring>
#include <set>
#include <utility>

#include "dataplane/engine/decode.h"
#include "dataplane/engine/engine.h"

namespace cordon::engine {
namespace {

constexpr char kMagic[12] = {'C', 'O', 'R', 'D', 'O', 'N', 'F', 'L', 'O', 'W', 'S', '\0'};
constexpr uint32_t kVersion = 1;
constexpr size_t kRecordSize = 82;
constexpr size_t kMaxLayout = 4096;

// Flow bits in a record.
constexpr uint8_t kFinSeenMask = 0x03;
constexpr uint8_t kReplied = 0x04;
constexpr uint8_t kEnforced = 0x08;
constexpr uint8_t kVendorSession = 0x10;

class Writer {
 public:
  template <typename T>
  void put(T value) {
    const auto* p = reinterpret_cast<const char*>(&value);
    out_.append(p, sizeof value);
  }
  void bytes(const void* data, size_t size) { out_.append(static_cast<const char*>(data), size); }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  template <typename T>
  bool get(T& value) {
    if (in_.size() - at_ < sizeof value) return false;
    std::memcpy(&value, in_.data() + at_, sizeof value);
    at_ += sizeof value;
    return true;
  }
  bool bytes(size_t size, std::string_view& out) {
    if (in_.size() - at_ < size) return false;
    out = in_.substr(at_, size);
    at_ += size;
    return true;
  }
  size_t left() const { return in_.size() - at_; }

 private:
  std::string_view in_;
  size_t at_ = 0;
};

uint32_t crc_of(std::string_view bytes) {
  boost::crc_32_type crc;
  crc.process_bytes(bytes.data(), bytes.size());
  return crc.checksum();
}

// The idle timeout of a flow in its present state: what touch() gives it on its next
// packet, so no restored flow may have longer left than that (and a grain). The same
// choice as Worker::track_tcp and judge_ip make per packet, kept apart from that path.
uint64_t idle_timeout(const FlowTimeouts& t, const Flow& flow) {
  switch (flow.key.protocol) {
    case ip_protocol::tcp:
      switch (flow.tcp) {
        case TcpState::established:
          return t.tcp_established_ns;
        case TcpState::closing:
          return t.tcp_closing_ns;
        case TcpState::closed:
          return t.tcp_closed_ns;
        default:
          return t.tcp_handshake_ns;
      }
    case ip_protocol::udp:
      return flow.replied ? t.udp_replied_ns : t.udp_unreplied_ns;
    default:
      return t.icmp_ns;
  }
}

// A restored flow as read, before anything is inserted.
struct Restored {
  uint32_t worker = 0;
  Flow flow;  // key, dir, tcp, flow_class and the flag bits; the rest as a new entry
  TcpSequence sequence;
  uint64_t remaining_ns = 0;
};

void write_record(Writer& w, uint32_t worker, const Flow& flow, const TcpSequence& sequence,
                  uint64_t remaining_ns) {
  w.put(worker);
  w.bytes(flow.key.device_ip.data(), 16);
  w.bytes(flow.key.peer_ip.data(), 16);
  w.put(flow.key.device_port);
  w.put(flow.key.peer_port);
  w.put(flow.key.vlan);
  w.put(flow.key.protocol);
  w.put(flow.key.family);
  w.put(static_cast<uint8_t>(flow.dir));
  w.put(static_cast<uint8_t>(flow.tcp));
  w.put(static_cast<uint8_t>(flow.flow_class));
  w.put(static_cast<uint8_t>((flow.fin_seen & kFinSeenMask) | (flow.replied ? kReplied : 0) |
                             (flow.enforced ? kEnforced : 0) |
                             (flow.vendor_session ? kVendorSession : 0)));
  w.put(remaining_ns);
  for (int side = 0; side < 2; ++side) w.put(sequence.end[side]);
  for (int side = 0; side < 2; ++side) w.put(sequence.acked[side]);
  for (int side = 0; side < 2; ++side) w.put(sequence.max_window[side]);
  for (int side = 0; side < 2; ++side) w.put(sequence.window_shift[side]);
}

bool valid_window_shift(uint8_t shift) {
  return shift <= 14 || shift == TcpSequence::kNoWindowScale;  // RFC 7323 §2.3: at most 14
}

// Reads one record; an error names what is wrong with it.
std::string read_record(Reader& r, Restored& out) {
  Flow& f = out.flow;
  std::string_view device_ip, peer_ip;
  uint8_t dir = 0, tcp = 0, cls = 0, bits = 0;
  if (!r.get(out.worker) || !r.bytes(16, device_ip) || !r.bytes(16, peer_ip) ||
      !r.get(f.key.device_port) || !r.get(f.key.peer_port) || !r.get(f.key.vlan) ||
      !r.get(f.key.protocol) || !r.get(f.key.family) || !r.get(dir) || !r.get(tcp) || !r.get(cls) ||
      !r.get(bits) || !r.get(out.remaining_ns)) {
    return "truncated flow record";
  }
  TcpSequence& s = out.sequence;
  for (auto* field : {&s.end, &s.acked, &s.max_window}) {
    for (uint32_t& v : *field) {
      if (!r.get(v)) return "truncated flow record";
    }
  }
  for (uint8_t& v : s.window_shift) {
    if (!r.get(v)) return "truncated flow record";
  }
  std::memcpy(f.key.device_ip.data(), device_ip.data(), 16);
  std::memcpy(f.key.peer_ip.data(), peer_ip.data(), 16);

  const uint8_t family = f.key.family;
  if (family != 4 && family != 6) return "flow with an unknown address family";
  if (family == 4) {
    // IPv4 in the first four bytes, the rest zero (IpAddress), or no packet has this key.
    const auto zero = [](const std::array<uint8_t, 16>& a) {
      return std::all_of(a.begin() + 4, a.end(), [](uint8_t b) { return b == 0; });
    };
    if (!zero(f.key.device_ip) || !zero(f.key.peer_ip)) return "IPv4 flow with a wider address";
  }
  const uint8_t proto = f.key.protocol;
  const bool echo_v4 = proto == ip_protocol::icmp && family == 4;
  const bool echo_v6 = proto == ip_protocol::icmpv6 && family == 6;
  if (proto != ip_protocol::tcp && proto != ip_protocol::udp && !echo_v4 && !echo_v6) {
    return "flow of a protocol no flow is kept for";
  }
  if (f.key.vlan > 4095) return "flow with a VLAN id above 4095";
  if (dir > static_cast<uint8_t>(Direction::in)) return "flow with an unknown direction";
  f.dir = static_cast<Direction>(dir);
  const bool is_tcp = proto == ip_protocol::tcp;
  if (is_tcp ? (tcp == static_cast<uint8_t>(TcpState::none) ||
                tcp > static_cast<uint8_t>(TcpState::closed))
             : tcp != static_cast<uint8_t>(TcpState::none)) {
    return "flow with a TCP state that does not fit its protocol";
  }
  f.tcp = static_cast<TcpState>(tcp);
  if (cls > static_cast<uint8_t>(FlowClass::closing)) return "flow with an unknown class";
  f.flow_class = static_cast<FlowClass>(cls);
  if ((bits & ~(kFinSeenMask | kReplied | kEnforced | kVendorSession)) != 0) {
    return "flow with unknown flag bits";
  }
  f.fin_seen = bits & kFinSeenMask;
  f.replied = (bits & kReplied) != 0;
  f.enforced = (bits & kEnforced) != 0;
  f.vendor_session = (bits & kVendorSession) != 0;
  if (!valid_window_shift(s.window_shift[0]) || !valid_window_shift(s.window_shift[1])) {
    return "flow with a window scale above 14";
  }
  if (out.remaining_ns == 0) return "flow with no lifetime left";
  return {};
}

}  // namespace

FlowSnapshot Engine::save_flows(std::string_view layout, uint64_t now_ns, uint64_t wall_ns) const {
  Writer w;
  w.bytes(kMagic, sizeof kMagic);
  w.put(kVersion);
  w.put(worker_count());
  w.put(wall_ns);
  w.put(static_cast<uint32_t>(layout.size()));
  w.bytes(layout.data(), layout.size());
  const size_t count_at = w.out().size();
  uint64_t count = 0;
  w.put(count);
  for (uint32_t i = 0; i < worker_count(); ++i) {
    const FlowTable& table = workers_[i]->flows_;
    table.for_each([&](const Flow& flow) {
      if (flow.expires_ns <= now_ns || flow.blocked || flow.inspection != kNoInspection) return;
      write_record(w, i, flow, table.sequence(&flow), flow.expires_ns - now_ns);
      ++count;
    });
  }
  std::memcpy(w.out().data() + count_at, &count, sizeof count);
  w.put(crc_of(w.out()));
  return FlowSnapshot{std::move(w.out()), count};
}

FlowRestore Engine::restore_flows(std::string_view snapshot, std::string_view layout,
                                  uint64_t now_ns, uint64_t wall_ns) {
  FlowRestore result;
  const auto refuse = [&result](std::string why) {
    result.error = std::move(why);
    return result;
  };
  if (snapshot.size() < sizeof kMagic + sizeof(uint32_t) ||
      std::memcmp(snapshot.data(), kMagic, sizeof kMagic) != 0) {
    return refuse("not a flow snapshot");
  }
  uint32_t stored_crc = 0;
  std::memcpy(&stored_crc, snapshot.data() + snapshot.size() - sizeof stored_crc,
              sizeof stored_crc);
  const std::string_view body = snapshot.substr(0, snapshot.size() - sizeof stored_crc);
  if (crc_of(body) != stored_crc) return refuse("flow snapshot damaged (checksum)");

  Reader r(body.substr(sizeof kMagic));
  uint32_t version = 0, workers = 0, layout_size = 0;
  uint64_t saved_wall_ns = 0, count = 0;
  std::string_view saved_layout;
  if (!r.get(version) || !r.get(workers) || !r.get(saved_wall_ns) || !r.get(layout_size)) {
    return refuse("flow snapshot header truncated");
  }
  if (version != kVersion) return refuse("flow snapshot version " + std::to_string(version));
  if (layout_size > kMaxLayout || !r.bytes(layout_size, saved_layout) || !r.get(count)) {
    return refuse("flow snapshot header truncated");
  }
  if (workers != worker_count()) {
    return refuse("flow snapshot of " + std::to_string(workers) + " workers, now " +
                  std::to_string(worker_count()));
  }
  if (saved_layout != layout) return refuse("flow snapshot of other port pairs");
  if (wall_ns < saved_wall_ns) return refuse("flow snapshot from the future (clock went back)");
  if (count != r.left() / kRecordSize || r.left() % kRecordSize != 0) {
    return refuse("flow snapshot length does not match its flow count");
  }
  uint64_t room = 0;
  for (const auto& worker : workers_) {
    if (worker->flows_.size() != 0) return refuse("flow tables not empty");
    room += worker->flows_.capacity();
  }
  // Before anything is allocated for them (the per-worker check follows).
  if (count > room) return refuse("flow snapshot holds more flows than the tables");

  // Everything is read and checked first: nothing is inserted unless all of it is good.
  const uint64_t down_ns = wall_ns - saved_wall_ns;
  std::vector<Restored> flows;
  std::vector<uint32_t> per_worker(worker_count(), 0);
  std::set<std::pair<uint32_t, std::string_view>> keys;
  flows.reserve(count);
  for (uint64_t k = 0; k < count; ++k) {
    const std::string_view raw = body.substr(body.size() - r.left(), kRecordSize);
    Restored f;
    if (std::string error = read_record(r, f); !error.empty()) {
      return refuse("flow snapshot record " + std::to_string(k) + ": " + error);
    }
    if (f.worker >= worker_count()) {
      return refuse("flow snapshot record " + std::to_string(k) + ": no such worker");
    }
    // touch() rounds expiry times up to its grain.
    if (f.remaining_ns > idle_timeout(config_.timeouts, f.flow) + FlowTable::kExpiryGrain) {
      return refuse("flow snapshot record " + std::to_string(k) +
                    ": more lifetime left than its timeout");
    }
    // The key's bytes in the record (after the worker), with the worker: unique.
    if (!keys.emplace(f.worker, raw.substr(sizeof(uint32_t), 40)).second) {
      return refuse("flow snapshot record " + std::to_string(k) + ": a flow twice");
    }
    if (++per_worker[f.worker] > workers_[f.worker]->flows_.capacity()) {
      return refuse("flow snapshot holds more flows for worker " + std::to_string(f.worker) +
                    " than its table (" + std::to_string(workers_[f.worker]->flows_.capacity()) +
                    ")");
    }
    if (f.remaining_ns <= down_ns) {
      ++result.expired;
      continue;
    }
    flows.push_back(f);
  }

  for (const Restored& f : flows) {
    FlowTable& table = workers_[f.worker]->flows_;
    Flow* flow = table.insert(f.flow.key);  // room checked above: never evicts or fails
    flow->dir = f.flow.dir;
    flow->tcp = f.flow.tcp;
    flow->fin_seen = f.flow.fin_seen;
    flow->replied = f.flow.replied;
    flow->enforced = f.flow.enforced;
    flow->vendor_session = f.flow.vendor_session;
    // Epoch 0 is no policy's (publish() numbers from 1): the flow's next packet looks its
    // device up and re-checks it against the active policy (Worker::reclassify).
    flow->policy_epoch = 0;
    table.sequence(flow) = f.sequence;
    table.touch(flow, f.flow.flow_class, now_ns + (f.remaining_ns - down_ns));
  }
  result.restored = flows.size();
  return result;
}

}  // namespace cordon::engine
