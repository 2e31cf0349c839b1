// RDP inspector tests. Connection setups come from the builder below, shaped like what
// rdesktop, FreeRDP and the public BlueKeep PoCs send ([MS-RDPBCGR] 4.1.1 and 4.1.3 show the
// same layout annotated). Every stream is also fed in 1-byte pieces and split in two at every
// byte, and must give the same observer calls and result.
#include "dataplane/engine/inspect/rdp.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

namespace cordon::engine::rdp {
void PrintTo(Result result, std::ostream* os) {
  *os << to_string(result);
}
}  // namespace cordon::engine::rdp

namespace cordon::engine::rdp {
namespace {

static_assert(std::is_trivially_copyable_v<Parser>, "pool slots are reset by assignment");
static_assert(sizeof(Parser) <= 512, "per-flow pool budget");

using Bytes = std::vector<uint8_t>;

// --- builder -------------------------------------------------------------------------

void put8(Bytes& b, uint32_t v) {
  b.push_back(static_cast<uint8_t>(v));
}
void put16le(Bytes& b, uint32_t v) {
  put8(b, v);
  put8(b, v >> 8);
}
void put32le(Bytes& b, uint32_t v) {
  put16le(b, v);
  put16le(b, v >> 16);
}
Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
Bytes text(const std::string& s) {
  return Bytes(s.begin(), s.end());
}

// RFC 1006 §6: version 3, reserved, big-endian length of the whole TPKT.
Bytes tpkt(const Bytes& payload) {
  const auto n = static_cast<uint32_t>(payload.size() + 4);
  return Bytes{3, 0, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)} + payload;
}

Bytes negotiation_request(uint32_t protocols, uint16_t length = 8) {
  Bytes b = {0x01, 0x00};
  put16le(b, length);
  put32le(b, protocols);
  return b;
}

Bytes correlation_info(uint16_t length = 36) {
  Bytes b = {0x06, 0x00};
  put16le(b, length);
  b.insert(b.end(), 16, 0xC0);  // correlationId
  b.insert(b.end(), 16, 0);     // reserved
  return b;
}

// X.224 Connection Request ([MS-RDPBCGR] 2.2.1.1) with the given variable part.
Bytes connection_request_with(const Bytes& variable, uint8_t code = 0xE0) {
  const Bytes x224 = Bytes{static_cast<uint8_t>(6 + variable.size()), code, 0, 0, 0, 0, 0};
  return tpkt(x224 + variable);
}

Bytes connection_request(const std::string& cookie, int64_t protocols = -1) {
  Bytes variable;
  if (!cookie.empty()) variable = text("Cookie: " + cookie + "\r\n");
  if (protocols >= 0) variable = variable + negotiation_request(static_cast<uint32_t>(protocols));
  return connection_request_with(variable);
}

Bytes ber_length(size_t n) {
  if (n < 0x80) return {static_cast<uint8_t>(n)};
  if (n < 0x100) return {0x81, static_cast<uint8_t>(n)};
  return {0x82, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
}
Bytes ber(uint8_t tag, const Bytes& content) {
  return Bytes{tag} + ber_length(content.size()) + content;
}
Bytes per_length(size_t n) {
  if (n < 0x80) return {static_cast<uint8_t>(n)};
  return {static_cast<uint8_t>(0x80 | (n >> 8)), static_cast<uint8_t>(n)};
}

Bytes block(uint16_t type, const Bytes& body) {
  Bytes b;
  put16le(b, type);
  put16le(b, static_cast<uint32_t>(body.size() + 4));
  return b + body;
}

// TS_UD_CS_CORE ([MS-RDPBCGR] 2.2.1.3.2), the fields up to earlyCapabilityFlags.
Bytes cs_core() {
  Bytes b;
  put32le(b, 0x00080004);  // RDP 5.0+
  put16le(b, 1024);
  put16le(b, 768);
  put16le(b, 0xCA01);                          // RNS_UD_COLOR_8BPP
  put16le(b, 0xAA03);                          // RNS_UD_SAS_DEL
  put32le(b, 0x409);                           // keyboard layout
  put32le(b, 2600);                            // client build
  for (char c : std::string("WORKSTATION")) {  // clientName, UTF-16, 32 bytes
    put16le(b, static_cast<uint8_t>(c));
  }
  b.insert(b.end(), 32 - 22, 0);
  put32le(b, 4);             // keyboardType
  put32le(b, 0);             // keyboardSubType
  put32le(b, 12);            // keyboardFunctionKey
  b.insert(b.end(), 64, 0);  // imeFileName
  put16le(b, 0xCA01);
  put16le(b, 1);
  put32le(b, 0);
  put16le(b, 24);
  put16le(b, 0x07);
  put16le(b, 0x0001);
  return block(0xC001, b);
}

Bytes cs_security() {
  Bytes b;
  put32le(b, 0x1B);  // 40, 56, 128-bit, FIPS
  put32le(b, 0);
  return block(0xC002, b);
}

// TS_UD_CS_NET ([MS-RDPBCGR] 2.2.1.3.4): channelCount, then 8-byte names and options.
Bytes cs_net(const std::vector<std::string>& names, int64_t count = -1) {
  Bytes b;
  put32le(b, count >= 0 ? static_cast<uint32_t>(count) : static_cast<uint32_t>(names.size()));
  for (const std::string& name : names) {
    Bytes n(8, 0);
    for (size_t i = 0; i < name.size() && i < 8; ++i) n[i] = static_cast<uint8_t>(name[i]);
    b = b + n;
    put32le(b, 0x80800000);  // CHANNEL_OPTION_INITIALIZED | ENCRYPT_RDP
  }
  return block(0xC003, b);
}

Bytes cs_cluster() {
  Bytes b;
  put32le(b, 0x0D);
  put32le(b, 0);
  return block(0xC004, b);
}

// T.124 ConnectData + ConferenceCreateRequest as every client sends it ([MS-RDPBCGR] 4.1.3).
Bytes gcc(const Bytes& user_data, const Bytes& request_header = {0x00, 0x08, 0x00, 0x10, 0x00},
          const Bytes& h221 = {0x01, 0xC0, 0x00, 'D', 'u', 'c', 'a'},
          const Bytes& key = {0x00, 0x05, 0x00, 0x14, 0x7C, 0x00, 0x01}) {
  const Bytes ccr = request_header + h221 + per_length(user_data.size()) + user_data;
  return key + per_length(ccr.size()) + ccr;
}

Bytes domain_parameters(uint32_t channels, uint32_t users, uint32_t max_pdu) {
  Bytes b;
  for (uint32_t v : {channels, users, 0u, 1u, 0u, 1u, max_pdu, 2u}) {
    if (v < 0x80) {
      b = b + Bytes{0x02, 0x01, static_cast<uint8_t>(v)};
    } else {
      b = b + Bytes{0x02, 0x03, static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 8),
                    static_cast<uint8_t>(v)};
    }
  }
  return b;
}

// T.125 Connect-Initial: BER [APPLICATION 101].
Bytes connect_initial(const Bytes& gcc_data, const Bytes& first_tag = {0x04}) {
  const Bytes content = first_tag + Bytes{0x01, 0x01} + ber(0x04, {0x01}) + ber(0x01, {0xFF}) +
                        ber(0x30, domain_parameters(34, 2, 0xFFFF)) +
                        ber(0x30, domain_parameters(1, 1, 0x420)) +
                        ber(0x30, domain_parameters(0xFFFF, 0xFC17, 0xFFFF)) + ber(0x04, gcc_data);
  return Bytes{0x7F, 0x65} + ber_length(content.size()) + content;
}

Bytes data_tpdu(const Bytes& mcs) {
  return tpkt(Bytes{0x02, 0xF0, 0x80} + mcs);
}

Bytes client_data(const std::vector<std::string>& channels) {
  return cs_core() + cs_cluster() + cs_security() + cs_net(channels);
}

Bytes setup(const std::vector<std::string>& channels, int64_t protocols = 0) {
  return connection_request("mstshash=user", protocols) +
         data_tpdu(connect_initial(gcc(client_data(channels))));
}

const std::vector<std::string> kRdesktop = {"rdpdr", "rdpsnd", "cliprdr"};
const std::vector<std::string> kFreeRdp = {"rdpdr", "rdpsnd", "cliprdr", "drdynvc", "rail"};
// A BlueKeep PoC's request: an ordinary channel and MS_T120.
const std::vector<std::string> kBlueKeep = {"rdpsnd", "MS_T120"};

// A TLS 1.2 ClientHello's first bytes: what follows when the server picked TLS or CredSSP.
const Bytes kTlsClientHello = {0x16, 0x03, 0x01, 0x00, 0x2F, 0x01, 0x00, 0x00, 0x2B, 0x03, 0x03};

// --- running -------------------------------------------------------------------------

struct Outcome {
  Result result = Result::ok;
  std::vector<std::string> events;
  Facts facts;
  bool done = false;
  bool operator==(const Outcome& o) const {
    return result == o.result && events == o.events && done == o.done &&
           facts.connection_request == o.facts.connection_request &&
           facts.negotiation_request == o.facts.negotiation_request &&
           facts.requested_protocols == o.facts.requested_protocols &&
           facts.encrypted == o.facts.encrypted &&
           facts.connect_initial == o.facts.connect_initial &&
           facts.channel_count == o.facts.channel_count &&
           facts.ms_t120_requested == o.facts.ms_t120_requested;
  }
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  os << to_string(o.result) << " done=" << o.done << " t120=" << o.facts.ms_t120_requested
     << " channels=" << int{o.facts.channel_count} << " events=[";
  for (const std::string& e : o.events) os << e << "; ";
  return os << "]";
}

class Recorder final : public Observer {
 public:
  explicit Recorder(std::string reject_channel) : reject_(std::move(reject_channel)) {}
  Decision on_connection_request(const Facts& f) noexcept override {
    events.push_back("request neg=" + std::to_string(f.negotiation_request) +
                     " protocols=" + std::to_string(f.requested_protocols));
    return Decision::accept;
  }
  Decision on_encrypted(const Facts&) noexcept override {
    events.push_back("encrypted");
    return Decision::accept;
  }
  Decision on_channel(std::string_view name, const Facts& f) noexcept override {
    events.push_back("channel " + std::string(name) +
                     " t120=" + std::to_string(f.ms_t120_requested));
    return name == reject_ ? Decision::reject : Decision::accept;
  }
  Decision on_connect_initial(const Facts& f) noexcept override {
    events.push_back("connect-initial channels=" + std::to_string(f.channel_count) +
                     " t120=" + std::to_string(f.ms_t120_requested));
    return Decision::accept;
  }
  std::vector<std::string> events;

 private:
  std::string reject_;
};

Outcome run(const Bytes& stream, const std::vector<size_t>& cuts, const std::string& reject = "") {
  Parser parser;
  Recorder recorder(reject);
  size_t at = 0;
  Result r = Result::ok;
  for (size_t cut : cuts) {
    const Bytes piece(stream.begin() + static_cast<ptrdiff_t>(at),
                      stream.begin() + static_cast<ptrdiff_t>(cut));
    r = parser.feed(piece.data(), piece.size(), recorder);
    at = cut;
  }
  const Bytes rest(stream.begin() + static_cast<ptrdiff_t>(at), stream.end());
  r = parser.feed(rest.data(), rest.size(), recorder);
  EXPECT_EQ(r, parser.result());
  return {r, recorder.events, parser.facts(), parser.done()};
}

Outcome run_all_splits(const Bytes& stream, const std::string& reject = "") {
  const Outcome whole = run(stream, {}, reject);
  std::vector<size_t> every;
  for (size_t i = 1; i < stream.size(); ++i) every.push_back(i);
  EXPECT_EQ(run(stream, every, reject), whole) << "1-byte feeds";
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    EXPECT_EQ(run(stream, {cut}, reject), whole) << "split at " << cut;
  }
  return whole;
}

// --- valid streams -------------------------------------------------------------------

struct ValidCase {
  const char* name;
  Bytes stream;
  std::vector<std::string> events;
  bool ms_t120 = false;
  bool encrypted = false;
  bool done = true;
};

class RdpValid : public ::testing::TestWithParam<ValidCase> {};

TEST_P(RdpValid, ReportsTheConnectionSetupInAnySplit) {
  const ValidCase& c = GetParam();
  const Outcome o = run_all_splits(c.stream);
  EXPECT_EQ(o.result, Result::ok);
  EXPECT_EQ(o.events, c.events);
  EXPECT_EQ(o.facts.ms_t120_requested, c.ms_t120);
  EXPECT_EQ(o.facts.encrypted, c.encrypted);
  EXPECT_EQ(o.done, c.done);
}

Bytes largest_connect_initial() {
  // Pads an unknown client data block so the Connect Initial is exactly kMaxConnectInitial.
  Bytes ci;
  for (size_t filler = 3000;; ++filler) {
    ci = connect_initial(gcc(client_data(kRdesktop) + block(0xC00A, Bytes(filler, 0))));
    if (ci.size() - 5 >= Parser::kMaxConnectInitial) break;  // 7F 65 82 xx xx
  }
  EXPECT_EQ(ci.size() - 5, Parser::kMaxConnectInitial);
  return connection_request("", 0) + data_tpdu(ci);
}

Bytes all_channels() {
  std::vector<std::string> names;
  for (int i = 0; i < 31; ++i) names.push_back("ch" + std::to_string(i));
  return connection_request("mstshash=a", 0) +
         data_tpdu(connect_initial(gcc(cs_core() + cs_security() + cs_net(names))));
}

std::vector<std::string> channel_events(const std::vector<std::string>& names, int t120_from = 99) {
  std::vector<std::string> out;
  for (size_t i = 0; i < names.size(); ++i) {
    out.push_back("channel " + names[i] +
                  " t120=" + (static_cast<int>(i) >= t120_from ? "1" : "0"));
  }
  return out;
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

INSTANTIATE_TEST_SUITE_P(
    Streams, RdpValid,
    ::testing::Values(
        ValidCase{"rdesktop_standard_security", setup(kRdesktop),
                  concat(concat({"request neg=1 protocols=0"}, channel_events(kRdesktop)),
                         {"connect-initial channels=3 t120=0"})},
        // TLS and CredSSP requested, the server chose standard RDP security: MCS is visible.
        ValidCase{"freerdp_tls_requested_rdp_selected", setup(kFreeRdp, 3),
                  concat(concat({"request neg=1 protocols=3"}, channel_events(kFreeRdp)),
                         {"connect-initial channels=5 t120=0"})},
        ValidCase{"bluekeep_poc",
                  setup(kBlueKeep),
                  {"request neg=1 protocols=0", "channel rdpsnd t120=0", "channel MS_T120 t120=1",
                   "connect-initial channels=2 t120=1"},
                  true},
        ValidCase{"bluekeep_lower_case",
                  setup({"rdpdr", "ms_t120"}),
                  {"request neg=1 protocols=0", "channel rdpdr t120=0", "channel ms_t120 t120=1",
                   "connect-initial channels=2 t120=1"},
                  true},
        // Eight characters, no NUL: still MS_T120 to a comparison of the first seven.
        ValidCase{"bluekeep_unterminated_name",
                  setup({"Ms_t120X"}),
                  {"request neg=1 protocols=0", "channel Ms_t120X t120=1",
                   "connect-initial channels=1 t120=1"},
                  true},
        // MS_T120 outside any channel definition (here in an unknown block): still reported.
        ValidCase{"ms_t120_bytes_elsewhere",
                  connection_request("", 0) +
                      data_tpdu(connect_initial(gcc(cs_core() + block(0xC0FF, text("xMS_T120x")) +
                                                    cs_net({"rdpdr"})))),
                  {"request neg=1 protocols=0", "channel rdpdr t120=1",
                   "connect-initial channels=1 t120=1"},
                  true},
        ValidCase{"tls_after_connection_request",
                  connection_request("mstshash=user", 3) + kTlsClientHello + Bytes(300, 0xEE),
                  {"request neg=1 protocols=3", "encrypted"},
                  false,
                  true},
        ValidCase{"old_client_without_negotiation",
                  connection_request("") + data_tpdu(connect_initial(gcc(client_data(kRdesktop)))),
                  concat(concat({"request neg=0 protocols=0"}, channel_events(kRdesktop)),
                         {"connect-initial channels=3 t120=0"})},
        ValidCase{"routing_token_and_correlation_info",
                  connection_request_with(text("Cookie: msts=3640205228.15629.0000\r\n") +
                                          negotiation_request(0) + correlation_info()) +
                      data_tpdu(connect_initial(gcc(client_data({"rdpdr"})))),
                  {"request neg=1 protocols=0", "channel rdpdr t120=0",
                   "connect-initial channels=1 t120=0"}},
        ValidCase{
            "no_channels",
            connection_request("", 0) + data_tpdu(connect_initial(gcc(cs_core() + cs_security()))),
            {"request neg=1 protocols=0", "connect-initial channels=0 t120=0"}},
        // Later PDUs (MCS Erect Domain, Attach User, fast-path input) are not parsed.
        ValidCase{"traffic_after_connect_initial",
                  setup({"rdpdr"}) + tpkt({0x02, 0xF0, 0x80, 0x04, 0x01, 0x00, 0x01, 0x00}) +
                      Bytes{0x44, 0x0A, 0x01, 0x02} + text("MS_T120"),
                  {"request neg=1 protocols=0", "channel rdpdr t120=0",
                   "connect-initial channels=1 t120=0"}},
        ValidCase{"connection_request_only",
                  connection_request("mstshash=x", 0),
                  {"request neg=1 protocols=0"},
                  false,
                  false,
                  false},
        ValidCase{"largest_connect_initial", largest_connect_initial(),
                  concat(concat({"request neg=1 protocols=0"}, channel_events(kRdesktop)),
                         {"connect-initial channels=3 t120=0"})},
        ValidCase{"empty_stream", {}, {}, false, false, false}),
    [](const ::testing::TestParamInfo<ValidCase>& p) { return p.param.name; });

TEST(RdpParser, ThirtyOneChannels) {
  const Outcome o = run_all_splits(all_channels());
  EXPECT_EQ(o.result, Result::ok);
  EXPECT_EQ(o.facts.channel_count, 31);
  EXPECT_EQ(o.events.size(), 1u + 31u + 1u);
  EXPECT_TRUE(o.facts.connect_initial);
}

TEST(RdpParser, FactsOfATlsConnection) {
  const Outcome o = run_all_splits(connection_request("mstshash=user", 2) + kTlsClientHello);
  EXPECT_TRUE(o.facts.connection_request);
  EXPECT_TRUE(o.facts.negotiation_request);
  EXPECT_TRUE(o.facts.tls_requested());
  EXPECT_TRUE(o.facts.encrypted);
  EXPECT_FALSE(o.facts.connect_initial);
  EXPECT_FALSE(o.facts.ms_t120_requested);
}

// --- errors --------------------------------------------------------------------------

struct ErrorCase {
  const char* name;
  Bytes stream;
  Result result;
  size_t events = 0;  // observer calls before the error
};

class RdpError : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(RdpError, StopsAtTheFirstErrorInAnySplit) {
  const ErrorCase& c = GetParam();
  const Outcome o = run_all_splits(c.stream);
  EXPECT_EQ(o.result, c.result);
  EXPECT_EQ(o.events.size(), c.events) << o;
}

const Bytes kRequest = connection_request("mstshash=user", 0);

Bytes with_byte(Bytes b, size_t at, uint8_t value) {
  b[at] = value;
  return b;
}

// A data TPDU whose TPKT length is `length` (the rest as given).
Bytes data_tpdu_claiming(uint16_t length, const Bytes& rest) {
  return Bytes{3, 0, static_cast<uint8_t>(length >> 8), static_cast<uint8_t>(length)} + rest;
}

INSTANTIATE_TEST_SUITE_P(
    Streams, RdpError,
    ::testing::Values(
        ErrorCase{"tpkt_version_2", with_byte(kRequest, 0, 2), Result::bad_tpkt},
        ErrorCase{"tpkt_reserved", with_byte(kRequest, 1, 1), Result::bad_tpkt},
        ErrorCase{"tpkt_too_short_for_request", Bytes{3, 0, 0, 10, 5, 0xE0, 0, 0, 0, 0},
                  Result::bad_tpkt},
        ErrorCase{"http_on_3389", text("GET / HTTP/1.1\r\n\r\n"), Result::bad_tpkt},
        ErrorCase{"not_a_connection_request", connection_request_with({}, 0xD0), Result::bad_x224},
        ErrorCase{"li_disagrees_with_tpkt", with_byte(kRequest, 4, 7), Result::bad_x224},
        ErrorCase{"cookie_without_prefix", connection_request_with(text("Cookie= mstshash=a\r\n")),
                  Result::bad_x224},
        ErrorCase{"cookie_without_crlf", connection_request_with(text("Cookie: mstshash=abc")),
                  Result::bad_x224},
        ErrorCase{"cookie_cr_without_lf", connection_request_with(text("Cookie: mstshash=ab\r\r")),
                  Result::bad_x224},
        ErrorCase{"cookie_after_negotiation",
                  connection_request_with(negotiation_request(0) + text("Cookie: a=b\r\n")),
                  Result::bad_x224},
        ErrorCase{"unknown_item", connection_request_with({0x02, 0, 8, 0, 0, 0, 0, 0}),
                  Result::bad_x224},
        ErrorCase{"negotiation_length_9",
                  connection_request_with(negotiation_request(0, 9) + Bytes{0}),
                  Result::bad_negotiation},
        ErrorCase{"negotiation_truncated", connection_request_with({0x01, 0, 8, 0, 0}),
                  Result::bad_negotiation},
        ErrorCase{"two_negotiation_requests",
                  connection_request_with(negotiation_request(0) + negotiation_request(1)),
                  Result::bad_negotiation},
        ErrorCase{"correlation_without_negotiation", connection_request_with(correlation_info()),
                  Result::bad_negotiation},
        ErrorCase{"correlation_length_35",
                  connection_request_with(negotiation_request(0) + correlation_info(35)),
                  Result::bad_negotiation},
        ErrorCase{"bytes_after_correlation",
                  connection_request_with(negotiation_request(0) + correlation_info() + Bytes{1}),
                  Result::bad_x224},
        ErrorCase{"not_tpkt_or_tls", kRequest + Bytes{0x17, 0x03, 0x03}, Result::not_tpkt_or_tls,
                  1},
        ErrorCase{"fast_path_before_mcs", kRequest + Bytes{0x44, 0x0A}, Result::not_tpkt_or_tls, 1},
        ErrorCase{"second_connection_request", kRequest + kRequest, Result::bad_x224, 1},
        ErrorCase{
            "data_tpdu_without_eot",
            kRequest + tpkt(Bytes{0x02, 0xF0, 0x00} + connect_initial(gcc(client_data(kRdesktop)))),
            Result::bad_x224, 1},
        ErrorCase{"data_tpkt_reserved",
                  kRequest + with_byte(data_tpdu(connect_initial(gcc(client_data({})))), 1, 1),
                  Result::bad_tpkt, 1},
        ErrorCase{"data_tpkt_too_short", kRequest + Bytes{3, 0, 0, 6, 0x02, 0xF0}, Result::bad_tpkt,
                  1},
        ErrorCase{"connect_response_tag",
                  kRequest + data_tpdu(with_byte(connect_initial(gcc(client_data({}))), 1, 0x66)),
                  Result::bad_mcs, 1},
        ErrorCase{"tpkt_longer_than_mcs",
                  kRequest + tpkt(Bytes{0x02, 0xF0, 0x80} +
                                  connect_initial(gcc(client_data({"rdpdr"}))) + Bytes{0}),
                  Result::bad_mcs, 1},
        ErrorCase{"indefinite_ber_length",
                  kRequest + data_tpdu(Bytes{0x7F, 0x65, 0x80, 0x04, 0x01, 0x01, 0x00, 0x00}),
                  Result::bad_mcs, 1},
        ErrorCase{"wrong_member_tag",
                  kRequest + data_tpdu(connect_initial(gcc(client_data({"rdpdr"})), {0x02})),
                  Result::bad_mcs, 1},
        ErrorCase{"member_longer_than_connect_initial",
                  kRequest + data_tpdu(Bytes{0x7F, 0x65, 0x05, 0x04, 0x7F, 0x01, 0x01, 0x01}),
                  Result::bad_mcs, 1},
        ErrorCase{"tpkt_over_the_cap",
                  kRequest + data_tpdu_claiming(5000, {0x02, 0xF0, 0x80, 0x7F, 0x65}),
                  Result::mcs_too_large, 1},
        ErrorCase{"connect_initial_over_the_cap",
                  kRequest + data_tpdu_claiming(4 + 3 + 5 + 4097,
                                                {0x02, 0xF0, 0x80, 0x7F, 0x65, 0x82, 0x10, 0x01}),
                  Result::mcs_too_large, 1},
        ErrorCase{"connect_initial_length_4097",
                  kRequest + data_tpdu_claiming(4 + 3 + 5 + 4000,
                                                {0x02, 0xF0, 0x80, 0x7F, 0x65, 0x82, 0x10, 0x01}),
                  Result::mcs_too_large, 1},
        ErrorCase{"wrong_gcc_object_id",
                  kRequest + data_tpdu(connect_initial(
                                 gcc(client_data({"rdpdr"}), {0x00, 0x08, 0x00, 0x10, 0x00},
                                     {0x01, 0xC0, 0x00, 'D', 'u', 'c', 'a'},
                                     {0x00, 0x05, 0x00, 0x14, 0x7C, 0x00, 0x02}))),
                  Result::bad_gcc, 1},
        ErrorCase{"server_h221_key",
                  kRequest + data_tpdu(connect_initial(
                                 gcc(client_data({"rdpdr"}), {0x00, 0x08, 0x00, 0x10, 0x00},
                                     {0x01, 0xC0, 0x00, 'M', 'c', 'D', 'n'}))),
                  Result::bad_gcc, 1},
        ErrorCase{"other_optional_fields",
                  kRequest + data_tpdu(connect_initial(gcc(client_data({"rdpdr"}),
                                                           {0x00, 0x0C, 0x00, 0x10, 0x00}))),
                  Result::bad_gcc, 1},
        ErrorCase{"gcc_longer_than_user_data",
                  kRequest + data_tpdu(connect_initial(Bytes{0x00, 0x05, 0x00, 0x14, 0x7C, 0x00,
                                                             0x01, 0x40, 0x00, 0x08})),
                  Result::bad_gcc, 1},
        ErrorCase{"fragmented_per_length",
                  kRequest + data_tpdu(connect_initial(Bytes{0x00, 0x05, 0x00, 0x14, 0x7C, 0x00,
                                                             0x01, 0xC1, 0x00, 0x08})),
                  Result::bad_gcc, 1},
        ErrorCase{
            "block_length_3",
            kRequest + data_tpdu(connect_initial(gcc(cs_core() + Bytes{0x02, 0xC0, 0x03, 0x00}))),
            Result::bad_client_data, 1},
        ErrorCase{"block_past_the_blocks",
                  kRequest + data_tpdu(connect_initial(gcc(cs_core() + Bytes{0x02, 0xC0, 0x10, 0x00,
                                                                             1, 2, 3, 4}))),
                  Result::bad_client_data, 1},
        ErrorCase{"partial_block_header",
                  kRequest + data_tpdu(connect_initial(gcc(cs_core() + Bytes{0x02, 0xC0}))),
                  Result::bad_client_data, 1},
        ErrorCase{"channel_count_past_the_block",
                  kRequest + data_tpdu(connect_initial(gcc(cs_net({"rdpdr", "rdpsnd"}, 3)))),
                  Result::bad_client_data, 1},
        ErrorCase{"cs_net_without_count",
                  kRequest + data_tpdu(connect_initial(gcc(block(0xC003, {0x01, 0x00})))),
                  Result::bad_client_data, 1},
        ErrorCase{"thirty_two_channels",
                  kRequest + data_tpdu(connect_initial(gcc(cs_net({"a"}, 32) + Bytes(31 * 12, 0)))),
                  Result::too_many_channels, 1}),
    [](const ::testing::TestParamInfo<ErrorCase>& p) { return p.param.name; });

TEST(RdpParser, ObserverRejectsMsT120AndTheParserStaysRejected) {
  const Bytes stream = setup({"rdpdr", "MS_T120", "cliprdr"});
  const Outcome o = run_all_splits(stream, "MS_T120");
  EXPECT_EQ(o.result, Result::rejected_by_policy);
  EXPECT_EQ(o.events, (std::vector<std::string>{"request neg=1 protocols=0", "channel rdpdr t120=0",
                                                "channel MS_T120 t120=1"}));
  Parser parser;
  Recorder recorder("MS_T120");
  EXPECT_EQ(parser.feed(stream.data(), stream.size(), recorder), Result::rejected_by_policy);
  EXPECT_EQ(parser.feed(stream.data(), stream.size(), recorder), Result::rejected_by_policy);
  EXPECT_EQ(parser.feed(nullptr, 0, recorder), Result::rejected_by_policy);
  EXPECT_EQ(recorder.events.size(), 3u);
}

TEST(RdpParser, ResetByAssignmentForPoolReuse) {
  Parser parser;
  Recorder recorder("");
  const Bytes bad = text("GET /");
  EXPECT_EQ(parser.feed(bad.data(), bad.size(), recorder), Result::bad_tpkt);
  parser = Parser{};
  const Bytes good = setup(kRdesktop);
  EXPECT_EQ(parser.feed(good.data(), good.size(), recorder), Result::ok);
  EXPECT_TRUE(parser.done());
}

TEST(RdpParser, EveryResultHasADistinctLabel) {
  std::vector<std::string> labels;
  for (int r = 0; r <= static_cast<int>(Result::rejected_by_policy); ++r) {
    const std::string label(to_string(static_cast<Result>(r)));
    EXPECT_NE(label, "unknown");
    for (const std::string& other : labels) EXPECT_NE(label, other);
    labels.push_back(label);
  }
}

}  // namespace
}  // namespace cordon::engine::rdp
