// HL7/MLLP inspector tests. Streams come from the small builder below (so each case states
// the one thing it breaks) and from the sample the lab client sends
// (tests/topology/mllp_send.py). Every stream is also fed in 1-byte pieces and split in two
// at every byte, and must give the same observer calls and result: the engine feeds whatever
// TCP segmentation the wire had.
#include "dataplane/engine/inspect/hl7.h"

#include <gtest/gtest.h>

#include <cstring>
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

namespace cordon::engine::hl7 {
void PrintTo(Result result, std::ostream* os) {
  *os << to_string(result);
}
}  // namespace cordon::engine::hl7

namespace cordon::engine::hl7 {
namespace {

static_assert(std::is_trivially_copyable_v<Parser>, "pool slots are reset by assignment");
static_assert(sizeof(Parser) <= 512, "per-flow pool budget");

// --- builder -------------------------------------------------------------------------

constexpr char kSb = '\x0b';
constexpr char kEb = '\x1c';
constexpr char kCr = '\r';

std::string frame(const std::string& message) {
  return kSb + message + kEb + kCr;
}

// HL7 segments joined with CR, each terminated by CR (HL7 v2.5 §2.5.3).
std::string segments(const std::vector<std::string>& list) {
  std::string out;
  for (const std::string& s : list) out += s + kCr;
  return out;
}

std::string msh(const std::string& type, const std::string& app = "CT1",
                const std::string& facility = "RADIOLOGY") {
  return "MSH|^~\\&|" + app + "|" + facility + "|RIS|HOSPITAL|20240102030405||" + type +
         "|CT120240102030405|P|2.5";
}

// The lab's sample result (tests/topology/mllp_send.py sample_message), patient data included.
std::string sample_oru() {
  return segments({msh("ORU^R01"), "PID|1||123456^^^HOSP^MR||DOE^JANE||19600101|F",
                   "OBR|1|ORD1|ACC1|71020^CT CHEST^L|||20240102030405",
                   "OBX|1|TX|71020^CT CHEST^L||Dose report: CTDIvol 7.2 mGy||||||F"});
}

// The RIS's reply: an ACK with MSA (the other direction of the same connection).
std::string sample_ack() {
  return segments({"MSH|^~\\&|RIS|HOSPITAL|CT1|RADIOLOGY|20240102030406||ACK^R01^ACK|A1|P|2.5",
                   "MSA|AA|CT120240102030405"});
}

// --- running -------------------------------------------------------------------------

struct Outcome {
  Result result = Result::ok;
  std::vector<std::string> calls;  // "type|application|facility"
  uint32_t messages = 0;
  bool idle = true;
  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  os << to_string(o.result) << " messages=" << o.messages << " idle=" << o.idle << " calls=[";
  for (const std::string& c : o.calls) os << c << "; ";
  return os << "]";
}

class Recorder final : public Observer {
 public:
  explicit Recorder(std::string reject_type = "") : reject_(std::move(reject_type)) {}
  Decision on_message(std::string_view type, std::string_view app,
                      std::string_view facility) noexcept override {
    calls.push_back(std::string(type) + "|" + std::string(app) + "|" + std::string(facility));
    return type == reject_ ? Decision::reject : Decision::accept;
  }
  std::vector<std::string> calls;

 private:
  std::string reject_;
};

const uint8_t* bytes(const std::string& s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

// Feeds `stream` in pieces that end at each of `cuts`, then the rest.
Outcome run(const std::string& stream, const std::vector<size_t>& cuts,
            const std::string& reject = "") {
  Parser parser;
  Recorder recorder(reject);
  size_t at = 0;
  Result r = Result::ok;
  for (size_t cut : cuts) {
    r = parser.feed(bytes(stream) + at, cut - at, recorder);
    at = cut;
  }
  r = parser.feed(bytes(stream) + at, stream.size() - at, recorder);
  EXPECT_EQ(r, parser.result());
  return {r, recorder.calls, parser.messages(), parser.idle()};
}

// The whole stream at once, then checks every two-piece split and 1-byte feeds against it.
Outcome run_all_splits(const std::string& stream, const std::string& reject = "") {
  const Outcome whole = run(stream, {}, reject);
  std::vector<size_t> every;
  for (size_t i = 1; i < stream.size(); ++i) every.push_back(i);
  EXPECT_EQ(run(stream, every, reject), whole) << "1-byte feeds";
  const size_t stride = stream.size() > 4096 ? stream.size() / 64 : 1;  // 1 MiB cases
  for (size_t cut = 0; cut <= stream.size(); cut += stride) {
    EXPECT_EQ(run(stream, {cut}, reject), whole) << "split at " << cut;
  }
  return whole;
}

// --- valid streams -------------------------------------------------------------------

struct ValidCase {
  const char* name;
  std::string stream;
  std::vector<std::string> calls;
};

class Hl7Valid : public ::testing::TestWithParam<ValidCase> {};

TEST_P(Hl7Valid, ReportsEveryMessageInAnySplit) {
  const ValidCase& c = GetParam();
  const Outcome o = run_all_splits(c.stream);
  EXPECT_EQ(o.result, Result::ok);
  EXPECT_EQ(o.calls, c.calls);
  EXPECT_EQ(o.messages, c.calls.size());
  EXPECT_TRUE(o.idle);
}

INSTANTIATE_TEST_SUITE_P(
    Streams, Hl7Valid,
    ::testing::Values(
        ValidCase{"sample_oru", frame(sample_oru()), {"ORU^R01|CT1|RADIOLOGY"}},
        ValidCase{"ack_with_msa", frame(sample_ack()), {"ACK^R01|RIS|HOSPITAL"}},
        ValidCase{"ack_without_trigger",
                  frame(segments({"MSH|^~\\&|RIS|HOSP|CT1|RAD|2024||ACK|1|P|2.3", "MSA|AA|9"})),
                  {"ACK|RIS|HOSP"}},
        ValidCase{"three_messages",
                  frame(sample_oru()) + frame(segments({msh("ADT^A01")})) + frame(sample_ack()),
                  {"ORU^R01|CT1|RADIOLOGY", "ADT^A01|CT1|RADIOLOGY", "ACK^R01|RIS|HOSPITAL"}},
        ValidCase{"structure_component_not_reported",
                  frame(segments({msh("ORU^R01^ORU_R01")})),
                  {"ORU^R01|CT1|RADIOLOGY"}},
        ValidCase{"empty_trigger", frame(segments({msh("ORU^^ORU_R01")})), {"ORU|CT1|RADIOLOGY"}},
        // Other separators: MSH-1 '#', component '$'. Reported with '^'.
        ValidCase{
            "other_separators",
            frame(segments({"MSH#$~\\&#CT1$1.2.3$ISO#RAD#RIS#H#2024##ORU$R01#1#P#2.5", "PID#1"})),
            {"ORU^R01|CT1^1.2.3^ISO|RAD"}},
        // v2.7 adds a fifth encoding character, the truncation character.
        ValidCase{"truncation_character",
                  frame(segments({"MSH|^~\\&#|CT1|RAD|RIS|H|2024||ORM^O01|1|P|2.7"})),
                  {"ORM^O01|CT1|RAD"}},
        ValidCase{"empty_sender_fields",
                  frame(segments({"MSH|^~\\&|||||||ORU^R01|1|P|2.5"})),
                  {"ORU^R01||"}},
        ValidCase{"lf_segment_terminators",
                  frame(msh("ORU^R01") + "\nPID|1||123\n"),
                  {"ORU^R01|CT1|RADIOLOGY"}},
        // The last field of MSH, without its CR, ends at the end block.
        ValidCase{"msh9_ends_at_end_block",
                  frame("MSH|^~\\&|CT1|RAD|RIS|H|2024||ORU^R01"),
                  {"ORU^R01|CT1|RAD"}},
        ValidCase{"longest_fields",
                  frame(segments({msh(std::string(16, 'O') + "^" + std::string(15, 'R'),
                                      std::string(227, 'A'), std::string(227, 'F'))})),
                  {std::string(16, 'O') + "^" + std::string(15, 'R') + "|" + std::string(227, 'A') +
                   "|" + std::string(227, 'F')}},
        ValidCase{"largest_message",
                  frame(msh("ORU^R01") +
                        std::string(Parser::kMaxMessageBytes - msh("ORU^R01").size(), 'x')),
                  {"ORU^R01|CT1|RADIOLOGY"}},
        ValidCase{"empty_stream", "", {}}),
    [](const ::testing::TestParamInfo<ValidCase>& p) { return p.param.name; });

// --- errors --------------------------------------------------------------------------

struct ErrorCase {
  const char* name;
  std::string stream;
  Result result;
  std::vector<std::string> calls = {};  // messages reported before the error
};

class Hl7Error : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(Hl7Error, StopsAtTheFirstErrorInAnySplit) {
  const ErrorCase& c = GetParam();
  const Outcome o = run_all_splits(c.stream);
  EXPECT_EQ(o.result, c.result);
  EXPECT_EQ(o.calls, c.calls);
}

const std::string kOru = frame(sample_oru());

INSTANTIATE_TEST_SUITE_P(
    Streams, Hl7Error,
    ::testing::Values(
        ErrorCase{"byte_before_frame", "x" + kOru, Result::data_outside_frame},
        ErrorCase{"newline_between_frames",
                  kOru + "\r\n" + kOru,
                  Result::data_outside_frame,
                  {"ORU^R01|CT1|RADIOLOGY"}},
        ErrorCase{"start_block_in_frame",
                  kSb + msh("ORU^R01") + kSb + kEb + kCr,
                  Result::start_block_in_frame,
                  {"ORU^R01|CT1|RADIOLOGY"}},
        ErrorCase{"start_block_in_msh", std::string(1, kSb) + "MSH|^" + kSb,
                  Result::start_block_in_frame},
        ErrorCase{"end_block_without_cr",
                  kSb + sample_oru() + kEb + "\n",
                  Result::bad_end_block,
                  {"ORU^R01|CT1|RADIOLOGY"}},
        ErrorCase{"message_too_large",
                  frame(msh("ORU^R01") +
                        std::string(Parser::kMaxMessageBytes - msh("ORU^R01").size() + 1, 'x')),
                  Result::message_too_large,
                  {"ORU^R01|CT1|RADIOLOGY"}},
        ErrorCase{"empty_message", frame(""), Result::not_msh},
        ErrorCase{"starts_with_pid", frame(segments({"PID|1||123"})), Result::not_msh},
        ErrorCase{"lower_case_msh", frame(segments({"msh|^~\\&|A|B|C|D|E||ORU^R01"})),
                  Result::not_msh},
        ErrorCase{"batch_header", frame(segments({"BHS|^~\\&|A", msh("ORU^R01")})),
                  Result::not_msh},
        ErrorCase{"alphanumeric_field_separator", frame("MSHA^~\\&AX"),
                  Result::bad_field_separator},
        ErrorCase{"control_field_separator", frame("MSH\t^~\\&\tX"), Result::bad_field_separator},
        ErrorCase{"msh_ends_after_name", frame("MSH\r"), Result::bad_field_separator},
        ErrorCase{"three_encoding_characters", frame(segments({"MSH|^~\\|A|B|C|D|E||ORU^R01"})),
                  Result::bad_encoding_characters},
        ErrorCase{"six_encoding_characters", frame(segments({"MSH|^~\\&#!|A|B|C|D|E||ORU^R01"})),
                  Result::bad_encoding_characters},
        ErrorCase{"repeated_encoding_character", frame(segments({"MSH|^^\\&|A|B|C|D|E||ORU^R01"})),
                  Result::bad_encoding_characters},
        ErrorCase{"alphanumeric_encoding_character",
                  frame(segments({"MSH|^~\\X|A|B|C|D|E||ORU^R01"})),
                  Result::bad_encoding_characters},
        ErrorCase{"msh_ends_in_encoding", frame(segments({"MSH|^~", "PID|1"})),
                  Result::bad_encoding_characters},
        ErrorCase{"msh_ends_after_encoding", frame(segments({"MSH|^~\\&", "PID|1"})),
                  Result::missing_message_type},
        ErrorCase{"sending_application_too_long",
                  frame(segments({msh("ORU^R01", std::string(228, 'A'))})), Result::field_too_long},
        ErrorCase{"sending_facility_too_long",
                  frame(segments({msh("ORU^R01", "CT1", std::string(228, 'F'))})),
                  Result::field_too_long},
        ErrorCase{"message_type_too_long",
                  frame(segments({msh(std::string(16, 'O') + "^" + std::string(16, 'R'))})),
                  Result::field_too_long},
        ErrorCase{"control_character_in_facility", frame(segments({msh("ORU^R01", "CT1", "R\tD")})),
                  Result::bad_field_character},
        ErrorCase{"control_character_in_message_type",
                  frame(segments({msh("ORU^R\x01"
                                      "01")})),
                  Result::bad_field_character},
        ErrorCase{"msh_without_msh9", frame(segments({"MSH|^~\\&|CT1|RAD|RIS|H|2024", "PID|1"})),
                  Result::missing_message_type},
        ErrorCase{"message_ends_before_msh9", frame("MSH|^~\\&|CT1|RAD"),
                  Result::missing_message_type},
        ErrorCase{"empty_msh9", frame(segments({msh("")})), Result::missing_message_type},
        ErrorCase{"empty_message_code", frame(segments({msh("^R01")})), Result::bad_message_type},
        ErrorCase{"space_in_message_type", frame(segments({msh("OR U^R01")})),
                  Result::bad_message_type},
        ErrorCase{"subcomponent_in_message_type", frame(segments({msh("ORU&R01")})),
                  Result::bad_message_type},
        // A literal '^' under another component separator is not a message code character.
        ErrorCase{"caret_under_other_separator",
                  frame(segments({"MSH|$~\\&|CT1|RAD|RIS|H|2024||ORU^R01"})),
                  Result::bad_message_type}),
    [](const ::testing::TestParamInfo<ErrorCase>& p) { return p.param.name; });

// --- behaviour -----------------------------------------------------------------------

TEST(Hl7Parser, ObserverRejectsAMessageTypeAndTheParserStaysRejected) {
  const std::string stream =
      frame(sample_oru()) + frame(segments({msh("ADT^A01")})) + frame(sample_oru());
  const Outcome o = run_all_splits(stream, "ADT^A01");
  EXPECT_EQ(o.result, Result::rejected_by_policy);
  EXPECT_EQ(o.calls, (std::vector<std::string>{"ORU^R01|CT1|RADIOLOGY", "ADT^A01|CT1|RADIOLOGY"}));

  Parser parser;
  Recorder recorder("ADT^A01");
  EXPECT_EQ(parser.feed(bytes(stream), stream.size(), recorder), Result::rejected_by_policy);
  const std::string more = frame(sample_oru());
  EXPECT_EQ(parser.feed(bytes(more), more.size(), recorder), Result::rejected_by_policy);
  EXPECT_EQ(recorder.calls.size(), 2u);
}

TEST(Hl7Parser, ErrorIsSticky) {
  Parser parser;
  Recorder recorder;
  const std::string bad = "junk";
  EXPECT_EQ(parser.feed(bytes(bad), bad.size(), recorder), Result::data_outside_frame);
  EXPECT_EQ(parser.feed(bytes(kOru), kOru.size(), recorder), Result::data_outside_frame);
  EXPECT_EQ(parser.feed(nullptr, 0, recorder), Result::data_outside_frame);
  EXPECT_TRUE(recorder.calls.empty());
}

TEST(Hl7Parser, ReportsTheMessageTypeBeforeTheMessageEnds) {
  // The engine refuses the segment that carries MSH-9, before the receiver has the message.
  const std::string head = std::string(1, kSb) + msh("ORU^R01") + kCr;
  Parser parser;
  Recorder recorder;
  EXPECT_EQ(parser.feed(bytes(head), head.size(), recorder), Result::ok);
  EXPECT_EQ(recorder.calls, std::vector<std::string>{"ORU^R01|CT1|RADIOLOGY"});
  EXPECT_FALSE(parser.idle());
  EXPECT_EQ(parser.messages(), 0u);
}

TEST(Hl7Parser, PatientDataIsNeitherReportedNorStored) {
  Parser parser;
  Recorder recorder;
  ASSERT_EQ(parser.feed(bytes(kOru), kOru.size(), recorder), Result::ok);
  for (const std::string& call : recorder.calls) {
    EXPECT_EQ(call.find("DOE"), std::string::npos);
    EXPECT_EQ(call.find("123456"), std::string::npos);
  }
  // Nothing of PID/OBX is left in the parser's memory either.
  const auto* raw = reinterpret_cast<const char*>(&parser);
  const std::string memory(raw, sizeof parser);
  EXPECT_EQ(memory.find("DOE"), std::string::npos);
  EXPECT_EQ(memory.find("123456"), std::string::npos);
  EXPECT_EQ(memory.find("CTDIvol"), std::string::npos);
}

TEST(Hl7Parser, ResetByAssignmentForPoolReuse) {
  Parser parser;
  Recorder recorder;
  const std::string bad = "junk";
  (void)parser.feed(bytes(bad), bad.size(), recorder);
  parser = Parser{};
  EXPECT_EQ(parser.result(), Result::ok);
  EXPECT_EQ(parser.feed(bytes(kOru), kOru.size(), recorder), Result::ok);
  EXPECT_EQ(parser.messages(), 1u);
}

TEST(Hl7Parser, EveryResultHasADistinctLabel) {
  std::vector<std::string> labels;
  for (int r = 0; r <= static_cast<int>(Result::rejected_by_policy); ++r) {
    const std::string label(to_string(static_cast<Result>(r)));
    EXPECT_NE(label, "unknown");
    for (const std::string& other : labels) EXPECT_NE(label, other);
    labels.push_back(label);
  }
}

}  // namespace
}  // namespace cordon::engine::hl7
