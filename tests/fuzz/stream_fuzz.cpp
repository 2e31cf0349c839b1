// Fuzzes TcpStream with arbitrary segment sequences. Invariant: every delivered byte is
// the first copy of that stream position the stream accepted (first copy wins), bytes
// are delivered in order without gaps, and nothing is read out of bounds.
#include <cstdint>
#include <cstring>

#include "dataplane/engine/stream.h"

namespace {

constexpr uint32_t kIsn = 0xffffff00;  // exercise sequence-number wrap-around
constexpr uint32_t kSpace = 1 << 16;

struct Checker {
  uint8_t first_copy[kSpace];
  bool seen[kSpace];
  uint32_t delivered = 0;
  bool operator()(const uint8_t* data, size_t length) {
    for (size_t i = 0; i < length; ++i) {
      const uint32_t p = delivered + static_cast<uint32_t>(i);
      if (p >= kSpace || !seen[p] || first_copy[p] != data[i]) __builtin_trap();
    }
    delivered += static_cast<uint32_t>(length);
    return true;
  }
};

Checker checker;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::memset(checker.seen, 0, sizeof checker.seen);
  checker.delivered = 0;
  cordon::engine::TcpStream stream;
  stream.start(kIsn);
  // Each segment: 2 bytes offset (relative to the start), 1 byte length, then the bytes.
  size_t at = 0;
  while (at + 3 <= size) {
    const uint32_t offset = static_cast<uint32_t>(data[at] | data[at + 1] << 8) % (kSpace - 256);
    size_t length = data[at + 2];
    at += 3;
    if (length > size - at) length = size - at;
    // Record first copies only for bytes the stream will hold as "first": the stream
    // refuses a segment whole on conflict or limit, so record after an ok result.
    uint8_t before_seen[256];
    for (size_t i = 0; i < length; ++i) before_seen[i] = checker.seen[offset + i];
    for (size_t i = 0; i < length; ++i) {
      if (!checker.seen[offset + i]) {
        checker.seen[offset + i] = true;
        checker.first_copy[offset + i] = data[at + i];
      }
    }
    const auto result =
        stream.accept(kIsn + offset, data + at, static_cast<uint32_t>(length), checker);
    if (result != cordon::engine::StreamResult::ok) {
      // Not accepted: forget what it would have introduced.
      for (size_t i = 0; i < length; ++i) checker.seen[offset + i] = before_seen[i];
    }
    at += length;
  }
  return 0;
}
