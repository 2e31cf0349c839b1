// DICOM inspector: an incremental parser of the DICOM Upper Layer protocol (PS3.8 section 9)
// and of DIMSE command sets (PS3.7 section 9.3 and annex E), for one TCP connection.
//
// The engine keeps one Parser per DICOM flow and calls feed() with the next in-order bytes
// of either direction. The parser checks the `dicom-pdu-sanity` virtual patch (every
// violation is an Error) and reports the facts that policy is written against (AE titles,
// proposed abstract syntaxes, DIMSE commands and their SOP classes) to an Observer.
//
// Properties the engine relies on:
//  * Fixed-size, trivially copyable state: no heap, no owning members; it lives in a
//    preallocated per-flow pool (sizeof(Parser) is checked against kParserSizeBudget).
//  * Split-invariant: feeding a stream in any number of pieces (down to one byte at a
//    time) gives the same callbacks, in the same order, and the same result as feeding it
//    at once. Facts are reported as soon as the byte that completes them is fed, so the
//    engine can drop the very segment that carries a forbidden command.
//  * Never reads outside [data, data + len); bounded work per byte; noexcept.
//  * Data set PDVs (message control header bit 0 clear) are skipped, never buffered and
//    never reported: no patient data leaves the parser. Only command sets are parsed.
//  * After the first violation the parser is dead: every later feed() returns that error.
//
// Ordering assumption: the appliance is inline, so a byte that depends on the peer having
// received something (an A-ASSOCIATE-AC answers a complete A-ASSOCIATE-RQ) is fed after
// what it depends on, provided the engine feeds each direction's bytes no later than it
// forwards them. Bytes that cross on the wire (an A-ABORT from one end while the other end
// is still sending P-DATA) are accepted in either order.
//
// Threads: a Parser is owned by the worker that owns its flow; not shared, not locked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cordon::engine::dicom {

// TCP initiator = association requestor (PS3.8 does not let the acceptor open).
enum class Side : uint8_t { requestor = 0, acceptor = 1 };

// The first violation found; `ok` while none. Names (error_name) are stable labels for
// counters and events.
enum class Error : uint8_t {
  ok = 0,
  unknown_pdu_type,                   // PDU type outside 0x01-0x07
  pdu_too_large,                      // PDU-length above kMaxPduLength (any PDU, any phase)
  pdu_exceeds_max_length,             // P-DATA-TF longer than the receiver announced (item 0x51)
  pdu_length_invalid,                 // PDU-length impossible for its type (short, or not 4 bytes)
  item_length_invalid,                // items / sub-items do not add up exactly to their container
  unexpected_item,                    // item or sub-item type not allowed there, or repeated
  protocol_version,                   // A-ASSOCIATE protocol version without bit 0 (version 1)
  invalid_ae_title,                   // not printable ASCII, backslash, or only spaces
  invalid_uid,                        // empty, longer than 64 characters, or not digits and dots
  invalid_presentation_context,       // even or repeated id, missing syntax, bad result
  unknown_presentation_context,       // id that the A-ASSOCIATE-RQ did not propose
  presentation_context_not_accepted,  // P-DATA on a context the acceptor refused
  associate_rq_from_acceptor,         // A-ASSOCIATE-RQ sent by the TCP responder
  pdata_before_association,           // P-DATA-TF before A-ASSOCIATE-AC (or after RJ)
  unexpected_pdu,                     // PDU not valid in the association's phase or after A-ABORT
  invalid_pdu_field,                  // A-ASSOCIATE-RJ result/source out of range
  pdv_length_invalid,                 // PDV length below 2 or beyond its PDU
  unexpected_pdv,                     // fragments out of sequence: data without its command, ...
  command_too_large,                  // command set above kMaxCommandBytes
  invalid_command,                    // command set elements malformed, misordered or missing
  rejected_by_policy,                 // an Observer callback returned Action::stop
};
using Status = Error;  // feed() returns Status::ok or the violation

std::string_view error_name(Error error) noexcept;

// DIMSE service name of a Command Field (0000,0100), without the -RQ/-RSP suffix, as the
// policy document spells it: "C-STORE" for both 0x0001 and 0x8001. Empty for values
// PS3.7 does not define.
std::string_view command_name(uint16_t command_field) noexcept;
constexpr bool is_response(uint16_t command_field) noexcept {
  return (command_field & 0x8000) != 0;
}

inline constexpr uint32_t kMaxPduLength = 16 * 1024 * 1024;  // absolute cap on PDU-length
inline constexpr uint32_t kMaxCommandBytes = 64 * 1024;      // bound on one command set
inline constexpr size_t kMaxUidLength = 64;
inline constexpr size_t kAeTitleLength = 16;
inline constexpr uint16_t kNoDataSet = 0x0101;  // Command Data Set Type: no data set follows

// A complete DIMSE command set. String views point into the parser and are valid only
// during the on_command call.
struct Command {
  Side side = Side::requestor;  // who sent it
  uint8_t presentation_context_id = 0;
  uint16_t command_field = 0;  // (0000,0100)
  uint16_t status = 0;         // (0000,0900), responses; 0 when absent
  bool has_data_set = false;   // (0000,0800) != kNoDataSet
  // (0000,0002) Affected or (0000,0003) Requested SOP Class UID (a command carrying both
  // is rejected), without padding; empty when absent (e.g. some responses).
  std::string_view sop_class_uid;
  // (0000,0600) Move Destination of a C-MOVE-RQ, trimmed; empty when absent.
  std::string_view move_destination;
};

// What an Observer callback tells the parser: go on, or end the association (feed()
// returns Error::rejected_by_policy and the parser is dead). This is how the engine
// enforces policy on a fact at the byte that completes it. Callbacks are synchronous,
// noexcept, and may read the Parser's accessors but must not feed() it.
enum class Action : uint8_t { proceed, stop };

// Facts, reported in stream order. Every default does nothing and proceeds, so an
// observer overrides only what it checks. AE titles are trimmed of leading and trailing
// spaces (PS3.5 VR AE: neither is significant; the policy document compares trimmed
// titles too); UIDs are reported without their trailing NUL/space padding. String views
// are valid only during the call.
//
// A-ASSOCIATE-RQ: on_presentation_context for each proposed context as its item
// completes, then on_associate_request once the whole PDU has been checked (its user
// information item, with the maximum length, comes last). The AE titles come first in the
// PDU: Parser::calling_ae()/called_ae() return them from then on, so already during
// on_presentation_context. An engine that enforces `sop_classes` should check both the
// proposed abstract syntaxes and each command's SOP class. A-ASSOCIATE-AC:
// on_presentation_context_result per context, then on_associate_accept.
class Observer {
 public:
  virtual ~Observer() = default;

  virtual Action on_presentation_context(uint8_t /*id*/,
                                         std::string_view /*abstract_syntax_uid*/) noexcept {
    return Action::proceed;
  }
  // max_pdu_length: what the requestor can receive (0 = no limit announced).
  virtual Action on_associate_request(std::string_view /*calling_ae*/,
                                      std::string_view /*called_ae*/,
                                      uint32_t /*max_pdu_length*/) noexcept {
    return Action::proceed;
  }
  // result: 0 acceptance, 1 user rejection, 2 no reason, 3 abstract syntax not supported,
  // 4 transfer syntaxes not supported.
  virtual Action on_presentation_context_result(uint8_t /*id*/, uint8_t /*result*/) noexcept {
    return Action::proceed;
  }
  // max_pdu_length: what the acceptor can receive (0 = no limit announced).
  virtual Action on_associate_accept(uint32_t /*max_pdu_length*/) noexcept {
    return Action::proceed;
  }
  virtual Action on_associate_reject(uint8_t /*result*/, uint8_t /*source*/,
                                     uint8_t /*reason*/) noexcept {
    return Action::proceed;
  }
  virtual Action on_command(const Command& /*command*/) noexcept { return Action::proceed; }
  // A-RELEASE-RQ (response = false) or A-RELEASE-RP (response = true) from `side`.
  virtual Action on_release(Side /*side*/, bool /*response*/) noexcept { return Action::proceed; }
  virtual Action on_abort(Side /*side*/, uint8_t /*source*/, uint8_t /*reason*/) noexcept {
    return Action::proceed;
  }

 protected:
  Observer() = default;
  Observer(const Observer&) = default;
  Observer& operator=(const Observer&) = default;
};

enum class Phase : uint8_t { idle, requested, established, rejected, released, aborted };

class Parser {
 public:
  // Consumes the next in-order stream bytes sent by `side`. Returns Status::ok or the first
  // violation, which every later call returns again.
  Status feed(Side side, const uint8_t* data, size_t len, Observer& observer) noexcept;

  Error error() const noexcept { return error_; }
  // Static text naming the failed check ("" while ok); for events and logs.
  const char* detail() const noexcept { return detail_; }
  Phase phase() const noexcept;
  // Trimmed AE titles of the A-ASSOCIATE-RQ; empty until its AE title fields are checked.
  std::string_view calling_ae() const noexcept;
  std::string_view called_ae() const noexcept;
  // The maximum P-DATA-TF PDU-length `receiver` announced (0 = none or no limit).
  uint32_t max_pdu_length(Side receiver) const noexcept {
    return max_pdu_length_[static_cast<size_t>(receiver)];
  }

 private:
  // What the next bytes of a direction are.
  enum class Step : uint8_t {
    pdu_header,   // 6 bytes: type, reserved, PDU-length
    assoc_head,   // A-ASSOCIATE-RQ/AC: protocol version, reserved
    called_ae,    // A-ASSOCIATE-RQ: 16 bytes
    calling_ae,   // A-ASSOCIATE-RQ: 16 bytes
    skip,         // reserved fields, unchecked user information sub-items
    item_header,  // 4 bytes: type, reserved, item-length
    pc_head,      // presentation context item: id, reserved, result/reason, reserved
    sub_header,   // 4 bytes: type, reserved, item-length
    uid,          // a UID value, checked as it streams
    max_length,   // user information sub-item 0x51: 4 bytes
    short_body,   // the 4-byte body of A-ASSOCIATE-RJ, A-RELEASE-RQ/RP, A-ABORT
    pdv_header,   // 6 bytes: item-length, presentation context id, message control header
    pdv_data,     // PDV fragment: command bytes are parsed, data set bytes skipped
    closed,       // after this side's A-ABORT nothing more may come
  };
  // Where a skipped or UID value ends in the item structure.
  enum class Resume : uint8_t { items, item_done, sub_items };
  enum class CommandStep : uint8_t { header, value, uid, move_destination, skip };

  // The command set being received on one direction: parsed element by element as its
  // fragments stream in, so it never has to be buffered.
  struct CommandState {
    CommandStep step = CommandStep::header;
    uint8_t have = 0;  // bytes of the current header / value collected in buf
    uint8_t need = 8;
    bool active = false;  // a command has started and its last fragment has not come
    uint8_t context_id = 0;
    uint8_t seen = 0;      // kSeen* bits
    uint16_t element = 0;  // last element number (for the ascending-order check)
    uint16_t command_field = 0;
    uint16_t data_set_type = 0;
    uint16_t status = 0;
    uint8_t sop_class_length = 0;  // characters of the SOP class UID in Stream::uid
    uint8_t move_begin = 0;        // trimmed Move Destination within move_destination
    uint8_t move_length = 0;
    uint8_t buf[8] = {};
    uint8_t move_destination[kAeTitleLength] = {};
    uint32_t group_length = 0;
    uint32_t bytes = 0;       // command set bytes consumed so far
    uint32_t value_left = 0;  // bytes of the current UID / skipped value still to come
  };

  // Per-direction framing state.
  struct Stream {
    Step step = Step::pdu_header;
    Resume resume = Resume::items;
    uint8_t have = 0;  // bytes of the current fixed-size field collected in buf
    uint8_t need = 6;
    uint8_t buf[8] = {};
    uint8_t pdu_type = 0;
    uint32_t pdu_length = 0;
    uint32_t off = 0;         // bytes of the current PDU body consumed
    uint32_t item_end = 0;    // body offset where the current item (or PDV data) ends
    uint32_t sub_end = 0;     // body offset where the current sub-item ends
    uint32_t field_end = 0;   // body offset where the current skip / UID value ends
    uint32_t max_length = 0;  // maximum length sub-item of the current A-ASSOCIATE
    // A-ASSOCIATE items and sub-items being checked.
    uint8_t item_type = 0;
    uint8_t sub_type = 0;
    uint8_t context_id = 0;
    uint8_t context_result = 0;
    uint8_t contexts = 0;  // presentation context items in this PDU
    bool have_app_context = false;
    bool have_user_info = false;
    bool have_max_length = false;
    bool have_abstract = false;
    bool have_transfer = false;
    // UID being streamed: characters before padding, padding seen, illegal byte seen.
    uint8_t uid_chars = 0;
    bool uid_padding = false;
    bool uid_bad = false;
    bool uid_keep = false;   // copy into uid (abstract syntax, SOP class)
    uint8_t uid_length = 0;  // characters of the proposed abstract syntax in uid
    char uid[kMaxUidLength] = {};
    // P-DATA-TF.
    bool pdv_command = false;
    bool pdv_last = false;
    bool data_expected = false;  // a command announced a data set that is not complete
    uint8_t data_context = 0;
    bool sent_release_rq = false;
    bool sent_release_rp = false;
    CommandState command;
  };

  Stream& stream(Side side) noexcept { return streams_[static_cast<size_t>(side)]; }
  Stream& peer(Side side) noexcept { return streams_[1 - static_cast<size_t>(side)]; }
  Side side_of(const Stream& s) const noexcept {
    return &s == &streams_[0] ? Side::requestor : Side::acceptor;
  }
  size_t step(Stream& s, Side side, const uint8_t* p, size_t n, Observer& obs) noexcept;
  void fail(Error error, const char* detail) noexcept;
  void notify(Action action) noexcept;

  void pdu_header(Stream& s, Side side) noexcept;
  void field_done(Stream& s, Side side, Observer& obs) noexcept;
  void pdu_done(Stream& s) noexcept;
  void start_skip(Stream& s, uint32_t length, Resume resume, Observer& obs) noexcept;
  void start_uid(Stream& s, uint32_t length, bool keep, Resume resume) noexcept;
  void resume(Stream& s, Side side, Observer& obs) noexcept;
  void items_next(Stream& s, Side side, Observer& obs) noexcept;
  void item_header(Stream& s, Observer& obs) noexcept;
  void pc_head(Stream& s) noexcept;
  void sub_items_next(Stream& s, Observer& obs) noexcept;
  void sub_header(Stream& s, Observer& obs) noexcept;
  void item_done(Stream& s, Side side, Observer& obs) noexcept;
  void associate_done(Stream& s, Side side, Observer& obs) noexcept;
  void short_body(Stream& s, Side side, Observer& obs) noexcept;
  void pdvs_next(Stream& s) noexcept;
  void pdv_header(Stream& s) noexcept;
  void pdv_done(Stream& s, Side side, Observer& obs) noexcept;
  void command_bytes(Stream& s, const uint8_t* p, size_t n) noexcept;
  void command_element(Stream& s) noexcept;
  void command_value(Stream& s) noexcept;
  static void next_element(CommandState& c) noexcept;
  void command_done(Stream& s, Side side, Observer& obs) noexcept;

  static bool bit(const uint8_t (&set)[16], uint8_t id) noexcept {
    return (id & 1) != 0 && (set[id >> 4] & (1u << ((id >> 1) & 7))) != 0;
  }
  static void set_bit(uint8_t (&set)[16], uint8_t id) noexcept {
    set[id >> 4] = static_cast<uint8_t>(set[id >> 4] | (1u << ((id >> 1) & 7)));
  }

  Stream streams_[2];
  // Presentation context ids (odd, 1-255; bit (id >> 1)): proposed in the A-ASSOCIATE-RQ,
  // answered / accepted in the A-ASSOCIATE-AC.
  uint8_t proposed_[16] = {};
  uint8_t answered_[16] = {};
  uint8_t accepted_[16] = {};
  uint32_t max_pdu_length_[2] = {0, 0};  // by receiving side
  uint8_t called_ae_[kAeTitleLength] = {};
  uint8_t calling_ae_[kAeTitleLength] = {};
  uint8_t called_begin_ = 0;
  uint8_t called_length_ = 0;
  uint8_t calling_begin_ = 0;
  uint8_t calling_length_ = 0;
  Phase phase_ = Phase::idle;  // idle, requested, established or rejected; see phase()
  bool aborted_ = false;
  Error error_ = Error::ok;
  const char* detail_ = "";
};

// The per-flow pool budget this type is held to (checked in dicom.cpp).
inline constexpr size_t kParserSizeBudget = 1024;

}  // namespace cordon::engine::dicom
