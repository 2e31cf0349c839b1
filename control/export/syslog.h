// Event export to a syslog collector: RFC 5424 messages over UDP (RFC 5426), TCP (RFC
// 6587 octet counting) or TLS (RFC 5425), as plain RFC 5424 with structured data or as
// CEF (ArcSight Common Event Format) in the message part.
//
// Events carry no patient data (the dataplane never copies payload bytes into them), so
// nothing is filtered here; field values are escaped for their format.
//
// Threads: SyslogExporter owns a sender thread; submit() and configure() may be called
// from the control thread. A slow or unreachable collector never blocks the caller: the
// queue is bounded and the oldest messages are dropped and counted.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "control/common/result.h"

namespace cordon::control::export_ {

struct SyslogSettings {
  bool enabled = false;
  std::string host;  // IPv4/IPv6 address of the collector
  uint16_t port = 514;
  std::string transport = "udp";   // udp | tcp | tls
  std::string format = "rfc5424";  // rfc5424 | cef
  std::string ca_file;             // tls: CA that signed the collector's certificate (required)
  std::string server_name;         // tls: the name its certificate must carry (default: host)
};

Result<SyslogSettings> parse_syslog_settings(const boost::json::value& v);
boost::json::value syslog_settings_json(const SyslogSettings& s);

// One event as a complete syslog message (without transport framing).
std::string format_rfc5424(const boost::json::object& event, const std::string& hostname);
std::string format_cef(const boost::json::object& event, const std::string& hostname);

struct SyslogStats {
  uint64_t sent = 0;
  uint64_t dropped = 0;  // queue full or the collector unreachable for too long
  std::string last_error;
};

class SyslogExporter {
 public:
  SyslogExporter();
  ~SyslogExporter();
  SyslogExporter(const SyslogExporter&) = delete;
  SyslogExporter& operator=(const SyslogExporter&) = delete;

  void configure(const SyslogSettings& settings);
  void submit(const boost::json::object& event);
  SyslogStats stats();

 private:
  void run();
  bool send(const std::string& message);  // on the sender thread
  void disconnect();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::string> queue_;
  SyslogSettings settings_;
  uint64_t generation_ = 0;  // bumped by configure(): reconnect
  bool stop_ = false;
  SyslogStats stats_;
  std::string hostname_;
  std::thread thread_;

  // Sender thread only.
  int fd_ = -1;
  void* ssl_ctx_ = nullptr;  // SSL_CTX*
  void* ssl_ = nullptr;      // SSL*
  uint64_t connected_generation_ = ~uint64_t{0};
};

}  // namespace cordon::control::export_
