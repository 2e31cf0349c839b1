#include "dataplane/engine/inspect/hl7.h"

namespace cordon::engine::hl7 {
namespace {

// MLLP block characters (HL7 v2.5.1 Appendix C.4.3).
constexpr uint8_t kStartBlock = 0x0B;
constexpr uint8_t kEndBlock = 0x1C;
constexpr uint8_t kCarriageReturn = 0x0D;
constexpr uint8_t kLineFeed = 0x0A;

bool is_alnum(uint8_t c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

// Separators must be visible ASCII punctuation: a letter or digit would be ambiguous with
// field content, and a control or non-ASCII byte is what a smuggling attempt looks like.
bool is_separator_char(uint8_t c) {
  return c >= 0x21 && c <= 0x7E && !is_alnum(c);
}

bool is_control(uint8_t c) {
  return c < 0x20 || c == 0x7F;
}

// The segment terminator is CR (HL7 v2.5 §2.5.3); LF is accepted as well because senders
// that write segments with "\n" or "\r\n" exist and the receivers we protect accept them.
bool is_segment_end(uint8_t c) {
  return c == kCarriageReturn || c == kLineFeed;
}

}  // namespace

std::string_view to_string(Result result) noexcept {
  switch (result) {
    case Result::ok:
      return "ok";
    case Result::data_outside_frame:
      return "data-outside-frame";
    case Result::start_block_in_frame:
      return "start-block-in-frame";
    case Result::bad_end_block:
      return "bad-end-block";
    case Result::message_too_large:
      return "message-too-large";
    case Result::not_msh:
      return "not-msh";
    case Result::bad_field_separator:
      return "bad-field-separator";
    case Result::bad_encoding_characters:
      return "bad-encoding-characters";
    case Result::field_too_long:
      return "field-too-long";
    case Result::bad_field_character:
      return "bad-field-character";
    case Result::missing_message_type:
      return "missing-message-type";
    case Result::bad_message_type:
      return "bad-message-type";
    case Result::rejected_by_policy:
      return "rejected-by-policy";
  }
  return "unknown";
}

Result Parser::fail(Result error) noexcept {
  result_ = error;
  return error;
}

Result Parser::feed(const uint8_t* data, size_t length, Observer& observer) noexcept {
  if (result_ != Result::ok) return result_;
  for (size_t i = 0; i < length; ++i) {
    const uint8_t byte = data[i];
    switch (state_) {
      case State::between:
        if (byte != kStartBlock) return fail(Result::data_outside_frame);
        state_ = State::m;
        message_bytes_ = 0;
        application_length_ = facility_length_ = message_type_length_ = 0;
        encoding_length_ = 0;
        field_ = 0;
        continue;
      case State::end_block:
        if (byte != kCarriageReturn) return fail(Result::bad_end_block);
        state_ = State::between;
        ++messages_;
        continue;
      case State::skip: {
        // The body: only the block characters matter. Scan the run of plain bytes at once.
        size_t j = i;
        while (j < length && data[j] != kStartBlock && data[j] != kEndBlock) ++j;
        const size_t run = j - i;
        if (run > kMaxMessageBytes - message_bytes_) return fail(Result::message_too_large);
        message_bytes_ += static_cast<uint32_t>(run);
        if (j == length) return result_;
        i = j;
        break;  // handle the block character below
      }
      default:
        break;
    }
    // Inside a frame.
    const uint8_t c = data[i];
    if (c == kStartBlock) return fail(Result::start_block_in_frame);
    if (c == kEndBlock) {
      if (state_ != State::skip) {
        // The message ended inside MSH: that settles MSH (a last MSH-9 without its segment
        // terminator is still a message type) or is the error.
        const Result r = end_of_msh(observer);
        if (r != Result::ok) return fail(r);
      }
      state_ = State::end_block;
      continue;
    }
    if (message_bytes_ == kMaxMessageBytes) return fail(Result::message_too_large);
    ++message_bytes_;
    if (state_ != State::skip) {
      const Result r = msh_byte(c, observer);
      if (r != Result::ok) return fail(r);
    }
  }
  return result_;
}

Result Parser::msh_byte(uint8_t c, Observer& observer) noexcept {
  switch (state_) {
    case State::m:
      if (c != 'M') return Result::not_msh;
      state_ = State::s;
      return Result::ok;
    case State::s:
      if (c != 'S') return Result::not_msh;
      state_ = State::h;
      return Result::ok;
    case State::h:
      if (c != 'H') return Result::not_msh;
      state_ = State::separator;
      return Result::ok;
    case State::separator:
      if (!is_separator_char(c)) return Result::bad_field_separator;
      field_separator_ = static_cast<char>(c);
      state_ = State::encoding;
      return Result::ok;
    case State::encoding: {
      if (is_segment_end(c)) return end_of_msh(observer);
      if (c == static_cast<uint8_t>(field_separator_)) {
        const Result r = end_of_encoding();
        if (r != Result::ok) return r;
        state_ = State::fields;
        field_ = 3;
        return Result::ok;
      }
      if (encoding_length_ == sizeof encoding_ || !is_separator_char(c)) {
        return Result::bad_encoding_characters;
      }
      encoding_[encoding_length_++] = static_cast<char>(c);
      return Result::ok;
    }
    case State::fields:
      break;
    default:
      return Result::ok;
  }

  if (is_segment_end(c)) return end_of_msh(observer);
  if (c == static_cast<uint8_t>(field_separator_)) {
    if (field_ == 9) return finish_message_type(observer);
    ++field_;
    return Result::ok;
  }
  const char component = encoding_[0];
  switch (field_) {
    case 3:
    case 4: {
      char* field = field_ == 3 ? application_ : facility_;
      uint8_t& used = field_ == 3 ? application_length_ : facility_length_;
      if (is_control(c)) return Result::bad_field_character;
      if (used == kMaxHdField) return Result::field_too_long;
      field[used++] = c == static_cast<uint8_t>(component) ? '^' : static_cast<char>(c);
      return Result::ok;
    }
    case 9:
      if (is_control(c)) return Result::bad_field_character;
      if (message_type_length_ == kMaxMessageTypeField) return Result::field_too_long;
      // Stored normalised: a literal '^' under another component separator is not a valid
      // ID character, so '^' in the buffer always means "component boundary".
      if (c == static_cast<uint8_t>(component)) {
        message_type_[message_type_length_++] = '^';
      } else if (is_alnum(c) || c == '_') {
        message_type_[message_type_length_++] = static_cast<char>(c);
      } else {
        return Result::bad_message_type;
      }
      return Result::ok;
    default:
      return Result::ok;  // MSH-5..MSH-8: not needed, not stored
  }
}

// The MSH segment (or the whole message) ended where the state says.
Result Parser::end_of_msh(Observer& observer) noexcept {
  switch (state_) {
    case State::m:
    case State::s:
    case State::h:
      return Result::not_msh;
    case State::separator:
      return Result::bad_field_separator;
    case State::encoding: {
      const Result r = end_of_encoding();
      return r != Result::ok ? r : Result::missing_message_type;
    }
    case State::fields:
      if (field_ == 9) return finish_message_type(observer);
      return Result::missing_message_type;
    default:
      return Result::ok;
  }
}

// MSH-2 must hold the component, repetition, escape and subcomponent characters, plus the
// truncation character from v2.7 on (HL7 v2.7 §2.5.5.2): 4 or 5, all different, none equal
// to the field separator.
Result Parser::end_of_encoding() const noexcept {
  if (encoding_length_ < 4) return Result::bad_encoding_characters;
  for (uint8_t a = 0; a < encoding_length_; ++a) {
    if (encoding_[a] == field_separator_) return Result::bad_encoding_characters;
    for (uint8_t b = static_cast<uint8_t>(a + 1); b < encoding_length_; ++b) {
      if (encoding_[a] == encoding_[b]) return Result::bad_encoding_characters;
    }
  }
  return Result::ok;
}

Result Parser::finish_message_type(Observer& observer) noexcept {
  state_ = State::skip;
  const std::string_view raw(message_type_, message_type_length_);
  if (raw.empty()) return Result::missing_message_type;
  const size_t first = raw.find('^');
  if (first == 0) return Result::bad_message_type;  // MSH-9.1 (message code) empty
  std::string_view reported = raw.substr(0, first);
  if (first != std::string_view::npos) {
    const size_t second = raw.find('^', first + 1);
    const std::string_view trigger = raw.substr(
        first + 1, second == std::string_view::npos ? raw.size() - first - 1 : second - first - 1);
    if (!trigger.empty()) reported = raw.substr(0, first + 1 + trigger.size());
  }
  const Decision decision =
      observer.on_message(reported, std::string_view(application_, application_length_),
                          std::string_view(facility_, facility_length_));
  return decision == Decision::accept ? Result::ok : Result::rejected_by_policy;
}

}  // namespace cordon::engine::hl7
