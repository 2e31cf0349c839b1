// Fuzz target: policy documents (untrusted text from the API and from files).
// Checks, beyond "no crash, no sanitizer report":
//   * a result is either a document or a non-empty error list, never both or neither;
//   * a document survives to_json -> parse_policy unchanged, and its canonical form is a
//     fixed point (to_json of the re-parsed document is the same text).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dataplane/engine/policy_document.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using cordon::engine::parse_policy;
  using cordon::engine::to_json;

  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto result = parse_policy(text);
  if (result.document.has_value() != result.errors.empty()) __builtin_trap();
  if (!result.document) return 0;

  const std::string canonical = to_json(*result.document);
  const auto again = parse_policy(canonical);
  if (!again.document || !(*again.document == *result.document)) __builtin_trap();
  if (to_json(*again.document) != canonical) __builtin_trap();
  return 0;
}
