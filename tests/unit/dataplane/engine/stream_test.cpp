#include "dataplane/engine/stream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

namespace cordon::engine {
namespace {

// A sink that records the stream and refuses once it contains `forbidden`, the way an
// inspector refuses a pattern wherever segment boundaries fall.
struct Recorder {
  std::string stream;
  std::string forbidden = "EVIL";
  bool operator()(const uint8_t* data, size_t length) {
    stream.append(reinterpret_cast<const char*>(data), length);
    return stream.find(forbidden) == std::string::npos;
  }
};

struct Segment {
  uint32_t offset;
  std::string bytes;
};

constexpr uint32_t kIsn = 0xfffffff0;  // close to wrap-around on purpose

StreamResult send(TcpStream& s, Recorder& r, const Segment& seg) {
  return s.accept(kIsn + 1 + seg.offset, reinterpret_cast<const uint8_t*>(seg.bytes.data()),
                  static_cast<uint32_t>(seg.bytes.size()), r);
}

// Feeds `segments` in order; returns the result of the first one not accepted (or ok).
StreamResult feed(TcpStream& s, Recorder& r, const std::vector<Segment>& segments) {
  for (const Segment& seg : segments) {
    const StreamResult result = send(s, r, seg);
    if (result != StreamResult::ok) return result;
  }
  return StreamResult::ok;
}

std::vector<Segment> split(const std::string& text, size_t size) {
  std::vector<Segment> out;
  for (size_t i = 0; i < text.size(); i += size) {
    out.push_back({static_cast<uint32_t>(i), text.substr(i, size)});
  }
  return out;
}

class StreamTest : public ::testing::Test {
 protected:
  void SetUp() override { stream.start(kIsn + 1); }
  TcpStream stream;
  Recorder recorder;
};

TEST_F(StreamTest, InOrderSegmentsAreDeliveredAsOneStream) {
  EXPECT_EQ(feed(stream, recorder, split("hello, world", 5)), StreamResult::ok);
  EXPECT_EQ(recorder.stream, "hello, world");
  EXPECT_EQ(stream.next_seq(), kIsn + 1 + 12);  // wrapped past zero
}

TEST_F(StreamTest, PatternSplitAcrossSegmentsIsRefused) {
  EXPECT_EQ(feed(stream, recorder, {{0, "aaaEV"}, {5, "IL bbb"}}), StreamResult::refused);
}

TEST_F(StreamTest, PatternInOneByteSegmentsIsRefused) {
  EXPECT_EQ(feed(stream, recorder, split("xxxxEVILxxxx", 1)), StreamResult::refused);
}

TEST_F(StreamTest, PatternOutOfOrderIsRefusedWhenTheGapFills) {
  // "EVIL" arrives as "IL" first, then "EV": buffered, then assembled and refused.
  EXPECT_EQ(send(stream, recorder, {6, "IL--"}), StreamResult::ok);
  EXPECT_EQ(recorder.stream, "");
  EXPECT_EQ(stream.buffered_bytes(), 4u);
  EXPECT_EQ(send(stream, recorder, {0, "----EV"}), StreamResult::refused);
}

TEST_F(StreamTest, EveryPermutationOfSmallSegmentsGivesTheSameStream) {
  const std::string text = "0123456789abcdefghij";
  std::vector<Segment> segments = split(text, 4);
  std::sort(segments.begin(), segments.end(),
            [](const Segment& a, const Segment& b) { return a.offset < b.offset; });
  do {
    TcpStream s;
    s.start(kIsn + 1);
    Recorder r;
    ASSERT_EQ(feed(s, r, segments), StreamResult::ok);
    EXPECT_EQ(r.stream, text);
  } while (std::next_permutation(
      segments.begin(), segments.end(),
      [](const Segment& a, const Segment& b) { return a.offset < b.offset; }));
}

TEST_F(StreamTest, RetransmissionsAndConsistentOverlapsAreHarmless) {
  EXPECT_EQ(
      feed(stream, recorder,
           {{0, "abcdef"}, {0, "abcdef"}, {3, "defghi"}, {12, "mno"}, {10, "klmn"}, {6, "ghijk"}}),
      StreamResult::ok);
  EXPECT_EQ(recorder.stream, "abcdefghijklmno");
}

TEST_F(StreamTest, ConflictingOverlapWithDeliveredBytesIsRefused) {
  EXPECT_EQ(send(stream, recorder, {0, "GET /index"}), StreamResult::ok);
  EXPECT_EQ(send(stream, recorder, {4, "/EVIL"}), StreamResult::conflict);
}

TEST_F(StreamTest, ConflictingOverlapWithBufferedBytesIsRefused) {
  EXPECT_EQ(send(stream, recorder, {10, "harmless"}), StreamResult::ok);
  EXPECT_EQ(send(stream, recorder, {8, "xxEVIL"}), StreamResult::conflict);
  // Arriving in order, the conflicting copy is refused as well.
  EXPECT_EQ(send(stream, recorder, {0, "01234567xxEVIL"}), StreamResult::conflict);
}

TEST_F(StreamTest, OutOfOrderLimitsAreEnforced) {
  for (uint32_t i = 0; i < TcpStream::kMaxSegments; ++i) {
    ASSERT_EQ(send(stream, recorder, {100 + i * 10, "x"}), StreamResult::ok);
  }
  EXPECT_EQ(send(stream, recorder, {500, "x"}), StreamResult::limit);
  TcpStream s2;
  s2.start(kIsn + 1);
  Recorder r2;
  EXPECT_EQ(send(s2, r2, {10, std::string(TcpStream::kBufferBytes + 1, 'a')}), StreamResult::limit);
  EXPECT_EQ(send(s2, r2, {TcpStream::kMaxWindow, "far ahead"}), StreamResult::limit);
}

TEST_F(StreamTest, RandomSegmentationAndOrderNeverChangeTheVerdict) {
  std::mt19937 rng(7);
  for (int round = 0; round < 300; ++round) {
    std::string text(200, 'a');
    for (char& c : text) c = static_cast<char>('a' + rng() % 20);
    const bool evil = round % 2 == 0;
    if (evil) text.replace(rng() % 190, 4, "EVIL");
    std::vector<Segment> segments;
    for (size_t i = 0; i < text.size();) {
      const size_t n = 1 + rng() % 30;
      segments.push_back({static_cast<uint32_t>(i), text.substr(i, n)});
      i += n;
    }
    // Shuffle within a small window so the out-of-order buffer limits are not hit.
    for (size_t i = 0; i + 1 < segments.size(); i += 2) {
      if (rng() % 2) std::swap(segments[i], segments[i + 1]);
    }
    TcpStream s;
    s.start(kIsn + 1);
    Recorder r;
    const StreamResult result = feed(s, r, segments);
    EXPECT_EQ(result, evil ? StreamResult::refused : StreamResult::ok) << text;
    if (!evil) {
      EXPECT_EQ(r.stream, text);
    }
  }
}

}  // namespace
}  // namespace cordon::engine
