// cordon_bench_mix: throughput per core of one worker on a clinical traffic mix, with
// inspection on and off, side by side (bench/README.md "Part 3"). Engine level, no NIC:
// the frames of both directions of many concurrent connections through one device are
// built in memory and fed to Engine::worker(0).process() in batches of 32.
//
//   cordon_bench_mix [--rounds=N] [--passes=N] [--scale=N] [--md=FILE] [--json=FILE]
//
// --md / --json receive the report section (Markdown) and its JSON member value; run.sh
// merges them into the day's report. Exit status 2 if any frame was not forwarded.
#include <sys/resource.h>
#include <x86intrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "dataplane/engine/engine.h"
#include "tests/unit/dataplane/engine/frames.h"

namespace cordon::bench {
namespace {

using engine::Action;
using engine::Side;
using testing::Bytes;
using testing::FrameBuilder;

constexpr const char* kDeviceMac = "02:c0:4d:00:00:10";
constexpr const char* kDevice = "10.50.0.10";
constexpr const char* kGatewayMac = "02:00:00:00:00:01";
constexpr const char* kPacs = "10.50.0.20";
constexpr const char* kRis = "10.50.0.30";
constexpr const char* kSyslog = "10.50.0.40";
constexpr const char* kNtp = "10.50.0.41";
constexpr const char* kGateway = "10.50.0.1";
constexpr const char* kCtImage = "1.2.840.10008.5.1.4.1.1.2";

// Traffic classes, for the report's breakdown.
enum Proto : uint8_t { dicom, hl7, smb2, rdp, http, udp, icmp, kProtos };
constexpr const char* kProtoNames[kProtos] = {"DICOM C-STORE",  "HL7 MLLP", "SMB2", "RDP",
                                              "HTTP (port 80)", "UDP",      "ICMP"};

struct Frame {
  Bytes bytes;
  Side side;
  Proto proto;
  std::string what;  // for drop reports
};

// Size on the wire as IMIX counts it: padded to the 60-byte minimum, plus the FCS.
size_t wire_size(const Frame& f) {
  return std::max<size_t>(f.bytes.size(), 60) + 4;
}

int size_class(size_t wire) {
  return wire < 330 ? 0 : wire <= 1056 ? 1 : 2;
}

using Script = std::vector<Frame>;

Bytes pad(Bytes b) {
  if (b.size() < 60) b.resize(60, 0);  // Ethernet padding, as a NIC would deliver it
  return b;
}

// One TCP connection with both ends' sequence numbers; appends its frames to a script.
class Tcp {
 public:
  Tcp(Script& out, Proto proto, std::string name, bool outbound, std::string peer,
      uint16_t device_port, uint16_t peer_port, uint32_t mss)
      : out_(out),
        proto_(proto),
        name_(std::move(name)),
        outbound_(outbound),
        peer_(std::move(peer)),
        device_port_(device_port),
        peer_port_(peer_port),
        mss_(mss) {}

  void handshake() {
    emit(true, engine::tcp_flag::syn, isn_, 0, {}, "SYN");
    emit(false, engine::tcp_flag::syn | engine::tcp_flag::ack, rsn_, isn_ + 1, {}, "SYN/ACK");
    emit(true, engine::tcp_flag::ack, isn_ + 1, rsn_ + 1, {}, "ACK");
  }
  // Data from the initiator (true) or the responder, cut into MSS-size segments; the other
  // end acknowledges every second segment and the last.
  void data(bool from_initiator, std::string_view bytes) {
    uint32_t& seq = from_initiator ? i_off_ : r_off_;
    size_t unacked = 0;
    for (size_t at = 0; at < bytes.size(); at += mss_) {
      const std::string_view seg = bytes.substr(at, mss_);
      emit(from_initiator, engine::tcp_flag::ack | engine::tcp_flag::psh,
           base(from_initiator) + seq, base(!from_initiator) + (from_initiator ? r_off_ : i_off_),
           seg, "data +" + std::to_string(seq));
      seq += static_cast<uint32_t>(seg.size());
      if (++unacked == 2 || at + mss_ >= bytes.size()) {
        emit(!from_initiator, engine::tcp_flag::ack, base(!from_initiator) + other(from_initiator),
             base(from_initiator) + seq, {}, "ACK");
        unacked = 0;
      }
    }
  }
  void close() {
    emit(true, engine::tcp_flag::fin | engine::tcp_flag::ack, base(true) + i_off_,
         base(false) + r_off_, {}, "FIN");
    emit(false, engine::tcp_flag::fin | engine::tcp_flag::ack, base(false) + r_off_,
         base(true) + i_off_ + 1, {}, "FIN/ACK");
    emit(true, engine::tcp_flag::ack, base(true) + i_off_ + 1, base(false) + r_off_ + 1, {},
         "last ACK");
  }

 private:
  uint32_t base(bool initiator) const { return (initiator ? isn_ : rsn_) + 1; }
  uint32_t other(bool from_initiator) const { return from_initiator ? r_off_ : i_off_; }
  void emit(bool from_initiator, uint8_t flags, uint32_t seq, uint32_t ack, std::string_view p,
            const std::string& what) {
    const bool from_device = from_initiator == outbound_;
    FrameBuilder b;
    if (from_device) {
      b.eth(kDeviceMac, kGatewayMac)
          .ipv4(kDevice, peer_)
          .tcp(device_port_, peer_port_, flags, seq, ack);
    } else {
      b.eth(kGatewayMac, kDeviceMac)
          .ipv4(peer_, kDevice)
          .tcp(peer_port_, device_port_, flags, seq, ack);
    }
    if (!p.empty()) b.payload(Bytes(p.begin(), p.end()));
    out_.push_back({pad(b.build()), from_device ? Side::device : Side::network, proto_,
                    name_ + " " + (from_initiator ? "initiator " : "responder ") + what});
  }
  Script& out_;
  Proto proto_;
  std::string name_;
  bool outbound_;
  std::string peer_;
  uint16_t device_port_, peer_port_;
  uint32_t mss_;
  uint32_t isn_ = 0xfffff000;  // initiator streams wrap sequence numbers past zero
  uint32_t rsn_ = 7000;
  uint32_t i_off_ = 0, r_off_ = 0;  // bytes sent so far by each end
};

// ---- payloads -------------------------------------------------------------------------

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

void put16le(std::string& s, uint32_t v) {
  s += static_cast<char>(v & 0xff);
  s += static_cast<char>((v >> 8) & 0xff);
}
void put32le(std::string& s, uint32_t v) {
  put16le(s, v & 0xffff);
  put16le(s, v >> 16);
}
void put32be(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s += static_cast<char>((v >> (8 * i)) & 0xff);
}
std::string filler(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

// The captured storescu association (tests/unit/dataplane/engine/inspect/data), with its
// 376-byte data set PDV followed by filler fragments up to `image_bytes` (data set PDVs
// are skipped by the parser; P-DATA-TF PDUs stay within the negotiated 16384 bytes).
struct DicomStreams {
  std::string assoc_rq, assoc_ac, command_and_data, command_rsp, release_rq, release_rp;
};

DicomStreams dicom_streams(const std::string& dir, size_t image_bytes) {
  const std::string rq = read_file(dir + "/store-requestor.bin");
  const std::string ac = read_file(dir + "/store-acceptor.bin");
  auto pdus = [](const std::string& s) {
    std::vector<std::string> out;
    for (size_t i = 0; i + 6 <= s.size();) {
      const uint32_t len = (uint32_t(uint8_t(s[i + 2])) << 24) |
                           (uint32_t(uint8_t(s[i + 3])) << 16) |
                           (uint32_t(uint8_t(s[i + 4])) << 8) | uint8_t(s[i + 5]);
      out.push_back(s.substr(i, 6 + len));
      i += 6 + len;
    }
    return out;
  };
  const auto q = pdus(rq);  // A-ASSOCIATE-RQ, P-DATA (command), P-DATA (data set), A-RELEASE-RQ
  const auto a = pdus(ac);  // A-ASSOCIATE-AC, P-DATA (command response), A-RELEASE-RP
  if (q.size() != 4 || a.size() != 3) throw std::runtime_error("unexpected store streams");
  DicomStreams d{q[0], a[0], q[1], a[1], q[3], a[2]};
  auto pdata = [](const std::string& fragment, uint8_t context, uint8_t control) {
    std::string p;
    p += '\x04';
    p += '\0';
    put32be(p, static_cast<uint32_t>(fragment.size() + 6));
    put32be(p, static_cast<uint32_t>(fragment.size() + 2));
    p += static_cast<char>(context);
    p += static_cast<char>(control);
    return p + fragment;
  };
  const std::string& set = q[2];
  const uint8_t context = static_cast<uint8_t>(set[10]);
  std::string data = set.substr(12);  // the captured data set
  const size_t total = std::max(image_bytes, data.size());
  constexpr size_t kFragment = 16384 - 6;  // PDU length = item length + 4 <= 16384
  std::string out = d.command_and_data;
  size_t sent = 0;
  uint32_t seed = 1;
  while (sent < total) {
    const size_t n = std::min(kFragment, total - sent);
    const std::string frag =
        sent == 0 ? data + filler(n > data.size() ? n - data.size() : 0, seed) : filler(n, seed);
    ++seed;
    sent += frag.size();
    out += pdata(frag, context, sent >= total ? 0x02 : 0x00);
  }
  d.command_and_data = out;
  return d;
}

std::string mllp_oru(int id, size_t obx_count) {
  std::string m = "\x0bMSH|^~\\&|CT1|RADIOLOGY|RIS|HOSPITAL|20260101120000||ORU^R01|" +
                  std::to_string(id) + "|P|2.5\rPID|1||000" + std::to_string(id) +
                  "^^^HOSP^MR||ANONYMOUS^PATIENT||19700101|O\rOBR|1|||71020^CT HEAD\r";
  for (size_t i = 0; i < obx_count; ++i) {
    m += "OBX|" + std::to_string(i + 1) + "|NM|DOSE^CTDIvol^LN||" + std::to_string(10 + i) +
         ".5|mGy|||||F\r";
  }
  return m + "\x1c\r";
}
std::string mllp_ack(int id) {
  return "\x0bMSH|^~\\&|RIS|HOSPITAL|CT1|RADIOLOGY|20260101120001||ACK^R01|A" + std::to_string(id) +
         "|P|2.5\rMSA|AA|" + std::to_string(id) + "\r\x1c\r";
}

std::string direct_tcp(const std::string& smb) {
  std::string s;
  put32be(s, static_cast<uint32_t>(smb.size()));  // first byte 0, 24-bit length
  return s + smb;
}
std::string smb2_header(uint16_t command, uint64_t message_id, uint32_t flags) {
  std::string b = "\xfeSMB";
  put16le(b, 64);
  put16le(b, 0);
  put32le(b, 0);
  put16le(b, command);
  put16le(b, 1);
  put32le(b, flags);
  put32le(b, 0);
  put32le(b, static_cast<uint32_t>(message_id));
  put32le(b, static_cast<uint32_t>(message_id >> 32));
  put32le(b, 0xfeff);
  put32le(b, 1);                // tree id
  b += std::string(8, '\x11');  // session id
  b += std::string(16, '\0');   // signature
  return b;
}
std::string smb2_negotiate() {  // as tests/packets/generate.py
  std::string b = smb2_header(0, 0, 0);
  put16le(b, 36);
  put16le(b, 3);
  put16le(b, 1);
  put16le(b, 0);
  put32le(b, 0x7f);
  b += std::string(16, '\xab') + std::string(8, '\0');
  put16le(b, 0x0202);
  put16le(b, 0x0210);
  put16le(b, 0x0300);
  return direct_tcp(b);
}
std::string smb2_negotiate_response() {
  std::string b = smb2_header(0, 0, 1);
  put16le(b, 65);
  put16le(b, 1);
  put16le(b, 0x0210);
  put16le(b, 0);
  for (int i = 0; i < 16; ++i) b += static_cast<char>(i);
  put32le(b, 7);
  put32le(b, 65536);
  put32le(b, 65536);
  put32le(b, 65536);
  b += std::string(16, '\0');
  put16le(b, 128);
  put16le(b, 0);
  put32le(b, 0);
  return direct_tcp(b);
}
std::string smb2_write(uint64_t id, uint32_t length, uint64_t offset) {  // [MS-SMB2] 2.2.21
  std::string b = smb2_header(9, id, 0);
  put16le(b, 49);
  put16le(b, 0x70);
  put32le(b, length);
  put32le(b, static_cast<uint32_t>(offset));
  put32le(b, static_cast<uint32_t>(offset >> 32));
  b += std::string(16, '\x22');  // file id
  put32le(b, 0);
  put32le(b, 0);
  put16le(b, 0);
  put16le(b, 0);
  put32le(b, 0);
  return direct_tcp(b + filler(length, static_cast<uint32_t>(id)));
}
std::string smb2_write_response(uint64_t id, uint32_t length) {
  std::string b = smb2_header(9, id, 1);
  put16le(b, 17);
  put16le(b, 0);
  put32le(b, length);
  put32le(b, 0);
  put32le(b, 0);
  put16le(b, 0);
  put16le(b, 0);
  return direct_tcp(b);
}

// RDP, as tests/packets/generate.py builds it.
std::string tpkt(const std::string& p) {
  std::string s = "\x03";
  s += '\0';
  s += static_cast<char>((p.size() + 4) >> 8);
  s += static_cast<char>((p.size() + 4) & 0xff);
  return s + p;
}
std::string ber_length(size_t n) {
  if (n < 0x80) return std::string(1, static_cast<char>(n));
  if (n < 0x100) return std::string{'\x81', static_cast<char>(n)};
  return std::string{'\x82', static_cast<char>(n >> 8), static_cast<char>(n & 0xff)};
}
std::string ber(uint8_t tag, const std::string& c) {
  return std::string(1, static_cast<char>(tag)) + ber_length(c.size()) + c;
}
std::string per_length(size_t n) {
  if (n < 0x80) return std::string(1, static_cast<char>(n));
  return std::string{static_cast<char>(0x80 | (n >> 8)), static_cast<char>(n & 0xff)};
}
std::string block(uint16_t kind, const std::string& body) {
  std::string b;
  put16le(b, kind);
  put16le(b, static_cast<uint32_t>(body.size() + 4));
  return b + body;
}
std::string x224_connection_request() {
  std::string v = "Cookie: mstshash=user\r\n";
  v += std::string("\x01\x00", 2);
  put16le(v, 8);
  put32le(v, 0);  // standard RDP security: the MCS data is visible
  return tpkt(std::string{static_cast<char>(6 + v.size()), '\xe0', 0, 0, 0, 0, 0} + v);
}
std::string x224_connection_confirm() {
  std::string v = std::string("\x02\x00", 2);
  put16le(v, 8);
  put32le(v, 0);
  return tpkt(std::string{static_cast<char>(6 + v.size()), '\xd0', 0, 0, 0x12, 0x34, 0} + v);
}
std::string mcs_connect_initial(const std::vector<std::string>& channels) {
  std::string core;
  put32le(core, 0x00080004);
  put16le(core, 1024);
  put16le(core, 768);
  put16le(core, 0xca01);
  put16le(core, 0xaa03);
  put32le(core, 0x409);
  put32le(core, 2600);
  for (char c : std::string("WORKSTATION")) {
    core += c;
    core += '\0';
  }
  core += std::string(10, '\0');
  put32le(core, 4);
  put32le(core, 0);
  put32le(core, 12);
  core += std::string(64, '\0');
  put16le(core, 0xca01);
  put16le(core, 1);
  put32le(core, 0);
  put16le(core, 24);
  put16le(core, 0x07);
  put16le(core, 0x0001);
  std::string sec, cluster, net;
  put32le(sec, 0x1b);
  put32le(sec, 0);
  put32le(cluster, 0x0d);
  put32le(cluster, 0);
  put32le(net, static_cast<uint32_t>(channels.size()));
  for (const auto& n : channels) {
    std::string name = n.substr(0, 8);
    name.resize(8, '\0');
    net += name;
    put32le(net, 0x80800000);
  }
  const std::string user =
      block(0xc001, core) + block(0xc004, cluster) + block(0xc002, sec) + block(0xc003, net);
  std::string ccr = std::string("\x00\x08\x00\x10\x00\x01\xc0\x00", 8) + "Duca";
  ccr += per_length(user.size()) + user;
  const std::string gcc =
      std::string("\x00\x05\x00\x14\x7c\x00\x01", 7) + per_length(ccr.size()) + ccr;
  auto domain = [](uint32_t channels_, uint32_t users, uint32_t max_pdu) {
    std::string b;
    for (uint32_t v : {channels_, users, 0u, 1u, 0u, 1u, max_pdu, 2u}) {
      if (v < 0x80) {
        b += std::string{2, 1, static_cast<char>(v)};
      } else {
        b += std::string{2, 3, static_cast<char>(v >> 16), static_cast<char>((v >> 8) & 0xff),
                         static_cast<char>(v & 0xff)};
      }
    }
    return b;
  };
  const std::string content = std::string("\x04\x01\x01", 3) + ber(0x04, "\x01") +
                              ber(0x01, "\xff") + ber(0x30, domain(34, 2, 0xffff)) +
                              ber(0x30, domain(1, 1, 0x420)) +
                              ber(0x30, domain(0xffff, 0xfc17, 0xffff)) + ber(0x04, gcc);
  return tpkt(std::string("\x02\xf0\x80", 3) + "\x7f\x65" + ber_length(content.size()) + content);
}
std::string x224_data(size_t n, uint32_t seed) {
  return tpkt(std::string("\x02\xf0\x80", 3) + filler(n, seed));
}

// ---- the mix ----------------------------------------------------------------------------

struct MixConfig {
  int scale = 1;                    // connections of each kind multiplied by this
  size_t dicom_image = 512 * 1024;  // bytes of one CT image's data set
  std::string data_dir = CORDON_SOURCE_DIR "/tests/unit/dataplane/engine/inspect/data";
};

std::vector<Script> tcp_scripts(const MixConfig& cfg) {
  std::vector<Script> scripts;
  const DicomStreams d = dicom_streams(cfg.data_dir, cfg.dicom_image);
  uint16_t eph = 40000;   // device's ephemeral ports
  uint16_t peph = 50000;  // peers' ephemeral ports
  auto workstation = [](int i) { return "10.50.0." + std::to_string(100 + i % 32); };
  // DICOM: the CT stores one image per association to the PACS (MSS 1460).
  for (int i = 0; i < 8 * cfg.scale; ++i) {
    Script s;
    Tcp t(s, dicom, "dicom#" + std::to_string(i), true, kPacs, eph++, 104, 1460);
    t.handshake();
    t.data(true, d.assoc_rq);
    t.data(false, d.assoc_ac);
    t.data(true, d.command_and_data);
    t.data(false, d.command_rsp);
    t.data(true, d.release_rq);
    t.data(false, d.release_rp);
    t.close();
    scripts.push_back(std::move(s));
  }
  // HL7: results to the RIS, ORU^R01 (~1 KB) and its ACK, 6 per connection (MSS 536).
  for (int i = 0; i < 128 * cfg.scale; ++i) {
    Script s;
    Tcp t(s, hl7, "hl7#" + std::to_string(i), true, kRis, eph++, 2575, 536);
    t.handshake();
    for (int m = 0; m < 6; ++m) {
      t.data(true, mllp_oru(i * 10 + m, 4 + m % 8));
      t.data(false, mllp_ack(i * 10 + m));
    }
    t.close();
    scripts.push_back(std::move(s));
  }
  // SMB2: a workstation writes 4 x 64 KiB into the device's share (MSS 1460).
  for (int i = 0; i < 4 * cfg.scale; ++i) {
    Script s;
    Tcp t(s, smb2, "smb2#" + std::to_string(i), false, workstation(i), 445, peph++, 1460);
    t.handshake();
    t.data(true, smb2_negotiate());
    t.data(false, smb2_negotiate_response());
    for (uint64_t m = 1; m <= 4; ++m) {
      t.data(true, smb2_write(m, 65536, (m - 1) * 65536));
      t.data(false, smb2_write_response(m, 65536));
    }
    t.close();
    scripts.push_back(std::move(s));
  }
  // RDP: vendor service sessions (standard security, ordinary channels), then opaque
  // X.224 data: screen updates to the client, input to the server (MSS 536).
  for (int i = 0; i < 24 * cfg.scale; ++i) {
    Script s;
    Tcp t(s, rdp, "rdp#" + std::to_string(i), false, workstation(i + 8), 3389, peph++, 536);
    t.handshake();
    t.data(true, x224_connection_request());
    t.data(false, x224_connection_confirm());
    t.data(true, mcs_connect_initial({"rdpdr", "rdpsnd", "cliprdr", "drdynvc"}));
    for (uint32_t k = 0; k < 40; ++k) {
      t.data(false, x224_data(1500 + 400 * (k % 4), k));   // server: screen updates
      t.data(true, x224_data(40 + 8 * (k % 3), k + 100));  // client: input events
    }
    t.close();
    scripts.push_back(std::move(s));
  }
  // HTTP: the web console, GET and a ~4 KB page (MSS 1460).
  for (int i = 0; i < 8 * cfg.scale; ++i) {
    Script s;
    Tcp t(s, http, "http#" + std::to_string(i), false, workstation(i + 16), 80, peph++, 1460);
    t.handshake();
    t.data(true, "GET /status/dose-log?page=" + std::to_string(i) +
                     " HTTP/1.1\r\nHost: ct-1\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html\r\n"
                     "Connection: close\r\n\r\n");
    t.data(false, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + filler(4000, i));
    t.close();
    scripts.push_back(std::move(s));
  }
  return scripts;
}

Frame udp_frame(bool from_device, const char* peer, uint16_t dev_port, uint16_t peer_port,
                size_t payload, const std::string& what) {
  FrameBuilder b;
  if (from_device) {
    b.eth(kDeviceMac, kGatewayMac).ipv4(kDevice, peer).udp(dev_port, peer_port);
  } else {
    b.eth(kGatewayMac, kDeviceMac).ipv4(peer, kDevice).udp(peer_port, dev_port);
  }
  b.payload(filler(payload, dev_port));
  return {pad(b.build()), from_device ? Side::device : Side::network, udp, what};
}

// Background UDP/ICMP filling the size classes up to IMIX's 7:4:1 (as counted on the wire).
std::vector<Script> background(std::array<size_t, 3> have) {
  const size_t unit = std::max({have[2], (have[1] + 3) / 4, (have[0] + 6) / 7});
  std::vector<Script> out;
  size_t small = 7 * unit - have[0], medium = 4 * unit - have[1];
  // Small: ICMP echo to the gateway (64 bytes), NTP (90), syslog lines (~150).
  for (size_t i = 0; small > 0; ++i) {
    Script s;
    const uint16_t id = static_cast<uint16_t>(i % 64);
    if (i % 4 < 2) {
      s.push_back({pad(FrameBuilder()
                           .eth(kDeviceMac, kGatewayMac)
                           .ipv4(kDevice, kGateway)
                           .icmp_echo_request(id, static_cast<uint16_t>(i))
                           .payload(filler(18, id))
                           .build()),
                   Side::device, icmp, "icmp echo request " + std::to_string(i)});
      if (small > 1) {
        s.push_back({pad(FrameBuilder()
                             .eth(kGatewayMac, kDeviceMac)
                             .ipv4(kGateway, kDevice)
                             .icmp_echo_reply(id, static_cast<uint16_t>(i))
                             .payload(filler(18, id))
                             .build()),
                     Side::network, icmp, "icmp echo reply " + std::to_string(i)});
      }
    } else if (i % 4 == 2) {
      s.push_back(udp_frame(true, kNtp, static_cast<uint16_t>(30000 + i % 16), 123, 48,
                            "ntp request " + std::to_string(i)));
      if (small > 1) {
        s.push_back(udp_frame(false, kNtp, static_cast<uint16_t>(30000 + i % 16), 123, 48,
                              "ntp reply " + std::to_string(i)));
      }
    } else {
      s.push_back(udp_frame(true, kSyslog, static_cast<uint16_t>(31000 + i % 16), 514, 100,
                            "syslog " + std::to_string(i)));
    }
    small -= std::min(small, s.size());
    out.push_back(std::move(s));
  }
  // Medium: long syslog records (590-byte frames).
  for (size_t i = 0; i < medium; ++i) {
    out.push_back({udp_frame(true, kSyslog, static_cast<uint16_t>(31000 + i % 16), 514, 548,
                             "syslog record " + std::to_string(i))});
  }
  return out;
}

// Interleaves the scripts, keeping each one's order: at every step a random script is
// chosen with probability proportional to the frames it has left, so all connections run
// concurrently over the whole sequence.
std::vector<Frame> interleave(std::vector<Script> scripts, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Frame> out;
  size_t total = 0;
  for (const auto& s : scripts) total += s.size();
  out.reserve(total);
  std::vector<size_t> next(scripts.size(), 0);
  // Fenwick tree over the remaining counts.
  const size_t n = scripts.size();
  std::vector<int64_t> tree(n + 1, 0);
  auto add = [&](size_t i, int64_t v) {
    for (++i; i <= n; i += i & (~i + 1)) tree[i] += v;
  };
  for (size_t i = 0; i < n; ++i) add(i, static_cast<int64_t>(scripts[i].size()));
  size_t log = 1;
  while ((size_t{1} << log) <= n) ++log;
  for (size_t left = total; left > 0; --left) {
    int64_t r = static_cast<int64_t>(rng() % left);
    size_t pos = 0;
    for (size_t step = size_t{1} << log; step > 0; step >>= 1) {
      if (pos + step <= n && tree[pos + step] <= r) {
        pos += step;
        r -= tree[pos];
      }
    }
    out.push_back(std::move(scripts[pos][next[pos]++]));
    add(pos, -1);
  }
  return out;
}

// ---- policies ---------------------------------------------------------------------------

engine::PolicyDocument policy(bool inspection) {
  using namespace engine;
  Device d;
  d.name = "ct-1";
  d.mac = *MacAddress::parse(kDeviceMac);
  d.ips = {*IpAddress::parse(kDevice)};
  auto rule = [](const char* name, Direction dir, Protocol proto, const char* peer,
                 PortRange ports) {
    Rule r;
    r.name = name;
    r.dir = dir;
    r.proto = proto;
    r.peer = *Cidr::parse(peer);
    r.dport = ports;
    return r;
  };
  Rule store = rule("store-to-pacs", Direction::out, Protocol::tcp, "10.50.0.20/32", {104, 104});
  Rule results = rule("results", Direction::out, Protocol::tcp, "10.50.0.30/32", {2575, 2575});
  if (inspection) {
    store.dicom = DicomConstraints{{"CT1"}, {"PACS"}, {"C-ECHO", "C-STORE"}, {kCtImage}};
    results.hl7 = Hl7Constraints{{"ORU^R01"}, {}};
  }
  d.rules = {store,
             results,
             rule("file-share", Direction::in, Protocol::tcp, "10.50.0.0/24", {445, 445}),
             rule("remote-service", Direction::in, Protocol::tcp, "10.50.0.0/24", {3389, 3389}),
             rule("web-console", Direction::in, Protocol::tcp, "10.50.0.0/24", {80, 80}),
             rule("syslog", Direction::out, Protocol::udp, "10.50.0.40/32", {514, 514}),
             rule("ntp", Direction::out, Protocol::udp, "10.50.0.41/32", {123, 123}),
             rule("ping-gateway", Direction::out, Protocol::icmp, "10.50.0.1/32", {})};
  PolicyDocument doc;
  if (inspection) {
    d.patches = {"smb1-block", "ms17-010", "cve-2019-0708", "dicom-pdu-sanity",
                 "local-http-traversal"};
    PolicyPatch traversal;
    traversal.id = "local-http-traversal";
    traversal.cve = "CVE-2021-41773";
    traversal.dir = Direction::in;
    traversal.proto = Protocol::tcp;
    traversal.dport = {80, 80};
    traversal.match.content = "/.%2e/";
    traversal.action = PatchAction::drop;
    doc.patches = {traversal};
  }
  doc.devices.push_back(d);
  return doc;
}

// ---- timing -----------------------------------------------------------------------------

uint64_t tsc() {
  _mm_lfence();
  const uint64_t t = __rdtsc();
  _mm_lfence();
  return t;
}
uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}
long switches() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return u.ru_nvcsw + u.ru_nivcsw;
}

struct Drop {
  std::string variant;
  size_t pass, index;
  std::string what, action, reason;
};

struct Variant {
  std::string name;
  std::unique_ptr<engine::Engine> engine;
  std::vector<double> cycles_per_packet, ns_per_packet;
  size_t discarded_chunks = 0, drops = 0;
};

const char* action_name(Action a) {
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

constexpr size_t kBatch = 32;
constexpr size_t kChunkBatches = 32;  // 1024 packets per timed chunk

// One run: `passes` passes over the sequence; chunks of 1024 packets during which the
// thread was switched out are not counted. Every verdict is checked after its chunk.
void run(Variant& v, const std::vector<engine::PacketView>& views, const std::vector<Frame>& frames,
         size_t passes, std::vector<Drop>& drops, size_t pass_base) {
  std::vector<engine::Verdict> verdicts(kBatch * kChunkBatches);
  engine::Worker& w = v.engine->worker(0);
  w.wake();
  uint64_t cycles = 0, ns = 0, packets = 0;
  for (size_t p = 0; p < passes; ++p) {
    for (size_t at = 0; at < views.size(); at += kBatch * kChunkBatches) {
      const size_t end = std::min(views.size(), at + kBatch * kChunkBatches);
      const long sw0 = switches();
      const uint64_t n0 = now_ns();
      const uint64_t t0 = tsc();
      for (size_t b = at; b < end; b += kBatch) {
        const size_t k = std::min(kBatch, end - b);
        w.process({views.data() + b, k}, {verdicts.data() + (b - at), k}, now_ns());
      }
      const uint64_t t1 = tsc();
      const uint64_t n1 = now_ns();
      if (switches() == sw0) {
        cycles += t1 - t0;
        ns += n1 - n0;
        packets += end - at;
      } else {
        ++v.discarded_chunks;
      }
      for (size_t i = at; i < end; ++i) {
        const engine::Verdict& vd = verdicts[i - at];
        if (vd.action != Action::forward) {
          ++v.drops;
          if (drops.size() < 50) {
            drops.push_back({v.name, pass_base + p, i, frames[i].what, action_name(vd.action),
                             std::string(engine::label(vd.reason))});
          }
        }
      }
    }
  }
  w.go_idle();
  v.cycles_per_packet.push_back(static_cast<double>(cycles) / static_cast<double>(packets));
  v.ns_per_packet.push_back(static_cast<double>(ns) / static_cast<double>(packets));
}

struct Stat {
  double median, min, max;
};
Stat stat(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  const double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return {med, v.front(), v.back()};
}

double ratio_of(size_t a, size_t b) {
  return static_cast<double>(a) / static_cast<double>(b);
}

std::string fmt(double x, int prec = 2) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", prec, x);
  return buf;
}
std::string cell(const Stat& s, int prec = 2) {
  return fmt(s.median, prec) + " (" + fmt(s.min, prec) + "–" + fmt(s.max, prec) + ")";
}
std::string json_array(const std::vector<double>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + fmt(v[i], 3);
  return s + "]";
}
std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o;
}

int main_(int argc, char** argv) {
  size_t rounds = 5, passes = 4;
  MixConfig cfg;
  std::string md_path, json_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const size_t eq = a.find('=');
    const std::string key = a.substr(0, eq), val = eq == std::string::npos ? "" : a.substr(eq + 1);
    if (key == "--rounds") {
      rounds = std::stoul(val);
    } else if (key == "--passes") {
      passes = std::stoul(val);
    } else if (key == "--scale") {
      cfg.scale = std::stoi(val);
    } else if (key == "--data") {
      cfg.data_dir = val;
    } else if (key == "--md") {
      md_path = val;
    } else if (key == "--json") {
      json_path = val;
    } else {
      std::cerr << "usage: cordon_bench_mix [--rounds=N] [--passes=N] [--scale=N] [--data=DIR] "
                   "[--md=FILE] [--json=FILE]\n";
      return 1;
    }
  }

  // The sequence.
  std::vector<Script> scripts = tcp_scripts(cfg);
  std::array<size_t, 3> have{};
  for (const auto& s : scripts) {
    for (const auto& f : s) ++have[size_class(wire_size(f))];
  }
  for (auto& s : background(have)) scripts.push_back(std::move(s));
  size_t connections = 0;
  for (const auto& s : scripts) connections += s.size() > 0 && s[0].proto < udp ? 1 : 0;
  const std::vector<Frame> frames = interleave(std::move(scripts), 0xc0d0);
  std::vector<engine::PacketView> views;
  views.reserve(frames.size());
  std::array<size_t, 3> cls{};
  std::array<size_t, 3> exact{};  // exactly 64, 594, 1518 on the wire
  std::array<size_t, kProtos> proto_packets{}, proto_bytes{};
  size_t wire_bytes = 0;
  for (const auto& f : frames) {
    views.push_back({f.bytes.data(), static_cast<uint32_t>(f.bytes.size()), f.side});
    const size_t w = wire_size(f);
    wire_bytes += w;
    ++cls[size_class(w)];
    exact[0] += w == 64;
    exact[1] += w == 594;
    exact[2] += w == 1518;
    ++proto_packets[f.proto];
    proto_bytes[f.proto] += w;
  }
  const double mean_wire = static_cast<double>(wire_bytes) / static_cast<double>(frames.size());

  // The two engines, one policy each.
  std::vector<Variant> variants(2);
  for (int i = 0; i < 2; ++i) {
    variants[i].name = i == 0 ? "inspection on" : "inspection off";
    engine::EngineConfig c;
    c.flows_per_worker = 65536;
    c.inspected_flows_per_worker = 2048;
    variants[i].engine = std::make_unique<engine::Engine>(c);
    engine::CompileResult r = engine::compile_policy(policy(i == 0), 1, 1);
    if (!r.errors.empty()) {
      std::cerr << "policy: " << r.errors[0].to_string() << "\n";
      return 1;
    }
    variants[i].engine->publish(std::move(r.policy));
  }

  std::cerr << "bench mix: " << frames.size() << " frames, " << connections
            << " TCP connections per pass; " << rounds << " rounds x " << passes << " passes\n";
  std::vector<Drop> drops;
  const uint64_t tsc0 = tsc(), ns0 = now_ns();
  for (auto& v : variants) run(v, views, frames, 1, drops, 0);  // warm-up, verified too
  for (auto& v : variants) {
    v.cycles_per_packet.clear();
    v.ns_per_packet.clear();
  }
  for (size_t r = 0; r < rounds; ++r) {
    for (auto& v : variants) run(v, views, frames, passes, drops, 1 + r * passes);
  }
  const double tsc_hz =
      static_cast<double>(tsc() - tsc0) / (static_cast<double>(now_ns() - ns0) * 1e-9);

  // Report.
  const double line_bits = (mean_wire + 20) * 8;
  const double target_mpps = 2e9 / line_bits / 1e6;  // 2 x 1 GbE of this mix
  std::ostringstream md, js;
  md << "## Clinical traffic mix, inspection on vs off (part 3)\n\n"
     << "Produced by `bench/run.sh mix` (bench/clinical_mix.cpp); method in bench/README.md. "
        "One engine worker, frames from memory (no NIC, no DPDK), batches of 32. Each cell: "
        "median (min–max) of "
     << rounds << " runs per variant, interleaved on/off; one run = " << passes
     << " passes over the sequence. TSC " << fmt(tsc_hz / 1e9, 3) << " GHz.\n\n";
  md << "### Throughput per core\n\n"
     << "| | cycles/packet | ns/packet | Mpps | Gbit/s on the wire | × 2×1 GbE |\n"
     << "|---|---:|---:|---:|---:|---:|\n";
  js << "{\n  \"frames_per_pass\": " << frames.size()
     << ",\n  \"tcp_connections_per_pass\": " << connections << ",\n  \"rounds\": " << rounds
     << ",\n  \"passes\": " << passes << ",\n  \"batch\": " << kBatch
     << ",\n  \"tsc_hz\": " << fmt(tsc_hz, 0) << ",\n  \"mean_wire_bytes\": " << fmt(mean_wire, 2)
     << ",\n  \"target_mpps\": " << fmt(target_mpps, 4) << ",\n  \"variants\": {";
  std::vector<Stat> mpps_stats;
  for (size_t i = 0; i < variants.size(); ++i) {
    const auto& v = variants[i];
    std::vector<double> mpps, gbps;
    for (double ns : v.ns_per_packet) {
      mpps.push_back(1e3 / ns);
      gbps.push_back(1e3 / ns * line_bits / 1e3);
    }
    const Stat c = stat(v.cycles_per_packet), n = stat(v.ns_per_packet), m = stat(mpps),
               g = stat(gbps);
    mpps_stats.push_back(m);
    md << "| " << v.name << " | " << cell(c, 0) << " | " << cell(n, 0) << " | " << cell(m) << " | "
       << cell(g) << " | " << fmt(g.median / 2, 2) << " |\n";
    js << (i ? "," : "") << "\n    \"" << v.name
       << "\": {\"cycles_per_packet\": " << json_array(v.cycles_per_packet)
       << ", \"ns_per_packet\": " << json_array(v.ns_per_packet)
       << ", \"discarded_chunks\": " << v.discarded_chunks << ", \"not_forwarded\": " << v.drops
       << "}";
  }
  js << "\n  },\n";
  std::vector<double> ratios;
  for (size_t r = 0; r < variants[0].cycles_per_packet.size(); ++r) {
    ratios.push_back(variants[0].cycles_per_packet[r] / variants[1].cycles_per_packet[r]);
  }
  const Stat ratio = stat(ratios);
  const double med_ratio =
      stat(variants[0].cycles_per_packet).median / stat(variants[1].cycles_per_packet).median;
  md << "\nInspection on costs **" << fmt(med_ratio) << "×** the cycles per packet of "
     << "inspection off (ratio of medians; per round " << cell(ratio) << "). Target: 2 × 1 GbE "
     << "of this mix = " << fmt(target_mpps, 3) << " Mpps per core (issue: ≥ 0.67 Mpps IMIX). "
     << "Inspection on: " << fmt(mpps_stats[0].median) << " Mpps = **"
     << fmt(mpps_stats[0].median / target_mpps) << "×** the target ("
     << (mpps_stats[0].median >= std::max(target_mpps, 0.67) ? "met" : "NOT met")
     << "); off: " << fmt(mpps_stats[1].median / target_mpps) << "×.\n\n";
  js << "  \"on_over_off_cycles\": " << fmt(med_ratio, 4)
     << ",\n  \"on_over_off_per_round\": " << json_array(ratios) << ",\n";

  md << "### The mix (one pass)\n\n"
     << frames.size() << " frames, " << connections << " TCP connections (all opened, "
     << "concurrent and closed with FIN within one pass), mean " << fmt(mean_wire, 1)
     << " bytes on the wire (frame padded to 60 + 4 FCS; IMIX 7:4:1 of 64/594/1518: 361.8). "
     << "Size classes (wire bytes < 330 / 330–1056 / > 1056): " << cls[0] << " / " << cls[1]
     << " / " << cls[2] << " = " << fmt(12 * ratio_of(cls[0], frames.size()), 2) << " : "
     << fmt(12 * ratio_of(cls[1], frames.size()), 2) << " : "
     << fmt(12 * ratio_of(cls[2], frames.size()), 2)
     << " (per 12); exactly 64 / 594 / 1518: " << exact[0] << " / " << exact[1] << " / " << exact[2]
     << ".\n\n"
     << "| traffic | frames | share of frames | share of bytes |\n|---|---:|---:|---:|\n";
  js << "  \"size_classes\": [" << cls[0] << ", " << cls[1] << ", " << cls[2]
     << "],\n  \"exact_imix_sizes\": [" << exact[0] << ", " << exact[1] << ", " << exact[2]
     << "],\n  \"traffic\": {";
  for (size_t p = 0; p < kProtos; ++p) {
    md << "| " << kProtoNames[p] << " | " << proto_packets[p] << " | "
       << fmt(100 * ratio_of(proto_packets[p], frames.size()), 1) << " % | "
       << fmt(100 * ratio_of(proto_bytes[p], wire_bytes), 1) << " % |\n";
    js << (p ? ", " : "") << "\"" << kProtoNames[p] << "\": [" << proto_packets[p] << ", "
       << proto_bytes[p] << "]";
  }
  js << "},\n";
  md << "\n### Verdicts\n\n";
  size_t total_drops = 0;
  for (const auto& v : variants) {
    md << "* " << v.name << ": " << v.drops << " frames not forwarded (of "
       << frames.size() * (1 + rounds * passes) << "); " << v.discarded_chunks
       << " timing chunks of 1024 discarded (thread switched out).\n";
    total_drops += v.drops;
  }
  js << "  \"drops\": [";
  for (size_t i = 0; i < drops.size(); ++i) {
    const auto& d = drops[i];
    md << (i == 0 ? "\nUNEXPECTED drops (first " + std::to_string(drops.size()) + "):\n\n" : "")
       << "* " << d.variant << ", pass " << d.pass << ", frame " << d.index << " (" << d.what
       << "): " << d.action << ", " << d.reason << "\n";
    js << (i ? ", " : "") << "{\"variant\": \"" << d.variant << "\", \"pass\": " << d.pass
       << ", \"frame\": " << d.index << ", \"what\": \"" << json_escape(d.what)
       << "\", \"action\": \"" << d.action << "\", \"reason\": \"" << d.reason << "\"}";
  }
  js << "]\n}\n";
  std::cout << md.str();
  if (!md_path.empty()) std::ofstream(md_path) << md.str();
  if (!json_path.empty()) std::ofstream(json_path) << js.str();
  return total_drops == 0 ? 0 : 2;
}

}  // namespace
}  // namespace cordon::bench

int main(int argc, char** argv) {
  try {
    return cordon::bench::main_(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "cordon_bench_mix: " << e.what() << "\n";
    return 1;
  }
}
