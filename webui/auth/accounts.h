// cordon-webd's accounts: users with roles in webd's own SQLite database
// (<state-dir>/webd.db), argon2id password hashes (libsodium crypto_pwhash_str), an
// optional TOTP second factor per user (secret in webd.db, never logged), sessions
// in memory (a restart logs everybody out), login throttling per account and per source
// address, and an audit table of every login attempt and account change.
//
// Threads: an Accounts belongs to one thread (webd's io_context thread); nothing here
// locks. Password hashing blocks that thread for ~0.1 s per login (argon2id, libsodium's
// "interactive" limits), which an administrative console can afford.
#pragma once

#include <boost/json/array.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "control/common/result.h"
#include "control/store/sqlite.h"

namespace cordon::webui::auth {

using control::Error;
using control::Result;
using control::Status;
using Clock = std::chrono::system_clock;

// Ordered: each role may do everything the ones below it may.
enum class Role { auditor = 1, operator_ = 2, admin = 3 };
const char* role_name(Role role);
std::optional<Role> parse_role(const std::string& name);

struct Session {
  std::string user;
  Role role = Role::auditor;
  std::string csrf_token;  // 256-bit, hex
  Clock::time_point created;
  Clock::time_point last_seen;
};

struct UserInfo {
  std::string name;
  Role role = Role::auditor;
  std::string created_at;
};

class Accounts {
 public:
  struct Options {
    std::chrono::seconds idle_timeout{30 * 60};
    std::chrono::seconds absolute_timeout{12 * 3600};
    unsigned account_failures = 5;          // consecutive failures before an account is locked
    unsigned address_failures = 20;         // failures from one address before it is locked
    std::chrono::seconds lockout{15 * 60};  // doubles at every further lockout, up to 24 h
    std::function<Clock::time_point()> now = [] { return Clock::now(); };
    // argon2id cost (libsodium's "interactive" limits); only the fuzz target lowers them.
    unsigned long long pwhash_ops = 2;   // crypto_pwhash_OPSLIMIT_INTERACTIVE
    size_t pwhash_memory = 64ull << 20;  // crypto_pwhash_MEMLIMIT_INTERACTIVE
  };
  static constexpr size_t kMinPasswordLength = 12;
  static constexpr size_t kMaxPasswordLength = 1024;

  static Result<Accounts> open(const std::string& db_path, Options options);
  static Result<Accounts> open(const std::string& db_path) { return open(db_path, Options{}); }

  bool has_users();
  // name: 1-64 of [A-Za-z0-9._-]; password: 12-1024 bytes.
  Status create_user(const std::string& name, const std::string& password, Role role);
  // Refuses to delete the last admin. Ends the user's sessions.
  Status delete_user(const std::string& name);
  Result<std::vector<UserInfo>> list_users();
  // Ends every session of the user except `keep_session`.
  Status change_password(const std::string& name, const std::string& current,
                         const std::string& next, const std::string& keep_session);

  struct Login {
    std::string session_id;  // 256-bit, hex: goes in the cookie only
    Session session;
  };
  // Error codes: "throttled" (locked out; nothing checked), "unauthorized" (wrong name or
  // password, one message for both). Every attempt is audited.
  // With TOTP active for the user, also "totp_required" (no code given; not counted as
  // a failure: the password was right) and "totp_invalid" (wrong or reused code: counted).
  Result<Login> login(const std::string& name, const std::string& password,
                      const std::string& source,
                      const std::optional<std::string>& totp = std::nullopt);
  // The live session for a cookie value, its idle clock restarted; nullopt when unknown,
  // idle too long or older than the absolute limit (then it is dropped).
  std::optional<Session> lookup(const std::string& session_id);
  // Like lookup but leaves the idle clock alone (a live-events socket must not keep a
  // session alive on its own).
  std::optional<Session> peek(const std::string& session_id);
  void logout(const std::string& session_id);

  // TOTP. begin: a new secret for `user`, not active until confirmed (conflict when
  // TOTP is already active); confirm: activates it given a current code; disable: the
  // user's own, needs the password; reset: an admin's, for another user.
  struct TotpEnrolment {
    std::string secret;  // base32
    std::string otpauth_uri;
  };
  Result<TotpEnrolment> totp_begin(const std::string& user);
  Status totp_confirm(const std::string& user, const std::string& code);
  Status totp_disable(const std::string& user, const std::string& password);
  Status totp_reset(const std::string& user);
  bool totp_active(const std::string& user);
  // The system setting "require_totp_for_admins" (table settings in webd.db).
  bool require_totp_for_admins();
  Status set_require_totp_for_admins(bool on);
  // An admin session while the setting is on and the admin has no active TOTP: it may
  // only look at its session, log out, and enrol.
  bool totp_enrollment_required(const Session& session);

  void audit(const std::string& event, const std::string& user, const std::string& source,
             const std::string& outcome);
  Result<boost::json::array> audit_entries(int64_t limit);

  size_t session_count() const { return sessions_.size(); }

 private:
  struct Throttle {
    unsigned failures = 0;
    unsigned lockouts = 0;
    Clock::time_point last_failure;
    Clock::time_point locked_until;
  };
  Accounts(control::store::Database db, Options options)
      : db_(std::move(db)), options_(std::move(options)) {}
  bool locked(const std::string& key);
  void record_failure(const std::string& key, unsigned limit);
  void end_sessions_of(const std::string& user, const std::string& keep_key);
  std::optional<Session> find_session(const std::string& session_id, bool touch);
  struct TotpRow {
    std::string secret;  // raw bytes
    bool active = false;
    int64_t last_step = -1;
  };
  Result<std::optional<TotpRow>> totp_row(const std::string& user);
  bool user_exists(const std::string& user);
  int64_t unix_now() const;

  control::store::Database db_;
  Options options_;
  std::map<std::string, Session> sessions_;    // key: BLAKE2b of the session id, hex
  std::map<std::string, Throttle> throttles_;  // "user:NAME" and "addr:IP"
  std::string dummy_hash_;  // verified against for unknown names, so timing says nothing
};

// 256 random bits as 64 hex digits.
std::string random_token();

}  // namespace cordon::webui::auth
