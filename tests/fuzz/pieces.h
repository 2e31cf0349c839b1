// Feeding one stream to an incremental inspector in pieces, for the fuzz targets of the
// stream parsers (HL7, SMB, RDP): whole, one byte at a time, or in random pieces. Each piece
// is an exact-size heap copy (one reused byte in 1-byte mode), so ASan catches any read
// outside it.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

namespace cordon::fuzz {

enum class Split { whole, bytes, random };

// Calls `feed(const uint8_t* piece, size_t length) -> Result` for successive pieces of
// `stream`, then once more with length 0 (piece null). Traps unless errors are sticky
// (Result{} is the parser's "ok"). Returns the last result.
template <typename Result, typename Feed>
Result feed_in_pieces(const std::vector<uint8_t>& stream, Split split, uint32_t seed, Feed&& feed) {
  Result last{};
  size_t at = 0;
  uint32_t state = seed * 2654435761u + 1;
  std::unique_ptr<uint8_t[]> piece;
  for (;;) {
    size_t n = stream.size() - at;
    if (split == Split::bytes) n = n > 0 ? 1 : 0;
    if (split == Split::random && n > 0) {
      state ^= state << 13;  // xorshift32: deterministic pieces for a given seed
      state ^= state >> 17;
      state ^= state << 5;
      n = 1 + state % (n < 64 ? n : 64);
    }
    if (split != Split::bytes || !piece) piece.reset(new uint8_t[n > 0 ? n : 1]);
    if (n > 0) std::memcpy(piece.get(), stream.data() + at, n);
    const Result r = feed(n > 0 ? piece.get() : nullptr, n);
    if (last != Result{} && r != last) __builtin_trap();  // errors are sticky
    last = r;
    at += n;
    if (n == 0) return last;
  }
}

}  // namespace cordon::fuzz
