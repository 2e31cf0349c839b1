// SMB inspector tests. Messages come from the builder below; the exploit messages carry the
// field values documented by public tools and write-ups (named at each one). Every stream
// is also fed in 1-byte pieces and split in two at every byte, and must give the same
// observer calls and result.
#include "dataplane/engine/inspect/smb.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

namespace cordon::engine::smb {
void PrintTo(Result result, std::ostream* os) {
  *os << to_string(result);
}
}  // namespace cordon::engine::smb

namespace cordon::engine::smb {
namespace {

static_assert(std::is_trivially_copyable_v<Parser>, "pool slots are reset by assignment");
static_assert(sizeof(Parser) <= 512, "per-flow pool budget");

using Bytes = std::vector<uint8_t>;

// --- builder -------------------------------------------------------------------------

void put8(Bytes& b, uint32_t v) {
  b.push_back(static_cast<uint8_t>(v));
}
void put16(Bytes& b, uint32_t v) {
  put8(b, v);
  put8(b, v >> 8);
}
void put32(Bytes& b, uint32_t v) {
  put16(b, v);
  put16(b, v >> 16);
}
void append(Bytes& b, const Bytes& more) {
  b.insert(b.end(), more.begin(), more.end());
}
Bytes operator+(Bytes a, const Bytes& b) {
  append(a, b);
  return a;
}
Bytes prefix(const Bytes& b, size_t n) {
  return Bytes(b.begin(), b.begin() + static_cast<ptrdiff_t>(n));
}
Bytes without_session_header(const Bytes& b) {
  return Bytes(b.begin() + 4, b.end());
}

// A 445 session message: zero byte, 24-bit length ([MS-SMB2] 2.1).
Bytes direct(const Bytes& smb) {
  const auto n = static_cast<uint32_t>(smb.size());
  Bytes b = {0x00, static_cast<uint8_t>(n >> 16), static_cast<uint8_t>(n >> 8),
             static_cast<uint8_t>(n)};
  return b + smb;
}

// A 139 session service packet (RFC 1002 §4.3.1).
Bytes netbios(uint8_t type, const Bytes& payload, uint8_t flags = 0) {
  const auto n = static_cast<uint32_t>(payload.size());
  Bytes b = {type, static_cast<uint8_t>(flags | (n >> 16)), static_cast<uint8_t>(n >> 8),
             static_cast<uint8_t>(n)};
  return b + payload;
}

struct Smb1 {
  uint8_t command = 0;
  uint32_t status = 0;
  uint8_t flags = 0x18;  // canonicalized paths, case-insensitive
  uint16_t flags2 = 0xC007;
  uint16_t tid = 0x0800;
  uint32_t pid = 0xFEFF;
  uint16_t uid = 0x0800;
  uint16_t mid = 0x0041;
};

// [MS-CIFS] 2.2.3.1 header, then WordCount, the words, ByteCount, the bytes.
Bytes smb1(const Smb1& h, const Bytes& words, const Bytes& data) {
  Bytes b = {0xFF, 'S', 'M', 'B', h.command};
  put32(b, h.status);
  put8(b, h.flags);
  put16(b, h.flags2);
  put16(b, h.pid >> 16);
  b.insert(b.end(), 8, 0);  // SecurityFeatures
  put16(b, 0);              // Reserved
  put16(b, h.tid);
  put16(b, h.pid);
  put16(b, h.uid);
  put16(b, h.mid);
  put8(b, static_cast<uint32_t>(words.size() / 2));
  append(b, words);
  put16(b, static_cast<uint32_t>(data.size()));
  append(b, data);
  return b;
}

Bytes dialects(const std::vector<std::string>& names) {
  Bytes b;
  for (const std::string& n : names) {
    b.push_back(0x02);
    b.insert(b.end(), n.begin(), n.end());
    b.push_back(0);
  }
  return b;
}

// What `smbclient -m NT1` sends: NEGOTIATE offering only "NT LM 0.12".
Bytes negotiate_nt1(uint16_t mid = 1) {
  return smb1({.command = smb1_command::negotiate, .flags2 = 0xC853, .mid = mid}, {},
              dialects({"NT LM 0.12"}));
}

// The multi-protocol negotiate of Windows 7 ([MS-SMB2] 3.2.4.2.2.1).
Bytes negotiate_multi_protocol() {
  return smb1({.command = smb1_command::negotiate, .flags2 = 0xC853, .mid = 0}, {},
              dialects({"PC NETWORK PROGRAM 1.0", "LANMAN1.0", "Windows for Workgroups 3.1a",
                        "LM1.2X002", "LANMAN2.1", "NT LM 0.12", "SMB 2.002", "SMB 2.???"}));
}

// [MS-SMB2] 2.2.1.2 sync header.
Bytes smb2_header(uint16_t command, uint64_t message_id, uint32_t next = 0, uint32_t flags = 0,
                  uint32_t status = 0, uint16_t structure_size = 64) {
  Bytes b = {0xFE, 'S', 'M', 'B'};
  put16(b, structure_size);
  put16(b, 0);  // CreditCharge
  put32(b, status);
  put16(b, command);
  put16(b, 1);  // CreditRequest
  put32(b, flags);
  put32(b, next);
  put32(b, static_cast<uint32_t>(message_id));
  put32(b, static_cast<uint32_t>(message_id >> 32));
  put32(b, 0xFEFF);              // Reserved (ProcessId)
  put32(b, 0);                   // TreeId
  b.insert(b.end(), 8 + 16, 0);  // SessionId, Signature
  return b;
}

// SMB2 NEGOTIATE request ([MS-SMB2] 2.2.3) offering 2.0.2, 2.1 and 3.0.
Bytes smb2_negotiate() {
  Bytes b = smb2_header(0x0000, 0);
  put16(b, 36);  // StructureSize
  put16(b, 3);   // DialectCount
  put16(b, 1);   // SecurityMode: signing enabled
  put16(b, 0);
  put32(b, 0x7F);               // Capabilities
  b.insert(b.end(), 16, 0xAB);  // ClientGuid
  b.insert(b.end(), 8, 0);      // ClientStartTime
  put16(b, 0x0202);
  put16(b, 0x0210);
  put16(b, 0x0300);
  return b;
}

// TRANSACTION / TRANSACTION2 request ([MS-CIFS] 2.2.4.33.1, 2.2.4.46.1), laid out as a
// conforming client does: parameters after ByteCount (and `name` for TRANSACTION), data
// after the parameters.
Bytes trans_request(const Smb1& h, const std::vector<uint16_t>& setup, const Bytes& params,
                    const Bytes& data, const Bytes& name = {}, uint32_t timeout = 0) {
  const auto wc = static_cast<uint32_t>(14 + setup.size());
  const uint32_t first_free = 33 + 2 * wc + 2;
  const auto po = static_cast<uint32_t>(first_free + name.size());
  const auto d_o = static_cast<uint32_t>(po + params.size());
  Bytes w;
  put16(w, static_cast<uint32_t>(params.size()));  // TotalParameterCount
  put16(w, static_cast<uint32_t>(data.size()));    // TotalDataCount
  put16(w, 1024);                                  // MaxParameterCount
  put16(w, 4096);                                  // MaxDataCount
  put8(w, 0);                                      // MaxSetupCount
  put8(w, 0);
  put16(w, 0);  // Flags
  put32(w, timeout);
  put16(w, 0);
  put16(w, static_cast<uint32_t>(params.size()));
  put16(w, params.empty() ? 0 : po);
  put16(w, static_cast<uint32_t>(data.size()));
  put16(w, data.empty() ? 0 : d_o);
  put8(w, static_cast<uint32_t>(setup.size()));
  put8(w, 0);
  for (uint16_t s : setup) put16(w, s);
  return smb1(h, w, name + params + data);
}

// TRANSACTION2_SECONDARY request ([MS-CIFS] 2.2.4.47.1): `data` at `displacement` of a
// transaction of `total_data` bytes.
Bytes trans2_secondary(const Smb1& h, uint16_t total_data, const Bytes& data,
                       uint16_t displacement) {
  Bytes w;
  put16(w, 0);  // TotalParameterCount
  put16(w, total_data);
  put16(w, 0);  // ParameterCount
  put16(w, 0);  // ParameterOffset
  put16(w, 0);  // ParameterDisplacement
  put16(w, static_cast<uint32_t>(data.size()));
  put16(w, 33 + 18 + 2);  // DataOffset: right after ByteCount
  put16(w, displacement);
  put16(w, 0);  // FID
  return smb1(h, w, data);
}

// NT_TRANSACT request ([MS-CIFS] 2.2.4.62.1). Counts as given; offsets as given.
struct NtTrans {
  uint32_t total_parameter = 0;
  uint32_t total_data = 0;
  uint32_t parameter_count = 0;
  uint32_t parameter_offset = 0;
  uint32_t data_count = 0;
  uint32_t data_offset = 0;
  uint16_t function = 0;
  uint32_t byte_count = 0;  // bytes after ByteCount
};
Bytes nt_trans(const Smb1& h, const NtTrans& t) {
  Bytes w;
  put8(w, 1);   // MaxSetupCount
  put16(w, 0);  // Reserved1
  put32(w, t.total_parameter);
  put32(w, t.total_data);
  put32(w, t.total_parameter);  // MaxParameterCount
  put32(w, 0);                  // MaxDataCount
  put32(w, t.parameter_count);
  put32(w, t.parameter_offset);
  put32(w, t.data_count);
  put32(w, t.data_offset);
  put8(w, 1);  // SetupCount
  put16(w, t.function);
  put16(w, 0);  // Setup[0]
  return smb1(h, w, Bytes(t.byte_count, 0));
}

// NT_TRANSACT_SECONDARY request ([MS-CIFS] 2.2.4.63.1), data only, right after ByteCount.
Bytes nt_trans_secondary(const Smb1& h, uint32_t total_parameter, uint32_t total_data,
                         uint32_t data_count, uint32_t data_displacement) {
  Bytes w;
  w.insert(w.end(), 3, 0);  // Reserved1
  put32(w, total_parameter);
  put32(w, total_data);
  put32(w, 0);  // ParameterCount
  put32(w, 0);  // ParameterOffset
  put32(w, 0);  // ParameterDisplacement
  put32(w, data_count);
  put32(w, 33 + 36 + 2);  // DataOffset
  put32(w, data_displacement);
  put8(w, 0);  // Reserved2
  return smb1(h, w, Bytes(data_count, 0x42));
}

constexpr uint16_t kSmbOffset = 4;  // the session header in front of the SMB message
void set16(Bytes& b, size_t smb_offset, uint16_t v) {
  b[kSmbOffset + smb_offset] = static_cast<uint8_t>(v);
  b[kSmbOffset + smb_offset + 1] = static_cast<uint8_t>(v >> 8);
}

// DoublePulsar ping: the TRANS2 SESSION_SETUP request of Countercept's
// detect_doublepulsar_smb.py (WordCount 15, TotalParameterCount 12, MaxParameterCount 1,
// Timeout 0x00A4D9A6 - its bytes sum to 0x23, the implant's "ping" opcode -
// ParameterCount 12 at 66, DataCount 0 at 78, Setup[0] 0x000E, 13 bytes), MID 0x41.
Bytes doublepulsar_ping() {
  Bytes w;
  put16(w, 12);  // TotalParameterCount
  put16(w, 0);   // TotalDataCount
  put16(w, 1);   // MaxParameterCount
  put16(w, 0);   // MaxDataCount
  put8(w, 0);
  put8(w, 0);
  put16(w, 0);
  put32(w, 0x00A4D9A6);  // Timeout
  put16(w, 0);
  put16(w, 12);  // ParameterCount
  put16(w, 66);  // ParameterOffset
  put16(w, 0);   // DataCount
  put16(w, 78);  // DataOffset
  put8(w, 1);    // SetupCount
  put8(w, 0);
  put16(w, kTrans2SessionSetup);
  return direct(smb1({.command = smb1_command::transaction2, .mid = 0x41}, w, Bytes(13, 0)));
}

// The implant's answer: STATUS_NOT_IMPLEMENTED, MID 0x41 + 0x10.
Bytes doublepulsar_reply(uint16_t mid, uint32_t status = kStatusNotImplemented) {
  return direct(
      smb1({.command = smb1_command::transaction2, .status = status, .flags = 0x98, .mid = mid}, {},
           {}));
}

// EternalBlue's NT Trans as Metasploit's ms17_010_eternalblue.rb sends it: TotalDataCount
// 66512 (more than a TRANS2 can carry), Function 0, 30 parameter bytes at 75 and 976 data
// bytes at 104 - overlapping the parameters - then its TRANS2_SECONDARY messages: 4096 data
// bytes at displacement 976 + 4096 * i of a TotalDataCount of 4096, same MID 0x40.
Bytes eternalblue_nt_trans() {
  return direct(
      nt_trans({.command = smb1_command::nt_transact, .mid = 0x40}, {.total_parameter = 30,
                                                                     .total_data = 66512,
                                                                     .parameter_count = 30,
                                                                     .parameter_offset = 75,
                                                                     .data_count = 976,
                                                                     .data_offset = 104,
                                                                     .function = 0,
                                                                     .byte_count = 1005}));
}
Bytes eternalblue_secondary(uint16_t i) {
  return direct(trans2_secondary({.command = smb1_command::transaction2_secondary, .mid = 0x40},
                                 4096, Bytes(4096, 0x41), static_cast<uint16_t>(976 + 4096 * i)));
}

// A conforming incomplete NT Trans (the first 976 of 66512 data bytes, regions apart).
Bytes incomplete_nt_trans(uint16_t mid) {
  return direct(
      nt_trans({.command = smb1_command::nt_transact, .mid = mid}, {.total_parameter = 30,
                                                                    .total_data = 66512,
                                                                    .parameter_count = 30,
                                                                    .parameter_offset = 75,
                                                                    .data_count = 976,
                                                                    .data_offset = 108,
                                                                    .function = 2,
                                                                    .byte_count = 33 + 976}));
}

// NetServerEnum2 over \PIPE\LANMAN, as in [MS-RAP] 4.2: an ordinary TRANSACTION.
Bytes net_server_enum2() {
  Bytes name = {0x00};  // pad to 16 bits for the Unicode name
  for (char c : std::string("\\PIPE\\LANMAN")) {
    name.push_back(static_cast<uint8_t>(c));
    name.push_back(0);
  }
  name.push_back(0);
  name.push_back(0);
  const Bytes params = {0x68, 0x00, 'W', 'r', 'L',  'e',  'h',  'D',  'O',  0x00, 'B',  '1',  '6',
                        'B',  'B',  'D', 'z', 0x00, 0x01, 0x00, 0x00, 0x18, 0xFF, 0xFF, 0xFF, 0xFF};
  return direct(trans_request({.command = smb1_command::transaction, .mid = 0x1B02}, {}, params, {},
                              name, 5000));
}

// --- running -------------------------------------------------------------------------

std::string describe(const Message& m) {
  char text[256];
  std::snprintf(text, sizeof text,
                "dialect=%d nb=%02x reply=%d len=%u status=%08x ind=%02x cmd=%02x wc=%u "
                "tid=%u pid=%x uid=%u mid=%u sub=%x smb2dialects=%d smb2cmd=%u id=%llu ci=%u",
                static_cast<int>(m.dialect), m.netbios_type, m.reply, m.length, m.status,
                m.indicators, m.command, m.word_count, m.tid, m.pid, m.uid, m.mid, m.subcommand,
                m.smb2_dialects_offered, m.smb2_command,
                static_cast<unsigned long long>(m.message_id), m.compound_index);
  return text;
}

struct Outcome {
  Result result = Result::ok;
  std::vector<std::string> calls;
  std::vector<Message> messages;
  uint32_t indicators = 0;
  bool idle = true;
  bool operator==(const Outcome& o) const {
    return result == o.result && calls == o.calls && indicators == o.indicators && idle == o.idle;
  }
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  os << to_string(o.result) << " indicators=" << o.indicators << " idle=" << o.idle << "\n";
  for (const std::string& c : o.calls) os << "  " << c << "\n";
  return os;
}

class Recorder final : public Observer {
 public:
  explicit Recorder(bool reject_smb1) : reject_smb1_(reject_smb1) {}
  Decision on_message(const Message& m) noexcept override {
    calls.push_back(describe(m));
    messages.push_back(m);
    return reject_smb1_ && m.dialect == Dialect::smb1 ? Decision::reject : Decision::accept;
  }
  std::vector<std::string> calls;
  std::vector<Message> messages;

 private:
  bool reject_smb1_;
};

Outcome run(const Bytes& stream, Transport transport, const std::vector<size_t>& cuts,
            bool reject_smb1 = false) {
  Parser parser(transport);
  Recorder recorder(reject_smb1);
  size_t at = 0;
  Result r = Result::ok;
  for (size_t cut : cuts) {
    // An exact-size copy per piece, so that ASan sees any read past it.
    const Bytes piece(stream.begin() + static_cast<ptrdiff_t>(at),
                      stream.begin() + static_cast<ptrdiff_t>(cut));
    r = parser.feed(piece.data(), piece.size(), recorder);
    at = cut;
  }
  const Bytes rest(stream.begin() + static_cast<ptrdiff_t>(at), stream.end());
  r = parser.feed(rest.data(), rest.size(), recorder);
  EXPECT_EQ(r, parser.result());
  return {r, recorder.calls, recorder.messages, parser.indicators_seen(), parser.idle()};
}

Outcome run_all_splits(const Bytes& stream, Transport transport = Transport::direct_tcp,
                       bool reject_smb1 = false) {
  const Outcome whole = run(stream, transport, {}, reject_smb1);
  std::vector<size_t> every;
  for (size_t i = 1; i < stream.size(); ++i) every.push_back(i);
  EXPECT_EQ(run(stream, transport, every, reject_smb1), whole) << "1-byte feeds";
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    EXPECT_EQ(run(stream, transport, {cut}, reject_smb1), whole) << "split at " << cut;
  }
  return whole;
}

// --- valid streams -------------------------------------------------------------------

TEST(SmbParser, Smb1NegotiateLikeSmbclientNt1) {
  const Outcome o = run_all_splits(direct(negotiate_nt1()));
  ASSERT_EQ(o.result, Result::ok);
  ASSERT_EQ(o.messages.size(), 1u);
  const Message& m = o.messages[0];
  EXPECT_EQ(m.dialect, Dialect::smb1);
  EXPECT_EQ(m.command, smb1_command::negotiate);
  EXPECT_FALSE(m.reply);
  EXPECT_FALSE(m.smb2_dialects_offered);
  EXPECT_EQ(m.indicators, indicator::smb1);
  EXPECT_EQ(m.mid, 1u);
  EXPECT_EQ(o.indicators, indicator::smb1);
  EXPECT_TRUE(o.idle);
}

TEST(SmbParser, MultiProtocolNegotiateOffersSmb2) {
  // Longer than the captured header: reported once the whole dialect list is read.
  const Bytes nego = negotiate_multi_protocol();
  ASSERT_GT(nego.size(), Parser::kCaptureBytes);
  const Outcome o = run_all_splits(direct(nego));
  ASSERT_EQ(o.result, Result::ok);
  ASSERT_EQ(o.messages.size(), 1u);
  EXPECT_TRUE(o.messages[0].smb2_dialects_offered);
  EXPECT_EQ(o.messages[0].indicators, indicator::smb1);
}

TEST(SmbParser, Smb2NegotiateIsNotSmb1) {
  const Outcome o = run_all_splits(direct(smb2_negotiate()));
  ASSERT_EQ(o.result, Result::ok);
  ASSERT_EQ(o.messages.size(), 1u);
  const Message& m = o.messages[0];
  EXPECT_EQ(m.dialect, Dialect::smb2);
  EXPECT_EQ(m.smb2_command, 0u);
  EXPECT_FALSE(m.reply);
  EXPECT_EQ(m.indicators, 0u);
  EXPECT_EQ(o.indicators, 0u);
}

TEST(SmbParser, Smb2ReplyAndMessageId) {
  Bytes reply = smb2_header(0x0005, 0x1122334455667788ull, 0, 0x1, 0xC0000034);
  reply.insert(reply.end(), 9, 0);
  const Outcome o = run_all_splits(direct(reply));
  ASSERT_EQ(o.messages.size(), 1u);
  EXPECT_TRUE(o.messages[0].reply);
  EXPECT_EQ(o.messages[0].smb2_command, 5u);
  EXPECT_EQ(o.messages[0].status, 0xC0000034u);
  EXPECT_EQ(o.messages[0].message_id, 0x1122334455667788ull);
}

TEST(SmbParser, Smb2CompoundReportsEachHeader) {
  // CREATE (body padded to 8) + READ + CLOSE, related compound ([MS-SMB2] 3.2.4.1.4).
  Bytes first = smb2_header(0x0005, 7, 64 + 64);
  first.insert(first.end(), 64, 0x11);
  Bytes second = smb2_header(0x0008, 8, 64 + 56);
  second.insert(second.end(), 56, 0x22);
  Bytes third = smb2_header(0x0006, 9);
  third.insert(third.end(), 24, 0x33);
  const Outcome o = run_all_splits(direct(first + second + third));
  ASSERT_EQ(o.result, Result::ok);
  ASSERT_EQ(o.messages.size(), 3u);
  EXPECT_EQ(o.messages[0].smb2_command, 5u);
  EXPECT_EQ(o.messages[1].smb2_command, 8u);
  EXPECT_EQ(o.messages[2].smb2_command, 6u);
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(o.messages[i].compound_index, i);
    EXPECT_EQ(o.messages[i].message_id, 7u + i);
  }
}

TEST(SmbParser, Smb2CompoundHeaderInsideTheCapturedBytes) {
  // NextCommand 64: the next header starts inside the bytes captured for the first.
  const Bytes stream = direct(smb2_header(0x000D, 1, 64) + smb2_header(0x000D, 2) + Bytes(4, 0));
  const Outcome o = run_all_splits(stream);
  ASSERT_EQ(o.result, Result::ok);
  ASSERT_EQ(o.messages.size(), 2u);
  EXPECT_EQ(o.messages[1].message_id, 2u);
  EXPECT_EQ(o.messages[1].compound_index, 1u);
}

TEST(SmbParser, Smb3TransformsAreReportedAsOpaque) {
  Bytes encrypted = {0xFD, 'S', 'M', 'B'};
  encrypted.insert(encrypted.end(), 48 + 100, 0x5A);
  Bytes compressed = {0xFC, 'S', 'M', 'B'};
  compressed.insert(compressed.end(), 12 + 40, 0x00);
  const Outcome o = run_all_splits(direct(encrypted) + direct(compressed));
  ASSERT_EQ(o.result, Result::ok);
  ASSERT_EQ(o.messages.size(), 2u);
  EXPECT_EQ(o.messages[0].dialect, Dialect::smb3_encrypted);
  EXPECT_EQ(o.messages[1].dialect, Dialect::smb3_compressed);
}

TEST(SmbParser, NetbiosSessionOnPort139) {
  Bytes names;
  for (int i = 0; i < 2; ++i) {
    names.push_back(0x20);
    names.insert(names.end(), 32, 'C');
    names.push_back(0x00);
  }
  const Bytes client = netbios(0x81, names) + netbios(0x85, {}) + netbios(0x00, negotiate_nt1());
  const Outcome c = run_all_splits(client, Transport::netbios);
  ASSERT_EQ(c.result, Result::ok);
  ASSERT_EQ(c.messages.size(), 3u);
  EXPECT_EQ(c.messages[0].dialect, Dialect::netbios_control);
  EXPECT_EQ(c.messages[0].netbios_type, 0x81);
  EXPECT_EQ(c.messages[0].length, 68u);
  EXPECT_EQ(c.messages[1].netbios_type, 0x85);
  EXPECT_EQ(c.messages[2].dialect, Dialect::smb1);

  const Bytes server = netbios(0x82, {}) + netbios(0x83, {0x80}) + netbios(0x84, Bytes(6, 1));
  const Outcome s = run_all_splits(server, Transport::netbios);
  ASSERT_EQ(s.result, Result::ok);
  ASSERT_EQ(s.messages.size(), 3u);

  // The E flag extends the length to 17 bits.
  Bytes big = smb2_header(0x0009, 3);
  big.resize(0x10010, 0x77);
  const Outcome b = run(netbios(0x00, big, 0x01), Transport::netbios, {});
  EXPECT_EQ(b.result, Result::ok);
  ASSERT_EQ(b.messages.size(), 1u);
  EXPECT_EQ(b.messages[0].length, 0x10010u);
}

TEST(SmbParser, KeepaliveOnPort445) {
  const Outcome o = run_all_splits(Bytes{0x85, 0, 0, 0} + direct(smb2_negotiate()));
  ASSERT_EQ(o.result, Result::ok);
  ASSERT_EQ(o.messages.size(), 2u);
  EXPECT_EQ(o.messages[0].dialect, Dialect::netbios_control);
}

TEST(SmbParser, OrdinaryTransactionHasNoIndicator) {
  const Outcome o = run_all_splits(direct(negotiate_nt1()) + net_server_enum2());
  ASSERT_EQ(o.result, Result::ok);
  ASSERT_EQ(o.messages.size(), 2u);
  EXPECT_EQ(o.messages[1].command, smb1_command::transaction);
  EXPECT_EQ(o.messages[1].word_count, 14u);
  EXPECT_EQ(o.indicators, indicator::smb1);
}

TEST(SmbParser, TransactionCompletedBySecondariesOfItsOwnType) {
  // A conforming NT Trans in three parts; then a TRANS2_SECONDARY reusing the finished MID
  // matches nothing open (the server rejects it) and is not an indicator.
  const Smb1 sec{.command = smb1_command::nt_transact_secondary, .mid = 9};
  const Bytes stream =
      incomplete_nt_trans(9) + direct(nt_trans_secondary(sec, 30, 66512, 60000, 976)) +
      direct(nt_trans_secondary(sec, 30, 66512, 66512 - 60976, 60976)) +
      direct(trans2_secondary({.command = smb1_command::transaction2_secondary, .mid = 9}, 100,
                              Bytes(10, 0), 0));
  const Outcome o = run(stream, Transport::direct_tcp, {});
  ASSERT_EQ(o.result, Result::ok);
  EXPECT_EQ(o.indicators, indicator::smb1);
  EXPECT_EQ(run(stream, Transport::direct_tcp, {1000, 5000, 60000}), o);
}

// --- MS17-010 indicators -------------------------------------------------------------

TEST(SmbParser, DoublePulsarPing) {
  const Outcome o = run_all_splits(doublepulsar_ping());
  ASSERT_EQ(o.result, Result::ok);
  ASSERT_EQ(o.messages.size(), 1u);
  const Message& m = o.messages[0];
  EXPECT_EQ(m.command, smb1_command::transaction2);
  EXPECT_EQ(m.subcommand, kTrans2SessionSetup);
  EXPECT_EQ(m.mid, 0x41u);
  EXPECT_EQ(m.indicators, indicator::smb1 | indicator::doublepulsar_request);
}

TEST(SmbParser, DoublePulsarReply) {
  const Outcome infected = run_all_splits(doublepulsar_reply(0x51) + doublepulsar_reply(0x52));
  ASSERT_EQ(infected.messages.size(), 2u);
  EXPECT_EQ(infected.messages[0].indicators, indicator::smb1 | indicator::doublepulsar_reply);
  EXPECT_EQ(infected.messages[1].indicators, indicator::smb1 | indicator::doublepulsar_reply);
  // A clean server answers the ping with the request's MID; other statuses are not the implant.
  const Outcome clean = run_all_splits(doublepulsar_reply(0x41) + doublepulsar_reply(0x51, 0));
  EXPECT_EQ(clean.indicators, indicator::smb1);
}

TEST(SmbParser, EternalBlueAsMetasploitSendsIt) {
  Bytes stream = eternalblue_nt_trans();
  for (uint16_t i = 0; i < 3; ++i) stream = stream + eternalblue_secondary(i);
  const Outcome o = run(stream, Transport::direct_tcp, {});
  ASSERT_EQ(o.result, Result::ok);
  ASSERT_EQ(o.messages.size(), 4u);
  EXPECT_EQ(o.messages[0].command, smb1_command::nt_transact);
  EXPECT_EQ(o.messages[0].subcommand, 0u);
  EXPECT_EQ(o.messages[0].indicators, indicator::smb1 | indicator::transaction_counts_inconsistent);
  for (size_t i = 1; i < 4; ++i) {
    EXPECT_EQ(o.messages[i].command, smb1_command::transaction2_secondary);
    EXPECT_NE(o.messages[i].indicators & indicator::transaction_counts_inconsistent, 0u);
  }
  EXPECT_NE(o.indicators & indicator::ms17_010, 0u);
  // 1-byte feeds and a few splits (the stream is 13 KiB).
  std::vector<size_t> every;
  for (size_t i = 1; i < stream.size(); ++i) every.push_back(i);
  EXPECT_EQ(run(stream, Transport::direct_tcp, every), o);
  for (size_t cut = 0; cut <= stream.size(); cut += 97) {
    EXPECT_EQ(run(stream, Transport::direct_tcp, {cut}), o) << cut;
  }
}

TEST(SmbParser, NtTransContinuedByTrans2SecondaryIsATypeMismatch) {
  // EternalBlue with every count made consistent: only the transaction type gives it away.
  const Bytes stream =
      direct(negotiate_nt1()) + incomplete_nt_trans(0x40) +
      direct(trans2_secondary({.command = smb1_command::transaction2_secondary, .mid = 0x40},
                              0xFFFF, Bytes(1000, 0x41), 976));
  const Outcome o = run_all_splits(stream);
  ASSERT_EQ(o.result, Result::ok);
  ASSERT_EQ(o.messages.size(), 3u);
  EXPECT_EQ(o.messages[1].indicators, indicator::smb1);
  EXPECT_EQ(o.messages[2].indicators, indicator::smb1 | indicator::transaction_type_mismatch);
}

TEST(SmbParser, SecondaryOfAnotherIdentityIsNotAMismatch) {
  // Same MID, another PID: a different transaction ([MS-CIFS] 3.2.4.1.5).
  const Bytes stream =
      incomplete_nt_trans(0x40) +
      direct(trans2_secondary(
          {.command = smb1_command::transaction2_secondary, .pid = 0x1234, .mid = 0x40}, 0xFFFF,
          Bytes(100, 0x41), 976));
  EXPECT_EQ(run(stream, Transport::direct_tcp, {}).indicators, indicator::smb1);
}

TEST(SmbParser, OverflowedTransactionTableFailsClosed) {
  Bytes eight;
  for (uint16_t mid = 1; mid <= Parser::kMaxTransactions; ++mid) {
    eight = eight + incomplete_nt_trans(mid);
  }
  const Bytes orphan = direct(trans2_secondary(
      {.command = smb1_command::transaction2_secondary, .mid = 100}, 0xFFFF, Bytes(10, 0), 0));
  // Eight open transactions fit: an unknown secondary is just an orphan.
  EXPECT_EQ(run(eight + orphan, Transport::direct_tcp, {}).indicators, indicator::smb1);
  // A ninth evicts one: from then on a secondary that matches nothing is reported.
  const Outcome o = run(eight + incomplete_nt_trans(9) + orphan, Transport::direct_tcp, {});
  EXPECT_EQ(o.messages.back().indicators, indicator::smb1 | indicator::transaction_type_mismatch);
  // The evicted one (MID 1) too.
  const Bytes evicted = direct(trans2_secondary(
      {.command = smb1_command::transaction2_secondary, .mid = 1}, 0xFFFF, Bytes(10, 0), 0));
  EXPECT_NE(run(eight + incomplete_nt_trans(9) + evicted, Transport::direct_tcp, {}).indicators &
                indicator::transaction_type_mismatch,
            0u);
}

struct InconsistentCase {
  const char* name;
  Bytes stream;
};

class SmbInconsistent : public ::testing::TestWithParam<InconsistentCase> {};

TEST_P(SmbInconsistent, LastMessageHasInconsistentCounts) {
  const Outcome o = run_all_splits(GetParam().stream);
  ASSERT_EQ(o.result, Result::ok);
  ASSERT_FALSE(o.messages.empty());
  EXPECT_NE(o.messages.back().indicators & indicator::transaction_counts_inconsistent, 0u) << o;
}

Bytes trans2_find_first() {
  return direct(
      trans_request({.command = smb1_command::transaction2}, {0x0001}, Bytes(18, 1), Bytes(20, 2)));
}
Bytes patched(Bytes b, size_t smb_offset, uint16_t value) {
  set16(b, smb_offset, value);
  return b;
}
// Offsets of TRANS2 request words in the SMB message ([MS-CIFS] 2.2.4.46.1).
constexpr size_t kTotalParameter = 33, kTotalData = 35, kParameterCount = 51, kParameterOffset = 53,
                 kDataCount = 55, kDataOffset = 57, kSetupCount = 59;

INSTANTIATE_TEST_SUITE_P(
    Messages, SmbInconsistent,
    ::testing::Values(
        InconsistentCase{"parameter_count_over_total",
                         patched(trans2_find_first(), kTotalParameter, 17)},
        InconsistentCase{"data_count_over_total", patched(trans2_find_first(), kTotalData, 19)},
        InconsistentCase{"data_past_the_message", patched(trans2_find_first(), kDataCount, 21)},
        InconsistentCase{"parameters_inside_the_words",
                         patched(trans2_find_first(), kParameterOffset, 40)},
        InconsistentCase{"parameters_and_data_overlap",
                         patched(trans2_find_first(), kDataOffset, 70)},
        InconsistentCase{"parameters_past_the_message",
                         patched(trans2_find_first(), kParameterOffset, 0xFFF0)},
        InconsistentCase{"setup_count_disagrees_with_word_count",
                         patched(trans2_find_first(), kSetupCount, 2)},
        InconsistentCase{"word_count_too_small",
                         direct(smb1({.command = smb1_command::transaction2}, Bytes(20, 0), {}))},
        InconsistentCase{"message_shorter_than_its_words",
                         direct(prefix(without_session_header(trans2_find_first()), 58))},
        InconsistentCase{"eternalblue_secondary", eternalblue_secondary(0)},
        InconsistentCase{
            "trans2_secondary_without_fid",
            direct(smb1({.command = smb1_command::transaction2_secondary}, Bytes(16, 0), {}))},
        InconsistentCase{
            "trans_secondary_with_nine_words",
            direct(smb1({.command = smb1_command::transaction_secondary}, Bytes(18, 0), {}))},
        InconsistentCase{"eternalblue_nt_trans", eternalblue_nt_trans()},
        InconsistentCase{"nt_trans_secondary_past_its_total",
                         direct(nt_trans_secondary({.command = smb1_command::nt_transact_secondary},
                                                   0, 1000, 100, 950))},
        InconsistentCase{
            "nt_trans_data_count_over_total",
            direct(nt_trans(
                {.command = smb1_command::nt_transact},
                {.total_data = 10, .data_count = 20, .data_offset = 75, .byte_count = 20}))}),
    [](const ::testing::TestParamInfo<InconsistentCase>& p) { return p.param.name; });

// --- errors --------------------------------------------------------------------------

struct ErrorCase {
  const char* name;
  Bytes stream;
  Result result;
  Transport transport = Transport::direct_tcp;
  size_t reported = 0;  // messages reported before the error
};

class SmbError : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(SmbError, StopsAtTheFirstErrorInAnySplit) {
  const ErrorCase& c = GetParam();
  const Outcome o = run_all_splits(c.stream, c.transport);
  EXPECT_EQ(o.result, c.result);
  EXPECT_EQ(o.calls.size(), c.reported);
}

Bytes smb2_with_next(uint32_t next, size_t body) {
  Bytes b = smb2_header(0x0005, 1, next);
  b.insert(b.end(), body, 0);
  return b;
}

INSTANTIATE_TEST_SUITE_P(
    Streams, SmbError,
    ::testing::Values(
        ErrorCase{"session_request_on_445", netbios(0x81, Bytes(68, 'A')),
                  Result::bad_netbios_type},
        ErrorCase{"unknown_type_on_139", netbios(0x90, {}), Result::bad_netbios_type,
                  Transport::netbios},
        ErrorCase{"reserved_flag_on_139", netbios(0x00, negotiate_nt1(), 0x02),
                  Result::bad_netbios_header, Transport::netbios},
        ErrorCase{"positive_response_with_body", netbios(0x82, {0}), Result::bad_netbios_header,
                  Transport::netbios},
        ErrorCase{"retarget_too_short", netbios(0x84, Bytes(5, 0)), Result::bad_netbios_header,
                  Transport::netbios},
        ErrorCase{"keepalive_with_length_on_445", Bytes{0x85, 0, 0, 1, 0},
                  Result::bad_netbios_header},
        ErrorCase{"empty_session_message", direct({}), Result::message_too_short},
        ErrorCase{"three_byte_message", direct({0xFF, 'S', 'M'}), Result::message_too_short},
        ErrorCase{"smb1_header_only", direct(prefix(negotiate_nt1(), 34)),
                  Result::message_too_short},
        ErrorCase{"smb2_short_header", direct(prefix(smb2_negotiate(), 63)),
                  Result::message_too_short},
        ErrorCase{"short_transform", direct(Bytes{0xFD, 'S', 'M', 'B', 0, 0}),
                  Result::message_too_short},
        ErrorCase{"bad_protocol_id", direct(Bytes{0xFE, 'S', 'M', 'C', 0, 0, 0, 0}),
                  Result::bad_protocol_id},
        ErrorCase{"unknown_protocol_byte", direct(Bytes{0xFB, 'S', 'M', 'B', 0, 0, 0, 0}),
                  Result::bad_protocol_id},
        ErrorCase{"http_on_445", Bytes{0, 0, 0, 8, 'G', 'E', 'T', ' ', '/', ' ', 'H', 'T'},
                  Result::bad_protocol_id},
        ErrorCase{"smb2_structure_size", direct(smb2_header(0, 0, 0, 0, 0, 65)),
                  Result::bad_smb2_header},
        // Metasploit's EternalBlue grooming buffers: an all-zero SMB2 header.
        ErrorCase{"eternalblue_smb2_groom", direct(Bytes{0xFE, 'S', 'M', 'B'} + Bytes(124, 0)),
                  Result::bad_smb2_header},
        ErrorCase{"next_command_misaligned", direct(smb2_with_next(68, 200)),
                  Result::bad_smb2_header},
        ErrorCase{"next_command_inside_header", direct(smb2_with_next(32, 200)),
                  Result::bad_smb2_header},
        ErrorCase{"next_command_past_message", direct(smb2_with_next(160, 100)),
                  Result::bad_smb2_header},
        ErrorCase{"compound_of_smb1", direct(smb2_with_next(72, 8) + negotiate_multi_protocol()),
                  Result::bad_smb2_header, Transport::direct_tcp, 1},
        ErrorCase{"error_after_good_messages",
                  direct(smb2_negotiate()) + direct(negotiate_nt1()) + Bytes{0x42, 0, 0, 0},
                  Result::bad_netbios_type, Transport::direct_tcp, 2}),
    [](const ::testing::TestParamInfo<ErrorCase>& p) { return p.param.name; });

TEST(SmbParser, ObserverRejectsSmb1AndTheParserStaysRejected) {
  const Bytes stream =
      direct(smb2_negotiate()) + direct(negotiate_nt1()) + direct(smb2_negotiate());
  const Outcome o = run_all_splits(stream, Transport::direct_tcp, true);
  EXPECT_EQ(o.result, Result::rejected_by_policy);
  EXPECT_EQ(o.calls.size(), 2u);

  Parser parser;
  Recorder recorder(true);
  EXPECT_EQ(parser.feed(stream.data(), stream.size(), recorder), Result::rejected_by_policy);
  const Bytes more = direct(smb2_negotiate());
  EXPECT_EQ(parser.feed(more.data(), more.size(), recorder), Result::rejected_by_policy);
  EXPECT_EQ(parser.feed(nullptr, 0, recorder), Result::rejected_by_policy);
  EXPECT_EQ(recorder.calls.size(), 2u);
}

TEST(SmbParser, ResetByAssignmentForPoolReuse) {
  Parser parser(Transport::netbios);
  Recorder recorder(false);
  const Bytes bad = {0x90, 0, 0, 0};
  EXPECT_EQ(parser.feed(bad.data(), bad.size(), recorder), Result::bad_netbios_type);
  parser = Parser(Transport::direct_tcp);
  const Bytes good = direct(smb2_negotiate());
  EXPECT_EQ(parser.feed(good.data(), good.size(), recorder), Result::ok);
  EXPECT_TRUE(parser.idle());
}

TEST(SmbParser, EveryResultHasADistinctLabel) {
  std::vector<std::string> labels;
  for (int r = 0; r <= static_cast<int>(Result::rejected_by_policy); ++r) {
    const std::string label(to_string(static_cast<Result>(r)));
    EXPECT_NE(label, "unknown");
    for (const std::string& other : labels) EXPECT_NE(label, other);
    labels.push_back(label);
  }
}

}  // namespace
}  // namespace cordon::engine::smb
