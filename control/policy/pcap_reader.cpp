#include "control/policy/pcap_reader.h"

#include <fcntl.h>
#include <pcap/pcap.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

namespace cordon::control::policy {

namespace {

// Seconds up to which a timestamp in nanoseconds still fits in uint64_t (year 2540).
constexpr int64_t kMaxSeconds = 18'000'000'000;

}  // namespace

void PcapReader::Close::operator()(pcap* handle) const {
  pcap_close(handle);
}

PcapReader::PcapReader(pcap* handle, std::string path, const PcapLimits& limits)
    : handle_(handle), path_(std::move(path)), limits_(limits) {}
PcapReader::PcapReader(PcapReader&&) noexcept = default;
PcapReader& PcapReader::operator=(PcapReader&&) noexcept = default;
PcapReader::~PcapReader() = default;

Error PcapReader::invalid(const std::string& what) const {
  return Error{"invalid", "pcap " + path_ + ": " + what, ""};
}

Result<PcapReader> PcapReader::open(const std::string& path, const PcapLimits& limits) {
  // Opened once and checked through the descriptor: only a regular file is read (a FIFO
  // or device would block or never end). O_NONBLOCK keeps open() itself from blocking on
  // a FIFO.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    return Error{"io", "pcap " + path + ": cannot open: " + std::strerror(errno), ""};
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error{"invalid", "pcap " + path + ": not a regular file", ""};
  }
  FILE* file = fdopen(fd, "rb");
  if (file == nullptr) {
    ::close(fd);
    return Error{"io", "pcap " + path + ": cannot open: " + std::strerror(errno), ""};
  }
  return from_file(file, path, limits);
}

Result<PcapReader> PcapReader::open_memory(std::string_view bytes, const std::string& name,
                                           const PcapLimits& limits) {
  if (bytes.empty()) return Error{"invalid", "pcap " + name + ": empty", ""};
  // fmemopen only reads through the pointer in "r" mode.
  FILE* file = fmemopen(const_cast<char*>(bytes.data()), bytes.size(), "rb");
  if (file == nullptr) {
    return Error{"io", "pcap " + name + ": cannot open: " + std::strerror(errno), ""};
  }
  return from_file(file, name, limits);
}

Result<PcapReader> PcapReader::from_file(FILE* file, const std::string& name,
                                         const PcapLimits& limits) {
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  // Nanosecond precision: libpcap converts microsecond files, so tv_usec holds ns.
  pcap_t* handle =
      pcap_fopen_offline_with_tstamp_precision(file, PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (handle == nullptr) {
    std::fclose(file);  // libpcap closes the file only when it succeeded
    return Error{"invalid", "pcap " + name + ": not a pcap or pcapng capture: " + errbuf, ""};
  }
  PcapReader reader(handle, name, limits);
  const int link = pcap_datalink(handle);
  if (link != DLT_EN10MB) {
    const char* link_name = pcap_datalink_val_to_name(link);
    return reader.invalid("link type " + std::to_string(link) + " (" +
                          (link_name != nullptr ? link_name : "unknown") +
                          "); only Ethernet (1, EN10MB) captures can be replayed");
  }
  return reader;
}

Result<bool> PcapReader::next(PcapFrame& frame) {
  pcap_pkthdr* header = nullptr;
  const u_char* data = nullptr;
  const int rc = pcap_next_ex(handle_.get(), &header, &data);
  if (rc == PCAP_ERROR_BREAK) return false;  // end of file
  const std::string record = "record " + std::to_string(packets_ + 1);
  if (rc != 1) return invalid(record + ": " + pcap_geterr(handle_.get()));
  if (header->caplen > kMaxFrameBytes) {
    return invalid(record + ": frame of " + std::to_string(header->caplen) +
                   " bytes; no Ethernet frame is longer than " + std::to_string(kMaxFrameBytes));
  }
  if (header->caplen < header->len) {
    // A cut frame would be judged as malformed, not as what was on the wire.
    return invalid(record + ": only " + std::to_string(header->caplen) + " of " +
                   std::to_string(header->len) +
                   " bytes were captured (snap length); capture whole frames (tcpdump -s 0)");
  }
  if (header->ts.tv_sec < 0 || header->ts.tv_sec > kMaxSeconds || header->ts.tv_usec < 0 ||
      header->ts.tv_usec >= 1'000'000'000) {
    return invalid(record + ": timestamp out of range");
  }
  if (packets_ + 1 > limits_.max_packets) {
    return Error{"too_large",
                 "pcap " + path_ + ": more than " + std::to_string(limits_.max_packets) +
                     " packets, the most a dry-run replays; replay a shorter capture "
                     "(e.g. editcap -c) or raise the limit",
                 ""};
  }
  if (bytes_ + header->caplen > limits_.max_bytes) {
    return Error{"too_large",
                 "pcap " + path_ + ": more than " + std::to_string(limits_.max_bytes) +
                     " bytes of frames, the most a dry-run replays; replay a shorter capture "
                     "(e.g. editcap -c) or raise the limit",
                 ""};
  }
  ++packets_;
  bytes_ += header->caplen;
  frame.number = packets_;
  frame.time_ns = static_cast<uint64_t>(header->ts.tv_sec) * 1'000'000'000 +
                  static_cast<uint64_t>(header->ts.tv_usec);
  frame.bytes = {data, header->caplen};
  return true;
}

}  // namespace cordon::control::policy
