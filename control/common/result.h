// Results of control-plane operations: a value or an Error, never an exception across a
// module boundary. Every module reports failures as Error; context is added as the
// error travels up (Error::context), so the final message says what failed and where.
//
// Threads: plain values, no shared state.
#pragma once

#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace cordon::control {

struct Error {
  Error() = default;
  Error(std::string code_, std::string message_, std::string path_ = {},
        std::vector<Error> details_ = {})
      : code(std::move(code_)),
        message(std::move(message_)),
        path(std::move(path_)),
        details(std::move(details_)) {}

  // Stable machine-readable kind, e.g. "invalid", "not_found", "conflict", "io",
  // "dataplane", "unavailable". The API maps it to an HTTP status.
  std::string code;
  std::string message;         // for a person: what was wrong
  std::string path;            // JSON path of the offending field when the input was at fault
  std::vector<Error> details;  // every individual problem, when there were several

  // "applying policy: " + message
  Error context(const std::string& what) const {
    return Error{code, what + ": " + message, path, details};
  }
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : state_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  const Error& error() const { return std::get<1>(state_); }

 private:
  std::variant<T, Error> state_;
};

// A result without a value.
struct Done {};
using Status = Result<Done>;
inline Status ok() {
  return Done{};
}

}  // namespace cordon::control
