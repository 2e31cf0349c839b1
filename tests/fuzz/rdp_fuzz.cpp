// Fuzz target for the RDP connection-setup parser. The first input byte chooses how the rest
// is split and whether the observer refuses; the rest is the client -> server stream.
// Invariants: whole, 1-byte and random-piece feeds give the same observer calls, facts and
// result; every reported channel name is at most 8 bytes and an MS_T120 name is always in
// the facts; nothing is read outside the pieces (exact-size heap copies, so ASan sees any
// overread).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "dataplane/engine/inspect/rdp.h"
#include "tests/fuzz/pieces.h"

namespace {

using cordon::fuzz::Split;

using namespace cordon::engine::rdp;

void require(bool condition) {
  if (!condition) __builtin_trap();
}

bool is_ms_t120(std::string_view name) {
  static constexpr char kName[] = "MS_T120";
  if (name.size() < 7) return false;
  for (size_t i = 0; i < 7; ++i) {
    char c = name[i];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
    if (c != kName[i]) return false;
  }
  return true;
}

class Trace final : public Observer {
 public:
  explicit Trace(uint32_t reject_call) : reject_call_(reject_call) {}
  Decision on_connection_request(const Facts& f) noexcept override {
    require(f.connection_request && !f.connect_initial && !f.encrypted);
    return event(1, f);
  }
  Decision on_encrypted(const Facts& f) noexcept override {
    require(f.connection_request && f.encrypted && !f.connect_initial);
    return event(2, f);
  }
  Decision on_channel(std::string_view name, const Facts& f) noexcept override {
    require(name.size() <= 8 && f.channel_count > 0);
    require(!is_ms_t120(name) || f.ms_t120_requested);
    for (char c : name) mix(static_cast<uint8_t>(c));
    return event(3, f);
  }
  Decision on_connect_initial(const Facts& f) noexcept override {
    require(f.connection_request && f.connect_initial && !f.encrypted);
    return event(4, f);
  }
  uint64_t hash = 14695981039346656037ull;
  uint32_t calls = 0;

 private:
  void mix(uint64_t v) { hash = (hash ^ v) * 1099511628211ull; }
  Decision event(uint64_t kind, const Facts& f) {
    mix(kind);
    mix(f.requested_protocols);
    mix(static_cast<uint64_t>(f.negotiation_request) | f.encrypted << 1 | f.connect_initial << 2 |
        f.ms_t120_requested << 3 | static_cast<uint64_t>(f.channel_count) << 8);
    return ++calls == reject_call_ ? Decision::reject : Decision::accept;
  }
  uint32_t reject_call_;
};

struct Run {
  Result result;
  uint64_t hash;
  uint32_t calls;
  bool done;
  bool t120;
  uint8_t channels;
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
  const Facts& f = parser.facts();
  require(!f.encrypted || !f.connect_initial);
  return {last, trace.hash, trace.calls, parser.done(), f.ms_t120_requested, f.channel_count};
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
  require(whole.result != Result::rejected_by_policy || whole.calls == reject_call);
  return 0;
}
