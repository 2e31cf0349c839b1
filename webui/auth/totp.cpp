#include "webui/auth/totp.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>

namespace cordon::webui::auth {

namespace {
constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

int base32_value(char c) {
  if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  const size_t at = kAlphabet.find(c);
  return at == std::string_view::npos ? -1 : static_cast<int>(at);
}
}  // namespace

std::string base32_encode(std::string_view bytes) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char byte : bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out.push_back(kAlphabet[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(buffer << (5 - bits)) & 31]);
  return out;
}

std::optional<std::string> base32_decode(std::string_view text) {
  const size_t end = text.find_last_not_of('=') + 1;  // npos + 1 == 0: all padding
  if (text.size() - end > 6) return std::nullopt;
  text = text.substr(0, end);
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    const int v = base32_value(c);
    if (v < 0) return std::nullopt;  // includes '=' before the end
    buffer = (buffer << 5) | static_cast<uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      out.push_back(static_cast<char>((buffer >> (bits - 8)) & 0xff));
      bits -= 8;
    }
    buffer &= (1u << bits) - 1;
  }
  if (bits >= 5 || buffer != 0) return std::nullopt;  // a dangling character or stray bits
  return out;
}

uint32_t hotp(std::string_view key, uint64_t counter, unsigned digits) {
  unsigned char message[8];
  for (int i = 7; i >= 0; --i) {
    message[i] = static_cast<unsigned char>(counter & 0xff);
    counter >>= 8;
  }
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_size = 0;
  HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()), message, sizeof message, mac,
       &mac_size);
  const unsigned offset = mac[mac_size - 1] & 0x0f;
  const uint32_t binary = (static_cast<uint32_t>(mac[offset] & 0x7f) << 24) |
                          (static_cast<uint32_t>(mac[offset + 1]) << 16) |
                          (static_cast<uint32_t>(mac[offset + 2]) << 8) | mac[offset + 3];
  uint32_t modulus = 1;
  for (unsigned i = 0; i < digits; ++i) modulus *= 10;
  return binary % modulus;
}

std::optional<int64_t> totp_match(std::string_view key, std::string_view code, int64_t unix_time,
                                  int64_t last_used_step) {
  if (code.size() != 6 ||
      !std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  uint32_t wanted = 0;
  for (char c : code) wanted = wanted * 10 + static_cast<uint32_t>(c - '0');
  const int64_t now_step = unix_time / kTotpStep;
  std::optional<int64_t> found;
  // Every step of the window is computed, match or not, so timing says nothing.
  for (int64_t step = now_step - kTotpWindow; step <= now_step + kTotpWindow; ++step) {
    if (step < 0) continue;
    const bool same = hotp(key, static_cast<uint64_t>(step)) == wanted;
    if (same && step > last_used_step && !found) found = step;
  }
  return found;
}

}  // namespace cordon::webui::auth
