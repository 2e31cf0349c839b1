// The engine as packet tables: each case is a sequence of frames, each with the side it
// arrives on and the verdict it must get. Policies are built as documents in code so
// each case states exactly what it relies on.
#include "dataplane/engine/engine.h"

#include <gtest/gtest.h>

#include <boost/crc.hpp>
#include <cstring>

#include <functional>

#include "tests/unit/dataplane/engine/frames.h"

namespace cordon::engine {
namespace {

using testing::Bytes;
using testing::FrameBuilder;

constexpr const char* kDeviceMac = "02:c0:4d:00:00:10";
constexpr const char* kDevice = "10.50.0.10";
constexpr const char* kGatewayMac = "02:00:00:00:00:01";
constexpr const char* kPacs = "10.50.0.20";
constexpr const char* kRis = "10.50.0.30";
constexpr const char* kNtp = "10.50.0.1";
constexpr const char* kAttacker = "10.50.0.66";
constexpr const char* kOutsider = "10.99.0.5";
constexpr const char* kDevice6 = "2001:db8::10";
constexpr const char* kPeer6 = "2001:db8::20";

Rule rule(std::string name, Direction dir, Protocol proto, const char* peer, uint16_t first = 0,
          uint16_t last = 65535) {
  Rule r;
  r.name = std::move(name);
  r.dir = dir;
  r.proto = proto;
  r.peer = *Cidr::parse(peer);
  r.dport = PortRange{first, last};
  return r;
}

// The device of DESIGN §3, plus an inbound port range and an IPv6 address.
PolicyDocument lab_policy(DeviceMode mode = DeviceMode::enforce) {
  Device d;
  d.name = "ct-1";
  d.mac = *MacAddress::parse(kDeviceMac);
  d.ips = {*IpAddress::parse(kDevice), *IpAddress::parse(kDevice6)};
  d.mode = mode;
  d.rules = {rule("store-to-pacs", Direction::out, Protocol::tcp, "10.50.0.20/32", 104, 104),
             rule("results", Direction::out, Protocol::tcp, "10.50.0.30/32", 2575, 2575),
             rule("ntp", Direction::out, Protocol::udp, "10.50.0.1/32", 123, 123),
             rule("biomed-ping", Direction::in, Protocol::icmp, "10.50.0.0/24"),
             rule("service-range", Direction::in, Protocol::tcp, "10.50.0.0/24", 5000, 5010),
             rule("v6-store", Direction::out, Protocol::tcp, "2001:db8::/64", 104, 104)};
  PolicyDocument doc;
  doc.devices.push_back(d);
  return doc;
}

// Frames of the device (device side) and of peers (network side).
FrameBuilder from_device() {
  return FrameBuilder().eth(kDeviceMac, kGatewayMac);
}
FrameBuilder to_device() {
  return FrameBuilder().eth(kGatewayMac, kDeviceMac);
}

// A TCP segment from the device (out) or from the network (in), with its sequence and
// acknowledgement numbers.
Bytes tcp_out_at(const char* peer, uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq,
                 uint32_t ack, std::string payload = {}) {
  return from_device()
      .ipv4(kDevice, peer)
      .tcp(sport, dport, flags, seq, ack)
      .payload(payload)
      .build();
}
Bytes tcp_in_at(const char* peer, uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq,
                uint32_t ack, std::string payload = {}) {
  return to_device()
      .ipv4(peer, kDevice)
      .tcp(sport, dport, flags, seq, ack)
      .payload(payload)
      .build();
}

// The same with the numbers the tests' connections have: both ends start at 1000, so every
// later segment starts at 1001 and every acknowledgement is 1001 (the engine checks a
// reset's, a FIN's and the SYN-ACK's against them).
uint32_t test_seq(uint8_t flags) {
  return (flags & tcp_flag::syn) != 0 ? 1000 : 1001;
}
uint32_t test_ack(uint8_t flags) {
  return (flags & tcp_flag::ack) != 0 ? 1001 : 0;
}
Bytes tcp_out(const char* peer, uint16_t sport, uint16_t dport, uint8_t flags,
              std::string payload = {}) {
  return tcp_out_at(peer, sport, dport, flags, test_seq(flags), test_ack(flags), payload);
}
Bytes tcp_in(const char* peer, uint16_t sport, uint16_t dport, uint8_t flags,
             std::string payload = {}) {
  return tcp_in_at(peer, sport, dport, flags, test_seq(flags), test_ack(flags), payload);
}

constexpr uint8_t SYN = tcp_flag::syn;
constexpr uint8_t SYNACK = tcp_flag::syn | tcp_flag::ack;
constexpr uint8_t ACK = tcp_flag::ack;
constexpr uint8_t PSHACK = tcp_flag::psh | tcp_flag::ack;
constexpr uint8_t FINACK = tcp_flag::fin | tcp_flag::ack;
constexpr uint8_t RST = tcp_flag::rst;

struct Step {
  Side side;
  Bytes frame;
  Action action;
  DropReason reason;
};
Step dev(Bytes f, Action a = Action::forward, DropReason r = DropReason::none) {
  return {Side::device, std::move(f), a, r};
}
Step net(Bytes f, Action a = Action::forward, DropReason r = DropReason::none) {
  return {Side::network, std::move(f), a, r};
}
Step dev_drop(Bytes f, DropReason r) {
  return dev(std::move(f), Action::drop, r);
}
Step net_drop(Bytes f, DropReason r) {
  return net(std::move(f), Action::drop, r);
}

// The 3-way handshake of the device's connection to pacs:104 from port 40000.
std::vector<Step> store_handshake() {
  return {dev(tcp_out(kPacs, 40000, 104, SYN)), net(tcp_in(kPacs, 104, 40000, SYNACK)),
          dev(tcp_out(kPacs, 40000, 104, ACK))};
}
std::vector<Step> concat(std::vector<Step> a, std::vector<Step> b) {
  for (auto& s : b) a.push_back(std::move(s));
  return a;
}

struct Harness {
  explicit Harness(EngineConfig config = small_config()) : engine(config) {}
  static EngineConfig small_config() {
    EngineConfig c;
    c.workers = 1;
    c.flows_per_worker = 64;
    c.event_ring_size = 256;
    return c;
  }
  void load(const PolicyDocument& doc, uint64_t version = 1) {
    CompileResult r = compile_policy(doc, version, engine.worker_count());
    ASSERT_TRUE(r.errors.empty());
    engine.publish(std::move(r.policy));
  }
  Verdict send(Side side, const Bytes& frame) {
    PacketView view{frame.data(), static_cast<uint32_t>(frame.size()), side};
    Verdict v;
    engine.worker(0).process({&view, 1}, {&v, 1}, now);
    // The test thread is also the control thread: like an idle worker, go offline so
    // that publish() does not wait for this worker's next quiescent report.
    engine.worker(0).go_idle();
    return v;
  }
  void run(const std::vector<Step>& steps) {
    for (size_t i = 0; i < steps.size(); ++i) {
      const Verdict v = send(steps[i].side, steps[i].frame);
      EXPECT_EQ(v.action, steps[i].action) << "step " << i;
      EXPECT_EQ(label(v.reason), label(steps[i].reason)) << "step " << i;
    }
  }
  std::vector<Event> events() {
    std::vector<Event> out(512);
    out.resize(engine.poll_events(out));
    return out;
  }
  Engine engine;
  uint64_t now = 1'000'000'000;
};

struct Case {
  const char* description;
  std::function<PolicyDocument()> policy;
  std::vector<Step> steps;
};

class EnginePacketTable : public ::testing::TestWithParam<Case> {};

TEST_P(EnginePacketTable, Verdicts) {
  Harness h;
  h.load(GetParam().policy());
  h.run(GetParam().steps);
}

const auto kLab = [] { return lab_policy(); };

std::vector<Case> cases() {
  std::vector<Case> c;
  // --- allowlist: direction, protocol, peer, port
  c.push_back({"allowed outbound connection and its replies pass", kLab,
               concat(store_handshake(), {dev(tcp_out(kPacs, 40000, 104, PSHACK, "A-ASSOC")),
                                          net(tcp_in(kPacs, 104, 40000, PSHACK, "A-ASSOC-AC"))})});
  c.push_back({"wrong port is refused",
               kLab,
               {dev_drop(tcp_out(kPacs, 40000, 105, SYN), DropReason::no_matching_rule)}});
  c.push_back({"wrong peer is refused",
               kLab,
               {dev_drop(tcp_out("10.50.0.21", 40000, 104, SYN), DropReason::no_matching_rule)}});
  c.push_back({"outbound rule does not open the device to inbound connections",
               kLab,
               {net_drop(tcp_in(kPacs, 40000, 104, SYN), DropReason::no_matching_rule)}});
  c.push_back({"attacker cannot open any port on the device",
               kLab,
               {net_drop(tcp_in(kAttacker, 5555, 445, SYN), DropReason::no_matching_rule),
                net_drop(tcp_in(kAttacker, 5555, 3389, SYN), DropReason::no_matching_rule),
                net_drop(to_device().ipv4(kAttacker, kDevice).udp(5555, 161).build(),
                         DropReason::no_matching_rule)}});
  c.push_back({"device cannot connect to the attacker",
               kLab,
               {dev_drop(tcp_out(kAttacker, 40000, 4444, SYN), DropReason::no_matching_rule)}});
  c.push_back({"inbound port range: both ends inside, neighbours outside",
               kLab,
               {net(tcp_in(kAttacker, 6000, 5000, SYN)), net(tcp_in(kAttacker, 6001, 5010, SYN)),
                net_drop(tcp_in(kAttacker, 6002, 4999, SYN), DropReason::no_matching_rule),
                net_drop(tcp_in(kAttacker, 6003, 5011, SYN), DropReason::no_matching_rule),
                net_drop(tcp_in(kOutsider, 6004, 5005, SYN), DropReason::no_matching_rule)}});
  c.push_back({"UDP request and reply pass; a reply from another port is a new flow",
               kLab,
               {dev(from_device().ipv4(kDevice, kNtp).udp(40123, 123).build()),
                net(to_device().ipv4(kNtp, kDevice).udp(123, 40123).build()),
                net_drop(to_device().ipv4(kNtp, kDevice).udp(124, 40123).build(),
                         DropReason::no_matching_rule)}});
  c.push_back({"inbound ping from the biomed subnet and its reply pass",
               kLab,
               {net(to_device().ipv4("10.50.0.5", kDevice).icmp_echo_request(7).build()),
                dev(from_device().ipv4(kDevice, "10.50.0.5").icmp_echo_reply(7).build())}});
  c.push_back({"ping from outside the subnet, or by the device, is refused",
               kLab,
               {net_drop(to_device().ipv4(kOutsider, kDevice).icmp_echo_request(7).build(),
                         DropReason::no_matching_rule),
                dev_drop(from_device().ipv4(kDevice, "10.50.0.5").icmp_echo_request(8).build(),
                         DropReason::no_matching_rule)}});
  c.push_back({"unsolicited echo reply and other ICMP types are refused",
               kLab,
               {net_drop(to_device().ipv4("10.50.0.5", kDevice).icmp_echo_reply(9).build(),
                         DropReason::icmp_type_not_allowed),
                net_drop(to_device().ipv4("10.50.0.5", kDevice).icmp(13, 0, Bytes(16)).build(),
                         DropReason::icmp_type_not_allowed)}});
  c.push_back({"echo request from the responder side of an echo flow is refused",
               kLab,
               {net(to_device().ipv4("10.50.0.5", kDevice).icmp_echo_request(7).build()),
                dev_drop(from_device().ipv4(kDevice, "10.50.0.5").icmp_echo_request(7).build(),
                         DropReason::icmp_type_not_allowed)}});
  c.push_back(
      {"IPv6 connection to an allowed peer passes",
       kLab,
       {dev(from_device().ipv6(kDevice6, kPeer6).tcp(40000, 104, SYN).build()),
        net(to_device().ipv6(kPeer6, kDevice6).tcp(104, 40000, SYNACK, 1000, 1001).build())}});
  c.push_back({"IPv6 neighbour discovery from the device's link-local address passes",
               kLab,
               {dev(from_device()
                        .ipv6("fe80::c0:4dff:fe00:10", "ff02::1:ff00:20", 255)
                        .icmp(135, 0, Bytes(20))
                        .build()),
                dev_drop(from_device()
                             .ipv6("fe80::c0:4dff:fe00:10", "ff02::1", 64)
                             .icmp(135, 0, Bytes(20))
                             .build(),
                         DropReason::spoofed_source)}});
  c.push_back({"IPv6 multicast listener reports from the link-local address pass",
               kLab,
               {dev(from_device()
                        .ipv6("fe80::c0:4dff:fe00:10", "ff02::16", 1)
                        .icmp(143, 0, Bytes(4))
                        .build()),
                dev_drop(from_device()
                             .ipv6("fe80::c0:4dff:fe00:10", "ff02::16", 64)
                             .icmp(143, 0, Bytes(4))
                             .build(),
                         DropReason::spoofed_source),
                dev_drop(from_device()
                             .ipv6("fe80::c0:4dff:fe00:10", "ff02::2", 255)
                             .icmp(133, 0, Bytes(4))
                             .build(),
                         DropReason::spoofed_source)}});
  // From the network a device gets neighbour discovery and the routers' listener queries;
  // other hosts' listener reports and dones are for the routers (the soak caught one from
  // the attacker reaching the modality).
  {
    const Bytes router_alert = {5, 2, 0, 0, 1, 0};  // hop-by-hop option: MLD (RFC 2711)
    auto mld_from_lan = [&](uint8_t type, const std::string& dst) {
      return FrameBuilder()
          .eth("02:c0:4d:00:00:66", "33:33:00:00:00:16")
          .ipv6("fe80::c0:4dff:fe00:66", dst, 1)
          .ipv6_extension(0, router_alert)
          .icmp(type, 0, Bytes(20))
          .build();
    };
    c.push_back({"from the network, listener queries and neighbour discovery pass, reports do not",
                 kLab,
                 {net(mld_from_lan(130, "ff02::1")),
                  net(FrameBuilder()
                          .eth(kGatewayMac, "33:33:ff:00:00:10")
                          .ipv6("fe80::1", "ff02::1:ff00:10", 255)
                          .icmp(135, 0, Bytes(20))
                          .build()),
                  net_drop(mld_from_lan(143, "ff02::16"), DropReason::not_for_a_device),
                  net_drop(mld_from_lan(131, "ff02::1:3"), DropReason::not_for_a_device),
                  net_drop(mld_from_lan(132, "ff02::2"), DropReason::not_for_a_device)}});
  }
  // --- identity: anti-spoofing and unknown devices
  c.push_back({"device MAC with a foreign source IP is spoofing",
               kLab,
               {dev_drop(from_device().ipv4("10.50.0.99", kPacs).tcp(40000, 104, SYN).build(),
                         DropReason::spoofed_source)}});
  c.push_back({"unknown MAC on the device port is dropped",
               kLab,
               {dev_drop(FrameBuilder()
                             .eth("02:c0:4d:00:00:99", kGatewayMac)
                             .ipv4("10.50.0.99", kPacs)
                             .tcp(40000, 104, SYN)
                             .build(),
                         DropReason::unknown_device)}});
  c.push_back({"traffic from the network for an address no device owns is dropped",
               kLab,
               {net_drop(to_device().ipv4(kPacs, "10.50.0.11").tcp(104, 40000, SYN).build(),
                         DropReason::not_for_a_device)}});
  c.push_back(
      {"ARP for the device's own address passes, claiming another is spoofing",
       kLab,
       {dev(from_device().arp(1, kDeviceMac, kDevice, "00:00:00:00:00:00", kPacs).build()),
        dev(from_device().arp(1, kDeviceMac, "0.0.0.0", "00:00:00:00:00:00", kDevice).build()),
        dev_drop(from_device().arp(2, kDeviceMac, kPacs, kGatewayMac, kAttacker).build(),
                 DropReason::spoofed_arp),
        dev_drop(from_device().arp(2, "02:c0:4d:00:00:77", kDevice, kGatewayMac, kPacs).build(),
                 DropReason::spoofed_arp)}});
  c.push_back({"ARP from the network passes only when it is about a device",
               kLab,
               {net(FrameBuilder()
                        .eth(kGatewayMac, "ff:ff:ff:ff:ff:ff")
                        .arp(1, kGatewayMac, kPacs, "00:00:00:00:00:00", kDevice)
                        .build()),
                net_drop(FrameBuilder()
                             .eth(kGatewayMac, "ff:ff:ff:ff:ff:ff")
                             .arp(1, kGatewayMac, kPacs, "00:00:00:00:00:00", kRis)
                             .build(),
                         DropReason::not_for_a_device)}});
  // --- TCP state machine
  c.push_back({"mid-stream segment without a connection is refused",
               kLab,
               {dev_drop(tcp_out(kPacs, 40000, 104, ACK), DropReason::tcp_no_flow),
                net_drop(tcp_in(kPacs, 104, 40000, SYNACK), DropReason::tcp_no_flow)}});
  c.push_back({"SYN-ACK from the initiator is invalid",
               kLab,
               {dev(tcp_out(kPacs, 40000, 104, SYN)),
                dev_drop(tcp_out(kPacs, 40000, 104, SYNACK), DropReason::tcp_invalid_state)}});
  c.push_back({"data before the handshake completes is invalid",
               kLab,
               {dev(tcp_out(kPacs, 40000, 104, SYN)),
                net_drop(tcp_in(kPacs, 104, 40000, PSHACK, "x"), DropReason::tcp_invalid_state)}});
  c.push_back({"SYN retransmission passes",
               kLab,
               {dev(tcp_out(kPacs, 40000, 104, SYN)), dev(tcp_out(kPacs, 40000, 104, SYN))}});
  c.push_back(
      {"a refused connection's RST passes, then the flow is closed to data",
       kLab,
       {dev(tcp_out(kPacs, 40000, 104, SYN)), net(tcp_in(kPacs, 104, 40000, RST | ACK)),
        dev_drop(tcp_out(kPacs, 40000, 104, PSHACK, "late"), DropReason::tcp_invalid_state)}});
  c.push_back({"SYN inside an established connection is invalid", kLab,
               concat(store_handshake(),
                      {net_drop(tcp_in(kPacs, 104, 40000, SYN), DropReason::tcp_invalid_state)})});
  c.push_back(
      {"orderly close, late ACK passes, port reuse is judged afresh", kLab,
       concat(store_handshake(),
              {dev(tcp_out(kPacs, 40000, 104, FINACK)), net(tcp_in(kPacs, 104, 40000, FINACK)),
               dev(tcp_out(kPacs, 40000, 104, ACK)), dev(tcp_out(kPacs, 40000, 104, ACK)),
               dev_drop(tcp_out(kPacs, 40000, 104, PSHACK, "x"), DropReason::tcp_invalid_state),
               dev(tcp_out(kPacs, 40000, 104, SYN)), net(tcp_in(kPacs, 104, 40000, SYNACK))})});
  c.push_back({"half-closed connection still carries data the other way", kLab,
               concat(store_handshake(), {dev(tcp_out(kPacs, 40000, 104, FINACK)),
                                          net(tcp_in(kPacs, 104, 40000, PSHACK, "more"))})});
  // --- TCP sequence numbers: what a host on the LAN forging pacs's address can do
  c.push_back(
      {"a forged reset outside the window is dropped and the connection goes on", kLab,
       concat(store_handshake(), {net_drop(tcp_in_at(kPacs, 104, 40000, RST, 900'000'000, 0),
                                           DropReason::tcp_out_of_window),
                                  net_drop(tcp_in_at(kPacs, 104, 40000, RST | ACK, 1001 - 1, 1001),
                                           DropReason::tcp_out_of_window),
                                  dev(tcp_out(kPacs, 40000, 104, PSHACK, "still open")),
                                  net(tcp_in(kPacs, 104, 40000, PSHACK, "and answered"))})});
  c.push_back({"a reset inside the window ends the connection", kLab,
               concat(store_handshake(), {net(tcp_in_at(kPacs, 104, 40000, RST, 1001 + 1000, 0)),
                                          dev_drop(tcp_out(kPacs, 40000, 104, PSHACK, "late"),
                                                   DropReason::tcp_invalid_state)})});
  c.push_back(
      {"a refusal must acknowledge the SYN",
       kLab,
       {dev(tcp_out(kPacs, 40000, 104, SYN)),
        net_drop(tcp_in_at(kPacs, 104, 40000, RST | ACK, 0, 77), DropReason::tcp_out_of_window),
        net_drop(tcp_in_at(kPacs, 104, 40000, RST, 0, 0), DropReason::tcp_out_of_window),
        net(tcp_in_at(kPacs, 104, 40000, RST | ACK, 0, 1001))}});
  c.push_back(
      {"a SYN-ACK must acknowledge the SYN",
       kLab,
       {dev(tcp_out(kPacs, 40000, 104, SYN)),
        net_drop(tcp_in_at(kPacs, 104, 40000, SYNACK, 5000, 77), DropReason::tcp_out_of_window),
        net(tcp_in(kPacs, 104, 40000, SYNACK)), dev(tcp_out(kPacs, 40000, 104, ACK))}});
  c.push_back(
      {"the answer to a SYN with data may acknowledge the data (TCP Fast Open)",
       kLab,
       {dev(tcp_out_at(kPacs, 40000, 104, SYN, 1000, 0, "fast open")),
        net_drop(tcp_in_at(kPacs, 104, 40000, SYNACK, 5000, 1011), DropReason::tcp_out_of_window),
        net(tcp_in_at(kPacs, 104, 40000, SYNACK, 5000, 1010)),
        net_drop(tcp_in_at(kPacs, 104, 40000, SYNACK, 5000, 1011), DropReason::tcp_out_of_window),
        net(tcp_in_at(kPacs, 104, 40000, SYNACK, 5000, 1010))}});
  c.push_back({"the answer to a SYN with data may acknowledge the SYN alone (cookie refused)",
               kLab,
               {dev(tcp_out_at(kPacs, 40000, 104, SYN, 1000, 0, "fast open")),
                net(tcp_in_at(kPacs, 104, 40000, SYNACK, 5000, 1001)),
                dev(tcp_out_at(kPacs, 40000, 104, PSHACK, 1001, 5001, "fast open"))}});
  c.push_back(
      {"a forged FIN outside the window is dropped and the connection stays established", kLab,
       concat(store_handshake(),
              {net_drop(tcp_in_at(kPacs, 104, 40000, FINACK, 3'000'000'000u, 1001),
                        DropReason::tcp_out_of_window),
               // Both FINs and the last ACK would close it: only the real ones count.
               dev(tcp_out(kPacs, 40000, 104, FINACK)), dev(tcp_out(kPacs, 40000, 104, ACK)),
               net(tcp_in(kPacs, 104, 40000, PSHACK, "the connection is only half closed"))})});
  c.push_back({"a forged segment far ahead does not widen the window", kLab,
               concat(store_handshake(),
                      {// Data out of the window is the receiver's to refuse; it passes...
                       net(tcp_in_at(kPacs, 104, 40000, ACK, 1001 + 10'000'000, 1001, "forged")),
                       // ...but a reset there still does not count.
                       net_drop(tcp_in_at(kPacs, 104, 40000, RST, 1001 + 10'000'000 + 6, 0),
                                DropReason::tcp_out_of_window)})});
  {
    // Both ends offer window scale 7 (NOP, window scale); the device then advertises
    // 1024 << 7 = 131072 bytes. pacs's segments up to 100,000 bytes before arrive after a
    // loss between pacs and the appliance: inside that window, so the window follows them
    // and pacs's FIN there counts.
    const Bytes scaled_syn = from_device()
                                 .ipv4(kDevice, kPacs)
                                 .tcp(40000, 104, SYN, 1000, 0)
                                 .tcp_options({1, 3, 3, 7})
                                 .build();
    const Bytes scaled_synack = to_device()
                                    .ipv4(kPacs, kDevice)
                                    .tcp(104, 40000, SYNACK, 1000, 1001)
                                    .tcp_options({1, 3, 3, 7})
                                    .build();
    const Bytes plain_synack = tcp_in(kPacs, 104, 40000, SYNACK);
    const Bytes device_ack = from_device()
                                 .ipv4(kDevice, kPacs)
                                 .tcp(40000, 104, ACK, 1001, 1001)
                                 .tcp_window(1024)
                                 .build();
    const Bytes after_loss =
        tcp_in_at(kPacs, 104, 40000, PSHACK, 1001 + 100'000, 1001, "after loss");
    const Bytes fin_after_loss = tcp_in_at(kPacs, 104, 40000, FINACK, 1001 + 100'010, 1001);
    c.push_back({"with window scaling the window reaches as far as the receiver's scaled window",
                 kLab,
                 {dev(scaled_syn), net(scaled_synack), dev(device_ack), net(after_loss),
                  net(fin_after_loss)}});
    c.push_back({"a window scale offered by one end alone scales nothing",
                 kLab,
                 {dev(scaled_syn), net(plain_synack), dev(device_ack), net(after_loss),
                  net_drop(fin_after_loss, DropReason::tcp_out_of_window)}});
  }
  c.push_back(
      {"the window follows the data and its acknowledgements", kLab,
       concat(store_handshake(),
              {dev(tcp_out_at(kPacs, 40000, 104, PSHACK, 1001, 1001, std::string(100, 'd'))),
               net(tcp_in_at(kPacs, 104, 40000, ACK, 1001, 1101)),
               // Below what pacs acknowledged: pacs itself would ignore it.
               dev_drop(tcp_out_at(kPacs, 40000, 104, RST, 1001, 0), DropReason::tcp_out_of_window),
               dev(tcp_out_at(kPacs, 40000, 104, RST, 1101, 0))})});
  c.push_back({"monitor mode forwards a forged reset and keeps the connection",
               [] { return lab_policy(DeviceMode::monitor); },
               concat(store_handshake(), {net(tcp_in_at(kPacs, 104, 40000, RST, 900'000'000, 0),
                                              Action::forward, DropReason::tcp_out_of_window),
                                          dev(tcp_out(kPacs, 40000, 104, PSHACK, "still open"))})});
  // --- malformed and fragments: dropped whatever the mode
  c.push_back(
      {"IPv4 fragment is dropped, never passed uninspected",
       kLab,
       {dev_drop(
            from_device().ipv4(kDevice, kPacs).ipv4_fragment(0, true).tcp(40000, 104, SYN).build(),
            DropReason::ip_fragment),
        net_drop(to_device().ipv4(kPacs, kDevice).ipv4_fragment(8, false).udp(1, 2).build(),
                 DropReason::ip_fragment)}});
  c.push_back(
      {"IPv6 fragment is dropped",
       kLab,
       {dev_drop(
           from_device().ipv6(kDevice6, kPeer6).ipv6_fragment(0, true).tcp(40000, 104, SYN).build(),
           DropReason::ip_fragment)}});
  c.push_back(
      {"truncated frame is dropped with the decoder's reason",
       kLab,
       {dev_drop(from_device().ipv4(kDevice, kPacs).tcp(40000, 104, SYN).truncate_to(40).build(),
                 DropReason::bad_ipv4_length)}});
  c.push_back({"impossible TCP flags are dropped",
               kLab,
               {dev_drop(tcp_out(kPacs, 40000, 104, tcp_flag::syn | tcp_flag::fin),
                         DropReason::bad_tcp_flags)}});
  c.push_back({"other IP protocols are refused",
               kLab,
               {dev_drop(from_device().ipv4(kDevice, kPacs).ip_protocol(47, Bytes(8)).build(),
                         DropReason::unsupported_ip_protocol)}});
  // --- ICMP errors
  c.push_back(
      {"ICMP error about an open flow passes; about anything else it is refused",
       kLab,
       {dev(from_device().ipv4(kDevice, kNtp).udp(40123, 123).build()),
        net(to_device()
                .ipv4(kNtp, kDevice)
                .icmp_error(3, 3, from_device().ipv4(kDevice, kNtp).udp(40123, 123).build())
                .build()),
        net_drop(to_device()
                     .ipv4(kNtp, kDevice)
                     .icmp_error(3, 3, from_device().ipv4(kDevice, kNtp).udp(40124, 123).build())
                     .build(),
                 DropReason::icmp_error_unrelated)}});
  c.push_back(
      {"ICMP error about a TCP segment passes only when it quotes one in flight", kLab,
       concat(
           store_handshake(),
           {dev(tcp_out_at(kPacs, 40000, 104, PSHACK, 1001, 1001, std::string(100, 'd'))),
            // Fragmentation needed, quoting the segment just sent.
            net(to_device()
                    .ipv4(kNtp, kDevice)
                    .icmp_error(3, 4, tcp_out_at(kPacs, 40000, 104, PSHACK, 1001, 1001))
                    .build()),
            // The same error forged without the sequence number.
            net_drop(to_device()
                         .ipv4(kNtp, kDevice)
                         .icmp_error(3, 1, tcp_out_at(kPacs, 40000, 104, PSHACK, 7'000'000, 1001))
                         .build(),
                     DropReason::icmp_error_unrelated),
            // Once pacs acknowledged the segment, an error about it is stale.
            net(tcp_in_at(kPacs, 104, 40000, ACK, 1001, 1101)),
            net_drop(to_device()
                         .ipv4(kNtp, kDevice)
                         .icmp_error(3, 4, tcp_out_at(kPacs, 40000, 104, PSHACK, 1001, 1001))
                         .build(),
                     DropReason::icmp_error_unrelated)})});
  c.push_back({"ICMP error about a SYN passes",
               kLab,
               {dev(tcp_out(kPacs, 40000, 104, SYN)),
                net(to_device()
                        .ipv4(kNtp, kDevice)
                        .icmp_error(3, 1, tcp_out(kPacs, 40000, 104, SYN))
                        .build())}});
  // --- VLAN: the outer tag is part of the flow
  c.push_back(
      {"tagged flow's reply must come on the same VLAN",
       kLab,
       {dev(from_device().vlan(10).ipv4(kDevice, kPacs).tcp(40000, 104, SYN).build()),
        net(to_device().vlan(10).ipv4(kPacs, kDevice).tcp(104, 40000, SYNACK, 1000, 1001).build()),
        net_drop(to_device().vlan(20).ipv4(kPacs, kDevice).tcp(104, 40000, SYNACK).build(),
                 DropReason::tcp_no_flow)}});
  // --- modes
  c.push_back(
      {"monitor mode forwards what it would drop",
       [] { return lab_policy(DeviceMode::monitor); },
       {dev(tcp_out(kAttacker, 40000, 4444, SYN), Action::forward, DropReason::no_matching_rule),
        net(tcp_in(kAttacker, 4444, 40000, SYNACK)),
        dev(from_device().ipv4("10.50.0.99", kPacs).tcp(1, 104, SYN).build(), Action::forward,
            DropReason::spoofed_source),
        dev_drop(from_device().ipv4(kDevice, kPacs).ipv4_fragment(8, false).udp(1, 2).build(),
                 DropReason::ip_fragment)}});
  c.push_back(
      {"learn mode forwards new flows",
       [] { return lab_policy(DeviceMode::learn); },
       {dev(tcp_out(kAttacker, 40000, 4444, SYN), Action::forward, DropReason::no_matching_rule),
        dev(tcp_out(kPacs, 40001, 104, SYN))}});
  c.push_back({"unknown devices may be forwarded by policy",
               [] {
                 auto p = lab_policy();
                 p.unknown_devices = UnknownDevices::forward;
                 return p;
               },
               {dev(FrameBuilder()
                        .eth("02:c0:4d:00:00:99", kGatewayMac)
                        .ipv4("10.50.0.99", kPacs)
                        .tcp(1, 2, SYN)
                        .build()),
                net(to_device().ipv4(kPacs, "10.50.0.99").tcp(2, 1, SYNACK).build())}});
  c.push_back({"deny_action reset answers a refused TCP connection with a reset",
               [] {
                 auto p = lab_policy();
                 p.devices[0].deny_action = DenyAction::reset;
                 return p;
               },
               {dev(tcp_out(kAttacker, 40000, 4444, SYN), Action::drop_and_reset,
                    DropReason::no_matching_rule),
                dev_drop(from_device().ipv4(kDevice, kAttacker).udp(1, 2).build(),
                         DropReason::no_matching_rule)}});
  c.push_back(
      {"deny_action reset answers segments of a connection it does not know",
       [] {
         auto p = lab_policy();
         p.devices[0].deny_action = DenyAction::reset;
         return p;
       },
       // An allowed connection whose flow is gone (a crash): both ends are told.
       {dev(tcp_out(kPacs, 40000, 104, PSHACK, "x"), Action::drop_and_reset,
            DropReason::tcp_no_flow),
        net(tcp_in(kPacs, 104, 40000, ACK), Action::drop_and_reset, DropReason::tcp_no_flow),
        // A reset is never answered with one.
        dev_drop(tcp_out(kPacs, 40000, 104, RST), DropReason::tcp_no_flow)}});
  c.push_back({"deny_action drop drops segments of a connection it does not know",
               kLab,
               {dev_drop(tcp_out(kPacs, 40000, 104, PSHACK, "x"), DropReason::tcp_no_flow),
                net_drop(tcp_in(kPacs, 104, 40000, ACK), DropReason::tcp_no_flow)}});
  return c;
}

INSTANTIATE_TEST_SUITE_P(Cases, EnginePacketTable, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& param) {
                           std::string name;
                           for (const char* p = param.param.description; *p; ++p) {
                             name += std::isalnum(static_cast<unsigned char>(*p)) ? *p : '_';
                           }
                           return name + "_" + std::to_string(param.index);
                         });

TEST(Engine, NoPolicyDropsEverything) {
  Harness h;
  const Verdict v = h.send(Side::device, tcp_out(kPacs, 40000, 104, SYN));
  EXPECT_EQ(v.action, Action::drop);
  EXPECT_EQ(v.reason, DropReason::no_policy);
}

// process() classifies a stage's likely new flows together (classify_new_flows): a burst
// must get the verdicts its packets get one at a time, with new flows of every kind mixed
// with repeats, answers, refusals, a spoofed source and an unknown device.
TEST(Engine, ABurstGetsTheVerdictsOfItsPacketsOneAtATime) {
  const std::vector<Step> steps = {
      dev(tcp_out(kPacs, 40000, 104, SYN)),
      dev(tcp_out(kPacs, 40000, 104, SYN)),  // retransmitted in the same burst
      net(tcp_in(kPacs, 104, 40000, SYNACK)),
      dev(tcp_out(kPacs, 40001, 105, SYN)),
      dev(tcp_out(kRis, 40002, 2575, SYN)),
      net(tcp_in(kAttacker, 6000, 5005, SYN)),
      net(tcp_in(kOutsider, 6001, 5005, SYN)),
      net(tcp_in(kAttacker, 6002, 22, SYN)),
      dev(from_device().ipv4(kDevice, kNtp).udp(40003, 123).payload("ntp").build()),
      dev(from_device().ipv4(kDevice, kNtp).udp(40004, 124).payload("ntp").build()),
      net(to_device().ipv4(kAttacker, kDevice).icmp_echo_request(7).build()),
      net(to_device().ipv4(kOutsider, kDevice).icmp_echo_request(8).build()),
      dev(from_device().ipv4(kPacs, kRis).tcp(40005, 2575, SYN).build()),       // spoofed source
      net(to_device().ipv4(kPacs, "10.50.0.99").tcp(104, 40006, SYN).build()),  // no device
      dev(from_device().ipv6(kDevice6, kPeer6).tcp(40007, 104, SYN).build()),
      dev(from_device().ipv6(kDevice6, kPeer6).tcp(40008, 105, SYN).build()),
  };
  Harness one_at_a_time;
  one_at_a_time.load(lab_policy());
  std::vector<Verdict> expected;
  for (const Step& step : steps) expected.push_back(one_at_a_time.send(step.side, step.frame));

  Harness burst;
  burst.load(lab_policy());
  std::vector<PacketView> views;
  for (const Step& step : steps) {
    views.push_back({step.frame.data(), static_cast<uint32_t>(step.frame.size()), step.side});
  }
  std::vector<Verdict> verdicts(views.size());
  burst.engine.worker(0).process(views, verdicts, burst.now);
  burst.engine.worker(0).go_idle();
  size_t forwarded = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(verdicts[i].action, expected[i].action) << "packet " << i;
    EXPECT_EQ(label(verdicts[i].reason), label(expected[i].reason)) << "packet " << i;
    forwarded += expected[i].action == Action::forward;
  }
  // Both kinds of verdict are in the burst.
  EXPECT_GE(forwarded, 6u);
  EXPECT_GE(steps.size() - forwarded, 6u);
}

TEST(Engine, TighterPolicyCutsLiveConnection) {
  Harness h;
  h.load(lab_policy(), 1);
  h.run(store_handshake());
  auto tightened = lab_policy();
  tightened.devices[0].rules.erase(tightened.devices[0].rules.begin());  // no store-to-pacs
  h.load(tightened, 2);
  h.run({net_drop(tcp_in(kPacs, 104, 40000, PSHACK, "x"), DropReason::policy_revoked),
         // The flow is gone: its next segment has no connection.
         dev_drop(tcp_out(kPacs, 40000, 104, ACK), DropReason::tcp_no_flow)});
}

TEST(Engine, UnchangedRuleKeepsLiveConnectionAcrossPolicies) {
  Harness h;
  h.load(lab_policy(), 1);
  h.run(store_handshake());
  auto other = lab_policy();
  other.devices[0].rules.pop_back();  // an unrelated change
  h.load(other, 2);
  h.run({net(tcp_in(kPacs, 104, 40000, PSHACK, "x")), dev(tcp_out(kPacs, 40000, 104, ACK))});
}

TEST(Engine, RevokedConnectionIsResetWhenTheDeviceSaysSo) {
  Harness h;
  h.load(lab_policy(), 1);
  h.run(store_handshake());
  auto tightened = lab_policy();
  tightened.devices[0].rules.erase(tightened.devices[0].rules.begin());
  tightened.devices[0].deny_action = DenyAction::reset;
  h.load(tightened, 2);
  h.run({dev(tcp_out(kPacs, 40000, 104, PSHACK, "x"), Action::drop_and_reset,
             DropReason::policy_revoked)});
}

TEST(Engine, MonitorToEnforceCutsFlowsAdmittedOnlyByMonitorMode) {
  Harness h;
  h.load(lab_policy(DeviceMode::monitor), 1);
  h.run({dev(tcp_out(kAttacker, 40000, 4444, SYN), Action::forward, DropReason::no_matching_rule),
         net(tcp_in(kAttacker, 4444, 40000, SYNACK))});
  h.load(lab_policy(DeviceMode::enforce), 2);
  h.run({dev_drop(tcp_out(kAttacker, 40000, 4444, ACK), DropReason::policy_revoked)});
}

// A would-drop in monitor mode is forwarded once and counted once, even when the packet
// goes on through the flow's state machine after it.
TEST(Engine, MonitorModeCountsAForwardedPacketOnce) {
  Harness h;
  h.load(lab_policy(DeviceMode::monitor), 1);
  h.run(store_handshake());
  // A SYN on an established connection is an invalid state: reported, forwarded.
  h.run({dev(tcp_out(kPacs, 40000, 104, SYN), Action::forward, DropReason::tcp_invalid_state),
         dev(tcp_out(kPacs, 40000, 104, PSHACK, "x"))});
  const CounterSnapshot s = h.engine.read_counters();
  EXPECT_EQ(s.forwarded, 5u);
  const DeviceTotals& ct = s.devices.at("ct-1");
  EXPECT_EQ(ct.forwarded_packets, 5u);
  EXPECT_EQ(ct.would_drop[static_cast<size_t>(DropReason::tcp_invalid_state)], 1u);
}

TEST(Engine, FlowsExpireAfterTheirTimeout) {
  Harness h;
  h.load(lab_policy());
  h.run(store_handshake());
  // Expiry times are kept in whole grains, rounded up (FlowTable::touch).
  h.now += h.engine.config().timeouts.tcp_established_ns + FlowTable::kExpiryGrain;
  h.run({dev_drop(tcp_out(kPacs, 40000, 104, PSHACK, "x"), DropReason::tcp_no_flow)});
}

TEST(Engine, FullTableProtectsEstablishedFlows) {
  EngineConfig config = Harness::small_config();
  config.flows_per_worker = 4;
  Harness h(config);
  h.load(lab_policy());
  for (uint16_t port = 40000; port < 40004; ++port) {
    h.run({dev(tcp_out(kPacs, port, 104, SYN)), net(tcp_in(kPacs, 104, port, SYNACK)),
           dev(tcp_out(kPacs, port, 104, ACK))});
  }
  // A flood of new connections cannot displace the four established ones.
  for (uint16_t port = 6000; port < 6100; ++port) {
    h.run({net_drop(tcp_in(kAttacker, port, 5000, SYN), DropReason::flow_table_full)});
  }
  for (uint16_t port = 40000; port < 40004; ++port) {
    h.run({net(tcp_in(kPacs, 104, port, PSHACK, "still here"))});
  }
  // Once one closes, new flows get its slot, and half-open ones are evicted by newer ones.
  h.run({dev(tcp_out(kPacs, 40000, 104, RST))});
  h.run({net(tcp_in(kAttacker, 7000, 5000, SYN)), net(tcp_in(kAttacker, 7001, 5000, SYN))});
  h.run({net_drop(tcp_in(kAttacker, 7000, 5000, ACK), DropReason::tcp_no_flow)});
  // The counters say so: two evictions (7000 pushed out the reset flow, 7001 pushed out
  // 7000), a full table, and the 100 flood SYNs refused.
  const CounterSnapshot s = h.engine.read_counters();
  EXPECT_EQ(s.flows_evicted, 2u);
  EXPECT_EQ(s.flows_active, 4u);
  EXPECT_EQ(s.dropped[static_cast<size_t>(DropReason::flow_table_full)], 100u);
}

TEST(Engine, EventsNameDeviceRuleAndReason) {
  Harness h;
  h.load(lab_policy(DeviceMode::learn), 42);
  h.run({dev(tcp_out(kPacs, 40000, 104, SYN))});
  auto events = h.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, EventKind::flow_observed);
  EXPECT_STREQ(events[0].device, "ct-1");
  EXPECT_STREQ(events[0].rule, "store-to-pacs");
  EXPECT_EQ(events[0].policy_version, 42u);
  EXPECT_EQ(events[0].src_ip, *IpAddress::parse(kDevice));
  EXPECT_EQ(events[0].dst_port, 104);

  h.load(lab_policy(DeviceMode::enforce), 43);
  h.run({net_drop(tcp_in(kAttacker, 5555, 445, SYN), DropReason::no_matching_rule)});
  events = h.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, EventKind::drop);
  EXPECT_EQ(events[0].reason, DropReason::no_matching_rule);
  EXPECT_EQ(events[0].ingress, Side::network);
  EXPECT_EQ(events[0].src_ip, *IpAddress::parse(kAttacker));
  EXPECT_STREQ(events[0].rule, "");
}

TEST(Engine, FlowRecordsReportEveryAllowedNewFlowWhenAskedFor) {
  for (const bool record : {false, true}) {
    EngineConfig config = Harness::small_config();
    config.record_flows = record;
    Harness h(config);
    h.load(lab_policy(DeviceMode::enforce), 7);
    h.run({dev(tcp_out(kPacs, 40000, 104, SYN))});
    h.run({net(tcp_in(kPacs, 104, 40000, SYNACK))});  // same flow: no second record
    h.run({net_drop(tcp_in(kAttacker, 5555, 445, SYN), DropReason::no_matching_rule)});
    const auto events = h.events();
    ASSERT_EQ(events.size(), record ? 2u : 1u) << "record_flows=" << record;
    if (record) {
      EXPECT_EQ(events[0].kind, EventKind::flow_observed);
      EXPECT_EQ(events[0].reason, DropReason::none);
      EXPECT_STREQ(events[0].rule, "store-to-pacs");
      EXPECT_EQ(events[0].dir, Direction::out);
    }
    EXPECT_EQ(events.back().kind, EventKind::drop);
  }
}

TEST(Engine, MonitorModeRecordsOneEventPerRefusedFlow) {
  Harness h;
  h.load(lab_policy(DeviceMode::monitor));
  h.run({dev(tcp_out(kAttacker, 40000, 4444, SYN), Action::forward, DropReason::no_matching_rule),
         net(tcp_in(kAttacker, 4444, 40000, SYNACK)), dev(tcp_out(kAttacker, 40000, 4444, ACK))});
  auto events = h.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, EventKind::would_drop);
  EXPECT_EQ(events[0].reason, DropReason::no_matching_rule);
}

TEST(Engine, EventRateIsBoundedAndCounted) {
  EngineConfig config = Harness::small_config();
  config.events_per_second = 10;
  Harness h(config);
  h.load(lab_policy());
  for (uint16_t port = 1; port <= 50; ++port) {
    h.run({net_drop(tcp_in(kAttacker, port, 445, SYN), DropReason::no_matching_rule)});
  }
  EXPECT_EQ(h.events().size(), 10u);
  EXPECT_EQ(h.engine.read_counters().events_suppressed, 40u);
  h.now += 1'000'000'000;  // a second later the bucket is full again
  h.run({net_drop(tcp_in(kAttacker, 99, 445, SYN), DropReason::no_matching_rule)});
  EXPECT_EQ(h.events().size(), 1u);
}

TEST(Engine, CountersByDeviceAndReasonSurvivePolicyChanges) {
  Harness h;
  h.load(lab_policy(), 1);
  h.run(store_handshake());
  h.run({net_drop(tcp_in(kAttacker, 1, 445, SYN), DropReason::no_matching_rule),
         dev_drop(from_device().ipv4("10.50.0.99", kPacs).tcp(1, 104, SYN).build(),
                  DropReason::spoofed_source)});
  h.load(lab_policy(), 2);
  h.run({net_drop(tcp_in(kAttacker, 2, 445, SYN), DropReason::no_matching_rule)});
  const CounterSnapshot s = h.engine.read_counters();
  EXPECT_EQ(s.packets, 6u);
  EXPECT_EQ(s.forwarded, 3u);
  EXPECT_EQ(s.dropped[static_cast<size_t>(DropReason::no_matching_rule)], 2u);
  const DeviceTotals& ct = s.devices.at("ct-1");
  EXPECT_EQ(ct.forwarded_packets, 3u);
  EXPECT_EQ(ct.new_flows, 1u);
  EXPECT_EQ(ct.dropped[static_cast<size_t>(DropReason::no_matching_rule)], 2u);
  EXPECT_EQ(ct.dropped[static_cast<size_t>(DropReason::spoofed_source)], 1u);
}

// A second device on the same segment, with rules like the first one's.
constexpr const char* kUltrasoundMac = "02:c0:4d:00:00:11";
constexpr const char* kUltrasound = "10.50.0.11";
Device ultrasound() {
  Device d = lab_policy().devices[0];
  d.name = "us-1";
  d.mac = *MacAddress::parse(kUltrasoundMac);
  d.ips = {*IpAddress::parse(kUltrasound)};
  return d;
}

// A packet of a known flow takes its device from the flow (judge_ip) only when it comes
// from that device's MAC: the same flow key from another device's MAC, or from an unknown
// one, is judged by the full lookup.
TEST(Engine, KnownFlowKeyFromAnotherMacIsStillSpoofing) {
  Harness h;
  PolicyDocument doc = lab_policy();
  doc.devices.push_back(ultrasound());
  h.load(doc);
  h.run(store_handshake());
  const Bytes from_ultrasound = FrameBuilder()
                                    .eth(kUltrasoundMac, kGatewayMac)
                                    .ipv4(kDevice, kPacs)
                                    .tcp(40000, 104, PSHACK)
                                    .payload("x")
                                    .build();
  const Bytes from_unknown = FrameBuilder()
                                 .eth("02:00:00:00:00:99", kGatewayMac)
                                 .ipv4(kDevice, kPacs)
                                 .tcp(40000, 104, PSHACK)
                                 .payload("x")
                                 .build();
  h.run({dev_drop(from_ultrasound, DropReason::spoofed_source),
         dev_drop(from_unknown, DropReason::unknown_device),
         dev(tcp_out(kPacs, 40000, 104, PSHACK, "y"))});
  const CounterSnapshot s = h.engine.read_counters();
  EXPECT_EQ(s.devices.at("us-1").dropped[static_cast<size_t>(DropReason::spoofed_source)], 1u);
  EXPECT_EQ(s.devices.at("us-1").forwarded_packets, 0u);
  EXPECT_EQ(s.devices.at("ct-1").forwarded_packets, 4u);
}

// Device indices change when a policy reorders its devices: a flow admitted under the old
// policy is re-checked under the new one and from then on names its device's new index.
TEST(Engine, KnownFlowFollowsItsDeviceWhenAPolicyReordersDevices) {
  Harness h;
  PolicyDocument first = lab_policy();
  first.devices.push_back(ultrasound());
  h.load(first, 1);
  h.run(store_handshake());
  PolicyDocument reordered;
  reordered.devices = {ultrasound(), lab_policy().devices[0]};
  h.load(reordered, 2);
  h.run({net(tcp_in(kPacs, 104, 40000, PSHACK, "x")), dev(tcp_out(kPacs, 40000, 104, ACK)),
         dev_drop(FrameBuilder()
                      .eth(kUltrasoundMac, kGatewayMac)
                      .ipv4(kDevice, kPacs)
                      .tcp(40000, 104, ACK)
                      .build(),
                  DropReason::spoofed_source)});
  const CounterSnapshot s = h.engine.read_counters();
  EXPECT_EQ(s.devices.at("ct-1").forwarded_packets, 5u);
  EXPECT_EQ(s.devices.at("us-1").forwarded_packets, 0u);
  EXPECT_EQ(s.devices.at("us-1").dropped[static_cast<size_t>(DropReason::spoofed_source)], 1u);
}

// --- flows across a restart (Engine::save_flows, Engine::restore_flows)

constexpr std::string_view kPairs = "net_af_packet0:net_af_packet1";
constexpr uint64_t kWallAtSave = 1'800'000'000'000'000'000;  // 2027-01-15, in ns
constexpr uint64_t kSecond = 1'000'000'000;

// An engine whose table holds the device's connection to pacs:104 (established) and its
// NTP query (unanswered UDP), saved as at an orderly shutdown.
std::string saved_flows(const PolicyDocument& policy = lab_policy()) {
  Harness h;
  h.load(policy);
  h.run(store_handshake());
  h.run({dev(from_device().ipv4(kDevice, kNtp).udp(40123, 123).build())});
  return h.engine.save_flows(kPairs, h.now, kWallAtSave).bytes;
}

// The packet of the connection to pacs that a restart without its flow would cut.
Step pacs_answers() {
  return net(tcp_in(kPacs, 104, 40000, PSHACK, "x"));
}

TEST(EngineRestart, WithoutItsFlowAnOpenConnectionIsCut) {
  Harness h;  // a restart without a snapshot: what restore_flows is for
  h.load(lab_policy());
  h.run({net_drop(tcp_in(kPacs, 104, 40000, PSHACK, "x"), DropReason::tcp_no_flow)});
}

TEST(EngineRestart, ConnectionsGoOnAfterARestart) {
  const std::string snapshot = saved_flows();
  Harness h;
  h.now = 7 * kSecond;  // the monotonic clock starts again at the restart
  h.load(lab_policy());
  const FlowRestore r = h.engine.restore_flows(snapshot, kPairs, h.now, kWallAtSave + 2 * kSecond);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.restored, 2u);
  EXPECT_EQ(r.expired, 0u);
  h.run({pacs_answers(), dev(tcp_out(kPacs, 40000, 104, ACK)),
         net(to_device().ipv4(kNtp, kDevice).udp(123, 40123).build())});
  // The sequence numbers came along: a reset far outside the window is still refused, and
  // the device's reset at its own numbers ends the connection.
  h.run({net_drop(tcp_in_at(kPacs, 104, 40000, RST, 1'000'000, 0), DropReason::tcp_out_of_window),
         dev(tcp_out_at(kPacs, 40000, 104, RST, 1001, 0)),
         dev_drop(tcp_out(kPacs, 40000, 104, PSHACK, "y"), DropReason::tcp_invalid_state)});
  EXPECT_EQ(h.engine.read_counters().flows_active, 2u);
}

TEST(EngineRestart, RestoredFlowsAnswerToTheActivePolicy) {
  const std::string snapshot = saved_flows();
  Harness h;
  auto tightened = lab_policy();
  tightened.devices[0].rules.erase(tightened.devices[0].rules.begin());  // no store-to-pacs
  h.load(tightened);
  ASSERT_EQ(h.engine.restore_flows(snapshot, kPairs, h.now, kWallAtSave).error, "");
  h.run({net_drop(tcp_in(kPacs, 104, 40000, PSHACK, "x"), DropReason::policy_revoked),
         net(to_device().ipv4(kNtp, kDevice).udp(123, 40123).build())});
}

TEST(EngineRestart, FlowsThatTimedOutWhileDownAreLeftOut) {
  const std::string snapshot = saved_flows();
  Harness h;
  h.load(lab_policy());
  // Down for a minute: the unanswered NTP query (30 s) is gone, the connection is not.
  const FlowRestore r = h.engine.restore_flows(snapshot, kPairs, h.now, kWallAtSave + 60 * kSecond);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.restored, 1u);
  EXPECT_EQ(r.expired, 1u);
  h.run({pacs_answers(), net_drop(to_device().ipv4(kNtp, kDevice).udp(123, 40123).build(),
                                  DropReason::no_matching_rule)});
}

// Replaces the checksum, so that a test reaches the checks behind it.
std::string with_checksum(std::string snapshot) {
  snapshot.resize(snapshot.size() - 4);
  boost::crc_32_type crc;
  crc.process_bytes(snapshot.data(), snapshot.size());
  const uint32_t sum = crc.checksum();
  snapshot.append(reinterpret_cast<const char*>(&sum), sizeof sum);
  return snapshot;
}

TEST(EngineRestart, ABadSnapshotRestoresNothingAndSaysWhy) {
  const std::string good = saved_flows();
  // Header: magic 12, version 4, workers 4, wall 8, layout size 4, layout, count 8.
  const size_t first_record = 12 + 4 + 4 + 8 + 4 + kPairs.size() + 8;
  const size_t record = (good.size() - 4 - first_record) / 2;
  ASSERT_EQ(good.size(), first_record + 2 * record + 4);
  struct Bad {
    std::string snapshot;
    std::string_view layout;
    uint64_t wall_ns;
    std::string error;  // a part of the message
  };
  auto patched = [&](size_t at, uint8_t value) {
    std::string s = good;
    s[at] = static_cast<char>(value);
    return with_checksum(s);
  };
  const size_t second = first_record + record;
  std::string flipped = good;
  flipped[second + 20] ^= 0x5a;
  const std::vector<Bad> cases = {
      {"", kPairs, kWallAtSave, "not a flow snapshot"},
      {good.substr(0, good.size() - 1), kPairs, kWallAtSave, "checksum"},
      {flipped, kPairs, kWallAtSave, "checksum"},
      {good, "net_af_packet0:net_af_packet2", kWallAtSave, "other port pairs"},
      {good, kPairs, kWallAtSave - 1, "clock went back"},
      {patched(12, 2), kPairs, kWallAtSave, "version 2"},
      {patched(16, 2), kPairs, kWallAtSave, "2 workers"},
      {with_checksum(good.substr(0, good.size() - 5) + "xxxx"), kPairs, kWallAtSave,
       "does not match"},
      // The second record's fields: family, protocol, TCP state, flag bits, lifetime.
      {patched(second + 4 + 39, 5), kPairs, kWallAtSave, "address family"},
      {patched(second + 4 + 38, 47), kPairs, kWallAtSave, "protocol"},
      {patched(second + 4 + 40 + 1, 9), kPairs, kWallAtSave, "TCP state"},
      {patched(second + 4 + 40 + 3, 0x80), kPairs, kWallAtSave, "flag bits"},
      {patched(second + 4 + 40 + 4 + 7, 0x7f), kPairs, kWallAtSave, "more lifetime"},
  };
  for (const Bad& bad : cases) {
    Harness h;
    h.load(lab_policy());
    const FlowRestore r = h.engine.restore_flows(bad.snapshot, bad.layout, h.now, bad.wall_ns);
    EXPECT_NE(r.error.find(bad.error), std::string::npos) << bad.error << ": " << r.error;
    EXPECT_EQ(r.restored, 0u);
    // Nothing was kept, not even the good first record (the NTP query).
    h.run({net_drop(tcp_in(kPacs, 104, 40000, PSHACK, "x"), DropReason::tcp_no_flow),
           net_drop(to_device().ipv4(kNtp, kDevice).udp(123, 40123).build(),
                    DropReason::no_matching_rule)});
  }
  // A flow twice: the same record again, with the count raised to match.
  std::string twice = good.substr(0, good.size() - 4) + good.substr(first_record, record) + "0000";
  const uint64_t three = 3;
  std::memcpy(twice.data() + first_record - 8, &three, sizeof three);
  Harness h;
  h.load(lab_policy());
  EXPECT_NE(h.engine.restore_flows(with_checksum(twice), kPairs, h.now, kWallAtSave)
                .error.find("a flow twice"),
            std::string::npos);
  // And nothing into tables that already hold flows.
  ASSERT_EQ(h.engine.restore_flows(good, kPairs, h.now, kWallAtSave).error, "");
  EXPECT_EQ(h.engine.restore_flows(good, kPairs, h.now, kWallAtSave).error,
            "flow tables not empty");
}

TEST(EngineRestart, ASnapshotLargerThanTheTablesRestoresNothing) {
  EngineConfig larger = Harness::small_config();
  larger.flows_per_worker = 2 * Harness::small_config().flows_per_worker;
  Harness before(larger);
  before.load(lab_policy());
  for (uint16_t port = 0; port <= Harness::small_config().flows_per_worker; ++port) {
    before.run({dev(
        from_device().ipv4(kDevice, kNtp).udp(static_cast<uint16_t>(40000 + port), 123).build())});
  }
  const FlowSnapshot snapshot = before.engine.save_flows(kPairs, before.now, kWallAtSave);
  ASSERT_EQ(snapshot.flows, Harness::small_config().flows_per_worker + 1u);
  Harness h;  // --flows-per-worker lowered across the restart
  h.load(lab_policy());
  const FlowRestore r = h.engine.restore_flows(snapshot.bytes, kPairs, h.now, kWallAtSave);
  EXPECT_EQ(r.error, "flow snapshot holds more flows than the tables");
  EXPECT_EQ(r.restored, 0u);
  h.run({net_drop(to_device().ipv4(kNtp, kDevice).udp(123, 40000).build(),
                  DropReason::no_matching_rule)});
}

TEST(EngineRestart, FlowsPastTheirTimeoutAreNotSaved) {
  Harness h;
  h.load(lab_policy());
  h.run(store_handshake());
  // Still in the table (nothing expired it), but past its timeout at the shutdown.
  const uint64_t later =
      h.now + h.engine.config().timeouts.tcp_established_ns + FlowTable::kExpiryGrain;
  const FlowSnapshot snapshot = h.engine.save_flows(kPairs, later, kWallAtSave);
  EXPECT_EQ(snapshot.flows, 0u);
  Harness restarted;
  restarted.load(lab_policy());
  const FlowRestore r =
      restarted.engine.restore_flows(snapshot.bytes, kPairs, restarted.now, kWallAtSave);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.restored + r.expired, 0u);
}

TEST(Engine, EveryDropReasonHasLabelAndDescription) {
  for (size_t r = 0; r < kDropReasonCount; ++r) {
    EXPECT_FALSE(kDropReasonLabels[r].empty());
    EXPECT_FALSE(kDropReasonDescriptions[r].empty());
    for (size_t o = 0; o < r; ++o) EXPECT_NE(kDropReasonLabels[r], kDropReasonLabels[o]);
  }
}

}  // namespace
}  // namespace cordon::engine
