// Turns the dataplane's event stream into controld's records: flow records (new flows a
// rule allowed, per device and kind of connection), discovery (every MAC/IP seen on a
// device port) and the event log (drops, would-drops, patch hits). Flow records are not
// kept as events: they are aggregated.
//
// Threads: control thread only (it writes the store).
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "control/common/result.h"
#include "control/store/store.h"

namespace cordon::control::observe {

// The kind of connection an event belongs to, from the device's point of view: who
// opened it (dir), the other end (peer) and the service port (the responder's).
// Works for any packet of the flow, in either direction.
store::FlowKey flow_key(const boost::json::object& event);
std::string protocol_name(int64_t ip_protocol);
std::string describe(const store::FlowKey& key);  // "tcp out to 10.50.0.20 port 104"
// The (field, value) pairs of an app_observed event's detail, e.g. "dicom-ae CT1\\PACS" ->
// (dicom.calling_ae, CT1), (dicom.called_ae, PACS); none for a detail of unknown form.
std::vector<std::pair<std::string, std::string>> app_fields(std::string_view detail);

struct Ingested {
  std::vector<std::string> log;            // events for the event log (JSON text)
  std::vector<boost::json::object> drops;  // enforced drops, for the guardrail
};

class Observer {
 public:
  explicit Observer(store::Store& store) : store_(store) {}
  Result<Ingested> ingest(const std::vector<std::string>& events, int64_t now_ms);

 private:
  store::Store& store_;
};

}  // namespace cordon::control::observe
