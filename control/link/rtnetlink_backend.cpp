// RtnetlinkBackend: one netlink socket per call (controld checks once a second; nothing
// to keep open), requests acknowledged by the kernel (NLM_F_ACK) so a refusal comes back
// as an errno.
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/ethtool.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <vector>

#include "control/link/link_backend.h"

namespace cordon::control::link {

std::string InterfaceAddress::to_string() const {
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, address.data(), text, sizeof text);
  return std::string(text) + "/" + std::to_string(prefix_length);
}

namespace {

Error io_error(const std::string& what, int err) {
  return Error{"io", what + ": " + std::strerror(err)};
}

struct SocketCloser {
  void operator()(mnl_socket* s) const { mnl_socket_close(s); }
};

// Sends the request in `buf` and runs `cb` on every answer until the kernel's ACK or the
// end of a dump.
Status exchange(const std::string& what, nlmsghdr* request, mnl_cb_t cb, void* data) {
  std::unique_ptr<mnl_socket, SocketCloser> nl(mnl_socket_open(NETLINK_ROUTE));
  if (!nl) return io_error(what + ": netlink socket", errno);
  if (mnl_socket_bind(nl.get(), 0, MNL_SOCKET_AUTOPID) < 0)
    return io_error(what + ": netlink bind", errno);
  const unsigned seq = static_cast<unsigned>(time(nullptr));
  request->nlmsg_seq = seq;
  const unsigned portid = mnl_socket_get_portid(nl.get());
  if (mnl_socket_sendto(nl.get(), request, request->nlmsg_len) < 0)
    return io_error(what + ": netlink send", errno);
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(nl.get(), buf.data(), buf.size());
    if (n < 0) return io_error(what + ": netlink receive", errno);
    const int r = mnl_cb_run(buf.data(), static_cast<size_t>(n), seq, portid, cb, data);
    if (r < 0) return io_error(what, errno);
    if (r == MNL_CB_STOP) return ok();
  }
}

Result<unsigned> index_of(const std::string& name) {
  const unsigned index = if_nametoindex(name.c_str());
  if (index == 0) return Error{"not_found", "no interface " + name};
  return index;
}

struct LinkRead {
  unsigned index;
  LinkState* state;
};

int on_link(const nlmsghdr* nlh, void* data) {
  auto* read = static_cast<LinkRead*>(data);
  const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  if (static_cast<unsigned>(ifi->ifi_index) == read->index) {
    read->state->up = (ifi->ifi_flags & IFF_UP) != 0;
  }
  return MNL_CB_OK;
}

int on_address(const nlmsghdr* nlh, void* data) {
  auto* read = static_cast<LinkRead*>(data);
  const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
  if (ifa->ifa_family != AF_INET || ifa->ifa_index != read->index) return MNL_CB_OK;
  struct Attributes {
    const nlattr* local = nullptr;
    const nlattr* address = nullptr;
  } attrs;
  mnl_attr_parse(
      nlh, sizeof(*ifa),
      [](const nlattr* attr, void* d) {
        auto* a = static_cast<Attributes*>(d);
        if (mnl_attr_get_payload_len(attr) == 4) {
          if (mnl_attr_get_type(attr) == IFA_LOCAL) a->local = attr;
          if (mnl_attr_get_type(attr) == IFA_ADDRESS) a->address = attr;
        }
        return static_cast<int>(MNL_CB_OK);
      },
      &attrs);
  const nlattr* local = attrs.local;
  const nlattr* address = attrs.address;
  // IFA_LOCAL is the interface's own address; IFA_ADDRESS equals it except on
  // point-to-point links, where it is the peer's.
  const nlattr* own = local != nullptr ? local : address;
  if (own == nullptr) return MNL_CB_OK;
  InterfaceAddress a;
  std::memcpy(a.address.data(), mnl_attr_get_payload(own), 4);
  a.prefix_length = ifa->ifa_prefixlen;
  read->state->ipv4.push_back(a);
  return MNL_CB_OK;
}

// The first line of a sysctl file; "" when it cannot be read.
std::string read_sysctl(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

Status write_sysctl(const std::string& path, const std::string& value) {
  std::ofstream out(path);
  out << value << '\n';
  out.flush();
  if (!out) return Error{"io", "cannot write " + path};
  return ok();
}

// SIOCETHTOOL with `cmd` (ETHTOOL_GTXCSUM / ETHTOOL_STXCSUM) on `name`; errno or 0.
int ethtool_tx_checksum(const std::string& name, std::uint32_t cmd, std::uint32_t& value) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  ethtool_value ev{};
  ev.cmd = cmd;
  ev.data = value;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_data = reinterpret_cast<char*>(&ev);
  const int r = ioctl(fd, SIOCETHTOOL, &ifr);
  const int err = r < 0 ? errno : 0;
  close(fd);
  value = ev.data;
  return err;
}

Status change_address(const std::string& name, const InterfaceAddress& address, uint16_t type) {
  Result<unsigned> index = index_of(name);
  if (!index) return index.error();
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  if (type == RTM_NEWADDR) nlh->nlmsg_flags |= NLM_F_CREATE | NLM_F_REPLACE;
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = static_cast<unsigned char>(address.prefix_length);
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = index.value();
  mnl_attr_put(nlh, IFA_LOCAL, 4, address.address.data());
  mnl_attr_put(nlh, IFA_ADDRESS, 4, address.address.data());
  const std::string what = std::string(type == RTM_NEWADDR ? "adding " : "removing ") +
                           address.to_string() + (type == RTM_NEWADDR ? " to " : " from ") + name;
  return exchange(what, nlh, nullptr, nullptr);
}

}  // namespace

Result<LinkState> RtnetlinkBackend::read(const std::string& name) {
  Result<unsigned> index = index_of(name);
  if (!index) return index.error();
  LinkState state;
  LinkRead read{index.value(), &state};
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);

  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_GETLINK;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = static_cast<int>(index.value());
  // A single answer (no dump): the callback stops at it.
  if (Status s = exchange(
          "reading " + name, nlh,
          [](const nlmsghdr* m, void* d) {
            on_link(m, d);
            return static_cast<int>(MNL_CB_STOP);
          },
          &read);
      !s) {
    return s.error();
  }

  nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_GETADDR;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = AF_INET;
  if (Status s = exchange("reading the addresses of " + name, nlh, on_address, &read); !s)
    return s.error();

  state.arp_ignore = read_sysctl("/proc/sys/net/ipv4/conf/" + name + "/arp_ignore") == "1";
  const std::string ipv6 = read_sysctl("/proc/sys/net/ipv6/conf/" + name + "/disable_ipv6");
  state.ipv6_disabled = ipv6 == "1" || ipv6.empty();  // empty: no IPv6 on this interface
  std::uint32_t tx = 0;
  const int err = ethtool_tx_checksum(name, ETHTOOL_GTXCSUM, tx);
  if (err != 0 && err != EOPNOTSUPP)
    return io_error("reading the checksum offload of " + name, err);
  state.tx_checksum_offload = err == 0 && tx != 0;
  return state;
}

Status RtnetlinkBackend::set_up(const std::string& name) {
  Result<unsigned> index = index_of(name);
  if (!index) return index.error();
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_NEWLINK;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = static_cast<int>(index.value());
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  return exchange("setting " + name + " up", nlh, nullptr, nullptr);
}

Status RtnetlinkBackend::add_address(const std::string& name, const InterfaceAddress& address) {
  return change_address(name, address, RTM_NEWADDR);
}

Status RtnetlinkBackend::remove_address(const std::string& name, const InterfaceAddress& address) {
  return change_address(name, address, RTM_DELADDR);
}

Status RtnetlinkBackend::isolate(const std::string& name) {
  if (!index_of(name)) return Error{"not_found", "no interface " + name};
  if (Status s = write_sysctl("/proc/sys/net/ipv4/conf/" + name + "/arp_ignore", "1"); !s) return s;
  const std::string ipv6 = "/proc/sys/net/ipv6/conf/" + name + "/disable_ipv6";
  if (!read_sysctl(ipv6).empty()) {
    if (Status s = write_sysctl(ipv6, "1"); !s) return s;
  }
  std::uint32_t off = 0;
  const int err = ethtool_tx_checksum(name, ETHTOOL_STXCSUM, off);
  if (err != 0 && err != EOPNOTSUPP)
    return io_error("turning the checksum offload of " + name + " off", err);
  return ok();
}

}  // namespace cordon::control::link
