// TOTP second factor (RFC 6238 over RFC 4226 HOTP): HMAC-SHA1, 6 digits, 30 s steps,
// accepted one step either side of now. Base32 (RFC 4648, upper case, no padding on
// output; padding and lower case accepted on input) for the secret users type or scan.
//
// Threads: plain functions, no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cordon::webui::auth {

inline constexpr int64_t kTotpStep = 30;        // seconds
inline constexpr int64_t kTotpWindow = 1;       // steps accepted either side of now
inline constexpr size_t kTotpSecretBytes = 20;  // 160 bits, RFC 4226's recommendation

std::string base32_encode(std::string_view bytes);
// nullopt on a character outside the alphabet, padding in the middle, or leftover bits
// that are not zero (a non-canonical encoding).
std::optional<std::string> base32_decode(std::string_view text);

// HOTP value of `counter` under `key`, truncated to `digits` decimal digits.
uint32_t hotp(std::string_view key, uint64_t counter, unsigned digits = 6);

// The step (unix_time / 30) whose 6-digit code equals `code` within ±kTotpWindow steps
// of `unix_time` and is later than `last_used_step` (a used code cannot be used again);
// nullopt otherwise. `code` must be exactly 6 ASCII digits.
std::optional<int64_t> totp_match(std::string_view key, std::string_view code, int64_t unix_time,
                                  int64_t last_used_step);

}  // namespace cordon::webui::auth
