// Request-target helpers shared by controld's API server (control/api/http_server.cpp)
// and cordon-webd (webui/routes/app.cpp): splitting a path into segments and
// percent-decoding, once, so both servers read a target the same way.
//
// Two decoders on purpose, because the two uses differ:
//  - percent_decode_strict: for paths (webd's static files and API routes). A '%' not
//    followed by two hex digits is an error, so a malformed escape is refused (400)
//    instead of being read as something else. '+' is an ordinary character in a path.
//  - percent_decode_query: for query parameters (application/x-www-form-urlencoded, as
//    browsers and curl send them): '+' is a space; a malformed escape is kept as it is
//    (the handler validates the value it expects).
//
// Threads: pure functions, no shared state.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cordon::http_path {

// "/a//b/" -> {"a", "b"}: empty segments (leading, trailing, doubled slashes) are dropped.
inline std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    const size_t end = slash == std::string_view::npos ? path.size() : slash;
    if (end > start) out.emplace_back(path.substr(start, end - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

// The value of one hex digit, or -1.
inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Strict: nullopt when a '%' is not followed by two hex digits.
inline std::optional<std::string> percent_decode_strict(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size() || hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0)
      return std::nullopt;
    out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
    i += 2;
  }
  return out;
}

// Lenient, for query parameters: '+' is a space, a malformed escape stays as it is.
inline std::string percent_decode_query(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else if (s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace cordon::http_path
