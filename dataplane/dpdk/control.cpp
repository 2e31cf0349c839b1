#include "dataplane/dpdk/control.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>

#include "dataplane/dpdk/clock.h"

namespace cordon::dataplane {
namespace json = boost::json;

namespace {

constexpr size_t kMaxRequestBytes = 32 * 1024 * 1024;  // a 200k-rule policy fits
constexpr size_t kMaxClientBacklog = 8 * 1024 * 1024;  // a follower this far behind is cut
constexpr size_t kRecentEvents = 4096;

std::string error_response(std::string_view message) {
  json::object o;
  o["ok"] = false;
  json::array errors;
  errors.push_back(json::object{{"path", ""}, {"message", message}});
  o["errors"] = std::move(errors);
  return json::serialize(o);
}

std::string iso8601(int64_t ns) {
  const time_t seconds = static_cast<time_t>(ns / 1'000'000'000);
  tm utc{};
  gmtime_r(&seconds, &utc);
  char buf[40];
  const size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(buf + n, sizeof buf - n, ".%06lldZ",
                static_cast<long long>((ns % 1'000'000'000) / 1000));
  return buf;
}

json::object device_totals_json(const engine::DeviceTotals& t) {
  json::object dropped;
  json::object would_drop;
  for (size_t r = 1; r < engine::kDropReasonCount; ++r) {
    if (t.dropped[r] != 0) dropped[engine::kDropReasonLabels[r]] = t.dropped[r];
    if (t.would_drop[r] != 0) would_drop[engine::kDropReasonLabels[r]] = t.would_drop[r];
  }
  return json::object{{"forwarded_packets", t.forwarded_packets},
                      {"forwarded_bytes", t.forwarded_bytes},
                      {"new_flows", t.new_flows},
                      {"dropped", std::move(dropped)},
                      {"would_drop", std::move(would_drop)}};
}

}  // namespace

std::string event_json(const engine::Event& e, int64_t realtime_offset_ns, std::string_view run,
                       uint64_t seq) {
  json::object o;
  o["run"] = run;
  o["seq"] = seq;
  o["time"] = iso8601(static_cast<int64_t>(e.time_ns) + realtime_offset_ns);
  o["kind"] = engine::to_string(e.kind);
  o["reason"] = engine::label(e.reason);
  o["device"] = e.device;
  o["rule"] = e.rule;
  if (e.detail[0] != '\0') o["detail"] = e.detail;
  o["ingress"] = e.ingress == engine::Side::device ? "device" : "network";
  o["dir"] = engine::to_string(e.dir);
  o["protocol"] = e.protocol;
  o["src_mac"] = e.src_mac.to_string();
  if (e.src_ip.family != 0) {
    o["src"] = e.src_ip.to_string();
    o["dst"] = e.dst_ip.to_string();
  }
  if (e.protocol == engine::ip_protocol::tcp || e.protocol == engine::ip_protocol::udp) {
    o["src_port"] = e.src_port;
    o["dst_port"] = e.dst_port;
  }
  o["policy_version"] = e.policy_version;
  return json::serialize(json::object{{"event", std::move(o)}});
}

ControlHandler::ControlHandler(engine::Engine& engine, PolicyState& state, WallClock clock)
    : engine_(engine), state_(state), clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return static_cast<int64_t>(realtime_ns() / 1'000'000); };
}

std::string ControlHandler::stats_json() const {
  const engine::CounterSnapshot s = engine_.read_counters();
  json::object dropped;
  for (size_t r = 1; r < engine::kDropReasonCount; ++r) {
    dropped[engine::kDropReasonLabels[r]] = s.dropped[r];
  }
  json::object devices;
  for (const auto& [name, totals] : s.devices) devices[name] = device_totals_json(totals);
  return json::serialize(json::object{{"ok", true},
                                      {"version", state_.version()},
                                      {"packets", s.packets},
                                      {"forwarded", s.forwarded},
                                      {"events_suppressed", s.events_suppressed},
                                      {"flows", json::object{{"active", s.flows_active},
                                                             {"evicted", s.flows_evicted},
                                                             {"expired", s.flows_expired}}},
                                      {"dropped", std::move(dropped)},
                                      {"devices", std::move(devices)}});
}

std::string ControlHandler::handle(std::string_view line) {
  json::error_code ec;
  json::value request = json::parse(line, ec);
  if (ec || !request.is_object()) return error_response("request is not a JSON object");
  const json::object& o = request.as_object();
  const json::value* cmd = o.if_contains("cmd");
  if (cmd == nullptr || !cmd->is_string()) return error_response("cmd: missing or not a string");

  if (cmd->as_string() == "apply") {
    const json::value* document = o.if_contains("document");
    if (document == nullptr || !document->is_string()) {
      return error_response("document: missing or not a string");
    }
    uint64_t version = 0;
    if (const json::value* v = o.if_contains("version")) {
      const bool positive =
          v->is_uint64() ? v->as_uint64() > 0 : v->is_int64() && v->as_int64() > 0;
      if (!positive) {
        return error_response("version: not a positive integer");
      }
      version = v->is_uint64() ? v->as_uint64() : static_cast<uint64_t>(v->as_int64());
    }
    const ApplyResult r = state_.apply(document->as_string(), version);
    if (r.ok) return json::serialize(json::object{{"ok", true}, {"version", r.version}});
    json::array errors;
    for (const auto& e : r.errors) {
      errors.push_back(json::object{{"path", e.path}, {"message", e.message}});
    }
    return json::serialize(json::object{{"ok", false}, {"errors", std::move(errors)}});
  }
  if (cmd->as_string() == "get") {
    json::value policy = nullptr;
    if (state_.document()) policy = json::parse(engine::to_json(*state_.document()));
    return json::serialize(json::object{{"ok", true},
                                        {"version", state_.version()},
                                        {"policy", std::move(policy)},
                                        {"vendor_sessions", to_json(state_.vendor_sessions())}});
  }
  if (cmd->as_string() == "vendor_sessions") {
    const json::value* sessions = o.if_contains("sessions");
    if (sessions == nullptr) return error_response("sessions: missing");
    std::vector<VendorSession> parsed;
    std::vector<engine::PolicyError> errors = parse_vendor_sessions(*sessions, parsed);
    if (errors.empty()) {
      ApplyResult r = state_.set_vendor_sessions(std::move(parsed), clock_());
      if (r.ok) {
        return json::serialize(
            json::object{{"ok", true}, {"sessions", to_json(state_.vendor_sessions())}});
      }
      errors = std::move(r.errors);
    }
    json::array list;
    for (const auto& e : errors) {
      list.push_back(json::object{{"path", e.path}, {"message", e.message}});
    }
    return json::serialize(json::object{{"ok", false}, {"errors", std::move(list)}});
  }
  if (cmd->as_string() == "stats") return stats_json();
  return error_response("cmd: unknown command");
}

ControlServer::ControlServer(engine::Engine& engine, PolicyState& state, std::string socket_path)
    : engine_(engine), handler_(engine, state), path_(std::move(socket_path)) {
  realtime_offset_ns_ = static_cast<int64_t>(realtime_ns()) - static_cast<int64_t>(monotonic_ns());
  std::random_device random;
  char run[17];
  std::snprintf(run, sizeof run, "%08x%08x", random(), random());
  run_ = run;
}

ControlServer::~ControlServer() {
  for (Client& c : clients_) ::close(c.fd);
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    ::unlink(path_.c_str());
  }
}

std::string ControlServer::listen() {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof addr.sun_path) return "control socket path too long: " + path_;
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) return std::string("socket: ") + std::strerror(errno);
  ::unlink(path_.c_str());                // a stale socket of a previous run
  const mode_t old_mask = ::umask(0117);  // srw-rw----: root and the cordon group only
  const int rc = ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old_mask);
  if (rc != 0) return path_ + ": " + std::strerror(errno);
  if (::listen(listen_fd_, 16) != 0) return path_ + ": " + std::strerror(errno);
  return {};
}

void ControlServer::run(const std::atomic<bool>& stop, const std::function<void()>& on_turn) {
  while (!stop.load()) {
    std::vector<pollfd> fds;
    fds.push_back({listen_fd_, POLLIN, 0});
    for (const Client& c : clients_) {
      fds.push_back({c.fd, static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)), 0});
    }
    ::poll(fds.data(), fds.size(), 50);  // wakes at least every 50 ms to drain events
    if (fds[0].revents & POLLIN) accept_clients();
    for (size_t i = 0; i < clients_.size(); ++i) {
      const short revents = fds[i + 1].revents;
      if (revents & (POLLIN | POLLHUP | POLLERR)) read_client(clients_[i]);
      if (clients_[i].fd >= 0 && !clients_[i].out.empty()) write_client(clients_[i]);
    }
    drain_events();
    handler_.expire_vendor_sessions();
    std::erase_if(clients_, [](const Client& c) { return c.fd < 0; });
    if (on_turn) on_turn();
  }
}

void ControlServer::accept_clients() {
  for (;;) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    clients_.push_back(Client{fd, {}, {}});
  }
}

void ControlServer::read_client(Client& c) {
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(c.fd, buf, sizeof buf);
    if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
      if (c.in.size() > kMaxRequestBytes) {
        c.out += error_response("request too large") + "\n";
        c.in.clear();
        c.close_after_write = true;
      }
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
    // End of input: answer what is complete, then close once written.
    c.close_after_write = true;
    break;
  }
  size_t newline;
  while ((newline = c.in.find('\n')) != std::string::npos) {
    const std::string line = c.in.substr(0, newline);
    c.in.erase(0, newline + 1);
    json::error_code ec;
    const json::value v = json::parse(line, ec);
    const json::value* cmd = !ec && v.is_object() ? v.as_object().if_contains("cmd") : nullptr;
    if (cmd != nullptr && cmd->is_string() && cmd->as_string() == "events") {
      drain_events();
      for (const std::string& e : recent_) c.out += e + "\n";
      const json::value* follow = v.as_object().if_contains("follow");
      c.follow = follow != nullptr && follow->is_bool() && follow->as_bool();
      if (!c.follow)
        c.out += R"({"ok":true,"end":true})"
                 "\n";
      continue;
    }
    c.out += handler_.handle(line) + "\n";
  }
  if (c.close_after_write && c.out.empty()) {
    ::close(c.fd);
    c.fd = -1;
  }
}

void ControlServer::write_client(Client& c) {
  while (!c.out.empty()) {
    const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      c.out.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    c.out.clear();
    c.close_after_write = true;
    break;
  }
  if (c.close_after_write && c.out.empty()) {
    ::close(c.fd);
    c.fd = -1;
  }
}

void ControlServer::drain_events() {
  engine::Event batch[256];
  size_t n;
  while ((n = engine_.poll_events(batch)) > 0) {
    for (size_t i = 0; i < n; ++i) {
      std::string line = event_json(batch[i], realtime_offset_ns_, run_, ++event_seq_);
      for (Client& c : clients_) {
        if (c.fd < 0 || !c.follow) continue;
        if (c.out.size() > kMaxClientBacklog) {
          ::close(c.fd);  // a follower that does not read is cut, not waited for
          c.fd = -1;
          continue;
        }
        c.out += line + "\n";
      }
      recent_.push_back(std::move(line));
      if (recent_.size() > kRecentEvents) recent_.pop_front();
    }
  }
}

}  // namespace cordon::dataplane
