// DICOM inspector tests. PDUs come from a small builder below (so each case states the
// one field it breaks) and from two captured DCMTK associations (data/). Every script is
// also replayed in 1-byte feeds and split at every byte, and must give the same facts and
// result: the engine feeds whatever TCP segmentation the wire had.
#include "dataplane/engine/inspect/dicom.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <ostream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace cordon::engine::dicom {
void PrintTo(Error error, std::ostream* os) {
  *os << error_name(error);
}
}  // namespace cordon::engine::dicom

namespace cordon::engine::dicom {
namespace {

static_assert(std::is_trivially_copyable_v<Parser>);
static_assert(sizeof(Parser) <= kParserSizeBudget);

using Bytes = std::vector<uint8_t>;

constexpr char kVerification[] = "1.2.840.10008.1.1";
constexpr char kCtImage[] = "1.2.840.10008.5.1.4.1.1.2";
constexpr char kMrImage[] = "1.2.840.10008.5.1.4.1.1.4";
constexpr char kImplicitLe[] = "1.2.840.10008.1.2";
constexpr char kExplicitLe[] = "1.2.840.10008.1.2.1";
constexpr char kAppContext[] = "1.2.840.10008.3.1.1.1";

// ---- Builder -------------------------------------------------------------------------

void put16be(Bytes& b, uint32_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void put32be(Bytes& b, uint32_t v) {
  put16be(b, v >> 16);
  put16be(b, v & 0xFFFF);
}
void put16le(Bytes& b, uint32_t v) {
  b.push_back(static_cast<uint8_t>(v));
  b.push_back(static_cast<uint8_t>(v >> 8));
}
void put32le(Bytes& b, uint32_t v) {
  put16le(b, v & 0xFFFF);
  put16le(b, v >> 16);
}
void append(Bytes& b, const Bytes& more) {
  b.insert(b.end(), more.begin(), more.end());
}
Bytes text(std::string_view s) {
  return Bytes(s.begin(), s.end());
}
Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) append(out, p);
  return out;
}

// Item / sub-item: type, reserved, 16-bit length. `length` overrides the true length.
Bytes item(uint8_t type, const Bytes& body, int length = -1) {
  Bytes b{type, 0};
  put16be(b, length < 0 ? static_cast<uint32_t>(body.size()) : static_cast<uint32_t>(length));
  append(b, body);
  return b;
}
// PDU: type, reserved, 32-bit length.
Bytes pdu(uint8_t type, const Bytes& body, int64_t length = -1) {
  Bytes b{type, 0};
  put32be(b, length < 0 ? static_cast<uint32_t>(body.size()) : static_cast<uint32_t>(length));
  append(b, body);
  return b;
}
Bytes ae16(std::string_view s) {
  Bytes b = text(s);
  b.resize(16, ' ');
  return b;
}

struct ProposedContext {
  uint8_t id = 1;
  std::string abstract_syntax = kVerification;
  std::vector<std::string> transfer_syntaxes = {kImplicitLe};
};

Bytes context_rq_item(const ProposedContext& c) {
  Bytes body{c.id, 0, 0, 0};
  append(body, item(0x30, text(c.abstract_syntax)));
  for (const auto& ts : c.transfer_syntaxes) append(body, item(0x40, text(ts)));
  return item(0x20, body);
}

Bytes user_info(uint32_t max_length, const Bytes& extra = {}) {
  Bytes max;
  put32be(max, max_length);
  return item(0x50, cat({item(0x51, max), item(0x52, text("1.2.3.4")), extra}));
}

// The 68 fixed bytes of an A-ASSOCIATE-RQ/AC.
Bytes associate_fixed(std::string_view calling, std::string_view called, uint16_t version = 1) {
  Bytes b;
  put16be(b, version);
  put16be(b, 0);
  append(b, ae16(called));
  append(b, ae16(calling));
  b.resize(b.size() + 32, 0);
  return b;
}

Bytes associate_rq(const std::vector<ProposedContext>& contexts, std::string_view calling = "CT1",
                   std::string_view called = "PACS", uint32_t max_length = 16384) {
  Bytes body = associate_fixed(calling, called);
  append(body, item(0x10, text(kAppContext)));
  for (const auto& c : contexts) append(body, context_rq_item(c));
  append(body, user_info(max_length));
  return pdu(0x01, body);
}

struct ContextResult {
  uint8_t id = 1;
  uint8_t result = 0;
  std::string transfer_syntax = kImplicitLe;
};

Bytes context_ac_item(const ContextResult& c) {
  return item(0x21, cat({Bytes{c.id, 0, c.result, 0}, item(0x40, text(c.transfer_syntax))}));
}

Bytes associate_ac(const std::vector<ContextResult>& results, uint32_t max_length = 32768) {
  Bytes body = associate_fixed("CT1", "PACS");
  append(body, item(0x10, text(kAppContext)));
  for (const auto& r : results) append(body, context_ac_item(r));
  append(body, user_info(max_length));
  return pdu(0x02, body);
}

Bytes associate_rj(uint8_t result = 1, uint8_t source = 1, uint8_t reason = 7) {
  return pdu(0x03, {0, result, source, reason});
}
Bytes release_rq() {
  return pdu(0x05, {0, 0, 0, 0});
}
Bytes release_rp() {
  return pdu(0x06, {0, 0, 0, 0});
}
Bytes abort_pdu(uint8_t source = 0, uint8_t reason = 0) {
  return pdu(0x07, {0, 0, source, reason});
}

struct Pdv {
  uint8_t context = 1;
  uint8_t control = 0x03;  // command, last fragment
  Bytes data;
};
Bytes pdv(const Pdv& p) {
  Bytes b;
  put32be(b, static_cast<uint32_t>(p.data.size() + 2));
  b.push_back(p.context);
  b.push_back(p.control);
  append(b, p.data);
  return b;
}
Bytes p_data(const std::vector<Pdv>& pdvs) {
  Bytes body;
  for (const auto& p : pdvs) append(body, pdv(p));
  return pdu(0x04, body);
}

// Command set elements, Implicit VR Little Endian.
Bytes element(uint16_t number, const Bytes& value, int64_t length = -1) {
  Bytes b;
  put16le(b, 0x0000);
  put16le(b, number);
  put32le(b, length < 0 ? static_cast<uint32_t>(value.size()) : static_cast<uint32_t>(length));
  append(b, value);
  return b;
}
Bytes us(uint16_t number, uint16_t v) {
  Bytes value;
  put16le(value, v);
  return element(number, value);
}
Bytes ui(uint16_t number, std::string_view uid) {
  Bytes value = text(uid);
  if (value.size() % 2 != 0) value.push_back(0);  // UI pads with NUL
  return element(number, value);
}
Bytes ae(uint16_t number, std::string_view title) {
  Bytes value = text(title);
  if (value.size() % 2 != 0) value.push_back(' ');
  return element(number, value);
}
// Prepends (0000,0000) Command Group Length over `elements`.
Bytes command_set(const Bytes& elements) {
  Bytes length;
  put32le(length, static_cast<uint32_t>(elements.size()));
  return cat({element(0x0000, length), elements});
}

Bytes c_echo_rq(uint16_t message_id = 1) {
  return command_set(cat({ui(0x0002, kVerification), us(0x0100, 0x0030), us(0x0110, message_id),
                          us(0x0800, kNoDataSet)}));
}
Bytes c_echo_rsp(uint16_t message_id = 1) {
  return command_set(cat({ui(0x0002, kVerification), us(0x0100, 0x8030), us(0x0120, message_id),
                          us(0x0800, kNoDataSet), us(0x0900, 0x0000)}));
}
Bytes c_store_rq(std::string_view sop_class = kCtImage, uint16_t message_id = 2) {
  return command_set(
      cat({ui(0x0002, sop_class), us(0x0100, 0x0001), us(0x0110, message_id), us(0x0700, 0x0000),
           us(0x0800, 0x0000), ui(0x1000, "2.25.1234567890123456789")}));
}
Bytes c_store_rsp(uint16_t message_id = 2, uint16_t status = 0) {
  return command_set(
      cat({ui(0x0002, kCtImage), us(0x0100, 0x8001), us(0x0120, message_id), us(0x0800, kNoDataSet),
           us(0x0900, status), ui(0x1000, "2.25.1234567890123456789")}));
}
Bytes c_move_rq(std::string_view destination) {
  return command_set(
      cat({ui(0x0002, "1.2.840.10008.5.1.4.1.2.2.2"), us(0x0100, 0x0021), us(0x0110, 3),
           ae(0x0600, destination), us(0x0700, 0), us(0x0800, 0x0000)}));
}
Bytes data_set() {
  // Not a real data set: the parser must skip whatever a data PDV carries.
  Bytes b = text(
      "\x08\x00\x16\x00\x1a\x00\x00\x00"
      "1.2.840.10008.5.1.4.1.1.2");
  b.resize(300, 0xAB);
  return b;
}

// ---- Scripts and the recording observer --------------------------------------------

struct Segment {
  Side side;
  Bytes bytes;
};
using Script = std::vector<Segment>;

Segment R(Bytes b) {
  return {Side::requestor, std::move(b)};
}
Segment A(Bytes b) {
  return {Side::acceptor, std::move(b)};
}

std::string side_name(Side s) {
  return s == Side::requestor ? "requestor" : "acceptor";
}

// Records every fact as one line; stops the association at the first fact starting with
// `stop_on` (when set), to test Action::stop.
class Recorder : public Observer {
 public:
  explicit Recorder(std::string stop_on = {}) : stop_on_(std::move(stop_on)) {}
  std::vector<std::string> facts;

  Action on_presentation_context(uint8_t id, std::string_view uid) noexcept override {
    return add("pc " + std::to_string(id) + " " + std::string(uid));
  }
  Action on_associate_request(std::string_view calling, std::string_view called,
                              uint32_t max) noexcept override {
    return add("rq calling=" + std::string(calling) + " called=" + std::string(called) +
               " max=" + std::to_string(max));
  }
  Action on_presentation_context_result(uint8_t id, uint8_t result) noexcept override {
    return add("pc-result " + std::to_string(id) + " " + std::to_string(result));
  }
  Action on_associate_accept(uint32_t max) noexcept override {
    return add("ac max=" + std::to_string(max));
  }
  Action on_associate_reject(uint8_t result, uint8_t source, uint8_t reason) noexcept override {
    return add("rj " + std::to_string(result) + " " + std::to_string(source) + " " +
               std::to_string(reason));
  }
  Action on_command(const Command& c) noexcept override {
    char field[8];
    std::snprintf(field, sizeof field, "%04x", c.command_field);
    std::string line =
        "command " + side_name(c.side) + " ctx=" + std::to_string(c.presentation_context_id) + " " +
        std::string(command_name(c.command_field)) +
        (is_response(c.command_field) ? "-RSP" : "-RQ") + " " + field +
        " sop=" + std::string(c.sop_class_uid) + " data=" + (c.has_data_set ? "1" : "0");
    if (is_response(c.command_field)) line += " status=" + std::to_string(c.status);
    if (!c.move_destination.empty()) line += " dest=" + std::string(c.move_destination);
    return add(line);
  }
  Action on_release(Side side, bool response) noexcept override {
    return add("release " + side_name(side) + (response ? " rp" : " rq"));
  }
  Action on_abort(Side side, uint8_t source, uint8_t reason) noexcept override {
    return add("abort " + side_name(side) + " " + std::to_string(source) + " " +
               std::to_string(reason));
  }

 private:
  Action add(std::string fact) {
    const bool stop = !stop_on_.empty() && fact.rfind(stop_on_, 0) == 0;
    facts.push_back(std::move(fact));
    return stop ? Action::stop : Action::proceed;
  }
  std::string stop_on_;
};

struct Outcome {
  std::vector<std::string> facts;
  Error error = Error::ok;
  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  os << error_name(o.error) << " after";
  for (const auto& f : o.facts) os << "\n  " << f;
  return os;
}

// Feeds every segment in pieces chosen by `cut(segment index, length)` (the sizes of the
// pieces, summing to the length). Stops at the first error, as the engine would.
using Cutter = std::function<std::vector<size_t>(size_t, size_t)>;

Outcome run(const Script& script, const Cutter& cut, const std::string& stop_on = {}) {
  Parser parser;
  Recorder recorder(stop_on);
  Outcome out;
  for (size_t i = 0; i < script.size() && out.error == Error::ok; ++i) {
    const Bytes& b = script[i].bytes;
    size_t pos = 0;
    for (size_t piece : cut(i, b.size())) {
      out.error = parser.feed(script[i].side, b.data() + pos, piece, recorder);
      pos += piece;
      if (out.error != Error::ok) break;
    }
  }
  if (out.error != Error::ok) {
    // Dead: the same error again, and no more facts.
    const size_t facts = recorder.facts.size();
    const uint8_t byte = 0x04;
    EXPECT_EQ(parser.feed(Side::requestor, &byte, 1, recorder), out.error);
    EXPECT_EQ(parser.feed(Side::acceptor, &byte, 1, recorder), out.error);
    EXPECT_EQ(recorder.facts.size(), facts);
  }
  out.facts = std::move(recorder.facts);
  return out;
}

std::vector<size_t> whole(size_t, size_t n) {
  return {n};
}

Outcome run_whole(const Script& script, const std::string& stop_on = {}) {
  return run(script, whole, stop_on);
}

// The same outcome for 1-byte feeds, for every 2-way split of every segment (sampled in
// segments above 2 KiB), and for a few random fragmentations.
void expect_split_invariant(const Script& script, const Outcome& expected,
                            const std::string& stop_on = {}) {
  EXPECT_EQ(run(
                script, [](size_t, size_t n) { return std::vector<size_t>(n, 1); }, stop_on),
            expected)
      << "1-byte feeds";
  for (size_t seg = 0; seg < script.size(); ++seg) {
    const size_t size = script[seg].bytes.size();
    for (size_t at = 1; at < size; ++at) {
      // Every byte of ordinary segments; in the few huge ones (64 KiB bounds) the first
      // and last 64 bytes and ~256 points in between, to keep the sweep quadratic-free.
      if (size > 2048 && at > 64 && at < size - 64 && at % (size / 256) != 0) continue;
      const Outcome got = run(
          script,
          [&](size_t i, size_t n) {
            return i == seg ? std::vector<size_t>{at, n - at} : std::vector<size_t>{n};
          },
          stop_on);
      if (got != expected) {
        ADD_FAILURE() << "segment " << seg << " split at " << at << ": " << got;
        return;
      }
    }
  }
  std::mt19937 rng(42);
  for (int round = 0; round < 20; ++round) {
    EXPECT_EQ(run(
                  script,
                  [&](size_t, size_t n) {
                    std::vector<size_t> pieces;
                    while (n > 0) {
                      const size_t p = std::min<size_t>(n, 1 + rng() % 17);
                      pieces.push_back(p);
                      n -= p;
                    }
                    return pieces;
                  },
                  stop_on),
              expected)
        << "random round " << round;
  }
}

// ---- The valid association ----------------------------------------------------------

const std::vector<ProposedContext> kContexts = {
    {1, kVerification, {kImplicitLe}},
    {3, kCtImage, {kExplicitLe, kImplicitLe}},
    {5, kMrImage, {kImplicitLe}},
};
const std::vector<ContextResult> kResults = {
    {1, 0, kImplicitLe}, {3, 0, kExplicitLe}, {5, 3, kImplicitLe}};

Bytes store_data_pdus() {
  const Bytes d = data_set();
  const Bytes first(d.begin(), d.begin() + 100);
  const Bytes rest(d.begin() + 100, d.end());
  // Two fragments in two PDUs, the first shared with nothing else.
  return cat({p_data({{3, 0x00, first}}), p_data({{3, 0x02, rest}})});
}

Script valid_script() {
  return {
      R(associate_rq(kContexts)),
      A(associate_ac(kResults)),
      R(p_data({{1, 0x03, c_echo_rq()}})),
      A(p_data({{1, 0x03, c_echo_rsp()}})),
      R(p_data({{3, 0x03, c_store_rq()}})),
      R(store_data_pdus()),
      A(p_data({{3, 0x03, c_store_rsp()}})),
      R(release_rq()),
      A(release_rp()),
  };
}

const std::vector<std::string> kValidFacts = {
    "pc 1 1.2.840.10008.1.1",
    "pc 3 1.2.840.10008.5.1.4.1.1.2",
    "pc 5 1.2.840.10008.5.1.4.1.1.4",
    "rq calling=CT1 called=PACS max=16384",
    "pc-result 1 0",
    "pc-result 3 0",
    "pc-result 5 3",
    "ac max=32768",
    "command requestor ctx=1 C-ECHO-RQ 0030 sop=1.2.840.10008.1.1 data=0",
    "command acceptor ctx=1 C-ECHO-RSP 8030 sop=1.2.840.10008.1.1 data=0 status=0",
    "command requestor ctx=3 C-STORE-RQ 0001 sop=1.2.840.10008.5.1.4.1.1.2 data=1",
    "command acceptor ctx=3 C-STORE-RSP 8001 sop=1.2.840.10008.5.1.4.1.1.2 data=0 status=0",
    "release requestor rq",
    "release acceptor rp",
};

TEST(DicomParser, ValidAssociationReportsEveryFact) {
  const Script script = valid_script();
  const Outcome expected{kValidFacts, Error::ok};
  EXPECT_EQ(run_whole(script), expected);
  expect_split_invariant(script, expected);
}

TEST(DicomParser, PhasesAndAccessors) {
  Parser p;
  Recorder r;
  const Script script = valid_script();
  EXPECT_EQ(p.phase(), Phase::idle);
  EXPECT_EQ(p.calling_ae(), "");
  ASSERT_EQ(p.feed(Side::requestor, script[0].bytes.data(), script[0].bytes.size(), r), Status::ok);
  EXPECT_EQ(p.phase(), Phase::requested);
  EXPECT_EQ(p.calling_ae(), "CT1");
  EXPECT_EQ(p.called_ae(), "PACS");
  EXPECT_EQ(p.max_pdu_length(Side::requestor), 16384u);
  ASSERT_EQ(p.feed(Side::acceptor, script[1].bytes.data(), script[1].bytes.size(), r), Status::ok);
  EXPECT_EQ(p.phase(), Phase::established);
  EXPECT_EQ(p.max_pdu_length(Side::acceptor), 32768u);
  for (size_t i = 2; i < script.size(); ++i) {
    ASSERT_EQ(p.feed(script[i].side, script[i].bytes.data(), script[i].bytes.size(), r),
              Status::ok);
  }
  EXPECT_EQ(p.phase(), Phase::released);
  EXPECT_EQ(p.error(), Error::ok);
  EXPECT_STREQ(p.detail(), "");

  Parser q;
  const Bytes a = abort_pdu(2, 6);
  ASSERT_EQ(q.feed(Side::acceptor, a.data(), a.size(), r), Status::ok);
  EXPECT_EQ(q.phase(), Phase::aborted);
}

// The AE titles precede the presentation contexts in the PDU, so an observer can read
// them from the parser while it checks each proposed context.
TEST(DicomParser, AeTitlesReadableDuringPresentationContexts) {
  struct Peek : Observer {
    const Parser* parser = nullptr;
    std::vector<std::string> seen;
    Action on_presentation_context(uint8_t, std::string_view) noexcept override {
      seen.push_back(std::string(parser->calling_ae()) + ">" + std::string(parser->called_ae()));
      return Action::proceed;
    }
  };
  Parser p;
  Peek peek;
  peek.parser = &p;
  const Bytes rq = associate_rq(kContexts, " CT1 ", "PACS");
  ASSERT_EQ(p.feed(Side::requestor, rq.data(), rq.size(), peek), Status::ok);
  EXPECT_EQ(peek.seen, std::vector<std::string>(3, "CT1>PACS"));
}

// Valid variations: each must be accepted with exactly these facts.
struct ValidCase {
  const char* name;
  Script script;
  std::vector<std::string> facts;
};

std::vector<ValidCase> valid_cases() {
  const Bytes rq1 = associate_rq({{1, kVerification, {kImplicitLe}}});
  const Bytes ac1 = associate_ac({{1, 0, kImplicitLe}});
  const std::vector<std::string> assoc1 = {"pc 1 1.2.840.10008.1.1",
                                           "rq calling=CT1 called=PACS max=16384", "pc-result 1 0",
                                           "ac max=32768"};
  auto with_max0 = [&](std::vector<std::string> more) {
    std::vector<std::string> f = {"pc 1 1.2.840.10008.1.1", "rq calling=CT1 called=PACS max=16384",
                                  "pc-result 1 0", "ac max=0"};
    f.insert(f.end(), more.begin(), more.end());
    return f;
  };
  auto with = [&](std::vector<std::string> more) {
    std::vector<std::string> f = assoc1;
    f.insert(f.end(), more.begin(), more.end());
    return f;
  };
  const std::string echo_rq = "command requestor ctx=1 C-ECHO-RQ 0030 sop=1.2.840.10008.1.1 data=0";
  const std::string echo_rsp =
      "command acceptor ctx=1 C-ECHO-RSP 8030 sop=1.2.840.10008.1.1 data=0 status=0";

  // A command cut into 1-byte PDVs, three PDVs per PDU.
  std::vector<Bytes> pdus;
  {
    const Bytes cmd = c_echo_rq();
    std::vector<Pdv> pending;
    for (size_t i = 0; i < cmd.size(); ++i) {
      pending.push_back({1, static_cast<uint8_t>(i + 1 == cmd.size() ? 0x03 : 0x01), {cmd[i]}});
      if (pending.size() == 3 || i + 1 == cmd.size()) {
        pdus.push_back(p_data(pending));
        pending.clear();
      }
    }
  }
  Bytes fragmented;
  for (const auto& p : pdus) append(fragmented, p);

  // An RQ whose titles have leading spaces, whose abstract syntax is NUL padded, with
  // user information sub-items the parser skips, and no maximum length (0 = unlimited).
  Bytes rq_odd;
  {
    Bytes body = associate_fixed("  CT1", " PACS");
    append(body, item(0x10, text(kAppContext)));
    Bytes pc{1, 0, 0, 0};
    append(pc, item(0x30, cat({text(kVerification), Bytes{0}})));
    append(pc, item(0x40, text(kImplicitLe)));
    append(body, item(0x20, pc));
    Bytes identity{1, 0};  // user identity: username, no response requested
    put16be(identity, 5);
    append(identity, text("alice"));
    put16be(identity, 0);
    append(body,
           item(0x50, cat({item(0x52, text("1.2.3")), item(0x55, text("ANY_1.0")),
                           item(0x58, identity), item(0x54, Bytes{}), item(0x51, {0, 0, 0, 0})})));
    rq_odd = pdu(0x01, body);
  }
  const Bytes ac_unlimited = associate_ac({{1, 0, kImplicitLe}}, 0);
  // A C-ECHO-RQ that (oddly, but the parser does not care) announces a data set.
  const Bytes echo_with_data =
      command_set(cat({ui(0x0002, kVerification), us(0x0100, 0x0030), us(0x0800, 0x0000)}));
  const std::string echo_with_data_fact =
      "command requestor ctx=1 C-ECHO-RQ 0030 sop=1.2.840.10008.1.1 data=1";
  // P-DATA-TF of exactly the acceptor's maximum (32768): two PDV headers, the command.
  const Bytes at_max =
      p_data({{1, 0x03, echo_with_data}, {1, 0x02, Bytes(32768 - 12 - echo_with_data.size(), 0)}});

  return {
      {"command in 1-byte PDVs across PDUs", {R(rq1), A(ac1), R(fragmented)}, with({echo_rq})},
      {"leading spaces, NUL padding, skipped sub-items, no maximum",
       {R(rq_odd), A(ac_unlimited), R(p_data({{1, 0x03, c_echo_rq()}, {1, 0x03, c_echo_rq(2)}}))},
       {"pc 1 1.2.840.10008.1.1", "rq calling=CT1 called=PACS max=0", "pc-result 1 0", "ac max=0",
        echo_rq, echo_rq}},
      {"release collision",
       {R(rq1), A(ac1), R(release_rq()), A(release_rq()), A(release_rp()), R(release_rp())},
       with({"release requestor rq", "release acceptor rq", "release acceptor rp",
             "release requestor rp"})},
      {"acceptor still sends P-DATA after the requestor's A-RELEASE-RQ",
       {R(rq1), A(ac1), R(p_data({{1, 0x03, c_echo_rq()}})), R(release_rq()),
        A(p_data({{1, 0x03, c_echo_rsp()}})), A(release_rp())},
       with({echo_rq, "release requestor rq", echo_rsp, "release acceptor rp"})},
      {"abort crossing the peer's P-DATA",
       {R(rq1), A(ac1), R(p_data({{1, 0x03, c_echo_rq()}})), R(abort_pdu(0, 0)),
        A(p_data({{1, 0x03, c_echo_rsp()}})), A(abort_pdu(2, 1))},
       with({echo_rq, "abort requestor 0 0", echo_rsp, "abort acceptor 2 1"})},
      {"rejected association",
       {R(rq1), A(associate_rj(2, 3, 1)), R(abort_pdu())},
       {"pc 1 1.2.840.10008.1.1", "rq calling=CT1 called=PACS max=16384", "rj 2 3 1",
        "abort requestor 0 0"}},
      {"abort before anything", {A(abort_pdu(2, 0))}, {"abort acceptor 2 0"}},
      {"C-MOVE reports its destination",
       {R(associate_rq({{1, "1.2.840.10008.5.1.4.1.2.2.2", {kImplicitLe}}})), A(ac1),
        R(p_data({{1, 0x03, c_move_rq(" WS7 ")}})), R(p_data({{1, 0x02, {1, 2, 3}}}))},
       {"pc 1 1.2.840.10008.5.1.4.1.2.2.2", "rq calling=CT1 called=PACS max=16384", "pc-result 1 0",
        "ac max=32768",
        "command requestor ctx=1 C-MOVE-RQ 0021 sop=1.2.840.10008.5.1.4.1.2.2.2 data=1 "
        "dest=WS7"}},
      {"command without group length, with an empty PDV and empty data set fragment",
       {R(rq1), A(ac1),
        R(p_data(
            {{1, 0x01, {}},
             {1, 0x03, cat({ui(0x0002, kVerification), us(0x0100, 0x0030), us(0x0800, 0x0000)})},
             {1, 0x02, {}}}))},
       with({echo_with_data_fact})},
      {"P-DATA above 16 KiB when the receiver announced no maximum",
       {R(rq1), A(ac_unlimited),
        R(p_data({{1, 0x03, echo_with_data}, {1, 0x02, Bytes(40000, 0)}}))},
       with_max0({echo_with_data_fact})},
      {"unknown reserved bits in the message control header are not tested",
       {R(rq1), A(ac1), R(p_data({{1, 0xF3, c_echo_rq()}}))},
       with({echo_rq})},
      {"empty SOP class is treated as absent",
       {R(rq1), A(ac1),
        R(p_data({{1, 0x03,
                   command_set(
                       cat({element(0x0002, {}), us(0x0100, 0x0030), us(0x0800, kNoDataSet)}))}}))},
       with({"command requestor ctx=1 C-ECHO-RQ 0030 sop= data=0"})},
      {"C-CANCEL",
       {R(rq1), A(ac1),
        R(p_data(
            {{1, 0x03,
              command_set(cat({us(0x0100, 0x0FFF), us(0x0120, 1), us(0x0800, kNoDataSet)}))}}))},
       with({"command requestor ctx=1 C-CANCEL-RQ 0fff sop= data=0"})},
      {"P-DATA of exactly the announced maximum",
       {R(rq1), A(ac1), R(at_max)},
       with({echo_with_data_fact})},
  };
}

TEST(DicomParser, ValidVariations) {
  for (const auto& c : valid_cases()) {
    SCOPED_TRACE(c.name);
    const Outcome expected{c.facts, Error::ok};
    EXPECT_EQ(run_whole(c.script), expected);
    expect_split_invariant(c.script, expected);
  }
}

// ---- Violations --------------------------------------------------------------------

struct ErrorCase {
  const char* name;
  Script script;
  Error error;
  std::string stop_on = {};
};

// An A-ASSOCIATE-RQ from raw parts, to break one of them.
Bytes rq_with_items(const Bytes& items, std::string_view calling = "CT1",
                    std::string_view called = "PACS", uint16_t version = 1) {
  return pdu(0x01, cat({associate_fixed(calling, called, version), items}));
}
Bytes app_context() {
  return item(0x10, text(kAppContext));
}
Bytes pc_item(uint8_t id, std::string_view abstract_syntax) {
  return context_rq_item({id, std::string(abstract_syntax), {kImplicitLe}});
}
// Association with contexts 1 (verification, accepted) and 3 (CT, refused).
Script associated(std::vector<Segment> more) {
  Script s = {R(associate_rq({{1, kVerification, {kImplicitLe}}, {3, kCtImage, {kImplicitLe}}})),
              A(associate_ac({{1, 0, kImplicitLe}, {3, 4, kImplicitLe}}))};
  for (auto& m : more) s.push_back(std::move(m));
  return s;
}
Bytes echo_pdata(const Bytes& command, uint8_t context = 1) {
  return p_data({{context, 0x03, command}});
}
Bytes echo_with(const Bytes& elements) {
  return echo_pdata(command_set(elements));
}

std::vector<ErrorCase> error_cases() {
  const Bytes pc1 = pc_item(1, kVerification);
  const Bytes ui_ok = user_info(16384);
  Bytes oversized_pdata_header{0x04, 0};
  put32be(oversized_pdata_header, 32769);
  Bytes huge_header{0x01, 0};
  put32be(huge_header, kMaxPduLength + 1);
  const Bytes big_element = element(0x1234, Bytes(70000, 0));

  return {
      // PDU framing
      {"PDU type 0x08", {R(pdu(0x08, {0, 0, 0, 0}))}, Error::unknown_pdu_type},
      {"PDU type 0x00", {R(pdu(0x00, {0, 0, 0, 0}))}, Error::unknown_pdu_type},
      {"PDU above the absolute cap", {R(huge_header)}, Error::pdu_too_large},
      {"P-DATA above the acceptor's maximum", associated({R(oversized_pdata_header)}),
       Error::pdu_exceeds_max_length},
      {"P-DATA above the requestor's maximum",
       associated({A(p_data({{1, 0x01, Bytes(16384, 0)}}))}), Error::pdu_exceeds_max_length},
      {"A-ASSOCIATE-RQ shorter than its fixed fields",
       {R(pdu(0x01, associate_fixed("CT1", "PACS"), 67))},
       Error::pdu_length_invalid},
      {"A-RELEASE-RQ of 5 bytes", associated({R(pdu(0x05, {0, 0, 0, 0, 0}))}),
       Error::pdu_length_invalid},
      {"A-ABORT of 3 bytes", {R(pdu(0x07, {0, 0, 0}))}, Error::pdu_length_invalid},
      {"P-DATA of 5 bytes", associated({R(pdu(0x04, {0, 0, 0, 1, 1}))}), Error::pdu_length_invalid},
      // Item lengths
      {"PDU longer than its items",
       {R(rq_with_items(cat({app_context(), pc1, ui_ok, Bytes{0}})))},
       Error::item_length_invalid},
      {"PDU longer than its items by a whole empty item",
       {R(rq_with_items(cat({app_context(), pc1, ui_ok, item(0x60, {})})))},
       Error::unexpected_item},
      {"item longer than its PDU",
       {R(rq_with_items(cat({app_context(), pc1, item(0x50, text("12345678"), 9)})))},
       Error::item_length_invalid},
      {"sub-item longer than its item",
       {R(rq_with_items(cat({app_context(),
                             item(0x20, cat({Bytes{1, 0, 0, 0}, item(0x30, text(kVerification), 40),
                                             item(0x40, text(kImplicitLe))})),
                             ui_ok})))},
       Error::item_length_invalid},
      {"item ends inside a sub-item header",
       {R(rq_with_items(cat({app_context(), pc1, item(0x50, {0x51, 0, 0})})))},
       Error::item_length_invalid},
      {"presentation context item shorter than 4",
       {R(rq_with_items(cat({app_context(), item(0x20, {1, 0}), ui_ok})))},
       Error::item_length_invalid},
      {"maximum length sub-item of 2 bytes",
       {R(rq_with_items(cat({app_context(), pc1, item(0x50, item(0x51, {0x40, 0}))})))},
       Error::item_length_invalid},
      // Item types and counts
      {"unknown item type",
       {R(rq_with_items(cat({app_context(), pc1, item(0x60, {1})})))},
       Error::unexpected_item},
      {"A-ASSOCIATE-AC context item in an RQ",
       {R(rq_with_items(cat({app_context(), context_ac_item({1, 0, kImplicitLe}), ui_ok})))},
       Error::unexpected_item},
      {"second application context",
       {R(rq_with_items(cat({app_context(), app_context(), pc1, ui_ok})))},
       Error::unexpected_item},
      {"no application context", {R(rq_with_items(cat({pc1, ui_ok})))}, Error::unexpected_item},
      {"second user information",
       {R(rq_with_items(cat({app_context(), pc1, ui_ok, ui_ok})))},
       Error::unexpected_item},
      {"second abstract syntax",
       {R(rq_with_items(
           cat({app_context(),
                item(0x20, cat({Bytes{1, 0, 0, 0}, item(0x30, text(kVerification)),
                                item(0x30, text(kCtImage)), item(0x40, text(kImplicitLe))})),
                ui_ok})))},
       Error::unexpected_item},
      {"unknown sub-item in a presentation context",
       {R(rq_with_items(cat({app_context(),
                             item(0x20, cat({Bytes{1, 0, 0, 0}, item(0x30, text(kVerification)),
                                             item(0x40, text(kImplicitLe)), item(0x41, {})})),
                             ui_ok})))},
       Error::unexpected_item},
      {"second maximum length",
       {R(rq_with_items(
           cat({app_context(), pc1,
                item(0x50, cat({item(0x51, {0, 0, 0x40, 0}), item(0x51, {0, 0, 0x40, 0})}))})))},
       Error::unexpected_item},
      // Fixed fields
      {"protocol version 0",
       {R(rq_with_items(cat({app_context(), pc1, ui_ok}), "CT1", "PACS", 0))},
       Error::protocol_version},
      {"protocol version 2 only",
       {R(rq_with_items(cat({app_context(), pc1, ui_ok}), "CT1", "PACS", 2))},
       Error::protocol_version},
      {"A-ASSOCIATE-AC protocol version 0",
       {R(associate_rq({{1, kVerification, {kImplicitLe}}})),
        A(pdu(0x02, cat({associate_fixed("CT1", "PACS", 0), app_context(),
                         context_ac_item({1, 0, kImplicitLe}), ui_ok})))},
       Error::protocol_version},
      // AE titles
      {"calling AE with a backslash",
       {R(associate_rq(kContexts, "CT\\1"))},
       Error::invalid_ae_title},
      {"called AE of only spaces",
       {R(associate_rq(kContexts, "CT1", "    "))},
       Error::invalid_ae_title},
      {"calling AE with a control character",
       {R(associate_rq(kContexts, "CT\x01"))},
       Error::invalid_ae_title},
      {"called AE with DEL",
       {R(associate_rq(kContexts, "CT1", "PA\x7f"))},
       Error::invalid_ae_title},
      {"called AE padded with NUL",
       {R(associate_rq(kContexts, "CT1", std::string_view("PACS\0\0\0\0\0\0\0\0\0\0\0\0", 16)))},
       Error::invalid_ae_title},
      {"calling AE with a Latin-1 byte",
       {R(associate_rq(kContexts, "CT\xe9"))},
       Error::invalid_ae_title},
      // UIDs
      {"abstract syntax of 65 characters",
       {R(rq_with_items(cat({app_context(), pc_item(1, "1." + std::string(63, '2')), ui_ok})))},
       Error::invalid_uid},
      {"abstract syntax with letters",
       {R(rq_with_items(cat({app_context(), pc_item(1, "1.2.840.abc"), ui_ok})))},
       Error::invalid_uid},
      {"empty abstract syntax",
       {R(rq_with_items(cat({app_context(), pc_item(1, ""), ui_ok})))},
       Error::invalid_uid},
      {"abstract syntax with a NUL inside",
       {R(rq_with_items(cat({app_context(),
                             pc_item(1, std::string_view("1.2\0"
                                                         "3",
                                                         5)),
                             ui_ok})))},
       Error::invalid_uid},
      {"abstract syntax of padding only",
       {R(rq_with_items(cat({app_context(), pc_item(1, std::string_view("\0\0", 2)), ui_ok})))},
       Error::invalid_uid},
      {"transfer syntax with a slash",
       {R(rq_with_items(
           cat({app_context(), context_rq_item({1, kVerification, {"1.2.840/10008"}}), ui_ok})))},
       Error::invalid_uid},
      {"application context with a space inside",
       {R(rq_with_items(cat({item(0x10, text("1.2 3")), pc1, ui_ok})))},
       Error::invalid_uid},
      {"SOP class in a command with letters",
       associated(
           {R(echo_with(cat({ui(0x0002, "1.2.x"), us(0x0100, 0x0030), us(0x0800, kNoDataSet)})))}),
       Error::invalid_uid},
      {"SOP class in a command longer than 64",
       associated({R(echo_with(cat({element(0x0002, text("1." + std::string(64, '2'))),
                                    us(0x0100, 0x0030), us(0x0800, kNoDataSet)})))}),
       Error::invalid_uid},
      // Presentation contexts
      {"even context id",
       {R(rq_with_items(cat({app_context(), pc_item(2, kVerification), ui_ok})))},
       Error::invalid_presentation_context},
      {"context id proposed twice",
       {R(rq_with_items(cat({app_context(), pc1, pc_item(1, kCtImage), ui_ok})))},
       Error::invalid_presentation_context},
      {"context without transfer syntax",
       {R(rq_with_items(
           cat({app_context(),
                item(0x20, cat({Bytes{1, 0, 0, 0}, item(0x30, text(kVerification))})), ui_ok})))},
       Error::invalid_presentation_context},
      {"context without abstract syntax",
       {R(rq_with_items(
           cat({app_context(), item(0x20, cat({Bytes{1, 0, 0, 0}, item(0x40, text(kImplicitLe))})),
                ui_ok})))},
       Error::invalid_presentation_context},
      {"RQ without contexts",
       {R(rq_with_items(cat({app_context(), ui_ok})))},
       Error::invalid_presentation_context},
      {"AC answers a context twice",
       {R(associate_rq({{1, kVerification, {kImplicitLe}}})),
        A(associate_ac({{1, 0, kImplicitLe}, {1, 0, kImplicitLe}}))},
       Error::invalid_presentation_context},
      {"AC result 5",
       {R(associate_rq({{1, kVerification, {kImplicitLe}}})),
        A(associate_ac({{1, 5, kImplicitLe}}))},
       Error::invalid_presentation_context},
      {"AC accepts without transfer syntax",
       {R(associate_rq({{1, kVerification, {kImplicitLe}}})),
        A(pdu(0x02, cat({associate_fixed("CT1", "PACS"), app_context(), item(0x21, {1, 0, 0, 0}),
                         ui_ok})))},
       Error::invalid_presentation_context},
      {"AC answers a context not proposed",
       {R(associate_rq({{1, kVerification, {kImplicitLe}}})),
        A(associate_ac({{1, 0, kImplicitLe}, {5, 0, kImplicitLe}}))},
       Error::unknown_presentation_context},
      {"P-DATA on a context not proposed", associated({R(echo_pdata(c_echo_rq(), 7))}),
       Error::unknown_presentation_context},
      {"P-DATA on an even context id", associated({R(echo_pdata(c_echo_rq(), 2))}),
       Error::unknown_presentation_context},
      {"P-DATA on a refused context", associated({R(echo_pdata(c_store_rq(), 3))}),
       Error::presentation_context_not_accepted},
      // Phases
      {"A-ASSOCIATE-RQ from the acceptor",
       {A(associate_rq(kContexts))},
       Error::associate_rq_from_acceptor},
      {"P-DATA before A-ASSOCIATE-AC",
       {R(associate_rq(kContexts)), R(echo_pdata(c_echo_rq()))},
       Error::pdata_before_association},
      {"P-DATA before anything", {R(echo_pdata(c_echo_rq()))}, Error::pdata_before_association},
      {"P-DATA after A-ASSOCIATE-RJ",
       {R(associate_rq(kContexts)), A(associate_rj()), A(echo_pdata(c_echo_rsp()))},
       Error::pdata_before_association},
      {"second A-ASSOCIATE-RQ", associated({R(associate_rq(kContexts))}), Error::unexpected_pdu},
      {"A-ASSOCIATE-AC from the requestor", {R(associate_ac(kResults))}, Error::unexpected_pdu},
      {"A-ASSOCIATE-AC without a request", {A(associate_ac(kResults))}, Error::unexpected_pdu},
      {"second A-ASSOCIATE-AC", associated({A(associate_ac({{1, 0, kImplicitLe}}))}),
       Error::unexpected_pdu},
      {"A-ASSOCIATE-RJ after A-ASSOCIATE-AC", associated({A(associate_rj())}),
       Error::unexpected_pdu},
      {"A-RELEASE-RQ before association", {R(release_rq())}, Error::unexpected_pdu},
      {"A-RELEASE-RP without request", associated({A(release_rp())}), Error::unexpected_pdu},
      {"P-DATA after own A-RELEASE-RQ", associated({R(release_rq()), R(echo_pdata(c_echo_rq()))}),
       Error::unexpected_pdu},
      {"P-DATA after own A-RELEASE-RP",
       associated({R(release_rq()), A(release_rp()), A(echo_pdata(c_echo_rsp()))}),
       Error::unexpected_pdu},
      {"second A-RELEASE-RQ", associated({R(release_rq()), R(release_rq())}),
       Error::unexpected_pdu},
      {"bytes after A-ABORT", associated({R(abort_pdu()), R(release_rq())}), Error::unexpected_pdu},
      {"A-ASSOCIATE-RJ result 3",
       {R(associate_rq(kContexts)), A(associate_rj(3, 1, 1))},
       Error::invalid_pdu_field},
      {"A-ASSOCIATE-RJ source 0",
       {R(associate_rq(kContexts)), A(associate_rj(1, 0, 1))},
       Error::invalid_pdu_field},
      // PDVs
      {"PDV length 1", associated({R(pdu(0x04, {0, 0, 0, 1, 1, 3}))}), Error::pdv_length_invalid},
      {"PDV longer than its PDU", associated({R(pdu(0x04, {0, 0, 0, 9, 1, 3, 0, 0}))}),
       Error::pdv_length_invalid},
      {"P-DATA ends inside a PDV header",
       associated({R(pdu(0x04, cat({pdv({1, 0x03, c_echo_rq()}), Bytes{0, 0, 0}})))}),
       Error::pdv_length_invalid},
      {"data set PDV without a command", associated({R(p_data({{1, 0x02, {1, 2}}}))}),
       Error::unexpected_pdv},
      {"data set PDV inside a command",
       associated({R(p_data({{1, 0x01, {0, 0}}, {1, 0x02, {1, 2}}}))}), Error::unexpected_pdv},
      {"command PDV on another context mid-command",
       {R(associate_rq({{1, kVerification, {kImplicitLe}}, {3, kCtImage, {kImplicitLe}}})),
        A(associate_ac({{1, 0, kImplicitLe}, {3, 0, kImplicitLe}})),
        R(p_data({{1, 0x01, {0, 0}}, {3, 0x03, {0, 0}}}))},
       Error::unexpected_pdv},
      {"command before the previous data set ended",
       {R(associate_rq({{1, kVerification, {kImplicitLe}}, {3, kCtImage, {kImplicitLe}}})),
        A(associate_ac({{1, 0, kImplicitLe}, {3, 0, kImplicitLe}})),
        R(p_data({{3, 0x03, c_store_rq()}, {3, 0x00, {1, 2}}})), R(echo_pdata(c_echo_rq()))},
       Error::unexpected_pdv},
      {"data set on another context than its command",
       {R(associate_rq({{1, kVerification, {kImplicitLe}}, {3, kCtImage, {kImplicitLe}}})),
        A(associate_ac({{1, 0, kImplicitLe}, {3, 0, kImplicitLe}})),
        R(p_data({{3, 0x03, c_store_rq()}, {1, 0x02, {1, 2}}}))},
       Error::unexpected_pdv},
      // Command sets
      {"command element beyond 64 KiB",
       {R(associate_rq({{1, kVerification, {kImplicitLe}}}, "CT1", "PACS", 0)),
        A(associate_ac({{1, 0, kImplicitLe}}, 0)), R(echo_pdata(big_element))},
       Error::command_too_large},
      {"command element of undefined length",
       associated({R(echo_pdata(element(0x1234, {}, 0xFFFFFFFF)))}), Error::command_too_large},
      {"command set of many small elements beyond 64 KiB",
       {R(associate_rq({{1, kVerification, {kImplicitLe}}}, "CT1", "PACS", 0)),
        A(associate_ac({{1, 0, kImplicitLe}}, 0)), R([] {
          Bytes elements;
          for (uint32_t e = 0x2000; elements.size() < 70000; ++e) {
            append(elements, element(static_cast<uint16_t>(e), Bytes(2, 0)));
          }
          return echo_pdata(elements);
        }())},
       Error::command_too_large},
      {"element outside group 0000",
       associated({R(echo_pdata(cat({Bytes{8, 0, 0x16, 0, 2, 0, 0, 0, '1', 0}, c_echo_rq()})))}),
       Error::invalid_command},
      {"elements out of order",
       associated({R(echo_with(
           cat({us(0x0100, 0x0030), ui(0x0002, kVerification), us(0x0800, kNoDataSet)})))}),
       Error::invalid_command},
      {"element repeated",
       associated({R(echo_with(cat({ui(0x0002, kVerification), ui(0x0002, kCtImage),
                                    us(0x0100, 0x0030), us(0x0800, kNoDataSet)})))}),
       Error::invalid_command},
      {"both affected and requested SOP class",
       associated({R(echo_with(cat({ui(0x0002, kVerification), ui(0x0003, kCtImage),
                                    us(0x0100, 0x0030), us(0x0800, kNoDataSet)})))}),
       Error::invalid_command},
      {"no command field",
       associated({R(echo_with(cat({ui(0x0002, kVerification), us(0x0800, kNoDataSet)})))}),
       Error::invalid_command},
      {"unknown command field",
       associated({R(echo_with(
           cat({ui(0x0002, kVerification), us(0x0100, 0x0002), us(0x0800, kNoDataSet)})))}),
       Error::invalid_command},
      {"C-CANCEL response",
       associated({A(echo_with(cat({us(0x0100, 0x8FFF), us(0x0800, kNoDataSet)})))}),
       Error::invalid_command},
      {"no data set type",
       associated({R(echo_with(cat({ui(0x0002, kVerification), us(0x0100, 0x0030)})))}),
       Error::invalid_command},
      {"group length too small",
       associated({R(echo_pdata(cat({element(0x0000, {10, 0, 0, 0}), ui(0x0002, kVerification),
                                     us(0x0100, 0x0030), us(0x0800, kNoDataSet)})))}),
       Error::invalid_command},
      {"group length not 4 bytes",
       associated({R(echo_pdata(cat({element(0x0000, {10, 0}), us(0x0100, 0x0030)})))}),
       Error::invalid_command},
      {"command field not 2 bytes",
       associated({R(echo_with(cat({element(0x0100, {0x30, 0, 0, 0}), us(0x0800, kNoDataSet)})))}),
       Error::invalid_command},
      {"command ends inside an element",
       associated({R(echo_pdata(cat({c_echo_rq(), Bytes{0, 0, 0x10}})))}), Error::invalid_command},
      {"command ends inside an element value",
       associated({R(echo_pdata(cat({c_echo_rq(), element(0x2000, {1}, 4)})))}),
       Error::invalid_command},
      {"empty last command fragment", associated({R(echo_pdata({}))}), Error::invalid_command},
      {"Move Destination with a backslash",
       {R(associate_rq({{1, "1.2.840.10008.5.1.4.1.2.2.2", {kImplicitLe}}})),
        A(associate_ac({{1, 0, kImplicitLe}})), R(echo_pdata(c_move_rq("A\\B")))},
       Error::invalid_ae_title},
      {"Move Destination longer than 16",
       {R(associate_rq({{1, "1.2.840.10008.5.1.4.1.2.2.2", {kImplicitLe}}})),
        A(associate_ac({{1, 0, kImplicitLe}})), R(echo_pdata(c_move_rq("ABCDEFGHIJKLMNOPQR")))},
       Error::invalid_ae_title},
      // Policy
      {"observer refuses the association request",
       {R(associate_rq(kContexts)), A(associate_ac(kResults))},
       Error::rejected_by_policy,
       "rq calling=CT1"},
      {"observer refuses a command", valid_script(), Error::rejected_by_policy,
       "command requestor ctx=3 C-STORE"},
      {"observer refuses a presentation context", valid_script(), Error::rejected_by_policy,
       "pc 5"},
      {"observer refuses the abort", {R(abort_pdu())}, Error::rejected_by_policy, "abort"},
  };
}

TEST(DicomParser, EachViolationHasItsError) {
  std::set<Error> seen;
  for (const auto& c : error_cases()) {
    SCOPED_TRACE(c.name);
    const Outcome got = run_whole(c.script, c.stop_on);
    EXPECT_EQ(got.error, c.error) << got;
    seen.insert(c.error);
    expect_split_invariant(c.script, got, c.stop_on);
  }
  // Every error code has at least one case.
  for (int e = 1; e <= static_cast<int>(Error::rejected_by_policy); ++e) {
    EXPECT_TRUE(seen.count(static_cast<Error>(e))) << error_name(static_cast<Error>(e));
  }
}

TEST(DicomParser, StopsOnThePolicyFactItself) {
  // The stopping fact is the last one reported, and nothing of the data set follows.
  const Outcome got = run_whole(valid_script(), "command requestor ctx=3 C-STORE");
  ASSERT_FALSE(got.facts.empty());
  EXPECT_EQ(got.facts.back(),
            "command requestor ctx=3 C-STORE-RQ 0001 sop=1.2.840.10008.5.1.4.1.1.2 data=1");
  EXPECT_EQ(got.facts.size(), 11u);
}

TEST(DicomParser, DetailNamesTheCheck) {
  Parser p;
  Recorder r;
  const Bytes b = associate_rq(kContexts, "CT1", "    ");
  EXPECT_EQ(p.feed(Side::requestor, b.data(), b.size(), r), Error::invalid_ae_title);
  EXPECT_STREQ(p.detail(), "called AE title");
  EXPECT_EQ(p.error(), Error::invalid_ae_title);
}

TEST(DicomParser, ZeroLengthFeedIsANoOp) {
  Parser p;
  Recorder r;
  EXPECT_EQ(p.feed(Side::requestor, nullptr, 0, r), Status::ok);
  EXPECT_EQ(p.phase(), Phase::idle);
}

// Truncation: every prefix of a valid A-ASSOCIATE-RQ is accepted (an incomplete PDU is
// not wrong yet) and reports at most its facts.
TEST(DicomParser, EveryPrefixIsAcceptedWithAPrefixOfTheFacts) {
  const Bytes rq = valid_script()[0].bytes;
  for (size_t n = 0; n <= rq.size(); ++n) {
    Parser p;
    Recorder r;
    EXPECT_EQ(p.feed(Side::requestor, rq.data(), n, r), Status::ok) << n;
    EXPECT_LE(r.facts.size(), 4u);
  }
}

TEST(DicomNames, CommandNames) {
  const std::vector<std::pair<uint16_t, std::string_view>> names = {
      {0x0001, "C-STORE"},
      {0x8001, "C-STORE"},
      {0x0010, "C-GET"},
      {0x8010, "C-GET"},
      {0x0020, "C-FIND"},
      {0x8020, "C-FIND"},
      {0x0021, "C-MOVE"},
      {0x8021, "C-MOVE"},
      {0x0030, "C-ECHO"},
      {0x8030, "C-ECHO"},
      {0x0100, "N-EVENT-REPORT"},
      {0x8100, "N-EVENT-REPORT"},
      {0x0110, "N-GET"},
      {0x8110, "N-GET"},
      {0x0120, "N-SET"},
      {0x8120, "N-SET"},
      {0x0130, "N-ACTION"},
      {0x8130, "N-ACTION"},
      {0x0140, "N-CREATE"},
      {0x8140, "N-CREATE"},
      {0x0150, "N-DELETE"},
      {0x8150, "N-DELETE"},
      {0x0FFF, "C-CANCEL"},
      {0x8FFF, ""},
      {0x0000, ""},
      {0x0002, ""},
      {0x8000, ""},
      {0xFFFF, ""},
      {0x0031, ""},
  };
  for (const auto& [field, name] : names) EXPECT_EQ(command_name(field), name) << field;
  EXPECT_TRUE(is_response(0x8001));
  EXPECT_FALSE(is_response(0x0001));
}

TEST(DicomNames, ErrorNamesAreUnique) {
  std::set<std::string_view> names;
  for (int e = 0; e <= static_cast<int>(Error::rejected_by_policy); ++e) {
    const std::string_view n = error_name(static_cast<Error>(e));
    EXPECT_NE(n, "unknown");
    EXPECT_TRUE(names.insert(n).second) << n;
  }
}

// ---- Captured associations (DCMTK echoscu / storescu against storescp) ---------------

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The two directions' streams, re-cut into the TCP segments of the capture in capture
// order (data/NAME-segments.txt: "requestor 211" lines).
Script captured(const std::string& name) {
  const std::string dir = CORDON_DICOM_TEST_DATA;
  const Bytes streams[2] = {read_file(dir + "/" + name + "-requestor.bin"),
                            read_file(dir + "/" + name + "-acceptor.bin")};
  size_t pos[2] = {0, 0};
  std::ifstream order(dir + "/" + name + "-segments.txt");
  EXPECT_TRUE(order.good());
  Script script;
  std::string side;
  size_t length = 0;
  while (order >> side >> length) {
    const size_t s = side == "requestor" ? 0 : 1;
    EXPECT_LE(pos[s] + length, streams[s].size());
    if (pos[s] + length > streams[s].size()) break;
    script.push_back({static_cast<Side>(s),
                      Bytes(streams[s].begin() + static_cast<ptrdiff_t>(pos[s]),
                            streams[s].begin() + static_cast<ptrdiff_t>(pos[s] + length))});
    pos[s] += length;
  }
  EXPECT_EQ(pos[0], streams[0].size());
  EXPECT_EQ(pos[1], streams[1].size());
  return script;
}

TEST(DicomCaptured, EchoscuAssociation) {
  const Script script = captured("echo");
  const Outcome expected{{
                             "pc 1 1.2.840.10008.1.1",
                             "rq calling=CT1 called=PACS max=16384",
                             "pc-result 1 0",
                             "ac max=16384",
                             "command requestor ctx=1 C-ECHO-RQ 0030 sop=1.2.840.10008.1.1 data=0",
                             "command acceptor ctx=1 C-ECHO-RSP 8030 sop=1.2.840.10008.1.1 "
                             "data=0 status=0",
                             "release requestor rq",
                             "release acceptor rp",
                         },
                         Error::ok};
  EXPECT_EQ(run_whole(script), expected);
  expect_split_invariant(script, expected);
}

TEST(DicomCaptured, StorescuAssociation) {
  // storescu -R proposes the file's SOP class twice (its own transfer syntax, and the
  // uncompressed defaults) and uses the first context the acceptor accepted.
  const Script script = captured("store");
  const Outcome expected{{
                             "pc 1 1.2.840.10008.5.1.4.1.1.2",
                             "pc 3 1.2.840.10008.5.1.4.1.1.2",
                             "rq calling=CT1 called=PACS max=16384",
                             "pc-result 1 0",
                             "pc-result 3 0",
                             "ac max=16384",
                             "command requestor ctx=1 C-STORE-RQ 0001 "
                             "sop=1.2.840.10008.5.1.4.1.1.2 data=1",
                             "command acceptor ctx=1 C-STORE-RSP 8001 "
                             "sop=1.2.840.10008.5.1.4.1.1.2 data=0 status=0",
                             "release requestor rq",
                             "release acceptor rp",
                         },
                         Error::ok};
  EXPECT_EQ(run_whole(script), expected);
  expect_split_invariant(script, expected);
}

// ---- Seed corpus for tests/fuzz/dicom_fuzz.cpp ----------------------------------------

// Fuzz input format (see dicom_fuzz.cpp): one chunking byte, then records of
// [side byte][16-bit little-endian length][bytes].
Bytes fuzz_input(const Script& script, uint8_t chunking) {
  Bytes out{chunking};
  for (const auto& seg : script) {
    for (size_t pos = 0; pos < seg.bytes.size(); pos += 0xFFFF) {
      const size_t n = std::min<size_t>(0xFFFF, seg.bytes.size() - pos);
      out.push_back(static_cast<uint8_t>(seg.side));
      put16le(out, static_cast<uint32_t>(n));
      out.insert(out.end(), seg.bytes.begin() + static_cast<ptrdiff_t>(pos),
                 seg.bytes.begin() + static_cast<ptrdiff_t>(pos + n));
    }
  }
  return out;
}

// Writes the corpus only when asked: CORDON_DICOM_WRITE_CORPUS=tests/fuzz/corpus/dicom.
TEST(DicomCorpus, Write) {
  const char* dir = std::getenv("CORDON_DICOM_WRITE_CORPUS");
  if (dir == nullptr) GTEST_SKIP() << "set CORDON_DICOM_WRITE_CORPUS to write the seed corpus";
  auto write = [&](const std::string& name, const Bytes& bytes) {
    if (bytes.size() > 4096) return;  // the 16-64 KiB cases add size, not coverage
    std::ofstream out(std::string(dir) + "/" + name, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << name;
  };
  auto slug = [](std::string s) {
    for (char& ch : s) {
      if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '-';
    }
    return s;
  };
  write("captured-echo", fuzz_input(captured("echo"), 0x80));
  write("captured-store", fuzz_input(captured("store"), 0x05));
  write("valid-association", fuzz_input(valid_script(), 0x80));
  int i = 0;
  for (const auto& c : valid_cases()) {
    write("valid-" + slug(c.name), fuzz_input(c.script, static_cast<uint8_t>(i++ % 7)));
  }
  for (const auto& c : error_cases()) {
    if (!c.stop_on.empty()) continue;
    write("error-" + slug(c.name), fuzz_input(c.script, static_cast<uint8_t>(0x80 | (i++ % 7))));
  }
}

}  // namespace
}  // namespace cordon::engine::dicom
