#include "dataplane/engine/packet.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstdio>

namespace cordon::engine {

std::optional<MacAddress> MacAddress::parse(std::string_view text) {
  // Exactly "xx:xx:xx:xx:xx:xx", hex digits of either case.
  if (text.size() != 17) return std::nullopt;
  MacAddress mac;
  for (size_t i = 0; i < 6; ++i) {
    if (i > 0 && text[i * 3 - 1] != ':') return std::nullopt;
    const char* first = text.data() + i * 3;
    auto [ptr, ec] = std::from_chars(first, first + 2, mac.bytes[i], 16);
    if (ec != std::errc{} || ptr != first + 2) return std::nullopt;
  }
  return mac;
}

std::string MacAddress::to_string() const {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                bytes[3], bytes[4], bytes[5]);
  return buf;
}

IpAddress IpAddress::masked(unsigned prefix_length) const {
  IpAddress out = *this;
  const unsigned width = bit_width();
  for (unsigned bit = prefix_length; bit < width; ++bit) {
    out.bytes[bit / 8] = static_cast<uint8_t>(out.bytes[bit / 8] & ~(0x80u >> (bit % 8)));
  }
  return out;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  // inet_pton reads a C string: an embedded NUL would make "10.0.0.1\0junk" parse as its
  // prefix, so such text is rejected here.
  if (text.empty() || text.size() > 45 || text.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  char buf[46];
  text.copy(buf, text.size());
  buf[text.size()] = '\0';
  IpAddress a;
  if (text.find(':') == std::string_view::npos) {
    if (inet_pton(AF_INET, buf, a.bytes.data()) != 1) return std::nullopt;
    a.family = 4;
  } else {
    if (inet_pton(AF_INET6, buf, a.bytes.data()) != 1) return std::nullopt;
    a.family = 6;
  }
  return a;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  if (family == 4) {
    inet_ntop(AF_INET, bytes.data(), buf, sizeof buf);
  } else if (family == 6) {
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  } else {
    return "unset";
  }
  return buf;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  const size_t slash = text.find('/');
  auto address = IpAddress::parse(text.substr(0, slash));
  if (!address) return std::nullopt;
  unsigned length = address->bit_width();
  if (slash != std::string_view::npos) {
    std::string_view digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) return std::nullopt;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), length);
    if (ec != std::errc{} || ptr != digits.data() + digits.size()) return std::nullopt;
    if (length > address->bit_width()) return std::nullopt;
  }
  if (address->masked(length) != *address) return std::nullopt;  // host bits set
  return Cidr{*address, static_cast<uint8_t>(length)};
}

std::string Cidr::to_string() const {
  return network.to_string() + "/" + std::to_string(prefix_length);
}

}  // namespace cordon::engine
