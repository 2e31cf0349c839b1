// TcpStream: bounded, in-order reassembly of one direction of a TCP connection, for the
// inspectors that need the byte stream (DICOM, HL7, SMB, RDP, signatures).
//
// Threads: owned by the worker that owns the flow; fixed size, never allocates.
//
// The engine is inline, so it forwards segments and keeps a copy only where needed:
//  * An in-order segment is delivered to the inspectors at once, followed by any buffered
//    segments it makes contiguous. If an inspector objects, the segment is dropped.
//  * An out-of-order segment is copied into a small per-direction buffer and forwarded:
//    the receiving TCP cannot hand those bytes to its application before the gap is
//    filled, and the segment that fills the gap is inspected together with them (and
//    dropped if the assembled bytes are refused). A pattern split across segments, sent
//    in tiny segments or out of order is therefore seen exactly as if sent in one piece.
//  * Overlaps: the first copy of a byte wins (what we inspected is what the receiver
//    keeps). A later copy of a byte that differs from the first - against the buffered
//    out-of-order bytes, or the last kTailBytes delivered - is a conflicting overlap, an
//    evasion attempt, and is refused.
//  * Limits: at most kMaxSegments out-of-order segments and kBufferBytes buffered bytes
//    per direction, and data at most kMaxWindow bytes ahead; a segment over the limit is
//    refused (the sender retransmits it later, when it may fit).
#pragma once

#include <cstdint>
#include <cstring>

namespace cordon::engine {

enum class StreamResult : uint8_t {
  ok,        // accepted (delivered or buffered)
  refused,   // the sink refused delivered bytes
  conflict,  // overlapping copy differs from the first
  limit,     // out-of-order buffer or window limit
};

class TcpStream {
 public:
  static constexpr uint32_t kMaxSegments = 8;
  static constexpr uint32_t kBufferBytes = 8192;
  static constexpr uint32_t kTailBytes = 1024;
  static constexpr uint32_t kMaxWindow = 1u << 20;

  // `next_seq`: the first data byte's sequence number (ISN + 1).
  void start(uint32_t next_seq) noexcept {
    next_ = next_seq;
    first_ = next_seq;
    started_ = true;
    segments_ = 0;
    buffered_ = 0;
    tail_length_ = 0;
  }
  // Forgets everything (a slot being reused); the buffers are not cleared.
  void reset() noexcept {
    started_ = false;
    segments_ = 0;
    buffered_ = 0;
    tail_length_ = 0;
  }
  bool started() const { return started_; }
  // While a sink runs: the bytes delivered just before the chunk it is given (up to
  // kTailBytes) and how many bytes were delivered before that chunk in all.
  const uint8_t* tail() const { return tail_; }
  uint32_t tail_length() const { return tail_length_; }
  uint32_t delivered() const { return next_ - first_; }
  uint32_t next_seq() const { return next_; }
  uint32_t buffered_bytes() const { return buffered_; }

  // Accepts the payload of one segment. `sink(const uint8_t*, size_t) -> bool` receives
  // in-order bytes; returning false refuses them (the segment is then dropped).
  template <typename Sink>
  StreamResult accept(uint32_t seq, const uint8_t* data, uint32_t length, Sink&& sink) noexcept {
    if (length == 0) return StreamResult::ok;
    auto ahead = static_cast<int32_t>(seq - next_);
    if (ahead < 0) {
      // Starts before the next expected byte: the delivered part must match the tail.
      const uint32_t old = static_cast<uint32_t>(-static_cast<int64_t>(ahead)) < length
                               ? static_cast<uint32_t>(-static_cast<int64_t>(ahead))
                               : length;
      if (!matches_tail(seq, data, old)) return StreamResult::conflict;
      if (old == length) return StreamResult::ok;  // a plain retransmission
      seq += old;
      data += old;
      length -= old;
      ahead = 0;
    }
    if (!matches_buffered(seq, data, length)) return StreamResult::conflict;
    if (ahead > 0) return buffer(seq, data, length);
    if (!deliver(data, length, sink)) return StreamResult::refused;
    return drain(sink) ? StreamResult::ok : StreamResult::refused;
  }

 private:
  struct Segment {
    uint32_t seq;
    uint16_t length;
    uint16_t offset;  // into buffer_
  };

  template <typename Sink>
  bool deliver(const uint8_t* data, uint32_t length, Sink& sink) {
    if (!sink(data, static_cast<size_t>(length))) return false;
    next_ += length;
    remember(data, length);
    return true;
  }

  // Delivers buffered segments that the stream has reached, in sequence order.
  template <typename Sink>
  bool drain(Sink& sink) {
    for (;;) {
      uint32_t found = kMaxSegments;
      for (uint32_t i = 0; i < segments_; ++i) {
        if (static_cast<int32_t>(segment_[i].seq - next_) <= 0) {
          found = i;
          break;
        }
      }
      if (found == kMaxSegments) return true;
      const Segment s = segment_[found];
      const auto skip = static_cast<uint32_t>(next_ - s.seq);
      // Deliver from the buffer before removing (removal compacts it); the sink only reads.
      if (skip < s.length && !deliver(buffer_ + s.offset + skip, s.length - skip, sink)) {
        return false;
      }
      remove(found);
    }
  }

  StreamResult buffer(uint32_t seq, const uint8_t* data, uint32_t length) noexcept;
  bool matches_tail(uint32_t seq, const uint8_t* data, uint32_t length) const noexcept;
  bool matches_buffered(uint32_t seq, const uint8_t* data, uint32_t length) const noexcept;
  void remember(const uint8_t* data, uint32_t length) noexcept;
  void remove(uint32_t index) noexcept;

  uint32_t next_ = 0;
  uint32_t first_ = 0;
  bool started_ = false;
  uint32_t segments_ = 0;
  uint32_t buffered_ = 0;
  uint32_t tail_length_ = 0;
  Segment segment_[kMaxSegments] = {};
  uint8_t buffer_[kBufferBytes] = {};
  uint8_t tail_[kTailBytes] = {};
};

}  // namespace cordon::engine
