#include "control/store/sqlite.h"

namespace cordon::control::store {

Result<Database> Database::open(const std::string& path) {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  Database db(raw);  // closes on every path below
  if (rc != SQLITE_OK) {
    return Error{
        "io",
        "cannot open database " + path + ": " + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)),
        ""};
  }
  sqlite3_busy_timeout(raw, 5000);
  if (Status s = db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                         "PRAGMA foreign_keys=ON;");
      !s) {
    return s.error().context("opening " + path);
  }
  return db;
}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    if (db_) sqlite3_close_v2(db_);
    db_ = other.db_;
    other.db_ = nullptr;
  }
  return *this;
}

Database::~Database() {
  if (db_) sqlite3_close_v2(db_);
}

Error Database::error(const std::string& what) const {
  return Error{"io", what + ": " + sqlite3_errmsg(db_)};
}

Status Database::exec(const std::string& sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    Error e{"io", std::string("sql: ") + (message ? message : "error"), ""};
    sqlite3_free(message);
    return e;
  }
  return ok();
}

Result<Statement> Database::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) !=
      SQLITE_OK) {
    return error("preparing \"" + std::string(sql.substr(0, 60)) + "\"");
  }
  return Statement(db_, stmt);
}

Statement::~Statement() {
  if (stmt_) sqlite3_finalize(stmt_);
}

Statement& Statement::bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
  sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}

Statement& Statement::bind_null(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

Result<bool> Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return Error{"io", std::string("sql step: ") + sqlite3_errmsg(db_), ""};
}

Status Statement::run() {
  for (;;) {
    Result<bool> row = step();
    if (!row) return row.error();
    if (!row.value()) return ok();
  }
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::string Statement::column_text(int index) const {
  const auto* text = sqlite3_column_text(stmt_, index);
  if (!text) return {};
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, index)));
}

Result<Transaction> Transaction::begin(Database& db) {
  if (Status s = db.exec("BEGIN IMMEDIATE"); !s) return s.error().context("begin transaction");
  return Transaction(db);
}

Transaction::~Transaction() {
  if (db_) (void)db_->exec("ROLLBACK");
}

Status Transaction::commit() {
  Status s = db_->exec("COMMIT");
  if (s) db_ = nullptr;
  return s;
}

}  // namespace cordon::control::store
