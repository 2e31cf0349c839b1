// Inspection through the whole engine: HL7 rules and policy signatures on reassembled
// TCP streams, with the evasions the reassembler must see through.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "dataplane/engine/engine.h"
#include "tests/unit/dataplane/engine/frames.h"

namespace cordon::engine {
namespace {

using testing::Bytes;
using testing::FrameBuilder;

constexpr const char* kDeviceMac = "02:c0:4d:00:00:10";
constexpr const char* kDevice = "10.50.0.10";
constexpr const char* kGatewayMac = "02:00:00:00:00:01";
constexpr const char* kRis = "10.50.0.30";
constexpr const char* kAttacker = "10.50.0.66";

PolicyDocument policy(DeviceMode mode = DeviceMode::enforce) {
  Device d;
  d.name = "ct-1";
  d.mac = *MacAddress::parse(kDeviceMac);
  d.ips = {*IpAddress::parse(kDevice)};
  d.mode = mode;
  Rule results;
  results.name = "results";
  results.dir = Direction::out;
  results.proto = Protocol::tcp;
  results.peer = *Cidr::parse("10.50.0.30/32");
  results.dport = {2575, 2575};
  results.hl7 = Hl7Constraints{{"ORU^R01"}, {}};
  Rule web;
  web.name = "web-console";
  web.dir = Direction::in;
  web.proto = Protocol::tcp;
  web.peer = *Cidr::parse("10.50.0.0/24");
  web.dport = {80, 80};
  d.rules = {results, web};
  d.patches = {"local-http-traversal", "admin-probe"};
  PolicyPatch traversal;
  traversal.id = "local-http-traversal";
  traversal.cve = "CVE-2021-41773";
  traversal.dir = Direction::in;
  traversal.proto = Protocol::tcp;
  traversal.dport = {80, 80};
  traversal.match.content = "/.%2e/";
  traversal.action = PatchAction::drop;
  PolicyPatch probe;  // only at the start of the stream, by regex
  probe.id = "admin-probe";
  probe.dir = Direction::in;
  probe.proto = Protocol::tcp;
  probe.dport = {80, 80};
  probe.match.regex = "^POST /admin[a-z]{0,8}";
  probe.match.offset = 0;
  probe.match.depth = 32;
  probe.action = PatchAction::reset;
  PolicyDocument doc;
  doc.devices.push_back(d);
  doc.patches = {traversal, probe};
  return doc;
}

std::string mllp(const std::string& type, const std::string& id = "1") {
  return "\x0b"
         "MSH|^~\\&|CT1|RADIOLOGY|RIS|HOSPITAL|20260101||" +
         type + "|" + id + "|P|2.5\rOBX|1|TX|71020||dose||||||F\r\x1c\r";
}

// One TCP connection, with sequence numbers kept for both ends.
class Connection {
 public:
  // outbound: the device connects to `peer`; else `peer` connects to the device.
  Connection(bool outbound, const char* peer, uint16_t port, uint16_t other_port = 40000)
      : outbound_(outbound), peer_(peer), port_(port), other_port_(other_port) {}

  Bytes syn() const { return initiator(tcp_flag::syn, isn_, 0, ""); }
  Bytes syn_ack() const { return responder(tcp_flag::syn | tcp_flag::ack, rsn_, isn_ + 1, ""); }
  // Data carried in the handshake's SYN or SYN-ACK (TCP Fast Open, RFC 7413).
  Bytes syn_with(const std::string& bytes) const {
    return initiator(tcp_flag::syn, isn_, 0, bytes);
  }
  Bytes syn_ack_with(const std::string& bytes) const {
    return responder(tcp_flag::syn | tcp_flag::ack, rsn_, isn_ + 1, bytes);
  }
  Bytes ack() const { return initiator(tcp_flag::ack, isn_ + 1, rsn_ + 1, ""); }
  // Initiator data at `offset` bytes into its stream.
  Bytes data(uint32_t offset, const std::string& bytes) const {
    return initiator(tcp_flag::ack | tcp_flag::psh, isn_ + 1 + offset, rsn_ + 1, bytes);
  }
  // Initiator data with the URG flag (urgent pointer 0).
  Bytes urgent(uint32_t offset, const std::string& bytes) const {
    return initiator(tcp_flag::ack | tcp_flag::psh | tcp_flag::urg, isn_ + 1 + offset, rsn_ + 1,
                     bytes);
  }
  Bytes reply(uint32_t offset, const std::string& bytes) const {
    return responder(tcp_flag::ack | tcp_flag::psh, rsn_ + 1 + offset, isn_ + 1, bytes);
  }
  Side initiator_side() const { return outbound_ ? Side::device : Side::network; }
  Side responder_side() const { return outbound_ ? Side::network : Side::device; }

 private:
  Bytes frame(bool from_device, uint8_t flags, uint32_t seq, uint32_t ack,
              const std::string& payload) const {
    FrameBuilder b;
    if (from_device) {
      b.eth(kDeviceMac, kGatewayMac).ipv4(kDevice, peer_);
    } else {
      b.eth(kGatewayMac, kDeviceMac).ipv4(peer_, kDevice);
    }
    const uint16_t device_port = outbound_ ? other_port_ : port_;
    const uint16_t peer_port = outbound_ ? port_ : other_port_;
    if (from_device) {
      b.tcp(device_port, peer_port, flags, seq, ack);
    } else {
      b.tcp(peer_port, device_port, flags, seq, ack);
    }
    return b.payload(payload).build();
  }
  Bytes initiator(uint8_t flags, uint32_t seq, uint32_t ack, const std::string& p) const {
    return frame(outbound_, flags, seq, ack, p);
  }
  Bytes responder(uint8_t flags, uint32_t seq, uint32_t ack, const std::string& p) const {
    return frame(!outbound_, flags, seq, ack, p);
  }
  bool outbound_;
  const char* peer_;
  uint16_t port_;
  uint16_t other_port_;        // the initiator's port
  uint32_t isn_ = 0xfffffff0;  // the stream wraps sequence numbers past zero
  uint32_t rsn_ = 7000;
};

struct Harness {
  explicit Harness(const PolicyDocument& doc, uint32_t inspected = 64) {
    EngineConfig c;
    c.flows_per_worker = 64;
    c.inspected_flows_per_worker = inspected;
    c.event_ring_size = 256;
    engine = std::make_unique<Engine>(c);
    CompileResult r = compile_policy(doc, 1, 1);
    EXPECT_TRUE(r.errors.empty()) << (r.errors.empty() ? "" : r.errors[0].to_string());
    engine->publish(std::move(r.policy));
  }
  Verdict send(Side side, const Bytes& frame) {
    PacketView view{frame.data(), static_cast<uint32_t>(frame.size()), side};
    Verdict v;
    engine->worker(0).process({&view, 1}, {&v, 1}, 1'000'000'000);
    engine->worker(0).go_idle();
    return v;
  }
  void open(const Connection& c) {
    ASSERT_EQ(send(c.initiator_side(), c.syn()).action, Action::forward);
    ASSERT_EQ(send(c.responder_side(), c.syn_ack()).action, Action::forward);
    ASSERT_EQ(send(c.initiator_side(), c.ack()).action, Action::forward);
  }
  Verdict data(const Connection& c, size_t offset, const std::string& bytes) {
    return send(c.initiator_side(), c.data(static_cast<uint32_t>(offset), bytes));
  }
  std::vector<Event> events() {
    std::vector<Event> out(64);
    out.resize(engine->poll_events(out));
    return out;
  }
  std::unique_ptr<Engine> engine;
};

void expect_ended(const Verdict& v, DropReason reason,
                  Action action = Action::drop_and_reset_both) {
  EXPECT_EQ(v.action, action);
  EXPECT_EQ(label(v.reason), label(reason));
}

TEST(Inspection, AllowedHl7MessagesPassAndDisallowedTypeEndsTheConnection) {
  Harness h(policy());
  Connection c(true, kRis, 2575);
  h.open(c);
  const std::string oru = mllp("ORU^R01");
  EXPECT_EQ(h.data(c, 0, oru).action, Action::forward);
  EXPECT_EQ(h.send(c.responder_side(), c.reply(0, mllp("ACK^R01"))).action, Action::forward);
  expect_ended(h.data(c, oru.size(), mllp("ADT^A01", "2")), DropReason::app_not_allowed);
  // Whatever comes next on that connection is dropped without further events.
  EXPECT_EQ(h.data(c, oru.size(), mllp("ORU^R01", "3")).reason, DropReason::flow_blocked);
  const auto events = h.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].reason, DropReason::app_not_allowed);
  EXPECT_STREQ(events[0].detail, "HL7 message type not allowed: ADT^A01");
  EXPECT_STREQ(events[0].device, "ct-1");
}

// An orderly restart keeps flows, but not inspected ones: their reassembly and inspector
// state is not saved, and an inspected connection must not go on uninspected.
TEST(Inspection, InspectedFlowsAreNotSavedAcrossARestart) {
  Harness h(policy());
  Connection c(true, kRis, 2575);
  h.open(c);
  ASSERT_EQ(h.data(c, 0, mllp("ORU^R01")).action, Action::forward);
  EXPECT_EQ(h.engine->save_flows("pairs", 1'000'000'000, 0).flows, 0u);
  // The same connection without its rule's HL7 inspection is saved.
  PolicyDocument plain = policy();
  plain.devices[0].rules[0].hl7.reset();
  Harness uninspected(plain);
  uninspected.open(c);
  EXPECT_EQ(uninspected.engine->save_flows("pairs", 1'000'000'000, 0).flows, 1u);
}

TEST(Inspection, LearnModeReportsHl7MessageTypesOncePerFlow) {
  PolicyDocument doc = policy(DeviceMode::learn);
  doc.devices[0].rules.clear();  // nothing allows it: learn mode forwards and reports
  Harness h(doc);
  Connection c(true, kRis, 2575);
  h.open(c);
  const std::string first = mllp("ORU^R01", "1") + mllp("ADT^A08", "2");
  EXPECT_EQ(h.data(c, 0, first).action, Action::forward);
  EXPECT_EQ(h.data(c, first.size(), mllp("ORU^R01", "3")).action, Action::forward);
  std::vector<std::string> observed;
  for (const Event& e : h.events()) {
    if (e.kind == EventKind::app_observed) observed.emplace_back(e.detail);
  }
  EXPECT_EQ(observed, (std::vector<std::string>{"hl7-message ORU^R01", "hl7-message ADT^A08"}));
}

TEST(Inspection, MalformedMllpIsRefused) {
  Harness h(policy());
  Connection c(true, kRis, 2575);
  h.open(c);
  expect_ended(h.data(c, 0, "GET / HTTP/1.0\r\n\r\n"), DropReason::app_malformed);
}

TEST(Inspection, DisallowedHl7TypeIsCaughtInTinySegments) {
  Harness h(policy());
  Connection c(true, kRis, 2575);
  h.open(c);
  const std::string adt = mllp("ADT^A01");
  Verdict last;
  size_t i = 0;
  for (; i < adt.size(); ++i) {
    last = h.data(c, i, adt.substr(i, 1));
    if (last.action != Action::forward) break;
  }
  expect_ended(last, DropReason::app_not_allowed);
  EXPECT_LT(i, adt.size());  // refused at the byte that completed MSH-9, not at the end
}

TEST(Inspection, SignatureMatchesInOneSegment) {
  Harness h(policy());
  Connection c(false, kAttacker, 80);
  h.open(c);
  expect_ended(h.data(c, 0, "GET /cgi-bin/.%2e/.%2e/etc/passwd HTTP/1.1\r\n"),
               DropReason::virtual_patch, Action::drop);
  const auto events = h.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_STREQ(events[0].detail, "patch local-http-traversal (CVE-2021-41773)");
}

TEST(Inspection, SignatureSplitAcrossSegmentsOrOutOfOrderIsStillCaught) {
  {
    Harness h(policy());
    Connection c(false, kAttacker, 80);
    h.open(c);
    EXPECT_EQ(h.data(c, 0, "GET /cgi-bin/.%").action, Action::forward);
    expect_ended(h.data(c, 15, "2e/etc/passwd"), DropReason::virtual_patch, Action::drop);
  }
  {
    Harness h(policy());
    Connection c(false, kAttacker, 80);
    h.open(c);
    // The second half first: buffered and forwarded (the receiver cannot use it yet) ...
    EXPECT_EQ(h.data(c, 15, "2e/etc/passwd").action, Action::forward);
    // ... then the gap is filled and the assembled stream matches.
    expect_ended(h.data(c, 0, "GET /cgi-bin/.%"), DropReason::virtual_patch, Action::drop);
  }
}

TEST(Inspection, ConflictingRetransmissionIsAnEvasionAndEndsTheConnection) {
  Harness h(policy());
  Connection c(false, kAttacker, 80);
  h.open(c);
  EXPECT_EQ(h.data(c, 0, "GET /cgi-bin/xx%2e/etc").action, Action::forward);
  expect_ended(h.data(c, 13, "/.%2e/"), DropReason::tcp_overlap_conflict);
}

TEST(Inspection, RegexWithDepthMatchesOnlyAtTheStart) {
  {
    Harness h(policy());
    Connection c(false, kAttacker, 80);
    h.open(c);
    expect_ended(h.data(c, 0, "POST /administrator HTTP/1.1\r\n"), DropReason::virtual_patch);
  }
  {
    Harness h(policy());
    Connection c(false, kAttacker, 80);
    h.open(c);
    EXPECT_EQ(h.data(c, 0, std::string(40, ' ') + "POST /admin HTTP/1.1\r\n").action,
              Action::forward);
  }
}

TEST(Inspection, RepliesAreNotMatchedAgainstRequestPatches) {
  Harness h(policy());
  Connection c(false, kAttacker, 80);
  h.open(c);
  EXPECT_EQ(h.data(c, 0, "GET / HTTP/1.1\r\n\r\n").action, Action::forward);
  EXPECT_EQ(h.send(c.responder_side(), c.reply(0, "<a href=/.%2e/>")).action, Action::forward);
}

TEST(Inspection, MonitorModeReportsAndForwards) {
  Harness h(policy(DeviceMode::monitor));
  Connection c(true, kRis, 2575);
  h.open(c);
  const Verdict v = h.data(c, 0, mllp("ADT^A01"));
  EXPECT_EQ(v.action, Action::forward);
  EXPECT_TRUE(v.would_drop);
  EXPECT_EQ(v.reason, DropReason::app_not_allowed);
  const auto events = h.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, EventKind::would_drop);
}

TEST(Inspection, DataInTheHandshakeIsNeverForwardedUninspected) {
  // A SYN carrying the request (TCP Fast Open) would reach the device before any stream
  // was inspected: on an inspected connection, such segments are dropped.
  Harness h(policy());
  Connection c(false, kAttacker, 80);
  const std::string request = "GET /.%2e/.%2e/etc/passwd HTTP/1.1\r\n\r\n";
  Verdict v = h.send(c.initiator_side(), c.syn_with(request));
  EXPECT_EQ(v.action, Action::drop);
  EXPECT_EQ(label(v.reason), label(DropReason::tcp_handshake_data));
  // Its retransmission too, once a plain SYN has opened the flow.
  ASSERT_EQ(h.send(c.initiator_side(), c.syn()).action, Action::forward);
  v = h.send(c.initiator_side(), c.syn_with(request));
  EXPECT_EQ(label(v.reason), label(DropReason::tcp_handshake_data));
  // And data in the responder's SYN-ACK.
  v = h.send(c.responder_side(), c.syn_ack_with("HTTP/1.1 200 OK\r\n\r\n"));
  EXPECT_EQ(label(v.reason), label(DropReason::tcp_handshake_data));
  // The handshake without data still completes, and the request is inspected as usual.
  ASSERT_EQ(h.send(c.responder_side(), c.syn_ack()).action, Action::forward);
  ASSERT_EQ(h.send(c.initiator_side(), c.ack()).action, Action::forward);
  expect_ended(h.data(c, 0, request), DropReason::virtual_patch, Action::drop);
}

// Monitor mode: the SYN with data is forwarded, and its verdict and counters say why it
// would have been dropped; it is counted as forwarded once.
TEST(Inspection, MonitorModeReportsDataInTheHandshake) {
  Harness h(policy(DeviceMode::monitor));
  Connection c(false, kAttacker, 80);
  const Verdict v = h.send(c.initiator_side(), c.syn_with("GET / HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(v.action, Action::forward);
  EXPECT_TRUE(v.would_drop);
  EXPECT_EQ(label(v.reason), label(DropReason::tcp_handshake_data));
  const auto events = h.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, EventKind::would_drop);
  EXPECT_EQ(h.engine->read_counters().forwarded, 1u);
}

TEST(Inspection, UrgentDataEndsAnInspectedConnection) {
  // The server may read "/.%2e/" while the stream the patch sees is "/.%2Xe/".
  Harness h(policy());
  Connection c(false, kAttacker, 80);
  h.open(c);
  EXPECT_EQ(h.data(c, 0, "GET /cgi-bin/.%2").action, Action::forward);
  expect_ended(h.send(c.initiator_side(), c.urgent(16, "Xe/etc/passwd HTTP/1.1\r\n\r\n")),
               DropReason::tcp_urgent_data);
  EXPECT_EQ(label(h.data(c, 16, "e/").reason), label(DropReason::flow_blocked));
  // Monitor mode reports it and lets the connection go on, no longer inspected.
  Harness monitor(policy(DeviceMode::monitor));
  monitor.open(c);
  const Verdict v = monitor.send(c.initiator_side(), c.urgent(0, "X"));
  EXPECT_EQ(v.action, Action::forward);
  EXPECT_TRUE(v.would_drop);
  EXPECT_EQ(label(v.reason), label(DropReason::tcp_urgent_data));
}

TEST(Inspection, DataInTheHandshakeOfAConnectionNotInspectedPasses) {
  // Port 22 is inspected by nothing: what it carries is the policy's business only.
  PolicyDocument doc = policy();
  Rule ssh;
  ssh.name = "ssh";
  ssh.dir = Direction::in;
  ssh.proto = Protocol::tcp;
  ssh.peer = *Cidr::parse("10.50.0.0/24");
  ssh.dport = {22, 22};
  doc.devices[0].rules.push_back(ssh);
  Harness h(doc);
  Connection c(false, kAttacker, 22);
  EXPECT_EQ(h.send(c.initiator_side(), c.syn_with("SSH-2.0-x\r\n")).action, Action::forward);
}

TEST(Inspection, ASynFloodCannotTakeTheSlotsOfConnectionsThatComplete) {
  Harness h(policy(), /*inspected=*/4);
  Connection results(true, kRis, 2575);
  h.open(results);
  // SYNs on an inspected port whose handshakes never complete (a spoofed source's), ten
  // times as many as there are slots, fewer than flow entries: only the inspection pool
  // runs out.
  std::vector<Connection> flood;
  for (uint16_t i = 0; i < 40; ++i) flood.emplace_back(false, kAttacker, 80, 20000 + i);
  for (const Connection& f : flood) {
    ASSERT_EQ(h.send(f.initiator_side(), f.syn()).action, Action::forward);
  }
  // A connection that completes its handshake is still opened, and inspected.
  Connection c(false, kAttacker, 80);
  h.open(c);
  expect_ended(h.data(c, 0, "GET /.%2e/.%2e/etc/passwd HTTP/1.1\r\n\r\n"),
               DropReason::virtual_patch, Action::drop);
  // The established connection kept its slot and is still inspected.
  EXPECT_EQ(h.data(results, 0, mllp("ORU^R01")).action, Action::forward);
  expect_ended(h.data(results, mllp("ORU^R01").size(), mllp("ADT^A01", "2")),
               DropReason::app_not_allowed);
  // The oldest half-open connections gave their slots up: their flows are gone.
  EXPECT_EQ(label(h.send(flood[0].responder_side(), flood[0].syn_ack()).reason),
            label(DropReason::tcp_no_flow));
  EXPECT_EQ(h.send(flood[39].responder_side(), flood[39].syn_ack()).action, Action::forward);
  EXPECT_GE(h.engine->read_counters().flows_evicted, 36u);
}

TEST(Inspection, NoInspectionSlotLeftMeansTheConnectionIsRefused) {
  Harness h(policy(), /*inspected=*/1);
  Connection first(true, kRis, 2575);
  h.open(first);
  Connection second(false, kAttacker, 80);
  const Verdict v = h.send(second.initiator_side(), second.syn());
  EXPECT_EQ(v.action, Action::drop);
  EXPECT_EQ(v.reason, DropReason::inspection_table_full);
}

// A real storescu -> storescp association (tests/unit/dataplane/engine/inspect/data),
// replayed through the engine segment by segment as the wire had it: the device is the
// requestor, PACS the acceptor.
struct CapturedAssociation {
  std::string requestor, acceptor;
  std::vector<std::pair<bool, size_t>> segments;  // (from requestor, length)
  CapturedAssociation() {
    const std::filesystem::path dir =
        std::filesystem::path(CORDON_SOURCE_DIR) / "tests/unit/dataplane/engine/inspect/data";
    auto read = [&](const char* name) {
      std::ifstream in(dir / name, std::ios::binary);
      EXPECT_TRUE(in.good()) << dir / name;
      std::ostringstream s;
      s << in.rdbuf();
      return s.str();
    };
    requestor = read("store-requestor.bin");
    acceptor = read("store-acceptor.bin");
    std::ifstream order(dir / "store-segments.txt");
    std::string who;
    size_t length = 0;
    while (order >> who >> length) segments.emplace_back(who == "requestor", length);
    EXPECT_FALSE(segments.empty()) << "no segments in " << dir / "store-segments.txt";
  }
};

PolicyDocument dicom_policy(DicomConstraints constraints) {
  PolicyDocument doc = policy();
  Rule store;
  store.name = "store-to-pacs";
  store.dir = Direction::out;
  store.proto = Protocol::tcp;
  store.peer = *Cidr::parse("10.50.0.20/32");
  store.dport = {104, 104};
  store.dicom = std::move(constraints);
  doc.devices[0].rules.push_back(store);
  return doc;
}

// Replays the association; returns the first verdict that is not a plain forward, with
// the index of its segment (or a forward verdict and the segment count).
std::pair<Verdict, size_t> replay(Harness& h) {
  static const CapturedAssociation capture;
  Connection c(true, "10.50.0.20", 104);
  h.open(c);
  size_t sent[2] = {0, 0};
  for (size_t i = 0; i < capture.segments.size(); ++i) {
    const auto [from_requestor, length] = capture.segments[i];
    const std::string& stream = from_requestor ? capture.requestor : capture.acceptor;
    const size_t at = sent[from_requestor ? 0 : 1];
    const std::string bytes = stream.substr(at, length);
    const Verdict v = from_requestor
                          ? h.data(c, at, bytes)
                          : h.send(c.responder_side(), c.reply(static_cast<uint32_t>(at), bytes));
    if (v.action != Action::forward) return {v, i};
    sent[from_requestor ? 0 : 1] += length;
  }
  return {Verdict{Action::forward, DropReason::none, false}, capture.segments.size()};
}

const char* kCtImage = "1.2.840.10008.5.1.4.1.1.2";
const char* kMrImage = "1.2.840.10008.5.1.4.1.1.4";

TEST(InspectionDicom, AllowedAssociationPassesWhole) {
  Harness h(dicom_policy({{"CT1"}, {"PACS"}, {"C-ECHO", "C-STORE"}, {kCtImage}}));
  const auto [v, at] = replay(h);
  EXPECT_EQ(v.action, Action::forward) << label(v.reason) << " at segment " << at;
  EXPECT_TRUE(h.events().empty());
}

TEST(InspectionDicom, WrongAeTitlesEndTheAssociationAtItsRequest) {
  for (auto constraints :
       {DicomConstraints{{"CT2"}, {}, {}, {}}, DicomConstraints{{}, {"ARCHIVE"}, {}, {}}}) {
    Harness h(dicom_policy(constraints));
    const auto [v, at] = replay(h);
    expect_ended(v, DropReason::app_not_allowed);
    EXPECT_EQ(at, 0u);  // the A-ASSOCIATE-RQ itself
    const auto events = h.events();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_STREQ(events[0].detail, constraints.calling_ae.empty()
                                       ? "DICOM called AE title not allowed: PACS"
                                       : "DICOM calling AE title not allowed: CT1");
    EXPECT_STREQ(events[0].rule, "store-to-pacs");
  }
}

TEST(InspectionDicom, StoringAClassOutsideTheListIsRefused) {
  Harness h(dicom_policy({{"CT1"}, {"PACS"}, {"C-ECHO", "C-STORE"}, {kMrImage}}));
  const auto [v, at] = replay(h);
  expect_ended(v, DropReason::app_not_allowed);
  EXPECT_GT(at, 0u);  // after the association was accepted
  const auto events = h.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(std::string(events[0].detail), std::string("DICOM SOP class not allowed: ") + kCtImage);
}

TEST(InspectionDicom, CommandOutsideTheListIsRefused) {
  Harness h(dicom_policy({{}, {}, {"C-ECHO"}, {}}));
  const auto [v, at] = replay(h);
  expect_ended(v, DropReason::app_not_allowed);
  const auto events = h.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_STREQ(events[0].detail, "DICOM command not allowed: C-STORE");
}

// Learn mode: the device has no rule for the DICOM port, yet the association passes and
// what it carried is reported once each, for the proposal (control/policy/learn.cpp).
TEST(InspectionDicom, LearnModeReportsAeTitlesCommandsAndClassesOnce) {
  PolicyDocument doc = policy(DeviceMode::learn);
  Harness h(doc);
  const auto [v, at] = replay(h);
  EXPECT_EQ(v.action, Action::forward) << label(v.reason) << " at segment " << at;
  std::vector<std::string> observed;
  for (const Event& e : h.events()) {
    if (e.kind == EventKind::app_observed) observed.emplace_back(e.detail);
  }
  EXPECT_EQ(observed,
            (std::vector<std::string>{"dicom-ae CT1\\PACS",
                                      std::string("dicom-command C-STORE\\") + kCtImage}));
}

TEST(InspectionDicom, EnforceModeReportsNoObservations) {
  Harness h(dicom_policy({{"CT1"}, {"PACS"}, {"C-ECHO", "C-STORE"}, {kCtImage}}));
  (void)replay(h);
  for (const Event& e : h.events()) EXPECT_NE(e.kind, EventKind::app_observed) << e.detail;
}

TEST(InspectionDicom, SanityPatchRefusesNonDicomOnTheDicomPort) {
  PolicyDocument doc = dicom_policy({});
  doc.devices[0].rules.back().dicom.reset();             // a plain port rule ...
  doc.devices[0].patches.push_back("dicom-pdu-sanity");  // ... under the sanity patch
  Harness h(doc);
  Connection c(true, "10.50.0.20", 104);
  h.open(c);
  expect_ended(h.data(c, 0,
                      std::string("\x09\x00\x00\x00\x00\x04"
                                  "abcd",
                                  10)),
               DropReason::virtual_patch, Action::drop);  // the catalog default: no resets
  const auto events = h.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(std::string(events[0].detail).rfind("patch dicom-pdu-sanity (PS3.8): ", 0), 0u);
}

TEST(Inspection, UnboundedRegexIsRejectedAtCompileWithItsPath) {
  PolicyDocument doc = policy();
  doc.patches[1].match.regex = "^POST /admin.*";
  const CompileResult r = compile_policy(doc, 1, 1);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].path, "patches[1].match.regex");
  EXPECT_EQ(r.policy, nullptr);
}

}  // namespace
}  // namespace cordon::engine
