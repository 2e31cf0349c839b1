#include "webui/routes/controld_client.h"

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>

namespace cordon::webui::routes {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;

namespace {

struct Call : std::enable_shared_from_this<Call> {
  Call(asio::io_context& io, std::function<void(ControldReply)> d)
      : stream(io), done(std::move(d)) {}
  beast::basic_stream<local> stream;
  http::request<http::string_body> req;
  http::response_parser<http::string_body> parser;
  beast::flat_buffer buffer;
  std::function<void(ControldReply)> done;

  void fail(const std::string& what, beast::error_code ec) {
    done(ControldReply{0, {}, what + ": " + ec.message()});
  }
};

}  // namespace

void ControldClient::forward(const std::string& method, const std::string& target, std::string body,
                             const std::string& user, const std::string& origin,
                             std::function<void(ControldReply)> done,
                             const std::string& content_type) {
  auto call = std::make_shared<Call>(io_, std::move(done));
  call->req.method_string(method);
  call->req.target(target);
  call->req.version(11);
  call->req.set(http::field::host, "controld");
  call->req.set("X-Cordon-User", user);
  call->req.set("X-Cordon-Origin", origin);
  if (!body.empty()) call->req.set(http::field::content_type, content_type);
  call->req.body() = std::move(body);
  call->req.keep_alive(false);
  call->req.prepare_payload();
  call->parser.body_limit(64ull << 20);
  call->stream.expires_after(timeout_);
  call->stream.async_connect(local::endpoint(socket_path_), [call](beast::error_code ec) {
    if (ec) return call->fail("cannot connect to controld", ec);
    http::async_write(call->stream, call->req, [call](beast::error_code wec, size_t) {
      if (wec) return call->fail("cannot send to controld", wec);
      http::async_read(call->stream, call->buffer, call->parser,
                       [call](beast::error_code rec, size_t) {
                         if (rec) return call->fail("no answer from controld", rec);
                         auto res = call->parser.release();
                         beast::error_code ignored;
                         call->stream.socket().shutdown(local::socket::shutdown_both, ignored);
                         call->done(ControldReply{res.result_int(), std::move(res.body()), {}});
                       });
    });
  });
}

}  // namespace cordon::webui::routes
