#include "dataplane/engine/inspect/rdp.h"

#include <algorithm>
#include <cstring>

namespace cordon::engine::rdp {
namespace {

constexpr uint8_t kTpktVersion = 3;                   // RFC 1006 §6
constexpr uint8_t kX224ConnectionRequest = 0xE0;      // ISO 8073 CR, CDT 0
constexpr uint8_t kX224Data[3] = {0x02, 0xF0, 0x80};  // LI 2, DT, EOT
constexpr uint8_t kTlsHandshakeRecord = 0x16;         // RFC 8446 §5.1 ContentType.handshake
constexpr uint8_t kNegotiationRequest = 0x01;         // TYPE_RDP_NEG_REQ
constexpr uint8_t kCorrelationInfo = 0x06;            // TYPE_RDP_CORRELATION_INFO
constexpr uint16_t kNegotiationRequestLength = 8;
constexpr uint16_t kCorrelationInfoLength = 36;
constexpr uint8_t kMcsConnectInitial[2] = {0x7F, 0x65};  // BER [APPLICATION 101]
// T.125 Connect-Initial members in order: callingDomainSelector, calledDomainSelector
// (OCTET STRING), upwardFlag (BOOLEAN), target/minimum/maximumParameters (SEQUENCE),
// userData (OCTET STRING).
constexpr uint8_t kConnectInitialTags[7] = {0x04, 0x04, 0x01, 0x30, 0x30, 0x30, 0x04};
constexpr uint8_t kUserDataElement = 6;
// T.124 ConnectData: key object (choice 0), OID length 5, {0 0 20 124 0 1} PER-encoded.
constexpr uint8_t kGccKey[7] = {0x00, 0x05, 0x00, 0x14, 0x7C, 0x00, 0x01};
// ConnectGCCPDU choice conferenceCreateRequest, optional-field bitmap: userData only.
constexpr uint8_t kConferenceCreateRequest[2] = {0x00, 0x08};
// userData: one set member, h221NonStandard key with a 4-byte octet string, "Duca"
// (client to server, [MS-RDPBCGR] 2.2.1.3.1).
constexpr uint8_t kUserDataHeader[7] = {0x01, 0xC0, 0x00, 'D', 'u', 'c', 'a'};
constexpr uint16_t kCsNet = 0xC003;
constexpr uint32_t kChannelDefBytes = 12;  // name[8], options
constexpr char kMsT120[] = "MS_T120";
constexpr uint8_t kMsT120Length = sizeof kMsT120 - 1;
// The largest TPKT that can carry a Connect Initial we accept: TPKT and X.224 headers, the
// BER tag and a 3-byte length.
constexpr uint32_t kMaxDataTpkt = 4 + 3 + 2 + 3 + Parser::kMaxConnectInitial;

uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
uint16_t le16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | p[1] << 8);
}
uint32_t le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}
uint8_t ascii_upper(uint8_t c) {
  return c >= 'a' && c <= 'z' ? static_cast<uint8_t>(c - ('a' - 'A')) : c;
}
Result decide(Decision decision) {
  return decision == Decision::accept ? Result::ok : Result::rejected_by_policy;
}

}  // namespace

std::string_view to_string(Result result) noexcept {
  switch (result) {
    case Result::ok:
      return "ok";
    case Result::bad_tpkt:
      return "bad-tpkt";
    case Result::bad_x224:
      return "bad-x224";
    case Result::bad_negotiation:
      return "bad-negotiation";
    case Result::not_tpkt_or_tls:
      return "not-tpkt-or-tls";
    case Result::bad_mcs:
      return "bad-mcs";
    case Result::mcs_too_large:
      return "mcs-too-large";
    case Result::bad_gcc:
      return "bad-gcc";
    case Result::bad_client_data:
      return "bad-client-data";
    case Result::too_many_channels:
      return "too-many-channels";
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
  for (size_t i = 0; i < length && step_ != Step::opaque; ++i) {
    const Result r = byte(data[i], observer);
    if (r != Result::ok) return fail(r);
  }
  return result_;
}

Result Parser::byte(uint8_t value, Observer& observer) noexcept {
  if (in_mcs_) {
    ++position_;
    // "MS_T120" has no proper prefix that is also a suffix, so on a mismatch the scan only
    // needs to check whether this byte starts a new match.
    const uint8_t upper = ascii_upper(value);
    if (upper == static_cast<uint8_t>(kMsT120[t120_matched_])) {
      if (++t120_matched_ == kMsT120Length) {
        facts_.ms_t120_requested = true;
        t120_matched_ = 0;
      }
    } else {
      t120_matched_ = upper == 'M' ? 1 : 0;
    }
  }
  if (skip_ > 0) {
    if (--skip_ == 0 && want_ == 0) return on_field(observer);
    return Result::ok;
  }
  buffer_[have_++] = value;
  if (have_ < want_) return Result::ok;
  return on_field(observer);
}

void Parser::expect(Step step, uint8_t bytes) noexcept {
  step_ = step;
  want_ = bytes;
  have_ = 0;
}

// Skips `bytes`, then reads a `want`-byte field of `step` - or, with want 0, runs the
// boundary `step` at once when the skip ends.
Result Parser::skip_then(uint32_t bytes, Step step, uint8_t want, Observer& observer) noexcept {
  expect(step, want);
  skip_ = bytes;
  if (bytes == 0 && want == 0) return on_field(observer);
  return Result::ok;
}

int Parser::ber_length(uint32_t& length, uint32_t& bytes, uint32_t end) noexcept {
  const uint8_t first = buffer_[0];
  uint32_t n = 0;
  if (first < 0x80) {
    n = 1;
  } else if (first == 0x81) {
    n = 2;
  } else if (first == 0x82) {
    n = 3;
  } else {
    return -1;  // indefinite form, or longer than any Connect Initial member can be
  }
  if (have_ < n) {
    if (in_mcs_ && !fits(n - have_, end)) return -1;
    want_ = static_cast<uint8_t>(n);
    return 0;
  }
  length = n == 1 ? first : n == 2 ? buffer_[1] : be16(buffer_ + 1);
  bytes = n;
  return 1;
}

int Parser::per_length(uint32_t& length, uint32_t end) noexcept {
  const uint8_t first = buffer_[0];
  if ((first & 0x80) == 0) {
    length = first;
    return 1;
  }
  if ((first & 0xC0) != 0x80) return -1;  // fragmented form: never in a Connect Initial
  if (have_ < 2) {
    if (!fits(1, end)) return -1;
    want_ = 2;
    return 0;
  }
  length = static_cast<uint32_t>(first & 0x3F) << 8 | buffer_[1];
  return 1;
}

Result Parser::on_field(Observer& observer) noexcept {
  switch (step_) {
    case Step::tpkt_request:
      if (buffer_[0] != kTpktVersion || buffer_[1] != 0) return Result::bad_tpkt;
      tpkt_length_ = be16(buffer_ + 2);
      if (tpkt_length_ < 4 + 7) return Result::bad_tpkt;  // TPKT + X.224 CR fixed part
      expect(Step::request_fixed, 7);
      return Result::ok;
    case Step::request_fixed: {
      // LI counts the TPDU bytes after itself: the TPKT holds 4 + 1 + LI bytes.
      const uint8_t li = buffer_[0];
      if (buffer_[1] != kX224ConnectionRequest || li < 6 || li + 5u != tpkt_length_) {
        return Result::bad_x224;
      }
      request_left_ = static_cast<uint16_t>(li - 6);
      return request_next(observer);
    }
    case Step::request_item:
      return on_request_item();
    case Step::cookie_prefix:
      if (std::memcmp(buffer_, "Cookie: ", 8) != 0) return Result::bad_x224;
      request_left_ = static_cast<uint16_t>(request_left_ - 8);
      expect(Step::cookie_body, 1);
      return Result::ok;
    case Step::cookie_body:
      request_left_ = static_cast<uint16_t>(request_left_ - 1);
      if (buffer_[0] == '\r') {
        if (request_left_ < 1) return Result::bad_x224;
        expect(Step::cookie_lf, 1);
      } else {
        if (request_left_ < 2) return Result::bad_x224;  // no room left for "\r\n"
        expect(Step::cookie_body, 1);
      }
      return Result::ok;
    case Step::cookie_lf:
      request_left_ = static_cast<uint16_t>(request_left_ - 1);
      if (buffer_[0] != '\n') return Result::bad_x224;
      cookie_seen_ = true;
      return request_next(observer);
    case Step::negotiation:
      if (le16(buffer_ + 2) != kNegotiationRequestLength) return Result::bad_negotiation;
      facts_.negotiation_request = true;
      facts_.requested_protocols = le32(buffer_ + 4);
      request_left_ = static_cast<uint16_t>(request_left_ - kNegotiationRequestLength);
      return request_next(observer);
    case Step::correlation:
      if (le16(buffer_ + 2) != kCorrelationInfoLength) return Result::bad_negotiation;
      request_left_ = static_cast<uint16_t>(request_left_ - kCorrelationInfoLength);
      // The correlation info is the last item: nothing may follow it.
      if (request_left_ != 0) return Result::bad_x224;
      return skip_then(kCorrelationInfoLength - 4, Step::request_next, 0, observer);
    case Step::request_next:
      return request_next(observer);
    case Step::next_pdu:
      if (buffer_[0] == kTlsHandshakeRecord) {
        facts_.encrypted = true;
        expect(Step::opaque, 0);
        return decide(observer.on_encrypted(facts_));
      }
      if (buffer_[0] != kTpktVersion) return Result::not_tpkt_or_tls;
      step_ = Step::tpkt_data;  // keep the byte read: it is the TPKT's first
      want_ = 4;
      return Result::ok;
    case Step::tpkt_data:
      if (buffer_[1] != 0) return Result::bad_tpkt;
      tpkt_length_ = be16(buffer_ + 2);
      if (tpkt_length_ < 4 + 3) return Result::bad_tpkt;
      if (tpkt_length_ > kMaxDataTpkt) return Result::mcs_too_large;
      expect(Step::x224_data, 3);
      return Result::ok;
    case Step::x224_data:
      if (std::memcmp(buffer_, kX224Data, sizeof kX224Data) != 0) return Result::bad_x224;
      if (tpkt_length_ < 4 + 3 + 3) return Result::bad_mcs;  // room for a tag and a length
      expect(Step::mcs_tag, 2);
      return Result::ok;
    case Step::mcs_tag:
      if (std::memcmp(buffer_, kMcsConnectInitial, 2) != 0) return Result::bad_mcs;
      expect(Step::mcs_length, 1);
      return Result::ok;
    case Step::mcs_length: {
      if (buffer_[0] == 0x83 || buffer_[0] == 0x84) return Result::mcs_too_large;
      uint32_t length = 0;
      uint32_t bytes = 0;
      const int got = ber_length(length, bytes, 0);
      if (got < 0) return Result::bad_mcs;
      if (got == 0) return Result::ok;
      return on_mcs_length(length, 2 + bytes);
    }
    default:
      return on_connect_initial_field(observer);
  }
}

Result Parser::on_request_item() noexcept {
  // The first byte of an item is kept: want_ grows to the item's size.
  switch (buffer_[0]) {
    case 'C':  // cookie or routing token, before any rdpNegReq
      if (cookie_seen_ || facts_.negotiation_request) return Result::bad_x224;
      if (request_left_ < 8 + 2) return Result::bad_x224;
      step_ = Step::cookie_prefix;
      want_ = 8;
      return Result::ok;
    case kNegotiationRequest:
      if (facts_.negotiation_request || request_left_ < kNegotiationRequestLength) {
        return Result::bad_negotiation;
      }
      step_ = Step::negotiation;
      want_ = kNegotiationRequestLength;
      return Result::ok;
    case kCorrelationInfo:  // only after an rdpNegReq ([MS-RDPBCGR] 2.2.1.1)
      if (!facts_.negotiation_request || request_left_ < kCorrelationInfoLength) {
        return Result::bad_negotiation;
      }
      step_ = Step::correlation;
      want_ = 4;
      return Result::ok;
    default:
      return Result::bad_x224;
  }
}

Result Parser::request_next(Observer& observer) noexcept {
  if (request_left_ > 0) {
    expect(Step::request_item, 1);
    return Result::ok;
  }
  facts_.connection_request = true;
  expect(Step::next_pdu, 1);
  return decide(observer.on_connection_request(facts_));
}

Result Parser::on_mcs_length(uint32_t length, uint32_t header_bytes) noexcept {
  if (length > kMaxConnectInitial) return Result::mcs_too_large;
  // One Data TPDU carries exactly the Connect Initial (EOT set, nothing after it).
  if (4 + 3 + header_bytes + length != tpkt_length_ || length < 2) return Result::bad_mcs;
  in_mcs_ = true;
  position_ = 0;
  mcs_end_ = length;
  element_ = 0;
  t120_matched_ = 0;
  expect(Step::element_tag, 1);
  return Result::ok;
}

Result Parser::on_element(uint32_t length, Observer& observer) noexcept {
  if (!fits(length, mcs_end_)) return Result::bad_mcs;
  if (element_ < kUserDataElement) {
    ++element_;
    if (!fits(length + 2, mcs_end_)) return Result::bad_mcs;  // the next member's tag, length
    return skip_then(length, Step::element_tag, 1, observer);
  }
  user_data_end_ = position_ + length;
  if (!fits(sizeof kGccKey + 1, user_data_end_)) return Result::bad_gcc;
  expect(Step::gcc_key, sizeof kGccKey);
  return Result::ok;
}

Result Parser::on_connect_initial_field(Observer& observer) noexcept {
  switch (step_) {
    case Step::element_tag:
      if (buffer_[0] != kConnectInitialTags[element_]) return Result::bad_mcs;
      if (!fits(1, mcs_end_)) return Result::bad_mcs;
      expect(Step::element_length, 1);
      return Result::ok;
    case Step::element_length: {
      uint32_t length = 0;
      uint32_t bytes = 0;
      const int got = ber_length(length, bytes, mcs_end_);
      if (got < 0) return Result::bad_mcs;
      if (got == 0) return Result::ok;
      return on_element(length, observer);
    }
    case Step::gcc_key:
      if (std::memcmp(buffer_, kGccKey, sizeof kGccKey) != 0) return Result::bad_gcc;
      expect(Step::gcc_length, 1);
      return Result::ok;
    case Step::gcc_length: {
      uint32_t length = 0;
      const int got = per_length(length, user_data_end_);
      if (got < 0) return Result::bad_gcc;
      if (got == 0) return Result::ok;
      if (!fits(length, user_data_end_)) return Result::bad_gcc;
      gcc_end_ = position_ + length;
      if (!fits(sizeof kConferenceCreateRequest + 1, gcc_end_)) return Result::bad_gcc;
      expect(Step::ccr_header, sizeof kConferenceCreateRequest);
      return Result::ok;
    }
    case Step::ccr_header:
      if (std::memcmp(buffer_, kConferenceCreateRequest, sizeof kConferenceCreateRequest) != 0) {
        return Result::bad_gcc;
      }
      expect(Step::conference_name, 1);
      return Result::ok;
    case Step::conference_name: {
      // NumericString SIZE(1..MAX): length - 1, then the digits packed four bits each.
      if (buffer_[0] >= 0x80) return Result::bad_gcc;
      const uint32_t digits = buffer_[0] + 1u;
      const uint32_t bytes = (digits + 1) / 2;
      if (!fits(bytes + 1 + sizeof kUserDataHeader + 1, gcc_end_)) return Result::bad_gcc;
      return skip_then(bytes, Step::conference_flags, 1, observer);
    }
    case Step::conference_flags:
      // lockedConference, listedConference, conductibleConference, terminationMethod: any.
      expect(Step::user_data_header, sizeof kUserDataHeader);
      return Result::ok;
    case Step::user_data_header:
      if (std::memcmp(buffer_, kUserDataHeader, sizeof kUserDataHeader) != 0) {
        return Result::bad_gcc;
      }
      expect(Step::user_data_length, 1);
      return Result::ok;
    case Step::user_data_length: {
      uint32_t length = 0;
      const int got = per_length(length, gcc_end_);
      if (got < 0) return Result::bad_gcc;
      if (got == 0) return Result::ok;
      if (!fits(length, gcc_end_)) return Result::bad_gcc;
      blocks_end_ = position_ + length;
      return block_next(observer);
    }
    case Step::block_next:
      return block_next(observer);
    case Step::mcs_done:
      return mcs_done(observer);
    default:
      return on_client_data_field(observer);
  }
}

Result Parser::on_client_data_field(Observer& observer) noexcept {
  switch (step_) {
    case Step::block_header: {
      const uint16_t type = le16(buffer_);
      const uint16_t length = le16(buffer_ + 2);
      if (length < 4 || block_start_ + length > blocks_end_) return Result::bad_client_data;
      block_end_ = block_start_ + length;
      if (type != kCsNet) return skip_then(block_end_ - position_, Step::block_next, 0, observer);
      if (!fits(4, block_end_)) return Result::bad_client_data;
      expect(Step::channel_count, 4);
      return Result::ok;
    }
    case Step::channel_count: {
      const uint32_t count = le32(buffer_);
      if (count > kMaxChannels) return Result::too_many_channels;
      if (!fits(count * kChannelDefBytes, block_end_)) return Result::bad_client_data;
      channels_left_ = count;
      facts_.channel_count =
          static_cast<uint8_t>(std::min<uint32_t>(255, facts_.channel_count + count));
      return channel_next(observer);
    }
    case Step::channel_next:
      return channel_next(observer);
    case Step::channel_name:
      return on_channel_name(observer);
    default:
      return Result::ok;  // opaque: not reached (feed stops first)
  }
}

Result Parser::block_next(Observer& observer) noexcept {
  if (position_ == blocks_end_) {
    // Anything after the client data blocks up to the end of the Connect Initial passes.
    return skip_then(mcs_end_ - position_, Step::mcs_done, 0, observer);
  }
  if (!fits(4, blocks_end_)) return Result::bad_client_data;
  block_start_ = position_;
  expect(Step::block_header, 4);
  return Result::ok;
}

Result Parser::channel_next(Observer& observer) noexcept {
  if (channels_left_ == 0) return skip_then(block_end_ - position_, Step::block_next, 0, observer);
  expect(Step::channel_name, 8);
  return Result::ok;
}

Result Parser::on_channel_name(Observer& observer) noexcept {
  --channels_left_;
  size_t length = 0;
  while (length < 8 && buffer_[length] != 0) ++length;
  bool t120 = true;
  for (uint8_t i = 0; i < kMsT120Length; ++i) {
    t120 = t120 && ascii_upper(buffer_[i]) == static_cast<uint8_t>(kMsT120[i]);
  }
  if (t120) facts_.ms_t120_requested = true;
  const std::string_view name(reinterpret_cast<const char*>(buffer_), length);
  if (observer.on_channel(name, facts_) != Decision::accept) return Result::rejected_by_policy;
  return skip_then(kChannelDefBytes - 8, Step::channel_next, 0, observer);  // options
}

Result Parser::mcs_done(Observer& observer) noexcept {
  in_mcs_ = false;
  facts_.connect_initial = true;
  expect(Step::opaque, 0);
  return decide(observer.on_connect_initial(facts_));
}

}  // namespace cordon::engine::rdp
