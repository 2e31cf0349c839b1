// The management firewall as an OS side effect behind one interface (DESIGN §5):
// NftablesBackend talks netlink to the kernel through libnftnl; FakeFirewallBackend
// keeps the table in memory for controld's unit tests.
//
// Threads: a backend is used by one thread at a time (controld's control thread); it
// holds no locks. Two backends (or nft(8)) changing the same table concurrently are
// each atomic, but the later one wins.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "control/common/result.h"
#include "control/nft/table.h"

namespace cordon::control::nft {

class FirewallBackend {
 public:
  virtual ~FirewallBackend() = default;

  // Replaces the table `inet cordon_mgmt` with `spec` in one transaction: the kernel
  // holds either the old or the new table, never a mix. Other tables are untouched.
  // An invalid spec is rejected (code "invalid") and nothing changes.
  virtual Status apply_table(const TableSpec& spec) = 0;

  // The table as the kernel holds it now (present = false when there is none).
  virtual Result<TableDescription> read_table() = 0;

  // Adds (or renews, with the new timeout) vendor elements, one transaction. Timeout
  // 1 ms .. kMaxVendorTimeout. Fails with "not_found" when the table is absent.
  virtual Status add_vendor_access(const std::vector<VendorAccessElement>& elements,
                                   std::chrono::milliseconds timeout) = 0;
  // Removes vendor elements, one transaction; absent elements are not an error.
  virtual Status remove_vendor_access(const std::vector<VendorAccessElement>& elements) = 0;

  // Removes the table (absent is not an error).
  virtual Status delete_table() = 0;
};

// Reads the table back and compares it with `spec`; error code "mismatch" with one
// "missing: ..."/"unexpected: ..." line per difference in the message.
Status verify(FirewallBackend& backend, const TableSpec& spec);

// Real backend: one netlink socket per call, in the network namespace of the calling
// thread.
class NftablesBackend final : public FirewallBackend {
 public:
  Status apply_table(const TableSpec& spec) override;
  Result<TableDescription> read_table() override;
  Status add_vendor_access(const std::vector<VendorAccessElement>& elements,
                           std::chrono::milliseconds timeout) override;
  Status remove_vendor_access(const std::vector<VendorAccessElement>& elements) override;
  Status delete_table() override;
};

// In-memory backend. Vendor elements expire by the injected clock. fail_next_apply
// makes the next apply_table fail like a kernel rejection (and change nothing).
class FakeFirewallBackend final : public FirewallBackend {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  explicit FakeFirewallBackend(Clock now = [] { return std::chrono::steady_clock::now(); });

  Status apply_table(const TableSpec& spec) override;
  Result<TableDescription> read_table() override;
  Status add_vendor_access(const std::vector<VendorAccessElement>& elements,
                           std::chrono::milliseconds timeout) override;
  Status remove_vendor_access(const std::vector<VendorAccessElement>& elements) override;
  Status delete_table() override;

  std::optional<Error> fail_next_apply;
  int applies = 0;  // successful apply_table calls

 private:
  struct Grant {
    VendorAccessElement element;
    std::chrono::steady_clock::time_point expires;
  };
  void expire();
  Clock now_;
  std::optional<ManagementFirewallSettings> settings_;
  std::vector<Cidr> management_peers_;
  std::vector<Grant> grants_;
};

}  // namespace cordon::control::nft
