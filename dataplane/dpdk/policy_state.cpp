#include "dataplane/dpdk/policy_state.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

namespace cordon::dataplane {

bool write_file_durably(const std::string& path, const std::string& content, std::string& error) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    error = tmp + ": " + std::strerror(errno);
    return false;
  }
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      error = tmp + ": " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    error = tmp + ": " + std::strerror(errno);
    return false;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    error = path + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

PolicyState::PolicyState(engine::Engine& engine, std::string state_dir)
    : engine_(engine), state_dir_(std::move(state_dir)) {}

ApplyResult PolicyState::apply(std::string_view json, uint64_t version) {
  ApplyResult result;
  engine::PolicyParseResult parsed = engine::parse_policy(json);
  if (!parsed.document) {
    result.errors = std::move(parsed.errors);
    return result;
  }
  const uint64_t active = version_.load();
  if (version == 0) version = active + 1;
  if (version <= active) {
    result.errors.push_back({"", "version " + std::to_string(version) +
                                     " is not newer than the active version " +
                                     std::to_string(active)});
    return result;
  }
  engine::CompileResult compiled = compile(*parsed.document, version);
  if (!compiled.policy) {
    result.errors = std::move(compiled.errors);
    return result;
  }
  // Persist first, then publish: a crash in between restarts with the new policy, which
  // is what the caller asked for and is only acknowledged after publish returns.
  const std::string canonical = engine::to_json(*parsed.document);
  std::string error;
  if (!persist(canonical, version, error)) {
    result.errors.push_back({"", "cannot persist policy: " + error});
    return result;
  }
  engine_.publish(std::move(compiled.policy));
  version_ = version;
  document_ = std::move(parsed.document);
  result.ok = true;
  result.version = version;
  return result;
}

engine::CompileResult PolicyState::compile(const engine::PolicyDocument& document,
                                           uint64_t version) const {
  if (sessions_.empty()) return engine::compile_policy(document, version, engine_.worker_count());
  return engine::compile_policy(with_vendor_sessions(document, sessions_), version,
                                engine_.worker_count());
}

ApplyResult PolicyState::set_vendor_sessions(std::vector<VendorSession> sessions,
                                             int64_t now_unix_ms) {
  std::erase_if(sessions, [&](const VendorSession& s) { return s.expires_unix_ms <= now_unix_ms; });
  ApplyResult result;
  result.version = version_.load();
  if (sessions == sessions_) {
    result.ok = true;
    return result;
  }
  std::vector<VendorSession> previous = std::exchange(sessions_, std::move(sessions));
  if (!document_) {
    result.ok = true;  // enforced with the first policy
    return result;
  }
  engine::CompileResult compiled = compile(*document_, version_.load());
  if (!compiled.policy) {
    sessions_ = std::move(previous);
    result.errors = std::move(compiled.errors);
    return result;
  }
  engine_.publish(std::move(compiled.policy));
  result.ok = true;
  return result;
}

size_t PolicyState::expire_vendor_sessions(int64_t now_unix_ms) {
  std::vector<VendorSession> remaining = sessions_;
  const size_t ended = std::erase_if(
      remaining, [&](const VendorSession& s) { return s.expires_unix_ms <= now_unix_ms; });
  if (ended == 0) return 0;
  // Fewer rules than an already compiled policy: compiling cannot fail on size; if it
  // did, the sessions are dropped anyway so that nothing outlives its expiry.
  sessions_ = std::move(remaining);
  if (!document_) return ended;
  engine::CompileResult compiled = compile(*document_, version_.load());
  if (compiled.policy) {
    engine_.publish(std::move(compiled.policy));
  } else {
    engine::CompileResult plain =
        engine::compile_policy(*document_, version_.load(), engine_.worker_count());
    if (plain.policy) {
      sessions_.clear();
      engine_.publish(std::move(plain.policy));
    }
  }
  return ended;
}

bool PolicyState::persist(const std::string& json, uint64_t version, std::string& error) const {
  // policy.json carries its version on the first line so the pair is one atomic file.
  if (!write_file_durably(state_dir_ + "/policy.json", std::to_string(version) + "\n" + json,
                          error)) {
    return false;
  }
  fsync_dir(state_dir_);
  return true;
}

std::optional<std::string> PolicyState::restore() {
  const std::optional<std::string> content = read_file(state_dir_ + "/policy.json");
  if (!content) return std::nullopt;  // nothing persisted yet
  const size_t newline = content->find('\n');
  uint64_t version = 0;
  if (newline == std::string::npos ||
      std::from_chars(content->data(), content->data() + newline, version).ec != std::errc{} ||
      version == 0) {
    return "persisted policy " + state_dir_ + "/policy.json has no valid version line";
  }
  engine::PolicyParseResult parsed =
      engine::parse_policy(std::string_view(*content).substr(newline + 1));
  if (!parsed.document) {
    return "persisted policy is invalid: " + parsed.errors.front().to_string();
  }
  engine::CompileResult compiled = compile(*parsed.document, version);
  if (!compiled.policy)
    return "persisted policy does not compile: " + compiled.errors.front().to_string();
  engine_.publish(std::move(compiled.policy));
  version_ = version;
  document_ = std::move(parsed.document);
  return std::nullopt;
}

}  // namespace cordon::dataplane
