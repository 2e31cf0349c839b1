#include "control/dataplane_link/link.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace cordon::control::dataplane_link {
namespace json = boost::json;
namespace {

Error unavailable(const std::string& path, const std::string& what) {
  return Error{"dataplane", "dataplane control socket " + path + ": " + what, ""};
}

// A connected, non-blocking unix stream socket, or -1 with errno set.
int connect_unix(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int saved = errno;
    ::close(fd);
    errno = saved;
    return -1;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Waits for `events` on fd until the deadline. False on timeout.
bool wait_fd(int fd, short events, int64_t deadline_ms) {
  for (;;) {
    const int64_t left = deadline_ms - now_ms();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

}  // namespace

Result<std::string> SocketDataplaneLink::request(const std::string& line) {
  const int fd = connect_unix(path_);
  if (fd < 0) return unavailable(path_, std::strerror(errno));
  const int64_t deadline = now_ms() + timeout_ms_;
  std::string out = line + "\n";
  size_t sent = 0;
  std::string in;
  Result<std::string> result = unavailable(path_, "no answer");
  while (sent < out.size()) {
    if (!wait_fd(fd, POLLOUT, deadline)) {
      ::close(fd);
      return unavailable(path_, "timed out sending");
    }
    const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      return unavailable(path_, why);
    }
    if (n > 0) sent += static_cast<size_t>(n);
  }
  for (;;) {
    const size_t newline = in.find('\n');
    if (newline != std::string::npos) {
      ::close(fd);
      return in.substr(0, newline);
    }
    if (in.size() > (64u << 20)) break;
    if (!wait_fd(fd, POLLIN, deadline)) {
      ::close(fd);
      return unavailable(path_, "timed out waiting for the answer");
    }
    char buf[65536];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      break;
    }
    in.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return unavailable(path_, "connection closed before an answer");
}

Status SocketDataplaneLink::apply(const std::string& document, int64_t version) {
  Result<std::string> answer = request(json::serialize(
      json::object{{"cmd", "apply"}, {"document", document}, {"version", version}}));
  if (!answer) return answer.error();
  json::error_code ec;
  const json::value v = json::parse(answer.value(), ec);
  if (ec || !v.is_object()) return unavailable(path_, "unreadable answer to apply");
  const json::object& o = v.as_object();
  const json::value* ok_field = o.if_contains("ok");
  if (ok_field && ok_field->is_bool() && ok_field->as_bool()) {
    const json::value* got = o.if_contains("version");
    if (!got || !got->is_int64() || got->as_int64() != version)
      return unavailable(path_, "acknowledged a different version");
    return ok();
  }
  // The dataplane validates again; its first error is reported with its path.
  if (const json::value* errors = o.if_contains("errors"); errors && errors->is_array() &&
                                                           !errors->as_array().empty() &&
                                                           errors->as_array()[0].is_object()) {
    const json::object& first = errors->as_array()[0].as_object();
    const json::value* path = first.if_contains("path");
    const json::value* message = first.if_contains("message");
    return Error{"invalid",
                 "dataplane refused the policy: " +
                     (message && message->is_string() ? std::string(message->as_string()) : ""),
                 path && path->is_string() ? std::string(path->as_string()) : ""};
  }
  return unavailable(path_, "refused the policy without saying why");
}

Result<int64_t> SocketDataplaneLink::version() {
  Result<std::string> answer = request(R"({"cmd":"get"})");
  if (!answer) return answer.error();
  json::error_code ec;
  const json::value v = json::parse(answer.value(), ec);
  const json::value* got = !ec && v.is_object() ? v.as_object().if_contains("version") : nullptr;
  if (!got || !got->is_number()) return unavailable(path_, "unreadable answer to get");
  return got->to_number<int64_t>();
}

Status SocketDataplaneLink::set_vendor_sessions(const std::string& sessions_json) {
  json::error_code ec;
  json::value sessions = json::parse(sessions_json, ec);
  if (ec || !sessions.is_array()) return Error{"invalid", "vendor sessions: not a JSON array"};
  Result<std::string> answer = request(
      json::serialize(json::object{{"cmd", "vendor_sessions"}, {"sessions", std::move(sessions)}}));
  if (!answer) return answer.error();
  const json::value v = json::parse(answer.value(), ec);
  if (ec || !v.is_object()) return unavailable(path_, "unreadable answer to vendor_sessions");
  const json::value* ok_field = v.as_object().if_contains("ok");
  if (ok_field && ok_field->is_bool() && ok_field->as_bool()) return ok();
  const json::value* errors = v.as_object().if_contains("errors");
  return Error{"invalid", "dataplane refused the vendor sessions: " +
                              (errors ? json::serialize(*errors) : std::string("no reason"))};
}

Result<std::string> SocketDataplaneLink::stats() {
  return request(R"({"cmd":"stats"})");
}

EventFeed::EventFeed(std::string socket_path, Handler on_event)
    : path_(std::move(socket_path)), on_event_(std::move(on_event)) {
  if (::pipe2(wake_fd_, O_CLOEXEC | O_NONBLOCK) != 0) wake_fd_[0] = wake_fd_[1] = -1;
}

EventFeed::~EventFeed() {
  stop_ = true;
  if (wake_fd_[1] >= 0) (void)!::write(wake_fd_[1], "x", 1);
  if (thread_.joinable()) thread_.join();
  for (int fd : wake_fd_)
    if (fd >= 0) ::close(fd);
}

void EventFeed::start() {
  thread_ = std::thread([this] { run(); });
}

void EventFeed::run() {
  while (!stop_) {
    const int fd = connect_unix(path_);
    if (fd >= 0) {
      const std::string subscribe = R"({"cmd":"events","follow":true})"
                                    "\n";
      (void)::send(fd, subscribe.data(), subscribe.size(), MSG_NOSIGNAL);
      std::string in;
      while (!stop_) {
        pollfd p[2] = {{fd, POLLIN, 0}, {wake_fd_[0], POLLIN, 0}};
        if (::poll(p, 2, -1) < 0 && errno != EINTR) break;
        if (p[1].revents) break;
        char buf[65536];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) break;
        if (n < 0) continue;
        in.append(buf, static_cast<size_t>(n));
        size_t newline;
        while ((newline = in.find('\n')) != std::string::npos) {
          json::error_code ec;
          const json::value v = json::parse(std::string_view(in).substr(0, newline), ec);
          in.erase(0, newline + 1);
          const json::value* event =
              !ec && v.is_object() ? v.as_object().if_contains("event") : nullptr;
          if (!event || !event->is_object()) continue;
          const json::object& e = event->as_object();
          const json::value* run = e.if_contains("run");
          const json::value* seq = e.if_contains("seq");
          if (run && run->is_string() && seq && seq->is_number()) {
            const std::string run_id(run->as_string());
            const auto seq_no = seq->to_number<uint64_t>();
            if (run_id == last_run_ && seq_no <= last_seq_) continue;  // already delivered
            last_run_ = run_id;
            last_seq_ = seq_no;
          }
          on_event_(json::serialize(e));
        }
      }
      ::close(fd);
    }
    // The dataplane is down or restarting: retry, but wake at once on stop.
    pollfd p{wake_fd_[0], POLLIN, 0};
    (void)::poll(&p, 1, 500);
  }
}

}  // namespace cordon::control::dataplane_link
