// SMB over TCP 445 (direct hosting) and 139 (NetBIOS session service): an incremental,
// allocation-free parser of one direction of a TCP stream. It reports every SMB message's
// dialect and header fields and the indicators behind the `smb1-block` and `ms17-010`
// patches (DESIGN.md §3, dataplane/engine/patches/catalog.cpp); the caller maps them to
// verdicts.
//
// Framing
//  * 445 ([MS-SMB2] 2.1, [MS-CIFS] 2.1.1.2): a 4-byte header, a zero byte and a 24-bit
//    big-endian length, then one SMB message. A NetBIOS keepalive (0x85, length 0) is
//    accepted too: Samba sends it on 445.
//  * 139 (RFC 1002 §4.3): type, flags (only the E bit, a 17th length bit, may be set),
//    16-bit length. 0x00 session message, 0x81 session request, 0x82 positive, 0x83
//    negative, 0x84 retarget response, 0x85 keepalive; the fixed lengths of the control
//    packets are checked. Any other type is an error.
// Each session message starts with a protocol id: 0xFF 'SMB' SMB1, 0xFE 'SMB' SMB2/3,
// 0xFD 'SMB' SMB3 transform (encrypted, [MS-SMB2] 2.2.41), 0xFC 'SMB' SMB3 compression
// transform ([MS-SMB2] 2.2.42). Only the first kCaptureBytes of a message (and of each
// SMB2 compounded header) are buffered; the rest is skipped.
//
// Indicators (per message, bits of Message::indicators; see indicator:: below)
//  * smb1: any SMB1 message. An SMB1 NEGOTIATE request that also offers "SMB 2.xxx"
//    dialects (the multi-protocol negotiate of Windows Vista..8.1 and old Samba,
//    [MS-SMB2] 3.2.4.2.2.1) is reported once the whole dialect list is read, with
//    Message::smb2_dialects_offered set: whether that may pass is the caller's choice (the
//    server's reply shows the dialect it picked).
//  * The MS17-010 (EternalBlue / DoublePulsar) subset. All four are violations of
//    [MS-CIFS] that no conforming client or server produces, so they do not depend on
//    exploit-specific bytes that are trivial to change:
//    - doublepulsar_request: an SMB1 TRANS2 request whose subcommand (Setup[0]) is
//      TRANS2_SESSION_SETUP (0x000E). [MS-CIFS] 2.2.6.15 marks it "reserved but not
//      implemented; clients SHOULD NOT send"; the DoublePulsar implant hooks it for its
//      ping/exec/kill commands (Countercept detect_doublepulsar_smb.py; zerosum0x0,
//      "DoublePulsar Initial SMB Backdoor Ring 0 Shellcode Analysis", 2017; Microsoft,
//      "Exploring the crypt: analysis of the WannaCrypt ransomware SMB exploit
//      propagation", 2017).
//    - doublepulsar_reply: an SMB1 TRANS2 reply with STATUS_NOT_IMPLEMENTED and MID 0x51 or
//      0x52: the implant answers its ping/kill (sent with MID 0x41/0x42) with the MID raised
//      by 0x10 (Countercept script, which reads MID 0x51 as "infected"; zeek-EternalSafety
//      flags TRANS2 replies with MID 81..83). Reported for replies, i.e. from the server
//      direction.
//    - transaction_counts_inconsistent: an SMB1 TRANSACTION, TRANSACTION2 or NT_TRANSACT
//      request, primary or secondary ([MS-CIFS] 2.2.4.33/34/46/47/62/63), whose counts do
//      not describe its own bytes: WordCount wrong for the command or the message too short
//      for its parameter words, ParameterCount > TotalParameterCount, DataCount >
//      TotalDataCount, Displacement + Count > Total (secondaries), a parameter or data
//      region outside the message or before the end of the parameter words, or the two
//      regions overlapping. EternalBlue's secondaries carry 4096 data bytes at
//      displacements far past their TotalDataCount of 4096, and its NT Trans overlaps
//      parameters and data (Metasploit ms17_010_eternalblue.rb; Check Point Research,
//      "EternalBlue - Everything There Is To Know", 2017).
//    - transaction_type_mismatch: a secondary request (TRANSACTION_SECONDARY 0x26,
//      TRANSACTION2_SECONDARY 0x33, NT_TRANSACT_SECONDARY 0xA1) continuing an open
//      transaction of another type (same TID, PID, UID, MID; [MS-CIFS] 3.3.5.2.3). This
//      is the core of EternalBlue: srv.sys types a transaction by its last message, so an
//      NT Trans (32-bit TotalDataCount) completed by TRANS2_SECONDARY messages reaches the
//      TRANS2 FEA-list code with more than 0xFFFF bytes and overflows
//      srv!SrvOs2FeaListToNt (Check Point, "Bug B: wrong parsing function"; the Zeek
//      package zeek-EternalSafety raises "EternalBlue" on the same invariant). Open
//      transactions are tracked in a table of kMaxTransactions entries; once it has
//      overflowed, a secondary that matches no entry is reported too (fail closed: the
//      table can no longer prove it harmless, and no client keeps that many incomplete
//      transactions open).
//    Not included: "SMB1 TRANSACTION (0x25) with MID 65/81/82". DoublePulsar uses TRANS2,
//    not TRANSACTION, and a MID alone is an arbitrary client-chosen number (it would reset
//    ordinary traffic); the reply-side rule above is the justified form of that idea.
//
// Threads: one instance per flow direction, owned by the worker that owns the flow; not
// shared, no locks. Fixed size, never allocates, never throws, bounded work per byte, never
// reads outside [data, data + length).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cordon::engine::smb {

// ok, or the first error; a parser that returned an error keeps returning it.
enum class Result : uint8_t {
  ok,
  bad_netbios_type,    // session packet type not allowed on this transport
  bad_netbios_header,  // reserved flag bits set, or a length wrong for the packet type
  message_too_short,   // session message shorter than the header its protocol id needs
  bad_protocol_id,     // not 0xFF/0xFE/0xFD/0xFC followed by "SMB"
  bad_smb2_header,     // StructureSize != 64, or a compounded header misaligned, outside
                       // the message or not SMB2
  rejected_by_policy,  // the observer returned Decision::reject
};

// Stable lower-case label ("bad-protocol-id") for counters and events.
std::string_view to_string(Result result) noexcept;

enum class Decision : uint8_t { accept, reject };

enum class Transport : uint8_t {
  direct_tcp,  // port 445
  netbios,     // port 139
};

enum class Dialect : uint8_t {
  netbios_control,  // a NetBIOS session service packet other than a session message
  smb1,
  smb2,             // SMB 2.x and 3.x (protocol id 0xFE)
  smb3_encrypted,   // SMB3 transform header: the message is encrypted
  smb3_compressed,  // SMB3 compression transform header
};

namespace indicator {
inline constexpr uint32_t smb1 = 1u << 0;
inline constexpr uint32_t doublepulsar_request = 1u << 1;
inline constexpr uint32_t doublepulsar_reply = 1u << 2;
inline constexpr uint32_t transaction_counts_inconsistent = 1u << 3;
inline constexpr uint32_t transaction_type_mismatch = 1u << 4;
// Everything the ms17-010 patch acts on.
inline constexpr uint32_t ms17_010 = doublepulsar_request | doublepulsar_reply |
                                     transaction_counts_inconsistent | transaction_type_mismatch;
}  // namespace indicator

namespace smb1_command {
inline constexpr uint8_t transaction = 0x25;
inline constexpr uint8_t transaction_secondary = 0x26;
inline constexpr uint8_t echo = 0x2B;
inline constexpr uint8_t transaction2 = 0x32;
inline constexpr uint8_t transaction2_secondary = 0x33;
inline constexpr uint8_t negotiate = 0x72;
inline constexpr uint8_t session_setup_andx = 0x73;
inline constexpr uint8_t tree_connect_andx = 0x75;
inline constexpr uint8_t nt_transact = 0xA0;
inline constexpr uint8_t nt_transact_secondary = 0xA1;
}  // namespace smb1_command

inline constexpr uint16_t kTrans2SessionSetup = 0x000E;
inline constexpr uint32_t kStatusNotImplemented = 0xC0000002;

// One reported packet. Fields that do not apply to the dialect are zero.
struct Message {
  Dialect dialect = Dialect::smb1;
  uint8_t netbios_type = 0;  // 0x00 for session messages
  bool reply = false;        // SMB1 Flags.REPLY / SMB2 Flags.SERVER_TO_REDIR
  uint32_t length = 0;       // session packet length (after the 4-byte header)
  uint32_t status = 0;       // NTSTATUS (SMB1 with Flags2.NT_STATUS, SMB2)
  uint32_t indicators = 0;   // indicator:: bits

  // SMB1 ([MS-CIFS] 2.2.3.1)
  uint8_t command = 0;
  uint8_t word_count = 0;
  uint16_t flags2 = 0;
  uint16_t tid = 0;
  uint32_t pid = 0;  // PIDHigh << 16 | PIDLow
  uint16_t uid = 0;
  uint16_t mid = 0;
  // TRANSACTION/TRANSACTION2 request: Setup[0] (the TRANS2 subcommand) when SetupCount > 0;
  // NT_TRANSACT request: Function.
  uint16_t subcommand = 0;
  bool smb2_dialects_offered = false;  // NEGOTIATE request listing a "SMB 2." dialect

  // SMB2 ([MS-SMB2] 2.2.1)
  uint16_t smb2_command = 0;
  uint64_t message_id = 0;
  uint32_t compound_index = 0;  // 0 for the first header of a message, then 1, 2, ...
};

class Observer {
 public:
  // One call per session packet, per SMB2 compounded header, in stream order: for SMB1
  // NEGOTIATE requests when the message ends, for all others as soon as the captured
  // header is complete. The reference is valid only during the call.
  virtual Decision on_message(const Message& message) noexcept {
    (void)message;
    return Decision::accept;
  }

 protected:
  ~Observer() = default;
};

class Parser {
 public:
  // Enough for every field read: the NT_TRANSACT request's Function ends at byte 71.
  static constexpr uint32_t kCaptureBytes = 72;
  static constexpr uint32_t kMaxTransactions = 8;

  explicit Parser(Transport transport = Transport::direct_tcp) noexcept : transport_(transport) {}

  // Consumes the next in-order bytes of the stream direction. Any split of the stream gives
  // the same observer calls and the same result. `data` may be null when `length` is 0.
  Result feed(const uint8_t* data, size_t length, Observer& observer) noexcept;

  Result result() const noexcept { return result_; }
  uint32_t indicators_seen() const noexcept { return indicators_seen_; }  // OR over messages
  uint32_t messages() const noexcept { return messages_; }                // observer calls
  bool idle() const noexcept { return state_ == State::header && header_length_ == 0; }

 private:
  enum class State : uint8_t { header, capture, skip, negotiate };
  enum class TransactionKind : uint8_t { none, trans, trans2, nt_trans };

  // An incomplete transaction: its identity ([MS-CIFS] 3.2.4.1.5: UID, TID, PID, MID) and
  // the parameter/data bytes still to come.
  struct Transaction {
    uint32_t pid = 0;
    uint16_t tid = 0;
    uint16_t uid = 0;
    uint16_t mid = 0;
    TransactionKind kind = TransactionKind::none;
    uint32_t parameter_left = 0;
    uint32_t data_left = 0;
  };

  Result fail(Result error) noexcept;
  Result on_transport_header(Observer& observer) noexcept;
  Result on_capture(Observer& observer) noexcept;
  Result after_skip() noexcept;
  Result report(const Message& message, Observer& observer) noexcept;
  void start_capture(uint32_t offset) noexcept;
  void skip_to(uint32_t offset) noexcept;
  void end_of_packet() noexcept;
  Result smb1(Observer& observer) noexcept;
  Result smb2(Observer& observer) noexcept;
  Message smb1_message() const noexcept;
  uint32_t check_transaction(const Message& m) noexcept;
  void scan_dialect_byte(uint8_t byte) noexcept;
  Transaction* find_transaction(const Message& m) noexcept;
  void open_transaction(const Message& m, TransactionKind kind, uint32_t parameter_left,
                        uint32_t data_left) noexcept;
  uint32_t continue_transaction(const Message& m, TransactionKind kind, uint32_t parameter_count,
                                uint32_t data_count) noexcept;

  Transaction transactions_[kMaxTransactions] = {};
  uint8_t capture_[kCaptureBytes] = {};
  uint8_t header_[4] = {};
  uint8_t header_length_ = 0;
  uint8_t captured_ = 0;
  uint8_t capture_want_ = 0;
  Transport transport_;
  State state_ = State::header;
  Result result_ = Result::ok;
  uint8_t next_transaction_ = 0;  // round-robin victim when the table is full
  bool transactions_overflowed_ = false;
  // NEGOTIATE dialect scan ([MS-CIFS] 2.2.4.52.1: 0x02, NUL-terminated string, repeated).
  bool scan_in_string_ = false;
  bool scan_broken_ = false;
  bool smb2_offered_ = false;
  uint8_t scan_matched_ = 0;
  uint32_t packet_length_ = 0;   // current session packet (after the 4-byte header)
  uint32_t position_ = 0;        // bytes of it consumed
  uint32_t capture_offset_ = 0;  // where the captured header starts in the packet
  uint32_t skip_to_ = 0;         // skip state: consume up to this offset
  uint32_t compound_index_ = 0;
  uint32_t indicators_seen_ = 0;
  uint32_t messages_ = 0;
};

}  // namespace cordon::engine::smb
