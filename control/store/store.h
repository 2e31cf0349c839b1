// cordon-controld's state: one SQLite database (controld.db) in the state dir holding
// policy versions, the active/pending version markers, the audit log and events.
// Schema changes are numbered migrations recorded in `schema_version`.
//
// Durability: WAL with synchronous=FULL; every method that changes state is one
// transaction, so an acknowledged change survives a crash or power loss and a crash
// mid-change leaves the previous state.
//
// Threads: a Store belongs to one thread (controld's control thread).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "control/common/result.h"
#include "control/store/sqlite.h"

namespace cordon::control::store {

// Who did something and from where ("uid:0(root)", "web:alice"; "unix", "10.60.0.5").
struct Actor {
  std::string name;
  std::string origin;
};

struct PolicyVersion {
  int64_t version = 0;
  std::string created_at;  // RFC 3339 UTC
  std::string author;
  std::string origin;
  std::string comment;
  std::string document;  // canonical JSON (engine::to_json of the parsed document)
  std::string sha256;    // of `document`
  std::string status;    // "pending" (being applied), "applied", "abandoned" (apply failed)
};

// What an audit entry records; the store adds the sequence number, time and chain.
struct AuditRecord {
  Actor actor;
  std::string action;       // "policy.apply", "policy.rollback", ...
  std::string target;       // what was acted on ("policy", "policy/12")
  std::string outcome;      // "ok" or "refused: <why>" / "failed: <why>"
  std::string before_hash;  // state before (e.g. the previous policy's hash), may be empty
  std::string after_hash;   // state after, may be empty
  std::string detail;       // free text without secrets or patient data
};

struct AuditEntry {
  int64_t seq = 0;
  std::string at;
  AuditRecord record;
  std::string prev_hash;
  std::string hash;
};

struct AuditVerification {
  bool intact = true;
  int64_t entries = 0;
  int64_t first_bad_seq = 0;  // 0 when intact
  std::string problem;        // what is wrong at first_bad_seq
};

// One kind of connection a device took part in, as the dataplane reported new flows
// (flow_observed): who opened it, with whom, on which service port.
struct FlowKey {
  std::string device;
  std::string dir;  // "out": the device opened it; "in": opened to the device
  int64_t protocol = 0;
  std::string peer;  // the other end's address
  int64_t port = 0;  // the service (responder's) port; 0 for ICMP
  bool operator==(const FlowKey&) const = default;
};

struct FlowRecord {
  FlowKey key;
  std::string rule;  // the rule that allowed it ("" in learn mode without one)
  std::string first_seen;
  std::string last_seen;
  int64_t last_seen_ms = 0;
  int64_t count = 0;  // new flows of this kind
};

// Learn mode: something a kind of connection carried at the application layer, as the
// dataplane reported it (app_observed). field: "dicom.calling_ae", "dicom.called_ae",
// "dicom.command", "dicom.sop_class", "hl7.message_type".
struct FlowApp {
  FlowKey key;
  std::string field;
  std::string value;
};

// Discovery: an address pair seen on a device port.
struct HostRecord {
  std::string mac;
  std::string ip;
  std::string device;  // the policy's device it matched, "" when none covers it
  std::string first_seen;
  std::string last_seen;
  std::string protocols;  // e.g. "tcp,udp"
  std::string peers;      // up to 32 addresses, comma-separated
};

// A time-boxed vendor access session (control/mgmt/vendor.h).
struct VendorSession {
  int64_t id = 0;
  std::string public_key;
  std::string device;
  std::string device_ip;
  std::vector<uint16_t> ports;  // stored as "104,443" (the column predates this type)
  std::string tunnel_address;   // the peer's address inside the tunnel
  std::string created_by;
  int64_t created_ms = 0;
  int64_t expires_ms = 0;
  std::string ended;  // "" while active; else "revoked by ...", "expired"
};

struct StoredEvent {
  int64_t id = 0;
  std::string json;  // one event object
};

// RFC 3339 UTC with milliseconds ("2026-11-28T11:44:28.123Z"), as every time in the API.
std::string now_rfc3339();
std::string rfc3339_utc(int64_t unix_ms);
std::string sha256_hex(std::string_view data);

class Store {
 public:
  // Opens or creates `state_dir`/controld.db and brings its schema up to date.
  static Result<Store> open(const std::string& state_dir);

  // --- policy versions ---
  // Records a new version with status "pending" and marks it as the apply in flight.
  // Its number is the next one, and at least `min_version` (the dataplane may know
  // higher numbers than this database, e.g. after the database was reset).
  Result<int64_t> begin_version(const std::string& document, const Actor& author,
                                const std::string& comment, int64_t min_version = 1);
  // The pending version became the dataplane's: it is now active (one transaction with
  // its audit entry).
  Status commit_version(int64_t version, const AuditRecord& audit);
  // The pending version was not installed: marked abandoned, the active one stays.
  Status abandon_version(int64_t version, const AuditRecord& audit);
  Result<std::optional<PolicyVersion>> version(int64_t version);
  // Newest first, without documents.
  Result<std::vector<PolicyVersion>> history(int64_t limit);
  Result<std::optional<int64_t>> active_version();
  Result<std::optional<int64_t>> pending_version();

  // --- small settings and markers (key/value) ---
  Result<std::optional<std::string>> setting(const std::string& key);
  Status set_setting(const std::string& key, const std::string& value);
  Status clear_setting(const std::string& key);

  // --- audit log: append-only (SQL triggers refuse UPDATE and DELETE), hash-chained ---
  Result<int64_t> audit(const AuditRecord& record);
  Result<std::vector<AuditEntry>> audit_entries(int64_t after_seq, int64_t limit);
  Result<AuditVerification> verify_audit();

  // --- events: newest `retention` kept ---
  Status add_events(const std::vector<std::string>& json_objects);
  Result<std::vector<StoredEvent>> events(int64_t after_id, int64_t limit);
  Result<int64_t> last_event_id();  // 0 when there is none
  void set_event_retention(int64_t rows) { event_retention_ = rows; }

  // Groups several changes into one transaction (one fsync): the methods below that do
  // not open their own (record_flow, record_host) may be called inside it.
  Result<Transaction> transaction() { return Transaction::begin(db_); }

  // --- flow records and discovery (from the dataplane's events) ---
  Status record_flow(const FlowKey& key, const std::string& rule, int64_t now_ms);
  // The record of `key`, if it was last seen at or after `since_ms`.
  Result<std::optional<FlowRecord>> recent_flow(const FlowKey& key, int64_t since_ms);
  // Of one device, or of every device when `device` is empty.
  Result<std::vector<FlowRecord>> flows(const std::string& device, int64_t since_ms);
  Status record_flow_app(const FlowApp& app, int64_t now_ms);
  // A device's application-layer observations seen since `since_ms`.
  Result<std::vector<FlowApp>> flow_apps(const std::string& device, int64_t since_ms);
  Status record_host(const std::string& mac, const std::string& ip, const std::string& device,
                     const std::string& protocol, const std::string& peer);
  Result<std::vector<HostRecord>> hosts();

  // --- vendor sessions ---
  Result<int64_t> add_vendor_session(const VendorSession& session, const AuditRecord& audit);
  Status end_vendor_session(int64_t id, const std::string& why, const AuditRecord& audit);
  // Sessions not ended (possibly past their expiry, not yet processed), oldest first.
  Result<std::vector<VendorSession>> open_vendor_sessions();

 private:
  explicit Store(Database db) : db_(std::move(db)) {}
  Status migrate();
  Result<int64_t> append_audit(const AuditRecord& record);  // inside a transaction
  Status set_setting_in_txn(const std::string& key, const std::string& value);
  Result<std::optional<int64_t>> int_setting(const std::string& key);

  Database db_;
  int64_t event_retention_ = 200000;
};

}  // namespace cordon::control::store
