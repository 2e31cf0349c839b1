// cordonctl: command-line client of Cordon's control API.
//
// Until cordon-controld exists it talks to the dataplane's control socket directly
// (newline-delimited JSON, dataplane/dpdk/control.h). The socket is $CORDON_SOCKET, else
// the first of /run/cordon/dataplane.sock and /run/cordon-lab/dataplane.sock that exists.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace json = boost::json;

namespace {

constexpr const char* kUsage =
    "usage: cordonctl [--socket PATH] COMMAND\n"
    "  policy apply FILE        apply FILE; exit 0 once the dataplane enforces it\n"
    "  policy get               the active policy (JSON) and its version\n"
    "  stats                    counters by reason and device (JSON)\n"
    "  events [--follow] [--json]  alerts and drops, one per line\n";

std::string socket_path(const std::optional<std::string>& flag) {
  if (flag) return *flag;
  if (const char* env = std::getenv("CORDON_SOCKET")) return env;
  for (const char* candidate : {"/run/cordon/dataplane.sock", "/run/cordon-lab/dataplane.sock"}) {
    if (std::filesystem::exists(candidate)) return candidate;
  }
  return "/run/cordon/dataplane.sock";
}

class Connection {
 public:
  explicit Connection(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (fd_ < 0 || path.size() >= sizeof addr.sun_path) throw std::runtime_error("bad socket path");
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("cannot connect to " + path + ": " + std::strerror(errno) +
                               " (is the dataplane running? set CORDON_SOCKET or --socket)");
    }
  }
  ~Connection() { ::close(fd_); }
  void send_line(const std::string& line) {
    const std::string data = line + "\n";
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw std::runtime_error(std::string("send: ") + std::strerror(errno));
      }
      done += static_cast<size_t>(n);
    }
  }
  // The next line, or nullopt at end of stream.
  std::optional<std::string> read_line() {
    for (;;) {
      const size_t newline = buffer_.find('\n');
      if (newline != std::string::npos) {
        std::string line = buffer_.substr(0, newline);
        buffer_.erase(0, newline + 1);
        return line;
      }
      char chunk[65536];
      const ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  json::object request(const json::object& req) {
    send_line(json::serialize(req));
    const auto line = read_line();
    if (!line) throw std::runtime_error("the dataplane closed the connection without answering");
    return json::parse(*line).as_object();
  }

 private:
  int fd_ = -1;
  std::string buffer_;
};

void print_errors(const json::object& response) {
  if (const json::value* errors = response.if_contains("errors")) {
    for (const json::value& e : errors->as_array()) {
      const json::object& o = e.as_object();
      const std::string path(o.at("path").as_string());
      const std::string message(o.at("message").as_string());
      std::cerr << (path.empty() ? message : path + ": " + message) << "\n";
    }
  }
}

// Pretty printer for JSON output (Boost.JSON serialises compactly).
void pretty(std::ostream& os, const json::value& v, int indent = 0) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  if (v.is_object()) {
    const auto& o = v.as_object();
    if (o.empty()) {
      os << "{}";
      return;
    }
    os << "{\n";
    size_t i = 0;
    for (const auto& [k, val] : o) {
      os << pad << "  " << json::serialize(json::value(k)) << ": ";
      pretty(os, val, indent + 2);
      os << (++i < o.size() ? ",\n" : "\n");
    }
    os << pad << "}";
  } else if (v.is_array()) {
    const auto& a = v.as_array();
    if (a.empty()) {
      os << "[]";
      return;
    }
    os << "[\n";
    for (size_t i = 0; i < a.size(); ++i) {
      os << pad << "  ";
      pretty(os, a[i], indent + 2);
      os << (i + 1 < a.size() ? ",\n" : "\n");
    }
    os << pad << "]";
  } else {
    os << json::serialize(v);
  }
}

std::string event_text(const json::object& e) {
  auto str = [&](const char* key) {
    const json::value* v = e.if_contains(key);
    if (v == nullptr) return std::string();
    return v->is_string() ? std::string(v->as_string()) : json::serialize(*v);
  };
  std::string text = str("time") + " " + str("kind") + " " + str("reason");
  text += " device=" + (str("device").empty() ? std::string("-") : str("device"));
  if (!str("rule").empty()) text += " rule=" + str("rule");
  if (!str("src").empty()) {
    text += " " + str("src") + (str("src_port").empty() ? "" : ":" + str("src_port")) + " -> " +
            str("dst") + (str("dst_port").empty() ? "" : ":" + str("dst_port"));
  }
  text += " proto=" + str("protocol") + " from=" + str("ingress");
  if (!str("detail").empty()) text += " (" + str("detail") + ")";
  return text;
}

int run(std::vector<std::string> args) {
  std::optional<std::string> socket_flag;
  if (args.size() >= 2 && args[0] == "--socket") {
    socket_flag = args[1];
    args.erase(args.begin(), args.begin() + 2);
  }
  if (args.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string path = socket_path(socket_flag);

  if (args[0] == "policy" && args.size() == 3 && args[1] == "apply") {
    std::ifstream in(args[2], std::ios::binary);
    if (!in) {
      std::cerr << "cordonctl: cannot read " << args[2] << "\n";
      return 1;
    }
    std::ostringstream text;
    text << in.rdbuf();
    Connection c(path);
    const json::object r = c.request({{"cmd", "apply"}, {"document", text.str()}});
    if (r.at("ok").as_bool()) {
      std::cout << "applied policy version " << r.at("version").to_number<uint64_t>() << "\n";
      return 0;
    }
    std::cerr << "cordonctl: " << args[2] << " rejected, nothing changed:\n";
    print_errors(r);
    return 1;
  }
  if (args[0] == "policy" && args.size() == 2 && args[1] == "get") {
    Connection c(path);
    const json::object r = c.request({{"cmd", "get"}});
    pretty(std::cout, json::object{{"version", r.at("version")}, {"policy", r.at("policy")}});
    std::cout << "\n";
    return 0;
  }
  if (args[0] == "stats" && args.size() == 1) {
    Connection c(path);
    json::object r = c.request({{"cmd", "stats"}});
    r.erase("ok");
    pretty(std::cout, r);
    std::cout << "\n";
    return 0;
  }
  if (args[0] == "events") {
    bool follow = false;
    bool as_json = false;
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--follow") {
        follow = true;
      } else if (args[i] == "--json") {
        as_json = true;
      } else {
        std::cerr << kUsage;
        return 2;
      }
    }
    Connection c(path);
    c.send_line(json::serialize(json::object{{"cmd", "events"}, {"follow", follow}}));
    while (auto line = c.read_line()) {
      const json::object o = json::parse(*line).as_object();
      const json::value* e = o.if_contains("event");
      if (e == nullptr) break;  // {"ok":true,"end":true}
      std::cout << (as_json ? json::serialize(*e) : event_text(e->as_object())) << std::endl;
    }
    return 0;
  }
  std::cerr << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    std::cerr << "cordonctl: " << e.what() << "\n";
    return 1;
  }
}
