#include "dataplane/engine/tcp_reset.h"

#include <gtest/gtest.h>

#include "tests/unit/dataplane/engine/frames.h"

namespace cordon::engine {
namespace {

using testing::Bytes;
using testing::FrameBuilder;

// Verifies the TCP checksum of a decoded frame over the pseudo-header.
bool tcp_checksum_ok(const Bytes& f, const DecodedPacket& d) {
  uint32_t sum = 0;
  auto add = [&](const uint8_t* p, size_t n) {
    for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
    if (n % 2) sum += static_cast<uint32_t>(p[n - 1] << 8);
  };
  const size_t address_bytes = d.l3 == L3Kind::ipv6 ? 16 : 4;
  add(d.src_ip.bytes.data(), address_bytes);
  add(d.dst_ip.bytes.data(), address_bytes);
  const size_t tcp_length = f.size() - d.l4_offset;
  sum += ip_protocol::tcp + static_cast<uint32_t>(tcp_length);
  add(f.data() + d.l4_offset, tcp_length);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return sum == 0xffff;
}

struct Reset {
  Bytes frame;
  DecodedPacket decoded;
};

Reset reset_for(const Bytes& refused) {
  DecodedPacket d;
  EXPECT_EQ(decode(refused.data(), static_cast<uint32_t>(refused.size()), d), DropReason::none);
  Reset r;
  r.frame.resize(kTcpResetMaxLength);
  r.frame.resize(build_tcp_reset(refused.data(), d, r.frame.data(), r.frame.size()));
  if (!r.frame.empty()) {
    EXPECT_EQ(decode(r.frame.data(), static_cast<uint32_t>(r.frame.size()), r.decoded),
              DropReason::none);
  }
  return r;
}

TEST(TcpReset, AnswersASynWithRstAckAcknowledgingIt) {
  const Bytes syn = FrameBuilder()
                        .eth("02:00:00:00:00:66", "02:c0:4d:00:00:10")
                        .ipv4("10.50.0.66", "10.50.0.10")
                        .tcp(5555, 445, tcp_flag::syn, 1000)
                        .build();
  const Reset r = reset_for(syn);
  ASSERT_FALSE(r.frame.empty());
  EXPECT_EQ(r.decoded.dst_mac.to_string(), "02:00:00:00:00:66");
  EXPECT_EQ(r.decoded.src_mac.to_string(), "02:c0:4d:00:00:10");
  EXPECT_EQ(r.decoded.src_ip.to_string(), "10.50.0.10");
  EXPECT_EQ(r.decoded.dst_ip.to_string(), "10.50.0.66");
  EXPECT_EQ(r.decoded.src_port, 445);
  EXPECT_EQ(r.decoded.dst_port, 5555);
  EXPECT_EQ(r.decoded.tcp_flags, tcp_flag::rst | tcp_flag::ack);
  EXPECT_EQ(r.decoded.tcp_seq, 0u);
  EXPECT_EQ(r.decoded.tcp_ack, 1001u);  // the SYN takes one sequence number
  EXPECT_TRUE(tcp_checksum_ok(r.frame, r.decoded));
}

TEST(TcpReset, AnswersDataWithRstAtTheAcknowledgedSequence) {
  const Bytes data = FrameBuilder()
                         .eth("02:c0:4d:00:00:10", "02:00:00:00:00:01")
                         .vlan(10)
                         .ipv6("2001:db8::10", "2001:db8::20")
                         .tcp(40000, 104, tcp_flag::ack | tcp_flag::psh, 5000, 777)
                         .payload("hello")
                         .build();
  const Reset r = reset_for(data);
  ASSERT_FALSE(r.frame.empty());
  EXPECT_EQ(r.decoded.vlan_count, 1);
  EXPECT_EQ(r.decoded.vlan_ids[0], 10);
  EXPECT_EQ(r.decoded.tcp_flags, tcp_flag::rst);
  EXPECT_EQ(r.decoded.tcp_seq, 777u);
  EXPECT_EQ(r.decoded.src_ip.to_string(), "2001:db8::20");
  EXPECT_TRUE(tcp_checksum_ok(r.frame, r.decoded));
}

TEST(TcpReset, OnwardResetEndsTheConnectionAtTheReceiver) {
  const Bytes data = FrameBuilder()
                         .eth("02:00:00:00:00:66", "02:c0:4d:00:00:10")
                         .ipv4("10.50.0.66", "10.50.0.10")
                         .tcp(5555, 80, tcp_flag::ack | tcp_flag::psh, 4242, 99)
                         .payload("GET /.%2e/")
                         .build();
  DecodedPacket d;
  ASSERT_EQ(decode(data.data(), static_cast<uint32_t>(data.size()), d), DropReason::none);
  Bytes out(kTcpResetMaxLength);
  out.resize(build_tcp_reset_onward(data.data(), d, out.data(), out.size()));
  ASSERT_FALSE(out.empty());
  DecodedPacket r;
  ASSERT_EQ(decode(out.data(), static_cast<uint32_t>(out.size()), r), DropReason::none);
  EXPECT_EQ(r.src_mac.to_string(), "02:00:00:00:00:66");  // as if from the sender
  EXPECT_EQ(r.dst_ip.to_string(), "10.50.0.10");
  EXPECT_EQ(r.src_port, 5555);
  EXPECT_EQ(r.dst_port, 80);
  EXPECT_EQ(r.tcp_flags, tcp_flag::rst);
  EXPECT_EQ(r.tcp_seq, 4242u);  // what the receiver expects: the refused segment never came
  EXPECT_TRUE(tcp_checksum_ok(out, r));
}

TEST(TcpReset, NeverAnswersAResetOrNonTcp) {
  EXPECT_TRUE(
      reset_for(FrameBuilder().ipv4("10.0.0.1", "10.0.0.2").tcp(1, 2, tcp_flag::rst).build())
          .frame.empty());
  EXPECT_TRUE(
      reset_for(FrameBuilder().ipv4("10.0.0.1", "10.0.0.2").udp(1, 2).build()).frame.empty());
}

}  // namespace
}  // namespace cordon::engine
