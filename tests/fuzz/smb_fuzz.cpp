// Fuzz target for the SMB parser. The first input byte chooses the transport (445 or 139),
// how the rest is split and whether the observer refuses a message; the rest is the stream.
// Invariants: whole, 1-byte and random-piece feeds give the same observer calls and result;
// reported messages are consistent with their dialect; nothing is read outside the pieces
// (exact-size heap copies, so ASan sees any overread).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "dataplane/engine/inspect/smb.h"
#include "tests/fuzz/pieces.h"

namespace {

using cordon::fuzz::Split;

using namespace cordon::engine::smb;

void require(bool condition) {
  if (!condition) __builtin_trap();
}

class Trace final : public Observer {
 public:
  explicit Trace(uint32_t reject_call) : reject_call_(reject_call) {}
  Decision on_message(const Message& m) noexcept override {
    switch (m.dialect) {
      case Dialect::netbios_control:
        require(m.netbios_type != 0 && m.indicators == 0);
        break;
      case Dialect::smb1:
        require(m.length >= 35 && (m.indicators & indicator::smb1) != 0);
        require(m.smb2_command == 0 && m.message_id == 0);
        break;
      case Dialect::smb2:
        require(m.length >= 64 && m.indicators == 0 && m.command == 0);
        break;
      case Dialect::smb3_encrypted:
      case Dialect::smb3_compressed:
        require(m.indicators == 0 && m.compound_index == 0);
        break;
    }
    require(m.compound_index == 0 || m.dialect == Dialect::smb2);
    const uint64_t fields[] = {static_cast<uint64_t>(m.dialect),
                               m.netbios_type,
                               m.reply,
                               m.length,
                               m.status,
                               m.indicators,
                               m.command,
                               m.word_count,
                               m.flags2,
                               m.tid,
                               m.pid,
                               m.uid,
                               m.mid,
                               m.subcommand,
                               m.smb2_dialects_offered,
                               m.smb2_command,
                               m.message_id,
                               m.compound_index};
    for (uint64_t f : fields) hash = (hash ^ f) * 1099511628211ull;
    return ++calls == reject_call_ ? Decision::reject : Decision::accept;
  }
  uint64_t hash = 14695981039346656037ull;
  uint32_t calls = 0;

 private:
  uint32_t reject_call_;
};

struct Run {
  Result result;
  uint64_t hash;
  uint32_t calls;
  uint32_t indicators;
  bool idle;
  bool operator==(const Run&) const = default;
};

Run run(const std::vector<uint8_t>& stream, Transport transport, Split split, uint32_t seed,
        uint32_t reject_call) {
  Parser parser(transport);
  Trace trace(reject_call);
  const Result last = cordon::fuzz::feed_in_pieces<Result>(
      stream, split, seed, [&](const uint8_t* piece, size_t n) {
        const Result r = parser.feed(piece, n, trace);
        require(r == parser.result());
        return r;
      });
  require(trace.calls == parser.messages());
  return {last, trace.hash, trace.calls, parser.indicators_seen(), parser.idle()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint32_t control = data[0];
  const Transport transport = (control & 0x01) != 0 ? Transport::netbios : Transport::direct_tcp;
  const uint32_t reject_call = (control & 0x80) != 0 ? 1 + ((control >> 1) & 0x03) : 0;
  const std::vector<uint8_t> stream(data + 1, data + size);
  const Run whole = run(stream, transport, Split::whole, control, reject_call);
  require(run(stream, transport, Split::bytes, control, reject_call) == whole);
  require(run(stream, transport, Split::random, control, reject_call) == whole);
  require(whole.result != Result::rejected_by_policy || whole.calls == reject_call);
  return 0;
}
