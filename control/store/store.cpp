#include "control/store/store.h"

#include <openssl/evp.h>

#include <array>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>

namespace cordon::control::store {
namespace {

// Migrations, in order; migration i brings the schema to version i + 1. Never edit one
// that has shipped: append a new one.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE policy_versions (
  version    INTEGER PRIMARY KEY,
  created_at TEXT NOT NULL,
  author     TEXT NOT NULL,
  origin     TEXT NOT NULL,
  comment    TEXT NOT NULL,
  document   TEXT NOT NULL,
  sha256     TEXT NOT NULL,
  status     TEXT NOT NULL CHECK (status IN ('pending', 'applied', 'abandoned'))
);
CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE audit (
  seq         INTEGER PRIMARY KEY,
  at          TEXT NOT NULL,
  actor       TEXT NOT NULL,
  origin      TEXT NOT NULL,
  action      TEXT NOT NULL,
  target      TEXT NOT NULL,
  outcome     TEXT NOT NULL,
  before_hash TEXT NOT NULL,
  after_hash  TEXT NOT NULL,
  detail      TEXT NOT NULL,
  prev_hash   TEXT NOT NULL,
  hash        TEXT NOT NULL
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE events (
  id   INTEGER PRIMARY KEY,
  json TEXT NOT NULL
);
)sql",
    R"sql(
CREATE TABLE flows (
  device       TEXT NOT NULL,
  dir          TEXT NOT NULL,
  protocol     INTEGER NOT NULL,
  peer         TEXT NOT NULL,
  port         INTEGER NOT NULL,
  rule         TEXT NOT NULL,
  first_seen   TEXT NOT NULL,
  last_seen    TEXT NOT NULL,
  last_seen_ms INTEGER NOT NULL,
  count        INTEGER NOT NULL,
  PRIMARY KEY (device, dir, protocol, peer, port)
);
CREATE TABLE hosts (
  mac        TEXT NOT NULL,
  ip         TEXT NOT NULL,
  device     TEXT NOT NULL,
  first_seen TEXT NOT NULL,
  last_seen  TEXT NOT NULL,
  protocols  TEXT NOT NULL,
  peers      TEXT NOT NULL,
  PRIMARY KEY (mac, ip)
);
)sql",
    R"sql(
CREATE TABLE vendor_sessions (
  id             INTEGER PRIMARY KEY,
  public_key     TEXT NOT NULL,
  device         TEXT NOT NULL,
  device_ip      TEXT NOT NULL,
  ports          TEXT NOT NULL,
  tunnel_address TEXT NOT NULL,
  created_by     TEXT NOT NULL,
  created_ms     INTEGER NOT NULL,
  expires_ms     INTEGER NOT NULL,
  ended          TEXT NOT NULL DEFAULT ''
);
)sql",
    R"sql(
CREATE TABLE flow_apps (
  device       TEXT NOT NULL,
  dir          TEXT NOT NULL,
  protocol     INTEGER NOT NULL,
  peer         TEXT NOT NULL,
  port         INTEGER NOT NULL,
  field        TEXT NOT NULL,
  value        TEXT NOT NULL,
  last_seen_ms INTEGER NOT NULL,
  count        INTEGER NOT NULL,
  PRIMARY KEY (device, dir, protocol, peer, port, field, value)
);
)sql",
};

const std::string kGenesisHash(64, '0');

// The chained hash covers every field of the entry and the previous entry's hash.
// Fields are serialised as a JSON array so no two different entries share an input.
std::string audit_hash(int64_t seq, const std::string& at, const AuditRecord& r,
                       const std::string& prev_hash) {
  boost::json::array fields{seq,          at,       r.actor.name, r.actor.origin,
                            r.action,     r.target, r.outcome,    r.before_hash,
                            r.after_hash, r.detail, prev_hash};
  return sha256_hex(boost::json::serialize(fields));
}

}  // namespace

std::string now_rfc3339() {
  const auto now = std::chrono::system_clock::now();
  return rfc3339_utc(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
}

std::string rfc3339_utc(int64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];  // room for any int the format could print
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

std::string sha256_hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

Result<Store> Store::open(const std::string& state_dir) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec) return Error{"io", "cannot create state dir " + state_dir + ": " + ec.message(), ""};
  Result<Database> db = Database::open(state_dir + "/controld.db");
  if (!db) return db.error();
  Store store(std::move(db).value());
  if (Status s = store.migrate(); !s) return s.error().context("migrating the state database");
  return store;
}

Status Store::migrate() {
  if (Status s = db_.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
      !s)
    return s;
  Result<Statement> get = db_.prepare("SELECT max(version) FROM schema_version");
  if (!get) return get.error();
  Result<bool> row = get.value().step();
  if (!row) return row.error();
  const int64_t current = get.value().column_is_null(0) ? 0 : get.value().column_int(0);
  const int64_t latest = static_cast<int64_t>(std::size(kMigrations));
  if (current > latest) {
    return Error{"invalid",
                 "database schema version " + std::to_string(current) +
                     " is newer than this controld knows (" + std::to_string(latest) + ")",
                 ""};
  }
  for (int64_t v = current; v < latest; ++v) {
    Result<Transaction> txn = Transaction::begin(db_);
    if (!txn) return txn.error();
    if (Status s = db_.exec(kMigrations[v]); !s)
      return s.error().context("migration " + std::to_string(v + 1));
    Result<Statement> put = db_.prepare("INSERT INTO schema_version (version) VALUES (?)");
    if (!put) return put.error();
    if (Status s = put.value().bind(1, v + 1).run(); !s) return s;
    if (Status s = txn.value().commit(); !s) return s;
  }
  return ok();
}

Result<std::optional<std::string>> Store::setting(const std::string& key) {
  Result<Statement> q = db_.prepare("SELECT value FROM settings WHERE key = ?");
  if (!q) return q.error();
  q.value().bind(1, key);
  Result<bool> row = q.value().step();
  if (!row) return row.error();
  if (!row.value()) return std::optional<std::string>{};
  return std::optional<std::string>{q.value().column_text(0)};
}

Status Store::set_setting_in_txn(const std::string& key, const std::string& value) {
  Result<Statement> q = db_.prepare(
      "INSERT INTO settings (key, value) VALUES (?, ?) "
      "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
  if (!q) return q.error();
  return q.value().bind(1, key).bind(2, value).run();
}

Status Store::set_setting(const std::string& key, const std::string& value) {
  return set_setting_in_txn(key, value);  // a single statement is its own transaction
}

Status Store::clear_setting(const std::string& key) {
  Result<Statement> q = db_.prepare("DELETE FROM settings WHERE key = ?");
  if (!q) return q.error();
  return q.value().bind(1, key).run();
}

Result<std::optional<int64_t>> Store::int_setting(const std::string& key) {
  Result<std::optional<std::string>> v = setting(key);
  if (!v) return v.error();
  if (!v.value()) return std::optional<int64_t>{};
  int64_t n = 0;
  const std::string& text = *v.value();
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || end != text.data() + text.size())
    return Error{"io", "setting " + key + " is not a number: " + text};
  return std::optional<int64_t>{n};
}

Result<std::optional<int64_t>> Store::active_version() {
  return int_setting("policy.active");
}
Result<std::optional<int64_t>> Store::pending_version() {
  return int_setting("policy.pending");
}

Result<int64_t> Store::begin_version(const std::string& document, const Actor& author,
                                     const std::string& comment, int64_t min_version) {
  Result<Transaction> txn = Transaction::begin(db_);
  if (!txn) return txn.error();
  Result<Statement> q = db_.prepare(
      "INSERT INTO policy_versions (version, created_at, author, origin, comment, document, "
      "sha256, status) VALUES (max(?, (SELECT coalesce(max(version), 0) + 1 FROM "
      "policy_versions)), ?, ?, ?, ?, ?, ?, 'pending')");
  if (!q) return q.error();
  q.value().bind(1, min_version).bind(2, now_rfc3339()).bind(3, author.name);
  q.value().bind(4, author.origin).bind(5, comment).bind(6, document).bind(7, sha256_hex(document));
  if (Status s = q.value().run(); !s) return s.error();
  const int64_t version = db_.last_insert_rowid();
  if (Status s = set_setting_in_txn("policy.pending", std::to_string(version)); !s)
    return s.error();
  if (Status s = txn.value().commit(); !s) return s.error();
  return version;
}

Status Store::commit_version(int64_t version, const AuditRecord& audit) {
  Result<Transaction> txn = Transaction::begin(db_);
  if (!txn) return txn.error();
  Result<Statement> q =
      db_.prepare("UPDATE policy_versions SET status = 'applied' WHERE version = ?");
  if (!q) return q.error();
  if (Status s = q.value().bind(1, version).run(); !s) return s;
  if (db_.changes() != 1)
    return Error{"not_found", "no policy version " + std::to_string(version), ""};
  if (Status s = set_setting_in_txn("policy.active", std::to_string(version)); !s) return s;
  Result<Statement> clear = db_.prepare("DELETE FROM settings WHERE key = 'policy.pending'");
  if (!clear) return clear.error();
  if (Status s = clear.value().run(); !s) return s;
  if (Result<int64_t> a = append_audit(audit); !a) return a.error();
  return txn.value().commit();
}

Status Store::abandon_version(int64_t version, const AuditRecord& audit) {
  Result<Transaction> txn = Transaction::begin(db_);
  if (!txn) return txn.error();
  Result<Statement> q =
      db_.prepare("UPDATE policy_versions SET status = 'abandoned' WHERE version = ?");
  if (!q) return q.error();
  if (Status s = q.value().bind(1, version).run(); !s) return s;
  Result<Statement> clear = db_.prepare("DELETE FROM settings WHERE key = 'policy.pending'");
  if (!clear) return clear.error();
  if (Status s = clear.value().run(); !s) return s;
  if (Result<int64_t> a = append_audit(audit); !a) return a.error();
  return txn.value().commit();
}

Result<std::optional<PolicyVersion>> Store::version(int64_t version) {
  Result<Statement> q = db_.prepare(
      "SELECT version, created_at, author, origin, comment, document, sha256, status "
      "FROM policy_versions WHERE version = ?");
  if (!q) return q.error();
  q.value().bind(1, version);
  Result<bool> row = q.value().step();
  if (!row) return row.error();
  if (!row.value()) return std::optional<PolicyVersion>{};
  const Statement& s = q.value();
  return std::optional<PolicyVersion>{
      PolicyVersion{s.column_int(0), s.column_text(1), s.column_text(2), s.column_text(3),
                    s.column_text(4), s.column_text(5), s.column_text(6), s.column_text(7)}};
}

Result<std::vector<PolicyVersion>> Store::history(int64_t limit) {
  Result<Statement> q = db_.prepare(
      "SELECT version, created_at, author, origin, comment, sha256, status "
      "FROM policy_versions ORDER BY version DESC LIMIT ?");
  if (!q) return q.error();
  q.value().bind(1, limit);
  std::vector<PolicyVersion> out;
  for (;;) {
    Result<bool> row = q.value().step();
    if (!row) return row.error();
    if (!row.value()) break;
    const Statement& s = q.value();
    out.push_back(PolicyVersion{s.column_int(0), s.column_text(1), s.column_text(2),
                                s.column_text(3), s.column_text(4), "", s.column_text(5),
                                s.column_text(6)});
  }
  return out;
}

Result<int64_t> Store::append_audit(const AuditRecord& record) {
  Result<Statement> last = db_.prepare("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
  if (!last) return last.error();
  Result<bool> row = last.value().step();
  if (!row) return row.error();
  const int64_t seq = row.value() ? last.value().column_int(0) + 1 : 1;
  const std::string prev = row.value() ? last.value().column_text(1) : kGenesisHash;
  const std::string at = now_rfc3339();
  const std::string hash = audit_hash(seq, at, record, prev);
  Result<Statement> q = db_.prepare(
      "INSERT INTO audit (seq, at, actor, origin, action, target, outcome, before_hash, "
      "after_hash, detail, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
  if (!q) return q.error();
  Statement& s = q.value();
  s.bind(1, seq).bind(2, at).bind(3, record.actor.name).bind(4, record.actor.origin);
  s.bind(5, record.action).bind(6, record.target).bind(7, record.outcome);
  s.bind(8, record.before_hash).bind(9, record.after_hash).bind(10, record.detail);
  s.bind(11, prev).bind(12, hash);
  if (Status st = s.run(); !st) return st.error();
  // The head (count and last hash) is kept apart from the chain, so removing entries
  // from the end is detected too.
  if (Status st = set_setting_in_txn("audit.head", std::to_string(seq) + " " + hash); !st)
    return st.error();
  return seq;
}

Result<int64_t> Store::audit(const AuditRecord& record) {
  Result<Transaction> txn = Transaction::begin(db_);
  if (!txn) return txn.error();
  Result<int64_t> seq = append_audit(record);
  if (!seq) return seq.error();
  if (Status s = txn.value().commit(); !s) return s.error();
  return seq;
}

Result<std::vector<AuditEntry>> Store::audit_entries(int64_t after_seq, int64_t limit) {
  Result<Statement> q = db_.prepare(
      "SELECT seq, at, actor, origin, action, target, outcome, before_hash, after_hash, "
      "detail, prev_hash, hash FROM audit WHERE seq > ? ORDER BY seq LIMIT ?");
  if (!q) return q.error();
  q.value().bind(1, after_seq).bind(2, limit);
  std::vector<AuditEntry> out;
  for (;;) {
    Result<bool> row = q.value().step();
    if (!row) return row.error();
    if (!row.value()) break;
    const Statement& s = q.value();
    AuditEntry e;
    e.seq = s.column_int(0);
    e.at = s.column_text(1);
    e.record = AuditRecord{{s.column_text(2), s.column_text(3)},
                           s.column_text(4),
                           s.column_text(5),
                           s.column_text(6),
                           s.column_text(7),
                           s.column_text(8),
                           s.column_text(9)};
    e.prev_hash = s.column_text(10);
    e.hash = s.column_text(11);
    out.push_back(std::move(e));
  }
  return out;
}

Result<AuditVerification> Store::verify_audit() {
  AuditVerification v;
  std::string prev = kGenesisHash;
  int64_t expected_seq = 1;
  const auto bad = [&v](int64_t seq, std::string problem) {
    v.intact = false;
    v.first_bad_seq = seq;
    v.problem = std::move(problem);
    return v;
  };
  for (int64_t after = 0;;) {
    Result<std::vector<AuditEntry>> page = audit_entries(after, 1000);
    if (!page) return page.error();
    if (page.value().empty()) break;
    for (const AuditEntry& e : page.value()) {
      if (e.seq != expected_seq)
        return bad(expected_seq, "entry " + std::to_string(expected_seq) + " is missing");
      if (e.prev_hash != prev)
        return bad(e.seq, "does not chain to the entry before it (removed or altered)");
      if (audit_hash(e.seq, e.at, e.record, e.prev_hash) != e.hash)
        return bad(e.seq, "contents do not match its hash (altered)");
      prev = e.hash;
      ++expected_seq;
      ++v.entries;
      after = e.seq;
    }
  }
  Result<std::optional<std::string>> head = setting("audit.head");
  if (!head) return head.error();
  const std::string expected_head = v.entries == 0 ? "" : std::to_string(v.entries) + " " + prev;
  if (head.value().value_or("") != expected_head) {
    return bad(v.entries + 1,
               "the log ends before its recorded head (entries removed from the end)");
  }
  return v;
}

Status Store::add_events(const std::vector<std::string>& json_objects) {
  if (json_objects.empty()) return ok();
  Result<Transaction> txn = Transaction::begin(db_);
  if (!txn) return txn.error();
  Result<Statement> q = db_.prepare("INSERT INTO events (json) VALUES (?)");
  if (!q) return q.error();
  for (const std::string& json : json_objects) {
    q.value().reset();
    if (Status s = q.value().bind(1, json).run(); !s) return s;
  }
  Result<Statement> trim =
      db_.prepare("DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?");
  if (!trim) return trim.error();
  if (Status s = trim.value().bind(1, event_retention_).run(); !s) return s;
  return txn.value().commit();
}

Result<int64_t> Store::last_event_id() {
  Result<Statement> q = db_.prepare("SELECT coalesce(max(id), 0) FROM events");
  if (!q) return q.error();
  Result<bool> row = q.value().step();
  if (!row) return row.error();
  return q.value().column_int(0);
}

Result<std::vector<StoredEvent>> Store::events(int64_t after_id, int64_t limit) {
  Result<Statement> q = db_.prepare("SELECT id, json FROM events WHERE id > ? ORDER BY id LIMIT ?");
  if (!q) return q.error();
  q.value().bind(1, after_id).bind(2, limit);
  std::vector<StoredEvent> out;
  for (;;) {
    Result<bool> row = q.value().step();
    if (!row) return row.error();
    if (!row.value()) break;
    out.push_back(StoredEvent{q.value().column_int(0), q.value().column_text(1)});
  }
  return out;
}

namespace {
// Adds `item` to a comma-separated set of at most `max` items.
std::string add_to_set(const std::string& set, const std::string& item, size_t max) {
  if (item.empty()) return set;
  size_t count = 0;
  size_t start = 0;
  while (start <= set.size() && !set.empty()) {
    const size_t comma = set.find(',', start);
    const size_t end = comma == std::string::npos ? set.size() : comma;
    if (set.compare(start, end - start, item) == 0) return set;
    ++count;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (count >= max) return set;
  return set.empty() ? item : set + "," + item;
}
}  // namespace

Status Store::record_flow(const FlowKey& key, const std::string& rule, int64_t now_ms) {
  Result<Statement> q = db_.prepare(
      "INSERT INTO flows (device, dir, protocol, peer, port, rule, first_seen, last_seen, "
      "last_seen_ms, count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1) "
      "ON CONFLICT (device, dir, protocol, peer, port) DO UPDATE SET "
      "rule = excluded.rule, last_seen = excluded.last_seen, "
      "last_seen_ms = excluded.last_seen_ms, count = count + 1");
  if (!q) return q.error();
  const std::string now = now_rfc3339();
  Statement& st = q.value();
  st.bind(1, key.device).bind(2, key.dir).bind(3, key.protocol).bind(4, key.peer);
  st.bind(5, key.port).bind(6, rule).bind(7, now).bind(8, now).bind(9, now_ms);
  return st.run();
}

namespace {
FlowRecord flow_row(const Statement& s) {
  return FlowRecord{FlowKey{s.column_text(0), s.column_text(1), s.column_int(2), s.column_text(3),
                            s.column_int(4)},
                    s.column_text(5),
                    s.column_text(6),
                    s.column_text(7),
                    s.column_int(8),
                    s.column_int(9)};
}
constexpr const char* kFlowColumns =
    "SELECT device, dir, protocol, peer, port, rule, first_seen, last_seen, last_seen_ms, "
    "count FROM flows ";
}  // namespace

Result<std::optional<FlowRecord>> Store::recent_flow(const FlowKey& key, int64_t since_ms) {
  Result<Statement> q = db_.prepare(std::string(kFlowColumns) +
                                    "WHERE device = ? AND dir = ? AND protocol = ? AND peer = ? "
                                    "AND port = ? AND last_seen_ms >= ?");
  if (!q) return q.error();
  Statement& st = q.value();
  st.bind(1, key.device).bind(2, key.dir).bind(3, key.protocol).bind(4, key.peer);
  st.bind(5, key.port).bind(6, since_ms);
  Result<bool> row = st.step();
  if (!row) return row.error();
  if (!row.value()) return std::optional<FlowRecord>{};
  return std::optional<FlowRecord>{flow_row(st)};
}

Status Store::record_flow_app(const FlowApp& app, int64_t now_ms) {
  Result<Statement> q = db_.prepare(
      "INSERT INTO flow_apps (device, dir, protocol, peer, port, field, value, last_seen_ms, "
      "count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1) "
      "ON CONFLICT (device, dir, protocol, peer, port, field, value) DO UPDATE SET "
      "last_seen_ms = excluded.last_seen_ms, count = count + 1");
  if (!q) return q.error();
  Statement& st = q.value();
  st.bind(1, app.key.device).bind(2, app.key.dir).bind(3, app.key.protocol).bind(4, app.key.peer);
  st.bind(5, app.key.port).bind(6, app.field).bind(7, app.value).bind(8, now_ms);
  return st.run();
}

Result<std::vector<FlowApp>> Store::flow_apps(const std::string& device, int64_t since_ms) {
  Result<Statement> q = db_.prepare(
      "SELECT device, dir, protocol, peer, port, field, value FROM flow_apps "
      "WHERE device = ?1 AND last_seen_ms >= ?2 ORDER BY dir, protocol, port, peer, field, value");
  if (!q) return q.error();
  q.value().bind(1, device).bind(2, since_ms);
  std::vector<FlowApp> out;
  for (;;) {
    Result<bool> row = q.value().step();
    if (!row) return row.error();
    if (!row.value()) break;
    const Statement& s = q.value();
    out.push_back(FlowApp{FlowKey{s.column_text(0), s.column_text(1), s.column_int(2),
                                  s.column_text(3), s.column_int(4)},
                          s.column_text(5), s.column_text(6)});
  }
  return out;
}

Result<std::vector<FlowRecord>> Store::flows(const std::string& device, int64_t since_ms) {
  Result<Statement> q = db_.prepare(std::string(kFlowColumns) +
                                    "WHERE (?1 = '' OR device = ?1) AND last_seen_ms >= ?2 "
                                    "ORDER BY device, dir, protocol, port, peer");
  if (!q) return q.error();
  q.value().bind(1, device).bind(2, since_ms);
  std::vector<FlowRecord> out;
  for (;;) {
    Result<bool> row = q.value().step();
    if (!row) return row.error();
    if (!row.value()) break;
    out.push_back(flow_row(q.value()));
  }
  return out;
}

Status Store::record_host(const std::string& mac, const std::string& ip, const std::string& device,
                          const std::string& protocol, const std::string& peer) {
  Result<Statement> get =
      db_.prepare("SELECT protocols, peers FROM hosts WHERE mac = ? AND ip = ?");
  if (!get) return get.error();
  get.value().bind(1, mac).bind(2, ip);
  Result<bool> row = get.value().step();
  if (!row) return row.error();
  const std::string protocols =
      add_to_set(row.value() ? get.value().column_text(0) : "", protocol, 8);
  const std::string peers = add_to_set(row.value() ? get.value().column_text(1) : "", peer, 32);
  Result<Statement> put = db_.prepare(
      "INSERT INTO hosts (mac, ip, device, first_seen, last_seen, protocols, peers) "
      "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (mac, ip) DO UPDATE SET "
      "device = excluded.device, last_seen = excluded.last_seen, "
      "protocols = excluded.protocols, peers = excluded.peers");
  if (!put) return put.error();
  const std::string now = now_rfc3339();
  Statement& st = put.value();
  st.bind(1, mac)
      .bind(2, ip)
      .bind(3, device)
      .bind(4, now)
      .bind(5, now)
      .bind(6, protocols)
      .bind(7, peers);
  return st.run();
}

Result<std::vector<HostRecord>> Store::hosts() {
  Result<Statement> q = db_.prepare(
      "SELECT mac, ip, device, first_seen, last_seen, protocols, peers FROM hosts "
      "ORDER BY device = '' DESC, mac, ip");
  if (!q) return q.error();
  std::vector<HostRecord> out;
  for (;;) {
    Result<bool> row = q.value().step();
    if (!row) return row.error();
    if (!row.value()) break;
    const Statement& s = q.value();
    out.push_back(HostRecord{s.column_text(0), s.column_text(1), s.column_text(2), s.column_text(3),
                             s.column_text(4), s.column_text(5), s.column_text(6)});
  }
  return out;
}

namespace {
std::string ports_column(const std::vector<uint16_t>& ports) {
  std::string out;
  for (uint16_t p : ports) out += (out.empty() ? "" : ",") + std::to_string(p);
  return out;
}

// The column's "104,443": every item a port 1..65535, at least one. Anything else is a
// damaged row, reported, never guessed at.
std::optional<std::vector<uint16_t>> parse_ports_column(std::string_view text) {
  std::vector<uint16_t> out;
  while (true) {
    const size_t comma = std::min(text.find(','), text.size());
    const std::string_view item = text.substr(0, comma);
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), port);
    if (ec != std::errc{} || end != item.data() + item.size() || port == 0 || port > 65535)
      return std::nullopt;
    out.push_back(static_cast<uint16_t>(port));
    if (comma == text.size()) return out;
    text.remove_prefix(comma + 1);
  }
}
}  // namespace

Result<int64_t> Store::add_vendor_session(const VendorSession& v, const AuditRecord& audit) {
  Result<Transaction> txn = Transaction::begin(db_);
  if (!txn) return txn.error();
  Result<Statement> q = db_.prepare(
      "INSERT INTO vendor_sessions (public_key, device, device_ip, ports, tunnel_address, "
      "created_by, created_ms, expires_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  if (!q) return q.error();
  Statement& st = q.value();
  st.bind(1, v.public_key).bind(2, v.device).bind(3, v.device_ip).bind(4, ports_column(v.ports));
  st.bind(5, v.tunnel_address).bind(6, v.created_by).bind(7, v.created_ms).bind(8, v.expires_ms);
  if (Status r = st.run(); !r) return r.error();
  const int64_t id = db_.last_insert_rowid();
  AuditRecord a = audit;
  a.target = "vendor-session/" + std::to_string(id);
  if (Result<int64_t> r = append_audit(a); !r) return r.error();
  if (Status r = txn.value().commit(); !r) return r.error();
  return id;
}

Status Store::end_vendor_session(int64_t id, const std::string& why, const AuditRecord& audit) {
  Result<Transaction> txn = Transaction::begin(db_);
  if (!txn) return txn.error();
  Result<Statement> q =
      db_.prepare("UPDATE vendor_sessions SET ended = ? WHERE id = ? AND ended = ''");
  if (!q) return q.error();
  if (Status r = q.value().bind(1, why).bind(2, id).run(); !r) return r;
  if (db_.changes() != 1) return Error{"not_found", "no open vendor session " + std::to_string(id)};
  if (Result<int64_t> r = append_audit(audit); !r) return r.error();
  return txn.value().commit();
}

Result<std::vector<VendorSession>> Store::open_vendor_sessions() {
  Result<Statement> q = db_.prepare(
      "SELECT id, public_key, device, device_ip, ports, tunnel_address, created_by, created_ms, "
      "expires_ms, ended FROM vendor_sessions WHERE ended = '' ORDER BY id");
  if (!q) return q.error();
  std::vector<VendorSession> out;
  for (;;) {
    Result<bool> row = q.value().step();
    if (!row) return row.error();
    if (!row.value()) break;
    const Statement& st = q.value();
    std::optional<std::vector<uint16_t>> ports = parse_ports_column(st.column_text(4));
    if (!ports)
      return Error{"io", "stored vendor session " + std::to_string(st.column_int(0)) +
                             " is damaged: ports \"" + st.column_text(4) + "\""};
    out.push_back(VendorSession{st.column_int(0), st.column_text(1), st.column_text(2),
                                st.column_text(3), std::move(*ports), st.column_text(5),
                                st.column_text(6), st.column_int(7), st.column_int(8),
                                st.column_text(9)});
  }
  return out;
}

}  // namespace cordon::control::store
