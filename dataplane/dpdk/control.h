// The dataplane's control socket: newline-delimited JSON over a unix stream socket.
// One request object per line, one response object per line (docs/dataplane-control.md):
//
//   {"cmd":"apply","document":"<policy JSON text>","version":N}  -> {"ok":true,"version":N}
//                                     or {"ok":false,"errors":[{"path":..,"message":..}]}
//   {"cmd":"get"}    -> {"ok":true,"version":N,"policy":{...},"vendor_sessions":[..]}
//                       (version 0, policy null: none; the policy without the sessions)
//   {"cmd":"vendor_sessions","sessions":[{"id":N,"service_address":"10.50.0.250",
//     "device":"ct-1","ports":[104],"expires_unix_ms":N},..]}
//                    -> {"ok":true,"sessions":[..the active ones..]}  (replaces them all;
//                       see vendor_sessions.h)
//   {"cmd":"stats"}  -> {"ok":true,"version":N,"packets":..,"dropped":{..},"devices":{..}}
//   {"cmd":"events","follow":bool}  -> recent events, one {"event":{..}} per line, then
//                                      {"ok":true,"end":true}; with follow, new events
//                                      keep coming until the client disconnects.
//
// Threads: everything here runs on the single control thread (it calls Engine::publish,
// poll_events and read_counters).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/dpdk/policy_state.h"
#include "dataplane/engine/engine.h"

namespace cordon::dataplane {

// Request handling without I/O (unit-tested directly).
class ControlHandler {
 public:
  using WallClock = std::function<int64_t()>;  // milliseconds since 1970
  ControlHandler(engine::Engine& engine, PolicyState& state, WallClock clock = {});
  // Answers one request line with one response line (no trailing newline). The events
  // command is answered by the server, which streams.
  std::string handle(std::string_view line);
  std::string stats_json() const;
  // Ends the vendor sessions past their expiry (called every loop of the server).
  size_t expire_vendor_sessions() { return state_.expire_vendor_sessions(clock_()); }

 private:
  engine::Engine& engine_;
  PolicyState& state_;
  WallClock clock_;
};

// Converts an engine event to its JSON line ({"event":{...}}). Wall-clock time is the
// event's monotonic time plus `realtime_offset_ns`. `run` (random per dataplane start)
// and `seq` (counting from 1 within a run) let a subscriber that reconnects skip the
// recent events it already has.
std::string event_json(const engine::Event& e, int64_t realtime_offset_ns, std::string_view run,
                       uint64_t seq);

class ControlServer {
 public:
  ControlServer(engine::Engine& engine, PolicyState& state, std::string socket_path);
  ~ControlServer();
  // Creates and listens on the socket (replacing a stale one). Returns an error message.
  std::string listen();
  // Serves clients and drains engine events until `stop` becomes true.
  // Serves until `stop`; `on_turn` (the service watchdog) runs on every turn of the loop,
  // at least every 50 ms.
  void run(const std::atomic<bool>& stop, const std::function<void()>& on_turn = {});

 private:
  struct Client {
    int fd;
    std::string in;
    std::string out;
    bool follow = false;
    bool close_after_write = false;
  };
  void accept_clients();
  void read_client(Client& c);
  void write_client(Client& c);
  void drain_events();

  engine::Engine& engine_;
  ControlHandler handler_;
  std::string path_;
  int listen_fd_ = -1;
  std::vector<Client> clients_;
  std::deque<std::string> recent_;  // last events, for non-follow queries
  int64_t realtime_offset_ns_ = 0;
  std::string run_;         // identifies this process's event sequence
  uint64_t event_seq_ = 0;  // last sequence number given
};

}  // namespace cordon::dataplane
