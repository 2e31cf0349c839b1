#include "dataplane/engine/inspect/smb.h"

#include <algorithm>
#include <cstring>

namespace cordon::engine::smb {
namespace {

// NetBIOS session service packet types (RFC 1002 §4.3.1).
constexpr uint8_t kSessionMessage = 0x00;
constexpr uint8_t kSessionRequest = 0x81;
constexpr uint8_t kPositiveResponse = 0x82;
constexpr uint8_t kNegativeResponse = 0x83;
constexpr uint8_t kRetargetResponse = 0x84;
constexpr uint8_t kKeepAlive = 0x85;
// A session request carries two encoded NetBIOS names (RFC 1002 §4.3.2), 34 bytes each
// without scope; scopes make them longer, but never this long.
constexpr uint32_t kMaxSessionRequest = 512;

constexpr uint32_t kSmb1HeaderBytes = 32;         // [MS-CIFS] 2.2.3.1
constexpr uint32_t kSmb1MinMessage = 35;          // header, WordCount, ByteCount
constexpr uint32_t kSmb2HeaderBytes = 64;         // [MS-SMB2] 2.2.1
constexpr uint32_t kTransformHeaderBytes = 52;    // [MS-SMB2] 2.2.41
constexpr uint32_t kCompressionHeaderBytes = 16;  // [MS-SMB2] 2.2.42
constexpr uint8_t kSmb1FlagReply = 0x80;
constexpr uint32_t kSmb2FlagServerToRedir = 0x00000001;
constexpr uint32_t kWords = kSmb1HeaderBytes + 1;  // first parameter word (after WordCount)

uint16_t le16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | p[1] << 8);
}
uint32_t le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}
uint64_t le64(const uint8_t* p) {
  return static_cast<uint64_t>(le32(p)) | static_cast<uint64_t>(le32(p + 4)) << 32;
}

// A parameter or data region of a transaction message: inside the message and after its
// parameter words and ByteCount ([MS-CIFS] 2.2.4.46.1: Pad1, Parameters, Pad2, Data).
bool region_ok(uint64_t offset, uint64_t count, uint64_t first_free, uint64_t length) {
  return count == 0 || (offset >= first_free && offset + count <= length);
}
bool regions_overlap(uint64_t p_offset, uint64_t p_count, uint64_t d_offset, uint64_t d_count) {
  return p_count != 0 && d_count != 0 && p_offset < d_offset + d_count &&
         d_offset < p_offset + p_count;
}

// The counts of one transaction message ([MS-CIFS] 2.2.4.33/34/46/47/62/63).
struct Counts {
  uint64_t total_parameter = 0;
  uint64_t total_data = 0;
  uint64_t parameter_count = 0;
  uint64_t parameter_offset = 0;
  uint64_t parameter_displacement = 0;  // secondaries only
  uint64_t data_count = 0;
  uint64_t data_offset = 0;
  uint64_t data_displacement = 0;  // secondaries only
};

bool counts_consistent(const Counts& c, uint64_t first_free, uint64_t length) {
  return c.parameter_displacement + c.parameter_count <= c.total_parameter &&
         c.data_displacement + c.data_count <= c.total_data &&
         region_ok(c.parameter_offset, c.parameter_count, first_free, length) &&
         region_ok(c.data_offset, c.data_count, first_free, length) &&
         !regions_overlap(c.parameter_offset, c.parameter_count, c.data_offset, c.data_count);
}

}  // namespace

std::string_view to_string(Result result) noexcept {
  switch (result) {
    case Result::ok:
      return "ok";
    case Result::bad_netbios_type:
      return "bad-netbios-type";
    case Result::bad_netbios_header:
      return "bad-netbios-header";
    case Result::message_too_short:
      return "message-too-short";
    case Result::bad_protocol_id:
      return "bad-protocol-id";
    case Result::bad_smb2_header:
      return "bad-smb2-header";
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
  size_t i = 0;
  while (i < length) {
    switch (state_) {
      case State::header:
        header_[header_length_++] = data[i++];
        if (header_length_ == sizeof header_) {
          const Result r = on_transport_header(observer);
          if (r != Result::ok) return fail(r);
        }
        break;
      case State::capture: {
        const size_t n = std::min<size_t>(length - i, capture_want_ - captured_);
        std::memcpy(capture_ + captured_, data + i, n);
        captured_ = static_cast<uint8_t>(captured_ + n);
        position_ += static_cast<uint32_t>(n);
        i += n;
        if (captured_ == capture_want_) {
          const Result r = on_capture(observer);
          if (r != Result::ok) return fail(r);
        }
        break;
      }
      case State::skip: {
        const size_t n = std::min<size_t>(length - i, skip_to_ - position_);
        position_ += static_cast<uint32_t>(n);
        i += n;
        if (position_ == skip_to_) {
          const Result r = after_skip();
          if (r != Result::ok) return fail(r);
        }
        break;
      }
      case State::negotiate:
        scan_dialect_byte(data[i++]);
        if (++position_ == packet_length_) {
          Message m = smb1_message();
          m.indicators = indicator::smb1;
          m.smb2_dialects_offered = smb2_offered_;
          end_of_packet();
          const Result r = report(m, observer);
          if (r != Result::ok) return fail(r);
        }
        break;
    }
  }
  return result_;
}

Result Parser::report(const Message& message, Observer& observer) noexcept {
  indicators_seen_ |= message.indicators;
  ++messages_;
  return observer.on_message(message) == Decision::accept ? Result::ok : Result::rejected_by_policy;
}

void Parser::start_capture(uint32_t offset) noexcept {
  state_ = State::capture;
  capture_offset_ = offset;
  captured_ = 0;
  capture_want_ = static_cast<uint8_t>(std::min(kCaptureBytes, packet_length_ - offset));
}

void Parser::skip_to(uint32_t offset) noexcept {
  state_ = State::skip;
  skip_to_ = offset;
  if (position_ == offset) (void)after_skip();
}

Result Parser::after_skip() noexcept {
  if (position_ == packet_length_) {
    end_of_packet();
  } else {
    start_capture(position_);  // the next SMB2 compounded header
  }
  return Result::ok;
}

void Parser::end_of_packet() noexcept {
  state_ = State::header;
  header_length_ = 0;
}

Result Parser::on_transport_header(Observer& observer) noexcept {
  const uint8_t type = header_[0];
  uint32_t length = 0;
  if (transport_ == Transport::direct_tcp) {
    // [MS-SMB2] 2.1: a zero byte and a 24-bit length. Samba also sends NetBIOS keepalives.
    if (type == kSessionMessage) {
      length = static_cast<uint32_t>(header_[1]) << 16 | static_cast<uint32_t>(header_[2]) << 8 |
               header_[3];
    } else if (type == kKeepAlive) {
      if (header_[1] != 0 || header_[2] != 0 || header_[3] != 0) return Result::bad_netbios_header;
    } else {
      return Result::bad_netbios_type;
    }
  } else {
    // RFC 1002 §4.3.1: of the flags only bit 7 (E, the length's 17th bit) may be set.
    if ((header_[1] & 0xFE) != 0) return Result::bad_netbios_header;
    length = static_cast<uint32_t>(header_[1] & 0x01) << 16 |
             static_cast<uint32_t>(header_[2]) << 8 | header_[3];
    bool length_ok = true;
    switch (type) {
      case kSessionMessage:
        break;
      case kSessionRequest:
        length_ok = length >= 2 && length <= kMaxSessionRequest;
        break;
      case kPositiveResponse:
      case kKeepAlive:
        length_ok = length == 0;
        break;
      case kNegativeResponse:
        length_ok = length == 1;
        break;  // error code
      case kRetargetResponse:
        length_ok = length == 6;
        break;  // IP address and port
      default:
        return Result::bad_netbios_type;
    }
    if (!length_ok) return Result::bad_netbios_header;
  }

  header_length_ = 0;
  packet_length_ = length;
  position_ = 0;
  compound_index_ = 0;
  if (type != kSessionMessage) {
    Message m;
    m.dialect = Dialect::netbios_control;
    m.netbios_type = type;
    m.length = length;
    if (length == 0) {
      end_of_packet();
    } else {
      skip_to(length);
    }
    return report(m, observer);
  }
  if (length < 4) return Result::message_too_short;  // not even a protocol id
  start_capture(0);
  return Result::ok;
}

Result Parser::on_capture(Observer& observer) noexcept {
  if (capture_offset_ != 0) return smb2(observer);  // an SMB2 compounded header
  if (capture_[1] != 'S' || capture_[2] != 'M' || capture_[3] != 'B') {
    return Result::bad_protocol_id;
  }
  Message m;
  m.length = packet_length_;
  switch (capture_[0]) {
    case 0xFF:
      return smb1(observer);
    case 0xFE:
      return smb2(observer);
    case 0xFD:
      if (packet_length_ < kTransformHeaderBytes) return Result::message_too_short;
      m.dialect = Dialect::smb3_encrypted;
      break;
    case 0xFC:
      if (packet_length_ < kCompressionHeaderBytes) return Result::message_too_short;
      m.dialect = Dialect::smb3_compressed;
      break;
    default:
      return Result::bad_protocol_id;
  }
  skip_to(packet_length_);
  return report(m, observer);
}

Message Parser::smb1_message() const noexcept {
  // Only called with a full SMB1 header and WordCount captured (>= kSmb1MinMessage bytes).
  const uint8_t* c = capture_;
  Message m;
  m.dialect = Dialect::smb1;
  m.length = packet_length_;
  m.command = c[4];
  m.status = le32(c + 5);
  m.reply = (c[9] & kSmb1FlagReply) != 0;
  m.flags2 = le16(c + 10);
  m.pid = static_cast<uint32_t>(le16(c + 12)) << 16 | le16(c + 26);
  m.tid = le16(c + 24);
  m.uid = le16(c + 28);
  m.mid = le16(c + 30);
  m.word_count = c[32];
  if (!m.reply) {
    const bool trans =
        m.command == smb1_command::transaction || m.command == smb1_command::transaction2;
    // Setup[0] follows the 14 fixed words; NT_TRANSACT's Function sits in its fixed words.
    if (trans && m.word_count >= 15 && captured_ >= kWords + 30 && c[kWords + 26] >= 1) {
      m.subcommand = le16(c + kWords + 28);
    } else if (m.command == smb1_command::nt_transact && m.word_count >= 19 &&
               captured_ >= kWords + 38) {
      m.subcommand = le16(c + kWords + 36);
    }
  }
  return m;
}

Result Parser::smb1(Observer& observer) noexcept {
  if (packet_length_ < kSmb1MinMessage) return Result::message_too_short;
  Message m = smb1_message();
  m.indicators = indicator::smb1 | check_transaction(m);
  if (m.reply && m.command == smb1_command::transaction2 && m.status == kStatusNotImplemented &&
      (m.mid == 0x51 || m.mid == 0x52)) {
    m.indicators |= indicator::doublepulsar_reply;
  }
  if (m.command == smb1_command::negotiate && !m.reply && m.word_count == 0) {
    // Report once the dialect list has been read; part of it is captured already.
    scan_in_string_ = scan_broken_ = smb2_offered_ = false;
    scan_matched_ = 0;
    for (uint32_t at = kSmb1MinMessage; at < captured_; ++at) scan_dialect_byte(capture_[at]);
    if (position_ != packet_length_) {
      state_ = State::negotiate;
      return Result::ok;
    }
    m.smb2_dialects_offered = smb2_offered_;
    end_of_packet();
    return report(m, observer);
  }
  skip_to(packet_length_);
  return report(m, observer);
}

// [MS-CIFS] 2.2.4.52.1: Dialects is a sequence of 0x02 followed by a NUL-terminated string.
// [MS-SMB2] 3.2.4.2.2.1: a client that also speaks SMB2 lists "SMB 2.002" and/or "SMB 2.???".
void Parser::scan_dialect_byte(uint8_t byte) noexcept {
  static constexpr char kPrefix[] = "SMB 2.";
  constexpr uint8_t kPrefixLength = sizeof kPrefix - 1;
  if (scan_broken_) return;
  if (!scan_in_string_) {
    if (byte == 0x02) {
      scan_in_string_ = true;
      scan_matched_ = 0;
    } else {
      scan_broken_ = true;
    }
    return;
  }
  if (byte == 0) {
    if (scan_matched_ == kPrefixLength) smb2_offered_ = true;
    scan_in_string_ = false;
    return;
  }
  if (scan_matched_ < kPrefixLength) {
    scan_matched_ = static_cast<uint8_t>(
        byte == static_cast<uint8_t>(kPrefix[scan_matched_]) ? scan_matched_ + 1 : 0xFF);
  }
}

uint32_t Parser::check_transaction(const Message& m) noexcept {
  if (m.reply) return 0;
  const uint8_t* c = capture_;
  const uint32_t wc = m.word_count;
  const uint64_t first_free = kWords + 2ull * wc + 2;  // after the words and ByteCount
  const uint64_t length = packet_length_;
  // Every transaction layout must fit in the message; its fixed words must be captured.
  const auto words_fit = [&](uint32_t fixed_bytes) {
    return first_free <= length && kWords + fixed_bytes <= captured_;
  };
  Counts n;
  TransactionKind kind = TransactionKind::none;
  switch (m.command) {
    case smb1_command::transaction:
    case smb1_command::transaction2: {
      // WordCount = 14 + SetupCount ([MS-CIFS] 2.2.4.33.1, 2.2.4.46.1).
      if (wc < 14 || !words_fit(28) || wc != 14u + c[kWords + 26]) {
        return indicator::transaction_counts_inconsistent;
      }
      n.total_parameter = le16(c + kWords + 0);
      n.total_data = le16(c + kWords + 2);
      n.parameter_count = le16(c + kWords + 18);
      n.parameter_offset = le16(c + kWords + 20);
      n.data_count = le16(c + kWords + 22);
      n.data_offset = le16(c + kWords + 24);
      kind =
          m.command == smb1_command::transaction ? TransactionKind::trans : TransactionKind::trans2;
      break;
    }
    case smb1_command::nt_transact: {
      // WordCount = 19 + SetupCount ([MS-CIFS] 2.2.4.62.1); 32-bit counts.
      if (wc < 19 || !words_fit(38) || wc != 19u + c[kWords + 35]) {
        return indicator::transaction_counts_inconsistent;
      }
      n.total_parameter = le32(c + kWords + 3);
      n.total_data = le32(c + kWords + 7);
      n.parameter_count = le32(c + kWords + 19);
      n.parameter_offset = le32(c + kWords + 23);
      n.data_count = le32(c + kWords + 27);
      n.data_offset = le32(c + kWords + 31);
      kind = TransactionKind::nt_trans;
      break;
    }
    case smb1_command::transaction_secondary:
    case smb1_command::transaction2_secondary: {
      // WordCount 8, and 9 for TRANS2 (its extra FID word) ([MS-CIFS] 2.2.4.34.1, 2.2.4.47.1).
      const uint32_t expected = m.command == smb1_command::transaction_secondary ? 8 : 9;
      if (wc != expected || !words_fit(16)) return indicator::transaction_counts_inconsistent;
      n.total_parameter = le16(c + kWords + 0);
      n.total_data = le16(c + kWords + 2);
      n.parameter_count = le16(c + kWords + 4);
      n.parameter_offset = le16(c + kWords + 6);
      n.parameter_displacement = le16(c + kWords + 8);
      n.data_count = le16(c + kWords + 10);
      n.data_offset = le16(c + kWords + 12);
      n.data_displacement = le16(c + kWords + 14);
      kind = m.command == smb1_command::transaction_secondary ? TransactionKind::trans
                                                              : TransactionKind::trans2;
      uint32_t bits =
          counts_consistent(n, first_free, length) ? 0 : indicator::transaction_counts_inconsistent;
      return bits | continue_transaction(m, kind, static_cast<uint32_t>(n.parameter_count),
                                         static_cast<uint32_t>(n.data_count));
    }
    case smb1_command::nt_transact_secondary: {
      // WordCount 18 ([MS-CIFS] 2.2.4.63.1); 32-bit counts after 3 reserved bytes.
      if (wc != 18 || !words_fit(36)) return indicator::transaction_counts_inconsistent;
      n.total_parameter = le32(c + kWords + 3);
      n.total_data = le32(c + kWords + 7);
      n.parameter_count = le32(c + kWords + 11);
      n.parameter_offset = le32(c + kWords + 15);
      n.parameter_displacement = le32(c + kWords + 19);
      n.data_count = le32(c + kWords + 23);
      n.data_offset = le32(c + kWords + 27);
      n.data_displacement = le32(c + kWords + 31);
      uint32_t bits =
          counts_consistent(n, first_free, length) ? 0 : indicator::transaction_counts_inconsistent;
      return bits | continue_transaction(m, TransactionKind::nt_trans,
                                         static_cast<uint32_t>(n.parameter_count),
                                         static_cast<uint32_t>(n.data_count));
    }
    default:
      return 0;
  }

  // A primary request.
  uint32_t bits = 0;
  if (!counts_consistent(n, first_free, length)) {
    bits |= indicator::transaction_counts_inconsistent;
  } else if (n.parameter_count < n.total_parameter || n.data_count < n.total_data) {
    // More to come in secondaries: remember the transaction and its type.
    open_transaction(m, kind, static_cast<uint32_t>(n.total_parameter - n.parameter_count),
                     static_cast<uint32_t>(n.total_data - n.data_count));
  }
  if (m.command == smb1_command::transaction2 && m.subcommand == kTrans2SessionSetup &&
      c[kWords + 26] >= 1) {
    bits |= indicator::doublepulsar_request;
  }
  return bits;
}

Parser::Transaction* Parser::find_transaction(const Message& m) noexcept {
  for (Transaction& t : transactions_) {
    if (t.kind != TransactionKind::none && t.pid == m.pid && t.tid == m.tid && t.uid == m.uid &&
        t.mid == m.mid) {
      return &t;
    }
  }
  return nullptr;
}

void Parser::open_transaction(const Message& m, TransactionKind kind, uint32_t parameter_left,
                              uint32_t data_left) noexcept {
  Transaction* slot = find_transaction(m);  // a primary reusing the identity replaces it
  for (uint32_t i = 0; slot == nullptr && i < kMaxTransactions; ++i) {
    if (transactions_[i].kind == TransactionKind::none) slot = &transactions_[i];
  }
  if (slot == nullptr) {
    slot = &transactions_[next_transaction_];
    next_transaction_ = static_cast<uint8_t>((next_transaction_ + 1) % kMaxTransactions);
    transactions_overflowed_ = true;
  }
  *slot = Transaction{m.pid, m.tid, m.uid, m.mid, kind, parameter_left, data_left};
}

uint32_t Parser::continue_transaction(const Message& m, TransactionKind kind,
                                      uint32_t parameter_count, uint32_t data_count) noexcept {
  Transaction* t = find_transaction(m);
  if (t == nullptr) {
    return transactions_overflowed_ ? indicator::transaction_type_mismatch : 0;
  }
  const uint32_t bits = t->kind == kind ? 0 : indicator::transaction_type_mismatch;
  t->parameter_left -= std::min(t->parameter_left, parameter_count);
  t->data_left -= std::min(t->data_left, data_count);
  if (t->parameter_left == 0 && t->data_left == 0) t->kind = TransactionKind::none;  // complete
  return bits;
}

Result Parser::smb2(Observer& observer) noexcept {
  const uint8_t* c = capture_;
  if (capture_offset_ == 0 && packet_length_ < kSmb2HeaderBytes) return Result::message_too_short;
  if (c[0] != 0xFE || c[1] != 'S' || c[2] != 'M' || c[3] != 'B' || le16(c + 4) != 64) {
    return Result::bad_smb2_header;
  }
  Message m;
  m.dialect = Dialect::smb2;
  m.length = packet_length_;
  m.status = le32(c + 8);
  m.smb2_command = le16(c + 12);
  m.reply = (le32(c + 16) & kSmb2FlagServerToRedir) != 0;
  m.message_id = le64(c + 24);
  m.compound_index = compound_index_;
  const uint32_t next = le32(c + 20);
  if (next == 0) {
    skip_to(packet_length_);
    return report(m, observer);
  }
  // [MS-SMB2] 3.2.4.1.4: NextCommand is the 8-byte aligned offset of the next header.
  const uint64_t at = static_cast<uint64_t>(capture_offset_) + next;
  if (next < kSmb2HeaderBytes || next % 8 != 0 || at + kSmb2HeaderBytes > packet_length_) {
    return Result::bad_smb2_header;
  }
  ++compound_index_;
  const auto next_header = static_cast<uint32_t>(at);
  if (next_header < position_) {
    // The next header starts inside what was captured (a 64-byte command with no body):
    // keep those bytes and capture the rest.
    const uint32_t keep = position_ - next_header;
    std::memmove(capture_, capture_ + (next_header - capture_offset_), keep);
    start_capture(next_header);
    captured_ = static_cast<uint8_t>(keep);
  } else {
    skip_to(next_header);
  }
  return report(m, observer);
}

}  // namespace cordon::engine::smb
