// Forwards one request to cordon-controld's unix socket (HTTP/1.1 + JSON), naming the web
// user and the client's address in X-Cordon-User / X-Cordon-Origin. controld honours
// those headers only from uids given to it with --trusted-uid (webd's uid).
//
// Threads: runs on the io_context it is given; the callback is called there, once.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <string>

namespace cordon::webui::routes {

struct ControldReply {
  unsigned status = 0;  // 0: controld could not be reached or did not answer
  std::string body;
  std::string error;  // why, when status is 0
};

class ControldClient {
 public:
  // The timeout covers long polls (GET /v1/events?wait=...).
  ControldClient(boost::asio::io_context& io, std::string socket_path,
                 std::chrono::seconds timeout = std::chrono::seconds(120))
      : io_(io), socket_path_(std::move(socket_path)), timeout_(timeout) {}

  void forward(const std::string& method, const std::string& target, std::string body,
               const std::string& user, const std::string& origin,
               std::function<void(ControldReply)> done,
               const std::string& content_type = "application/json");

 private:
  boost::asio::io_context& io_;
  std::string socket_path_;
  std::chrono::seconds timeout_;
};

}  // namespace cordon::webui::routes
