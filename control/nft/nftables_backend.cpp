// NftablesBackend: batches to and dumps from the kernel over NETLINK_NETFILTER.
#include <netinet/in.h>  // before the linux/ headers, in a block of its own

#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/common.h>
#include <libnftnl/gen.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

#include "control/nft/firewall_backend.h"
#include "control/nft/nftnl_objects.h"

namespace cordon::control::nft {
namespace {

using namespace detail;

Error os_error(const std::string& what, int err) {
  return Error{err == EPERM ? "permission" : "io", what + ": " + std::strerror(err), ""};
}

struct SocketClose {
  void operator()(mnl_socket* s) const { mnl_socket_close(s); }
};

// One netlink socket for one operation. A receive timeout guards against a kernel that
// never answers (a bug, but controld must not hang on it).
class Netlink {
 public:
  Status open() {
    sock_.reset(mnl_socket_open(NETLINK_NETFILTER));
    if (!sock_) return os_error("opening netlink socket", errno);
    if (mnl_socket_bind(sock_.get(), 0, MNL_SOCKET_AUTOPID) < 0) {
      return os_error("binding netlink socket", errno);
    }
    const int one = 1;  // errors carry the header, not the whole request
    mnl_socket_setsockopt(sock_.get(), NETLINK_CAP_ACK, const_cast<int*>(&one), sizeof one);
    const timeval tv{5, 0};
    setsockopt(mnl_socket_get_fd(sock_.get()), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    portid_ = mnl_socket_get_portid(sock_.get());
    return ok();
  }
  std::uint32_t next_seq() { return seq_++; }

  // Sends a batch whose `messages` requests each carry NLM_F_ACK; the kernel answers
  // every one with an ack or an error (all of them, once the batch is processed). The
  // first error is returned: the kernel then aborted the whole batch.
  Status send_batch(const void* data, std::size_t len, std::size_t messages) {
    if (mnl_socket_sendto(sock_.get(), data, len) < 0) return os_error("sending batch", errno);
    int first_error = 0;
    std::size_t answered = 0;
    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
    while (answered < messages) {
      const ssize_t n = mnl_socket_recvfrom(sock_.get(), buf.data(), buf.size());
      if (n < 0) return os_error("waiting for the kernel's answer", errno);
      auto* nlh = reinterpret_cast<nlmsghdr*>(buf.data());
      int remaining = static_cast<int>(n);
      while (mnl_nlmsg_ok(nlh, remaining)) {
        if (nlh->nlmsg_type == NLMSG_ERROR) {
          const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
          ++answered;
          if (err->error != 0 && first_error == 0) first_error = -err->error;
        }
        nlh = mnl_nlmsg_next(nlh, &remaining);
      }
      // An error report may come without acks for the rest; stop once the socket is dry.
      if (first_error != 0) break;
    }
    if (first_error != 0) return os_error("kernel rejected the transaction", first_error);
    return ok();
  }

  // Runs one request and feeds every answer message to `cb`; ENOENT becomes "not_found".
  Status request(nlmsghdr* nlh, mnl_cb_t cb, void* data) {
    if (mnl_socket_sendto(sock_.get(), nlh, nlh->nlmsg_len) < 0) {
      return os_error("sending request", errno);
    }
    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 4);
    for (;;) {
      const ssize_t n = mnl_socket_recvfrom(sock_.get(), buf.data(), buf.size());
      if (n < 0) return os_error("reading the kernel's answer", errno);
      const int ret =
          mnl_cb_run(buf.data(), static_cast<std::size_t>(n), nlh->nlmsg_seq, portid_, cb, data);
      if (ret < 0) {
        if (errno == ENOENT) return Error{"not_found", "table inet cordon_mgmt does not exist", ""};
        return os_error("reading the kernel's answer", errno);
      }
      if (ret == MNL_CB_STOP) return ok();
    }
  }

 private:
  std::unique_ptr<mnl_socket, SocketClose> sock_;
  std::uint32_t portid_ = 0;
  std::uint32_t seq_ = static_cast<std::uint32_t>(time(nullptr));
};

// A transaction under construction: nftnl_batch_begin ... nftnl_batch_end.
class Batch {
 public:
  explicit Batch(Netlink& nl) : nl_(nl), buf_(2 * kLimit) {
    batch_ = mnl_nlmsg_batch_start(buf_.data(), kLimit);
    nftnl_batch_begin(static_cast<char*>(mnl_nlmsg_batch_current(batch_)), nl_.next_seq());
    next();
  }
  ~Batch() { mnl_nlmsg_batch_stop(batch_); }
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  nlmsghdr* header(std::uint16_t type, std::uint16_t flags) {
    ++messages_;
    return nftnl_nlmsg_build_hdr(static_cast<char*>(mnl_nlmsg_batch_current(batch_)), type,
                                 NFPROTO_INET, flags | NLM_F_ACK, nl_.next_seq());
  }
  void next() {
    if (!mnl_nlmsg_batch_next(batch_)) overflow_ = true;
  }
  Status commit() {
    nftnl_batch_end(static_cast<char*>(mnl_nlmsg_batch_current(batch_)), nl_.next_seq());
    next();
    if (overflow_) return Error{"invalid", "transaction too large for one netlink batch", ""};
    return nl_.send_batch(mnl_nlmsg_batch_head(batch_), mnl_nlmsg_batch_size(batch_), messages_);
  }

 private:
  // Below the netlink socket's default send buffer, so one sendto() carries the batch.
  static constexpr std::size_t kLimit = 160 * 1024;
  Netlink& nl_;
  std::vector<char> buf_;
  mnl_nlmsg_batch* batch_;
  std::size_t messages_ = 0;
  bool overflow_ = false;
};

nftnl_table* table_key() {
  nftnl_table* t = nftnl_table_alloc();
  nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
  nftnl_table_set_str(t, NFTNL_TABLE_NAME, kTableName);
  return t;
}

void add_elements(Batch& batch, nftnl_set* set, std::uint16_t type) {
  nlmsghdr* nlh = batch.header(type, type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0);
  nftnl_set_elems_nlmsg_build_payload(nlh, set);
  batch.next();
}

Status element_sanity(const std::vector<VendorAccessElement>& elements) {
  if (elements.empty()) return Error{"invalid", "no vendor access elements given", ""};
  if (elements.size() > kMaxVendorElements) {
    return Error{
        "invalid",
        "more than " + std::to_string(kMaxVendorElements) + " vendor access elements in one change",
        ""};
  }
  return ok();
}

}  // namespace

Status NftablesBackend::apply_table(const TableSpec& spec) {
  if (auto v = validate(spec); !v) return v;
  NftObjects o = build_objects(spec);
  Netlink nl;
  if (auto s = nl.open(); !s) return s;
  Batch batch(nl);

  // add + delete + add: the delete never fails (the table exists by then), and the
  // kernel commits the whole batch or none of it.
  for (const std::uint16_t type : {NFT_MSG_NEWTABLE, NFT_MSG_DELTABLE, NFT_MSG_NEWTABLE}) {
    nlmsghdr* nlh = batch.header(type, type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0);
    nftnl_table_nlmsg_build_payload(nlh, o.table.get());
    batch.next();
  }
  for (const auto& c : o.chains) {
    nftnl_chain_nlmsg_build_payload(batch.header(NFT_MSG_NEWCHAIN, NLM_F_CREATE), c.get());
    batch.next();
  }
  for (const auto& s : o.sets) {
    nftnl_set_nlmsg_build_payload(batch.header(NFT_MSG_NEWSET, NLM_F_CREATE), s.get());
    batch.next();
    if (nftnl_set_elems_iter* it = nftnl_set_elems_iter_create(s.get())) {
      const bool any = nftnl_set_elems_iter_cur(it) != nullptr;
      nftnl_set_elems_iter_destroy(it);
      if (any) add_elements(batch, s.get(), NFT_MSG_NEWSETELEM);
    }
  }
  for (const auto& r : o.rules) {
    nftnl_rule_nlmsg_build_payload(batch.header(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND),
                                   r.get());
    batch.next();
  }
  if (auto s = batch.commit(); !s) return s.error().context("replacing table inet cordon_mgmt");
  return ok();
}

Status NftablesBackend::delete_table() {
  Netlink nl;
  if (auto s = nl.open(); !s) return s;
  Batch batch(nl);
  std::unique_ptr<nftnl_table, TableFree> t(table_key());
  for (const std::uint16_t type : {NFT_MSG_NEWTABLE, NFT_MSG_DELTABLE}) {
    nftnl_table_nlmsg_build_payload(batch.header(type, type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0),
                                    t.get());
    batch.next();
  }
  if (auto s = batch.commit(); !s) return s.error().context("deleting table inet cordon_mgmt");
  return ok();
}

Status NftablesBackend::add_vendor_access(const std::vector<VendorAccessElement>& elements,
                                          std::chrono::milliseconds timeout) {
  if (auto s = element_sanity(elements); !s) return s;
  if (timeout.count() <= 0 || timeout > kMaxVendorTimeout) {
    return Error{"invalid", "timeout must be 1 ms .. 8 h", ""};
  }
  std::vector<VendorGrant> grants;
  for (const auto& e : elements) grants.push_back({e, timeout});
  SetPtr set = vendor_set_with(grants);
  Netlink nl;
  if (auto s = nl.open(); !s) return s;
  Batch batch(nl);
  // add + delete + add: an existing element is replaced with the new timeout.
  add_elements(batch, set.get(), NFT_MSG_NEWSETELEM);
  add_elements(batch, set.get(), NFT_MSG_DELSETELEM);
  add_elements(batch, set.get(), NFT_MSG_NEWSETELEM);
  if (auto s = batch.commit(); !s) {
    if (s.error().message.find(std::strerror(ENOENT)) != std::string::npos) {
      return Error{"not_found", "adding vendor access: table inet cordon_mgmt does not exist", ""};
    }
    return s.error().context("adding vendor access");
  }
  return ok();
}

Status NftablesBackend::remove_vendor_access(const std::vector<VendorAccessElement>& elements) {
  if (auto s = element_sanity(elements); !s) return s;
  std::vector<VendorGrant> grants;
  for (const auto& e : elements) grants.push_back({e, std::chrono::milliseconds(0)});
  SetPtr set = vendor_set_with(grants);
  Netlink nl;
  if (auto s = nl.open(); !s) return s;
  Batch batch(nl);
  // add + delete: removing an element that is already gone is not an error.
  add_elements(batch, set.get(), NFT_MSG_NEWSETELEM);
  add_elements(batch, set.get(), NFT_MSG_DELSETELEM);
  if (auto s = batch.commit(); !s) {
    if (s.error().message.find(std::strerror(ENOENT)) != std::string::npos) {
      return Error{"not_found", "removing vendor access: table inet cordon_mgmt does not exist",
                   ""};
    }
    return s.error().context("removing vendor access");
  }
  return ok();
}

namespace {

// Collects the dumped objects of our table. The kernel's dump may include other
// tables' objects (it does not filter chain dumps by table), so they are filtered here.
template <class Obj, class Parse>
struct Collect {
  std::vector<Obj>* out;
  static int cb(const nlmsghdr* nlh, void* data) {
    auto* self = static_cast<Collect*>(data);
    Obj obj(Parse::alloc());
    if (Parse::parse(nlh, obj.get()) < 0) return MNL_CB_ERROR;
    if (Parse::family(obj.get()) != NFPROTO_INET ||
        std::strcmp(Parse::table(obj.get()), kTableName) != 0) {
      return MNL_CB_OK;
    }
    self->out->push_back(std::move(obj));
    return MNL_CB_OK;
  }
};
struct ChainParse {
  static nftnl_chain* alloc() { return nftnl_chain_alloc(); }
  static int parse(const nlmsghdr* n, nftnl_chain* c) { return nftnl_chain_nlmsg_parse(n, c); }
  static std::uint32_t family(nftnl_chain* c) { return nftnl_chain_get_u32(c, NFTNL_CHAIN_FAMILY); }
  static const char* table(nftnl_chain* c) { return nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE); }
};
struct SetParse {
  static nftnl_set* alloc() { return nftnl_set_alloc(); }
  static int parse(const nlmsghdr* n, nftnl_set* s) { return nftnl_set_nlmsg_parse(n, s); }
  static std::uint32_t family(nftnl_set* s) { return nftnl_set_get_u32(s, NFTNL_SET_FAMILY); }
  static const char* table(nftnl_set* s) { return nftnl_set_get_str(s, NFTNL_SET_TABLE); }
};
struct RuleParse {
  static nftnl_rule* alloc() { return nftnl_rule_alloc(); }
  static int parse(const nlmsghdr* n, nftnl_rule* r) { return nftnl_rule_nlmsg_parse(n, r); }
  static std::uint32_t family(nftnl_rule* r) { return nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY); }
  static const char* table(nftnl_rule* r) { return nftnl_rule_get_str(r, NFTNL_RULE_TABLE); }
};

int table_cb(const nlmsghdr* nlh, void* data) {
  auto* t = static_cast<TablePtr*>(data);
  t->reset(nftnl_table_alloc());
  return nftnl_table_nlmsg_parse(nlh, t->get()) < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

int elems_cb(const nlmsghdr* nlh, void* data) {
  return nftnl_set_elems_nlmsg_parse(nlh, static_cast<nftnl_set*>(data)) < 0 ? MNL_CB_ERROR
                                                                             : MNL_CB_OK;
}

}  // namespace

namespace {

int gen_cb(const nlmsghdr* nlh, void* data) {
  nftnl_gen* gen = nftnl_gen_alloc();
  const int ret = nftnl_gen_nlmsg_parse(nlh, gen);
  if (ret >= 0) *static_cast<std::uint32_t*>(data) = nftnl_gen_get_u32(gen, NFTNL_GEN_ID);
  nftnl_gen_free(gen);
  return ret < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

Result<std::uint32_t> ruleset_generation(Netlink& nl) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh =
      nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETGEN, AF_UNSPEC, NLM_F_ACK, nl.next_seq());
  std::uint32_t id = 0;
  if (auto s = nl.request(nlh, gen_cb, &id); !s) return s.error().context("reading generation");
  return id;
}

Result<NftObjects> dump_table(Netlink& nl) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  NftObjects o;

  {
    std::unique_ptr<nftnl_table, TableFree> key(table_key());
    nlmsghdr* nlh =
        nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETTABLE, NFPROTO_INET, NLM_F_ACK, nl.next_seq());
    nftnl_table_nlmsg_build_payload(nlh, key.get());
    auto s = nl.request(nlh, table_cb, &o.table);
    if (!s && s.error().code == "not_found") return NftObjects{};
    if (!s) return s.error().context("reading table");
  }
  {  // Dumps filtered by table name (the kernel honours NFTA_*_TABLE in dumps).
    nftnl_chain* key = nftnl_chain_alloc();
    nftnl_chain_set_str(key, NFTNL_CHAIN_TABLE, kTableName);
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETCHAIN, NFPROTO_INET, NLM_F_DUMP,
                                          nl.next_seq());
    nftnl_chain_nlmsg_build_payload(nlh, key);
    nftnl_chain_free(key);
    Collect<ChainPtr, ChainParse> c{&o.chains};
    if (auto s = nl.request(nlh, &Collect<ChainPtr, ChainParse>::cb, &c); !s) {
      return s.error().context("reading chains");
    }
  }
  {
    nftnl_set* key = nftnl_set_alloc();
    nftnl_set_set_str(key, NFTNL_SET_TABLE, kTableName);
    nlmsghdr* nlh =
        nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETSET, NFPROTO_INET, NLM_F_DUMP, nl.next_seq());
    nftnl_set_nlmsg_build_payload(nlh, key);
    nftnl_set_free(key);
    Collect<SetPtr, SetParse> c{&o.sets};
    if (auto s = nl.request(nlh, &Collect<SetPtr, SetParse>::cb, &c); !s) {
      return s.error().context("reading sets");
    }
  }
  for (auto& set : o.sets) {
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP,
                                          nl.next_seq());
    nftnl_set_elems_nlmsg_build_payload(nlh, set.get());
    if (auto s = nl.request(nlh, elems_cb, set.get()); !s) {
      return s.error().context(std::string("reading elements of set ") +
                               nftnl_set_get_str(set.get(), NFTNL_SET_NAME));
    }
  }
  {
    nftnl_rule* key = nftnl_rule_alloc();
    nftnl_rule_set_str(key, NFTNL_RULE_TABLE, kTableName);
    nlmsghdr* nlh =
        nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP, nl.next_seq());
    nftnl_rule_nlmsg_build_payload(nlh, key);
    nftnl_rule_free(key);
    Collect<RulePtr, RuleParse> c{&o.rules};
    if (auto s = nl.request(nlh, &Collect<RulePtr, RuleParse>::cb, &c); !s) {
      return s.error().context("reading rules");
    }
  }
  return o;
}

}  // namespace

Result<TableDescription> NftablesBackend::read_table() {
  Netlink nl;
  if (auto s = nl.open(); !s) return s.error();
  // The table comes in several dumps; a change between them would give a mix. The
  // generation id alone does not exclude that: the kernel bumps it when a commit starts
  // and then publishes the commit's objects one by one, and dumps do not wait for it.
  // So a read counts only when the generation did not move and two consecutive reads
  // agree.
  std::optional<TableDescription> previous;
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto before = ruleset_generation(nl);
    if (!before) return before.error();
    auto objects = dump_table(nl);
    if (!objects) return objects.error();
    auto after = ruleset_generation(nl);
    if (!after) return after.error();
    if (before.value() != after.value()) {
      previous.reset();
      continue;
    }
    // Our table always has chains; the kernel was seen to answer a table lookup during
    // the very first creation of the table, before its contents were visible.
    if (objects.value().table && objects.value().chains.empty()) {
      previous.reset();
      continue;
    }
    TableDescription d = describe(objects.value());
    if (previous && previous->present == d.present && previous->lines == d.lines &&
        compare(*previous, d).empty()) {
      return d;
    }
    previous = std::move(d);
  }
  return Error{"unavailable", "ruleset kept changing while reading table inet cordon_mgmt", ""};
}

}  // namespace cordon::control::nft
