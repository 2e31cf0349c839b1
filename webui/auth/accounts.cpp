#include "webui/auth/accounts.h"

#include <sodium.h>

#include <algorithm>
#include <boost/json.hpp>
#include <ctime>

namespace cordon::webui::auth {
namespace json = boost::json;
using control::ok;

namespace {

std::string to_hex(const unsigned char* data, size_t size) {
  std::string out(size * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), data, size);
  out.pop_back();
  return out;
}

// Sessions are kept under a hash of their id: the map's comparisons never touch the
// secret itself.
std::string session_key(const std::string& id) {
  unsigned char hash[32];
  crypto_generichash(hash, sizeof hash, reinterpret_cast<const unsigned char*>(id.data()),
                     id.size(), nullptr, 0);
  return to_hex(hash, sizeof hash);
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

Status check_password(const std::string& password, const std::string& path) {
  if (password.size() < Accounts::kMinPasswordLength)
    return Error{"invalid",
                 "the password must have at least " + std::to_string(Accounts::kMinPasswordLength) +
                     " characters",
                 path};
  if (password.size() > Accounts::kMaxPasswordLength)
    return Error{"invalid", "the password is longer than 1024 characters", path};
  return ok();
}

Result<std::string> hash_password(const std::string& password, unsigned long long ops,
                                  size_t memory) {
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), ops, memory) != 0)
    return Error{"io", "out of memory while hashing the password"};
  return std::string(out);
}

bool verify_password(const std::string& hash, const std::string& password) {
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

std::string rfc3339(Clock::time_point t) {
  const std::time_t s = Clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

std::string random_token() {
  unsigned char bytes[32];
  randombytes_buf(bytes, sizeof bytes);
  return to_hex(bytes, sizeof bytes);
}

const char* role_name(Role role) {
  switch (role) {
    case Role::admin:
      return "admin";
    case Role::operator_:
      return "operator";
    case Role::auditor:
      return "auditor";
  }
  return "auditor";
}

std::optional<Role> parse_role(const std::string& name) {
  if (name == "admin") return Role::admin;
  if (name == "operator") return Role::operator_;
  if (name == "auditor") return Role::auditor;
  return std::nullopt;
}

Result<Accounts> Accounts::open(const std::string& db_path, Options options) {
  if (sodium_init() < 0) return Error{"io", "libsodium cannot be initialised"};
  static_assert(crypto_pwhash_OPSLIMIT_INTERACTIVE == 2 &&
                crypto_pwhash_MEMLIMIT_INTERACTIVE == 64ull << 20);
  auto db = control::store::Database::open(db_path);
  if (!db) return db.error();
  if (Status s = db.value().exec(
          "CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, role TEXT NOT NULL,"
          " hash TEXT NOT NULL, created_at TEXT NOT NULL);"
          "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT,"
          " at TEXT NOT NULL, event TEXT NOT NULL, user TEXT NOT NULL, source TEXT NOT NULL,"
          " outcome TEXT NOT NULL);");
      !s)
    return s.error().context("creating webd's tables");
  Accounts accounts(std::move(db.value()), std::move(options));
  auto dummy =
      hash_password(random_token(), accounts.options_.pwhash_ops, accounts.options_.pwhash_memory);
  if (!dummy) return dummy.error();
  accounts.dummy_hash_ = dummy.value();
  return accounts;
}

bool Accounts::has_users() {
  auto st = db_.prepare("SELECT 1 FROM users LIMIT 1");
  if (!st) return true;  // fail closed: no setup while the database is unreadable
  auto row = st.value().step();
  return !row || row.value();
}

Status Accounts::create_user(const std::string& name, const std::string& password, Role role) {
  if (!valid_name(name))
    return Error{"invalid", "a user name is 1-64 letters, digits, '.', '_' or '-'", "/user"};
  if (Status s = check_password(password, "/password"); !s) return s;
  auto hash = hash_password(password, options_.pwhash_ops, options_.pwhash_memory);
  if (!hash) return hash.error();
  auto st =
      db_.prepare("INSERT OR IGNORE INTO users (name, role, hash, created_at) VALUES (?,?,?,?)");
  if (!st) return st.error();
  st.value()
      .bind(1, name)
      .bind(2, role_name(role))
      .bind(3, hash.value())
      .bind(4, rfc3339(options_.now()));
  if (Status s = st.value().run(); !s) return s;
  if (db_.changes() == 0) return Error{"conflict", "user " + name + " exists", "/user"};
  return ok();
}

Status Accounts::delete_user(const std::string& name) {
  auto st = db_.prepare(
      "SELECT role, (SELECT count(*) FROM users WHERE role='admin') FROM users WHERE name=?");
  if (!st) return st.error();
  st.value().bind(1, name);
  auto row = st.value().step();
  if (!row) return row.error();
  if (!row.value()) return Error{"not_found", "no user " + name};
  if (st.value().column_text(0) == "admin" && st.value().column_int(1) <= 1)
    return Error{"conflict", "user " + name + " is the last admin"};
  auto del = db_.prepare("DELETE FROM users WHERE name=?");
  if (!del) return del.error();
  del.value().bind(1, name);
  if (Status s = del.value().run(); !s) return s;
  end_sessions_of(name, "");
  return ok();
}

Result<std::vector<UserInfo>> Accounts::list_users() {
  auto st = db_.prepare("SELECT name, role, created_at FROM users ORDER BY name");
  if (!st) return st.error();
  std::vector<UserInfo> out;
  for (;;) {
    auto row = st.value().step();
    if (!row) return row.error();
    if (!row.value()) break;
    out.push_back(UserInfo{st.value().column_text(0),
                           parse_role(st.value().column_text(1)).value_or(Role::auditor),
                           st.value().column_text(2)});
  }
  return out;
}

Status Accounts::change_password(const std::string& name, const std::string& current,
                                 const std::string& next, const std::string& keep_session) {
  if (Status s = check_password(next, "/new_password"); !s) return s;
  auto st = db_.prepare("SELECT hash FROM users WHERE name=?");
  if (!st) return st.error();
  st.value().bind(1, name);
  auto row = st.value().step();
  if (!row) return row.error();
  if (!row.value()) return Error{"not_found", "no user " + name};
  if (!verify_password(st.value().column_text(0), current))
    return Error{"forbidden", "the current password is wrong", "/current_password"};
  auto hash = hash_password(next, options_.pwhash_ops, options_.pwhash_memory);
  if (!hash) return hash.error();
  auto upd = db_.prepare("UPDATE users SET hash=? WHERE name=?");
  if (!upd) return upd.error();
  upd.value().bind(1, hash.value()).bind(2, name);
  if (Status s = upd.value().run(); !s) return s;
  end_sessions_of(name, keep_session.empty() ? "" : session_key(keep_session));
  return ok();
}

bool Accounts::locked(const std::string& key) {
  auto it = throttles_.find(key);
  return it != throttles_.end() && options_.now() < it->second.locked_until;
}

void Accounts::record_failure(const std::string& key, unsigned limit) {
  const auto now = options_.now();
  if (throttles_.size() > 10000) {
    // Entries that lock nothing and count nothing any more are forgotten.
    std::erase_if(throttles_, [&](const auto& entry) {
      const Throttle& old = entry.second;
      return now >= old.locked_until && now - old.last_failure > options_.lockout &&
             now - old.locked_until > std::chrono::hours(24);
    });
  }
  Throttle& t = throttles_[key];
  // Failures spread out further than a lockout period do not add up.
  if (t.failures > 0 && now - t.last_failure > options_.lockout) t.failures = 0;
  if (t.lockouts > 0 && now - t.locked_until > std::chrono::hours(24)) t.lockouts = 0;
  t.last_failure = now;
  if (++t.failures >= limit) {
    const unsigned shift = std::min(t.lockouts, 6u);  // 15 min .. 16 h, then capped at 24 h
    auto lock = options_.lockout * (1u << shift);
    lock = std::min<decltype(lock)>(lock, std::chrono::hours(24));
    t.locked_until = now + lock;
    t.failures = 0;
    ++t.lockouts;
  }
}

Result<Accounts::Login> Accounts::login(const std::string& name, const std::string& password,
                                        const std::string& source) {
  // Only well-formed names get a throttle entry of their own (a 1 MiB "name" must not
  // become a 1 MiB key); the address is throttled whatever was typed.
  const std::string user_key = valid_name(name) ? "user:" + name : "user:(invalid)";
  const std::string addr_key = "addr:" + source;
  if (locked(user_key) || locked(addr_key)) {
    audit("login", name, source, "throttled");
    return Error{"throttled", "too many failed logins: try again later"};
  }
  std::string hash = dummy_hash_;
  std::optional<Role> role;
  if (valid_name(name) && password.size() <= kMaxPasswordLength) {
    auto st = db_.prepare("SELECT hash, role FROM users WHERE name=?");
    if (!st) return st.error();
    st.value().bind(1, name);
    auto row = st.value().step();
    if (!row) return row.error();
    if (row.value()) {
      hash = st.value().column_text(0);
      role = parse_role(st.value().column_text(1));
    }
  }
  const bool good = verify_password(hash, password) && role.has_value();
  if (!good) {
    record_failure(user_key, options_.account_failures);
    record_failure(addr_key, options_.address_failures);
    audit("login", name, source, "failed");
    return Error{"unauthorized", "wrong user name or password"};
  }
  // The failure count starts again; the lockout count stays, so backoff still grows for
  // an account under attack (it decays a day after the last lockout).
  if (auto it = throttles_.find(user_key); it != throttles_.end()) it->second.failures = 0;
  const auto now = options_.now();
  std::erase_if(sessions_, [&](const auto& entry) {  // expired ones, before adding one
    return now - entry.second.last_seen >= options_.idle_timeout ||
           now - entry.second.created >= options_.absolute_timeout;
  });
  Login out{random_token(), Session{name, *role, random_token(), now, now}};
  sessions_[session_key(out.session_id)] = out.session;
  audit("login", name, source, "ok");
  return out;
}

std::optional<Session> Accounts::lookup(const std::string& session_id) {
  if (session_id.size() != 64) return std::nullopt;
  auto it = sessions_.find(session_key(session_id));
  if (it == sessions_.end()) return std::nullopt;
  const auto now = options_.now();
  if (now - it->second.last_seen >= options_.idle_timeout ||
      now - it->second.created >= options_.absolute_timeout) {
    sessions_.erase(it);
    return std::nullopt;
  }
  it->second.last_seen = now;
  return it->second;
}

void Accounts::logout(const std::string& session_id) {
  sessions_.erase(session_key(session_id));
}

void Accounts::end_sessions_of(const std::string& user, const std::string& keep_key) {
  std::erase_if(sessions_, [&](const auto& entry) {
    return entry.second.user == user && entry.first != keep_key;
  });
}

void Accounts::audit(const std::string& event, const std::string& user, const std::string& source,
                     const std::string& outcome) {
  auto st = db_.prepare("INSERT INTO audit (at, event, user, source, outcome) VALUES (?,?,?,?,?)");
  if (!st) return;
  // Names typed at the login form are untrusted: kept short, never interpreted.
  st.value()
      .bind(1, rfc3339(options_.now()))
      .bind(2, event)
      .bind(3, user.substr(0, 128))
      .bind(4, source)
      .bind(5, outcome);
  (void)st.value().run();
}

Result<json::array> Accounts::audit_entries(int64_t limit) {
  auto st = db_.prepare(
      "SELECT id, at, event, user, source, outcome FROM audit ORDER BY id DESC LIMIT ?");
  if (!st) return st.error();
  st.value().bind(1, limit);
  json::array out;
  for (;;) {
    auto row = st.value().step();
    if (!row) return row.error();
    if (!row.value()) break;
    const auto& s = st.value();
    out.push_back(json::object{{"id", s.column_int(0)},
                               {"at", s.column_text(1)},
                               {"event", s.column_text(2)},
                               {"user", s.column_text(3)},
                               {"source", s.column_text(4)},
                               {"outcome", s.column_text(5)}});
  }
  return out;
}

}  // namespace cordon::webui::auth
