// RDP connection setup, client -> server direction of TCP 3389: an incremental,
// allocation-free parser that finds the static virtual channels a client requests, for the
// `cve-2019-0708` (BlueKeep) patch (DESIGN.md §3, dataplane/engine/patches/catalog.cpp).
//
// What is parsed ([MS-RDPBCGR] 1.3.1.1 "Connection Sequence"):
//  1. TPKT (RFC 1006 §6: version 3, reserved 0, 16-bit length) carrying an X.224 Connection
//     Request (ISO 8073 / [MS-RDPBCGR] 2.2.1.1: LI consistent with the TPKT length, code
//     0xE0), whose variable part may hold a "Cookie: ...\r\n" (cookie or routing token), an
//     rdpNegReq (type 1, length 8, requestedProtocols) and an rdpCorrelationInfo (type 6,
//     length 36), in that order.
//  2. Then either a TLS record (first byte 0x16: the server selected TLS, CredSSP or
//     RDSTLS) or a TPKT with an X.224 Data TPDU (02 F0 80) carrying the MCS Connect Initial
//     (T.125: BER [APPLICATION 101] = 7F 65; callingDomainSelector, calledDomainSelector,
//     upwardFlag, three DomainParameters, userData), whose userData is a T.124 GCC
//     Conference Create Request in PER ([MS-RDPBCGR] 2.2.1.3: object id 0.0.20.124.0.1,
//     h221NonStandard key "Duca") followed by the client data blocks (TS_UD_HEADER type,
//     length). In the CS_NET block (0xC003, [MS-RDPBCGR] 2.2.1.3.4) every CHANNEL_DEF name
//     (8 bytes, NUL-padded) is reported; at most 31 (CHANNEL_MAX_COUNT).
//  Everything after the Connect Initial, and everything after TLS starts, passes unparsed
//  (Result::ok): the patch needs only the channel request.
//
// BlueKeep: termdd.sys binds a client-requested static channel named "MS_T120" (compared
// case-insensitively) to its internal MS_T120 channel; freeing it later is the
// use-after-free of CVE-2019-0708. No legitimate client requests it (mstsc, FreeRDP and
// rdesktop request "rdpdr", "rdpsnd", "cliprdr", "drdynvc", ...), public PoCs and scanners
// do (zerosum0x0/CVE-2019-0708, Metasploit cve_2019_0708_bluekeep). Like the public IDS
// rules (NCC Group's Suricata rule "RDP connection setup with MS_T120 channel, potential
// CVE-2019-0708", May 2019: TPKT, X.224, the GCC object id, CS_NET, "MS_T120\0"; Zeek
// scripts on rdp_client_network_data), a channel whose first seven characters equal
// "MS_T120" sets Facts::ms_t120_requested - in any case, because termdd.sys matches channel
// names case-insensitively, so "ms_t120" binds the same channel. As defence in depth
// against a parse that differs from the server's, the bytes "MS_T120" (any case) anywhere in
// the Connect Initial set it too.
//
// Encryption: when the client's rdpNegReq asks for PROTOCOL_SSL/HYBRID/... and the server
// agrees, the MCS data travels inside TLS and is invisible here: Facts::encrypted is set
// and Observer::on_encrypted called. The caller decides (allow, or require standard RDP
// security for devices with the patch); detection of BlueKeep over TLS then relies on the
// server being patched or on NLA (CredSSP authenticates before MCS). IDS rules have the same
// blind spot.
//
// Only the client -> server direction is parsed; do not attach this to the server direction.
//
// Threads: one instance per flow direction, owned by the worker that owns the flow; not
// shared, no locks. Fixed size, never allocates, never throws, bounded work per byte, never
// reads outside [data, data + length).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cordon::engine::rdp {

// ok, or the first error; a parser that returned an error keeps returning it.
enum class Result : uint8_t {
  ok,
  bad_tpkt,            // version not 3, reserved byte not 0, length too short for its TPDU
  bad_x224,            // not a Connection Request first / a Data TPDU (02 F0 80) after it,
                       // LI inconsistent with the TPKT length, malformed cookie
  bad_negotiation,     // rdpNegReq or rdpCorrelationInfo with a wrong type, length or order
  not_tpkt_or_tls,     // after the Connection Request: neither a TPKT nor a TLS record
  bad_mcs,             // not a BER MCS Connect Initial, or lengths inconsistent with the TPKT
  mcs_too_large,       // Connect Initial over kMaxConnectInitial bytes
  bad_gcc,             // not a GCC Conference Create Request as [MS-RDPBCGR] 2.2.1.3 sends it
  bad_client_data,     // client data block or CS_NET inconsistent with its length
  too_many_channels,   // CS_NET channelCount over 31
  rejected_by_policy,  // the observer returned Decision::reject
};

// Stable lower-case label ("bad-mcs") for counters and events.
std::string_view to_string(Result result) noexcept;

enum class Decision : uint8_t { accept, reject };

// rdpNegReq.requestedProtocols bits ([MS-RDPBCGR] 2.2.1.1.1).
namespace protocol {
inline constexpr uint32_t ssl = 0x01;
inline constexpr uint32_t hybrid = 0x02;  // CredSSP
inline constexpr uint32_t rdstls = 0x04;
inline constexpr uint32_t hybrid_ex = 0x08;
inline constexpr uint32_t rdsaad = 0x10;
inline constexpr uint32_t any_tls = ssl | hybrid | rdstls | hybrid_ex | rdsaad;
}  // namespace protocol

struct Facts {
  bool connection_request = false;   // X.224 Connection Request parsed
  bool negotiation_request = false;  // ... with an rdpNegReq
  uint32_t requested_protocols = 0;  // rdpNegReq.requestedProtocols; 0 = standard RDP security
  bool encrypted = false;            // a TLS record followed: the rest is opaque
  bool connect_initial = false;      // MCS Connect Initial completely parsed
  uint8_t channel_count = 0;         // static channels requested (CS_NET channelCount)
  bool ms_t120_requested = false;    // see the header comment

  bool tls_requested() const noexcept { return (requested_protocols & protocol::any_tls) != 0; }
};

class Observer {
 public:
  // Each callback sees the facts so far; references and views are valid only during the
  // call. Called in stream order, at the byte that completes what they report.
  virtual Decision on_connection_request(const Facts& facts) noexcept {
    (void)facts;
    return Decision::accept;
  }
  virtual Decision on_encrypted(const Facts& facts) noexcept {
    (void)facts;
    return Decision::accept;
  }
  // Every CS_NET channel, name up to its first NUL (at most 8 bytes, raw).
  virtual Decision on_channel(std::string_view name, const Facts& facts) noexcept {
    (void)name;
    (void)facts;
    return Decision::accept;
  }
  virtual Decision on_connect_initial(const Facts& facts) noexcept {
    (void)facts;
    return Decision::accept;
  }

 protected:
  ~Observer() = default;
};

class Parser {
 public:
  // A Connect Initial is usually under 1 KiB; four times that is generous and bounds the
  // work spent on one.
  static constexpr uint32_t kMaxConnectInitial = 4096;
  static constexpr uint32_t kMaxChannels = 31;  // CHANNEL_MAX_COUNT

  // Consumes the next in-order client -> server bytes. Any split of the stream gives the
  // same observer calls and the same result. `data` may be null when `length` is 0.
  Result feed(const uint8_t* data, size_t length, Observer& observer) noexcept;

  Result result() const noexcept { return result_; }
  const Facts& facts() const noexcept { return facts_; }
  // True once nothing more is parsed (TLS started or the Connect Initial was read).
  bool done() const noexcept { return step_ == Step::opaque; }

 private:
  enum class Step : uint8_t {
    tpkt_request,   // TPKT header of the Connection Request
    request_fixed,  // X.224 CR: LI, code, DST-REF, SRC-REF, class
    request_item,   // first byte of the next variable-part item
    cookie_prefix,  // "Cookie: "
    cookie_body,    // up to CR
    cookie_lf,
    negotiation,       // rdpNegReq (8 bytes)
    correlation,       // rdpCorrelationInfo header (4), then 32 skipped
    request_next,      // boundary: next item or end of the Connection Request
    next_pdu,          // 0x03 TPKT or 0x16 TLS
    tpkt_data,         // TPKT header of the Data TPDU
    x224_data,         // 02 F0 80
    mcs_tag,           // 7F 65
    mcs_length,        // BER length (1-3 bytes)
    element_tag,       // Connect Initial member tag
    element_length,    // its BER length
    gcc_key,           // 00 05 00 14 7C 00 01
    gcc_length,        // PER length (1-2 bytes)
    ccr_header,        // 00 08: ConferenceCreateRequest, userData present
    conference_name,   // NumericString length (digits skipped after)
    conference_flags,  // the byte after the conference name
    user_data_header,  // 01 C0 00 "Duca"
    user_data_length,  // PER length of the client data blocks
    block_next,        // boundary: next client data block or the end of the blocks
    block_header,      // TS_UD_HEADER
    channel_count,     // CS_NET channelCount
    channel_next,      // boundary: next CHANNEL_DEF or the rest of the block
    channel_name,      // CHANNEL_DEF name (8), then options (4) skipped
    mcs_done,          // boundary: Connect Initial complete
    opaque,            // nothing more to parse
  };

  Result fail(Result error) noexcept;
  Result byte(uint8_t value, Observer& observer) noexcept;
  Result on_field(Observer& observer) noexcept;
  void expect(Step step, uint8_t bytes) noexcept;
  Result skip_then(uint32_t bytes, Step step, uint8_t want, Observer& observer) noexcept;
  Result request_next(Observer& observer) noexcept;
  Result on_request_item() noexcept;
  Result on_connect_initial_field(Observer& observer) noexcept;
  Result on_client_data_field(Observer& observer) noexcept;
  Result on_mcs_length(uint32_t length, uint32_t header_bytes) noexcept;
  Result on_element(uint32_t length, Observer& observer) noexcept;
  Result block_next(Observer& observer) noexcept;
  Result channel_next(Observer& observer) noexcept;
  Result on_channel_name(Observer& observer) noexcept;
  Result mcs_done(Observer& observer) noexcept;
  // BER ([MS-RDPBCGR] uses X.690 definite lengths) and PER (X.691 aligned) length
  // determinants: 0 = need more bytes (want_ raised), 1 = done, -1 = malformed.
  int ber_length(uint32_t& length, uint32_t& bytes, uint32_t end) noexcept;
  int per_length(uint32_t& length, uint32_t end) noexcept;
  bool fits(uint32_t bytes, uint32_t end) const noexcept { return end - position_ >= bytes; }

  Facts facts_;
  uint8_t buffer_[8] = {};
  uint8_t have_ = 0;
  uint8_t want_ = 4;
  Step step_ = Step::tpkt_request;
  Result result_ = Result::ok;
  bool in_mcs_ = false;  // position_ counts Connect Initial content bytes
  bool cookie_seen_ = false;
  uint8_t element_ = 0;       // Connect Initial member being read (0..6)
  uint8_t t120_matched_ = 0;  // raw "MS_T120" scan
  uint16_t tpkt_length_ = 0;
  uint16_t request_left_ = 0;  // Connection Request variable part still to read
  uint32_t skip_ = 0;
  uint32_t position_ = 0;  // Connect Initial content bytes consumed
  uint32_t mcs_end_ = 0;   // ends of the nested regions, as positions
  uint32_t user_data_end_ = 0;
  uint32_t gcc_end_ = 0;
  uint32_t blocks_end_ = 0;
  uint32_t block_start_ = 0;
  uint32_t block_end_ = 0;
  uint32_t channels_left_ = 0;
};

}  // namespace cordon::engine::rdp
