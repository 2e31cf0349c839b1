// controld's side of the dataplane's control socket (newline-delimited JSON, see
// dataplane/dpdk/control.h): install a policy version and learn which version the
// dataplane enforces (DataplaneLink), and receive its events (EventFeed).
//
// Threads: a DataplaneLink is used by one thread at a time (controld's control thread).
// An EventFeed runs its own reader thread and hands events over through a callback
// that must be thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "control/common/result.h"

namespace cordon::control::dataplane_link {

class DataplaneLink {
 public:
  virtual ~DataplaneLink() = default;
  // Installs `document` (policy JSON) as `version`; returns once the dataplane has
  // persisted and published it. Validation errors come back as "invalid" with the path.
  virtual Status apply(const std::string& document, int64_t version) = 0;
  // The version the dataplane enforces (0: none).
  virtual Result<int64_t> version() = 0;
  // The dataplane's counters as JSON text.
  virtual Result<std::string> stats() = 0;
  // Replaces the vendor sessions the dataplane admits ({"cmd":"vendor_sessions"};
  // `sessions_json` is the JSON array, dataplane/dpdk/vendor_sessions.h). The dataplane
  // ignores a list equal to the one it enforces, so this may be repeated freely.
  virtual Status set_vendor_sessions(const std::string& sessions_json) = 0;
};

class SocketDataplaneLink final : public DataplaneLink {
 public:
  // `timeout_ms` bounds each request (connect, write, read).
  explicit SocketDataplaneLink(std::string socket_path, int timeout_ms = 10000)
      : path_(std::move(socket_path)), timeout_ms_(timeout_ms) {}
  Status apply(const std::string& document, int64_t version) override;
  Result<int64_t> version() override;
  Result<std::string> stats() override;
  Status set_vendor_sessions(const std::string& sessions_json) override;

 private:
  Result<std::string> request(const std::string& line);
  std::string path_;
  int timeout_ms_;
};

// Follows the dataplane's event stream, reconnecting when the dataplane restarts.
// Each event object (the "event" member of a line, re-serialised) reaches `on_event`
// once: events replayed on reconnect (same run, seq already seen) are skipped.
class EventFeed {
 public:
  using Handler = std::function<void(const std::string& event_json)>;
  EventFeed(std::string socket_path, Handler on_event);
  ~EventFeed();  // stops the thread
  EventFeed(const EventFeed&) = delete;
  EventFeed& operator=(const EventFeed&) = delete;
  void start();

 private:
  void run();
  std::string path_;
  Handler on_event_;
  std::atomic<bool> stop_{false};
  int wake_fd_[2] = {-1, -1};  // the destructor writes here to interrupt poll()
  std::thread thread_;
  std::string last_run_;
  uint64_t last_seq_ = 0;
};

}  // namespace cordon::control::dataplane_link
