#include "control/nft/nftnl_objects.h"

#include <net/if.h>
#include <netinet/in.h>  // before the linux/ headers, which include linux/in.h

#include <arpa/inet.h>
#include <libnftnl/expr.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <stdexcept>

namespace cordon::control::nft::detail {
namespace {

constexpr std::uint32_t kAdminV4Id = 1;
constexpr std::uint32_t kAdminV6Id = 2;
constexpr std::uint32_t kVendorId = 3;
constexpr std::uint32_t kManagementPeerId = 4;

// nft's data type ids (nftables src/datatype.h), so that `nft list` prints the sets.
constexpr std::uint32_t kTypeIpv4 = 7;
constexpr std::uint32_t kTypeIpv6 = 8;
constexpr std::uint32_t kTypeInetService = 13;
constexpr std::uint32_t kTypeBits = 6;
constexpr std::uint32_t kVendorKeyType =
    (((kTypeIpv4 << kTypeBits) | kTypeIpv4) << kTypeBits) | kTypeInetService;
constexpr std::uint32_t kVendorKeyLen = 12;  // 4 + 4 + port padded to a 32-bit register

// Builds one rule; each method appends one expression, in nft's register conventions.
class RuleBuilder {
 public:
  RuleBuilder(const std::string& chain, const std::string& comment) : rule_(nftnl_rule_alloc()) {
    nftnl_rule_set_u32(rule_.get(), NFTNL_RULE_FAMILY, NFPROTO_INET);
    nftnl_rule_set_str(rule_.get(), NFTNL_RULE_TABLE, kTableName);
    nftnl_rule_set_str(rule_.get(), NFTNL_RULE_CHAIN, chain.c_str());
    nftnl_udata_buf* ud = nftnl_udata_buf_alloc(256);
    nftnl_udata_put_strz(ud, NFTNL_UDATA_RULE_COMMENT, comment.c_str());
    nftnl_rule_set_data(rule_.get(), NFTNL_RULE_USERDATA, nftnl_udata_buf_data(ud),
                        nftnl_udata_buf_len(ud));
    nftnl_udata_buf_free(ud);
  }

  RuleBuilder& meta(std::uint32_t key, std::uint32_t dreg = NFT_REG_1) {
    nftnl_expr* e = add("meta");
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
    return *this;
  }
  RuleBuilder& cmp(std::uint32_t op, const void* data, std::uint32_t len,
                   std::uint32_t sreg = NFT_REG_1) {
    nftnl_expr* e = add("cmp");
    nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, sreg);
    nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
    nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
    return *this;
  }
  RuleBuilder& cmp_u8(std::uint8_t v) { return cmp(NFT_CMP_EQ, &v, 1); }
  RuleBuilder& cmp_be16(std::uint16_t v) {
    const std::uint16_t be = htons(v);
    return cmp(NFT_CMP_EQ, &be, 2);
  }
  RuleBuilder& ifname(std::uint32_t key, std::uint32_t op, const std::string& name) {
    char padded[IFNAMSIZ] = {};
    std::memcpy(padded, name.data(), std::min(name.size(), sizeof padded - 1));
    meta(key);
    return cmp(op, padded, sizeof padded);
  }
  RuleBuilder& nfproto(std::uint8_t p) { return meta(NFT_META_NFPROTO).cmp_u8(p); }
  RuleBuilder& l4proto(std::uint8_t p) { return meta(NFT_META_L4PROTO).cmp_u8(p); }
  RuleBuilder& payload(std::uint32_t base, std::uint32_t offset, std::uint32_t len,
                       std::uint32_t dreg = NFT_REG_1) {
    nftnl_expr* e = add("payload");
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
    return *this;
  }
  RuleBuilder& lookup(const char* set, std::uint32_t set_id, std::uint32_t sreg = NFT_REG_1) {
    nftnl_expr* e = add("lookup");
    nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg);
    nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, 0);  // the kernel reports it always
    return *this;
  }
  RuleBuilder& ct_state(std::uint32_t mask) {
    nftnl_expr* e = add("ct");
    nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
    nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
    const std::uint32_t zero = 0;
    e = add("bitwise");
    nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
    nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
    nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, 4);
    nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, 4);
    nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &zero, 4);
    return cmp(NFT_CMP_NEQ, &zero, 4);
  }
  RuleBuilder& limit(std::uint64_t rate, std::uint64_t unit_seconds, std::uint32_t burst) {
    nftnl_expr* e = add("limit");
    nftnl_expr_set_u64(e, NFTNL_EXPR_LIMIT_RATE, rate);
    nftnl_expr_set_u64(e, NFTNL_EXPR_LIMIT_UNIT, unit_seconds);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LIMIT_BURST, burst);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LIMIT_TYPE, NFT_LIMIT_PKTS);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LIMIT_FLAGS, 0);
    return *this;
  }
  RuleBuilder& log(const char* prefix) {
    nftnl_expr* e = add("log");
    nftnl_expr_set_str(e, NFTNL_EXPR_LOG_PREFIX, prefix);
    return *this;
  }
  RuleBuilder& counter() {
    add("counter");
    return *this;
  }
  RuleBuilder& verdict(int v) {
    nftnl_expr* e = add("immediate");
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, static_cast<std::uint32_t>(v));
    return *this;
  }
  // snat ip to `address` (network order): the address is loaded into register 1.
  RuleBuilder& snat_ipv4(const std::array<std::uint8_t, 4>& address) {
    nftnl_expr* e = add("immediate");
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
    nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, address.data(), 4);
    e = add("nat");
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_SNAT);
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, NFPROTO_IPV4);
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MAX, NFT_REG_1);
    // The kernel sets "map IPs" and addr_max = addr_min itself when only addr_min is given,
    // and reports them; set here too, so the read-back compares equal.
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FLAGS, NF_NAT_RANGE_MAP_IPS);
    return *this;
  }
  // reject with tcp reset: the sender of the segment gets a RST (its own connection ends).
  // No ICMP code: the kernel reports none for a TCP reset.
  RuleBuilder& reject_tcp_reset() {
    nftnl_expr* e = add("reject");
    nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE, NFT_REJECT_TCP_RST);
    return *this;
  }
  RulePtr done() { return std::move(rule_); }

 private:
  nftnl_expr* add(const char* name) {
    nftnl_expr* e = nftnl_expr_alloc(name);
    if (e == nullptr) throw std::bad_alloc();
    nftnl_rule_add_expr(rule_.get(), e);
    return e;
  }
  RulePtr rule_;
};

ChainPtr make_chain(const char* name, std::uint32_t hook, int policy, const char* type = "filter",
                    std::int32_t priority = 0) {
  ChainPtr c(nftnl_chain_alloc());
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_FAMILY, NFPROTO_INET);
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, kTableName);
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, name);
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TYPE, type);
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_HOOKNUM, hook);
  nftnl_chain_set_s32(c.get(), NFTNL_CHAIN_PRIO, priority);
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_POLICY, static_cast<std::uint32_t>(policy));
  return c;
}

SetPtr make_set(const char* name, std::uint32_t id, std::uint32_t key_type, std::uint32_t key_len,
                std::uint32_t flags) {
  SetPtr s(nftnl_set_alloc());
  nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, NFPROTO_INET);
  nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, kTableName);
  nftnl_set_set_str(s.get(), NFTNL_SET_NAME, name);
  nftnl_set_set_u32(s.get(), NFTNL_SET_ID, id);
  nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, key_type);
  nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, key_len);
  nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, flags);
  return s;
}

void add_elem(nftnl_set* s, const std::uint8_t* key, std::uint32_t len, bool interval_end) {
  nftnl_set_elem* e = nftnl_set_elem_alloc();
  nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, len);
  if (interval_end) nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
  nftnl_set_elem_add(s, e);
}

using Addr = std::array<std::uint8_t, 16>;

// Admin networks as sorted, merged ranges [first, last]; an interval set holds each as
// a start element and an interval-end element at last + 1 (none when last is all-ones).
void fill_interval_set(nftnl_set* s, const std::vector<Cidr>& nets, bool ipv6) {
  const std::size_t len = ipv6 ? 16 : 4;
  std::vector<std::pair<Addr, Addr>> ranges;
  for (const auto& n : nets) {
    if (n.ipv6 != ipv6) continue;
    Addr first = n.address, last = n.address;
    for (unsigned bit = n.prefix; bit < len * 8; ++bit) {
      last[bit / 8] = static_cast<std::uint8_t>(last[bit / 8] | (0x80u >> (bit % 8)));
    }
    ranges.emplace_back(first, last);
  }
  std::sort(ranges.begin(), ranges.end());
  std::vector<std::pair<Addr, Addr>> merged;
  for (const auto& r : ranges) {
    if (!merged.empty()) {
      // Adjacent or overlapping: last + 1 >= r.first.
      Addr next = merged.back().second;
      bool overflow = true;
      for (std::size_t i = len; i-- > 0 && overflow;) overflow = ++next[i] == 0;
      if (overflow || next >= r.first) {
        merged.back().second = std::max(merged.back().second, r.second);
        continue;
      }
    }
    merged.push_back(r);
  }
  for (const auto& [first, last] : merged) {
    add_elem(s, first.data(), static_cast<std::uint32_t>(len), false);
    Addr end = last;
    bool overflow = true;
    for (std::size_t i = len; i-- > 0 && overflow;) overflow = ++end[i] == 0;
    if (!overflow) add_elem(s, end.data(), static_cast<std::uint32_t>(len), true);
  }
}

std::array<std::uint8_t, kVendorKeyLen> vendor_key(const VendorAccessElement& e) {
  std::array<std::uint8_t, kVendorKeyLen> key{};
  std::memcpy(key.data(), e.tunnel_address.data(), 4);
  std::memcpy(key.data() + 4, e.device_address.data(), 4);
  key[8] = static_cast<std::uint8_t>(e.port >> 8);
  key[9] = static_cast<std::uint8_t>(e.port & 0xff);
  return key;
}

std::string hex(const void* data, std::uint32_t len) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  const auto* p = static_cast<const std::uint8_t*>(data);
  for (std::uint32_t i = 0; i < len; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 0xf];
  }
  return out;
}

int comment_cb(const nftnl_udata* attr, void* data) {
  if (nftnl_udata_type(attr) == NFTNL_UDATA_RULE_COMMENT) {
    const char* value = static_cast<const char*>(nftnl_udata_get(attr));
    const std::uint32_t len = nftnl_udata_len(attr);
    if (len > 0 && value[len - 1] == '\0') *static_cast<std::string*>(data) = value;
  }
  return 0;
}

std::string render_rule(nftnl_rule* r, std::size_t index) {
  std::string comment;
  if (nftnl_rule_is_set(r, NFTNL_RULE_USERDATA)) {
    std::uint32_t len = 0;
    const void* ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);
    nftnl_udata_parse(ud, len, comment_cb, &comment);
  }
  std::string line = std::string("rule ") + nftnl_rule_get_str(r, NFTNL_RULE_CHAIN) + " " +
                     std::to_string(index) + " \"" + comment + "\":";
  nftnl_expr_iter* it = nftnl_expr_iter_create(r);
  for (nftnl_expr* e = nftnl_expr_iter_next(it); e != nullptr; e = nftnl_expr_iter_next(it)) {
    const std::string name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
    if (name == "counter") {  // the values count packets; only the presence is intended
      line += " [ counter ]";
      continue;
    }
    if (name == "log") {  // we set only the prefix; kernels differ in reporting the level
      line +=
          std::string(" [ log prefix \"") + nftnl_expr_get_str(e, NFTNL_EXPR_LOG_PREFIX) + "\" ]";
      continue;
    }
    char buf[1024];
    nftnl_expr_snprintf(buf, sizeof buf, e, NFTNL_OUTPUT_DEFAULT, 0);
    std::string text = buf;
    while (!text.empty() && text.back() == ' ') text.pop_back();
    line += " [ " + name + " " + text + " ]";
  }
  nftnl_expr_iter_destroy(it);
  return line;
}

}  // namespace

SetPtr vendor_set_with(const std::vector<VendorGrant>& grants) {
  SetPtr s = make_set(kVendorSet, kVendorId, kVendorKeyType, kVendorKeyLen, NFT_SET_TIMEOUT);
  for (const auto& g : grants) {
    const auto key = vendor_key(g.element);
    nftnl_set_elem* e = nftnl_set_elem_alloc();
    nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key.data(), kVendorKeyLen);
    if (g.timeout.count() > 0) {
      nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT,
                             static_cast<std::uint64_t>(g.timeout.count()));
    }
    nftnl_set_elem_add(s.get(), e);
  }
  return s;
}

NftObjects build_objects(const TableSpec& spec) {
  const ManagementFirewallSettings& s = spec.settings;
  NftObjects o;
  o.table.reset(nftnl_table_alloc());
  nftnl_table_set_u32(o.table.get(), NFTNL_TABLE_FAMILY, NFPROTO_INET);
  nftnl_table_set_str(o.table.get(), NFTNL_TABLE_NAME, kTableName);
  nftnl_table_set_u32(o.table.get(), NFTNL_TABLE_FLAGS, 0);

  o.chains.push_back(make_chain("input", NF_INET_LOCAL_IN, NF_DROP));
  o.chains.push_back(make_chain("forward", NF_INET_FORWARD, NF_ACCEPT));
  const bool vendor_snat = !s.wireguard_interface.empty() && !s.vendor_service_address.empty();
  if (vendor_snat) {
    // srcnat priority (100), as nft's "type nat hook postrouting priority srcnat".
    o.chains.push_back(make_chain("postrouting", NF_INET_POST_ROUTING, NF_ACCEPT, "nat", 100));
  }

  o.sets.push_back(make_set(kAdminSetV4, kAdminV4Id, kTypeIpv4, 4, NFT_SET_INTERVAL));
  fill_interval_set(o.sets.back().get(), s.admin_networks, false);
  o.sets.push_back(make_set(kAdminSetV6, kAdminV6Id, kTypeIpv6, 16, NFT_SET_INTERVAL));
  fill_interval_set(o.sets.back().get(), s.admin_networks, true);
  o.sets.push_back(vendor_set_with(spec.vendor_access));
  if (!s.wireguard_interface.empty()) {
    o.sets.push_back(
        make_set(kManagementPeerSet, kManagementPeerId, kTypeIpv4, 4, NFT_SET_INTERVAL));
    fill_interval_set(o.sets.back().get(), spec.management_peers, false);
  }

  const std::string& mgmt = s.interface;
  const std::string& wg = s.wireguard_interface;
  auto& rules = o.rules;
  const std::uint32_t est_rel = NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED);

  // --- input: the appliance itself ---
  rules.push_back(
      RuleBuilder("input", "established and related").ct_state(est_rel).verdict(NF_ACCEPT).done());
  {
    RuleBuilder r("input", "other interfaces are not ours to filter");
    r.ifname(NFT_META_IIFNAME, NFT_CMP_NEQ, mgmt);
    if (!wg.empty()) r.ifname(NFT_META_IIFNAME, NFT_CMP_NEQ, wg);
    if (!s.external_interface.empty())
      r.ifname(NFT_META_IIFNAME, NFT_CMP_NEQ, s.external_interface);
    rules.push_back(r.verdict(NF_ACCEPT).done());
  }
  rules.push_back(RuleBuilder("input", "https from admin networks (IPv4)")
                      .nfproto(NFPROTO_IPV4)
                      .l4proto(IPPROTO_TCP)
                      .payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2)
                      .cmp_be16(s.https_port)
                      .payload(NFT_PAYLOAD_NETWORK_HEADER, 12, 4)
                      .lookup(kAdminSetV4, kAdminV4Id)
                      .verdict(NF_ACCEPT)
                      .done());
  rules.push_back(RuleBuilder("input", "https from admin networks (IPv6)")
                      .nfproto(NFPROTO_IPV6)
                      .l4proto(IPPROTO_TCP)
                      .payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2)
                      .cmp_be16(s.https_port)
                      .payload(NFT_PAYLOAD_NETWORK_HEADER, 8, 16)
                      .lookup(kAdminSetV6, kAdminV6Id)
                      .verdict(NF_ACCEPT)
                      .done());
  if (!wg.empty()) {
    // Remote-management peers: HTTPS only, and only through the tunnel, where WireGuard's
    // cryptokey routing guarantees the source address belongs to the peer's key.
    rules.push_back(RuleBuilder("input", "https from management peers (tunnel)")
                        .ifname(NFT_META_IIFNAME, NFT_CMP_EQ, wg)
                        .nfproto(NFPROTO_IPV4)
                        .l4proto(IPPROTO_TCP)
                        .payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2)
                        .cmp_be16(s.https_port)
                        .payload(NFT_PAYLOAD_NETWORK_HEADER, 12, 4)
                        .lookup(kManagementPeerSet, kManagementPeerId)
                        .verdict(NF_ACCEPT)
                        .done());
  }
  if (!wg.empty()) {
    // Vendors reach WireGuard from the internet side when there is one.
    const std::string& wg_from = s.external_interface.empty() ? mgmt : s.external_interface;
    rules.push_back(RuleBuilder("input", "wireguard")
                        .ifname(NFT_META_IIFNAME, NFT_CMP_EQ, wg_from)
                        .l4proto(IPPROTO_UDP)
                        .payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2)
                        .cmp_be16(s.wireguard_port)
                        .verdict(NF_ACCEPT)
                        .done());
  }
  rules.push_back(RuleBuilder("input", "icmp echo, rate limited")
                      .ifname(NFT_META_IIFNAME, NFT_CMP_EQ, mgmt)
                      .nfproto(NFPROTO_IPV4)
                      .l4proto(IPPROTO_ICMP)
                      .payload(NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1)
                      .cmp_u8(8)
                      .limit(s.icmp_echo_per_second, 1, 5)
                      .verdict(NF_ACCEPT)
                      .done());
  rules.push_back(RuleBuilder("input", "icmpv6 echo, rate limited")
                      .ifname(NFT_META_IIFNAME, NFT_CMP_EQ, mgmt)
                      .nfproto(NFPROTO_IPV6)
                      .l4proto(IPPROTO_ICMPV6)
                      .payload(NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1)
                      .cmp_u8(128)
                      .limit(s.icmp_echo_per_second, 1, 5)
                      .verdict(NF_ACCEPT)
                      .done());
  // Neighbour discovery, only from on-link senders (hop limit 255, RFC 4861).
  for (const auto& [type, what] : {std::pair<std::uint8_t, const char*>{133, "router solicitation"},
                                   {134, "router advertisement"},
                                   {135, "neighbour solicitation"},
                                   {136, "neighbour advertisement"}}) {
    rules.push_back(RuleBuilder("input", std::string("icmpv6 ") + what)
                        .ifname(NFT_META_IIFNAME, NFT_CMP_EQ, mgmt)
                        .nfproto(NFPROTO_IPV6)
                        .l4proto(IPPROTO_ICMPV6)
                        .payload(NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1)
                        .cmp_u8(type)
                        .payload(NFT_PAYLOAD_NETWORK_HEADER, 7, 1)
                        .cmp_u8(255)
                        .verdict(NF_ACCEPT)
                        .done());
  }
  if (s.log_drops) {
    rules.push_back(RuleBuilder("input", "log drops, rate limited")
                        .limit(10, 60, 5)
                        .log("cordon-mgmt drop: ")
                        .done());
  }
  rules.push_back(RuleBuilder("input", "count drops").counter().verdict(NF_DROP).done());

  // --- forward: vendor access through the tunnel, nothing else ---
  if (!wg.empty()) {
    const std::string& egress = s.vendor_egress_interface;
    for (const auto& [proto, name] :
         {std::pair<std::uint8_t, const char*>{IPPROTO_TCP, "tcp"}, {IPPROTO_UDP, "udp"}}) {
      RuleBuilder to_device("forward", std::string("vendor to device (") + name + ")");
      to_device.ifname(NFT_META_IIFNAME, NFT_CMP_EQ, wg);
      if (!egress.empty()) to_device.ifname(NFT_META_OIFNAME, NFT_CMP_EQ, egress);
      to_device.nfproto(NFPROTO_IPV4)
          .l4proto(proto)
          // A concatenation spans 32-bit registers 8, 9, 10; register 8 is the first
          // word of register 1, and the kernel reports it as 1.
          .payload(NFT_PAYLOAD_NETWORK_HEADER, 12, 4, NFT_REG_1)
          .payload(NFT_PAYLOAD_NETWORK_HEADER, 16, 4, NFT_REG32_01)
          .payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_02)
          .lookup(kVendorSet, kVendorId, NFT_REG_1)
          .verdict(NF_ACCEPT);
      rules.push_back(to_device.done());
    }
    for (const auto& [proto, name] :
         {std::pair<std::uint8_t, const char*>{IPPROTO_TCP, "tcp"}, {IPPROTO_UDP, "udp"}}) {
      RuleBuilder reply("forward", std::string("device replies to vendor (") + name + ")");
      reply.ifname(NFT_META_OIFNAME, NFT_CMP_EQ, wg);
      if (!egress.empty()) reply.ifname(NFT_META_IIFNAME, NFT_CMP_EQ, egress);
      reply.nfproto(NFPROTO_IPV4)
          .l4proto(proto)
          .payload(NFT_PAYLOAD_NETWORK_HEADER, 16, 4, NFT_REG_1)
          .payload(NFT_PAYLOAD_NETWORK_HEADER, 12, 4, NFT_REG32_01)
          .payload(NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2, NFT_REG32_02)
          .lookup(kVendorSet, kVendorId, NFT_REG_1)
          .verdict(NF_ACCEPT);
      rules.push_back(reply.done());
    }
    // A vendor connection its session no longer allows (revoked, expired) is cut at the
    // vendor's next segment with a TCP reset, so the vendor's client fails at once rather
    // than timing out. Established connections only: anything new stays a silent drop.
    rules.push_back(RuleBuilder("forward", "cut vendor tcp connection")
                        .ifname(NFT_META_IIFNAME, NFT_CMP_EQ, wg)
                        .nfproto(NFPROTO_IPV4)
                        .l4proto(IPPROTO_TCP)
                        .ct_state(NF_CT_STATE_BIT(IP_CT_ESTABLISHED))
                        .counter()
                        .reject_tcp_reset()
                        .done());
    rules.push_back(RuleBuilder("forward", "other traffic from the tunnel")
                        .ifname(NFT_META_IIFNAME, NFT_CMP_EQ, wg)
                        .counter()
                        .verdict(NF_DROP)
                        .done());
    rules.push_back(RuleBuilder("forward", "other traffic into the tunnel")
                        .ifname(NFT_META_OIFNAME, NFT_CMP_EQ, wg)
                        .counter()
                        .verdict(NF_DROP)
                        .done());
    // The vendor path needs IPv4 forwarding on the appliance; nothing else may be routed
    // from or to the guarded interfaces (management, internet side) or into the egress.
    std::vector<std::pair<std::uint32_t, std::string>> guarded = {{NFT_META_IIFNAME, mgmt},
                                                                  {NFT_META_OIFNAME, mgmt}};
    if (!s.external_interface.empty()) {
      guarded.push_back({NFT_META_IIFNAME, s.external_interface});
      guarded.push_back({NFT_META_OIFNAME, s.external_interface});
    }
    if (!egress.empty()) {
      guarded.push_back({NFT_META_IIFNAME, egress});
      guarded.push_back({NFT_META_OIFNAME, egress});
    }
    for (const auto& [key, name] : guarded) {
      rules.push_back(RuleBuilder("forward", std::string("no routing ") +
                                                 (key == NFT_META_IIFNAME ? "from " : "to ") + name)
                          .ifname(key, NFT_CMP_EQ, name)
                          .counter()
                          .verdict(NF_DROP)
                          .done());
    }
  }

  // --- postrouting: vendor traffic leaves with the service address ---
  if (vendor_snat) {
    std::array<std::uint8_t, 4> service{};
    inet_pton(AF_INET, s.vendor_service_address.c_str(), service.data());
    for (const auto& [proto, name] :
         {std::pair<std::uint8_t, const char*>{IPPROTO_TCP, "tcp"}, {IPPROTO_UDP, "udp"}}) {
      // Only what a session grants (the same set as the forward chain); postrouting has no
      // input interface to match on.
      rules.push_back(RuleBuilder("postrouting", std::string("vendor snat (") + name + ")")
                          .ifname(NFT_META_OIFNAME, NFT_CMP_EQ, s.vendor_egress_interface)
                          .nfproto(NFPROTO_IPV4)
                          .l4proto(proto)
                          .payload(NFT_PAYLOAD_NETWORK_HEADER, 12, 4, NFT_REG_1)
                          .payload(NFT_PAYLOAD_NETWORK_HEADER, 16, 4, NFT_REG32_01)
                          .payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_02)
                          .lookup(kVendorSet, kVendorId, NFT_REG_1)
                          .snat_ipv4(service)
                          .done());
    }
  }
  return o;
}

TableDescription describe(const NftObjects& o) {
  TableDescription d;
  if (!o.table) return d;
  d.present = true;
  char flags[32];
  std::snprintf(flags, sizeof flags, "0x%x", nftnl_table_get_u32(o.table.get(), NFTNL_TABLE_FLAGS));
  d.lines.push_back(std::string("table inet ") +
                    nftnl_table_get_str(o.table.get(), NFTNL_TABLE_NAME) + " flags " + flags);

  std::vector<std::string> chains;
  for (const auto& c : o.chains) {
    std::string line = std::string("chain ") + nftnl_chain_get_str(c.get(), NFTNL_CHAIN_NAME);
    if (nftnl_chain_is_set(c.get(), NFTNL_CHAIN_HOOKNUM)) {
      const std::uint32_t policy = nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_POLICY);
      line += std::string(" type ") + nftnl_chain_get_str(c.get(), NFTNL_CHAIN_TYPE) + " hook " +
              std::to_string(nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_HOOKNUM)) + " prio " +
              std::to_string(nftnl_chain_get_s32(c.get(), NFTNL_CHAIN_PRIO)) + " policy " +
              (policy == NF_ACCEPT ? "accept"
               : policy == NF_DROP ? "drop"
                                   : "?");
    }
    chains.push_back(line);
  }
  std::sort(chains.begin(), chains.end());
  d.lines.insert(d.lines.end(), chains.begin(), chains.end());

  std::vector<std::string> sets;
  for (const auto& sp : o.sets) {
    nftnl_set* s = sp.get();
    const std::string name = nftnl_set_get_str(s, NFTNL_SET_NAME);
    char head[160];
    std::snprintf(head, sizeof head, "set %s key_type 0x%x key_len %u flags 0x%x", name.c_str(),
                  nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE), nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN),
                  nftnl_set_get_u32(s, NFTNL_SET_FLAGS));
    sets.push_back(head);
    nftnl_set_elems_iter* it = nftnl_set_elems_iter_create(s);
    // nftnl_set_elems_iter_next returns the current element and advances.
    for (nftnl_set_elem* e = nftnl_set_elems_iter_next(it); e != nullptr;
         e = nftnl_set_elems_iter_next(it)) {
      std::uint32_t len = 0;
      const void* key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
      if (name == kVendorSet) {
        if (len != kVendorKeyLen) continue;
        const auto* k = static_cast<const std::uint8_t*>(key);
        VendorEntry v;
        std::memcpy(v.element.tunnel_address.data(), k, 4);
        std::memcpy(v.element.device_address.data(), k + 4, 4);
        v.element.port = static_cast<std::uint16_t>((k[8] << 8) | k[9]);
        // The kernel reports the time left; a spec, the timeout it asks for.
        const auto attr = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_EXPIRATION)
                              ? NFTNL_SET_ELEM_EXPIRATION
                              : NFTNL_SET_ELEM_TIMEOUT;
        if (nftnl_set_elem_is_set(e, attr)) {
          v.remaining = std::chrono::milliseconds(nftnl_set_elem_get_u64(e, attr));
        }
        d.vendor_access.push_back(v);
        continue;
      }
      const bool end =
          nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS) &&
          (nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS) & NFT_SET_ELEM_INTERVAL_END);
      sets.push_back("element " + name + " " + hex(key, len) + (end ? " interval-end" : ""));
    }
    nftnl_set_elems_iter_destroy(it);
  }
  std::sort(sets.begin(), sets.end());
  d.lines.insert(d.lines.end(), sets.begin(), sets.end());

  std::map<std::string, std::size_t> index;  // rules keep their order within a chain
  for (const auto& r : o.rules) {
    const std::string chain = nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN);
    d.lines.push_back(render_rule(r.get(), index[chain]++));
  }
  std::stable_sort(d.lines.end() - static_cast<std::ptrdiff_t>(o.rules.size()), d.lines.end(),
                   [](const std::string& a, const std::string& b) {
                     return a.substr(0, a.find(' ', 5)) < b.substr(0, b.find(' ', 5));
                   });
  std::sort(d.vendor_access.begin(), d.vendor_access.end(),
            [](const VendorEntry& a, const VendorEntry& b) { return a.element < b.element; });
  return d;
}

}  // namespace cordon::control::nft::detail
