#include "control/wireguard/keys.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace cordon::control::wireguard {
namespace {

constexpr std::size_t kKeyLen = crypto_scalarmult_curve25519_BYTES;  // 32
constexpr std::size_t kBase64Len = 44;                               // with one '='

using Key = std::array<unsigned char, kKeyLen>;

Error io_error(const std::string& what, int err) {
  return Error{"io", what + ": " + std::strerror(err), ""};
}

bool decode(std::string_view base64, Key& out) {
  if (base64.size() != kBase64Len) return false;
  std::size_t len = 0;
  return sodium_base642bin(out.data(), out.size(), base64.data(), base64.size(), nullptr, &len,
                           nullptr, sodium_base64_VARIANT_ORIGINAL) == 0 &&
         len == kKeyLen;
}

std::string encode(const Key& key) {
  char buf[sodium_base64_ENCODED_LEN(kKeyLen, sodium_base64_VARIANT_ORIGINAL)];
  sodium_bin2base64(buf, sizeof buf, key.data(), key.size(), sodium_base64_VARIANT_ORIGINAL);
  return buf;
}

// The public key of `priv`; wipes what it used.
Result<std::string> public_of(Key& priv) {
  Key pub{};
  const int rc = crypto_scalarmult_curve25519_base(pub.data(), priv.data());
  sodium_memzero(priv.data(), priv.size());
  if (rc != 0) return Error{"invalid", "private key gives no public key", ""};
  return encode(pub);
}

Result<std::string> read_existing(const std::string& path, int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return io_error("stat " + path, errno);
  if (!S_ISREG(st.st_mode)) return Error{"invalid", path + " is not a regular file", ""};
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 0777));
    return Error{"invalid", path + " is accessible by others (mode " + mode + "); must be 0600",
                 ""};
  }
  if (st.st_uid != geteuid()) return Error{"invalid", path + " is owned by another user", ""};
  std::array<char, 128> text{};
  const ssize_t n = read(fd, text.data(), text.size() - 1);
  if (n < 0) return io_error("reading " + path, errno);
  std::size_t len = static_cast<std::size_t>(n);
  while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r')) --len;
  Key priv{};
  const bool good = decode(std::string_view(text.data(), len), priv);
  sodium_memzero(text.data(), text.size());
  if (!good) return Error{"invalid", path + " does not hold a WireGuard private key", ""};
  return public_of(priv);
}

}  // namespace

bool valid_public_key(std::string_view base64) {
  Key k{};
  return decode(base64, k);
}

Result<std::string> ensure_private_key(const std::string& path) {
  if (sodium_init() < 0) return Error{"io", "libsodium failed to initialise", ""};
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 && errno == EEXIST) {
    const int rfd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (rfd < 0) return io_error("opening " + path, errno);
    auto r = read_existing(path, rfd);
    close(rfd);
    return r;
  }
  if (fd < 0) return io_error("creating " + path, errno);

  // A fresh Curve25519 secret, clamped as `wg genkey` does (RFC 7748).
  Key priv{};
  randombytes_buf(priv.data(), priv.size());
  priv[0] &= 248;
  priv[31] &= 127;
  priv[31] |= 64;
  std::string text = encode(priv) + "\n";
  const bool written =
      write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && fsync(fd) == 0;
  const int err = errno;
  sodium_memzero(text.data(), text.size());
  close(fd);
  if (!written) {
    sodium_memzero(priv.data(), priv.size());
    unlink(path.c_str());
    return io_error("writing " + path, err);
  }
  return public_of(priv);
}

}  // namespace cordon::control::wireguard
