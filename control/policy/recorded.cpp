#include "control/policy/recorded.h"

#include <array>
#include <cstring>

namespace cordon::control::policy {
namespace {

// A locally administered MAC standing for "the hospital network" side.
constexpr std::array<uint8_t, 6> kNetworkMac = {0x02, 0x00, 0x5e, 0x00, 0x00, 0x01};

void put16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

void put32le(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_bytes(std::string& out, const uint8_t* p, size_t n) {
  out.append(reinterpret_cast<const char*>(p), n);
}

uint16_t ones_complement(const std::string& data, size_t from, size_t length, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < length; i += 2)
    sum += (static_cast<uint8_t>(data[from + i]) << 8) | static_cast<uint8_t>(data[from + i + 1]);
  if (length & 1) sum += static_cast<uint8_t>(data[from + length - 1]) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// Transport header for the opening packet of the flow.
std::string transport(int64_t protocol, bool v6, uint16_t sport, uint16_t dport) {
  std::string t;
  if (protocol == 6) {
    put16(t, sport);
    put16(t, dport);
    put32le(t, 1);  // sequence number (any)
    put32le(t, 0);
    t.push_back(0x50);  // data offset 5 words
    t.push_back(0x02);  // SYN
    put16(t, 64240);
    put16(t, 0);  // checksum (the engine does not check L4 checksums)
    put16(t, 0);
  } else if (protocol == 17) {
    put16(t, sport);
    put16(t, dport);
    put16(t, 8);
    put16(t, 0);
  } else {
    t.push_back(static_cast<char>(v6 ? 128 : 8));  // echo request
    t.push_back(0);
    put16(t, 0);
    put16(t, sport);  // identifier
    put16(t, 1);      // sequence
    const uint16_t sum = ones_complement(t, 0, t.size());
    t[2] = static_cast<char>(sum >> 8);
    t[3] = static_cast<char>(sum & 0xff);
  }
  return t;
}

}  // namespace

RecordedCapture capture_from_flow_records(const engine::PolicyDocument& active,
                                          const std::vector<store::FlowRecord>& flows) {
  RecordedCapture out;
  std::string& pcap = out.pcap;
  put32le(pcap, 0xa1b2c3d4);                   // microsecond pcap
  pcap += std::string("\x02\x00\x04\x00", 4);  // version 2.4
  put32le(pcap, 0);
  put32le(pcap, 0);
  put32le(pcap, 65535);
  put32le(pcap, 1);  // Ethernet
  uint16_t ephemeral = 40000;
  for (const store::FlowRecord& f : flows) {
    const engine::Device* device = nullptr;
    for (const engine::Device& d : active.devices)
      if (d.name == f.key.device) device = &d;
    const std::optional<engine::IpAddress> peer = engine::IpAddress::parse(f.key.peer);
    const bool tcp_udp = f.key.protocol == 6 || f.key.protocol == 17;
    const bool icmp = f.key.protocol == 1 || f.key.protocol == 58;
    if (!device || !peer || (!tcp_udp && !icmp)) {
      ++out.skipped;
      continue;
    }
    const engine::IpAddress* self = nullptr;
    for (const engine::IpAddress& ip : device->ips)
      if (ip.family == peer->family) self = &ip;
    if (!self) {
      ++out.skipped;
      continue;
    }
    const bool v6 = peer->family == 6;
    const bool out_dir = f.key.dir == "out";
    const engine::IpAddress& src = out_dir ? *self : *peer;
    const engine::IpAddress& dst = out_dir ? *peer : *self;
    const uint16_t sport = ++ephemeral;
    const std::string l4 = transport(f.key.protocol, v6, sport, static_cast<uint16_t>(f.key.port));
    const uint8_t proto = static_cast<uint8_t>(f.key.protocol == 1 && v6 ? 58 : f.key.protocol);

    std::string frame;
    const auto& device_mac = device->mac.bytes;
    put_bytes(frame, out_dir ? kNetworkMac.data() : device_mac.data(), 6);  // destination
    put_bytes(frame, out_dir ? device_mac.data() : kNetworkMac.data(), 6);  // source
    put16(frame, v6 ? 0x86dd : 0x0800);
    const size_t ip_at = frame.size();
    if (v6) {
      put16(frame, 0x6000);
      put16(frame, 0);
      put16(frame, static_cast<uint16_t>(l4.size()));
      frame.push_back(static_cast<char>(proto));
      frame.push_back(64);
      put_bytes(frame, src.bytes.data(), 16);
      put_bytes(frame, dst.bytes.data(), 16);
    } else {
      frame.push_back(0x45);
      frame.push_back(0);
      put16(frame, static_cast<uint16_t>(20 + l4.size()));
      put16(frame, 0);
      put16(frame, 0x4000);  // don't fragment
      frame.push_back(64);
      frame.push_back(static_cast<char>(proto));
      put16(frame, 0);
      put_bytes(frame, src.bytes.data(), 4);  // an IPv4 address is its first 4 bytes
      put_bytes(frame, dst.bytes.data(), 4);
      const uint16_t sum = ones_complement(frame, ip_at, 20);
      frame[ip_at + 10] = static_cast<char>(sum >> 8);
      frame[ip_at + 11] = static_cast<char>(sum & 0xff);
    }
    frame += l4;
    // One millisecond apart, so the engine's idle timeouts never end a flow early.
    put32le(pcap, static_cast<uint32_t>(1 + out.packets / 1000));
    put32le(pcap, static_cast<uint32_t>(out.packets % 1000) * 1000);
    put32le(pcap, static_cast<uint32_t>(frame.size()));
    put32le(pcap, static_cast<uint32_t>(frame.size()));
    pcap += frame;
    ++out.packets;
  }
  return out;
}

}  // namespace cordon::control::policy
