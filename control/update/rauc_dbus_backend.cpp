#include "control/update/rauc_dbus_backend.h"

#include <dbus/dbus.h>

#include <memory>

namespace cordon::control::update {
namespace {

constexpr const char* kService = "de.pengutronix.rauc";
constexpr const char* kPath = "/";
constexpr const char* kInstaller = "de.pengutronix.rauc.Installer";
constexpr const char* kProperties = "org.freedesktop.DBus.Properties";

struct MessageFree {
  void operator()(DBusMessage* m) const { dbus_message_unref(m); }
};
using Message = std::unique_ptr<DBusMessage, MessageFree>;

// A private connection, closed and released when it goes out of scope.
struct ConnectionClose {
  void operator()(DBusConnection* c) const {
    dbus_connection_close(c);
    dbus_connection_unref(c);
  }
};
using Connection = std::unique_ptr<DBusConnection, ConnectionClose>;

struct DbusError {
  DbusError() { dbus_error_init(&e); }
  ~DbusError() { dbus_error_free(&e); }
  DbusError(const DbusError&) = delete;
  DbusError& operator=(const DbusError&) = delete;
  bool set() const { return dbus_error_is_set(&e) != 0; }
  std::string text() const {
    return std::string(e.name ? e.name : "") + ": " + (e.message ? e.message : "");
  }
  DBusError e;
};

Result<Connection> connect(const std::string& address) {
  DbusError err;
  DBusConnection* raw = nullptr;
  if (address.empty()) {
    raw = dbus_bus_get_private(DBUS_BUS_SYSTEM, &err.e);
  } else {
    raw = dbus_connection_open_private(address.c_str(), &err.e);
    if (raw != nullptr && dbus_bus_register(raw, &err.e) == 0) {
      dbus_connection_close(raw);
      dbus_connection_unref(raw);
      raw = nullptr;
    }
  }
  if (raw == nullptr) {
    return Error{"unavailable", "cannot connect to the system bus" +
                                    (address.empty() ? std::string() : " at " + address) + ": " +
                                    (err.set() ? err.text() : "unknown error")};
  }
  dbus_connection_set_exit_on_disconnect(raw, 0);
  return Connection(raw);
}

Result<Message> call(DBusConnection* conn, DBusMessage* request, std::chrono::seconds timeout) {
  Message owned(request);
  DbusError err;
  DBusMessage* reply = dbus_connection_send_with_reply_and_block(
      conn, request, static_cast<int>(std::chrono::milliseconds(timeout).count()), &err.e);
  if (reply == nullptr) {
    return Error{"unavailable", std::string("RAUC ") + dbus_message_get_member(request) + ": " +
                                    (err.set() ? err.text() : "no reply")};
  }
  return Message(reply);
}

DBusMessage* new_call(const char* interface, const char* method) {
  return dbus_message_new_method_call(kService, kPath, interface, method);
}

// Reads a string, or the first field of a struct, from a variant or plain value.
bool read_basic(DBusMessageIter* it, std::string& out) {
  int type = dbus_message_iter_get_arg_type(it);
  if (type == DBUS_TYPE_VARIANT || type == DBUS_TYPE_STRUCT) {
    DBusMessageIter sub;
    dbus_message_iter_recurse(it, &sub);
    return read_basic(&sub, out);
  }
  if (type == DBUS_TYPE_STRING) {
    const char* s = nullptr;
    dbus_message_iter_get_basic(it, &s);
    out = s ? s : "";
    return true;
  }
  if (type == DBUS_TYPE_INT32 || type == DBUS_TYPE_UINT32) {
    dbus_uint32_t v = 0;
    dbus_message_iter_get_basic(it, &v);
    out = type == DBUS_TYPE_INT32 ? std::to_string(static_cast<int32_t>(v)) : std::to_string(v);
    return true;
  }
  if (type == DBUS_TYPE_UINT64 || type == DBUS_TYPE_INT64) {
    dbus_uint64_t v = 0;
    dbus_message_iter_get_basic(it, &v);
    out = std::to_string(v);
    return true;
  }
  return false;
}

Result<Message> get_property(DBusConnection* conn, const char* name, std::chrono::seconds timeout) {
  DBusMessage* m = new_call(kProperties, "Get");
  const char* iface = kInstaller;
  dbus_message_append_args(m, DBUS_TYPE_STRING, &iface, DBUS_TYPE_STRING, &name, DBUS_TYPE_INVALID);
  return call(conn, m, timeout);
}

Result<std::string> string_property(DBusConnection* conn, const char* name,
                                    std::chrono::seconds timeout) {
  auto reply = get_property(conn, name, timeout);
  if (!reply) return reply.error();
  DBusMessageIter it;
  std::string value;
  if (dbus_message_iter_init(reply.value().get(), &it) == 0 || !read_basic(&it, value)) {
    return Error{"unavailable", std::string("RAUC property ") + name + " has an unexpected type"};
  }
  return value;
}

// Progress is (i percentage, s message, i depth).
Result<Progress> progress_property(DBusConnection* conn, std::chrono::seconds timeout) {
  auto reply = get_property(conn, "Progress", timeout);
  if (!reply) return reply.error();
  DBusMessageIter it, variant, fields;
  if (dbus_message_iter_init(reply.value().get(), &it) == 0 ||
      dbus_message_iter_get_arg_type(&it) != DBUS_TYPE_VARIANT) {
    return Error{"unavailable", "RAUC Progress has an unexpected type"};
  }
  dbus_message_iter_recurse(&it, &variant);
  if (dbus_message_iter_get_arg_type(&variant) != DBUS_TYPE_STRUCT) {
    return Error{"unavailable", "RAUC Progress has an unexpected type"};
  }
  dbus_message_iter_recurse(&variant, &fields);
  Progress p;
  std::string percent;
  if (read_basic(&fields, percent)) p.percent = std::stoi(percent);
  if (dbus_message_iter_next(&fields) != 0) read_basic(&fields, p.message);
  return p;
}

}  // namespace

Status RaucDbusBackend::install(const std::string& path,
                                const std::function<void(const Progress&)>& on_progress) {
  auto conn = connect(options_.bus_address);
  if (!conn) return conn.error();
  DBusConnection* c = conn.value().get();
  const std::string rule = std::string("type='signal',sender='") + kService + "',interface='" +
                           kInstaller + "',member='Completed'";
  DbusError err;
  dbus_bus_add_match(c, rule.c_str(), &err.e);
  if (err.set())
    return Error{"unavailable", "subscribing to RAUC's Completed signal: " + err.text()};

  DBusMessage* m = new_call(kInstaller, "InstallBundle");
  const char* source = path.c_str();
  DBusMessageIter it, dict;
  dbus_message_iter_init_append(m, &it);
  dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &source);
  dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict);
  dbus_message_iter_close_container(&it, &dict);
  auto started = call(c, m, options_.call_timeout);
  if (!started) return started.error().context("starting the install");

  // Wait for Completed(i result); meanwhile report Progress when it changes.
  const auto deadline = std::chrono::steady_clock::now() + options_.install_timeout;
  Progress last{-1, ""};
  while (std::chrono::steady_clock::now() < deadline) {
    if (dbus_connection_read_write(c, 200) == 0) {
      return Error{"unavailable", "lost the bus connection to RAUC during the install"};
    }
    while (DBusMessage* raw = dbus_connection_pop_message(c)) {
      Message msg(raw);
      if (dbus_message_is_signal(raw, kInstaller, "Completed") == 0) continue;
      dbus_int32_t result = -1;
      dbus_message_get_args(raw, nullptr, DBUS_TYPE_INT32, &result, DBUS_TYPE_INVALID);
      if (result == 0) {
        if (on_progress) on_progress(Progress{100, "Installing done."});
        return ok();
      }
      auto error = string_property(c, "LastError", options_.call_timeout);
      return Error{"rejected",
                   error ? error.value() : "RAUC reported failure " + std::to_string(result)};
    }
    auto p = progress_property(c, options_.call_timeout);
    if (p && on_progress &&
        (p.value().percent != last.percent || p.value().message != last.message)) {
      last = p.value();
      on_progress(last);
    }
  }
  return Error{"timeout", "RAUC did not complete the install within " +
                              std::to_string(options_.install_timeout.count()) + " s"};
}

Result<std::string> RaucDbusBackend::operation() {
  auto conn = connect(options_.bus_address);
  if (!conn) return conn.error();
  return string_property(conn.value().get(), "Operation", options_.call_timeout);
}

Result<std::string> RaucDbusBackend::last_error() {
  auto conn = connect(options_.bus_address);
  if (!conn) return conn.error();
  return string_property(conn.value().get(), "LastError", options_.call_timeout);
}

Result<std::string> RaucDbusBackend::booted_slot() {
  auto conn = connect(options_.bus_address);
  if (!conn) return conn.error();
  return string_property(conn.value().get(), "BootSlot", options_.call_timeout);
}

Status RaucDbusBackend::mark(const std::string& state, const std::string& slot) {
  auto conn = connect(options_.bus_address);
  if (!conn) return conn.error();
  DBusMessage* m = new_call(kInstaller, "Mark");
  const char* s = state.c_str();
  const char* id = slot.c_str();
  dbus_message_append_args(m, DBUS_TYPE_STRING, &s, DBUS_TYPE_STRING, &id, DBUS_TYPE_INVALID);
  auto reply = call(conn.value().get(), m, options_.call_timeout);
  if (!reply) return reply.error().context("marking " + slot + " " + state);
  return ok();
}

Result<std::string> RaucDbusBackend::primary_slot() {
  auto conn = connect(options_.bus_address);
  if (!conn) return conn.error();
  auto reply = call(conn.value().get(), new_call(kInstaller, "GetPrimary"), options_.call_timeout);
  if (!reply) return reply.error();
  DBusMessageIter it;
  std::string name;
  if (dbus_message_iter_init(reply.value().get(), &it) == 0 || !read_basic(&it, name)) {
    return Error{"unavailable", "RAUC GetPrimary returned an unexpected type"};
  }
  return name;
}

// GetSlotStatus returns a(sa{sv}): slot name and its properties.
Result<std::vector<SlotInfo>> RaucDbusBackend::slots() {
  auto conn = connect(options_.bus_address);
  if (!conn) return conn.error();
  auto reply =
      call(conn.value().get(), new_call(kInstaller, "GetSlotStatus"), options_.call_timeout);
  if (!reply) return reply.error();
  DBusMessageIter it, array;
  if (dbus_message_iter_init(reply.value().get(), &it) == 0 ||
      dbus_message_iter_get_arg_type(&it) != DBUS_TYPE_ARRAY) {
    return Error{"unavailable", "RAUC GetSlotStatus returned an unexpected type"};
  }
  std::vector<SlotInfo> out;
  dbus_message_iter_recurse(&it, &array);
  while (dbus_message_iter_get_arg_type(&array) == DBUS_TYPE_STRUCT) {
    DBusMessageIter slot, props;
    dbus_message_iter_recurse(&array, &slot);
    SlotInfo info;
    read_basic(&slot, info.name);
    dbus_message_iter_next(&slot);
    if (dbus_message_iter_get_arg_type(&slot) == DBUS_TYPE_ARRAY) {
      dbus_message_iter_recurse(&slot, &props);
      while (dbus_message_iter_get_arg_type(&props) == DBUS_TYPE_DICT_ENTRY) {
        DBusMessageIter entry;
        dbus_message_iter_recurse(&props, &entry);
        std::string key, value;
        read_basic(&entry, key);
        dbus_message_iter_next(&entry);
        if (read_basic(&entry, value)) {
          if (key == "bootname")
            info.bootname = value;
          else if (key == "state")
            info.state = value;
          else if (key == "boot-status")
            info.boot_status = value;
          else if (key == "bundle.version")
            info.bundle_version = value;
          else if (key == "installed.timestamp")
            info.installed_at = value;
        }
        dbus_message_iter_next(&props);
      }
    }
    out.push_back(std::move(info));
    dbus_message_iter_next(&array);
  }
  return out;
}

}  // namespace cordon::control::update
