// libnftnl objects of the management table: built from a TableSpec, or parsed from
// the kernel's dumps, and rendered into a TableDescription the same way in both cases.
// Internal to cordon_nft.
//
// Threads: values owned by one thread.
#pragma once

#include <netinet/in.h>

#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include <memory>
#include <string>
#include <vector>

#include "control/nft/table.h"

namespace cordon::control::nft::detail {

struct TableFree {
  void operator()(nftnl_table* p) const { nftnl_table_free(p); }
};
struct ChainFree {
  void operator()(nftnl_chain* p) const { nftnl_chain_free(p); }
};
struct SetFree {
  void operator()(nftnl_set* p) const { nftnl_set_free(p); }
};
struct RuleFree {
  void operator()(nftnl_rule* p) const { nftnl_rule_free(p); }
};
using TablePtr = std::unique_ptr<nftnl_table, TableFree>;
using ChainPtr = std::unique_ptr<nftnl_chain, ChainFree>;
using SetPtr = std::unique_ptr<nftnl_set, SetFree>;  // owns its elements
using RulePtr = std::unique_ptr<nftnl_rule, RuleFree>;

struct NftObjects {
  TablePtr table;
  std::vector<ChainPtr> chains;  // in creation order
  std::vector<SetPtr> sets;      // with their elements
  std::vector<RulePtr> rules;    // in chain order
};

NftObjects build_objects(const TableSpec& spec);
TableDescription describe(const NftObjects& objects);

// A vendor_access set object (name, table, family) holding `grants`; for element updates.
SetPtr vendor_set_with(const std::vector<VendorGrant>& grants);

}  // namespace cordon::control::nft::detail
