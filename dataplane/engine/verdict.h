// Verdicts and drop reasons: what the engine decides for each packet.
// Plain values, safe to copy between threads.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace cordon::engine {

enum class DropReason : uint8_t {
#define CORDON_DROP_REASON(id, label, description) id,
#include "dataplane/engine/drop_reasons.def"
#undef CORDON_DROP_REASON
};

inline constexpr std::array kDropReasonLabels = {
#define CORDON_DROP_REASON(id, label, description) std::string_view{label},
#include "dataplane/engine/drop_reasons.def"
#undef CORDON_DROP_REASON
};

inline constexpr std::array kDropReasonDescriptions = {
#define CORDON_DROP_REASON(id, label, description) std::string_view{description},
#include "dataplane/engine/drop_reasons.def"
#undef CORDON_DROP_REASON
};

inline constexpr size_t kDropReasonCount = kDropReasonLabels.size();

constexpr std::string_view label(DropReason reason) {
  return kDropReasonLabels[static_cast<size_t>(reason)];
}

enum class Action : uint8_t {
  forward,
  drop,
  drop_and_reset,  // drop, and send a TCP RST back to the sender (built by the shell)
  // drop, and end the connection at both ends: a RST back to the sender and one on to
  // the receiver, as if from the sender (an inspected connection that broke the rules).
  drop_and_reset_both,
};

// Four bytes (alignas): a 3-byte struct is returned through byte stores and a wider
// reload that does not forward.
struct alignas(4) Verdict {
  Action action = Action::drop;  // deny by default
  DropReason reason = DropReason::no_policy;
  // Set when the packet was forwarded only because the device is in monitor or learn
  // mode: reason then says what enforce mode would have done.
  bool would_drop = false;
};

}  // namespace cordon::engine
