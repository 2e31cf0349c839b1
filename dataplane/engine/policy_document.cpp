// Reading and validating `cordon.policy/v1` documents (docs/policy.md is the reference).
//
// Two passes over untrusted bytes: Boost.JSON's basic_parser builds a json::value through
// our own handler, which also tracks the JSON path so it can report duplicate keys (a
// plain json::parse keeps the last duplicate silently, which would let a typo'd second
// "mode" quietly win). Then a validator walks the value, collecting every error with its
// path instead of stopping at the first, and builds the PolicyDocument as it goes.
#include "dataplane/engine/policy_document.h"

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>  // basic_parser with our own handler
#include <charconv>
#include <exception>
#include <map>
#include <set>
#include <span>
#include <utility>

#include "dataplane/engine/patches/catalog.h"

namespace cordon::engine {
namespace {

namespace json = boost::json;

// ---------------------------------------------------------------------------------------
// Enum spellings: one table per enum serves parsing, to_string and error messages.

template <typename E>
struct Spelling {
  std::string_view name;
  E value;
};

constexpr std::array kUnknownDevicesNames{
    Spelling<UnknownDevices>{"drop", UnknownDevices::drop},
    Spelling<UnknownDevices>{"monitor", UnknownDevices::monitor},
    Spelling<UnknownDevices>{"forward", UnknownDevices::forward},
};
constexpr std::array kModeNames{
    Spelling<DeviceMode>{"enforce", DeviceMode::enforce},
    Spelling<DeviceMode>{"monitor", DeviceMode::monitor},
    Spelling<DeviceMode>{"learn", DeviceMode::learn},
};
constexpr std::array kDenyActionNames{
    Spelling<DenyAction>{"drop", DenyAction::drop},
    Spelling<DenyAction>{"reset", DenyAction::reset},
};
constexpr std::array kDirectionNames{
    Spelling<Direction>{"in", Direction::in},
    Spelling<Direction>{"out", Direction::out},
};
constexpr std::array kProtocolNames{
    Spelling<Protocol>{"tcp", Protocol::tcp},
    Spelling<Protocol>{"udp", Protocol::udp},
    Spelling<Protocol>{"icmp", Protocol::icmp},
};
// Policy patches inspect stream or datagram payloads; ICMP has none worth matching.
constexpr std::array kPatchProtocolNames{
    Spelling<Protocol>{"tcp", Protocol::tcp},
    Spelling<Protocol>{"udp", Protocol::udp},
};
constexpr std::array kPatchActionNames{
    Spelling<PatchAction>{"drop", PatchAction::drop},
    Spelling<PatchAction>{"reset", PatchAction::reset},
    Spelling<PatchAction>{"alert", PatchAction::alert},
};

template <typename E, size_t N>
std::string_view spell(const std::array<Spelling<E>, N>& table, E value) {
  for (const auto& s : table) {
    if (s.value == value) return s.name;
  }
  return "?";
}

// ---------------------------------------------------------------------------------------
// Field sets of each object. Unknown fields are errors: a typo must never be ignored.

using FieldList = std::span<const std::string_view>;
constexpr std::array<std::string_view, 4> kTopFields{"schema", "unknown_devices", "devices",
                                                     "patches"};
constexpr std::array<std::string_view, 7> kDeviceFields{"name",        "mac",   "ip",     "mode",
                                                        "deny_action", "rules", "patches"};
constexpr std::array<std::string_view, 6> kRuleFields{"name", "dir",   "proto",
                                                      "peer", "dport", "app"};
constexpr std::array<std::string_view, 2> kAppFields{"dicom", "hl7"};
constexpr std::array<std::string_view, 4> kDicomFields{"calling_ae", "called_ae", "commands",
                                                       "sop_classes"};
constexpr std::array<std::string_view, 2> kHl7Fields{"message_types", "sending_facilities"};
constexpr std::array<std::string_view, 7> kPatchFields{"id",    "cve",   "dir",   "proto",
                                                       "dport", "match", "action"};
constexpr std::array<std::string_view, 4> kMatchFields{"content", "offset", "depth", "regex"};

constexpr std::array<std::string_view, 11> kDimseCommands{
    "C-ECHO", "C-STORE", "C-FIND",   "C-MOVE",   "C-GET",    "N-EVENT-REPORT",
    "N-GET",  "N-SET",   "N-ACTION", "N-CREATE", "N-DELETE",
};

std::string join(FieldList names) {
  std::string out;
  for (std::string_view n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

template <typename E, size_t N>
std::string join(const std::array<Spelling<E>, N>& table) {
  std::string out;
  for (const auto& s : table) {
    if (!out.empty()) out += ", ";
    out += s.name;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// JSON paths: `devices[2].rules[0].peer`. Keys that are not plain identifiers (only
// unknown ones can be) are quoted, escaped and cut, so that a hostile key can neither make
// a path ambiguous nor blow up the size of the error list.

constexpr size_t kMaxKeyInPath = 64;
constexpr char kHex[] = "0123456789abcdef";

bool is_plain_key(std::string_view key) {
  if (key.empty() || key.size() > kMaxKeyInPath) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

void append_key(std::string& path, std::string_view key) {
  if (is_plain_key(key)) {
    if (!path.empty()) path += '.';
    path += key;
    return;
  }
  bool cut = false;
  if (key.size() > kMaxKeyInPath) {
    size_t end = kMaxKeyInPath;
    // Cut on a UTF-8 character boundary: the path ends up in JSON API responses.
    while (end > 0 && (static_cast<unsigned char>(key[end]) & 0xC0) == 0x80) --end;
    key = key.substr(0, end);
    cut = true;
  }
  path += "[\"";
  for (char c : key) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      path += '\\';
      path += c;
    } else if (u < 0x20 || u == 0x7F) {
      path += "\\u00";
      path += kHex[u >> 4];
      path += kHex[u & 0xF];
    } else {
      path += c;
    }
  }
  if (cut) path += "...";
  path += "\"]";
}

std::string child(const std::string& path, std::string_view key) {
  std::string out = path;
  append_key(out, key);
  return out;
}

std::string item(const std::string& path, size_t index) {
  return path + '[' + std::to_string(index) + ']';
}

// ---------------------------------------------------------------------------------------
// The error list, shared by the JSON reader and the validator, cut at kMaxPolicyErrors.

class ErrorSink {
 public:
  void add(std::string path, std::string message) {
    if (errors_.size() < kMaxPolicyErrors) {
      errors_.push_back({std::move(path), std::move(message)});
    } else if (!cut_) {
      cut_ = true;
      errors_.push_back({"", "too many errors; only the first " + std::to_string(kMaxPolicyErrors) +
                                 " are listed"});
    }
  }
  bool full() const { return cut_; }
  bool empty() const { return errors_.empty(); }
  std::vector<PolicyError> take() { return std::move(errors_); }

 private:
  std::vector<PolicyError> errors_;
  bool cut_ = false;
};

// ---------------------------------------------------------------------------------------
// Reading: a basic_parser handler that builds the value like json::parser's own handler
// does, and keeps the path of the current value to name duplicate keys.
//
// Ordered sets and maps, here and below, keep the worst case at O(n log n) for any input;
// unseeded hashing would let a crafted document make lookups quadratic.

class ReadHandler {
 public:
  static constexpr size_t max_object_size = json::object::max_size();
  static constexpr size_t max_array_size = json::array::max_size();
  static constexpr size_t max_key_size = json::string::max_size();
  static constexpr size_t max_string_size = json::string::max_size();

  explicit ReadHandler(ErrorSink& errors) : errors_(errors) {}

  json::value_stack st;

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) {
    frames_.emplace_back();
    return true;
  }
  bool on_object_end(size_t n, json::error_code&) {
    st.push_object(n);
    frames_.pop_back();
    element_done();
    return true;
  }
  bool on_array_begin(json::error_code&) {
    frames_.emplace_back().array = true;
    return true;
  }
  bool on_array_end(size_t n, json::error_code&) {
    st.push_array(n);
    frames_.pop_back();
    element_done();
    return true;
  }
  bool on_key_part(json::string_view s, size_t, json::error_code&) {
    st.push_chars(s);
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, size_t, json::error_code&) {
    st.push_key(s);
    key_.append(s.data(), s.size());
    Frame& frame = frames_.back();
    frame.key = std::move(key_);
    key_.clear();
    if (!frame.keys.insert(frame.key).second) errors_.add(current_path(), "duplicate key");
    return true;
  }
  bool on_string_part(json::string_view s, size_t, json::error_code&) {
    st.push_chars(s);
    return true;
  }
  bool on_string(json::string_view s, size_t, json::error_code&) {
    st.push_string(s);
    element_done();
    return true;
  }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(int64_t i, json::string_view, json::error_code&) {
    st.push_int64(i);
    element_done();
    return true;
  }
  bool on_uint64(uint64_t u, json::string_view, json::error_code&) {
    st.push_uint64(u);
    element_done();
    return true;
  }
  bool on_double(double d, json::string_view, json::error_code&) {
    st.push_double(d);
    element_done();
    return true;
  }
  bool on_bool(bool b, json::error_code&) {
    st.push_bool(b);
    element_done();
    return true;
  }
  bool on_null(json::error_code&) {
    st.push_null();
    element_done();
    return true;
  }
  // Comments are off in the parse options, so these are never called.
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  struct Frame {
    bool array = false;
    size_t index = 0;            // array: the element being read
    std::string key;             // object: the key being read
    std::set<std::string> keys;  // object: every key seen so far
  };

  void element_done() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
  }

  std::string current_path() const {
    std::string path;
    for (const Frame& frame : frames_) {
      if (frame.array) {
        path = item(path, frame.index);
      } else {
        append_key(path, frame.key);
      }
    }
    return path;
  }

  ErrorSink& errors_;
  std::vector<Frame> frames_;
  std::string key_;
};

// Parses `text` into a tree allocated from `storage`. On a syntax error, replaces every
// error found so far with that one error (duplicate keys before a syntax error are not
// worth reading) and returns nothing.
std::optional<json::value> read_json(std::string_view text, json::storage_ptr storage,
                                     ErrorSink& errors) {
  json::parse_options options;  // strict JSON: no comments, no trailing commas, valid UTF-8
  options.max_depth = kMaxPolicyDepth;
  json::basic_parser<ReadHandler> parser(options, errors);
  parser.handler().st.reset(std::move(storage));
  json::error_code ec;
  const size_t consumed = parser.write_some(false, text.data(), text.size(), ec);
  if (!ec && consumed < text.size()) ec = json::error::extra_data;
  // Moving the value keeps its storage (assigning it would deep-copy it out of the arena).
  if (!ec) return parser.handler().st.release();
  const std::string_view before = text.substr(0, consumed);
  const size_t line = 1 + static_cast<size_t>(std::count(before.begin(), before.end(), '\n'));
  const size_t line_start = before.rfind('\n');
  const size_t column = consumed - (line_start == std::string_view::npos ? 0 : line_start + 1) + 1;
  std::string what = ec == json::error::too_deep
                         ? "nested deeper than " + std::to_string(kMaxPolicyDepth) + " levels"
                         : ec.message();
  errors = ErrorSink{};
  errors.add("", "invalid JSON at line " + std::to_string(line) + ", column " +
                     std::to_string(column) + ": " + what);
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------
// Value checks. Each returns an empty message when the value is fine.

constexpr std::string_view kOk;

bool has_control_char(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; });
}

size_t utf8_length(std::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

constexpr size_t kMaxNameChars = 63;

// Device, rule and patch names: they end up in logs, counters and API paths.
std::string_view name_problem(std::string_view s) {
  if (s.empty()) return "must not be empty";
  if (s.size() > kMaxNameChars) return "longer than 63 characters";
  if (!std::all_of(s.begin(), s.end(), is_name_char)) {
    return "invalid character (allowed: A-Z a-z 0-9 . _ -)";
  }
  return kOk;
}

// Addresses a device can own: no group, loopback or placeholder addresses.
std::string_view device_address_problem(const IpAddress& a) {
  const auto& b = a.bytes;
  if (a.family == 4) {
    if (b[0] == 0) return "unspecified address";  // 0.0.0.0/8: "this network"
    if (b[0] == 127) return "loopback address";
    if (b[0] >= 224 && b[0] <= 239) return "multicast address";
    if (a.v4_host_order() == 0xFFFFFFFFu) return "broadcast address";
    return kOk;
  }
  if (b[0] == 0xFF) return "multicast address";
  const bool zero_prefix = std::all_of(b.begin(), b.begin() + 10, [](uint8_t x) { return x == 0; });
  if (zero_prefix && b[10] == 0xFF && b[11] == 0xFF) {
    return "IPv4-mapped IPv6 address (write the IPv4 address)";
  }
  if (zero_prefix && b[10] == 0 && b[11] == 0 && b[12] == 0 && b[13] == 0 && b[14] == 0) {
    if (b[15] == 0) return "unspecified address";
    if (b[15] == 1) return "loopback address";
  }
  return kOk;
}

constexpr size_t kMaxAeTitleChars = 16;

// DICOM AE titles (PS3.5 VR AE): up to 16 characters of the default repertoire without
// backslash or control characters. Leading and trailing spaces are not significant on
// the wire, so the inspector compares trimmed values; in the policy they are refused
// rather than trimmed, so that what is written is exactly what is compared.
std::string_view ae_title_problem(std::string_view s) {
  const bool printable =
      std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7E && c != '\\'; });
  if (s.empty() || s.size() > kMaxAeTitleChars || !printable) {
    return "not an AE title (1-16 printable ASCII characters, no backslash)";
  }
  if (s.find_first_not_of(' ') == std::string_view::npos) return "only spaces";
  if (s.front() == ' ' || s.back() == ' ') {
    return "leading or trailing spaces (not significant in AE titles; remove them)";
  }
  return kOk;
}

std::string_view command_problem(std::string_view s) {
  if (std::find(kDimseCommands.begin(), kDimseCommands.end(), s) != kDimseCommands.end()) {
    return kOk;
  }
  static const std::string message =
      "unknown DIMSE command (expected one of: " + join(kDimseCommands) + ")";
  return message;
}

bool all_digits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

constexpr size_t kMaxUidChars = 64;

// DICOM UIDs (PS3.5 section 9.1): dot-separated decimal components, no leading zeros.
std::string_view uid_problem(std::string_view s) {
  constexpr std::string_view kBad =
      "not a UID (digits and dots, at most 64 characters, no empty component, no leading "
      "zero)";
  if (s.empty() || s.size() > kMaxUidChars) return kBad;
  size_t start = 0;
  while (true) {
    const size_t dot = s.find('.', start);
    const std::string_view part =
        s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (part.empty() || (part.size() > 1 && part[0] == '0') || !all_digits(part)) return kBad;
    if (dot == std::string_view::npos) return kOk;
    start = dot + 1;
  }
}

bool is_upper_alnum(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// MSH-9 message type, optionally with its trigger event: "ADT", "ORU^R01".
std::string_view message_type_problem(std::string_view s) {
  const bool shape =
      (s.size() == 3 || (s.size() == 7 && s[3] == '^')) && is_upper_alnum(s[0]) &&
      is_upper_alnum(s[1]) && is_upper_alnum(s[2]) &&
      (s.size() == 3 || (is_upper_alnum(s[4]) && is_upper_alnum(s[5]) && is_upper_alnum(s[6])));
  return shape ? kOk : "not an HL7 message type (e.g. ADT or ORU^R01)";
}

constexpr size_t kMaxFacilityChars = 227;  // HL7 v2.5 HD data type

// MSH-4 sending facility, compared as a whole field: no HL7 delimiters inside.
std::string_view facility_problem(std::string_view s) {
  if (s.empty()) return "must not be empty";
  if (utf8_length(s) > kMaxFacilityChars) return "longer than 227 characters";
  if (has_control_char(s) || s.find_first_of("|^~\\&") != std::string_view::npos) {
    return "contains an HL7 delimiter (| ^ ~ \\ &) or a control character";
  }
  return kOk;
}

// "CVE-2021-41773": a four-digit year and a sequence number of four or more digits.
bool is_cve_id(std::string_view s) {
  if (s.size() < 13 || s.substr(0, 4) != "CVE-" || s[8] != '-') return false;
  return all_digits(s.substr(4, 4)) && all_digits(s.substr(9));
}

// Snort-style content: literal characters, `|0d 0a|` blocks of hex bytes (spaces between
// bytes optional), and `\|` / `\\` for a literal pipe or backslash.
std::string_view decode_content(std::string_view text, std::string& out) {
  auto hex_value = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  out.clear();
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '\\') {
      if (i + 1 >= text.size() || (text[i + 1] != '|' && text[i + 1] != '\\')) {
        return "invalid escape (only \\| and \\\\; write other bytes as |hex|)";
      }
      out += text[i + 1];
      i += 2;
    } else if (c == '|') {
      const size_t close = text.find('|', i + 1);
      if (close == std::string_view::npos) return "unterminated |hex| block";
      size_t bytes = 0;
      for (size_t j = i + 1; j < close;) {
        if (text[j] == ' ') {
          ++j;
          continue;
        }
        const int high = hex_value(text[j]);
        const int low = j + 1 < close ? hex_value(text[j + 1]) : -1;
        if (high < 0 || low < 0) {
          return "invalid |hex| block (pairs of hex digits, optionally separated by spaces)";
        }
        out += static_cast<char>((high << 4) | low);
        ++bytes;
        j += 2;
      }
      if (bytes == 0) return "empty |hex| block";
      i = close + 1;
    } else {
      out += c;
      ++i;
    }
  }
  return kOk;
}

// The canonical spelling: printable ASCII as itself, everything else (including `|`, `\`
// and bytes that are not valid UTF-8 on their own) as hex blocks.
std::string encode_content(std::string_view bytes) {
  std::string out;
  bool in_hex = false;
  for (char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    const bool literal = u >= 0x20 && u <= 0x7E && c != '|' && c != '\\';
    if (literal) {
      if (in_hex) out += '|';
      in_hex = false;
      out += c;
    } else {
      out += in_hex ? ' ' : '|';
      in_hex = true;
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    }
  }
  if (in_hex) out += '|';
  return out;
}

// Port numbers in "LO-HI": decimal digits only, no sign or leading zero.
std::optional<uint32_t> parse_port_digits(std::string_view s) {
  if (s.empty() || s.size() > 5 || !all_digits(s) || (s.size() > 1 && s[0] == '0')) {
    return std::nullopt;
  }
  uint32_t value = 0;
  std::from_chars(s.data(), s.data() + s.size(), value);
  return value;
}

// ---------------------------------------------------------------------------------------
// The validator: walks the JSON value, reports every error with its path, and builds the
// document from the parts that are valid (the document is only returned when all are).

class Validator {
 public:
  explicit Validator(ErrorSink& errors) : errors_(errors) {}

  PolicyDocument run(const json::value& root) {
    PolicyDocument doc;
    const json::object* top = root.if_object();
    if (top == nullptr) {
      error("", "expected a JSON object");
      return doc;
    }
    check_fields(*top, "", kTopFields);
    if (const json::value* v = required(*top, "", "schema")) {
      if (auto s = string_at(*v, "schema"); s && *s != kPolicySchemaId) {
        error("schema", "expected \"" + std::string(kPolicySchemaId) + "\"");
      }
    }
    doc.unknown_devices = enum_field(*top, "", "unknown_devices", kUnknownDevicesNames, true)
                              .value_or(UnknownDevices::drop);
    collect_policy_patch_ids(*top);
    if (const json::value* v = required(*top, "", "devices")) parse_devices(*v, doc.devices);
    if (const json::value* v = top->if_contains("patches")) parse_patches(*v, doc.patches);
    return doc;
  }

 private:
  // Where a device address was first seen, to name both ends of a conflict.
  struct AddressOwner {
    std::string path;
    size_t device = 0;
  };

  void error(std::string path, std::string message) {
    errors_.add(std::move(path), std::move(message));
  }

  // --- generic shapes -------------------------------------------------------------------

  const json::object* object_at(const json::value& v, const std::string& path) {
    if (const json::object* o = v.if_object()) return o;
    error(path, "expected an object");
    return nullptr;
  }

  const json::array* array_at(const json::value& v, const std::string& path) {
    if (const json::array* a = v.if_array()) return a;
    error(path, "expected an array");
    return nullptr;
  }

  std::optional<std::string_view> string_at(const json::value& v, const std::string& path) {
    if (const json::string* s = v.if_string()) return std::string_view(s->data(), s->size());
    error(path, "expected a string");
    return std::nullopt;
  }

  void check_fields(const json::object& o, const std::string& path, FieldList allowed) {
    for (const auto& field : o) {
      const std::string_view key(field.key().data(), field.key().size());
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        error(child(path, key), "unknown field (expected one of: " + join(allowed) + ")");
      }
    }
  }

  const json::value* required(const json::object& o, const std::string& path,
                              std::string_view key) {
    const json::value* v = o.if_contains(key);
    if (v == nullptr) error(child(path, key), "required field missing");
    return v;
  }

  // The enum value of o[key]; nullopt when the field is absent (an error unless optional)
  // or not one of the spellings.
  template <typename E, size_t N>
  std::optional<E> enum_field(const json::object& o, const std::string& path, std::string_view key,
                              const std::array<Spelling<E>, N>& table, bool optional) {
    const json::value* v = optional ? o.if_contains(key) : required(o, path, key);
    if (v == nullptr) return std::nullopt;
    if (const json::string* s = v->if_string()) {
      for (const auto& spelling : table) {
        if (spelling.name == std::string_view(s->data(), s->size())) return spelling.value;
      }
    }
    error(child(path, key), "expected one of: " + join(table));
    return std::nullopt;
  }

  std::optional<std::string> name_at(const json::value& v, const std::string& path) {
    const auto s = string_at(v, path);
    if (!s) return std::nullopt;
    if (auto problem = name_problem(*s); !problem.empty()) {
      error(path, std::string(problem));
      return std::nullopt;
    }
    return std::string(*s);
  }

  // An array of strings, each passing `check` (which returns a message or ""), without
  // repeats. App constraint lists may not be empty: an empty list would read as "allow
  // nothing" to some and "allow anything" to others, so the field is omitted instead.
  template <typename Check>
  std::vector<std::string> string_list(const json::value& v, const std::string& path,
                                       bool allow_empty, Check&& check) {
    std::vector<std::string> out;
    const json::array* arr = array_at(v, path);
    if (arr == nullptr) return out;
    if (arr->empty() && !allow_empty) error(path, "empty list (omit the field to allow any)");
    std::map<std::string_view, size_t> seen;
    for (size_t i = 0; i < arr->size(); ++i) {
      const std::string element_path = item(path, i);
      const auto s = string_at((*arr)[i], element_path);
      if (!s) continue;
      if (auto problem = check(*s); !problem.empty()) {
        error(element_path, std::string(problem));
        continue;
      }
      if (auto [it, fresh] = seen.emplace(*s, i); !fresh) {
        error(element_path, "duplicate value (also " + item(path, it->second) + ")");
        continue;
      }
      out.emplace_back(*s);
    }
    return out;
  }

  std::optional<PortRange> port_range_at(const json::value& v, const std::string& path) {
    constexpr std::string_view kOutOfRange = "port out of range (1-65535)";
    if (v.is_int64() || v.is_uint64()) {
      const int64_t port = v.is_int64() ? v.get_int64() : -1;
      if (port < 1 || port > 65535) {
        error(path, std::string(kOutOfRange));
        return std::nullopt;
      }
      return PortRange{static_cast<uint16_t>(port), static_cast<uint16_t>(port)};
    }
    if (const json::string* s = v.if_string()) {
      const std::string_view text(s->data(), s->size());
      const size_t dash = text.find('-');
      const auto lo = parse_port_digits(text.substr(0, dash));
      const auto hi =
          dash == std::string_view::npos ? std::nullopt : parse_port_digits(text.substr(dash + 1));
      if (!lo || !hi) {
        error(path, "not a port range (expected \"LO-HI\", e.g. \"8000-8099\")");
        return std::nullopt;
      }
      if (*lo < 1 || *lo > 65535 || *hi < 1 || *hi > 65535) {
        error(path, std::string(kOutOfRange));
        return std::nullopt;
      }
      if (*lo > *hi) {
        error(path, "empty port range (LO > HI)");
        return std::nullopt;
      }
      return PortRange{static_cast<uint16_t>(*lo), static_cast<uint16_t>(*hi)};
    }
    error(path, "expected a port (integer 1-65535) or a range \"LO-HI\"");
    return std::nullopt;
  }

  std::optional<uint32_t> uint_at(const json::value& v, const std::string& path, uint32_t min,
                                  uint32_t max) {
    if (!v.is_int64() && !v.is_uint64()) {
      error(path, "expected an integer");
      return std::nullopt;
    }
    const int64_t n = v.is_int64() ? v.get_int64() : -1;
    if (n < min || n > max) {
      error(path, "out of range (" + std::to_string(min) + "-" + std::to_string(max) + ")");
      return std::nullopt;
    }
    return static_cast<uint32_t>(n);
  }

  // --- devices --------------------------------------------------------------------------

  void parse_devices(const json::value& v, std::vector<Device>& out) {
    const std::string path = "devices";
    const json::array* arr = array_at(v, path);
    if (arr == nullptr) return;
    if (arr->size() > kMaxDevices) {
      error(path, "too many devices: " + std::to_string(arr->size()) + ", at most " +
                      std::to_string(kMaxDevices));
    }
    size_t rules_total = 0;
    out.reserve(std::min(arr->size(), kMaxDevices));
    for (size_t i = 0; i < arr->size() && !errors_.full(); ++i) {
      out.push_back(parse_device((*arr)[i], item(path, i), i, rules_total));
    }
    if (rules_total > kMaxRulesTotal) {
      error(path, "too many rules in total: " + std::to_string(rules_total) + ", at most " +
                      std::to_string(kMaxRulesTotal));
    }
  }

  Device parse_device(const json::value& v, const std::string& path, size_t ordinal,
                      size_t& rules_total) {
    Device d;
    const json::object* o = object_at(v, path);
    if (o == nullptr) return d;
    check_fields(*o, path, kDeviceFields);

    if (const json::value* f = required(*o, path, "name")) {
      const std::string field_path = child(path, "name");
      if (auto name = name_at(*f, field_path)) {
        d.name = *name;
        if (auto [it, fresh] = device_names_.emplace(*name, field_path); !fresh) {
          error(field_path, "duplicate device name (also " + it->second + ")");
        }
      }
    }

    if (const json::value* f = required(*o, path, "mac")) {
      const std::string field_path = child(path, "mac");
      if (auto s = string_at(*f, field_path)) {
        const auto mac = MacAddress::parse(*s);
        if (!mac) {
          error(field_path, "not a MAC address (expected xx:xx:xx:xx:xx:xx)");
        } else if (mac->is_multicast()) {
          error(field_path, "multicast MAC address");
        } else if (mac->as_u64() == 0) {
          error(field_path, "all-zero MAC address");
        } else {
          d.mac = *mac;
          if (auto [it, fresh] = device_macs_.emplace(*mac, field_path); !fresh) {
            error(field_path, "duplicate MAC address (also " + it->second + ")");
          }
        }
      }
    }

    if (const json::value* f = required(*o, path, "ip")) {
      parse_device_ips(*f, child(path, "ip"), ordinal, d.ips);
    }
    d.mode = enum_field(*o, path, "mode", kModeNames, true).value_or(DeviceMode::enforce);
    d.deny_action =
        enum_field(*o, path, "deny_action", kDenyActionNames, true).value_or(DenyAction::drop);
    if (const json::value* f = o->if_contains("rules")) {
      parse_rules(*f, child(path, "rules"), rules_total, d.rules);
    }
    if (const json::value* f = o->if_contains("patches")) {
      d.patches = string_list(*f, child(path, "patches"), true, [this](std::string_view id) {
        const bool known = find_catalog_patch(id) != nullptr ||
                           policy_patch_ids_.find(id) != policy_patch_ids_.end();
        return known ? kOk : "unknown patch id (neither built in nor in the policy's patches)";
      });
    }
    return d;
  }

  void parse_device_ips(const json::value& v, const std::string& path, size_t ordinal,
                        std::vector<IpAddress>& out) {
    const json::array* arr = array_at(v, path);
    if (arr == nullptr) return;
    if (arr->empty()) error(path, "must list at least one address");
    if (arr->size() > kMaxDeviceIps) {
      error(path, "too many addresses: " + std::to_string(arr->size()) + ", at most " +
                      std::to_string(kMaxDeviceIps));
    }
    for (size_t i = 0; i < arr->size(); ++i) {
      const std::string element_path = item(path, i);
      const auto s = string_at((*arr)[i], element_path);
      if (!s) continue;
      const auto address = IpAddress::parse(*s);
      if (!address) {
        error(element_path, "not an IP address");
        continue;
      }
      if (auto problem = device_address_problem(*address); !problem.empty()) {
        error(element_path, std::string(problem));
        continue;
      }
      // Devices are looked up by address: one address, one owner.
      auto [it, fresh] = device_ips_.emplace(*address, AddressOwner{element_path, ordinal});
      if (!fresh) {
        error(element_path, (it->second.device == ordinal ? "duplicate address (also "
                                                          : "overlapping device addresses (also ") +
                                it->second.path + ")");
        continue;
      }
      out.push_back(*address);
    }
  }

  // --- rules ----------------------------------------------------------------------------

  void parse_rules(const json::value& v, const std::string& path, size_t& rules_total,
                   std::vector<Rule>& out) {
    const json::array* arr = array_at(v, path);
    if (arr == nullptr) return;
    rules_total += arr->size();
    std::map<std::string, std::string, std::less<>> names;
    out.reserve(std::min(arr->size(), kMaxRulesTotal));
    for (size_t i = 0; i < arr->size() && !errors_.full(); ++i) {
      out.push_back(parse_rule((*arr)[i], item(path, i), names));
    }
  }

  Rule parse_rule(const json::value& v, const std::string& path,
                  std::map<std::string, std::string, std::less<>>& names) {
    Rule r;
    const json::object* o = object_at(v, path);
    if (o == nullptr) return r;
    check_fields(*o, path, kRuleFields);

    if (const json::value* f = required(*o, path, "name")) {
      const std::string field_path = child(path, "name");
      if (auto name = name_at(*f, field_path)) {
        r.name = *name;
        if (auto [it, fresh] = names.emplace(*name, field_path); !fresh) {
          error(field_path, "duplicate rule name (also " + it->second + ")");
        }
      }
    }
    r.dir = enum_field(*o, path, "dir", kDirectionNames, false).value_or(Direction::out);
    const auto proto = enum_field(*o, path, "proto", kProtocolNames, false);
    r.proto = proto.value_or(Protocol::tcp);

    if (const json::value* f = required(*o, path, "peer")) {
      const std::string field_path = child(path, "peer");
      if (auto s = string_at(*f, field_path)) {
        if (auto peer = parse_peer(*s, field_path)) r.peer = *peer;
      }
    }

    if (const json::value* f = o->if_contains("dport")) {
      const std::string field_path = child(path, "dport");
      if (proto == Protocol::icmp) {
        error(field_path, "not allowed for icmp rules");
      } else if (auto range = port_range_at(*f, field_path)) {
        r.dport = *range;
      }
    }

    if (const json::value* f = o->if_contains("app")) {
      const std::string field_path = child(path, "app");
      // App inspectors read TCP streams; still check the constraints themselves so that
      // one pass reports everything.
      if (proto && *proto != Protocol::tcp) error(field_path, "only allowed on tcp rules");
      parse_app(*f, field_path, r);
    }
    return r;
  }

  std::optional<Cidr> parse_peer(std::string_view s, const std::string& path) {
    if (auto cidr = Cidr::parse(s)) return cidr;
    // Tell "host bits set", the commonest slip, apart from text that is no CIDR at all.
    const size_t slash = s.find('/');
    if (slash != std::string_view::npos) {
      const auto address = IpAddress::parse(s.substr(0, slash));
      const std::string_view digits = s.substr(slash + 1);
      unsigned length = 0;
      if (address && !digits.empty() && digits.size() <= 3 && all_digits(digits)) {
        std::from_chars(digits.data(), digits.data() + digits.size(), length);
        if (length <= address->bit_width()) {
          const Cidr network{address->masked(length), static_cast<uint8_t>(length)};
          error(path, "host bits set (the network is " + network.to_string() + ")");
          return std::nullopt;
        }
      }
    }
    error(path, "not a CIDR");
    return std::nullopt;
  }

  void parse_app(const json::value& v, const std::string& path, Rule& r) {
    const json::object* o = object_at(v, path);
    if (o == nullptr) return;
    check_fields(*o, path, kAppFields);
    const json::value* dicom = o->if_contains("dicom");
    const json::value* hl7 = o->if_contains("hl7");
    if ((dicom == nullptr) == (hl7 == nullptr)) {
      error(path, "expected exactly one of: dicom, hl7");
    }
    if (dicom != nullptr) r.dicom = parse_dicom(*dicom, child(path, "dicom"));
    if (hl7 != nullptr) r.hl7 = parse_hl7(*hl7, child(path, "hl7"));
  }

  DicomConstraints parse_dicom(const json::value& v, const std::string& path) {
    DicomConstraints c;
    const json::object* o = object_at(v, path);
    if (o == nullptr) return c;
    check_fields(*o, path, kDicomFields);
    if (const json::value* f = o->if_contains("calling_ae")) {
      c.calling_ae = string_list(*f, child(path, "calling_ae"), false, ae_title_problem);
    }
    if (const json::value* f = o->if_contains("called_ae")) {
      c.called_ae = string_list(*f, child(path, "called_ae"), false, ae_title_problem);
    }
    if (const json::value* f = o->if_contains("commands")) {
      c.commands = string_list(*f, child(path, "commands"), false, command_problem);
    }
    if (const json::value* f = o->if_contains("sop_classes")) {
      c.sop_classes = string_list(*f, child(path, "sop_classes"), false, uid_problem);
    }
    return c;
  }

  Hl7Constraints parse_hl7(const json::value& v, const std::string& path) {
    Hl7Constraints c;
    const json::object* o = object_at(v, path);
    if (o == nullptr) return c;
    check_fields(*o, path, kHl7Fields);
    if (const json::value* f = o->if_contains("message_types")) {
      c.message_types = string_list(*f, child(path, "message_types"), false, message_type_problem);
    }
    if (const json::value* f = o->if_contains("sending_facilities")) {
      c.sending_facilities =
          string_list(*f, child(path, "sending_facilities"), false, facility_problem);
    }
    return c;
  }

  // --- policy patches -------------------------------------------------------------------

  // Device patch lists may name policy patches defined later in the document, so their
  // ids are known before devices are read. Raw ids, valid or not: a bad id is reported
  // once, at the patch, not again at every device that names it.
  void collect_policy_patch_ids(const json::object& top) {
    const json::value* v = top.if_contains("patches");
    if (v == nullptr || !v->is_array()) return;
    for (const json::value& element : v->get_array()) {
      const json::object* o = element.if_object();
      const json::value* id = o != nullptr ? o->if_contains("id") : nullptr;
      if (id != nullptr && id->is_string()) {
        policy_patch_ids_.emplace(id->get_string().data(), id->get_string().size());
      }
    }
  }

  void parse_patches(const json::value& v, std::vector<PolicyPatch>& out) {
    const std::string path = "patches";
    const json::array* arr = array_at(v, path);
    if (arr == nullptr) return;
    std::map<std::string, std::string, std::less<>> ids;
    for (size_t i = 0; i < arr->size() && !errors_.full(); ++i) {
      out.push_back(parse_patch((*arr)[i], item(path, i), ids));
    }
  }

  PolicyPatch parse_patch(const json::value& v, const std::string& path,
                          std::map<std::string, std::string, std::less<>>& ids) {
    PolicyPatch p;
    const json::object* o = object_at(v, path);
    if (o == nullptr) return p;
    check_fields(*o, path, kPatchFields);

    if (const json::value* f = required(*o, path, "id")) {
      const std::string field_path = child(path, "id");
      if (auto id = name_at(*f, field_path)) {
        p.id = *id;
        if (find_catalog_patch(*id) != nullptr) {
          error(field_path, "collides with a built-in patch id");
        } else if (auto [it, fresh] = ids.emplace(*id, field_path); !fresh) {
          error(field_path, "duplicate patch id (also " + it->second + ")");
        }
      }
    }
    if (const json::value* f = o->if_contains("cve")) {
      const std::string field_path = child(path, "cve");
      if (auto s = string_at(*f, field_path)) {
        if (is_cve_id(*s)) {
          p.cve = *s;
        } else {
          error(field_path, "not a CVE id (expected CVE-YYYY-NNNN)");
        }
      }
    }
    p.dir = enum_field(*o, path, "dir", kDirectionNames, false).value_or(Direction::in);
    const auto proto = enum_field(*o, path, "proto", kPatchProtocolNames, false);
    p.proto = proto.value_or(Protocol::tcp);
    if (const json::value* f = o->if_contains("dport")) {
      if (auto range = port_range_at(*f, child(path, "dport"))) p.dport = *range;
    }
    if (const json::value* f = required(*o, path, "match")) {
      p.match = parse_match(*f, child(path, "match"));
    }
    const auto action = enum_field(*o, path, "action", kPatchActionNames, true);
    p.action = action.value_or(PatchAction::drop);
    if (action == PatchAction::reset && proto == Protocol::udp) {
      error(child(path, "action"), "reset needs proto tcp");
    }
    return p;
  }

  PatchMatch parse_match(const json::value& v, const std::string& path) {
    PatchMatch m;
    const json::object* o = object_at(v, path);
    if (o == nullptr) return m;
    check_fields(*o, path, kMatchFields);
    const json::value* content = o->if_contains("content");
    const json::value* regex = o->if_contains("regex");
    if (content == nullptr && regex == nullptr) error(path, "needs content or regex");

    if (content != nullptr) {
      const std::string field_path = child(path, "content");
      if (auto s = string_at(*content, field_path)) {
        std::string bytes;
        if (s->empty()) {
          error(field_path, "must not be empty");
        } else if (auto problem = decode_content(*s, bytes); !problem.empty()) {
          error(field_path, std::string(problem));
        } else if (bytes.size() > kMaxPatchContentBytes) {
          error(field_path,
                "longer than " + std::to_string(kMaxPatchContentBytes) + " bytes (after decoding)");
        } else {
          m.content = std::move(bytes);
        }
      }
    }
    // offset/depth place the content (Snort semantics); without content they mean nothing.
    if (const json::value* f = o->if_contains("offset")) {
      const std::string field_path = child(path, "offset");
      if (content == nullptr) {
        error(field_path, "needs content");
      } else {
        m.offset = uint_at(*f, field_path, 0, 65535);
      }
    }
    if (const json::value* f = o->if_contains("depth")) {
      const std::string field_path = child(path, "depth");
      if (content == nullptr) {
        error(field_path, "needs content");
      } else {
        m.depth = uint_at(*f, field_path, 1, 65535);
        if (m.depth && *m.depth < m.content.size()) {
          error(field_path, "shorter than content (it could never match)");
        }
      }
    }
    if (regex != nullptr) {
      const std::string field_path = child(path, "regex");
      if (auto s = string_at(*regex, field_path)) {
        if (s->empty()) {
          error(field_path, "must not be empty");
        } else if (utf8_length(*s) > kMaxPatchRegexChars) {
          error(field_path, "longer than " + std::to_string(kMaxPatchRegexChars) + " characters");
        } else {
          m.regex = std::string(*s);
        }
      }
    }
    return m;
  }

  ErrorSink& errors_;
  std::map<std::string, std::string, std::less<>> device_names_;
  std::map<MacAddress, std::string> device_macs_;
  std::map<IpAddress, AddressOwner> device_ips_;
  std::set<std::string, std::less<>> policy_patch_ids_;
};

// ---------------------------------------------------------------------------------------
// Serialising.

json::string_view js(std::string_view s) {
  return {s.data(), s.size()};
}

json::array string_array(const std::vector<std::string>& values) {
  json::array out;
  out.reserve(values.size());
  for (const std::string& v : values) out.emplace_back(js(v));
  return out;
}

bool is_any_port(const PortRange& r) {
  return r == PortRange{};
}

json::value port_value(const PortRange& r) {
  if (r.first == r.last) return json::value(r.first);
  return json::value(js(std::to_string(r.first) + "-" + std::to_string(r.last)));
}

// Empty constraint lists mean "any" and are written by leaving the field out, the only
// spelling the parser accepts for it.
void put_list(json::object& o, std::string_view key, const std::vector<std::string>& values) {
  if (!values.empty()) o[js(key)] = string_array(values);
}

json::object rule_json(const Rule& r) {
  json::object o;
  o["name"] = js(r.name);
  o["dir"] = js(to_string(r.dir));
  o["proto"] = js(to_string(r.proto));
  o["peer"] = js(r.peer.to_string());
  if (r.proto != Protocol::icmp && !is_any_port(r.dport)) o["dport"] = port_value(r.dport);
  if (r.dicom || r.hl7) {
    json::object app;
    if (r.dicom) {
      json::object dicom;
      put_list(dicom, "calling_ae", r.dicom->calling_ae);
      put_list(dicom, "called_ae", r.dicom->called_ae);
      put_list(dicom, "commands", r.dicom->commands);
      put_list(dicom, "sop_classes", r.dicom->sop_classes);
      app["dicom"] = std::move(dicom);
    }
    if (r.hl7) {
      json::object hl7;
      put_list(hl7, "message_types", r.hl7->message_types);
      put_list(hl7, "sending_facilities", r.hl7->sending_facilities);
      app["hl7"] = std::move(hl7);
    }
    o["app"] = std::move(app);
  }
  return o;
}

json::object device_json(const Device& d) {
  json::object o;
  o["name"] = js(d.name);
  o["mac"] = js(d.mac.to_string());
  json::array ips;
  for (const IpAddress& ip : d.ips) ips.emplace_back(js(ip.to_string()));
  o["ip"] = std::move(ips);
  o["mode"] = js(to_string(d.mode));
  o["deny_action"] = js(to_string(d.deny_action));
  json::array rules;
  rules.reserve(d.rules.size());
  for (const Rule& r : d.rules) rules.emplace_back(rule_json(r));
  o["rules"] = std::move(rules);
  o["patches"] = string_array(d.patches);
  return o;
}

json::object patch_json(const PolicyPatch& p) {
  json::object o;
  o["id"] = js(p.id);
  if (!p.cve.empty()) o["cve"] = js(p.cve);
  o["dir"] = js(to_string(p.dir));
  o["proto"] = js(to_string(p.proto));
  if (!is_any_port(p.dport)) o["dport"] = port_value(p.dport);
  json::object match;
  if (!p.match.content.empty()) match["content"] = js(encode_content(p.match.content));
  if (p.match.offset) match["offset"] = *p.match.offset;
  if (p.match.depth) match["depth"] = *p.match.depth;
  if (p.match.regex) match["regex"] = js(*p.match.regex);
  o["match"] = std::move(match);
  o["action"] = js(to_string(p.action));
  return o;
}

}  // namespace

PolicyParseResult parse_policy(std::string_view text) {
  PolicyParseResult result;
  try {
    ErrorSink errors;
    if (text.size() > kMaxPolicyBytes) {
      errors.add("", "document too large: " + std::to_string(text.size()) + " bytes, at most " +
                         std::to_string(kMaxPolicyBytes));
      result.errors = errors.take();
      return result;
    }
    // One arena for the whole JSON tree, freed at once when parsing is over.
    json::monotonic_resource arena;
    if (const auto root = read_json(text, &arena, errors)) {
      PolicyDocument document = Validator(errors).run(*root);
      if (errors.empty()) result.document = std::move(document);
    }
    result.errors = errors.take();
  } catch (const std::exception& e) {
    // Only resource exhaustion can get here (the validator reports everything else);
    // the caller still gets an invalid-document answer, never an exception.
    result.document.reset();
    result.errors.clear();
    result.errors.push_back({"", std::string("internal error while parsing: ") + e.what()});
  } catch (...) {
    result.document.reset();
    result.errors.clear();
    result.errors.push_back({"", "internal error while parsing"});
  }
  return result;
}

std::string to_json(const PolicyDocument& document) {
  json::object top;
  top["schema"] = js(kPolicySchemaId);
  top["unknown_devices"] = js(to_string(document.unknown_devices));
  json::array devices;
  devices.reserve(document.devices.size());
  for (const Device& d : document.devices) devices.emplace_back(device_json(d));
  top["devices"] = std::move(devices);
  json::array patches;
  for (const PolicyPatch& p : document.patches) patches.emplace_back(patch_json(p));
  top["patches"] = std::move(patches);
  return json::serialize(top);
}

std::string_view to_string(DeviceMode mode) {
  return spell(kModeNames, mode);
}
std::string_view to_string(Direction dir) {
  return spell(kDirectionNames, dir);
}
std::string_view to_string(Protocol proto) {
  return spell(kProtocolNames, proto);
}
std::string_view to_string(UnknownDevices unknown) {
  return spell(kUnknownDevicesNames, unknown);
}
std::string_view to_string(DenyAction action) {
  return spell(kDenyActionNames, action);
}
std::string_view to_string(PatchAction action) {
  return spell(kPatchActionNames, action);
}

}  // namespace cordon::engine
