// Fuzz target for the DICOM inspector (dataplane/engine/inspect/dicom.h).
//
// Input: one chunking byte, then records [side byte (bit 0: 0 requestor, 1 acceptor)]
// [16-bit little-endian length][bytes] (a length past the end takes what is left), so one
// input drives both directions of an association. The records are fed twice: whole, and
// cut into pieces chosen by the chunking byte (bit 7 set: whole records; otherwise pieces
// of 1 + (byte & 0x0f) bytes, restarting at (byte >> 4) & 7 offset). Beyond the
// sanitizers' checks: both runs must report the same facts and result (split
// invariance), a dead parser must stay dead, and every reported string must have the
// shape the parser promises. A violation traps so the fuzzer keeps the input.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "dataplane/engine/inspect/dicom.h"

namespace {

using namespace cordon::engine::dicom;

void require(bool condition) {
  if (!condition) __builtin_trap();
}

void check_uid(std::string_view uid, bool may_be_empty) {
  require(uid.size() <= kMaxUidLength);
  require(may_be_empty || !uid.empty());
  for (char c : uid) require((c >= '0' && c <= '9') || c == '.');
}

void check_ae(std::string_view ae) {
  require(!ae.empty() && ae.size() <= kAeTitleLength);
  require(ae.front() != ' ' && ae.back() != ' ');
  for (char c : ae) require(c >= 0x20 && c <= 0x7E && c != '\\');
}

// Folds every fact into a hash (FNV-1a) and checks its shape; never stops.
class Digest : public Observer {
 public:
  uint64_t hash = 1469598103934665603ull;
  uint64_t facts = 0;

  Action on_presentation_context(uint8_t id, std::string_view uid) noexcept override {
    require((id & 1) != 0);
    check_uid(uid, false);
    return add(1, id, 0, uid);
  }
  Action on_associate_request(std::string_view calling, std::string_view called,
                              uint32_t max) noexcept override {
    check_ae(calling);
    check_ae(called);
    add(2, max, 0, calling);
    return add(2, 0, 0, called);
  }
  Action on_presentation_context_result(uint8_t id, uint8_t result) noexcept override {
    require(result <= 4);
    return add(3, id, result, {});
  }
  Action on_associate_accept(uint32_t max) noexcept override { return add(4, max, 0, {}); }
  Action on_associate_reject(uint8_t result, uint8_t source, uint8_t reason) noexcept override {
    return add(5, result, static_cast<uint32_t>(source << 8 | reason), {});
  }
  Action on_command(const Command& c) noexcept override {
    require(!command_name(c.command_field).empty());
    check_uid(c.sop_class_uid, true);
    if (!c.move_destination.empty()) check_ae(c.move_destination);
    add(6, c.command_field, c.presentation_context_id, c.sop_class_uid);
    return add(6, static_cast<uint32_t>(c.side), c.status + (c.has_data_set ? 0x10000u : 0),
               c.move_destination);
  }
  Action on_release(Side side, bool response) noexcept override {
    return add(7, static_cast<uint32_t>(side), response, {});
  }
  Action on_abort(Side side, uint8_t source, uint8_t reason) noexcept override {
    return add(8, static_cast<uint32_t>(side), static_cast<uint32_t>(source << 8 | reason), {});
  }

 private:
  Action add(uint32_t kind, uint32_t a, uint32_t b, std::string_view s) {
    ++facts;
    mix(kind);
    mix(a);
    mix(b);
    for (char c : s) mix(static_cast<uint8_t>(c));
    mix(0xFFFFFFFF);
    return Action::proceed;
  }
  void mix(uint32_t v) { hash = (hash ^ v) * 1099511628211ull; }
};

struct Record {
  Side side;
  const uint8_t* data;
  size_t size;
};

struct Result {
  Error error;
  uint64_t hash;
  uint64_t facts;
};

Result run(const std::vector<Record>& records, uint8_t chunking, bool whole) {
  Parser parser;
  Digest digest;
  Error error = Error::ok;
  size_t piece = 1 + (chunking & 0x0f);
  for (const Record& r : records) {
    if (error != Error::ok) break;
    if (whole) {
      error = parser.feed(r.side, r.data, r.size, digest);
      continue;
    }
    // Start each record with a shorter piece so cuts fall at varying offsets.
    size_t pos = 0;
    size_t first = std::min<size_t>(r.size, (chunking >> 4) & 7);
    if (first > 0) {
      error = parser.feed(r.side, r.data, first, digest);
      pos = first;
    }
    while (pos < r.size && error == Error::ok) {
      const size_t n = std::min(piece, r.size - pos);
      error = parser.feed(r.side, r.data + pos, n, digest);
      pos += n;
    }
  }
  require(error == parser.error());
  require((error == Error::ok) == (*parser.detail() == '\0'));
  if (error != Error::ok) {
    const uint64_t facts = digest.facts;
    const uint8_t byte = 0;
    require(parser.feed(Side::requestor, &byte, 1, digest) == error);
    require(parser.feed(Side::acceptor, &byte, 1, digest) == error);
    require(digest.facts == facts);
  }
  if (!parser.calling_ae().empty()) check_ae(parser.calling_ae());
  return {error, digest.hash, digest.facts};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // An exact-size copy so that ASan sees any read past the end.
  std::vector<uint8_t> input(data, data + size);
  const uint8_t chunking = input[0];
  std::vector<Record> records;
  size_t pos = 1;
  while (pos + 3 <= input.size()) {
    const Side side = (input[pos] & 1) != 0 ? Side::acceptor : Side::requestor;
    const size_t length = input[pos + 1] | (size_t{input[pos + 2]} << 8);
    pos += 3;
    const size_t n = std::min(length, input.size() - pos);
    records.push_back({side, input.data() + pos, n});
    pos += n;
  }
  const Result whole = run(records, chunking, true);
  const Result cut = run(records, chunking, (chunking & 0x80) != 0);
  require(whole.error == cut.error);
  require(whole.hash == cut.hash);
  require(whole.facts == cut.facts);
  return 0;
}
