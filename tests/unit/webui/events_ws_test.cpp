// cordon-webd's live-events WebSocket end to end: the real HttpsServer over TLS on
// loopback (io_context on its own thread), a fake controld (controld's HttpServer with a
// GET /v1/events long poll like controld's), and a Beast WebSocket client over TLS.
// Refusals (no session, bad or missing Origin, over the cap), events as one text frame
// each (from ?after=ID, and only new ones without it), session end closing with 1008,
// an oversized client message closing with 1009, and a client that reads nothing dropped.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <list>
#include <thread>

#include "tests/unit/webui/webd_harness.h"

namespace cordon::webui {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = asio::ip::tcp;

using testing::kOrigin;

// A WebSocket client with its own io_context, run only while the test waits on it.
struct Client {
  asio::io_context io;
  asio::ssl::context tls{asio::ssl::context::tls_client};
  websocket::stream<beast::ssl_stream<tcp::socket>> ws{io, tls};
  beast::flat_buffer buffer;
};

class EventsWsTest : public testing::WebdHarness {
 protected:
  void SetUp() override {
    server::HttpsServer::Options so;
    so.max_event_sockets = 2;
    so.ws_check_interval = std::chrono::milliseconds(100);
    so.ws_write_timeout = std::chrono::seconds(1);
    start(
        "cordon-webd-ws", 1 << 20,
        [this](control::api::HttpServer& controld) {
          controld.route(
              "GET", "/v1/events",
              [this](control::api::Request& r, control::api::Responder respond) {
                actors_.push_back(r.actor.name);
                const bool positioned = r.query.count("after") || r.query.count("wait");
                const int64_t after = r.query.count("after") ? std::stoll(r.query["after"]) : 0;
                const int64_t limit = r.query.count("limit") ? std::stoll(r.query["limit"]) : 1000;
                const int64_t wait = r.query.count("wait") ? std::stoll(r.query["wait"]) : 0;
                const int64_t newest = static_cast<int64_t>(events_.size());
                if (!positioned)
                  return respond(answer(std::max<int64_t>(0, newest - limit), limit));
                if (newest > after || wait == 0) return respond(answer(after, limit));
                waiters_.push_back({after, limit, std::move(respond)});
              });
        },
        so);
  }

  control::api::Response answer(int64_t after, int64_t limit) {
    json::array out;
    int64_t last = after;
    for (int64_t id = after + 1; id <= static_cast<int64_t>(events_.size()) && id <= after + limit;
         ++id) {
      out.push_back(events_[static_cast<size_t>(id - 1)]);
      last = id;
    }
    return control::api::json_response(json::object{{"events", std::move(out)}, {"last_id", last}});
  }

  void push_events(int n, size_t padding = 0) {
    on_io([&] {
      for (int i = 0; i < n; ++i) {
        const int64_t id = static_cast<int64_t>(events_.size()) + 1;
        events_.push_back(json::object{
            {"id", id}, {"type", "drop"}, {"device", "ct-1"}, {"pad", std::string(padding, 'x')}});
      }
      std::list<Waiter> ready;
      ready.swap(waiters_);
      for (Waiter& w : ready) w.respond(answer(w.after, w.limit));
      return 0;
    });
  }
  template <class F>
  bool wait_until(F pred, std::chrono::seconds limit = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (on_io(pred)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  std::string session_of(const std::string& user) { return login(user).session; }

  // Connects and asks for the upgrade; the HTTP answer (101, or the refusal) goes in `res`.
  beast::error_code open(Client& c, const std::string& target, const std::string& session,
                         const std::optional<std::string>& origin, websocket::response_type& res) {
    c.tls.set_verify_mode(asio::ssl::verify_none);
    beast::error_code ec;
    beast::get_lowest_layer(c.ws).connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_),
                                          ec);
    if (!ec) c.ws.next_layer().handshake(asio::ssl::stream_base::client, ec);
    if (ec) return ec;
    c.ws.set_option(websocket::stream_base::decorator([=](websocket::request_type& req) {
      if (!session.empty()) req.set(beast::http::field::cookie, "__Host-cordon_session=" + session);
      if (origin) req.set(beast::http::field::origin, *origin);
    }));
    c.ws.handshake(res, "127.0.0.1", target, ec);
    return ec;
  }
  unsigned refused_status(const std::string& target, const std::string& session,
                          const std::optional<std::string>& origin) {
    Client c;
    websocket::response_type res;
    const beast::error_code ec = open(c, target, session, origin, res);
    EXPECT_TRUE(ec) << "upgraded although it should not";
    return res.result_int();
  }
  // One message within `limit`; nullopt on close or timeout (then `ec` says which).
  std::optional<std::string> read(Client& c, beast::error_code& ec,
                                  std::chrono::seconds limit = std::chrono::seconds(10)) {
    bool done = false;
    c.buffer.clear();
    c.ws.async_read(c.buffer, [&](beast::error_code e, size_t) {
      ec = e;
      done = true;
    });
    c.io.restart();
    c.io.run_for(limit);
    if (!done) {
      beast::get_lowest_layer(c.ws).cancel();
      c.io.restart();
      c.io.run();
      ec = asio::error::timed_out;
      return std::nullopt;
    }
    if (ec) return std::nullopt;
    EXPECT_TRUE(c.ws.got_text());
    return beast::buffers_to_string(c.buffer.data());
  }

  struct Waiter {
    int64_t after, limit;
    control::api::Responder respond;
  };
  std::vector<json::object> events_;
  std::list<Waiter> waiters_;
  std::vector<std::string> actors_;
};

TEST_F(EventsWsTest, RefusedWithoutSessionOrWithForeignOriginBeforeUpgrading) {
  const std::string session = session_of("watcher");
  EXPECT_EQ(refused_status("/api/v1/events/ws", "", kOrigin), 401u);
  EXPECT_EQ(refused_status("/api/v1/events/ws", std::string(64, 'a'), kOrigin), 401u);
  EXPECT_EQ(refused_status("/api/v1/events/ws", session, "https://evil.example"), 403u);
  EXPECT_EQ(refused_status("/api/v1/events/ws", session, std::nullopt), 403u);
  EXPECT_EQ(refused_status("/api/v1/events/ws?after=x1", session, kOrigin), 400u);
  EXPECT_EQ(refused_status("/api/v1/health", session, kOrigin), 404u);
  EXPECT_EQ(on_io([this] { return server_->event_sockets(); }), 0u);
}

TEST_F(EventsWsTest, AuditorGetsOneFramePerEventFromAfterThenLive) {
  push_events(3);
  Client c;
  websocket::response_type res;
  ASSERT_FALSE(open(c, "/api/v1/events/ws?after=1", session_of("watcher"), kOrigin, res))
      << res.result_int() << " " << res.body();
  EXPECT_EQ(res.result_int(), 101u);
  EXPECT_EQ(res[beast::http::field::strict_transport_security],
            "max-age=63072000; includeSubDomains");
  beast::error_code ec;
  for (int64_t id : {2, 3}) {
    auto text = read(c, ec);
    ASSERT_TRUE(text) << ec.message();
    EXPECT_EQ(json::parse(*text), json::value(events_[static_cast<size_t>(id - 1)]));
  }
  push_events(1);  // arrives while webd waits in controld's long poll
  auto live = read(c, ec);
  ASSERT_TRUE(live) << ec.message();
  EXPECT_EQ(json::parse(*live).at("id").as_int64(), 4);
  // webd named the web user to controld.
  EXPECT_TRUE(on_io([this] {
    return !actors_.empty() && std::all_of(actors_.begin(), actors_.end(),
                                           [](const std::string& a) { return a == "web:watcher"; });
  }));
}

TEST_F(EventsWsTest, WithoutAfterOnlyNewEvents) {
  push_events(5);
  Client c;
  websocket::response_type res;
  ASSERT_FALSE(open(c, "/api/v1/events/ws", session_of("admin"), kOrigin, res));
  // The socket has learnt the newest id and waits in a long poll.
  ASSERT_TRUE(wait_until([this] { return waiters_.size() == 1; }));
  push_events(1);
  beast::error_code ec;
  auto text = read(c, ec);
  ASSERT_TRUE(text) << ec.message();
  EXPECT_EQ(json::parse(*text).at("id").as_int64(), 6);
}

TEST_F(EventsWsTest, LogoutClosesWithPolicyCode) {
  const std::string session = session_of("watcher");
  Client c;
  websocket::response_type res;
  ASSERT_FALSE(open(c, "/api/v1/events/ws", session, kOrigin, res));
  on_io([&] {
    accounts_->logout(session);
    return 0;
  });
  beast::error_code ec;
  EXPECT_FALSE(read(c, ec));
  EXPECT_EQ(ec, websocket::error::closed) << ec.message();
  EXPECT_EQ(c.ws.reason().code, websocket::close_code::policy_error);
  EXPECT_TRUE(wait_until([this] { return server_->event_sockets() == 0; }));
}

TEST_F(EventsWsTest, CapOnSockets) {
  const std::string session = session_of("watcher");
  Client a, b;
  websocket::response_type res;
  ASSERT_FALSE(open(a, "/api/v1/events/ws", session, kOrigin, res));
  ASSERT_FALSE(open(b, "/api/v1/events/ws", session, kOrigin, res));
  EXPECT_EQ(refused_status("/api/v1/events/ws", session, kOrigin), 503u);
}

TEST_F(EventsWsTest, OversizedClientMessageCloses) {
  Client c;
  websocket::response_type res;
  ASSERT_FALSE(open(c, "/api/v1/events/ws", session_of("watcher"), kOrigin, res));
  beast::error_code ec;
  c.ws.write(asio::buffer(std::string("small, ignored")), ec);
  ASSERT_FALSE(ec);
  c.ws.write(asio::buffer(std::string(8192, 'x')), ec);
  ASSERT_FALSE(ec);
  EXPECT_FALSE(read(c, ec));
  EXPECT_EQ(ec, websocket::error::closed) << ec.message();
  EXPECT_EQ(c.ws.reason().code, websocket::close_code::too_big);
}

TEST_F(EventsWsTest, ClientThatReadsNothingIsDropped) {
  // About 25 MB of events: more than loopback's socket buffers hold, so webd's writes
  // stall and the write timeout (1 s here) drops the socket.
  push_events(400, 64 * 1024);
  Client c;
  websocket::response_type res;
  ASSERT_FALSE(open(c, "/api/v1/events/ws?after=0", session_of("watcher"), kOrigin, res));
  ASSERT_EQ(on_io([this] { return server_->event_sockets(); }), 1u);
  EXPECT_TRUE(
      wait_until([this] { return server_->event_sockets() == 0; }, std::chrono::seconds(20)));
}

}  // namespace
}  // namespace cordon::webui
