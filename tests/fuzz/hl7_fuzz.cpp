// Fuzz target for the HL7/MLLP parser. The first input byte chooses how the rest is split
// (and whether the observer refuses a message); the rest is the stream. Invariants: the
// stream fed whole, in 1-byte pieces and in random pieces gives the same observer calls and
// result (the engine feeds whatever segmentation the wire had); reported fields stay within
// their documented bounds; nothing is read outside the pieces (each piece is an exact-size
// heap copy, so ASan sees any overread).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "dataplane/engine/inspect/hl7.h"
#include "tests/fuzz/pieces.h"

namespace {

using cordon::fuzz::Split;

using cordon::engine::hl7::Decision;
using cordon::engine::hl7::Observer;
using cordon::engine::hl7::Parser;
using cordon::engine::hl7::Result;

void require(bool condition) {
  if (!condition) __builtin_trap();
}

// Hashes every call, checks what it is given, and refuses the n-th message if asked to.
class Trace final : public Observer {
 public:
  explicit Trace(uint32_t reject_call) : reject_call_(reject_call) {}
  Decision on_message(std::string_view type, std::string_view application,
                      std::string_view facility) noexcept override {
    require(!type.empty() && type.size() <= Parser::kMaxMessageTypeField);
    require(type.front() != '^' && type.back() != '^');
    require(application.size() <= Parser::kMaxHdField && facility.size() <= Parser::kMaxHdField);
    for (char c : type)
      require(c == '^' || c == '_' || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
              (c >= 'a' && c <= 'z'));
    mix(type);
    mix(application);
    mix(facility);
    return ++calls == reject_call_ ? Decision::reject : Decision::accept;
  }
  uint64_t hash = 14695981039346656037ull;
  uint32_t calls = 0;

 private:
  void mix(std::string_view s) {
    for (char c : s) hash = (hash ^ static_cast<uint8_t>(c)) * 1099511628211ull;
    hash = (hash ^ 0x100) * 1099511628211ull;  // field boundary
  }
  uint32_t reject_call_;
};

struct Run {
  Result result;
  uint64_t hash;
  uint32_t calls;
  uint32_t messages;
  bool idle;
  bool operator==(const Run&) const = default;
};

Run run(const std::vector<uint8_t>& stream, Split split, uint32_t seed, uint32_t reject_call) {
  Parser parser;
  Trace trace(reject_call);
  const Result last = cordon::fuzz::feed_in_pieces<Result>(
      stream, split, seed, [&](const uint8_t* piece, size_t n) {
        const Result r = parser.feed(piece, n, trace);
        require(r == parser.result());
        return r;
      });
  return {last, trace.hash, trace.calls, parser.messages(), parser.idle()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint32_t control = data[0];
  const uint32_t reject_call = (control & 0x80) != 0 ? 1 + (control & 0x03) : 0;
  const std::vector<uint8_t> stream(data + 1, data + size);
  const Run whole = run(stream, Split::whole, control, reject_call);
  require(run(stream, Split::bytes, control, reject_call) == whole);
  require(run(stream, Split::random, control, reject_call) == whole);
  require(whole.messages <= whole.calls);
  require(whole.result != Result::rejected_by_policy || whole.calls == reject_call);
  return 0;
}
