// HL7 v2 over MLLP: an incremental, allocation-free parser of one direction of a TCP stream
// (DESIGN.md §2, "app-layer inspectors"; §3 `"app": {"hl7": {...}}`).
//
// Framing is the Minimal Lower Layer Protocol (HL7 v2.5.1 Appendix C.4, "MLLP Release 1"):
//   <0x0B> message <0x1C><0x0D>
// Nothing may sit between frames (not even CR/LF), a 0x0B inside a frame or a 0x1C not
// followed by 0x0D is an error, and a message is at most kMaxMessageBytes long. Anything
// else would let a sender smuggle a second message past a receiver that frames differently
// from us.
//
// Of each message only the MSH segment is parsed (HL7 v2.5 §2.14.9): MSH-1 (field
// separator), MSH-2 (encoding characters), MSH-3 sending application, MSH-4 sending
// facility and MSH-9 message type. Only those three fields are buffered, each bounded; the
// rest of the message - patient data - is skipped byte by byte, never stored or reported.
// Both directions use the same parser: ACKs (MSH + MSA) are ordinary framed messages.
//
// Reporting: the parser calls Observer::on_message once per message, as soon as MSH-9 is
// complete (before the rest of the message is seen), so the caller can refuse the TCP
// segment that carries the message type before the receiver has the whole message. The
// observer decides (policy lives with the caller); Decision::reject puts the parser into
// Result::rejected_by_policy.
//
// Threads: one instance per flow direction, owned by the worker that owns the flow; not
// shared, no locks. Fixed size (fits a preallocated per-flow pool), never allocates, never
// throws, bounded work per byte, never reads outside [data, data + length).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cordon::engine::hl7 {

// ok, or the first error; a parser that returned an error keeps returning it.
enum class Result : uint8_t {
  ok,
  data_outside_frame,       // a byte other than 0x0B between frames
  start_block_in_frame,     // 0x0B inside a frame
  bad_end_block,            // 0x1C not followed by 0x0D
  message_too_large,        // more than kMaxMessageBytes between 0x0B and 0x1C
  not_msh,                  // the message does not start with "MSH"
  bad_field_separator,      // MSH-1 not a printable, non-alphanumeric ASCII character
  bad_encoding_characters,  // MSH-2 not 4-5 distinct printable non-alphanumeric characters
  field_too_long,           // MSH-3/MSH-4 over kMaxHdField, MSH-9 over kMaxMessageTypeField
  bad_field_character,      // a control character (< 0x20, 0x7F) in MSH-3, MSH-4 or MSH-9
  missing_message_type,     // the MSH segment or the message ends before MSH-9, or MSH-9 empty
  bad_message_type,         // MSH-9.1 empty, or a character other than [A-Za-z0-9_] in MSH-9
  rejected_by_policy,       // the observer returned Decision::reject
};

// Stable lower-case label ("bad-end-block") for counters and events.
std::string_view to_string(Result result) noexcept;

enum class Decision : uint8_t { accept, reject };

class Observer {
 public:
  // One call per message (in stream order). The views point into the parser and are valid
  // only during the call.
  //  * message_type: MSH-9.1 and MSH-9.2 joined with '^' whatever the message's component
  //    separator is ("ORU^R01"); just MSH-9.1 when MSH-9.2 is empty ("ACK"). MSH-9.3
  //    (message structure) is not reported.
  //  * sending_application / sending_facility: MSH-3 / MSH-4 as sent (HD data type, up to
  //    three components), with the component separator normalised to '^'; escape sequences
  //    are not decoded. May be empty.
  virtual Decision on_message(std::string_view message_type, std::string_view sending_application,
                              std::string_view sending_facility) noexcept {
    (void)message_type;
    (void)sending_application;
    (void)sending_facility;
    return Decision::accept;
  }

 protected:
  ~Observer() = default;
};

class Parser {
 public:
  // HL7 v2.5 HD (MSH-3, MSH-4): IS(20) ^ ST(199) ^ ID(6) + 2 separators = 227.
  static constexpr uint32_t kMaxHdField = 227;
  // MSH-9 is MSG: ID(3) ^ ID(3) ^ ID(7) = 15 in v2.5; twice that leaves room for local
  // variants without making the state bigger than it needs to be.
  static constexpr uint32_t kMaxMessageTypeField = 32;
  // Far above any result or order message a modality sends, low enough to bound a receiver.
  static constexpr uint32_t kMaxMessageBytes = 1u << 20;

  // Consumes the next in-order bytes of the stream direction. Any split of the stream gives
  // the same observer calls and the same result. `data` may be null when `length` is 0.
  Result feed(const uint8_t* data, size_t length, Observer& observer) noexcept;

  Result result() const noexcept { return result_; }
  // Messages completely received (end block seen).
  uint32_t messages() const noexcept { return messages_; }
  // True between frames: a stream that ends here ended cleanly.
  bool idle() const noexcept { return state_ == State::between; }

 private:
  enum class State : uint8_t {
    between,    // expecting 0x0B
    m,          // expecting 'M' of "MSH"
    s,          // 'S'
    h,          // 'H'
    separator,  // MSH-1
    encoding,   // MSH-2
    fields,     // MSH-3 .. MSH-9
    skip,       // MSH done: rest of the message
    end_block,  // 0x1C seen, expecting 0x0D
  };

  Result fail(Result error) noexcept;
  Result msh_byte(uint8_t byte, Observer& observer) noexcept;
  Result end_of_msh(Observer& observer) noexcept;
  Result finish_message_type(Observer& observer) noexcept;
  Result end_of_encoding() const noexcept;

  char application_[kMaxHdField] = {};
  char facility_[kMaxHdField] = {};
  char message_type_[kMaxMessageTypeField] = {};
  uint8_t application_length_ = 0;
  uint8_t facility_length_ = 0;
  uint8_t message_type_length_ = 0;
  char encoding_[5] = {};  // MSH-2: component, repetition, escape, subcomponent, truncation
  uint8_t encoding_length_ = 0;
  char field_separator_ = 0;
  uint8_t field_ = 0;  // MSH field being read (3..9)
  State state_ = State::between;
  Result result_ = Result::ok;
  uint32_t message_bytes_ = 0;  // between 0x0B and 0x1C
  uint32_t messages_ = 0;
};

}  // namespace cordon::engine::hl7
