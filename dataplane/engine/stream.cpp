#include "dataplane/engine/stream.h"

namespace cordon::engine {

StreamResult TcpStream::buffer(uint32_t seq, const uint8_t* data, uint32_t length) noexcept {
  if (static_cast<uint32_t>(seq - next_) + length > kMaxWindow) return StreamResult::limit;
  if (segments_ == kMaxSegments || buffered_ + length > kBufferBytes) return StreamResult::limit;
  for (uint32_t i = 0; i < segments_; ++i) {
    // An exact duplicate of a buffered segment adds nothing (its bytes matched above).
    if (segment_[i].seq == seq && segment_[i].length >= length) return StreamResult::ok;
  }
  segment_[segments_++] =
      Segment{seq, static_cast<uint16_t>(length), static_cast<uint16_t>(buffered_)};
  std::memcpy(buffer_ + buffered_, data, length);
  buffered_ += length;
  return StreamResult::ok;
}

bool TcpStream::matches_tail(uint32_t seq, const uint8_t* data, uint32_t length) const noexcept {
  // tail_ holds the bytes [next_ - tail_length_, next_). Older bytes cannot be checked: the
  // receiver kept the first copy, which was inspected.
  for (uint32_t i = 0; i < length; ++i) {
    const auto behind = static_cast<uint32_t>(next_ - (seq + i));  // 1..: bytes before next_
    if (behind <= tail_length_ && data[i] != tail_[tail_length_ - behind]) return false;
  }
  return true;
}

bool TcpStream::matches_buffered(uint32_t seq, const uint8_t* data,
                                 uint32_t length) const noexcept {
  for (uint32_t s = 0; s < segments_; ++s) {
    const Segment& seg = segment_[s];
    // Overlap of [seq, seq+length) with [seg.seq, seg.seq+seg.length), in sequence space.
    const auto from = static_cast<int32_t>(seg.seq - seq) > 0 ? seg.seq : seq;
    const uint32_t seg_end = seg.seq + seg.length;
    const uint32_t end = seq + length;
    const uint32_t to = static_cast<int32_t>(seg_end - end) < 0 ? seg_end : end;
    for (uint32_t p = from; static_cast<int32_t>(to - p) > 0; ++p) {
      if (data[p - seq] != buffer_[seg.offset + (p - seg.seq)]) return false;
    }
  }
  return true;
}

void TcpStream::remember(const uint8_t* data, uint32_t length) noexcept {
  if (length >= kTailBytes) {
    std::memcpy(tail_, data + length - kTailBytes, kTailBytes);
    tail_length_ = kTailBytes;
    return;
  }
  const uint32_t keep = tail_length_ + length > kTailBytes ? kTailBytes - length : tail_length_;
  std::memmove(tail_, tail_ + tail_length_ - keep, keep);
  std::memcpy(tail_ + keep, data, length);
  tail_length_ = keep + length;
}

void TcpStream::remove(uint32_t index) noexcept {
  const Segment gone = segment_[index];
  const uint32_t after = gone.offset + gone.length;
  std::memmove(buffer_ + gone.offset, buffer_ + after, buffered_ - after);
  buffered_ -= gone.length;
  for (uint32_t i = index; i + 1 < segments_; ++i) segment_[i] = segment_[i + 1];
  --segments_;
  for (uint32_t i = 0; i < segments_; ++i) {
    if (segment_[i].offset > gone.offset)
      segment_[i].offset = static_cast<uint16_t>(segment_[i].offset - gone.length);
  }
}

}  // namespace cordon::engine
