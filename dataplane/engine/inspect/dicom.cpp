// DICOM Upper Layer / DIMSE command parser; see dicom.h for the contract.
//
// Shape: each direction is a state machine over Step. A step either collects a fixed-size
// field into a small buffer or streams a variable-length value (skip, UID, PDV data);
// when the byte that completes a field arrives, its handler checks it and chains straight
// into whatever completes with it (end of sub-item, item, PDU), so facts fire on that
// byte whatever the feed boundaries are. Lengths are tracked as offsets into the current
// PDU body, so every item and sub-item must end exactly where its container says.
#include "dataplane/engine/inspect/dicom.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace cordon::engine::dicom {

static_assert(std::is_trivially_copyable_v<Parser>, "Parser lives in a raw per-flow pool");
static_assert(sizeof(Parser) <= kParserSizeBudget, "Parser outgrew its per-flow budget");

namespace {

// PDU types (PS3.8 table 9-1 and section 9.3).
constexpr uint8_t kAssociateRq = 0x01;
constexpr uint8_t kAssociateAc = 0x02;
constexpr uint8_t kAssociateRj = 0x03;
constexpr uint8_t kPData = 0x04;
constexpr uint8_t kReleaseRq = 0x05;
constexpr uint8_t kReleaseRp = 0x06;
constexpr uint8_t kAbort = 0x07;

// A-ASSOCIATE items and sub-items.
constexpr uint8_t kItemApplicationContext = 0x10;
constexpr uint8_t kItemContextRq = 0x20;
constexpr uint8_t kItemContextAc = 0x21;
constexpr uint8_t kItemUserInfo = 0x50;
constexpr uint8_t kSubAbstractSyntax = 0x30;
constexpr uint8_t kSubTransferSyntax = 0x40;
constexpr uint8_t kSubMaxLength = 0x51;

constexpr size_t kPduHeader = 6;
constexpr uint32_t kAssociateFixed = 68;  // version .. reserved, before the items
constexpr uint32_t kItemHeader = 4;
constexpr uint32_t kPdvHeader = 6;     // item-length + context id + message control header
constexpr uint8_t kElementHeader = 8;  // Implicit VR Little Endian: tag, 32-bit length

// Command set elements (PS3.7 section E.1) that the parser reads.
constexpr uint16_t kGroupLength = 0x0000;
constexpr uint16_t kAffectedSopClass = 0x0002;
constexpr uint16_t kRequestedSopClass = 0x0003;
constexpr uint16_t kCommandField = 0x0100;
constexpr uint16_t kMoveDestination = 0x0600;
constexpr uint16_t kDataSetType = 0x0800;
constexpr uint16_t kStatus = 0x0900;

constexpr uint8_t kSeenGroupLength = 0x01;
constexpr uint8_t kSeenSopClass = 0x02;
constexpr uint8_t kSeenCommandField = 0x04;
constexpr uint8_t kSeenDataSetType = 0x08;
constexpr uint8_t kSeenStatus = 0x10;
constexpr uint8_t kSeenElement = 0x20;  // any element, so the order check has a predecessor

uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
uint16_t le16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
uint32_t le32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

// Copies the next bytes of a fixed-size field into dst; returns how many it took.
size_t take(uint8_t& have, uint8_t need, uint8_t* dst, const uint8_t* p, size_t n) {
  const size_t used = std::min<size_t>(need - have, n);
  std::memcpy(dst + have, p, used);
  have = static_cast<uint8_t>(have + used);
  return used;
}

// PS3.5 VR AE: printable ASCII without backslash; leading and trailing spaces are not
// significant and are trimmed; a title of only spaces names nobody and is refused.
bool trim_ae_title(const uint8_t* p, size_t n, uint8_t& begin, uint8_t& length) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] < 0x20 || p[i] > 0x7E || p[i] == '\\') return false;
  }
  size_t b = 0;
  size_t e = n;
  while (b < e && p[b] == ' ') ++b;
  while (e > b && p[e - 1] == ' ') --e;
  if (b == e) return false;
  begin = static_cast<uint8_t>(b);
  length = static_cast<uint8_t>(e - b);
  return true;
}

// UIDs stream through this check rather than a buffer: digits and dots, then only
// padding. PS3.5 pads UIDs with one NUL; trailing spaces are tolerated as padding too
// because old implementations send them; both are left out of what is reported. Callers
// refuse values longer than kMaxUidLength first, so `chars` never passes the buffer.
void scan_uid(const uint8_t* p, size_t n, char* out, uint8_t& chars, bool& padding, bool& bad) {
  for (size_t i = 0; i < n; ++i) {
    const uint8_t b = p[i];
    if (b == 0 || b == ' ') {
      padding = true;
    } else if (padding || !((b >= '0' && b <= '9') || b == '.')) {
      bad = true;
    } else {
      if (out != nullptr) out[chars] = static_cast<char>(b);
      ++chars;
    }
  }
}

}  // namespace

std::string_view error_name(Error error) noexcept {
  switch (error) {
    case Error::ok:
      return "ok";
    case Error::unknown_pdu_type:
      return "unknown_pdu_type";
    case Error::pdu_too_large:
      return "pdu_too_large";
    case Error::pdu_exceeds_max_length:
      return "pdu_exceeds_max_length";
    case Error::pdu_length_invalid:
      return "pdu_length_invalid";
    case Error::item_length_invalid:
      return "item_length_invalid";
    case Error::unexpected_item:
      return "unexpected_item";
    case Error::protocol_version:
      return "protocol_version";
    case Error::invalid_ae_title:
      return "invalid_ae_title";
    case Error::invalid_uid:
      return "invalid_uid";
    case Error::invalid_presentation_context:
      return "invalid_presentation_context";
    case Error::unknown_presentation_context:
      return "unknown_presentation_context";
    case Error::presentation_context_not_accepted:
      return "presentation_context_not_accepted";
    case Error::associate_rq_from_acceptor:
      return "associate_rq_from_acceptor";
    case Error::pdata_before_association:
      return "pdata_before_association";
    case Error::unexpected_pdu:
      return "unexpected_pdu";
    case Error::invalid_pdu_field:
      return "invalid_pdu_field";
    case Error::pdv_length_invalid:
      return "pdv_length_invalid";
    case Error::unexpected_pdv:
      return "unexpected_pdv";
    case Error::command_too_large:
      return "command_too_large";
    case Error::invalid_command:
      return "invalid_command";
    case Error::rejected_by_policy:
      return "rejected_by_policy";
  }
  return "unknown";
}

std::string_view command_name(uint16_t command_field) noexcept {
  switch (command_field & 0x7FFF) {
    case 0x0001:
      return "C-STORE";
    case 0x0010:
      return "C-GET";
    case 0x0020:
      return "C-FIND";
    case 0x0021:
      return "C-MOVE";
    case 0x0030:
      return "C-ECHO";
    case 0x0100:
      return "N-EVENT-REPORT";
    case 0x0110:
      return "N-GET";
    case 0x0120:
      return "N-SET";
    case 0x0130:
      return "N-ACTION";
    case 0x0140:
      return "N-CREATE";
    case 0x0150:
      return "N-DELETE";
    case 0x0FFF:  // C-CANCEL-RQ has no response
      return is_response(command_field) ? std::string_view{} : "C-CANCEL";
  }
  return {};
}

Phase Parser::phase() const noexcept {
  if (aborted_) return Phase::aborted;
  if (streams_[0].sent_release_rp || streams_[1].sent_release_rp) return Phase::released;
  return phase_;
}

std::string_view Parser::calling_ae() const noexcept {
  return {reinterpret_cast<const char*>(calling_ae_) + calling_begin_, calling_length_};
}

std::string_view Parser::called_ae() const noexcept {
  return {reinterpret_cast<const char*>(called_ae_) + called_begin_, called_length_};
}

void Parser::fail(Error error, const char* detail) noexcept {
  if (error_ != Error::ok) return;  // the first violation is the one reported
  error_ = error;
  detail_ = detail;
}

void Parser::notify(Action action) noexcept {
  if (action == Action::stop) fail(Error::rejected_by_policy, "observer ended the association");
}

Status Parser::feed(Side side, const uint8_t* data, size_t len, Observer& observer) noexcept {
  Stream& s = stream(side);
  size_t pos = 0;
  // Every step consumes at least one byte unless it fails, so this ends after at most
  // `len` iterations.
  while (pos < len && error_ == Error::ok) pos += step(s, side, data + pos, len - pos, observer);
  return error_;
}

size_t Parser::step(Stream& s, Side side, const uint8_t* p, size_t n, Observer& obs) noexcept {
  size_t used = 0;
  switch (s.step) {
    case Step::pdu_header:
      used = take(s.have, s.need, s.buf, p, n);
      if (s.have == s.need) pdu_header(s, side);
      return used;  // the header is not part of the PDU body (off)

    case Step::assoc_head:
    case Step::item_header:
    case Step::pc_head:
    case Step::sub_header:
    case Step::max_length:
    case Step::short_body:
    case Step::pdv_header:
      used = take(s.have, s.need, s.buf, p, n);
      break;
    case Step::called_ae:
      used = take(s.have, s.need, called_ae_, p, n);
      break;
    case Step::calling_ae:
      used = take(s.have, s.need, calling_ae_, p, n);
      break;

    case Step::skip:
      used = std::min<size_t>(n, s.field_end - s.off);
      s.off += static_cast<uint32_t>(used);
      if (s.off == s.field_end) resume(s, side, obs);
      return used;

    case Step::uid:
      used = std::min<size_t>(n, s.field_end - s.off);
      scan_uid(p, used, s.uid_keep ? s.uid : nullptr, s.uid_chars, s.uid_padding, s.uid_bad);
      s.off += static_cast<uint32_t>(used);
      if (s.off == s.field_end) {
        if (s.uid_bad || s.uid_chars == 0) {
          fail(Error::invalid_uid, "UID is empty or not digits and dots");
          return used;
        }
        resume(s, side, obs);
      }
      return used;

    case Step::pdv_data:
      used = std::min<size_t>(n, s.item_end - s.off);
      if (s.pdv_command) command_bytes(s, p, used);  // data set bytes are only counted
      s.off += static_cast<uint32_t>(used);
      if (error_ == Error::ok && s.off == s.item_end) pdv_done(s, side, obs);
      return used;

    case Step::closed:
      fail(Error::unexpected_pdu, "bytes after this side's A-ABORT");
      return 0;
  }
  // Fixed-size fields of the PDU body.
  s.off += static_cast<uint32_t>(used);
  if (s.have == s.need) {
    s.have = 0;
    field_done(s, side, obs);
  }
  return used;
}

void Parser::pdu_header(Stream& s, Side side) noexcept {
  s.have = 0;
  const uint8_t type = s.buf[0];
  const uint32_t length = be32(s.buf + 2);
  const Stream& other = peer(side);
  if (type < kAssociateRq || type > kAbort) return fail(Error::unknown_pdu_type, "PDU type");
  if (length > kMaxPduLength) return fail(Error::pdu_too_large, "PDU-length above the cap");

  // Is this PDU allowed now, from this side?
  switch (type) {
    case kAssociateRq:
      if (side == Side::acceptor) {
        return fail(Error::associate_rq_from_acceptor, "A-ASSOCIATE-RQ from the TCP responder");
      }
      if (phase_ != Phase::idle) return fail(Error::unexpected_pdu, "second A-ASSOCIATE-RQ");
      break;
    case kAssociateAc:
    case kAssociateRj:
      if (side == Side::requestor) {
        return fail(Error::unexpected_pdu, "A-ASSOCIATE-AC/RJ from the requestor");
      }
      if (phase_ != Phase::requested) {
        return fail(Error::unexpected_pdu, "A-ASSOCIATE-AC/RJ without a pending request");
      }
      break;
    case kPData:
      if (phase_ != Phase::established) {
        return fail(Error::pdata_before_association, "P-DATA-TF outside an association");
      }
      if (s.sent_release_rq || s.sent_release_rp) {
        return fail(Error::unexpected_pdu, "P-DATA-TF after this side's A-RELEASE");
      }
      break;
    case kReleaseRq:
      if (phase_ != Phase::established || s.sent_release_rq || s.sent_release_rp) {
        return fail(Error::unexpected_pdu, "A-RELEASE-RQ outside an association");
      }
      break;
    case kReleaseRp:
      if (phase_ != Phase::established || !other.sent_release_rq || s.sent_release_rp) {
        return fail(Error::unexpected_pdu, "A-RELEASE-RP without an A-RELEASE-RQ");
      }
      break;
    case kAbort:
      break;  // valid in every phase
  }

  s.pdu_type = type;
  s.pdu_length = length;
  s.off = 0;
  switch (type) {
    case kAssociateRq:
    case kAssociateAc:
      if (length < kAssociateFixed) {
        return fail(Error::pdu_length_invalid, "A-ASSOCIATE shorter than its fixed fields");
      }
      s.max_length = 0;
      s.contexts = 0;
      s.have_app_context = s.have_user_info = s.have_max_length = false;
      s.item_type = 0;
      s.step = Step::assoc_head;
      s.need = 4;
      return;
    case kPData: {
      // The peer's A-ASSOCIATE announced what it can receive (0: no limit).
      const uint32_t limit = max_pdu_length_[1 - static_cast<size_t>(side)];
      if (limit != 0 && length > limit) {
        return fail(Error::pdu_exceeds_max_length, "P-DATA-TF above the receiver's maximum");
      }
      if (length < kPdvHeader) return fail(Error::pdu_length_invalid, "P-DATA-TF without a PDV");
      return pdvs_next(s);
    }
    default:  // A-ASSOCIATE-RJ, A-RELEASE-RQ/RP, A-ABORT: a fixed 4-byte body
      if (length != 4) return fail(Error::pdu_length_invalid, "PDU-length is not 4");
      s.step = Step::short_body;
      s.need = 4;
      return;
  }
}

void Parser::pdu_done(Stream& s) noexcept {
  s.step = Step::pdu_header;
  s.need = kPduHeader;
  s.off = 0;
}

void Parser::field_done(Stream& s, Side side, Observer& obs) noexcept {
  switch (s.step) {
    case Step::assoc_head:
      // Bit 0 is protocol version 1, the only one PS3.8 defines; others are not tested.
      if ((be16(s.buf) & 1) == 0) {
        return fail(Error::protocol_version, "protocol version 1 not offered");
      }
      if (s.pdu_type == kAssociateRq) {
        s.step = Step::called_ae;
        s.need = static_cast<uint8_t>(kAeTitleLength);
        return;
      }
      // The A-ASSOCIATE-AC echoes the AE titles in reserved fields PS3.8 says not to test.
      return start_skip(s, kAssociateFixed - 4, Resume::items, obs);
    case Step::called_ae:
      s.step = Step::calling_ae;
      s.need = static_cast<uint8_t>(kAeTitleLength);
      return;
    case Step::calling_ae:
      if (!trim_ae_title(called_ae_, kAeTitleLength, called_begin_, called_length_)) {
        return fail(Error::invalid_ae_title, "called AE title");
      }
      if (!trim_ae_title(calling_ae_, kAeTitleLength, calling_begin_, calling_length_)) {
        return fail(Error::invalid_ae_title, "calling AE title");
      }
      return start_skip(s, 32, Resume::items, obs);
    case Step::item_header:
      return item_header(s, obs);
    case Step::pc_head:
      pc_head(s);
      if (error_ == Error::ok) sub_items_next(s, obs);
      return;
    case Step::sub_header:
      return sub_header(s, obs);
    case Step::max_length:
      s.max_length = be32(s.buf);
      return sub_items_next(s, obs);
    case Step::short_body:
      return short_body(s, side, obs);
    case Step::pdv_header:
      pdv_header(s);
      if (error_ == Error::ok && s.off == s.item_end) pdv_done(s, side, obs);
      return;
    default:
      return;  // the other steps are not fixed-size fields
  }
}

void Parser::start_skip(Stream& s, uint32_t length, Resume resume_at, Observer& obs) noexcept {
  s.resume = resume_at;
  s.field_end = s.off + length;
  if (length == 0) {
    // Nothing to consume: go on now, so completion never waits for a later byte.
    return resume(s, side_of(s), obs);
  }
  s.step = Step::skip;
}

void Parser::start_uid(Stream& s, uint32_t length, bool keep, Resume resume_at) noexcept {
  if (length == 0 || length > kMaxUidLength) {
    return fail(Error::invalid_uid, "UID empty or longer than 64 characters");
  }
  s.resume = resume_at;
  s.field_end = s.off + length;
  s.uid_chars = 0;
  s.uid_padding = s.uid_bad = false;
  s.uid_keep = keep;
  s.step = Step::uid;
}

void Parser::resume(Stream& s, Side side, Observer& obs) noexcept {
  switch (s.resume) {
    case Resume::items:
      return items_next(s, side, obs);
    case Resume::item_done:
      return item_done(s, side, obs);
    case Resume::sub_items:
      if (s.item_type == kItemContextRq && s.sub_type == kSubAbstractSyntax) {
        s.uid_length = s.uid_chars;
      }
      return sub_items_next(s, obs);
  }
}

void Parser::items_next(Stream& s, Side side, Observer& obs) noexcept {
  if (s.off == s.pdu_length) return associate_done(s, side, obs);
  if (s.pdu_length - s.off < kItemHeader) {
    return fail(Error::item_length_invalid, "PDU ends inside an item header");
  }
  s.item_type = 0;
  s.step = Step::item_header;
  s.need = kItemHeader;
}

void Parser::item_header(Stream& s, Observer& obs) noexcept {
  s.item_type = s.buf[0];
  const uint32_t length = be16(s.buf + 2);
  if (length > s.pdu_length - s.off) {
    return fail(Error::item_length_invalid, "item longer than the rest of its PDU");
  }
  s.item_end = s.off + length;
  switch (s.item_type) {
    case kItemApplicationContext:
      if (s.have_app_context) return fail(Error::unexpected_item, "second application context");
      s.have_app_context = true;
      return start_uid(s, length, false, Resume::item_done);
    case kItemContextRq:
    case kItemContextAc:
      if ((s.item_type == kItemContextRq) != (s.pdu_type == kAssociateRq)) {
        return fail(Error::unexpected_item, "presentation context item of the other PDU type");
      }
      if (length < 4) {
        return fail(Error::item_length_invalid, "presentation context item shorter than 4");
      }
      s.step = Step::pc_head;
      s.need = 4;
      return;
    case kItemUserInfo:
      if (s.have_user_info) return fail(Error::unexpected_item, "second user information item");
      s.have_user_info = true;
      return sub_items_next(s, obs);
    default:
      return fail(Error::unexpected_item, "unknown A-ASSOCIATE item type");
  }
}

void Parser::pc_head(Stream& s) noexcept {
  s.context_id = s.buf[0];
  s.context_result = s.buf[2];
  s.have_abstract = s.have_transfer = false;
  s.uid_length = 0;
  if (s.pdu_type == kAssociateRq) {
    if ((s.context_id & 1) == 0) {
      return fail(Error::invalid_presentation_context, "even presentation context id");
    }
    if (bit(proposed_, s.context_id)) {
      return fail(Error::invalid_presentation_context, "presentation context id proposed twice");
    }
    return;
  }
  if (!bit(proposed_, s.context_id)) {
    return fail(Error::unknown_presentation_context, "A-ASSOCIATE-AC answers an unknown context");
  }
  if (bit(answered_, s.context_id)) {
    return fail(Error::invalid_presentation_context, "presentation context answered twice");
  }
  if (s.context_result > 4) {
    return fail(Error::invalid_presentation_context, "presentation context result above 4");
  }
}

void Parser::sub_items_next(Stream& s, Observer& obs) noexcept {
  if (s.off == s.item_end) {
    return item_done(s, side_of(s), obs);
  }
  if (s.item_end - s.off < kItemHeader) {
    return fail(Error::item_length_invalid, "item ends inside a sub-item header");
  }
  s.sub_type = 0;
  s.step = Step::sub_header;
  s.need = kItemHeader;
}

void Parser::sub_header(Stream& s, Observer& obs) noexcept {
  s.sub_type = s.buf[0];
  const uint32_t length = be16(s.buf + 2);
  if (length > s.item_end - s.off) {
    return fail(Error::item_length_invalid, "sub-item longer than the rest of its item");
  }
  s.sub_end = s.off + length;
  switch (s.item_type) {
    case kItemContextRq:
      if (s.sub_type == kSubAbstractSyntax) {
        if (s.have_abstract) return fail(Error::unexpected_item, "second abstract syntax");
        s.have_abstract = true;
        return start_uid(s, length, true, Resume::sub_items);
      }
      if (s.sub_type == kSubTransferSyntax) {
        s.have_transfer = true;
        return start_uid(s, length, false, Resume::sub_items);
      }
      return fail(Error::unexpected_item, "unknown sub-item in a presentation context");
    case kItemContextAc:
      if (s.sub_type == kSubTransferSyntax) {
        if (s.have_transfer) return fail(Error::unexpected_item, "second transfer syntax");
        s.have_transfer = true;
        return start_uid(s, length, false, Resume::sub_items);
      }
      return fail(Error::unexpected_item, "unknown sub-item in a presentation context");
    default:  // user information
      if (s.sub_type == kSubMaxLength) {
        if (s.have_max_length) return fail(Error::unexpected_item, "second maximum length");
        if (length != 4) return fail(Error::item_length_invalid, "maximum length is not 4 bytes");
        s.have_max_length = true;
        s.step = Step::max_length;
        s.need = 4;
        return;
      }
      // Implementation class/version, role selection, extended negotiation, user
      // identity: nothing policy needs, and their lengths were checked above.
      return start_skip(s, length, Resume::sub_items, obs);
  }
}

void Parser::item_done(Stream& s, Side side, Observer& obs) noexcept {
  switch (s.item_type) {
    case kItemContextRq:
      if (!s.have_abstract || !s.have_transfer) {
        return fail(Error::invalid_presentation_context,
                    "presentation context without abstract or transfer syntax");
      }
      set_bit(proposed_, s.context_id);
      ++s.contexts;  // at most 128: ids are odd and unique
      notify(obs.on_presentation_context(s.context_id, {s.uid, s.uid_length}));
      break;
    case kItemContextAc:
      if (s.context_result == 0 && !s.have_transfer) {
        return fail(Error::invalid_presentation_context,
                    "accepted context without transfer syntax");
      }
      set_bit(answered_, s.context_id);
      if (s.context_result == 0) set_bit(accepted_, s.context_id);
      ++s.contexts;
      notify(obs.on_presentation_context_result(s.context_id, s.context_result));
      break;
    default:
      break;
  }
  if (error_ == Error::ok) items_next(s, side, obs);
}

void Parser::associate_done(Stream& s, Side side, Observer& obs) noexcept {
  if (!s.have_app_context) {
    return fail(Error::unexpected_item, "A-ASSOCIATE without application context");
  }
  if (s.contexts == 0) {
    return fail(Error::invalid_presentation_context, "A-ASSOCIATE without presentation context");
  }
  max_pdu_length_[static_cast<size_t>(side)] = s.max_length;
  pdu_done(s);
  if (s.pdu_type == kAssociateRq) {
    phase_ = Phase::requested;
    notify(obs.on_associate_request(calling_ae(), called_ae(), s.max_length));
  } else {
    phase_ = Phase::established;
    notify(obs.on_associate_accept(s.max_length));
  }
}

void Parser::short_body(Stream& s, Side side, Observer& obs) noexcept {
  const uint8_t* b = s.buf;
  switch (s.pdu_type) {
    case kAssociateRj:
      // Result 1 permanent / 2 transient; source 1 user, 2 and 3 the provider's layers.
      if (b[1] < 1 || b[1] > 2 || b[2] < 1 || b[2] > 3) {
        return fail(Error::invalid_pdu_field, "A-ASSOCIATE-RJ result or source");
      }
      phase_ = Phase::rejected;
      pdu_done(s);
      return notify(obs.on_associate_reject(b[1], b[2], b[3]));
    case kReleaseRq:
      s.sent_release_rq = true;
      pdu_done(s);
      return notify(obs.on_release(side, false));
    case kReleaseRp:
      s.sent_release_rp = true;
      pdu_done(s);
      return notify(obs.on_release(side, true));
    default:  // A-ABORT: this side says nothing more
      aborted_ = true;
      s.step = Step::closed;
      return notify(obs.on_abort(side, b[2], b[3]));
  }
}

void Parser::pdvs_next(Stream& s) noexcept {
  if (s.off == s.pdu_length) return pdu_done(s);
  if (s.pdu_length - s.off < kPdvHeader) {
    return fail(Error::pdv_length_invalid, "P-DATA-TF ends inside a PDV header");
  }
  s.step = Step::pdv_header;
  s.need = kPdvHeader;
}

void Parser::pdv_header(Stream& s) noexcept {
  const uint32_t length = be32(s.buf);
  const uint8_t context = s.buf[4];
  const uint8_t control = s.buf[5];
  // The item-length counts the context id and message control header.
  if (length < 2) return fail(Error::pdv_length_invalid, "PDV item-length below 2");
  if (length - 2 > s.pdu_length - s.off) {
    return fail(Error::pdv_length_invalid, "PDV longer than the rest of its PDU");
  }
  s.item_end = s.off + (length - 2);
  if (!bit(proposed_, context)) {
    return fail(Error::unknown_presentation_context, "PDV on a context that was not proposed");
  }
  if (!bit(accepted_, context)) {
    return fail(Error::presentation_context_not_accepted, "PDV on a refused context");
  }
  // Bit 0: command (1) or data set (0); bit 1: last fragment. The other bits are
  // reserved and, as PS3.8 asks, not tested.
  s.pdv_command = (control & 0x01) != 0;
  s.pdv_last = (control & 0x02) != 0;
  CommandState& c = s.command;
  if (s.pdv_command) {
    // PS3.7/PS3.8 annex E: a message's fragments are not interleaved with another's, and
    // its command comes complete before its data set.
    if (s.data_expected) {
      return fail(Error::unexpected_pdv, "command before the previous data set ended");
    }
    if (c.active && c.context_id != context) {
      return fail(Error::unexpected_pdv, "command fragments on different contexts");
    }
    if (!c.active) {
      c = CommandState{};
      c.active = true;
      c.context_id = context;
    }
  } else {
    if (c.active) return fail(Error::unexpected_pdv, "data set PDV inside a command");
    if (!s.data_expected) {
      return fail(Error::unexpected_pdv, "data set PDV without a command announcing it");
    }
    if (s.data_context != context) {
      return fail(Error::unexpected_pdv, "data set on another context than its command");
    }
  }
  s.step = Step::pdv_data;
}

void Parser::pdv_done(Stream& s, Side side, Observer& obs) noexcept {
  if (s.pdv_last) {
    if (s.pdv_command) {
      command_done(s, side, obs);
      if (error_ != Error::ok) return;
    } else {
      s.data_expected = false;
    }
  }
  pdvs_next(s);
}

void Parser::command_bytes(Stream& s, const uint8_t* p, size_t n) noexcept {
  CommandState& c = s.command;
  while (n > 0 && error_ == Error::ok) {
    // Bound first: header positions depend only on the stream, so this fails at the same
    // byte whatever the fragmenting.
    if (c.step == CommandStep::header && c.have == 0 &&
        kMaxCommandBytes - c.bytes < kElementHeader) {
      return fail(Error::command_too_large, "command set above 64 KiB");
    }
    size_t used = 0;
    switch (c.step) {
      case CommandStep::header:
      case CommandStep::value:
        used = take(c.have, c.need, c.buf, p, n);
        break;
      case CommandStep::move_destination:
        used = take(c.have, c.need, c.move_destination, p, n);
        break;
      case CommandStep::uid:
        used = std::min<size_t>(n, c.value_left);
        scan_uid(p, used, s.uid, s.uid_chars, s.uid_padding, s.uid_bad);
        c.value_left -= static_cast<uint32_t>(used);
        break;
      case CommandStep::skip:
        used = std::min<size_t>(n, c.value_left);
        c.value_left -= static_cast<uint32_t>(used);
        break;
    }
    c.bytes += static_cast<uint32_t>(used);  // before the handlers: they compare positions
    p += used;
    n -= used;
    switch (c.step) {
      case CommandStep::header:
        if (c.have == c.need) command_element(s);
        break;
      case CommandStep::value:
        if (c.have == c.need) command_value(s);
        break;
      case CommandStep::move_destination:
        if (c.have == c.need) {
          if (!trim_ae_title(c.move_destination, c.need, c.move_begin, c.move_length)) {
            return fail(Error::invalid_ae_title, "Move Destination");
          }
          next_element(c);
        }
        break;
      case CommandStep::uid:
        if (c.value_left == 0) {
          if (s.uid_bad || s.uid_chars == 0) {
            return fail(Error::invalid_uid, "SOP Class UID in a command is not digits and dots");
          }
          c.sop_class_length = s.uid_chars;
          next_element(c);
        }
        break;
      case CommandStep::skip:
        if (c.value_left == 0) next_element(c);
        break;
    }
  }
}

void Parser::command_element(Stream& s) noexcept {
  CommandState& c = s.command;
  c.have = 0;
  const uint16_t group = le16(c.buf);
  const uint16_t element = le16(c.buf + 2);
  const uint32_t length = le32(c.buf + 4);
  // Command sets hold group 0000 only, in ascending order without repeats (PS3.5 7.1):
  // a repeated element could show the firewall one SOP class and the device another.
  if (group != 0) return fail(Error::invalid_command, "command element outside group 0000");
  if ((c.seen & kSeenElement) != 0 && element <= c.element) {
    return fail(Error::invalid_command, "command elements out of order or repeated");
  }
  c.seen |= kSeenElement;
  c.element = element;
  // c.bytes is the offset right after this header (<= kMaxCommandBytes, checked before
  // it started); an undefined length (0xFFFFFFFF) fails here too.
  if (length > kMaxCommandBytes - c.bytes) {
    return fail(Error::command_too_large, "command element beyond 64 KiB");
  }
  next_element(c);
  switch (element) {
    case kGroupLength:
      if (length != 4) return fail(Error::invalid_command, "Command Group Length is not 4 bytes");
      c.need = 4;
      c.step = CommandStep::value;
      return;
    case kAffectedSopClass:
    case kRequestedSopClass:
      if (length > kMaxUidLength) return fail(Error::invalid_uid, "SOP Class UID above 64");
      if (length == 0) return;  // empty value: treated as absent
      if ((c.seen & kSeenSopClass) != 0) {
        return fail(Error::invalid_command, "both Affected and Requested SOP Class UID");
      }
      c.seen |= kSeenSopClass;
      s.uid_chars = 0;
      s.uid_padding = s.uid_bad = false;
      c.value_left = length;
      c.step = CommandStep::uid;
      return;
    case kCommandField:
    case kDataSetType:
    case kStatus:
      if (length != 2) return fail(Error::invalid_command, "US command element is not 2 bytes");
      c.need = 2;
      c.step = CommandStep::value;
      return;
    case kMoveDestination:
      if (length > kAeTitleLength) return fail(Error::invalid_ae_title, "Move Destination length");
      if (length == 0) return;
      c.need = static_cast<uint8_t>(length);
      c.step = CommandStep::move_destination;
      return;
    default:
      if (length == 0) return;
      c.value_left = length;
      c.step = CommandStep::skip;
      return;
  }
}

void Parser::next_element(CommandState& c) noexcept {
  c.have = 0;
  c.need = kElementHeader;
  c.step = CommandStep::header;
}

void Parser::command_value(Stream& s) noexcept {
  CommandState& c = s.command;
  c.have = 0;
  switch (c.element) {
    case kGroupLength:
      c.group_length = le32(c.buf);
      c.seen |= kSeenGroupLength;
      break;
    case kCommandField:
      c.command_field = le16(c.buf);
      c.seen |= kSeenCommandField;
      break;
    case kDataSetType:
      c.data_set_type = le16(c.buf);
      c.seen |= kSeenDataSetType;
      break;
    default:  // kStatus
      c.status = le16(c.buf);
      c.seen |= kSeenStatus;
      break;
  }
  next_element(c);
}

void Parser::command_done(Stream& s, Side side, Observer& obs) noexcept {
  CommandState& c = s.command;
  if (c.step != CommandStep::header || c.have != 0) {
    return fail(Error::invalid_command, "command set ends inside an element");
  }
  if ((c.seen & kSeenCommandField) == 0) {
    return fail(Error::invalid_command, "command set without Command Field");
  }
  if (command_name(c.command_field).empty()) {
    return fail(Error::invalid_command, "unknown Command Field");
  }
  if ((c.seen & kSeenDataSetType) == 0) {
    return fail(Error::invalid_command, "command set without Command Data Set Type");
  }
  // The group length counts every byte after its own 12-byte element.
  if ((c.seen & kSeenGroupLength) != 0 && c.group_length != c.bytes - 12) {
    return fail(Error::invalid_command, "Command Group Length does not match the command set");
  }
  Command command;
  command.side = side;
  command.presentation_context_id = c.context_id;
  command.command_field = c.command_field;
  command.status = c.status;
  command.has_data_set = c.data_set_type != kNoDataSet;
  if ((c.seen & kSeenSopClass) != 0) command.sop_class_uid = {s.uid, c.sop_class_length};
  if (c.move_length != 0) {
    command.move_destination = {reinterpret_cast<const char*>(c.move_destination) + c.move_begin,
                                c.move_length};
  }
  c.active = false;
  if (command.has_data_set) {
    s.data_expected = true;
    s.data_context = c.context_id;
  }
  notify(obs.on_command(command));
}

}  // namespace cordon::engine::dicom
