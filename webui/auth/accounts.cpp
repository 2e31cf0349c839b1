#include "webui/auth/accounts.h"

#include <sodium.h>

#include <algorithm>
#include <boost/json.hpp>
#include <ctime>

#include "webui/auth/totp.h"

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
          " outcome TEXT NOT NULL);"
          "CREATE TABLE IF NOT EXISTS totp (user TEXT PRIMARY KEY, secret TEXT NOT NULL,"
          " active INTEGER NOT NULL, last_step INTEGER NOT NULL);"
          "CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);");
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
  auto del_totp = db_.prepare("DELETE FROM totp WHERE user=?");
  if (!del_totp) return del_totp.error();
  del_totp.value().bind(1, name);
  if (Status s = del_totp.value().run(); !s) return s;
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
                                        const std::string& source,
                                        const std::optional<std::string>& totp) {
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
  auto second = totp_row(name);
  if (!second) return second.error();
  if (second.value() && second.value()->active) {
    if (!totp || totp->empty()) {
      audit("login", name, source, "totp required");
      return Error{"totp_required", "enter the 6-digit code from your authenticator app", "/totp"};
    }
    auto step = totp_match(second.value()->secret, *totp, unix_now(), second.value()->last_step);
    if (!step) {
      record_failure(user_key, options_.account_failures);
      record_failure(addr_key, options_.address_failures);
      audit("login", name, source, "failed: totp");
      return Error{"totp_invalid", "wrong or already used authenticator code", "/totp"};
    }
    auto used = db_.prepare("UPDATE totp SET last_step=? WHERE user=?");
    if (!used) return used.error();
    used.value().bind(1, *step).bind(2, name);
    if (Status s = used.value().run(); !s) return s.error();
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
  return find_session(session_id, true);
}

std::optional<Session> Accounts::peek(const std::string& session_id) {
  return find_session(session_id, false);
}

std::optional<Session> Accounts::find_session(const std::string& session_id, bool touch) {
  if (session_id.size() != 64) return std::nullopt;
  auto it = sessions_.find(session_key(session_id));
  if (it == sessions_.end()) return std::nullopt;
  const auto now = options_.now();
  if (now - it->second.last_seen >= options_.idle_timeout ||
      now - it->second.created >= options_.absolute_timeout) {
    sessions_.erase(it);
    return std::nullopt;
  }
  if (touch) it->second.last_seen = now;
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

int64_t Accounts::unix_now() const {
  return std::chrono::duration_cast<std::chrono::seconds>(options_.now().time_since_epoch())
      .count();
}

bool Accounts::user_exists(const std::string& user) {
  auto st = db_.prepare("SELECT 1 FROM users WHERE name=?");
  if (!st) return false;
  st.value().bind(1, user);
  auto row = st.value().step();
  return row && row.value();
}

Result<std::optional<Accounts::TotpRow>> Accounts::totp_row(const std::string& user) {
  auto st = db_.prepare("SELECT secret, active, last_step FROM totp WHERE user=?");
  if (!st) return st.error();
  st.value().bind(1, user);
  auto row = st.value().step();
  if (!row) return row.error();
  if (!row.value()) return std::optional<TotpRow>{};
  auto secret = base32_decode(st.value().column_text(0));
  if (!secret) return Error{"io", "unreadable TOTP secret of " + user + " in webd.db"};
  return std::optional<TotpRow>{
      TotpRow{*secret, st.value().column_int(1) != 0, st.value().column_int(2)}};
}

bool Accounts::totp_active(const std::string& user) {
  auto row = totp_row(user);
  return row && row.value() && row.value()->active;
}

Result<Accounts::TotpEnrolment> Accounts::totp_begin(const std::string& user) {
  auto row = totp_row(user);
  if (!row) return row.error();
  if (row.value() && row.value()->active)
    return Error{"conflict", "TOTP is already on for " + user + ": turn it off first"};
  unsigned char bytes[kTotpSecretBytes];
  randombytes_buf(bytes, sizeof bytes);
  const std::string secret =
      base32_encode(std::string_view(reinterpret_cast<char*>(bytes), sizeof bytes));
  sodium_memzero(bytes, sizeof bytes);
  auto st = db_.prepare(
      "INSERT OR REPLACE INTO totp (user, secret, active, last_step) VALUES (?,?,0,-1)");
  if (!st) return st.error();
  st.value().bind(1, user).bind(2, secret);
  if (Status s = st.value().run(); !s) return s.error();
  // User names are [A-Za-z0-9._-]: nothing in the label needs escaping.
  return TotpEnrolment{secret, "otpauth://totp/Cordon:" + user + "?secret=" + secret +
                                   "&issuer=Cordon&algorithm=SHA1&digits=6&period=30"};
}

Status Accounts::totp_confirm(const std::string& user, const std::string& code) {
  auto row = totp_row(user);
  if (!row) return row.error();
  if (!row.value()) return Error{"conflict", "start TOTP enrolment first (POST session/totp)"};
  if (row.value()->active) return Error{"conflict", "TOTP is already on for " + user};
  auto step = totp_match(row.value()->secret, code, unix_now(), row.value()->last_step);
  if (!step)
    return Error{"invalid", "wrong code: check the authenticator app and the clock", "/code"};
  auto st = db_.prepare("UPDATE totp SET active=1, last_step=? WHERE user=?");
  if (!st) return st.error();
  st.value().bind(1, *step).bind(2, user);
  return st.value().run();
}

Status Accounts::totp_disable(const std::string& user, const std::string& password) {
  auto st = db_.prepare("SELECT hash FROM users WHERE name=?");
  if (!st) return st.error();
  st.value().bind(1, user);
  auto row = st.value().step();
  if (!row) return row.error();
  if (!row.value()) return Error{"not_found", "no user " + user};
  if (password.size() > kMaxPasswordLength || !verify_password(st.value().column_text(0), password))
    return Error{"forbidden", "the password is wrong", "/password"};
  return totp_reset(user);
}

Status Accounts::totp_reset(const std::string& user) {
  if (!user_exists(user)) return Error{"not_found", "no user " + user};
  auto st = db_.prepare("DELETE FROM totp WHERE user=?");
  if (!st) return st.error();
  st.value().bind(1, user);
  if (Status s = st.value().run(); !s) return s;
  if (db_.changes() == 0) return Error{"conflict", "TOTP is not on for " + user};
  return ok();
}

bool Accounts::require_totp_for_admins() {
  auto st = db_.prepare("SELECT value FROM settings WHERE key='require_totp_for_admins'");
  if (!st) return true;  // fail closed
  auto row = st.value().step();
  if (!row) return true;
  return row.value() && st.value().column_text(0) == "1";
}

Status Accounts::set_require_totp_for_admins(bool on) {
  auto st = db_.prepare(
      "INSERT OR REPLACE INTO settings (key, value) VALUES ('require_totp_for_admins', ?)");
  if (!st) return st.error();
  st.value().bind(1, on ? "1" : "0");
  return st.value().run();
}

bool Accounts::totp_enrollment_required(const Session& session) {
  return session.role == Role::admin && require_totp_for_admins() && !totp_active(session.user);
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
