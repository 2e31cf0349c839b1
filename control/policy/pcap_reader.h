// PcapReader: the frames of a capture file (pcap or pcapng, read by libpcap), with checks
// that turn every kind of bad input into an Error: not a capture, truncated, a link type
// other than Ethernet, frames cut by a snap length, absurd sizes, too many packets or bytes.
//
// Threads: one object per thread; no shared state (libpcap's offline reader keeps its
// state in the pcap_t this object owns).
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "control/common/result.h"

struct pcap;

namespace cordon::control::policy {

// Longest frame accepted: no Ethernet frame carrying a valid IP packet is longer, and the
// engine's decoder is fuzzed up to this size.
inline constexpr uint32_t kMaxFrameBytes = 65535;

struct PcapLimits {
  uint64_t max_packets = 1'000'000;
  uint64_t max_bytes = uint64_t{1} << 30;  // captured bytes summed over all frames
};

struct PcapFrame {
  uint64_t number = 0;             // 1 for the first frame of the file
  uint64_t time_ns = 0;            // the record's timestamp, nanoseconds since the Unix epoch
  std::span<const uint8_t> bytes;  // valid until the next call of next()
};

class PcapReader {
 public:
  // Opens `path` (a regular file). Errors: "io" when it cannot be opened, "invalid" when
  // it is not a pcap/pcapng capture of Ethernet frames.
  static Result<PcapReader> open(const std::string& path, const PcapLimits& limits);
  // Reads a capture held in memory (e.g. an uploaded request body), which must outlive
  // the reader; `name` labels the errors. Errors as open().
  static Result<PcapReader> open_memory(std::string_view bytes, const std::string& name,
                                        const PcapLimits& limits);

  PcapReader(PcapReader&&) noexcept;
  PcapReader& operator=(PcapReader&&) noexcept;
  ~PcapReader();

  // True with `frame` filled, false at the end of the file. Errors: "invalid" (truncated
  // or damaged file, a frame captured shorter than it was on the wire, a frame longer
  // than kMaxFrameBytes, a timestamp before 1970 or after 2540) and "too_large" (more
  // packets or bytes than the limits allow).
  Result<bool> next(PcapFrame& frame);

 private:
  PcapReader(pcap* handle, std::string path, const PcapLimits& limits);
  // Takes `file` (closed by the reader, or here on failure).
  static Result<PcapReader> from_file(FILE* file, const std::string& name,
                                      const PcapLimits& limits);
  Error invalid(const std::string& what) const;

  struct Close {
    void operator()(pcap* handle) const;
  };
  std::unique_ptr<pcap, Close> handle_;
  std::string path_;
  PcapLimits limits_;
  uint64_t packets_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace cordon::control::policy
